"""The prostate cohort through the complete system: its stages, risk cross-fitting, maps, and the two presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from oncolab.data import MODALITIES, prostate_cohort, synthetic_cohort
from oncolab.pipeline import OncoLabSystem, SystemConfig, preset, read_inputs
from oncolab.pipeline.presets import PRESETS, preset_cohort
from oncolab.pipeline.stages import STAGES, RiskCrossFittedStage, Targets
from oncolab.pipeline.stages.prostate import (
    TILE_BACKBONES,
    MRICNN3d,
    PathologyConvFusion,
    PathologyCrossFusion,
    PathologyWsiMIL,
    backbone_risks,
    check_pyramid,
)
from oncolab.survival import harrell_c
from oncolab.vision.multiscale import stain_blob_features


@pytest.fixture(scope="module")
def small():
    return prostate_cohort(48, seed=2, slide_size=512, mri_shape=(8, 16, 16))


def quick(**changes) -> SystemConfig:
    base = {"modalities": ("pathology", "mri", "clinical"), "pathology_encoder": "crossfusion", "tile_size": 32,
            "mil_epochs": 3, "folds": 2, "epochs": 40, "progress": False}
    return SystemConfig.from_dict({**base, **changes})


def survival_targets(cohort) -> Targets:
    lab = cohort.labels
    return Targets(np.zeros(len(cohort), int), [], None, lab["time"].to_numpy(float), lab["event"].to_numpy(bool))


# --- the configuration --------------------------------------------------------------------------
def test_a_new_modality_leaves_the_bone_defaults_unchanged():
    cfg = SystemConfig()
    assert cfg.modalities == MODALITIES == ("radiograph", "pathology", "labs", "genes", "clinical")
    assert "mri" not in cfg.modalities and "mri" in STAGES
    for name in ("handcrafted", "learned", "annotated_box"):
        assert preset(name).modalities == MODALITIES and preset_cohort(name) == "bone"
    assert synthetic_cohort(5, seed=0, modalities=["labs", "clinical"]).modalities == ("labs", "clinical")
    # any registered modality may be named; they are kept in the registry's order
    assert SystemConfig(modalities=("clinical", "mri", "pathology")).modalities == ("pathology", "mri", "clinical")
    with pytest.raises(ValueError, match="drawn from .*'mri'.*got \\('ct',\\)"):
        SystemConfig(modalities=("ct",))
    with pytest.raises(ValueError, match="mri_encoder='vit' is not available; expected one of \\['cnn3d'\\]"):
        SystemConfig(mri_encoder="vit")


def test_the_presets_name_their_stages_and_their_cohort():
    ch, cf = preset("chimera"), preset("crossfusion")
    assert ch.modalities == ("pathology", "mri", "clinical") and cf.modalities == ("pathology",)
    assert (ch.pathology_encoder, ch.mri_encoder, ch.clinical_encoder) == ("wsi_mil", "cnn3d", "onehot")
    assert cf.pathology_encoder == "crossfusion"
    assert preset_cohort("chimera") == preset_cohort("crossfusion") == "prostate"
    assert set(PRESETS) >= {"chimera", "crossfusion"}
    assert preset("chimera", fusion="crossattn").fusion == "crossattn"
    with pytest.raises(ValueError, match="unknown preset 'chimaera'"):
        preset_cohort("chimaera")


def test_the_training_budgets_of_the_prostate_stages_are_settings():
    cfg = quick(mil_epochs=5, mri_epochs=3, folds=2, seed=4)
    assert SystemConfig().mri_epochs == 8 and SystemConfig().tile_backbone == "stain_blob"
    mri = MRICNN3d.from_config(cfg)
    assert (mri.epochs, mri.folds, mri.seed) == (3, 2, 4)
    for cls in (PathologyWsiMIL, PathologyCrossFusion, PathologyConvFusion):
        stage = cls.from_config(cfg.replace(tile_backbone="vit", tile_pixels=16, tile_epochs=2))
        assert (stage.epochs, stage.tile_backbone, stage.tile_pixels, stage.tile_epochs) == (5, "vit", 16, 2)
    assert "mri_epochs" in cfg.stage_settings() and "tile_backbone" in cfg.stage_settings()
    assert SystemConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="mri_epochs must be >= 1, got 0"):
        quick(mri_epochs=0)
    with pytest.raises(ValueError, match="tile_backbone='uni' is not available; expected one of "
                                         "\\['stain_blob', 'resnet', 'vit'\\]"):
        quick(tile_backbone="uni")
    assert TILE_BACKBONES == ("stain_blob", "resnet", "vit")
    with pytest.raises(ValueError, match="tile_backbone must be one of .* got 'cnn'"):
        PathologyCrossFusion(tile_backbone="cnn")
    with pytest.raises(ValueError, match="ViT backbone needs tile_pixels to be a multiple of 4, got 6"):
        PathologyCrossFusion(tile_backbone="vit", tile_size=12, tile_pixels=6)
    with pytest.raises(ValueError, match="pretrained ViT backbone needs tile_pixels to be a multiple of 16, got 8"):
        PathologyCrossFusion(tile_backbone="vit", tile_pixels=8, pretrained=True)
    with pytest.raises(ValueError, match="tile_pixels \\(12\\) must divide tile_size \\(32\\)"):
        PathologyCrossFusion(tile_backbone="resnet", tile_pixels=12)


# --- cross-fitting on the risk ------------------------------------------------------------------
class _Memo(RiskCrossFittedStage):
    """A stage whose model remembers its patients: risk 100 for them, the input for the others."""

    modality, name = "clinical", "memo"

    def prepare(self, raw, rows, targets):
        return np.asarray(raw, float)

    def fit_model(self, inputs, rows, y, n_classes, seed):
        assert y.dtype.names == ("event", "time") and n_classes == 1
        return {"rows": set(rows.tolist()), "times": y["time"]}

    def predict_model(self, model, inputs, rows):
        return np.array([100.0 if r in model["rows"] else inputs[r] for r in rows])


def test_risk_cross_fitting_hands_each_fitting_patient_a_model_that_did_not_see_it():
    g = np.random.default_rng(0)
    n = 60
    x = g.standard_normal(n)
    time, event = g.exponential(10, n), g.random(n) < 0.5
    targets = Targets(np.zeros(n, int), [], None, time, event)
    rows = np.arange(45)
    stage = _Memo(folds=3, seed=1)
    Z = stage.fit_transform(x, rows, targets)
    assert Z.shape == (n, 1) and stage.feature_names() == ["memo risk"]
    # no fitting patient got the memorised 100: every one is predicted by a model fitted without it
    np.testing.assert_allclose(Z[rows, 0] * stage.scale_ + stage.center_, x[rows])
    np.testing.assert_allclose([Z[rows, 0].mean(), Z[rows, 0].std(ddof=1)], [0.0, 1.0], atol=1e-12)
    # the other patients get the fold models' mean, standardised alike
    np.testing.assert_allclose(Z[45:, 0], (x[45:] - stage.center_) / stage.scale_)
    np.testing.assert_allclose(stage.transform(x)[:, 0], (np.mean([[100.0 if r in m["rows"] else x[r] for r in range(n)]
                                                                    for m in stage.models], axis=0) - stage.center_)
                               / stage.scale_)
    # the folds are stratified by the event, and each model learnt from its own patients' times
    for m in stage.models:
        fit = np.array(sorted(m["rows"]))
        assert abs(event[fit].mean() - event[rows].mean()) < 0.1
        np.testing.assert_array_equal(np.sort(m["times"]), np.sort(time[fit]))
    with pytest.raises(ValueError, match="learns from survival \\(time, event\\)"):
        _Memo().fit_transform(x, rows, Targets(np.zeros(n, int), ["a"]))


# --- the stages ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["wsi_mil", "crossfusion", "convfusion"])
def test_pyramid_stages_fit_cross_fitted_and_come_back_from_their_state(small, name):
    cls = STAGES["pathology"][name]
    cfg = quick(pathology_encoder=name)
    raw, usable, notes = cls.read(small, cfg)
    assert usable.all() and not notes
    assert raw[0].shape == (len(cls.levels), cls.n_tiles, 18)
    # the same regions of a patient's slide whether read alone or in the cohort
    alone, _, _ = cls.read(small.subset([3]), cfg)
    np.testing.assert_array_equal(alone[0], raw[3])
    stage = cls.from_config(cfg)
    rows = np.arange(36)
    Z = stage.fit_transform(raw, rows, survival_targets(small))
    assert Z.shape == (len(small), 1) and np.isfinite(Z).all() and len(stage.models) == 2
    np.testing.assert_allclose([Z[rows, 0].mean(), Z[rows, 0].std(ddof=1)], [0.0, 1.0], atol=1e-9)
    config, arrays = stage.state()
    json.dumps(config)
    back = cls.from_state(json.loads(json.dumps(config)), {k: np.array(v) for k, v in arrays.items()})
    np.testing.assert_array_equal(back.transform(raw), stage.transform(raw))
    np.testing.assert_allclose(stage.transform(raw)[36:], Z[36:], atol=1e-5)   # other batches: rounding only


def test_mri_stage_masks_the_patients_without_mri(small):
    cfg = quick()
    raw, usable, _ = MRICNN3d.read(small, cfg)
    np.testing.assert_array_equal(usable, small.presence["mri"].to_numpy())
    assert all(raw[i] is None for i in np.flatnonzero(~usable))
    stage = MRICNN3d.from_config(cfg.replace(mri_epochs=2))
    assert stage.epochs == 2
    rows = np.flatnonzero(usable)
    Z = stage.fit_transform(raw, rows, survival_targets(small))
    assert (Z[~usable] == 0).all() and np.isfinite(Z).all()
    config, arrays = stage.state()
    back = MRICNN3d.from_state(config, arrays)
    np.testing.assert_array_equal(back.transform(raw), stage.transform(raw))
    wrong = raw.copy()
    wrong[rows[0]] = np.zeros((3, 8, 16, 8), np.float32)
    with pytest.raises(ValueError, match="must have the shape \\(3, 8, 16, 16\\)"):
        stage.transform(wrong)


@pytest.mark.parametrize("backbone", ["resnet", "vit"])
def test_a_network_tile_backbone_reads_the_same_tiles_and_learns_within_each_fold(small, backbone):
    cfg = quick(modalities=("pathology",), tile_backbone=backbone, tile_pixels=8, tile_epochs=1, mil_epochs=2)
    raw, usable, _ = PathologyCrossFusion.read(small, cfg)
    assert usable.all() and raw[0].dtype == np.uint8 and raw[0].shape == (3, 16, 32, 32, 3)
    # the hand-made bag is the hand-made description of exactly these tiles
    hand, _, _ = PathologyCrossFusion.read(small.subset([0, 5]), cfg.replace(tile_backbone="stain_blob"))
    for k, i in enumerate([0, 5]):
        np.testing.assert_allclose(stain_blob_features(raw[i]), hand[k], rtol=1e-5, atol=1e-5)
    stage = PathologyCrossFusion.from_config(cfg)
    rows = np.arange(36)
    targets = survival_targets(small)
    Z = stage.fit_transform(raw, rows, targets)
    assert Z.shape == (len(small), 1) and np.isfinite(Z).all() and len(stage.models) == 2
    np.testing.assert_allclose([Z[rows, 0].mean(), Z[rows, 0].std(ddof=1)], [0.0, 1.0], atol=1e-9)
    inputs = stage.prepare(raw, rows, None)
    assert inputs[0].shape == (len(small), 3, 16, 8, 8, 3)   # tiles shrunk to tile_pixels
    for m in stage.models:
        # each fold's encoder learnt on the tiles (its loss recorded per epoch), and its embeddings are
        # standardised per scale on the fold's own fitting patients (those it did not predict out of fold)
        assert len(m.encoder.history_) == 1 and len(m.pool.history_) == 2
        own = stage.predict_model(m, inputs, rows)
        held = np.isclose(Z[rows, 0] * stage.scale_ + stage.center_, own, rtol=0, atol=1e-5)
        assert held.sum() == 18
        emb = stage.embed(m, inputs[0][rows[~held]]).numpy()
        assert emb.shape[:3] == (18, 3, 16)
        np.testing.assert_allclose(emb.mean((0, 2)), 0.0, atol=1e-4)
        np.testing.assert_allclose(emb.std((0, 2), ddof=1)[np.ptp(emb, (0, 2)) > 0], 1.0, atol=1e-3)
    # same seed, same bytes; saved and loaded without reaching the model hub
    again = PathologyCrossFusion.from_config(cfg).fit_transform(raw, rows, targets)
    np.testing.assert_array_equal(again, Z)
    config, arrays = stage.state()
    assert config["settings"]["tile_backbone"] == backbone and "feature_mean" not in arrays
    back = PathologyCrossFusion.from_state(json.loads(json.dumps(config)), arrays)
    np.testing.assert_array_equal(back.transform(raw), stage.transform(raw))
    # a map of every region of a slide, from the tiles
    centers, bag = stage.region_inputs(small.slide(0))
    assert bag.shape == (3, len(centers), 8, 8, 3)
    maps = stage.region_maps(bag)
    assert maps["risk"].shape == (len(centers),) and np.isclose(maps["attention"].sum(), 1.0)
    with pytest.raises(ValueError, match="a bag of tiles must be uint8 \\(3 scales, N regions, 32, 32, 3\\)"):
        stage.shrink(np.zeros((3, 16, 18), np.float32))


def test_backbone_risks_fits_each_description_on_the_same_patients(small):
    cfg = quick(modalities=("pathology",), tile_pixels=8, tile_epochs=1, mil_epochs=2)
    raw, _, _ = PathologyCrossFusion.read(small, cfg.replace(tile_backbone="resnet"))
    tiles = np.stack(raw)
    lab = small.labels
    time, event = lab["time"].to_numpy(float), lab["event"].to_numpy(bool)
    train, test = np.arange(36), np.arange(36, 48)
    risks, seconds = backbone_risks(cfg, tiles, train, test, time, event)
    assert list(risks) == list(seconds) == list(TILE_BACKBONES)
    assert all(r.shape == (12,) and np.isfinite(r).all() for r in risks.values())
    # each entry is the stage of that backbone fitted on the training patients, applied to the test ones
    hand = PathologyCrossFusion.from_config(cfg)
    bags = stain_blob_features(tiles)
    hand.fit_transform(bags[train], np.arange(36), Targets(np.zeros(36, int), [], time=time[train],
                                                           event=event[train]))
    np.testing.assert_array_equal(risks["stain_blob"], hand.transform(bags[test])[:, 0])
    # the label of a held-out patient is never read: changing it changes nothing
    flipped = event.copy()
    flipped[test] = ~flipped[test]
    np.testing.assert_array_equal(backbone_risks(cfg, tiles, train, test, time, flipped, ("vit",))[0]["vit"],
                                  risks["vit"])
    with pytest.raises(ValueError, match="unknown tile backbone 'unet'"):
        backbone_risks(cfg, tiles, train, test, time, event, ("unet",))
    with pytest.raises(ValueError, match="pathology_encoder must be a slide-pyramid stage"):
        backbone_risks(cfg.replace(pathology_encoder="measurements"), tiles, train, test, time, event)
    with pytest.raises(ValueError, match="tiles must be"):
        backbone_risks(cfg, bags, train, test, time, event)


def test_the_pretrained_backbones_are_rebuilt_without_the_hub(monkeypatch):
    from oncolab.env import HubUnavailableError

    monkeypatch.setenv("ONCOLAB_OFFLINE", "1")
    for backbone, width in (("resnet", 512), ("vit", 192)):
        stage = PathologyCrossFusion(tile_backbone=backbone, tile_pixels=16, pretrained=True)
        net = stage.tile_encoder(5, seed=0, download=False)   # timm's architecture, no weights fetched
        assert net.num_features == width
        assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 5)
        with pytest.raises(HubUnavailableError):
            stage.tile_encoder(5, seed=0, download=True)


def test_pyramid_stages_refuse_a_slide_region():
    bone = synthetic_cohort(6, seed=0, slide_size=128, modalities=["pathology", "clinical"])
    with pytest.raises(ValueError, match="bad pathology image \\(expected a whole-slide pyramid.*got an array of shape "
                                         "\\(128, 128, 3\\)"):
        PathologyCrossFusion.read(bone, quick())
    with pytest.raises(TypeError, match="whole-slide pyramid"):
        check_pyramid(np.zeros((8, 8, 3)))


# --- the complete system on the prostate cohort --------------------------------------------------
def test_the_system_fits_slide_mri_and_clinical_with_each_fusion(small, tmp_path):
    cfg = quick()
    inputs = read_inputs(small, cfg)
    train, test = np.arange(36), np.arange(36, 48)
    base = OncoLabSystem(cfg).fit(small.subset(train), inputs=inputs.subset(train))
    assert base.task_ == "survival" and base.dims_ == {"pathology": 1, "mri": 1, "clinical": 14}
    # the fusion learns from cross-fitted stage outputs: those of the fitting patients are out-of-fold
    stage = base.stages["pathology"]
    oof = base.fit_outputs_["pathology"][:, 0]
    assert not np.allclose(oof, stage.transform(inputs.subset(train).raw["pathology"])[:, 0])
    no_mri = ~small.presence["mri"].to_numpy()[test]
    assert no_mri.any()
    for fusion in ("early", "late", "attention", "crossattn"):
        s = OncoLabSystem(cfg.replace(fusion=fusion)).fit(small.subset(train), inputs=inputs.subset(train),
                                                           stages=base)
        pred = s.predict(small.subset(test), inputs=inputs.subset(test))
        assert np.isfinite(pred["risk"]).all()
        assert (pred["modalities_used"][no_mri] == "pathology,clinical").all()
        assert (pred["modalities_used"][~no_mri] == "pathology,mri,clinical").all()
        # the MRI of a patient without one is masked: whatever its stage output, the prediction stays
        X, mask = s.embed(small.subset(test), inputs.subset(test))
        X2 = {**X, "mri": np.where(mask[:, [1]], X["mri"], 5.0)}
        from oncolab.fusion import predict_model

        np.testing.assert_allclose(predict_model(s.model, X2, mask)["risk"], pred["risk"].to_numpy(), rtol=1e-6)
        tab = s.evaluate(small.subset(test), n_boot=20, inputs=inputs.subset(test))
        assert list(tab["metric"]) == ["c_index"]
    base.save(tmp_path / "m")
    again = OncoLabSystem.load(tmp_path / "m")
    p1 = base.predict(small.subset(test), inputs=inputs.subset(test))
    p2 = again.predict(small.subset(test), inputs=inputs.subset(test))
    np.testing.assert_array_equal(p1["risk"].to_numpy(), p2["risk"].to_numpy())


def test_oncolab_run_generates_the_prostate_cohort_for_its_presets(tmp_path, capsys):
    from oncolab.cli import main

    out = tmp_path / "run"
    rc = main(["run", "--preset", "crossfusion", "--n-patients", "60", "--seed", "1", "--mil-epochs", "3",
               "--folds", "2", "--epochs", "30", "--n-boot", "20", "--reports", "0", "--no-ablation", "--quiet",
               "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ProstateCohort(n=60" in printed
    run = json.loads((out / "run.json").read_text())
    assert run["preset"] == "crossfusion" and run["config"]["pathology_encoder"] == "crossfusion"
    assert run["save_load_identical"] and 0.5 < run["oracle_test"]["c_index"] <= 1
    metrics = (out / "metrics.csv").read_text()
    assert metrics.startswith("metric,value") and "c_index" in metrics


# --- where on the slide -------------------------------------------------------------------------
@pytest.mark.slow
def test_the_risk_map_follows_the_tumour_and_randomised_weights_break_it():
    """On slides of high-risk patients, the risk of each region alone ranks tumour above benign tissue
    (the generator's tumour field); the same map from randomised weights does not."""
    from oncolab.explain.sanity import randomise_weights

    cohort = prostate_cohort(100, seed=0, slide_size=768, mri_shape=(8, 16, 16), b_arch=3.0, b_nuc=3.0, b_les=0.0,
                             follow_up=(400.0, 500.0), loss_rate=1e-6)   # a strong, uncensored slide signal
    cfg = quick(modalities=("pathology",), mil_epochs=40, folds=3)
    raw, _, _ = PathologyCrossFusion.read(cohort, cfg)
    stage = PathologyCrossFusion.from_config(cfg)
    lab = cohort.labels
    Z = stage.fit_transform(raw, np.arange(len(cohort)), survival_targets(cohort))
    assert harrell_c(lab["time"].to_numpy(), lab["event"].to_numpy(bool), Z[:, 0]) > 0.6
    randomised = [randomise_weights(m, seed=1) for m in stage.models]
    trained_rho, random_rho = [], []
    for i in np.argsort(-cohort.truth["true_risk"].to_numpy())[:10]:
        slide = cohort.slide(int(i))
        centers, bag = stage.region_inputs(slide)
        tumour = slide.tumour_fraction(centers, stage.footprint(slide))
        if tumour.std() < 0.1:   # all tumour or all benign: nothing to rank
            continue
        trained = stage.region_maps(bag)
        rand = stage.region_maps(bag, randomised)
        assert trained["attention"].shape == trained["risk"].shape == (len(centers),)
        assert np.isclose(trained["attention"].sum(), 1.0)
        trained_rho.append(stats.spearmanr(trained["risk"], tumour).statistic)
        random_rho.append(stats.spearmanr(rand["risk"], tumour).statistic)
    assert len(trained_rho) >= 5
    assert np.mean(trained_rho) > 0.25
    assert np.mean(trained_rho) > np.mean(random_rho) + 0.2
    with torch.no_grad():
        assert not torch.equal(next(randomised[0].parameters()), next(stage.models[0].parameters()))
    assert PathologyWsiMIL.levels == (0,)
