"""The seed systems of the bone cohort, reproduced: each preset fitted and scored on the same patients.

Taught in chapter 12 ("The complete system", section "The seed systems, reproduced").

Three presets of :mod:`oncolab.pipeline.presets` stand for published seed systems on the
bone-tumour cohort: ``bone_tumor`` (the bone-tumour paper), ``oncovision`` and ``medfusion``.
:func:`compare_seed_systems` fits each of them, and the hand-made system as the reference, on
the *same* training patients, predicts the *same* held-out patients, and reports every
diagnosis metric with its bootstrap interval, the C-index where the preset learns a risk, the
paired bootstrap difference against the reference (both systems scored on each resample of
the patients), whether the fusion beats the preset's best single modality, and the oracle of
the generator on those patients. :data:`SEED_RESULTS` holds what each seed reports about
itself, on its own data; :func:`seed_systems_table` sets the two side by side.

The seeds' numbers come from other patients, other images and other label sets than the
synthetic cohort's, so they orient the reader; they are not a target and not a comparison.
Only the rows computed here, on the same held-out patients, can be compared with each other.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ..data import Cohort, oracle, train_val_test_split
from ..metrics import macro_auc, paired_bootstrap
from ..survival import harrell_c
from .config import SystemConfig
from .experiments import ablation, detection_metrics
from .presets import PRESETS, preset, preset_cohort
from .system import OncoLabSystem, outcome_strata, read_inputs

__all__ = ["SEED_RESULTS", "SEED_SYSTEMS", "compare_seed_systems", "seed_systems_table"]

SEED_SYSTEMS = ("handcrafted", "bone_tumor", "oncovision", "medfusion")
"""The presets :func:`compare_seed_systems` runs by default: the hand-made reference, then the seeds."""

SEED_RESULTS: dict[str, dict[str, Any]] = {
    "bone_tumor": {
        "seed": "the bone-tumour paper (Sang et al. 2025)",
        "bibkey": "sang2025multimodal",
        "macro_auc": 0.9759, "macro_f1": 0.8736, "macro_precision": 0.9056, "detector_map50": 0.7925,
        "data": ("Real patients of the authors' hospitals: their own clinical radiographs, pathology images and "
                 "blood tests, a benign / intermediate / malignant label from the clinical record, YOLOv5 scored "
                 "on a detection split of its own; here a synthetic cohort (600 patients by default, a fifth held "
                 "out), 256-pixel images drawn by a generator, YOLO11n in place of YOLOv5 and small networks "
                 "trained from scratch."),
    },
    "oncovision": {
        "seed": "OncoVision",
        "bibkey": None,
        "macro_auc": None, "macro_f1": None, "macro_precision": None, "detector_map50": None,
        "data": ("Described for histopathology images, RNA-seq expression and clinical data of real cancer "
                 "patients, with no held-out headline metric of a three-class diagnosis that could be set beside "
                 "ours; here the synthetic cohort's slide regions, generated gene counts and clinical table."),
    },
    "medfusion": {
        "seed": "MEDFUSION",
        "bibkey": None,
        "macro_auc": None, "macro_f1": None, "macro_precision": None, "detector_map50": None,
        "data": ("Described for free-text symptoms, medical images and structured records of real patients, with "
                 "no headline metric of a three-class bone-tumour diagnosis; here generated symptom notes with a "
                 "known vocabulary, the synthetic radiographs and slides, and the lab, gene and clinical tables."),
    },
}
"""Each seed's own published headline numbers, ``{preset: record}``.

Every record holds ``seed`` (its name), ``bibkey`` (its key in the book's bibliography, or None
where the book cites no publication for it), the headline ``macro_auc``, ``macro_f1``,
``macro_precision`` and ``detector_map50`` it reports (None where it reports none: no number is
made up), and ``data``: one sentence on how its data differ from the synthetic cohort.
"""

_METRICS = ("macro_auc", "macro_f1", "macro_precision", "c_index")
ORACLE_NOTE = ("the Bayes rule given every modality's signal (the generator's truth), on the same held-out "
               "patients: the best any model could reach; the macro AUC is the Bayes AUC, the C-index that of the "
               "true risk; no interval, no F1 or precision")


def _check_names(names, reference: str, cohort: Cohort) -> list[str]:
    if isinstance(names, str):
        raise ValueError(f"names must be a sequence of preset names, got the string {names!r}; "
                         f"write ({names!r},) for one preset")
    names = list(names)
    if not names:
        raise ValueError(f"names is empty; expected some of {list(PRESETS)}")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset {unknown[0]!r} in names; expected some of {list(PRESETS)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"preset {dup[0]!r} is named twice in names; name each preset once")
    other = [n for n in names if preset_cohort(n) != "bone"]
    if other:
        raise ValueError(f"preset {other[0]!r} is made for the {preset_cohort(other[0])} cohort, not the bone-tumour "
                         "cohort that the seed systems are compared on")
    if reference not in names:
        raise ValueError(f"the reference {reference!r} is not among names {names}; add it, or choose a reference "
                         "among them")
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected an oncolab.data.Cohort, got {type(cohort).__name__}")
    if not cohort.classes:
        raise ValueError("the cohort has no diagnosis labels; the seed systems are compared on their diagnosis")
    return names


def _configs(names: list[str], overrides: dict | None, seed: int, cohort: Cohort) -> dict[str, SystemConfig]:
    overrides = dict(overrides or {})
    per = {k: overrides.pop(k) for k in list(overrides) if k in PRESETS}
    stray = [k for k in per if k not in names]
    if stray:
        raise ValueError(f"overrides name the preset {stray[0]!r}, which is not among names {names}")
    out = {}
    for n in names:
        if not isinstance(per.get(n, {}), dict):
            raise ValueError(f"overrides[{n!r}] must be a dict of settings, got {type(per[n]).__name__}")
        cfg = preset(n, **{"seed": seed, "progress": False, **overrides, **per.get(n, {})})
        lacking = [m for m in cfg.modalities if m not in cohort.modalities]
        if lacking:
            raise ValueError(f"preset {n!r} reads the {lacking[0]!r} modality, which the cohort lacks (it has "
                             f"{list(cohort.modalities)}); generate it (synthetic_cohort(..., modalities=[..., "
                             f"{lacking[0]!r}])) or set overrides={{{n!r}: {{'modalities': ...}}}}")
        out[n] = cfg
    return out


def _interval_columns(row: dict, prefix: str, d: dict) -> None:
    row[prefix] = d["difference"]
    row[f"{prefix}_low"], row[f"{prefix}_high"], row[f"{prefix}_p"] = d["ci_low"], d["ci_high"], d["p_value"]


def compare_seed_systems(cohort: Cohort, names=SEED_SYSTEMS, test_fraction: float = 0.2, seed: int = 0,
                         n_boot: int = 200, overrides: dict | None = None, reference: str = "handcrafted",
                         progress: bool = False) -> pd.DataFrame:
    """Fit each preset on the same training patients and score it on the same held-out patients.

    Taught in chapter 12. The patients are split once, stratified by diagnosis
    (:func:`oncolab.data.train_val_test_split` with fractions ``(1 - test_fraction, 0,
    test_fraction)``; with ``test_fraction=0.2`` and the same seed these are the held-out
    patients of ``oncolab run``). Each preset's system is fitted on the rest
    (:meth:`OncoLabSystem.fit`, which keeps its own validation part for early stopping) and
    scored by :meth:`OncoLabSystem.evaluate`. Against the ``reference`` preset, each system's
    macro AUC (and C-index, where both learn a risk) is compared by
    :func:`oncolab.metrics.paired_bootstrap` on the same patients. :func:`ablation` refits the
    fusion on each single modality with the stages already fitted; the best one is refitted
    and the fused system compared with it by the paired bootstrap on the patients who have
    that modality. A system whose radiograph stage has a learned detector also reports the
    detector's mAP@0.5 (:func:`~oncolab.pipeline.experiments.detection_metrics`: the annotated
    boxes are read to score the detector, never by the system). A synthetic cohort adds the
    generator's oracle on the same patients (:func:`oncolab.data.oracle`).

    Parameters
    ----------
    cohort : Cohort
        The bone-tumour cohort with diagnosis labels (the ``medfusion`` preset reads the
        ``symptoms`` notes: ``synthetic_cohort(..., modalities=[..., "symptoms"])``).
    names : sequence of str
        Presets of :data:`~oncolab.pipeline.presets.PRESETS` made for the bone-tumour cohort,
        each once, the ``reference`` among them (default :data:`SEED_SYSTEMS`).
    test_fraction : float
        Share of the patients held out, in (0, 1).
    seed : int
        Seed of the split, of every system (its ``seed`` setting) and of the bootstrap: the
        same seed gives the same table.
    n_boot : int
        Bootstrap resamples of every interval.
    overrides : dict, optional
        Settings applied on top of every preset (e.g. ``{"epochs": 100}``); a key that names a
        preset maps to settings for that preset alone, which win (e.g. ``{"bone_tumor":
        {"detector_epochs": 1}}``).
    reference : str
        The preset every other is compared with.
    progress : bool
        A progress bar over the presets.

    Returns
    -------
    DataFrame
        Indexed by ``system`` (each preset, then ``"oracle"`` for a synthetic cohort), with
        ``modalities``, ``fusion``, ``task``, ``n`` (held-out patients);
        ``macro_auc``, ``macro_f1``, ``macro_precision`` and ``c_index`` (NaN without a risk
        head), each with ``<metric>_low`` and ``<metric>_high`` (percentile bootstrap interval);
        ``detector_map50`` with its interval (NaN without a learned detector);
        ``auc_minus_reference`` with ``_low``, ``_high`` and ``_p`` (paired bootstrap; 0 for the
        reference itself), the same for ``c_index_minus_reference``; ``best_single`` (the
        modality whose single-modality fusion scores the highest macro AUC), its
        ``best_single_auc``, ``fusion_minus_best_single`` with ``_low``, ``_high``, ``_p``; and
        ``note``. ``attrs["fit_seconds"]`` holds each preset's wall time (reading, fitting,
        scoring), ``attrs["test_ids"]`` the held-out patients, ``attrs["reference"]`` the
        reference.

    Raises
    ------
    ValueError
        An unknown, repeated or prostate-cohort preset; the reference not among ``names``; a
        modality a preset reads that the cohort lacks; ``test_fraction`` outside (0, 1); a
        negative or non-integer ``seed`` or ``n_boot``; a cohort without diagnosis labels.
    """
    names = _check_names(names, reference, cohort)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    for what, v in (("seed", seed), ("n_boot", n_boot)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{what} must be a non-negative integer, got {v!r}")
    configs = _configs(names, overrides, seed, cohort)
    parts = train_val_test_split(outcome_strata(cohort), fractions=(1 - test_fraction, 0.0, test_fraction), seed=seed)
    train, test = parts["train"], parts["test"]
    ctr, cte = cohort.subset(train), cohort.subset(test)
    y = np.asarray(cte.y)
    has_surv = bool(cohort.has_survival)
    surv = (cte.labels["time"].to_numpy(float), cte.labels["event"].to_numpy(bool)) if has_surv else None

    def c_index(te, r):
        return harrell_c(te[0], te[1], r)

    order = [reference] + [n for n in names if n != reference]   # the reference first: the others need it
    it = order
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(order, desc="seed systems")
    rows, preds, seconds = {}, {}, {}
    for name in it:
        t0 = time.perf_counter()
        cfg = configs[name]
        inputs = read_inputs(cohort, cfg)
        itr, ite = inputs.subset(train), inputs.subset(test)
        system = OncoLabSystem(cfg).fit(ctr, inputs=itr)
        tab = system.evaluate(cte, n_boot=n_boot, seed=seed, inputs=ite).set_index("metric")
        pred = system.predict(cte, inputs=ite)
        proba = pred[[f"p_{c}" for c in system.classes_]].to_numpy()
        risk = pred["risk"].to_numpy() if "risk" in pred else None
        preds[name] = (proba, risk)
        row: dict[str, Any] = {"modalities": "+".join(system.modalities_), "fusion": cfg.fusion,
                               "task": system.task_, "n": len(test)}
        for met in _METRICS:
            have = met in tab.index
            row[met] = tab.at[met, "value"] if have else np.nan
            row[f"{met}_low"] = tab.at[met, "ci_low"] if have else np.nan
            row[f"{met}_high"] = tab.at[met, "ci_high"] if have else np.nan
        row["detector_map50"] = row["detector_map50_low"] = row["detector_map50_high"] = np.nan
        detector = getattr(system.stages.get("radiograph"), "detector", None)
        if detector is not None and detector.name in ("yolo", "finder"):
            det = detection_metrics(system, cte, n_boot=n_boot, seed=seed).set_index("metric")
            row["detector_map50"] = det.at["detector_map50", "value"]
            row["detector_map50_low"] = det.at["detector_map50", "ci_low"]
            row["detector_map50_high"] = det.at["detector_map50", "ci_high"]
        ref_proba, ref_risk = preds[reference]
        _interval_columns(row, "auc_minus_reference",
                          paired_bootstrap(macro_auc, y, proba, ref_proba, n_boot=n_boot, seed=seed))
        if has_surv and risk is not None and ref_risk is not None:
            _interval_columns(row, "c_index_minus_reference",
                              paired_bootstrap(c_index, surv, risk, ref_risk, n_boot=n_boot, seed=seed))
        else:
            row["c_index_minus_reference"] = row["c_index_minus_reference_low"] = np.nan
            row["c_index_minus_reference_high"] = row["c_index_minus_reference_p"] = np.nan
        # the fusion against the preset's best single modality, with the stages fitted above
        singles = ablation(cohort, train, test, inputs, cfg, modality_sets=[[m] for m in system.modalities_],
                           fusions=[], n_boot=0, stages=system)
        best = singles.loc[singles["macro_auc"].idxmax()]
        row["best_single"], row["best_single_auc"] = str(best["modalities"]), float(best["macro_auc"])
        alone = OncoLabSystem(cfg.replace(modalities=(row["best_single"],))).fit(ctr, inputs=itr, stages=system)
        keep = np.flatnonzero(ite.presence[row["best_single"]].to_numpy(bool))
        p_alone = alone.predict(cte.subset(keep), inputs=ite.subset(keep))[[f"p_{c}" for c in alone.classes_]]
        _interval_columns(row, "fusion_minus_best_single",
                          paired_bootstrap(macro_auc, y[keep], proba[keep], p_alone.to_numpy(), n_boot=n_boot,
                                           seed=seed))
        row["note"] = system.label_note or ""
        rows[name] = row
        seconds[name] = time.perf_counter() - t0
    out = pd.DataFrame.from_dict({n: rows[n] for n in names}, orient="index")
    if "truth" in cohort.tables:
        o = oracle(cte)
        orow = {c: np.nan for c in out.columns}
        orow.update(modalities="+".join(m for m in cohort.modalities), fusion="", task="", n=len(test),
                    macro_auc=o["bayes_auc"], best_single="", note=ORACLE_NOTE)
        if has_surv:
            orow["c_index"] = o["c_index"]
        out.loc["oracle"] = pd.Series(orow)
    out.index.name = "system"
    for c in ("modalities", "fusion", "task", "best_single", "note"):
        out[c] = out[c].fillna("").astype(str)
    out["n"] = out["n"].astype(int)
    out.attrs.update(fit_seconds=seconds, test_ids=[str(i) for i in cte.ids], reference=reference)
    return out


def _with_ci(value, low, high) -> str:
    if value is None or not np.isfinite(value):
        return ""
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _signed_ci(value, low, high) -> str:
    if not np.isfinite(value):
        return ""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:+.3f}"
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"


def seed_systems_table(comparison: pd.DataFrame, seed_results: dict[str, dict[str, Any]] | None = None,
                       reference: str | None = None) -> pd.DataFrame:
    """The seed systems, reproduced: each preset's held-out results beside the seed's own numbers.

    Taught in chapter 12. One row per system of ``comparison`` (the oracle included), each
    value with its 95% interval; the difference from the reference is the paired bootstrap
    on the same patients. ``fusion vs best single modality`` says where the fused system
    lands *below* its best single modality (a fusion that loses information), and by how
    much. The seed's own numbers sit in the last columns: they were measured on other
    patients and other data (``seed_results[name]["data"]``), so they are set beside ours,
    not compared with them.

    Parameters
    ----------
    comparison : DataFrame
        :func:`compare_seed_systems`' result, or that table read back from a CSV file
        (``pandas.read_csv(path, index_col="system")``).
    seed_results : dict, optional
        ``{preset: record}`` as :data:`SEED_RESULTS` (the default).
    reference : str, optional
        The name of the reference system (default: ``comparison.attrs["reference"]``, else
        ``"handcrafted"``), for the column title.

    Returns
    -------
    DataFrame
        Indexed by system, columns ``modalities``, ``macro AUC``, ``macro F1``, ``macro
        precision``, ``C-index``, ``detector mAP@0.5``, ``macro AUC minus <reference>``,
        ``fusion vs best single modality``, and the seed's ``seed: macro AUC``, ``seed: macro
        F1``, ``seed: macro precision``, ``seed: mAP@0.5`` and ``seed: source`` (empty where the
        seed reports nothing).
    """
    seed_results = SEED_RESULTS if seed_results is None else seed_results
    reference = reference or comparison.attrs.get("reference", "handcrafted")
    need = {"modalities", "best_single", "best_single_auc", "fusion_minus_best_single", "auc_minus_reference",
            *(f"{m}{s}" for m in _METRICS for s in ("", "_low", "_high"))}
    missing = sorted(need - set(comparison.columns))
    if missing:
        raise ValueError(f"comparison lacks the columns {missing}; expected the table of compare_seed_systems")
    rows = {}
    for name, r in comparison.iterrows():
        row = {"modalities": r["modalities"]}
        for met, title in (("macro_auc", "macro AUC"), ("macro_f1", "macro F1"),
                           ("macro_precision", "macro precision"), ("c_index", "C-index"),
                           ("detector_map50", "detector mAP@0.5")):
            row[title] = _with_ci(r.get(met, np.nan), r.get(f"{met}_low", np.nan), r.get(f"{met}_high", np.nan))
        row[f"macro AUC minus {reference}"] = ("" if name == reference else _signed_ci(
            r["auc_minus_reference"], r["auc_minus_reference_low"], r["auc_minus_reference_high"]))
        gap = r["fusion_minus_best_single"]
        row["fusion vs best single modality"] = ""
        if np.isfinite(gap):
            where = "below" if gap < 0 else "above"
            row["fusion vs best single modality"] = f"{where} {r['best_single']} alone: " + _signed_ci(
                gap, r["fusion_minus_best_single_low"], r["fusion_minus_best_single_high"])
        own = seed_results.get(name, {})
        for met, title in (("macro_auc", "seed: macro AUC"), ("macro_f1", "seed: macro F1"),
                           ("macro_precision", "seed: macro precision"), ("detector_map50", "seed: mAP@0.5")):
            v = own.get(met)
            row[title] = "" if v is None else f"{v:.4f}"
        row["seed: source"] = own.get("bibkey") or ("no headline number" if own else "")
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "system"
    return out
