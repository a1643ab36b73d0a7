"""oncolab.features: the hand-made features of every modality, as scikit-learn transformers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA as SkPCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from oncolab.data.labs import BIOMARKERS
from oncolab.features import (
    LESION_FEATURES,
    NUCLEAR_FEATURES,
    STAIN_FEATURES,
    ClinicalFeatures,
    GeneFeatures,
    IntensityHistogram,
    LabFeatures,
    LesionMeasurements,
    NuclearMeasurements,
    StainStatistics,
    intensity_histogram,
    lab_transform,
    lesion_measurements,
    nuclear_measurements,
    stain_statistics,
)
from oncolab.omics import ClinicalPreprocessor, GenePreprocessor, log_cpm

PANEL = [b.name for b in BIOMARKERS]


@pytest.fixture(scope="module")
def images(small_cohort):
    n = 12
    return ([small_cohort.radiograph(i) for i in range(n)], small_cohort.boxes.iloc[:n].to_numpy(float),
            [small_cohort.slide(i) for i in range(n)])


def split(table, n: int = 60):
    """The first ``n`` patients (to fit on) and the others (to transform)."""
    return table.iloc[:n], table.iloc[n:]


def roundtrip(transformer):
    """state() -> JSON text and plain arrays -> from_state(), as a saved model would do."""
    config, arrays = transformer.state()
    config = json.loads(json.dumps(config))
    arrays = {k: np.array(v) for k, v in arrays.items()}
    return type(transformer).from_state(config, arrays)


# --------------------------------------------------------------------------------------------
# radiograph
# --------------------------------------------------------------------------------------------
def test_lesion_measurements_of_a_drawn_lesion():
    """A dark square on grey bone: the sizes, intensities and contrast are known exactly."""
    img = np.full((100, 100), 200, np.uint8)
    img[30:50, 40:70] = 50  # 30 px wide, 20 px high
    f = dict(zip(LESION_FEATURES, lesion_measurements(img, (40, 30, 70, 50)), strict=True))
    assert f["box_w"] == pytest.approx(0.30) and f["box_h"] == pytest.approx(0.20)
    assert f["box_size"] == pytest.approx(np.sqrt(30 * 20) / 100)
    assert f["inner_mean"] == pytest.approx(50 / 255, abs=1e-6) and f["inner_std"] == pytest.approx(0, abs=1e-6)
    assert f["contrast"] == pytest.approx(150 / 255, abs=1e-6)  # the ring around the box is bone
    assert f["rim"] == pytest.approx(-150 / 255, abs=1e-6)  # brightest in the box minus the bone: no rim
    rimmed = img.copy()
    rimmed[30:50, 40:42] = 255  # a bright (sclerotic) edge
    r = dict(zip(LESION_FEATURES, lesion_measurements(rimmed, (40, 30, 70, 50)), strict=True))
    assert r["rim"] == pytest.approx(55 / 255, abs=1e-6)
    # the same lesion in an image twice the size gives the same size fractions and intensities
    big = np.kron(img, np.ones((2, 2), np.uint8))
    g = dict(zip(LESION_FEATURES, lesion_measurements(big, (80, 60, 140, 100)), strict=True))
    for k in ("box_w", "box_h", "box_size", "inner_mean", "contrast"):
        assert g[k] == pytest.approx(f[k], abs=1e-6), k


def test_lesion_measurements_reject_bad_input():
    img = np.zeros((50, 60), np.uint8)
    with pytest.raises(ValueError, match=r"does not lie inside the 60x50 image"):
        lesion_measurements(img, (10, 10, 70, 20))
    with pytest.raises(ValueError, match=r"box must be 4 numbers"):
        lesion_measurements(img, (10, 10, 20))
    with pytest.raises(ValueError, match=r"2-D \(H, W\) grayscale.*\(50, 60, 3\)"):
        lesion_measurements(np.zeros((50, 60, 3)), (1, 1, 5, 5))


def test_intensity_histogram_against_numpy(images):
    img = images[0][0]
    h = intensity_histogram(img, bins=8)
    counts, _ = np.histogram(img.ravel(), bins=8, range=(0, 255))
    np.testing.assert_allclose(h[:8], counts / img.size)
    assert h[:8].sum() == pytest.approx(1.0)
    assert h[8] == pytest.approx(np.mean(img < 60)) and h[9] == pytest.approx(np.mean(img < 90))
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        intensity_histogram(img, bins=0)


def test_image_transformers_equal_the_functions_they_wrap(images):
    rads, boxes, slides = images
    X = LesionMeasurements().fit_transform(list(zip(rads, boxes, strict=True)))
    np.testing.assert_array_equal(X, np.stack([lesion_measurements(r, b) for r, b in zip(rads, boxes, strict=True)]))
    X = IntensityHistogram(bins=10).fit_transform(iter(rads))  # any iterable: images can be loaded lazily
    np.testing.assert_array_equal(X, np.stack([intensity_histogram(r, 10) for r in rads]))
    X = NuclearMeasurements().fit_transform(slides)
    np.testing.assert_array_equal(X, np.stack([nuclear_measurements(s) for s in slides]))
    X = StainStatistics().fit_transform(slides)
    np.testing.assert_array_equal(X, np.stack([stain_statistics(s) for s in slides]))
    assert LesionMeasurements().transform([]).shape == (0, len(LESION_FEATURES))


def test_image_transformers_names_state_and_clone():
    for t, names in ((LesionMeasurements(), LESION_FEATURES), (NuclearMeasurements(), NUCLEAR_FEATURES),
                     (StainStatistics(), STAIN_FEATURES)):
        assert list(t.get_feature_names_out()) == list(names)
        assert type(roundtrip(t)) is type(t)
    h = IntensityHistogram(bins=12)
    names = h.get_feature_names_out()
    assert len(names) == 14 and names[0] == "intensity_bin_00" and list(names[-2:]) == ["below_60", "below_90"]
    assert roundtrip(h).bins == 12 and clone(h).get_params() == {"bins": 12}


def test_image_features_in_a_pipeline(small_cohort):
    """Histogram -> scaling -> logistic regression, cloned and tuned by a grid search."""
    n = 40
    rads = np.empty(n, dtype=object)
    rads[:] = [small_cohort.radiograph(i) for i in range(n)]
    y = small_cohort.y[:n]
    pipe = make_pipeline(IntensityHistogram(), StandardScaler(), LogisticRegression(max_iter=500))
    search = GridSearchCV(pipe, {"intensityhistogram__bins": [4, 8]}, cv=2).fit(rads, y)
    assert search.best_params_["intensityhistogram__bins"] in (4, 8)
    assert search.predict_proba(rads).shape == (n, 3)
    fitted = search.best_estimator_
    assert fitted[0].transform(rads).shape == (n, fitted[0].bins + 2)


# --------------------------------------------------------------------------------------------
# pathology
# --------------------------------------------------------------------------------------------
def test_nuclear_measurements_count_drawn_nuclei():
    """Pink tissue with dark purple discs: the nuclei found are the discs drawn."""
    rng = np.random.default_rng(0)
    img = np.empty((128, 128, 3), np.uint8)
    img[:] = (230, 170, 200)
    img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:128, :128]
    centres = [(20, 20), (20, 90), (60, 50), (100, 20), (100, 100), (64, 110)]
    for cy, cx in centres:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = (70, 40, 120)
    f = dict(zip(NUCLEAR_FEATURES, nuclear_measurements(img), strict=True))
    assert f["tissue_frac"] == pytest.approx(1.0)
    assert f["nuclei_density"] == pytest.approx(len(centres) / img[..., 0].size * 1e3)
    disc = int(((yy - 64) ** 2 + (xx - 64) ** 2 <= 16).sum())
    assert f["nucleus_area"] == pytest.approx(disc / img[..., 0].size * 1e4, rel=0.05)
    assert f["nucleus_area_cv"] < 0.05  # equal discs: no pleomorphism


def test_stain_statistics_colour_and_tissue(images):
    from skimage.color import rgb2hed

    region = images[2][0]
    s = dict(zip(STAIN_FEATURES, stain_statistics(region), strict=True))
    rgb = region.astype(np.float64) / 255
    for j, c in enumerate("rgb"):  # computed in float32, as the chapter-1 baseline always was
        assert s[f"{c}_mean"] == pytest.approx(rgb[..., j].mean(), abs=2e-4)
        assert s[f"{c}_std"] == pytest.approx(rgb[..., j].std(), abs=2e-4)
    tissue = rgb.mean(2) < 0.85
    assert s["tissue_frac"] == pytest.approx(tissue.mean(), abs=1e-6)
    assert s["h_mean"] == pytest.approx(rgb2hed(region)[..., 0][tissue].mean(), rel=1e-6)
    with pytest.raises(ValueError, match=r"RGB array \(H, W, 3\).*\(8, 8\)"):
        stain_statistics(np.zeros((8, 8)))


# --------------------------------------------------------------------------------------------
# labs
# --------------------------------------------------------------------------------------------
def test_lab_transform_is_log1p_and_keeps_zero_and_missing():
    x = pd.DataFrame({"crp": [0.0, 2.5, np.nan], "ldh": [200.0, 310.0, 150.0]}, index=["a", "b", "c"])
    out = lab_transform(x)
    np.testing.assert_allclose(out.to_numpy(), np.log1p(x.to_numpy()))
    assert out.loc["a", "crp"] == 0.0 and np.isnan(out.loc["c", "crp"])  # a CRP of 0.0 is finite
    np.testing.assert_allclose(lab_transform(x["ldh"]), np.log1p(x["ldh"]))
    np.testing.assert_allclose(lab_transform([0.0, 1.0], name="esr"), np.log1p([0.0, 1.0]))


def test_lab_transform_refuses_negative_and_text_by_name():
    x = pd.DataFrame({"alp": [80.0, 90.0], "crp": [1.0, -0.5]}, index=pd.Index(["P1", "P2"], name="patient_id"))
    with pytest.raises(ValueError, match=r"lab 'crp' of patient 'P2' is -0.5.*>= 0 mg/L"):
        lab_transform(x)
    with pytest.raises(ValueError, match=r"lab 'wbc'.*-1"):
        lab_transform(np.array([1.0, -1.0]), name="wbc")
    with pytest.raises(ValueError, match=r"lab 'alp' of patient 'P1' is 'high', not a number"):
        lab_transform(pd.DataFrame({"alp": ["high", "80"]}, index=["P1", "P2"]))


def test_lab_features_against_pandas(small_cohort):
    labs = small_cohort.labs
    tr, te = split(labs)
    f = LabFeatures().fit(tr)
    Z = f.transform(te)
    k = len(PANEL)
    assert Z.shape == (len(te), 2 * k)
    assert list(f.get_feature_names_out()) == PANEL + [f"{n}_missing" for n in PANEL]
    # reference, with pandas: log1p, training median for a gap, training mean and sd (ddof=1)
    lt, le = np.log1p(tr), np.log1p(te)
    expected = (le.fillna(lt.median()) - lt.mean()) / lt.std(ddof=1)
    np.testing.assert_allclose(Z[:, :k], expected.to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(Z[:, k:], te.isna().to_numpy().astype(float))
    assert te.isna().any().any()  # the test exercises the imputation
    assert LabFeatures(missing_indicators=False).fit(tr).transform(te).shape == (len(te), k)


def test_lab_features_align_columns_by_name(small_cohort):
    labs = small_cohort.labs
    f = LabFeatures().fit(labs.iloc[:60])
    shuffled = labs[labs.columns[::-1]]
    np.testing.assert_array_equal(f.transform(shuffled), f.transform(labs))
    g = LabFeatures(names=["ldh", "crp"]).fit(labs[["crp", "ldh"]])
    assert list(g.get_feature_names_out()) == ["ldh", "crp", "ldh_missing", "crp_missing"]


def test_lab_features_bad_input_is_named(small_cohort):
    labs = small_cohort.labs
    f = LabFeatures().fit(labs)
    with pytest.raises(ValueError, match=r"unknown lab \['psa'\]; expected the lab columns \['alp'"):
        f.transform(labs.assign(psa=1.0))
    with pytest.raises(ValueError, match=r"lacks the lab column\(s\) \['crp'\]; expected \['alp'"):
        f.transform(labs.drop(columns="crp"))
    with pytest.raises(ValueError, match=r"unknown lab 'psa'; expected the labs"):
        LabFeatures().fit(labs.assign(psa=1.0))
    bad = labs.astype(object)
    pid = labs.index[3]
    bad.loc[pid, "ldh"] = "12,5"
    with pytest.raises(ValueError, match=rf"lab 'ldh' of patient '{pid}' is '12,5', not a number"):
        f.transform(bad)
    with pytest.raises(TypeError, match="DataFrame"):
        f.transform(labs.to_numpy())
    with pytest.raises(ValueError, match=r"no training patient has a measured value of lab\(s\) \['esr'\]"):
        LabFeatures().fit(labs.assign(esr=np.nan))
    with pytest.raises(RuntimeError, match="not fitted"):
        LabFeatures().transform(labs)


def test_lab_features_in_a_pipeline_clone_and_state(small_cohort):
    labs, y = small_cohort.labs, small_cohort.y
    pipe = make_pipeline(LabFeatures(missing_indicators=False), LogisticRegression(max_iter=1000))
    twin = clone(pipe)
    assert twin.get_params()["labfeatures__missing_indicators"] is False
    twin.fit(labs.iloc[:60], y[:60])
    assert twin.predict_proba(labs.iloc[60:]).shape == (len(labs) - 60, 3)
    f = LabFeatures().fit(labs.iloc[:60])
    g = roundtrip(f)
    np.testing.assert_array_equal(g.transform(labs), f.transform(labs))
    assert list(g.get_feature_names_out()) == list(f.get_feature_names_out())
    out = LabFeatures().set_output(transform="pandas").fit(labs).transform(labs)
    assert list(out.columns) == list(f.get_feature_names_out()) and out.index.equals(labs.index)


# --------------------------------------------------------------------------------------------
# genes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("table", "features", "preprocessor"), [
    ("genes", GeneFeatures, lambda tr: GenePreprocessor().fit(tr).transform),
    ("clinical", ClinicalFeatures, lambda tr: ClinicalPreprocessor().fit(tr).one_hot),
])
def test_table_features_equal_the_omics_preprocessors(small_cohort, table, features, preprocessor):
    """GeneFeatures and ClinicalFeatures are the oncolab.omics steps behind the scikit-learn interface."""
    tr, te = split(getattr(small_cohort, table))
    np.testing.assert_array_equal(features().fit(tr).transform(te), preprocessor(tr)(te))


def test_gene_features_against_log_cpm_and_sklearn(small_cohort):
    genes = small_cohort.genes
    tr, te = split(genes)
    f = GeneFeatures().fit(tr)
    assert f.values == "counts" and f.state()[0]["values"] == "counts"  # the default reads counts
    # by hand: log2(CPM + 1), training mean and sd (ddof=1)
    lt, le = log_cpm(tr), log_cpm(te)
    np.testing.assert_allclose(f.transform(te), (le - lt.mean(0)) / lt.std(0, ddof=1), rtol=1e-10)
    assert list(f.get_feature_names_out()) == list(genes.columns)
    # PCA, whitened, against scikit-learn (up to the sign of each component)
    p = GeneFeatures(n_components=5, whiten=True).fit(tr)
    sk = SkPCA(5, whiten=True).fit(f.transform(tr))
    ours, theirs = p.transform(te), sk.transform(f.transform(te))
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-6, atol=1e-8)
    assert list(p.get_feature_names_out()) == [f"PC{k}" for k in range(1, 6)]


def test_gene_features_of_log_expression_are_per_gene_z_scores():
    """A microarray's log2 intensities (scikit-survival's breast_cancer): standardised as they are, no log-CPM."""
    from oncolab.data import load_breast_cancer_genes

    X = load_breast_cancer_genes().X
    tr, te = split(X[[c for c in X.columns if c.startswith("X")]], 120)
    assert tr.shape[1] == 76
    f = GeneFeatures(values="log_expression").fit(tr)
    expected = (te - tr.mean()) / tr.std(ddof=1)
    np.testing.assert_allclose(f.transform(te), expected.to_numpy(), rtol=1e-12)
    assert list(f.get_feature_names_out()) == list(tr.columns)
    counts = GeneFeatures(values="counts").fit(tr).transform(te)  # log-CPM of the same numbers: another thing
    assert not np.allclose(counts, f.transform(te), atol=1e-3)
    # then PCA as with counts, against scikit-learn; the kind of table is saved and restored
    p = GeneFeatures(n_components=4, values="log_expression").fit(tr)
    np.testing.assert_allclose(np.abs(p.transform(te)), np.abs(SkPCA(4).fit(f.transform(tr)).transform(f.transform(te))),
                               rtol=1e-6, atol=1e-8)
    g = roundtrip(p)
    assert g.values == "log_expression" and g.state()[0]["values"] == "log_expression"
    np.testing.assert_array_equal(g.transform(te), p.transform(te))
    # bad input, named
    with pytest.raises(ValueError, match=r"values must be one of \['counts', 'log_expression'\], got 'log2'"):
        GeneFeatures(values="log2").fit(tr)
    bad = te.copy()
    bad.iloc[1, 2] = np.nan
    with pytest.raises(ValueError, match=rf"gene '{te.columns[2]}' of patient '{te.index[1]}' has no value \(NaN\); "
                                         r"expected a log-scale expression value"):
        f.transform(bad)
    bad.iloc[1, 2] = -0.5
    with pytest.raises(ValueError, match=rf"gene '{te.columns[2]}' of patient '{te.index[1]}' is -0.5; expected"):
        f.transform(bad)


def test_gene_features_align_by_name_and_name_bad_genes(small_cohort):
    genes = small_cohort.genes
    f = GeneFeatures(n_components=3).fit(genes.iloc[:60])
    np.testing.assert_array_equal(f.transform(genes[genes.columns[::-1]]), f.transform(genes))
    first = genes.columns[0]
    with pytest.raises(ValueError, match=rf"lacks the gene column\(s\) \['{first}'\]"):
        f.transform(genes.drop(columns=first))
    with pytest.raises(ValueError, match=r"unknown gene \['NEW1'\]"):
        f.transform(genes.assign(NEW1=3))
    bad = genes.astype(float)
    bad.iloc[2, 1] = np.nan
    with pytest.raises(ValueError, match=rf"gene '{genes.columns[1]}' of patient '{genes.index[2]}' has no count"):
        f.transform(bad)
    with pytest.raises(ValueError, match=r"n_components=100 exceeds"):
        GeneFeatures(n_components=100).fit(genes.iloc[:60])
    with pytest.raises(ValueError, match="whiten=True needs n_components"):
        GeneFeatures(whiten=True).fit(genes)


def test_gene_features_state_and_clone(small_cohort):
    genes = small_cohort.genes
    for t in (GeneFeatures(), GeneFeatures(n_components=4, whiten=True)):
        t.fit(genes.iloc[:60])
        g = roundtrip(t)
        np.testing.assert_array_equal(g.transform(genes), t.transform(genes))
        assert clone(t).get_params() == t.get_params()
    arr = GeneFeatures().fit(genes.to_numpy()[:60])  # an array: columns by position
    np.testing.assert_array_equal(arr.transform(genes.to_numpy()), GeneFeatures().fit(genes.iloc[:60]).transform(genes))


# --------------------------------------------------------------------------------------------
# clinical
# --------------------------------------------------------------------------------------------
def test_clinical_features_names_scaling_and_unknown_categories(small_cohort):
    clin = small_cohort.clinical
    tr, te = split(clin)
    f = ClinicalFeatures().fit(tr)
    assert list(f.get_feature_names_out()) == ClinicalPreprocessor().fit(tr).feature_names()
    # age standardised with the training mean and sd (ddof=1); one 1 per categorical variable
    np.testing.assert_allclose(f.transform(te)[:, 0], (te["age"] - tr["age"].mean()) / tr["age"].std(ddof=1))
    assert (f.transform(te)[:, 1:].sum(1) == 3).all()
    # another column order, and a center never seen in training (-> <unknown>)
    new = te[te.columns[::-1]].assign(center="Z")
    Z = f.transform(new)
    names = list(f.get_feature_names_out())
    assert (Z[:, names.index("center=<unknown>")] == 1).all()
    np.testing.assert_array_equal(Z[:, :names.index("center=<unknown>")], f.transform(te)[:, :names.index("center=<unknown>")])


def test_clinical_features_bad_input_state_and_clone(small_cohort):
    clin = small_cohort.clinical
    f = ClinicalFeatures(categorical=["sex", "site", "center"], numeric=["age"]).fit(clin)
    bad = clin.astype({"age": object})
    bad.iloc[4, bad.columns.get_loc("age")] = "forty"
    with pytest.raises(ValueError, match=rf"clinical variable 'age' of patient '{clin.index[4]}' is 'forty'"):
        f.transform(bad)
    with pytest.raises(ValueError, match=rf"clinical variable 'age' of patient '{clin.index[4]}' is 'forty'"):
        clone(f).fit(bad)
    with pytest.raises(ValueError, match=r"unknown clinical variable \['bmi'\]"):
        f.transform(clin.assign(bmi=22.0))
    with pytest.raises(ValueError, match=r"lacks the clinical variable column\(s\) \['site'\]"):
        f.transform(clin.drop(columns="site"))
    g = roundtrip(f)
    np.testing.assert_array_equal(g.transform(clin), f.transform(clin))
    assert clone(f).get_params() == {"categorical": ["sex", "site", "center"], "numeric": ["age"]}
