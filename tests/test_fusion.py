"""oncolab.fusion: the six strategies, masks, modality dropout, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oncolab.fusion import FUSIONS, make_fusion, modality_dropout, predict_model, train_model
from oncolab.metrics import point_metrics

DIMS = {"a": 3, "b": 4, "c": 2}


def _data(n=120, seed=0):
    r = np.random.default_rng(seed)
    latent = r.normal(size=n)
    X = {m: latent[:, None] * r.uniform(0.5, 1, d) + r.normal(0, 0.7, (n, d)) for m, d in DIMS.items()}
    y = np.digitize(latent, [-0.5, 0.5])
    time = r.exponential(np.exp(-latent))
    event = r.random(n) < 0.7
    return X, np.ones((n, 3), bool), y, time, event


@pytest.mark.parametrize("name", list(FUSIONS))
def test_each_fusion_learns_and_ignores_masked_inputs(name):
    X, mask, y, t, e = _data()
    model = make_fusion(name, DIMS, seed=1, hidden=16)
    res = train_model(model, X, mask, y, t, e, epochs=120, lr=1e-2, seed=0)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    mask2 = mask.copy()
    mask2[:, 1] = False
    out1 = predict_model(model, X, mask2)
    X2 = dict(X)
    X2["b"] = X["b"] + 100.0  # a masked modality's values must not matter
    out2 = predict_model(model, X2, mask2)
    np.testing.assert_allclose(out1["proba"], out2["proba"], atol=1e-5)
    np.testing.assert_allclose(out1["risk"], out2["risk"], atol=1e-4)
    if "weights" in out1:
        np.testing.assert_allclose(out1["weights"].sum(1), 1, atol=1e-5)
        assert np.all(out1["weights"][:, 1] < 1e-6)
    auc = point_metrics(y, predict_model(model, X, mask)["proba"])["macro_auc"]
    assert auc > 0.75


def test_late_fusion_is_the_mean_of_per_modality_heads():
    X, mask, *_ = _data(10)
    model = make_fusion("late", DIMS, seed=0).eval()
    xt = {m: torch.as_tensor(v, dtype=torch.float32) for m, v in X.items()}
    out = model(xt, torch.as_tensor(mask))
    f = model.fusion
    by_hand = torch.stack([f.heads[m](f.proj[m](xt[m])) for m in DIMS], 0).mean(0)
    torch.testing.assert_close(out.logits, by_hand[:, :3])


def test_same_seed_same_weights_and_predictions():
    X, mask, y, t, e = _data()
    outs = []
    for _ in range(2):
        m = make_fusion("attention", DIMS, seed=3)
        train_model(m, X, mask, y, t, e, epochs=20, p_modality_dropout=0.3, seed=4)
        outs.append(predict_model(m, X, mask)["proba"])
    np.testing.assert_array_equal(outs[0], outs[1])


def test_modality_dropout_keeps_one_and_respects_absent():
    mask = torch.tensor([[True, False, True]] * 500)
    g = torch.Generator().manual_seed(0)
    new = modality_dropout(mask, 0.9, g)
    assert new.any(1).all()
    assert not new[:, 1].any()
    assert 0.3 < new.float().mean().item() < 0.5
    with pytest.raises(ValueError, match="dropout"):
        modality_dropout(mask, 1.0)


def test_bad_inputs_raise_clear_errors():
    X, mask, y, t, e = _data(20)
    with pytest.raises(ValueError, match="unknown fusion"):
        make_fusion("magic", DIMS)
    m = make_fusion("early", DIMS)
    bad = dict(X)
    del bad["c"]
    with pytest.raises(ValueError, match="'c'"):
        predict_model(m, bad, mask)
    empty = mask.copy()
    empty[3] = False
    with pytest.raises(ValueError, match="row 3"):
        predict_model(m, X, empty)
    X["a"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        predict_model(m, X, mask)


def test_early_stopping_keeps_the_epoch_with_the_lowest_validation_loss():
    import torch.nn.functional as F

    from oncolab.survival import cox_ph_loss

    X, mask, y, t, e = _data(80, seed=3)
    Xv, mv, yv, tv, ev = _data(200, seed=4)
    model = make_fusion("attention", DIMS, seed=0, hidden=32)
    res = train_model(model, X, mask, y, t, e, epochs=400, lr=3e-2, val=(Xv, mv, yv, tv, ev), patience=20, seed=0)
    rec = res.history[0]
    assert {"train_loss", "train_ce", "train_cox", "val_loss", "val_ce", "val_cox"} <= set(rec)
    assert rec["train_loss"] == pytest.approx(rec["train_ce"] + rec["train_cox"], rel=1e-6)
    val = [r["val_loss"] for r in res.history]
    assert res.stopped_early and len(val) == res.best_epoch + 21 and val[res.best_epoch] == min(val)
    # the model holds the best epoch's weights: its validation loss, recomputed by hand
    out = predict_model(model, Xv, mv)
    ce = F.nll_loss(torch.log(torch.as_tensor(out["proba"])), torch.as_tensor(yv))
    cox = cox_ph_loss(torch.as_tensor(out["risk"]), tv, ev)
    assert float(ce + cox) == pytest.approx(val[res.best_epoch], rel=1e-4)
