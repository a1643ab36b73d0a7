"""Per-patient explanation records, the form a report reads; chapter 11."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["ExplanationRecord", "explanation_records"]


@dataclass
class ExplanationRecord:
    """What explains one patient's prediction.

    ``modality_contributions``: modality -> share of the integrated-gradients attribution
    (absolute values, summing to 1 over present modalities); ``top_features``: the largest
    attributions as ``(name, value)``; ``lesion_hit``: whether the image map's maximum lies
    on the lesion (None when unknown).
    """

    patient_id: str
    predicted: str
    probabilities: dict[str, float]
    modality_contributions: dict[str, float] = field(default_factory=dict)
    top_features: list[tuple[str, float]] = field(default_factory=list)
    lesion_hit: bool | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def explanation_records(ids, proba, attributions: dict[str, np.ndarray], mask, classes,
                        feature_names: dict[str, list[str]] | None = None, top_k: int = 3,
                        lesion_hits=None) -> list[ExplanationRecord]:
    """One :class:`ExplanationRecord` per patient from the fused model's outputs; chapter 11.

    ``attributions`` is the output of :func:`~oncolab.explain.integrated_gradients`
    (``{modality: (n, d)}``), ``mask`` the (n, M) presence mask in the same modality order.
    """
    proba = np.asarray(proba, dtype=float)
    mask = np.asarray(mask, bool)
    mods = list(attributions)
    n = len(proba)
    if mask.shape != (n, len(mods)):
        raise ValueError(f"mask must be ({n}, {len(mods)}) for modalities {mods}, got {mask.shape}")
    names = feature_names or {}
    recs = []
    for i in range(n):
        tot = {m: float(np.abs(attributions[m][i]).sum()) if mask[i, j] else 0.0 for j, m in enumerate(mods)}
        s = sum(tot.values())
        contrib = {m: (v / s if s > 0 else 0.0) for m, v in tot.items()}
        feats = []
        for j, m in enumerate(mods):
            if not mask[i, j]:
                continue
            nm = names.get(m) or [f"{m}[{k}]" for k in range(attributions[m].shape[1])]
            feats += [(nm[k], float(attributions[m][i, k])) for k in range(attributions[m].shape[1])]
        feats.sort(key=lambda t: -abs(t[1]))
        recs.append(ExplanationRecord(str(ids[i]), str(classes[int(proba[i].argmax())]),
                                      {str(c): float(p) for c, p in zip(classes, proba[i])}, contrib,
                                      feats[:top_k], None if lesion_hits is None else bool(lesion_hits[i]),
                                      [f"{m} not acquired" for j, m in enumerate(mods) if not mask[i, j]]))
    return recs
