"""Attributions: image maps behind one interface, permutation importance, integrated gradients,
modality ablation. Taught in chapter 11 ("Interpretability").

* :func:`image_map` gathers Grad-CAM and attention rollout (built in chapters 2 and 4, in
  :mod:`oncolab.vision.gradcam`) behind one call.
* :func:`permutation_importance` (Breiman 2001; Fisher et al. 2019) by hand: the drop in a score
  when one column is shuffled. It draws its permutations exactly as
  ``sklearn.inspection.permutation_importance`` does, so for the same ``seed`` the two agree.
* :func:`integrated_gradients` (Sundararajan et al. 2017) by hand with a midpoint Riemann sum,
  for a fused model's dict of modality embeddings, of a class's logit or (``target="risk"``)
  of the risk head's log-hazard; :func:`integrated_gradients_captum` does the same through
  captum.
* :func:`modality_ablation` drops one modality at a time through the fusion model's presence
  mask and measures the change.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["image_map", "integrated_gradients", "integrated_gradients_captum", "modality_ablation",
           "permutation_importance"]

IMAGE_METHODS = ("gradcam", "rollout")


def image_map(model: nn.Module, x: torch.Tensor, method: str = "gradcam", target_layer: nn.Module | None = None,
              targets: int | Sequence[int] | None = None) -> np.ndarray:
    """Heatmaps (N, H, W) in [0, 1] for a batch of model inputs; chapter 11.

    ``method="gradcam"`` calls :func:`oncolab.vision.grad_cam` on ``target_layer`` (default the
    model's ``last_conv_layer``); ``"rollout"`` calls :func:`oncolab.vision.attention_rollout`
    (a :class:`~oncolab.vision.VisionTransformer`; rollout explains no particular class, so
    ``targets`` must be None).
    """
    from ..vision.gradcam import attention_rollout, grad_cam

    if method == "gradcam":
        layer = target_layer if target_layer is not None else getattr(model, "last_conv_layer", None)
        if layer is None:
            raise ValueError("method 'gradcam' needs a target_layer: this model has no last_conv_layer")
        return grad_cam(model, layer, x, targets)
    if method == "rollout":
        if targets is not None:
            raise ValueError(f"attention rollout is class-agnostic; targets must be None, got {targets!r}")
        return attention_rollout(model, x)
    raise ValueError(f"unknown method {method!r}; expected one of {IMAGE_METHODS}")


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (patients x features), got shape {X.shape}")
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} values")
    return X, y


def permutation_importance(score: Callable[[np.ndarray, np.ndarray], float], X, y, n_repeats: int = 5,
                           seed: int = 0, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Permutation importance by hand; chapter 11.

    ``score(X, y)`` returns a number where higher is better (e.g. a fitted model's AUC).
    For each column ``j`` and each of ``n_repeats`` repeats the column is shuffled and the
    score recomputed; the importance is ``baseline - permuted``. The permutations follow
    scikit-learn's recipe: one integer seed drawn from ``RandomState(seed)``, then per column a
    fresh ``RandomState`` from that integer shuffling one index array in place, repeat after
    repeat (each repeat permutes the already permuted column again). Returns one row per
    feature: ``importance_mean``, ``importance_std`` and ``rank`` (1 = most important), plus
    the raw ``importances`` (n_features, n_repeats) in ``df.attrs``.
    """
    X, y = _check_xy(X, y)
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}")
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} feature names for {X.shape[1]} columns")
    base = float(score(X, y))
    col_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    imp = np.empty((X.shape[1], n_repeats))
    for j in range(X.shape[1]):
        rs = np.random.RandomState(col_seed)
        Xp = X.copy()
        idx = np.arange(len(X))
        for r in range(n_repeats):
            rs.shuffle(idx)
            Xp[:, j] = Xp[idx, j]
            imp[j, r] = base - float(score(Xp, y))
    df = pd.DataFrame({"importance_mean": imp.mean(1), "importance_std": imp.std(1)}, index=pd.Index(names, name="feature"))
    df["rank"] = df["importance_mean"].rank(ascending=False, method="min").astype(int)
    df.attrs["importances"] = imp
    df.attrs["baseline"] = base
    return df


# ---------------------------------------------------------------------------------------------
# integrated gradients for a fused model: inputs are {modality: (n, d)} plus a presence mask
# ---------------------------------------------------------------------------------------------
class _TupleForward(nn.Module):
    """Wrap a :class:`~oncolab.fusion.MultimodalModel` so that it takes a tuple of tensors
    (one per modality, in ``order``) and the mask, and returns the diagnosis logits (or, with
    ``risk=True``, the risk, one number per patient)."""

    def __init__(self, model: nn.Module, order: Sequence[str], risk: bool = False):
        super().__init__()
        self.model, self.order, self.risk = model, list(order), risk

    def forward(self, *args):
        *xs, mask = args
        out = self.model(dict(zip(self.order, xs)), mask)
        return out.risk if self.risk else out.logits


def _target(target, n: int) -> torch.Tensor | None:
    """None for ``target="risk"``; else one class index per patient (an int is broadcast)."""
    if isinstance(target, str):
        if target != "risk":
            raise ValueError(f"target must be a class index, one per patient, or 'risk'; got {target!r}")
        return None
    return torch.as_tensor(np.broadcast_to(np.asarray(target), (n,)).copy(), dtype=torch.long)


def _explained(out, tgt: torch.Tensor | None) -> torch.Tensor:
    """The output being explained, one number per patient: the target class's logit, or the risk."""
    return out.risk if tgt is None else out.logits.gather(1, tgt.view(-1, 1))[:, 0]


def _ig_inputs(model, X: dict, mask, baseline: dict | None):
    from ..fusion.train import to_tensors

    xt, mt = to_tensors(X, mask)
    order = list(getattr(model.fusion, "modalities", xt.keys()))
    missing = [m for m in order if m not in xt]
    if missing:
        raise ValueError(f"X lacks the model's modalities {missing}; it has {sorted(xt)}")
    if baseline is None:
        base = {m: torch.zeros_like(xt[m]) for m in order}
    else:
        base, _ = to_tensors({m: np.broadcast_to(np.asarray(baseline[m]), xt[m].shape) for m in order},
                             np.asarray(mask))
    return xt, mt, base, order


def integrated_gradients(model: nn.Module, X: dict, mask, target, baseline: dict | None = None,
                         steps: int = 50) -> dict[str, np.ndarray]:
    """Integrated gradients by hand (midpoint Riemann sum); chapter 11.

    ``IG_i = (x_i - x'_i) * mean_k dF(x' + a_k (x - x')) / dx_i`` with ``a_k = (k + 1/2)/steps``,
    ``x'`` the ``baseline`` (zeros by default: the embeddings are standardised, so zero is the
    average patient), and ``F`` the output explained: the logit of class ``target``, or with
    ``target="risk"`` the risk head's output (the log-hazard of the Cox head, chapter 9), which
    says what pushed a patient's risk up or down. Completeness: the attributions sum over all
    inputs to ``F(x) - F(x')`` up to the Riemann error.

    Parameters
    ----------
    model : MultimodalModel
        A fused model (:mod:`oncolab.fusion`).
    X : dict
        ``{modality: (n, d) array}``, the model's inputs.
    mask : array (n, M)
        Presence of each modality.
    target : int, array of int, or "risk"
        A class for every patient, one class per patient, or the risk output.
    baseline : dict, optional
        ``{modality: array}`` broadcast to the inputs' shapes (default zeros).
    steps : int
        Riemann steps.

    Returns
    -------
    dict
        ``{modality: (n, d) attributions}``.
    """
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    xt, mt, base, order = _ig_inputs(model, X, mask, baseline)
    n = len(mt)
    tgt = _target(target, n)
    was = model.training
    model.eval()
    grads = {m: torch.zeros_like(xt[m]) for m in order}
    try:
        with torch.enable_grad():
            for k in range(steps):
                a = (k + 0.5) / steps
                pts = {m: (base[m] + a * (xt[m] - base[m])).requires_grad_(True) for m in order}
                out = _explained(model(pts, mt), tgt).sum()
                g = torch.autograd.grad(out, [pts[m] for m in order])
                for m, gm in zip(order, g):
                    grads[m] += gm
    finally:
        model.train(was)
    return {m: ((xt[m] - base[m]) * grads[m] / steps).detach().numpy().astype(np.float64) for m in order}


def integrated_gradients_captum(model: nn.Module, X: dict, mask, target, baseline: dict | None = None,
                                steps: int = 50, method: str = "riemann_middle") -> dict[str, np.ndarray]:
    """The same attributions through ``captum.attr.IntegratedGradients``; chapter 11.

    Parameters
    ----------
    model, X, mask, target, baseline, steps
        As in :func:`integrated_gradients` (``target="risk"`` explains the risk output).
    method : str
        captum's integration rule (``"riemann_middle"`` is the midpoint rule of ours).

    Returns
    -------
    dict
        ``{modality: (n, d) attributions}``.
    """
    from captum.attr import IntegratedGradients

    xt, mt, base, order = _ig_inputs(model, X, mask, baseline)
    n = len(mt)
    tgt = _target(target, n)
    was = model.training
    model.eval()
    try:
        ig = IntegratedGradients(_TupleForward(model, order, risk=tgt is None))
        attr = ig.attribute(tuple(xt[m] for m in order), baselines=tuple(base[m] for m in order),
                            target=tgt, additional_forward_args=(mt,), n_steps=int(steps), method=method)
    finally:
        model.train(was)
    return {m: a.detach().numpy().astype(np.float64) for m, a in zip(order, attr)}


def modality_ablation(model: nn.Module, X: dict, mask, y=None, metric: Callable | None = None) -> pd.DataFrame:
    """Drop one modality at a time through the presence mask and measure the change; chapter 11.

    For each modality ``m`` the column of ``m`` in ``mask`` is set False for every patient
    (patients left with no modality keep theirs, and are counted in ``n_unchanged``). Reported
    per modality: the mean absolute change in the predicted class probabilities, the share of
    patients whose predicted class changes, and, with ``y`` and ``metric(y, proba)`` (higher is
    better), the metric with the modality and without it.
    """
    from ..fusion.train import predict_model

    mask = np.asarray(mask, bool)
    order = list(getattr(model.fusion, "modalities", X.keys()))
    if mask.ndim != 2 or mask.shape[1] != len(order):
        raise ValueError(f"mask must be (n, {len(order)}) for modalities {order}, got shape {mask.shape}")
    full = predict_model(model, X, mask)["proba"]
    rows = []
    for j, m in enumerate(order):
        mk = mask.copy()
        mk[:, j] = False
        stuck = ~mk.any(1)
        mk[stuck] = mask[stuck]
        p = predict_model(model, X, mk)["proba"]
        row = {"modality": m, "present": int(mask[:, j].sum()),
               "mean_abs_change": float(np.abs(p - full).sum(1).mean() / 2),
               "class_changed": float((p.argmax(1) != full.argmax(1)).mean()), "n_unchanged": int(stuck.sum())}
        if y is not None and metric is not None:
            row["metric_all"] = float(metric(np.asarray(y), full))
            row["metric_without"] = float(metric(np.asarray(y), p))
            row["metric_drop"] = row["metric_all"] - row["metric_without"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("modality")
