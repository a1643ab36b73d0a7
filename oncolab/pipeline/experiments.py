"""Experiments on the complete system: which modalities and fusions matter, and robustness.

Taught in chapter 10 ("Fusion strategies"); ``oncolab run`` writes the ablation table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import MODALITIES, Cohort
from .config import SystemConfig, choices
from .stages import Inputs
from .system import OncoLabSystem, read_inputs

__all__ = ["ablation", "robustness"]


def ablation(cohort: Cohort, train: np.ndarray, test: np.ndarray, inputs: Inputs | None = None,
             config: SystemConfig | dict | None = None, modality_sets: list[list[str]] | None = None,
             fusions: list[str] | None = None, n_boot: int = 200, progress: bool = False,
             stages: OncoLabSystem | None = None) -> pd.DataFrame:
    """Fit one system per (modality set, fusion) on ``train`` positions, score it on ``test``.

    The stages are fitted once, on all modalities, and shared by every model, so the table
    compares what fusion makes of the same per-modality stage outputs.

    Parameters
    ----------
    cohort : Cohort
        All patients.
    train, test : array of int
        Positions of the training and held-out patients.
    inputs : Inputs, optional
        :func:`read_inputs` of the whole cohort with this configuration, when already read.
    config : SystemConfig or dict, optional
        The base configuration (default :class:`SystemConfig`).
    modality_sets : list of list of str, optional
        Default: every single modality, then all of them, with the configuration's fusion.
    fusions : list of str, optional
        Other fusions fitted on all modalities (default: every other registered fusion).
    n_boot : int
        Bootstrap resamples of each interval.
    progress : bool
        A progress bar over the models.
    stages : OncoLabSystem, optional
        A system with this configuration's stages already fitted on the ``train`` patients.

    Returns
    -------
    DataFrame
        One row per model: ``modalities``, ``fusion``, macro precision, F1, AUC, accuracy,
        C-index, the intervals of macro AUC and C-index (the diagnosis columns only when the
        cohort has a diagnosis, the C-index only when it has survival), and ``note`` (the label
        note of the configuration, or empty).
    """
    base = (config if isinstance(config, SystemConfig) else SystemConfig.from_dict(config)).replace(progress=False)
    mods = list(base.modalities)
    if modality_sets is None:
        modality_sets = [[m] for m in mods] + [mods]
    if fusions is None:
        fusions = [f for f in choices("fusion") if f != base.fusion]
    if inputs is None:
        inputs = read_inputs(cohort, base)
    itr, ite = inputs.subset(train), inputs.subset(test)
    ctr, cte = cohort.subset(train), cohort.subset(test)
    if stages is None:
        stages = OncoLabSystem(base).fit(ctr, inputs=itr)
    jobs = [(ms, base.fusion) for ms in modality_sets] + [(mods, f) for f in fusions]
    it = jobs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(jobs, desc="ablation")
    rows = []
    for ms, fusion in it:
        s = OncoLabSystem(base.replace(modalities=tuple(ms), fusion=fusion)).fit(ctr, inputs=itr, stages=stages)
        tab = s.evaluate(cte, n_boot=n_boot, inputs=ite).set_index("metric")
        row = {"modalities": "+".join(ms) if len(ms) < len(MODALITIES) else "all", "fusion": fusion}
        for met in ("macro_precision", "macro_f1", "macro_auc", "accuracy", "c_index"):
            if met in tab.index:   # only the heads the system learnt are scored
                row[met] = tab.at[met, "value"]
        for met in ("macro_auc", "c_index"):
            if met in tab.index:
                row[f"{met}_ci"] = f"[{tab.at[met, 'ci_low']:.3f}, {tab.at[met, 'ci_high']:.3f}]"
        row["note"] = s.label_note or ""
        rows.append(row)
    return pd.DataFrame(rows)


def robustness(system: OncoLabSystem, cohort: Cohort, inputs: Inputs | None = None,
               rates=(0.0, 0.25, 0.5, 0.75, 1.0), seed: int = 0) -> pd.DataFrame:
    """Macro AUC and C-index as each modality goes missing in a fraction ``rate`` of patients.

    For every modality and rate, that modality is masked in a random (seeded) ``rate`` of the
    patients who have it; the other modalities are left as they are.

    Parameters
    ----------
    system : OncoLabSystem
        A fitted system.
    cohort : Cohort
        Held-out patients.
    inputs : Inputs, optional
        ``system.read(cohort)``, when already read.
    rates : sequence of float
        Missing rates in [0, 1].
    seed : int
        Seed of which patients lose the modality.

    Returns
    -------
    DataFrame
        ``modality, missing_rate, macro_auc, c_index, n``.
    """
    from ..fusion import predict_model
    from ..metrics import point_metrics

    bad = [r for r in rates if not 0 <= r <= 1]
    if bad:
        raise ValueError(f"missing rates must lie in [0, 1], got {bad[0]}")
    if system.task_ != "multitask":
        raise ValueError(f"robustness scores both heads; this system learnt only {system.task_!r}")
    X, mask = system.embed(cohort, inputs)
    lab = cohort.labels
    rng = np.random.default_rng(seed)
    rows = []
    for j, m in enumerate(system.modalities_):
        u = rng.random(len(mask))
        for r in rates:
            mk = mask.copy()
            mk[:, j] &= u >= r
            keep = mk.any(1)  # a patient left with nothing cannot be predicted
            out = predict_model(system.model, {k: v[keep] for k, v in X.items()}, mk[keep])
            pm = point_metrics(cohort.y[keep], out["proba"], lab["time"].to_numpy()[keep],
                               lab["event"].to_numpy(bool)[keep], out["risk"])
            rows.append({"modality": m, "missing_rate": r, "macro_auc": pm["macro_auc"], "c_index": pm["c_index"],
                         "n": int(keep.sum())})
    return pd.DataFrame(rows)
