"""The prostate BCR cohort, multi-scale tiling, the CrossFusion-style model and the 3D MRI encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oncolab.data import Cohort, export_cohort, load_cohort, oracle, oracle_table, synthetic_cohort
from oncolab.data import prostate as prostate_module
from oncolab.data.prostate import (
    INFORMATION_SETS,
    MRI_FOV,
    SEQUENCES,
    ProstateCohort,
    ProstateConfig,
    ProstateSlide,
    conditional_risk,
    lattice_noise,
    mri_grids,
    prostate_cohort,
    render_mri,
    resample_volume,
)
from oncolab.survival import bin_index, time_bins
from oncolab.vision.mri3d import MRIEncoder3d, ResBlock3d, conv3d_by_hand, mri_batch
from oncolab.vision.multiscale import (
    CrossFusionSurv,
    aligned_tiles,
    cross_attention,
    fit_bag_survival,
    predict_bag_survival,
    sample_locations,
    slide_bag,
    stain_blob_features,
    survival_at,
)


@pytest.fixture(scope="module")
def cohort():
    return prostate_cohort(60, seed=1, slide_size=512, mri_shape=(8, 16, 16))


# --- the cohort --------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_different_seed_differs(cohort):
    again = prostate_cohort(60, seed=1, slide_size=512, mri_shape=(8, 16, 16))
    assert again.fingerprint() == cohort.fingerprint()
    other = prostate_cohort(60, seed=2, slide_size=512, mri_shape=(8, 16, 16))
    assert other.fingerprint() != cohort.fingerprint()


def test_tables_are_plausible(cohort):
    cl = cohort.clinical
    assert list(cl.columns) == ["age", "psa", "isup", "gleason_primary", "gleason_secondary", "stage", "center"]
    assert cl["isup"].between(1, 5).all() and (cl["psa"] > 0).all()
    assert 0.1 < cohort.labels["event"].mean() < 0.9
    assert (cohort.labels["time"] > 0).all()
    assert not cohort.presence["mri"].all() and cohort.presence["mri"].any()
    # ISUP grade is a noisy read of the architecture latent
    assert np.corrcoef(cl["isup"], cohort.truth["z_arch"])[0, 1] > 0.5


def test_gleason_patterns_make_up_the_isup_grade():
    """ISUP grade groups from the Gleason patterns (Epstein et al. 2016), computed independently of the generator."""
    big = prostate_cohort(3000, seed=4)
    cl = big.clinical
    p, s = cl["gleason_primary"].to_numpy(), cl["gleason_secondary"].to_numpy()
    total = p + s
    isup = np.select([total <= 6, (p == 3) & (s == 4), (p == 4) & (s == 3), total == 8], [1, 2, 3, 4], 5)
    np.testing.assert_array_equal(isup, cl["isup"].to_numpy())
    assert set(np.unique(p)) <= {3, 4, 5} and set(np.unique(s)) <= {3, 4, 5}
    # the grade groups with several patterns show each of them, in the documented proportions
    g4 = cl[cl["isup"] == 4]
    share = (g4["gleason_primary"] == 4).mean()
    assert abs(share - 0.8) < 4 * np.sqrt(0.8 * 0.2 / len(g4))
    assert {(5, 5), (4, 5), (5, 4)} <= set(zip(*cl[cl["isup"] == 5][["gleason_primary", "gleason_secondary"]].T.values))


def test_the_gleason_patterns_leave_the_other_tables_unchanged():
    """The patterns come from their own random stream: the other columns do not depend on them."""
    a = prostate_cohort(50, seed=7, slide_size=256, mri_shape=(8, 16, 16))
    b = prostate_cohort(50, seed=7, slide_size=256, mri_shape=(8, 16, 16), mri_missing=0.3)
    assert a.clinical.equals(b.clinical) and a.labels.equals(b.labels) and a.truth.equals(b.truth)
    assert not a.presence.equals(b.presence)


def test_the_prostate_cohort_is_a_cohort(cohort):
    """Subset, presence, ids, survival arrays and fingerprint are Cohort's, with the bone cohort's conventions."""
    assert isinstance(cohort, Cohort) and cohort.modalities == ("pathology", "mri", "clinical")
    assert list(cohort.presence.columns) == list(cohort.modalities)
    assert list(cohort.labels.columns) == ["time", "event"] and cohort.labels["event"].dtype == bool
    y = cohort.survival_y()
    assert y.dtype.names == ("event", "time") and np.array_equal(y["time"], cohort.labels["time"])
    sub = cohort.subset([5, 2, 7])
    assert type(sub) is ProstateCohort and list(sub.ids) == list(cohort.ids[[5, 2, 7]])
    assert sub.meta == cohort.meta and sub.images is cohort.images
    tile = sub.slide(cohort.ids[2]).read_region((300, 200), 1, (16, 16))
    np.testing.assert_array_equal(tile, cohort.slide(2).read_region((300, 200), 1, (16, 16)))
    assert sub.equals(cohort.subset(cohort.ids[[5, 2, 7]])) and not sub.equals(cohort.subset([5, 2, 8]))
    assert sub.fingerprint() != cohort.subset([5, 2, 8]).fingerprint()
    arrays = cohort.image_arrays(0)
    assert [k for k in arrays if k.startswith("slide")] == ["slide level 0", "slide level 1", "slide level 2"]
    assert ("mri" in arrays) == cohort.has("mri", 0) == bool(cohort.presence["mri"].iloc[0])
    with pytest.raises(ValueError, match="no diagnosis"):
        _ = cohort.y
    with pytest.raises(ValueError, match="no radiograph images"):
        cohort.radiograph(0)


def test_oracle_both_scales_beat_either_alone():
    big = prostate_cohort(2000, seed=0)  # tables only: slides are never rendered
    o = oracle(big)["by_information"]
    assert o["slide, both scales"] > o["slide, low magnification"] + 0.02
    assert o["slide, both scales"] > o["slide, high magnification"] + 0.02
    assert np.allclose(conditional_risk(big, ("z_arch", "z_nuc", "z_les")), big.truth["true_risk"])
    assert list(oracle_table(big).index) == ["true risk", *INFORMATION_SETS]


def test_conditional_risk_matches_a_regression_on_the_latents():
    """E[eta | z_arch] is linear: least squares of the true risk on (z_arch, age) recovers it."""
    big = prostate_cohort(20000, seed=3)
    z, age = big.truth["z_arch"].to_numpy(), big.clinical["age"].to_numpy()
    X = np.column_stack([np.ones_like(z), z, (age - 66) / 7])
    coef, *_ = np.linalg.lstsq(X, big.truth["true_risk"].to_numpy(), rcond=None)
    cfg = ProstateConfig()
    slope = cfg.b_arch + cfg.rho_arch_nuc * cfg.b_nuc + cfg.rho_arch_les * cfg.b_les
    assert abs(coef[1] - slope) < 0.03 and abs(coef[2] - cfg.b_age) < 0.03 and abs(coef[0]) < 0.03
    np.testing.assert_allclose(conditional_risk(big, ("z_arch",)), slope * z + cfg.b_age * (age - 66) / 7)
    with pytest.raises(ValueError, match="unknown latent 'z_x'"):
        conditional_risk(big, ("z_x",))


def test_tables_go_to_a_folder_and_back_with_their_oracle(tmp_path, cohort):
    """A plain Cohort loaded from the tables has the same oracle: it belongs to the generator."""
    with pytest.raises(ValueError, match="images=False"):
        export_cohort(cohort, tmp_path / "with_images")
    assert not (tmp_path / "with_images").exists()
    back = load_cohort(export_cohort(cohort, tmp_path / "tables", images=False))
    assert type(back) is Cohort and back.equals(cohort, images=False)
    assert oracle(back) == oracle(cohort)


def test_oracle_refuses_a_cohort_this_generator_did_not_make(cohort):
    bone = synthetic_cohort(20, seed=0, modalities=["labs", "clinical"])
    with pytest.raises(ValueError, match="expected a cohort made by prostate_cohort.*got meta\\['source'\\] == 'synthetic'"):
        prostate_module.oracle(bone)
    with pytest.raises(ValueError, match="prostate_cohort"):
        conditional_risk(bone, ("z_arch",))
    real = Cohort({"labels": cohort.labels}, meta={"source": "CHIMERA"})
    with pytest.raises(ValueError, match="'CHIMERA'"):
        oracle(real)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_sim'"):
        oracle(cohort, n_sim=10)


def test_lattice_noise_windows_agree_and_have_unit_variance():
    big = lattice_noise(7, 0, 0, 400, 400, 16.0)
    part = lattice_noise(7, 123, 45, 50, 60, 16.0)
    np.testing.assert_allclose(big[123:173, 45:105], part, atol=1e-4)
    wide = lattice_noise(7, 0, 0, 600, 600, 8.0)
    assert abs(wide.std() - 1) < 0.1 and abs(wide.mean()) < 0.2


def test_slide_is_rendered_tile_by_tile_consistently(cohort):
    s = cohort.slide(0)
    big = s.read_region((100, 60), 0, (96, 96)).astype(int)
    small = s.read_region((130, 90), 0, (20, 24)).astype(int)
    diff = np.abs(big[30:54, 30:50] - small)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float rounding only


def test_levels_are_block_means_like_avg_pool(cohort):
    s = cohort.slide(3)
    lv0 = s.read_region((64, 64), 0, (128, 128))
    lv2 = s.read_region((64, 64), 2, (32, 32)).astype(float)
    pooled = F.avg_pool2d(torch.from_numpy(lv0).permute(2, 0, 1).float()[None], 4)[0].permute(1, 2, 0)
    assert np.abs(pooled.numpy() - lv2).max() <= 0.5 + 1e-4


def test_slide_rejects_bad_input(cohort):
    s = cohort.slide(0)
    with pytest.raises(ValueError, match="level must be"):
        s.read_region((0, 0), 3, (8, 8))
    with pytest.raises(ValueError, match="size must be positive"):
        s.read_region((0, 0), 0, (0, 8))
    with pytest.raises(ValueError, match="arch must lie"):
        ProstateSlide(1.5, 0.5, "A", 1, size=256)
    with pytest.raises(ValueError, match="unknown center"):
        ProstateSlide(0.5, 0.5, "Z", 1, size=256)
    with pytest.raises(ValueError, match="unknown prostate cohort setting"):
        prostate_cohort(10, seed=0, colour="blue")
    no_mri = int(np.flatnonzero(~cohort.presence["mri"].to_numpy())[0])
    with pytest.raises(ValueError, match=f"patient {cohort.ids[no_mri]} has no mri"):
        cohort.mri(no_mri)


def test_atypia_shows_at_high_but_hardly_at_low_magnification():
    """Nuclear atypia changes the fine blob responses at level 0, not the mean colour at level 2."""
    feats = {}
    for nuc in (0.05, 0.95):
        s = ProstateSlide(0.5, nuc, "A", key=99, size=1024)
        s.tumour_field = lambda y0, x0, h, w: np.ones((h, w), np.float32)  # all tumour
        cen = sample_locations(s, 24, 128, seed=0)
        feats[nuc] = stain_blob_features(aligned_tiles(s, cen))  # (24, 3, F)
    lo, hi = feats[0.05], feats[0.95]
    # eosin channel, RMS of the LoG at width 1 (fine detail: nucleoli, chromatin) at level 0
    k = 8 + 3
    assert hi[:, 2, k].mean() > lo[:, 2, k].mean() + 3 * lo[:, 2, k].std() / np.sqrt(24)
    # the mean haematoxylin at level 2 barely moves compared with its spread across tiles
    assert abs(hi[:, 0, 0].mean() - lo[:, 0, 0].mean()) < 0.5 * lo[:, 0, 0].std()


def test_mri_volume(cohort):
    pid = int(np.flatnonzero(cohort.presence["mri"].to_numpy())[0])
    v = cohort.mri(pid)
    assert v.shape == (3, 8, 16, 16) and v.dtype == np.float32
    hi = render_mri(0.95, np.random.default_rng(0), (16, 32, 32))
    lo = render_mri(0.05, np.random.default_rng(0), (16, 32, 32))
    assert hi[2].max() > lo[2].max()  # stronger enhancement of the aggressive lesion
    with pytest.raises(ValueError, match="u_les"):
        render_mri(1.2, np.random.default_rng(0))


def test_resampling_matches_scipy_map_coordinates():
    """Trilinear resampling between two grids of scanner space, against scipy's interpolation at the same points."""
    from scipy import ndimage
    from scipy.interpolate import RegularGridInterpolator

    g = np.random.default_rng(5)
    vol = g.standard_normal((6, 9, 7))
    spacing, origin = (3.0, 1.2, 2.0), (-4.0, 2.5, 1.0)
    shape, new_spacing, new_origin = (8, 5, 11), (2.1, 2.3, 1.1), (-7.0, 1.0, 0.3)   # reaches past the input grid
    out = resample_volume(vol, spacing, origin, shape, new_spacing, new_origin)
    assert out.shape == shape and out.dtype == np.float32
    axes = [(o2 + np.arange(n) * s2 - o1) / s1 for o2, n, s2, o1, s1 in zip(new_origin, shape, new_spacing, origin, spacing)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    ref = ndimage.map_coordinates(vol, coords, order=1, mode="nearest")
    np.testing.assert_allclose(out, ref, atol=1e-5)
    # inside the input grid, also scipy's interpolator on the grid in mm
    grid = [o + np.arange(n) * d for o, n, d in zip(origin, vol.shape, spacing)]
    pts = np.stack(np.meshgrid(*[o + np.arange(n) * d for o, n, d in zip(new_origin, shape, new_spacing)],
                               indexing="ij"), -1)
    inside = np.all([(pts[..., a] >= grid[a][0]) & (pts[..., a] <= grid[a][-1]) for a in range(3)], axis=0)
    assert inside.sum() > 20 and (~inside).sum() > 20
    np.testing.assert_allclose(out[inside], RegularGridInterpolator(grid, vol)(pts[inside]), atol=1e-5)
    # the same grid gives the volume back
    np.testing.assert_allclose(resample_volume(vol, spacing, origin, vol.shape, spacing, origin), vol, atol=1e-6)
    with pytest.raises(ValueError, match="spacings must be positive"):
        resample_volume(vol, (0, 1, 1), origin, shape, new_spacing, new_origin)
    with pytest.raises(ValueError, match="volume must be"):
        resample_volume(vol[0], spacing, origin, shape, new_spacing, new_origin)


def test_mri_sequences_are_acquired_on_different_grids_and_put_on_one(cohort):
    pid = cohort.ids[int(np.flatnonzero(cohort.presence["mri"].to_numpy())[0])]
    seqs = cohort.mri_sequences(pid)
    assert list(seqs) == list(SEQUENCES)
    grids = mri_grids((8, 16, 16))
    assert len({grids[n][0] for n in SEQUENCES}) == 3   # three different voxel grids
    for name, seq in seqs.items():
        shape, spacing, origin = grids[name]
        assert seq.array.shape == shape and seq.spacing == spacing and seq.origin == origin
        np.testing.assert_allclose(np.asarray(spacing) * shape, MRI_FOV)   # every grid covers the field of view
    vol = cohort.mri(pid)
    t2 = seqs["T2w"]
    np.testing.assert_array_equal(vol[0], t2.array)
    for k, name in enumerate(SEQUENCES[1:], start=1):
        s = seqs[name]
        expected = resample_volume(s.array, s.spacing, s.origin, t2.array.shape, t2.spacing, t2.origin)
        np.testing.assert_array_equal(vol[k], expected)
    # the lesion shows on the resampled ADC where it shows on the T2w: both dark inside the gland
    assert np.corrcoef(vol[0].ravel(), vol[1].ravel())[0, 1] > 0.5
    with pytest.raises(ValueError, match="has no mri"):
        cohort.mri_sequences(int(np.flatnonzero(~cohort.presence["mri"].to_numpy())[0]))


def test_tumour_fraction_is_the_tumour_field_of_the_region(cohort):
    s = cohort.slide(4)
    centers = np.array([[64, 64], [300, 200], [448, 448]])
    frac = s.tumour_fraction(centers, 128, step=1)
    exact = [s.tumour_field(y - 64, x - 64, 128, 128).mean() for x, y in centers]
    np.testing.assert_allclose(frac, exact, rtol=1e-6)
    np.testing.assert_allclose(s.tumour_fraction(centers, 128), exact, atol=0.02)
    assert ((frac >= 0) & (frac <= 1)).all()


# --- tiling and the model ----------------------------------------------------------------------
def test_aligned_tiles_one_read_matches_reading_each_level(cohort):
    s = cohort.slide(2)
    cen = sample_locations(s, 3, 128, seed=4)
    assert len({tuple(c) for c in cen}) == 3
    np.testing.assert_array_equal(cen, sample_locations(s, 3, 128, seed=4))
    a = aligned_tiles(s, cen, one_read=True).astype(int)
    b = aligned_tiles(s, cen, one_read=False).astype(int)
    assert a.shape == (3, 3, 32, 32, 3)
    assert np.abs(a - b).max() <= 1
    with pytest.raises(ValueError, match="n must lie"):
        sample_locations(s, 100, 128)


def test_slide_bag_and_features(cohort):
    bag = slide_bag(cohort.slide(1), n_tiles=4, seed=0)
    assert bag.shape == (3, 4, 18) and np.isfinite(bag).all()
    with pytest.raises(ValueError, match="uint8"):
        stain_blob_features(np.zeros((2, 8, 8, 3), np.float32))


def test_cross_attention_by_hand_matches_torch():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    q, kv = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 5:] = True
    ref, ref_att = mha(q, kv, kv, key_padding_mask=pad)
    w, b = mha.in_proj_weight, mha.in_proj_bias
    out, att = cross_attention(q, kv, w[:16], w[16:32], w[32:], mha.out_proj.weight, 4,
                               b[:16], b[16:32], b[32:], mha.out_proj.bias, key_padding_mask=pad)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att, ref_att, atol=1e-6, rtol=1e-5)


def test_crossfusion_shapes_mask_and_training():
    torch.manual_seed(0)
    model = CrossFusionSurv(6, 3, 4, dim=16, n_heads=2, dropout=0.0).eval()
    x = torch.randn(5, 3, 4, 6)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[0, 2:] = False
    out = model(x, mask)
    assert out.shape == (5, 4)
    x2 = x.clone()
    x2[0, :, 2:] = 100.0  # padding must not matter
    torch.testing.assert_close(model(x2, mask)[0], out[0])
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(5, 2, 4, 6))
    g = np.random.default_rng(0)
    time_ = g.exponential(10, 40)
    event = g.random(40) < 0.7
    edges = time_bins(time_, event, 4)
    assert edges[0] == 0 and np.all(np.diff(edges) > 0)
    assert bin_index(edges[-1] + 5, edges) == len(edges) - 2
    xs = torch.randn(40, 3, 4, 6)
    ms = torch.ones(40, 4, dtype=torch.bool)
    fit_bag_survival(model, xs, ms, time_, event, edges, epochs=15, lr=1e-2, seed=0)
    assert model.history_[-1] < model.history_[0]
    pred = predict_bag_survival(model, xs, ms, edges)
    s = pred["survival"]
    assert s.shape == (40, 4) and np.all(np.diff(s, axis=1) <= 1e-12)
    assert survival_at(s, edges, [0.0]).ravel().tolist() == [1.0] * 40


# --- the 3D CNN ----------------------------------------------------------------------------------
def test_conv3d_by_hand_matches_torch():
    g = np.random.default_rng(0)
    x = g.standard_normal((2, 3, 6, 7, 5))
    w = g.standard_normal((4, 3, 3, 3, 3))
    b = g.standard_normal(4)
    for stride, pad in ((1, 1), (2, 0), (2, 1)):
        ref = F.conv3d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, pad)
        np.testing.assert_allclose(conv3d_by_hand(x, w, b, stride, pad), ref.numpy(), atol=1e-10)


def test_resblock_and_encoder(cohort):
    blk = ResBlock3d(3, 8, stride=2)
    assert blk(torch.randn(2, 3, 8, 16, 16)).shape == (2, 8, 4, 8, 8)
    enc = MRIEncoder3d(3, width=4, out_dim=10, head=5)
    vols, mask = mri_batch(cohort, range(6))
    assert vols.shape == (6, 3, 8, 16, 16)
    assert mask.tolist() == [cohort.has("mri", i) for i in range(6)]
    assert (vols[~mask] == 0).all()
    assert enc(vols).shape == (6, 5) and enc.embed(vols).shape == (6, 10)
    with pytest.raises(ValueError, match="expected volumes"):
        enc(torch.randn(2, 2, 8, 16, 16))


def test_config_round_trip():
    cfg = ProstateConfig(mri_shape=(8, 16, 16))
    assert ProstateConfig.from_dict(cfg.to_dict()) == cfg


# --- the convolutional fusion of the scales, and maps of a slide ---------------------------------
def test_convfusion_shapes_mask_and_padding():
    from oncolab.vision.multiscale import ConvFusionSurv

    torch.manual_seed(0)
    model = ConvFusionSurv(6, 3, 4, dim=16, n_heads=2, dropout=0.0).eval()
    x = torch.randn(5, 3, 7, 6)   # 7 regions: a 3 x 3 grid with 2 padded cells
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[0, 4:] = False
    out = model(x, mask)
    assert out.shape == (5, 4)
    x2 = x.clone()
    x2[0, :, 4:] = 100.0   # masked regions must not matter
    torch.testing.assert_close(model(x2, mask)[0], out[0])
    att = model.last_attention
    torch.testing.assert_close(att.sum(1), torch.ones(5))
    assert (att[0, 4:] == 0).all()
    # the scales are merged by a learned weight each: changing one scale's tokens changes the output
    x3 = x.clone()
    x3[:, 2] += 1.0
    assert not torch.allclose(model(x3, mask), out)
    assert model(torch.randn(2, 3, 1, 6)).shape == (2, 4)   # one region alone
    with pytest.raises(ValueError, match="dim must be even"):
        ConvFusionSurv(6, 3, 4, dim=15, n_heads=3)


def test_tile_risks_are_one_region_bags_and_attention_sums_to_one():
    from oncolab.vision.mil import GatedAttentionMIL
    from oncolab.vision.multiscale import ConvFusionSurv, tile_attention, tile_risks

    torch.manual_seed(1)
    edges = np.array([0.0, 10.0, 20.0, 40.0])
    bag = torch.randn(3, 5, 6)
    for model in (CrossFusionSurv(6, 3, 3, dim=16, n_heads=2).eval(), ConvFusionSurv(6, 3, 3, dim=16).eval()):
        risks = tile_risks(model, bag, edges)
        alone = [predict_bag_survival(model, bag[None, :, k:k + 1], torch.ones(1, 1, dtype=torch.bool), edges)["risk"][0]
                 for k in range(5)]
        np.testing.assert_allclose(risks, alone, rtol=1e-5)
        att = tile_attention(model, bag[None])
        assert att.shape == (1, 5) and np.isclose(att.sum(), 1) and (att >= 0).all()
    mil = GatedAttentionMIL(6, 3)
    np.testing.assert_allclose(tile_attention(mil, bag[None], scale=2)[0], mil(bag[2]).attention.detach().numpy(),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="scale="):
        tile_attention(mil, bag[None])


def test_region_map_paints_each_region(cohort):
    from oncolab.vision.multiscale import iter_aligned_tiles, region_centers, region_map

    s = cohort.slide(0)
    centers = region_centers(s, (2, 1, 0), 32)   # 128-pixel regions of a 512-pixel slide
    assert centers.shape == (16, 2)
    assert [c for c, _ in iter_aligned_tiles(s)] == [tuple(c) for c in centers]
    pic = region_map(centers, np.arange(16.0), 128, 512, 64)
    assert pic.shape == (64, 64) and not np.isnan(pic).any()
    np.testing.assert_array_equal(pic[::16, ::16], np.arange(16.0).reshape(4, 4))
    part = region_map(centers[:3], [1.0, 2.0, 3.0], 128, 512, 64)
    assert np.isnan(part[20:, :]).all() and (part[:16, :16] == 1).all()

