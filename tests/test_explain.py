"""oncolab.explain: permutation importance against scikit-learn, integrated gradients (of a class
and of the risk) against captum and against closed forms, the randomisation test (which must fail for an explainer that ignores the model),
deletion curves, truth ranks, modality ablation and records."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from oncolab.explain import (
    ExplanationRecord,
    deletion_curve,
    explanation_records,
    image_map,
    integrated_gradients,
    integrated_gradients_captum,
    modality_ablation,
    permutation_importance,
    randomisation_test,
    truth_ranks,
)
from oncolab.fusion import make_fusion, train_model


def _tabular(n=200, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("seed", [0, 7])
def test_permutation_importance_equals_sklearn(seed):
    X, y = _tabular()
    clf = LogisticRegression().fit(X, y)
    ours = permutation_importance(lambda A, b: roc_auc_score(b, clf.predict_proba(A)[:, 1]), X, y,
                                  n_repeats=4, seed=seed)
    sk = sk_permutation_importance(clf, X, y, scoring="roc_auc", n_repeats=4, random_state=seed)
    np.testing.assert_allclose(ours.attrs["importances"], sk.importances, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["importance_mean"], sk.importances_mean, atol=1e-12)
    # the informative columns come first, the noise columns are near zero
    assert set(ours.sort_values("rank").index[:2]) == {"x0", "x1"}
    assert ours.loc["x5", "importance_mean"] < 0.05


def test_permutation_importance_bad_input():
    X, y = _tabular(20)
    with pytest.raises(ValueError, match="n_repeats"):
        permutation_importance(lambda A, b: 0.0, X, y, n_repeats=0)
    with pytest.raises(ValueError, match="rows"):
        permutation_importance(lambda A, b: 0.0, X, y[:5])


def _fused(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = {"labs": rng.normal(size=(n, 4)) + y[:, None] * np.array([1.0, 0, 0, 0]),
         "genes": rng.normal(size=(n, 5)) + y[:, None] * np.array([0, 0.8, 0, 0, 0])}
    mask = np.ones((n, 2), bool)
    mask[:10, 1] = False
    model = make_fusion("attention", {"labs": 4, "genes": 5}, seed=seed, hidden=8)
    train_model(model, X, mask, y, rng.exponential(10, n), rng.random(n) < 0.5, task="diagnosis", epochs=60,
                seed=seed)
    return model, X, mask, y


def test_integrated_gradients_matches_captum_and_completeness():
    model, X, mask, y = _fused()
    ours = integrated_gradients(model, X, mask, target=2, steps=32)
    cap = integrated_gradients_captum(model, X, mask, target=2, steps=32)
    for m in ours:
        np.testing.assert_allclose(ours[m], cap[m], atol=1e-5)
    # completeness: attributions sum to F(x) - F(baseline), up to the Riemann error
    xt = {m: torch.as_tensor(v, dtype=torch.float32) for m, v in X.items()}
    mt = torch.as_tensor(mask)
    with torch.no_grad():
        diff = (model(xt, mt).logits[:, 2] - model({m: torch.zeros_like(v) for m, v in xt.items()}, mt).logits[:, 2])
    total = sum(a.sum(1) for a in ours.values())
    assert np.abs(total - diff.numpy()).max() < 0.05 * (np.abs(diff.numpy()).max() + 1e-3)


def _fused_survival(seed=0, n=120):
    """A fused model trained on diagnosis and survival (its risk head learnt from the first lab)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = {"labs": rng.normal(size=(n, 4)), "genes": rng.normal(size=(n, 5)) + y[:, None] * np.array([0, 0.8, 0, 0, 0])}
    time = rng.exponential(np.exp(-1.2 * X["labs"][:, 0]) * 10)
    mask = np.ones((n, 2), bool)
    mask[:10, 1] = False
    model = make_fusion("attention", {"labs": 4, "genes": 5}, seed=seed, hidden=8)
    train_model(model, X, mask, y, time, np.ones(n, bool), task="multitask", epochs=80, seed=seed)
    return model, X, mask


def test_integrated_gradients_of_the_risk_match_captum_and_completeness():
    model, X, mask = _fused_survival()
    ours = integrated_gradients(model, X, mask, target="risk", steps=32)
    cap = integrated_gradients_captum(model, X, mask, target="risk", steps=32)
    for m in ours:
        np.testing.assert_allclose(ours[m], cap[m], atol=1e-5)
    xt = {m: torch.as_tensor(v, dtype=torch.float32) for m, v in X.items()}
    mt = torch.as_tensor(mask)
    with torch.no_grad():
        diff = (model(xt, mt).risk - model({m: torch.zeros_like(v) for m, v in xt.items()}, mt).risk).numpy()
    total = sum(a.sum(1) for a in ours.values())
    assert np.abs(total - diff).max() < 0.05 * (np.abs(diff).max() + 1e-3)
    # the risk was learnt from the first lab: it carries the largest attribution
    share = np.abs(ours["labs"]).mean(0)
    assert share.argmax() == 0 and share[0] > np.abs(ours["genes"]).mean(0).max()
    # the diagnosis attribution is another quantity
    assert not np.allclose(integrated_gradients(model, X, mask, target=0, steps=8)["labs"],
                           integrated_gradients(model, X, mask, target="risk", steps=8)["labs"])
    with pytest.raises(ValueError, match="risk"):
        integrated_gradients(model, X, mask, target="hazard")


class _PolyModel(torch.nn.Module):
    """A stand-in for a fused model whose outputs integrate in closed form: class 0's logit is linear,
    class 1's is the sum of squares of modality ``a``, and the risk is linear in ``a`` plus the sum
    of squares of ``b``."""

    def __init__(self):
        super().__init__()
        from types import SimpleNamespace

        self.fusion = SimpleNamespace(modalities=["a", "b"])
        self.wa = torch.tensor([0.5, -2.0, 1.5])
        self.wb = torch.tensor([1.0, 0.25])

    def forward(self, X, mask):
        from types import SimpleNamespace

        a, b = X["a"], X["b"]
        logits = torch.stack([a @ self.wa + b @ self.wb, (a ** 2).sum(1)], 1)
        return SimpleNamespace(logits=logits, risk=a @ self.wa + (b ** 2).sum(1))


@pytest.mark.parametrize("steps", [1, 3, 16])
def test_integrated_gradients_are_exact_for_linear_and_quadratic_outputs(steps):
    # the midpoint rule integrates a gradient that is linear along the path exactly, at any number of
    # steps: IG = w (x - x') for a linear output and x^2 - x'^2 for a square (a left or right Riemann
    # sum would miss the square by (x - x')^2 / steps)
    rng = np.random.default_rng(0)
    X = {"a": rng.normal(size=(7, 3)), "b": rng.normal(size=(7, 2))}
    base = {"a": rng.normal(size=3), "b": rng.normal(size=2)}
    mask = np.ones((7, 2), bool)
    model = _PolyModel()
    wa, wb = model.wa.numpy().astype(float), model.wb.numpy().astype(float)
    # captum asks for at least two steps
    for fn in (integrated_gradients, integrated_gradients_captum) if steps > 1 else (integrated_gradients,):
        lin = fn(model, X, mask, 0, baseline=base, steps=steps)
        np.testing.assert_allclose(lin["a"], (X["a"] - base["a"]) * wa, atol=1e-5)
        np.testing.assert_allclose(lin["b"], (X["b"] - base["b"]) * wb, atol=1e-5)
        sq = fn(model, X, mask, np.ones(7, int), baseline=base, steps=steps)
        np.testing.assert_allclose(sq["a"], X["a"] ** 2 - base["a"] ** 2, atol=1e-5)
        np.testing.assert_allclose(sq["b"], 0.0, atol=1e-7)
        risk = fn(model, X, mask, "risk", baseline=base, steps=steps)
        np.testing.assert_allclose(risk["a"], (X["a"] - base["a"]) * wa, atol=1e-5)
        np.testing.assert_allclose(risk["b"], X["b"] ** 2 - base["b"] ** 2, atol=1e-5)
    # the zero baseline by default
    zero = integrated_gradients(model, X, mask, "risk", steps=steps)
    np.testing.assert_allclose(zero["b"], X["b"] ** 2, atol=1e-5)


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_integrated_gradients_refuse_bad_steps(steps):
    model = _PolyModel()
    X = {"a": np.zeros((2, 3)), "b": np.zeros((2, 2))}
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        integrated_gradients(model, X, np.ones((2, 2), bool), 0, steps=steps)


def test_integrated_gradients_name_a_missing_modality():
    with pytest.raises(ValueError, match=r"lacks the model's modalities \['b'\]"):
        integrated_gradients(_PolyModel(), {"a": np.zeros((2, 3))}, np.ones((2, 2), bool), 0)


def test_records_of_the_risk_alone():
    model, X, mask = _fused_survival()
    att = integrated_gradients(model, X, mask, target="risk", steps=8)
    risk = np.linspace(-1, 1, len(mask))
    recs = explanation_records([f"P{i}" for i in range(len(mask))], None, None, mask, [], top_k=2, risk=risk,
                               risk_attributions=att)
    assert recs[0].predicted is None and recs[0].probabilities == {} and recs[0].modality_contributions == {}
    assert recs[0].risk == pytest.approx(-1) and recs[0].risk_contributions["genes"] == 0.0
    assert abs(sum(recs[20].risk_contributions.values()) - 1) < 1e-9
    top = recs[20].risk_top_features
    flat = [v for m in att for v in att[m][20]]
    assert len(top) == 2 and abs(top[0][1]) == pytest.approx(max(np.abs(flat)))
    with pytest.raises(ValueError, match="nothing to explain"):
        explanation_records(["P0"], None, None, mask[:1], [])
    with pytest.raises(ValueError, match="risk_attributions"):
        explanation_records(["P0"], None, None, mask[:1], [], risk=risk[:1])


def test_modality_ablation_and_records():
    model, X, mask, y = _fused()
    tab = modality_ablation(model, X, mask, y, metric=lambda yy, p: roc_auc_score(yy, p, multi_class="ovr"))
    assert list(tab.index) == ["labs", "genes"]
    assert (tab["mean_abs_change"] > 0).all() and (tab["metric_drop"] > -1).all()
    assert tab.loc["genes", "n_unchanged"] == 0 and tab.loc["labs", "n_unchanged"] == 10
    att = integrated_gradients(model, X, mask, target=2, steps=8)
    proba = np.full((len(y), 3), 1 / 3)
    recs = explanation_records([f"P{i}" for i in range(len(y))], proba, att, mask, ["b", "i", "m"], top_k=2)
    assert isinstance(recs[0], ExplanationRecord) and len(recs[0].top_features) == 2
    assert recs[0].modality_contributions["genes"] == 0.0 and "genes not acquired" in recs[0].notes
    assert abs(sum(recs[20].modality_contributions.values()) - 1) < 1e-9
    assert '"patient_id": "P0"' in recs[0].to_json()


def _cnn():
    from oncolab.vision import SmallCNN

    torch.manual_seed(0)
    return SmallCNN(in_chans=1, num_classes=3)


def test_randomisation_test_fails_for_an_explainer_that_ignores_the_model():
    model = _cnn()
    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    # a fake explainer: image brightness, whatever the model is (an edge detector would do the same)
    fake = randomisation_test(lambda m: x[:, 0].numpy().copy(), model)
    assert fake["median_similarity"] == pytest.approx(1.0)
    assert not fake["passed"]
    # Grad-CAM depends on the weights, so its maps change when they are randomised
    real = randomisation_test(lambda m: image_map(m, x, "gradcam", targets=0), model)
    assert real["median_similarity"] < fake["median_similarity"]
    assert real["passed"] and real["flat_after_randomisation"] < 6
    assert real["similarity"].shape == (6,)


def test_randomise_weights_is_seeded_and_changes_every_layer():
    from oncolab.explain import randomise_weights

    model = _cnn()
    a, b, c = randomise_weights(model, 1), randomise_weights(model, 1), randomise_weights(model, 2)
    pa, pb, pc, p0 = (list(m.parameters()) for m in (a, b, c, model))
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc))
    # every weight tensor that is not constant at initialisation (BN scale 1, bias 0) is redrawn
    assert all(not torch.equal(x, y) for x, y in zip(pa, p0) if x.ndim > 1)


def test_deletion_curve_orders():
    w = np.array([3.0, 2.0, 1.0, 0.0, 0.0])
    x = np.ones((4, 5))
    score = lambda A: A @ w  # noqa: E731
    good = deletion_curve(score, x, x * w, steps=5)
    rand = deletion_curve(score, x, x * w, steps=5, seed=0)
    assert good["score"].iloc[0] == 6.0 and good["score"].iloc[-1] == 0.0
    assert good.attrs["auc"] < rand.attrs["auc"]
    with pytest.raises(ValueError, match="of one shape"):
        deletion_curve(score, x, x[:, :3])


def test_truth_ranks():
    imp = pd.Series([0.9, 0.1, 0.5, 0.0], index=["a", "b", "c", "d"])
    r = truth_ranks(imp, ["a", "c"])
    assert r["rank"].tolist() == [1, 2] and r.attrs["precision_at_k"] == 1.0 and r.attrs["chance"] == 0.5
    with pytest.raises(ValueError, match="not in the importance"):
        truth_ranks(imp, ["zz"])


def test_image_map_bad_method():
    with pytest.raises(ValueError, match="unknown method"):
        image_map(_cnn(), torch.zeros(1, 1, 16, 16), "lime")
