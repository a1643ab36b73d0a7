"""Per-patient explanation records, the form a report reads; chapter 11."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["ExplanationRecord", "explanation_records"]


@dataclass
class ExplanationRecord:
    """What explains one patient's prediction: the diagnosis, the risk, or both.

    ``predicted`` and ``probabilities``: the predicted class and the class probabilities (None
    and empty for a model without a diagnosis head); ``modality_contributions``: modality ->
    share of the integrated-gradients attribution of the predicted class (absolute values,
    summing to 1 over present modalities); ``top_features``: its largest attributions as
    ``(name, value)``; ``risk``, ``risk_contributions`` and ``risk_top_features``: the same for
    the risk output (None and empty for a model without a risk head); ``lesion_hit``: whether
    the image map's maximum lies on the lesion (None when unknown).
    """

    patient_id: str
    predicted: str | None
    probabilities: dict[str, float]
    modality_contributions: dict[str, float] = field(default_factory=dict)
    top_features: list[tuple[str, float]] = field(default_factory=list)
    lesion_hit: bool | None = None
    notes: list[str] = field(default_factory=list)
    risk: float | None = None
    risk_contributions: dict[str, float] = field(default_factory=dict)
    risk_top_features: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The record as a dict of JSON-able values."""
        return asdict(self)

    def to_json(self) -> str:
        """The record as a JSON string."""
        return json.dumps(self.to_dict())


def _shares(att: dict[str, np.ndarray], present: np.ndarray, i: int) -> dict[str, float]:
    tot = {m: float(np.abs(a[i]).sum()) if present[j] else 0.0 for j, (m, a) in enumerate(att.items())}
    s = sum(tot.values())
    return {m: (v / s if s > 0 else 0.0) for m, v in tot.items()}


def _top(att: dict[str, np.ndarray], present: np.ndarray, i: int, names: dict, top_k: int) -> list[tuple[str, float]]:
    feats = []
    for j, (m, a) in enumerate(att.items()):
        if not present[j]:
            continue
        nm = names.get(m) or [f"{m}[{k}]" for k in range(a.shape[1])]
        feats += [(nm[k], float(a[i, k])) for k in range(a.shape[1])]
    feats.sort(key=lambda t: -abs(t[1]))
    return feats[:top_k]


def explanation_records(ids, proba, attributions: dict[str, np.ndarray] | None, mask, classes,
                        feature_names: dict[str, list[str]] | None = None, top_k: int = 3,
                        lesion_hits=None, risk=None,
                        risk_attributions: dict[str, np.ndarray] | None = None) -> list[ExplanationRecord]:
    """One :class:`ExplanationRecord` per patient from the fused model's outputs; chapter 11.

    Parameters
    ----------
    ids : sequence
        Patient identifiers.
    proba : array (n, K) or None
        Class probabilities (None for a model without a diagnosis head).
    attributions : dict or None
        :func:`~oncolab.explain.integrated_gradients` of the predicted class
        (``{modality: (n, d)}``); None with ``proba``.
    mask : array (n, M)
        Presence mask, in the attributions' modality order.
    classes : sequence of str
        Class names (empty without a diagnosis head).
    feature_names : dict, optional
        ``{modality: [name per column]}``.
    top_k : int
        How many of the largest attributions each record lists.
    lesion_hits : sequence of bool, optional
        Whether each patient's image map hit the lesion.
    risk : array (n,), optional
        The risk output (a model with a risk head).
    risk_attributions : dict, optional
        :func:`~oncolab.explain.integrated_gradients` with ``target="risk"``.

    Returns
    -------
    list of ExplanationRecord
    """
    if (proba is None) != (attributions is None) or (risk is None) != (risk_attributions is None):
        raise ValueError("give proba with attributions, and risk with risk_attributions")
    if proba is None and risk is None:
        raise ValueError("nothing to explain: give proba and attributions, or risk and risk_attributions")
    proba = None if proba is None else np.asarray(proba, dtype=float)
    risk = None if risk is None else np.asarray(risk, dtype=float)
    mask = np.asarray(mask, bool)
    mods = list(attributions if attributions is not None else risk_attributions)
    n = len(proba) if proba is not None else len(risk)
    if mask.shape != (n, len(mods)):
        raise ValueError(f"mask must be ({n}, {len(mods)}) for modalities {mods}, got {mask.shape}")
    if attributions is not None and risk_attributions is not None and list(risk_attributions) != mods:
        raise ValueError(f"risk_attributions must have the modalities {mods}, got {list(risk_attributions)}")
    names = feature_names or {}
    recs = []
    for i in range(n):
        rec = ExplanationRecord(str(ids[i]), None, {}, lesion_hit=None if lesion_hits is None else bool(lesion_hits[i]),
                                notes=[f"{m} not acquired" for j, m in enumerate(mods) if not mask[i, j]])
        if proba is not None:
            rec.predicted = str(classes[int(proba[i].argmax())])
            rec.probabilities = {str(c): float(p) for c, p in zip(classes, proba[i])}
            rec.modality_contributions = _shares(attributions, mask[i], i)
            rec.top_features = _top(attributions, mask[i], i, names, top_k)
        if risk is not None:
            rec.risk = float(risk[i])
            rec.risk_contributions = _shares(risk_attributions, mask[i], i)
            rec.risk_top_features = _top(risk_attributions, mask[i], i, names, top_k)
        recs.append(rec)
    return recs
