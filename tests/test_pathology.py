"""Pathology: input rules, tissue mask and tiling, stain deconvolution, Macenko and Reinhard
normalisation, tile features, and gated attention-MIL (oncolab.vision.pathology / .mil)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oncolab.data import CENTERS, render_slide, stain_matrix
from oncolab.vision.mil import GatedAttentionMIL, fit_mil, pad_bags, predict_mil
from oncolab.vision.pathology import (
    REFERENCE_STAINS,
    TILE_FEATURES,
    EmptyTileSetError,
    MacenkoNormalizer,
    ReinhardNormalizer,
    as_rgb_uint8,
    colour_statistics,
    macenko_stain_matrix,
    od_to_rgb,
    rgb_to_od,
    slide_tile_features,
    stain_angle_degrees,
    stain_concentrations,
    tile_features,
    tile_slide,
    tissue_mask,
)


def _beer_lambert(conc: np.ndarray, stains: np.ndarray) -> np.ndarray:
    """uint8 RGB from concentrations (H, W, 2) and stain rows (2, 3), no noise."""
    return od_to_rgb(conc @ stains)


def _pure_and_mixed(stains: np.ndarray, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image holding pure-H, pure-E and mixed pixels (and a little background)."""
    rng = np.random.default_rng(seed)
    conc = np.zeros((size, size, 2))
    kind = rng.integers(0, 4, size=(size, size))  # 0 background, 1 pure H, 2 pure E, 3 mix
    conc[..., 0] = np.where((kind == 1) | (kind == 3), rng.uniform(0.3, 1.5, (size, size)), 0)
    conc[..., 1] = np.where((kind == 2) | (kind == 3), rng.uniform(0.3, 1.0, (size, size)), 0)
    return _beer_lambert(conc, stains), conc


# --- input rules ---------------------------------------------------------------------------
def test_grayscale_and_nan_raise_clear_errors():
    with pytest.raises(ValueError, match=r"grayscale.*\(32, 32\).*\(H, W, 3\)"):
        as_rgb_uint8(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="grayscale"):
        tile_slide(np.zeros((32, 32, 1), np.uint8), 8)
    img = np.full((8, 8, 3), 0.5)
    img[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="1 pixel.*NaN"):
        tissue_mask(img)
    with pytest.raises(ValueError, match=r"\[-3, 10\].*0\.\.255"):
        as_rgb_uint8(np.array([[[-3, 0, 10]]], dtype=np.int16))
    with pytest.raises(ValueError, match="shape"):
        as_rgb_uint8(np.zeros((4, 4, 2)))


def test_stated_conversions():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 7
    rgba[..., 3] = 200
    assert np.array_equal(as_rgb_uint8(rgba), np.full((4, 4, 3), 7, np.uint8))
    frac = np.full((2, 2, 3), 0.5)
    assert (as_rgb_uint8(frac) == 128).all()  # floats in [0, 1] are fractions of 255
    assert (as_rgb_uint8(frac * 200) == 100).all()  # other floats are read as 0..255


def test_od_round_trip():
    rng = np.random.default_rng(0)
    img = rng.integers(1, 256, size=(16, 16, 3)).astype(np.uint8)
    assert np.array_equal(od_to_rgb(rgb_to_od(img)), img)
    assert np.allclose(rgb_to_od(np.full((1, 1, 3), 255, np.uint8)), 0)


# --- tissue and tiles ----------------------------------------------------------------------
def test_all_background_raises_empty_tile_set():
    white = np.full((64, 64, 3), 252, np.uint8)
    assert not tissue_mask(white).any()
    with pytest.raises(EmptyTileSetError, match=r"no 16x16 tile.*background"):
        tile_slide(white, 16)
    with pytest.raises(ValueError, match="larger than the image"):
        tile_slide(white, 128)


def test_tiles_match_skimage_windows_and_block_means(small_cohort):
    from skimage.util import view_as_blocks, view_as_windows

    img = small_cohort.slide(0)
    t = 16
    tiles = tile_slide(img, t, min_tissue=0.3)
    windows = view_as_windows(img, (t, t, 3), step=t)[:, :, 0]
    for tile, (r, c) in zip(tiles.tiles, tiles.coords):
        assert np.array_equal(tile, windows[r // t, c // t])
    frac = view_as_blocks(tissue_mask(img), (t, t)).mean(axis=(2, 3))
    expected = np.argwhere(frac >= 0.3) * t
    assert np.array_equal(tiles.coords, expected)
    assert np.allclose(tiles.tissue, frac[frac >= 0.3])
    # overlapping tiles with a stride, and a seeded subsample in grid order
    over = tile_slide(img, t, stride=t // 2, min_tissue=0.3)
    assert len(over) > len(tiles)
    a = tile_slide(img, t, stride=t // 2, min_tissue=0.3, max_tiles=5, seed=1)
    b = tile_slide(img, t, stride=t // 2, min_tissue=0.3, max_tiles=5, seed=1)
    assert len(a) == 5 and np.array_equal(a.coords, b.coords)
    assert np.array_equal(a.coords, a.coords[np.lexsort((a.coords[:, 1], a.coords[:, 0]))])


# --- stains --------------------------------------------------------------------------------
def test_deconvolution_matches_skimage_separate_stains():
    from skimage.color import separate_stains

    m = stain_matrix("B")
    full = np.vstack([m, np.cross(m[0], m[1])])  # third vector orthogonal to H and E
    img, _ = _pure_and_mixed(m)
    ours = stain_concentrations(img, m)
    # scikit-image measures OD in units of -ln(1e-6) and clips at zero
    theirs = separate_stains(img, np.linalg.inv(full))[..., :2] * -np.log(1e-6)
    assert np.allclose(np.maximum(ours, 0), theirs, atol=1e-6)


@pytest.mark.parametrize("center", CENTERS)
def test_macenko_recovers_known_stain_vectors(center):
    m = stain_matrix(center)
    img, _ = _pure_and_mixed(m, seed=CENTERS.index(center))
    est = macenko_stain_matrix(img, alpha=0.5)
    assert stain_angle_degrees(est, m).max() < 1.0
    assert np.allclose(np.linalg.norm(est, axis=1), 1)


@pytest.mark.parametrize("center", CENTERS)
def test_macenko_on_cohort_like_slides(center):
    """On the cohort's slides nuclei lie on eosin-stained stroma, so no pixel is pure
    haematoxylin: eosin is found closely, haematoxylin with a bias towards eosin that shrinks
    as nuclei get denser and darker (higher u)."""
    true = stain_matrix(center)
    err = {u: stain_angle_degrees(macenko_stain_matrix(render_slide(u, center, np.random.default_rng(7), 256)), true)
           for u in (0.1, 0.5, 0.9)}
    assert all(e[1] < 3.5 for e in err.values())
    assert err[0.5][0] < 12.0 and err[0.9][0] < 10.0
    assert err[0.1][0] > err[0.9][0]


def test_macenko_normalisation_restains_exactly_when_stains_are_pure():
    src = stain_matrix("D")
    img, conc = _pure_and_mixed(src, seed=3)
    target_stains = stain_matrix("A")
    target_stains = target_stains / np.linalg.norm(target_stains, axis=1, keepdims=True)
    norm = MacenkoNormalizer(alpha=0.5).set_target(target_stains, [1.2, 0.8])
    out = norm.transform(img)
    # the image's concentrations in its own unit stains, rescaled to the target's percentiles
    unit_conc = conc * np.linalg.norm(src, axis=1)
    src_max = np.percentile(unit_conc.reshape(-1, 2)[np.linalg.norm((conc @ src).reshape(-1, 3), axis=1) > 0.15],
                            99, axis=0)
    expected = od_to_rgb(unit_conc * (np.array([1.2, 0.8]) / src_max) @ target_stains)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 3
    assert stain_angle_degrees(norm.stains_, src).max() < 1.0
    with pytest.raises(RuntimeError, match="not fitted"):
        MacenkoNormalizer().transform(img)


@pytest.mark.parametrize("normaliser", [MacenkoNormalizer, ReinhardNormalizer])
def test_normalisation_removes_the_center_colour(normaliser):
    """The same tissue (same seed and u) stained by the four centers: the mean tissue colour
    differs by tens of intensity levels before normalisation and by a few after."""
    norm = normaliser().fit(render_slide(0.5, "A", np.random.default_rng(99), 256))
    imgs = [render_slide(0.5, c, np.random.default_rng(7), 256) for c in CENTERS]
    before = np.array([colour_statistics(im)[:3] for im in imgs])
    after = np.array([colour_statistics(norm.transform(im))[:3] for im in imgs])
    gap_before = np.ptp(before, axis=0).max()
    gap_after = np.ptp(after, axis=0).max()
    assert gap_before > 20
    assert gap_after < 0.15 * gap_before


def test_reinhard_matches_target_lab_statistics(small_cohort):
    from skimage.color import rgb2lab

    ref, img = small_cohort.slide(0), small_cohort.slide(1)
    rn = ReinhardNormalizer().fit(ref)
    lab_exact, tissue = rn.transform_lab(img)
    assert np.allclose(lab_exact[tissue].mean(0), rn.target_mean_, atol=1e-9)
    assert np.allclose(lab_exact[tissue].std(0), rn.target_std_, atol=1e-9)
    out = rn.transform(img)
    m = tissue_mask(img)
    lab = rgb2lab(out)[m]
    # after the round trip through uint8 RGB (this region stays inside the RGB gamut)
    assert np.allclose(lab.mean(0), rn.target_mean_, atol=1.0)
    assert np.allclose(lab.std(0), rn.target_std_, atol=1.0)
    assert np.array_equal(out[~m], img[~m])  # background untouched


# --- features ------------------------------------------------------------------------------
def test_tile_features_count_and_measure_nuclei():
    size, r = 64, 5
    conc = np.zeros((size, size, 2))
    conc[..., 1] = 0.6
    yy, xx = np.mgrid[0:size, 0:size]
    centres = [(12, 12), (12, 45), (45, 30)]
    for cy, cx in centres:
        conc[..., 0][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1.2
    tile = _beer_lambert(conc, REFERENCE_STAINS)
    f = dict(zip(TILE_FEATURES, tile_features(tile)[0]))
    disk = ((yy - 32) ** 2 + (xx - 32) ** 2 <= r * r).sum()
    assert f["tissue_fraction"] == 1.0
    assert f["nuclei_per_1000px"] == pytest.approx(1000 * 3 / size**2)
    assert f["nucleus_area_mean"] == disk and f["nucleus_area_sd"] == 0
    assert f["nuclear_fraction"] == pytest.approx(3 * disk / size**2)
    assert f["h_p99"] == pytest.approx(1.2, abs=0.02)
    assert f["e_mean"] == pytest.approx(0.6, abs=0.02)


def test_slide_tile_features_bag(small_cohort):
    img = small_cohort.slide(0)
    bag = slide_tile_features(img, MacenkoNormalizer().fit(img), tile_size=16)
    assert bag.features.shape == (len(bag.tiles), len(TILE_FEATURES))
    assert np.isfinite(bag.features).all()
    with pytest.raises(EmptyTileSetError):
        slide_tile_features(np.full((64, 64, 3), 255, np.uint8), tile_size=16)


# --- attention-MIL -------------------------------------------------------------------------
def _by_hand(model: GatedAttentionMIL, x: np.ndarray):
    p = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    h = np.maximum(x @ p["encoder.0.weight"].T + p["encoder.0.bias"], 0)
    g = np.tanh(h @ p["attention_V.weight"].T + p["attention_V.bias"])
    if model.gated:
        g = g / (1 + np.exp(-(h @ p["attention_U.weight"].T + p["attention_U.bias"])))
    s = (g @ p["attention_w.weight"].T + p["attention_w.bias"])[:, 0]
    a = np.exp(s - s.max())
    a /= a.sum()
    z = a @ h
    return z @ p["classifier.weight"].T + p["classifier.bias"], a


@pytest.mark.parametrize("gated", [True, False])
def test_mil_matches_a_by_hand_computation(gated):
    torch.manual_seed(0)
    model = GatedAttentionMIL(6, 3, hidden_dim=8, attention_dim=5, gated=gated).eval()
    x = np.random.default_rng(0).normal(size=(11, 6))
    out = model(torch.tensor(x, dtype=torch.float32))
    logits, att = _by_hand(model, x)
    assert np.allclose(out.logits.detach().numpy(), logits, atol=1e-5)
    assert np.allclose(out.attention.detach().numpy(), att, atol=1e-6)
    assert out.attention.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_mil_padding_permutation_and_mean_pool_limit():
    torch.manual_seed(1)
    model = GatedAttentionMIL(4, 2, hidden_dim=8, attention_dim=4).eval()
    rng = np.random.default_rng(1)
    bags = [rng.normal(size=(n, 4)) for n in (3, 7, 5)]
    x, mask = pad_bags(bags)
    batched = model(x, mask)
    for i, b in enumerate(bags):
        alone = model(torch.tensor(b, dtype=torch.float32))
        assert torch.allclose(batched.logits[i], alone.logits, atol=1e-6)
        assert torch.allclose(batched.attention[i, :len(b)], alone.attention, atol=1e-6)
        assert (batched.attention[i, len(b):] == 0).all()
    perm = torch.randperm(7)
    b = torch.tensor(bags[1], dtype=torch.float32)
    assert torch.allclose(model(b[perm]).logits, model(b).logits, atol=1e-6)
    assert torch.allclose(model(b[perm]).attention, model(b).attention[perm], atol=1e-6)
    with torch.no_grad():  # zero attention weights: uniform attention, i.e. mean pooling
        model.attention_w.weight.zero_()
    out = model(b)
    assert torch.allclose(out.attention, torch.full((7,), 1 / 7))
    assert torch.allclose(out.embedding, model.encoder(b).mean(0), atol=1e-6)


def test_mil_bad_input():
    model = GatedAttentionMIL(4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="empty bag"):
        model(torch.zeros(0, 4))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match="bag 1 is empty"):
        pad_bags([np.zeros((2, 4)), np.zeros((0, 4))])
    with pytest.raises(ValueError, match="one label per bag"):
        fit_mil([np.zeros((2, 4))], [0, 1])


def _toy_bags(n: int, seed: int):
    """Positive bags hold one tile whose first feature is large; negatives hold none."""
    rng = np.random.default_rng(seed)
    bags, y, where = [], [], []
    for i in range(n):
        b = rng.normal(size=(int(rng.integers(4, 10)), 3))
        label = i % 2
        k = int(rng.integers(len(b)))
        if label:
            b[k, 0] += 4.0
        bags.append(b)
        y.append(label)
        where.append(k)
    return bags, np.array(y), np.array(where)


def test_fit_mil_is_seeded_and_finds_the_key_tile():
    bags, y, where = _toy_bags(200, 0)
    a = fit_mil(bags, y, epochs=20, seed=5, hidden_dim=16, attention_dim=8)
    b = fit_mil(bags, y, epochs=20, seed=5, hidden_dim=16, attention_dim=8)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.history_ == b.history_ and a.history_[-1] < a.history_[0]
    test_bags, ty, twhere = _toy_bags(100, 1)
    probs, att = predict_mil(a, test_bags)
    # the reference: a threshold on the bag's largest first feature (the rule that made the
    # labels, noise aside), the threshold fitted on the training bags
    top, test_top = np.array([b[:, 0].max() for b in bags]), np.array([b[:, 0].max() for b in test_bags])
    cut = max(np.sort(top), key=lambda c: ((top > c) == y).mean())
    rule_acc = ((test_top > cut) == ty).mean()
    assert rule_acc > 0.85
    assert (probs.argmax(1) == ty).mean() > rule_acc - 0.1
    pos = np.flatnonzero(ty == 1)
    hit = np.mean([att[i].argmax() == twhere[i] for i in pos])
    assert hit > 0.9
    assert all(abs(w.sum() - 1) < 1e-5 for w in att)
