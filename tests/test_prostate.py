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
    ProstateCohort,
    ProstateConfig,
    ProstateSlide,
    conditional_risk,
    lattice_noise,
    prostate_cohort,
    render_mri,
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
    assert set(cl.columns) == {"age", "psa", "isup", "stage", "center"}
    assert cl["isup"].between(1, 5).all() and (cl["psa"] > 0).all()
    assert 0.1 < cohort.labels["event"].mean() < 0.9
    assert (cohort.labels["time"] > 0).all()
    assert not cohort.presence["mri"].all() and cohort.presence["mri"].any()
    # ISUP grade is a noisy read of the architecture latent
    assert np.corrcoef(cl["isup"], cohort.truth["z_arch"])[0, 1] > 0.5


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
