"""oncolab.fusion: the six strategies, masks, modality dropout, training, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oncolab.fusion import (
    FUSIONS,
    bootstrap_metrics,
    make_fusion,
    modality_dropout,
    point_metrics,
    predict_model,
    train_model,
)

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


def test_metrics_against_sklearn_and_survival():
    from sklearn.metrics import f1_score, roc_auc_score
    from sksurv.metrics import concordance_index_censored

    X, mask, y, t, e = _data(200, seed=2)
    p = np.random.default_rng(0).dirichlet([1, 1, 1], len(y))
    risk = np.random.default_rng(1).normal(size=len(y))
    pm = point_metrics(y, p, t, e, risk)
    assert pm["macro_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert pm["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    assert pm["c_index"] == pytest.approx(concordance_index_censored(e, t, risk)[0])
    tab = bootstrap_metrics(y, p, t, e, risk, n_boot=50, seed=0)
    assert (tab["ci_low"] <= tab["value"]).all() and (tab["value"] <= tab["ci_high"]).all()
    tab2 = bootstrap_metrics(y, p, t, e, risk, n_boot=50, seed=0)
    assert tab.equals(tab2)
