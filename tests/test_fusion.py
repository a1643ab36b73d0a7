"""oncolab.fusion: the seven strategies, masks, modality dropout, training, the classical classifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from oncolab.fusion import (
    FUSIONS,
    KernelSVM,
    RandomForest,
    make_fusion,
    modality_dropout,
    predict_model,
    train_model,
)
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


def test_hybrid_fusion_is_the_mean_of_the_early_group_and_the_late_heads():
    X, mask, *_ = _data(10)
    model = make_fusion("hybrid", DIMS, seed=0, late=("a",)).eval()
    f = model.fusion
    assert f.early == ("b", "c") and f.late == ("a",) and model.diagnosis is None
    xt = {m: torch.as_tensor(v, dtype=torch.float32) for m, v in X.items()}

    def early(mk):
        hb, hc = f.proj["b"](xt["b"]) * mk[:, 1:2], f.proj["c"](xt["c"]) * mk[:, 2:3]
        return f.early_head(torch.cat([hb, hc, mk[:, 1:].float()], 1))

    late_a = f.heads["a"](f.proj["a"](xt["a"]))
    m = torch.as_tensor(mask)
    out = model(xt, m)
    torch.testing.assert_close(out.logits, ((early(m) + late_a) / 2)[:, :3])
    torch.testing.assert_close(out.risk, ((early(m) + late_a) / 2)[:, 3])
    # patients 0-4 lack the image modality a: the early group alone; 5-9 lack the whole group: a alone
    m2 = m.clone()
    m2[:5, 0] = False
    m2[5:, 1:] = False
    out = model(xt, m2)
    torch.testing.assert_close(out.logits[:5], early(m2)[:5, :3])
    torch.testing.assert_close(out.logits[5:], late_a[5:, :3])
    # one modality of the group absent: its values do not matter, its presence bit says so
    m3 = m.clone()
    m3[:, 2] = False
    x3 = dict(xt, c=xt["c"] + 50.0)
    torch.testing.assert_close(model(x3, m3).logits, model(xt, m3).logits)
    assert not torch.allclose(model(xt, m3).logits, model(xt, m).logits)


def test_hybrid_fusion_defaults_to_heads_for_the_images():
    dims = {"radiograph": 3, "pathology": 3, "labs": 4, "symptoms": 8}
    f = make_fusion("hybrid", dims).fusion
    assert f.late == ("radiograph", "pathology") and f.early == ("labs", "symptoms")
    only_images = make_fusion("hybrid", {"radiograph": 3, "pathology": 3}).fusion
    assert only_images.early == () and only_images.early_head is None
    with pytest.raises(TypeError, match="not one string"):
        make_fusion("hybrid", dims, late="radiograph")


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


# --------------------------------------------------------------------------------------------
# the classical classifiers: predictions from their arrays equal scikit-learn's
# --------------------------------------------------------------------------------------------
def _table(n=300, d=10, seed=0):
    r = np.random.default_rng(seed)
    latent = r.normal(size=n)
    X = latent[:, None] * r.uniform(0.3, 1, d) + r.normal(0, 1, (n, d))
    return X, np.digitize(latent, [-0.5, 0.5])


def test_random_forest_from_arrays_equals_scikit_learn(tmp_path):
    from safetensors.numpy import load_file, save_file
    from sklearn.ensemble import RandomForestClassifier

    X, y = _table()
    rf = RandomForest(n_trees=50, seed=3).fit(X[:200], y[:200])
    ref = RandomForestClassifier(50, min_samples_leaf=3, max_features="sqrt", random_state=3).fit(X[:200], y[:200])
    np.testing.assert_allclose(rf.predict_proba(X[200:]), ref.predict_proba(X[200:]), atol=1e-12)
    config, arrays = rf.state()
    save_file(arrays, str(tmp_path / "rf.safetensors"))
    back = RandomForest.from_state(json.loads(json.dumps(config)), load_file(str(tmp_path / "rf.safetensors")))
    np.testing.assert_array_equal(back.predict_proba(X[200:]), rf.predict_proba(X[200:]))
    # a class absent from the training patients gets probability 0 in its own column
    p = RandomForest(n_trees=10).fit(X[:200][y[:200] != 1], y[:200][y[:200] != 1], n_classes=3).predict_proba(X)
    assert p.shape == (300, 3) and np.all(p[:, 1] == 0) and np.allclose(p.sum(1), 1)
    assert point_metrics(y[200:], rf.predict_proba(X[200:]))["macro_auc"] > 0.8


def test_kernel_svm_decisions_from_arrays_equal_scikit_learn():
    from sklearn.svm import SVC

    X, y = _table()
    svm = KernelSVM(seed=0).fit(X[:200], y[:200])
    a = svm.arrays_
    Xs = (X - a["mean"]) / a["scale"]
    ref = SVC(C=1.0, gamma=float(a["gamma"][0]), decision_function_shape="ovo").fit(Xs[:200], y[:200])
    np.testing.assert_allclose(KernelSVM.pair_decisions(Xs[200:], a), ref.decision_function(Xs[200:]), atol=1e-9)
    p = svm.predict_proba(X[200:])
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-12)
    assert point_metrics(y[200:], p)["macro_auc"] > 0.8
    back = KernelSVM.from_state(*svm.state())
    np.testing.assert_array_equal(back.predict_proba(X[200:]), p)
    # two classes: the one decision value is scikit-learn's binary decision function
    yb = (y > 0).astype(int)
    two = KernelSVM().fit(X[:200], yb[:200])
    b = two.arrays_
    Xb = (X - b["mean"]) / b["scale"]
    refb = SVC(C=1.0, gamma=float(b["gamma"][0])).fit(Xb[:200], yb[:200])
    np.testing.assert_allclose(KernelSVM.pair_decisions(Xb[200:], b)[:, 0], refb.decision_function(Xb[200:]),
                               atol=1e-9)
    assert two.predict_proba(X[200:]).shape == (100, 2)


def test_classical_classifiers_check_their_input():
    X, y = _table(40)
    with pytest.raises(RuntimeError, match="not fitted"):
        RandomForest().predict_proba(X)
    with pytest.raises(ValueError, match="finite"):
        RandomForest(n_trees=5).fit(np.where(X > 2, np.nan, X), y)
    rf = RandomForest(n_trees=5).fit(X, y)
    with pytest.raises(ValueError, match="has 3 features; the model was fitted on 10"):
        rf.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match="at least two classes"):
        KernelSVM().fit(X, np.zeros(40, int))
    with pytest.raises(ValueError, match="n_trees"):
        RandomForest(n_trees=0)
    with pytest.raises(ValueError, match="C must be"):
        KernelSVM(C=-1)
