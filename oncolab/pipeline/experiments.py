"""Experiments on the complete system: which modalities and fusions matter, robustness, the detector.

Taught in chapter 10 ("Fusion strategies"); ``oncolab run`` writes the ablation table.
:func:`detection_metrics` (chapter 12) scores the lesion detector of a system's radiograph
stage against the annotated boxes of held-out patients, as a detection paper reports it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import Cohort
from .config import SystemConfig, choices
from .stages import Inputs
from .system import OncoLabSystem, read_inputs

__all__ = ["ablation", "detection_metrics", "detector_scores", "robustness"]

DETECTION_NOTE = "the annotated boxes of these patients are read to score the detector, not by the system"


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
        have = np.flatnonzero(ite.presence.reindex(columns=list(ms), fill_value=False).to_numpy(bool).any(1))
        tab = s.evaluate(cte.subset(have), n_boot=n_boot, inputs=ite.subset(have)).set_index("metric")
        row = {"modalities": "+".join(ms) if len(ms) < len(mods) else "all", "fusion": fusion}
        for met in ("macro_precision", "macro_f1", "macro_auc", "accuracy", "c_index"):
            if met in tab.index:   # only the heads the system learnt are scored
                row[met] = tab.at[met, "value"]
        for met in ("macro_auc", "c_index"):
            if met in tab.index:
                row[f"{met}_ci"] = f"[{tab.at[met, 'ci_low']:.3f}, {tab.at[met, 'ci_high']:.3f}]"
        row["n"] = len(have)   # the held-out patients with at least one of the modalities
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


def detector_scores(detector, images: list) -> list:
    """Scored detections of a system's lesion detector on radiographs, as mAP needs them.

    Taught in chapter 12. YOLO gives its boxes above confidence 0.001 (the operating point of
    its mAP, chapter 3; the system itself keeps the most confident box). The hand-made finder
    gives one box and no confidence of its own; its score is the box's mean darkness (how far
    the box lies below the background it estimates, in grey levels, on its working image), and
    0 for the centred box it falls back on, so that its boxes can be ranked.

    Parameters
    ----------
    detector : Detector
        A fitted ``yolo`` or ``finder`` detector (``stage.detector`` of a radiograph stage).
    images : list of ndarray
        Radiographs.

    Returns
    -------
    list of Detections
        One per image (class 0).
    """
    from ..detection import Detections

    if detector.name == "yolo":
        return detector.yolo.predict(images, conf=0.001, max_det=10)
    if detector.name != "finder":
        raise ValueError(f"only a learned detector (yolo or finder) can be scored, got {detector.name!r}: the "
                         "annotated detector reads the boxes it would be scored against")
    finder = detector.finder
    boxes, found = finder.predict(images)
    out = []
    for img, box, ok in zip(images, boxes, found):
        score = 0.0
        if ok:
            dark = finder.darkness(img)
            h, w = np.asarray(img).shape[:2]
            s = finder.work_size
            x0, y0 = int(np.floor(box[0] * s / w)), int(np.floor(box[1] * s / h))
            x1, y1 = max(int(np.ceil(box[2] * s / w)), x0 + 1), max(int(np.ceil(box[3] * s / h)), y0 + 1)
            score = max(float(dark[y0:y1, x0:x1].mean()), 1e-6)
        out.append(Detections(box[None], [score], [0], np.asarray(img).shape[:2]))
    return out


def detection_metrics(system: OncoLabSystem, cohort: Cohort, n_boot: int = 200, seed: int | None = None,
                      on_bad_image: str = "raise") -> pd.DataFrame:
    """mAP@0.5 and mAP@0.5:0.95 of a system's lesion detector on ``cohort``'s radiographs.

    Taught in chapter 12. The detector of the system's radiograph stage (``yolo`` or
    ``finder``) is run on the patients' radiographs and scored against their annotated boxes
    with :func:`oncolab.detection.evaluate_detections` (COCO's 101-point AP). The annotated
    boxes are read here to score the detector only; the system never reads them for a patient
    it predicts. The interval resamples the patients (percentile bootstrap).

    Parameters
    ----------
    system : OncoLabSystem
        A fitted system with a radiograph stage whose detector is learned.
    cohort : Cohort
        Held-out patients with radiographs and a ``boxes`` table.
    n_boot : int
        Bootstrap resamples (0: no interval).
    seed : int, optional
        Seed of the resampling (default: the system's).
    on_bad_image : {"raise", "mask"}
        What a corrupt radiograph does (a masked one is left out).

    Returns
    -------
    DataFrame
        Rows ``detector_map50`` and ``detector_map50_95`` with ``value, ci_low, ci_high, n`` (the
        number of radiographs with an annotated box) and ``note``: the rows of
        :meth:`OncoLabSystem.evaluate`'s table.
    """
    from ..detection import evaluate_detections
    from ..metrics import bootstrap_ci

    system.check_fitted()
    stage = system.stages.get("radiograph")
    detector = getattr(stage, "detector", None)
    if detector is None:
        raise ValueError("this system has no radiograph stage with a detector; nothing to score")
    if "boxes" not in cohort.tables:
        raise ValueError("the cohort has no 'boxes' table: the detector needs annotated boxes to be scored")
    raw, usable, _ = type(stage).read(cohort, system.config.replace(progress=False), on_bad_image)
    truth = cohort.boxes[["x0", "y0", "x1", "y1"]].to_numpy(float)
    idx = np.flatnonzero(np.asarray(usable, bool) & np.isfinite(truth).all(1))
    if len(idx) == 0:
        raise ValueError("no patient of the cohort has both a radiograph and an annotated box")
    preds = detector_scores(detector, [raw["images"][i] for i in idx])
    gts = [truth[i][None] for i in idx]

    def metric(which):
        return lambda a, b: getattr(evaluate_detections([preds[i] for i in a], [gts[i] for i in a]), which)

    seed = system.config.seed if seed is None else seed
    rows = []
    for name, which in (("detector_map50", "map50"), ("detector_map50_95", "map50_95")):
        value, lo, hi = bootstrap_ci(metric(which), np.arange(len(idx)), np.arange(len(idx)), n_boot=n_boot,
                                     seed=seed)
        rows.append({"metric": name, "value": value, "ci_low": lo, "ci_high": hi, "n": len(idx),
                     "note": DETECTION_NOTE})
    return pd.DataFrame(rows)
