"""OncoLabSystem: one object from images, labs, genes and clinical data to diagnosis and risk.

Taught in chapter 12 ("The complete system").

The system only composes. For each modality its configuration names a stage from the
registries of :mod:`oncolab.pipeline.stages`; the stages hand the fusion model of chapter 10
(:mod:`oncolab.fusion`) a small matrix with named columns each::

    radiograph -> lesion box (finder | yolo | annotated) -> measurements | window -> CNN ─┐
    pathology region -> nuclear measurements | tiles -> attention-MIL ────────────────────┤
    lab panel -> lab transform + "not measured" flags | narrative -> TF-IDF/BERT -> PCA ──┼─> fusion -> diagnosis
    gene counts -> log-CPM, per-gene scaling, PCA ──────────────────────────────────────┤   + risk
    clinical -> standardised numbers + one-hot categories ──────────────────────────────┘

``fit(cohort)`` reads every patient's inputs (:func:`read_inputs`), fits each stage on the
training patients (supervised stages are cross-fitted, see
:mod:`oncolab.pipeline.stages.base`), splits off a validation part for early stopping and
trains the fusion model. ``predict`` takes a :class:`~oncolab.data.Cohort` or one
:class:`~oncolab.data.Patient`; ``evaluate`` returns a tidy table of metrics with bootstrap
intervals; ``save``/``load`` write and read a folder with ``model.safetensors`` (every
number) and ``config.json`` (everything else): no pickle, so loading runs no code.

No label at prediction
----------------------
No stage reads a label (diagnosis, survival, annotated box, truth) of a patient it predicts.
The one deliberate exception is the ``annotated`` detector, which reads the annotated lesion
box: :attr:`OncoLabSystem.label_note` then says so, and the evaluation table carries it.

Missing data
------------
A modality a patient lacks is masked in the fusion model (see :mod:`oncolab.fusion`), never
filled silently. A modality absent in every training patient is an error, as is a cohort at
``predict`` time that lacks a table the model was fitted with (unless
``missing_modalities="mask"``). A corrupt image raises an error naming the patient; with
``on_bad_image="mask"`` it is masked instead and reported in the ``warnings`` column.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import DIAGNOSES, MODALITIES, OPTIONAL_MODALITIES, Cohort, Patient, train_val_test_split
from .config import FORMAT_VERSION, SystemConfig
from .stages import Inputs, Stage, Targets, stage_class

__all__ = ["RISK_GROUPS", "OncoLabSystem", "cohort_from_patient", "outcome_strata", "read_inputs", "resolve_task"]

RISK_GROUPS = ("low", "intermediate", "high")
LABEL_NOTE = ("the radiograph stage reads each patient's annotated lesion box (detector='annotated'): a label "
              "read at prediction")


def _as_config(config) -> SystemConfig:
    if config is None:
        return SystemConfig()
    if isinstance(config, SystemConfig):
        return config
    if isinstance(config, dict):
        return SystemConfig.from_dict(config)
    raise TypeError(f"config must be a SystemConfig or a dict of settings, got {type(config).__name__}")


def _check_on_bad_image(on_bad_image: str) -> None:
    if on_bad_image not in ("raise", "mask"):
        raise ValueError(f"on_bad_image must be 'raise' or 'mask', got {on_bad_image!r}")


def read_inputs(cohort: Cohort, config=None, on_bad_image: str = "raise") -> Inputs:
    """Raw inputs of every modality of ``config`` for the patients of ``cohort``.

    Each modality is read by the class method ``read`` of its configured stage (images once,
    per patient; tables as they are). Several systems with the same stage settings can share
    one :class:`~oncolab.pipeline.stages.Inputs` (the ablation does).

    Parameters
    ----------
    cohort : Cohort
        The patients.
    config : SystemConfig or dict, optional
        Which stages (and so which inputs); default :class:`SystemConfig`.
    on_bad_image : {"raise", "mask"}
        A corrupt image raises a ValueError naming the patient, or is masked and noted.

    Returns
    -------
    Inputs
        ``raw`` per modality, the ``presence`` mask (patients x modalities) and notes.
    """
    _check_on_bad_image(on_bad_image)
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected an oncolab.data.Cohort, got {type(cohort).__name__}")
    cfg = _as_config(config)
    presence = pd.DataFrame(False, index=cohort.ids, columns=list(cfg.modalities))
    raw, notes = {}, []
    for m in cfg.modalities:
        if m not in cohort.modalities:
            continue
        value, usable, n = stage_class(m, cfg.stage_name(m)).read(cohort, cfg, on_bad_image)
        notes += n
        if value is None or not np.asarray(usable).any():
            continue
        raw[m] = value
        presence[m] = np.asarray(usable, bool)
    return Inputs(raw, presence, notes)


def outcome_strata(cohort: Cohort) -> np.ndarray:
    """What a patient-level split is stratified by: the class, else the event indicator.

    Parameters
    ----------
    cohort : Cohort

    Returns
    -------
    ndarray
        One integer per patient.
    """
    if cohort.classes:
        return np.asarray(cohort.y)
    if cohort.has_survival:
        return cohort.labels["event"].to_numpy(bool).astype(int)
    raise ValueError("the cohort has neither a diagnosis nor survival labels: there is nothing to learn or "
                     "evaluate (labels.csv needs a 'diagnosis' column, or 'time' and 'event' columns)")


def resolve_task(config: SystemConfig, cohort: Cohort) -> str:
    """The task a cohort supports: the configured one, narrowed to the labels the cohort has.

    ``multitask`` becomes ``diagnosis`` on a cohort without survival and ``survival`` on one
    without a diagnosis; asking for a head whose labels are absent is an error.

    Parameters
    ----------
    config : SystemConfig
    cohort : Cohort

    Returns
    -------
    str
        ``"multitask"``, ``"diagnosis"`` or ``"survival"``.
    """
    has_dx, has_surv = bool(cohort.classes), bool(cohort.has_survival)
    if not (has_dx or has_surv):
        outcome_strata(cohort)  # raises, naming what is missing
    if config.task == "multitask":
        return "multitask" if has_dx and has_surv else ("diagnosis" if has_dx else "survival")
    if config.task == "diagnosis" and not has_dx:
        raise ValueError("task='diagnosis' but the cohort has no 'diagnosis' labels; use task='survival'")
    if config.task == "survival" and not has_surv:
        raise ValueError("task='survival' but the cohort has no 'time' and 'event' labels; use task='diagnosis'")
    return config.task


class _PatientImages:
    """An in-memory image source for a cohort made from one :class:`Patient`."""

    def __init__(self, patient: Patient):
        self.p = patient

    def radiograph(self, pid):
        return self.p.radiograph

    def slide(self, pid):
        return self.p.slide

    def lesion_mask(self, pid):
        raise ValueError("a single patient carries no lesion mask")


def cohort_from_patient(patient: Patient, classes: list[str] | None = None) -> Cohort:
    """A one-patient :class:`Cohort` holding the patient's data (so that one code path serves both).

    Parameters
    ----------
    patient : Patient
    classes : list of str, optional
        The class names of the cohort the patient comes from (so that its diagnosis keeps its code).

    Returns
    -------
    Cohort
    """
    if not isinstance(patient, Patient):
        raise TypeError(f"expected an oncolab.data.Patient, got {type(patient).__name__}")
    pid = pd.Index([patient.patient_id], name="patient_id")
    tables = {"labels": pd.DataFrame({"diagnosis": [patient.diagnosis], "y": [patient.y], "time": [patient.time],
                                      "event": [patient.event]}, index=pid)}
    mods = []
    if patient.radiograph is not None:
        mods.append("radiograph")
    if patient.slide is not None:
        mods.append("pathology")
    if patient.labs:
        tables["labs"] = pd.DataFrame([patient.labs], index=pid)
        mods.append("labs")
    if patient.genes is not None:
        tables["genes"] = pd.DataFrame([patient.genes.to_numpy()], columns=list(patient.genes.index), index=pid)
        mods.append("genes")
    if patient.clinical:
        tables["clinical"] = pd.DataFrame([patient.clinical], index=pid)
        mods.append("clinical")
    if getattr(patient, "symptoms", None):
        tables["symptoms"] = pd.DataFrame({"note": [patient.symptoms]}, index=pid)
        mods.append("symptoms")
    if patient.box is not None:
        tables["boxes"] = pd.DataFrame([patient.box], columns=["x0", "y0", "x1", "y1"], index=pid)
    mods = [m for m in MODALITIES + OPTIONAL_MODALITIES if m in mods]
    tables["presence"] = pd.DataFrame({m: [bool(patient.presence.get(m, True))] for m in mods}, index=pid)
    meta = {"source": "patient", "modalities": mods, **({"classes": list(classes)} if classes else {})}
    return Cohort(tables, images=_PatientImages(patient), meta=meta)


class OncoLabSystem:
    """Stages -> fusion -> diagnosis and risk, configured by a :class:`SystemConfig`.

    Parameters
    ----------
    config : SystemConfig or dict, optional
        The settings; a dict may hold any of :class:`SystemConfig`'s fields (the rest take
        their defaults). Unknown settings and values raise a ValueError listing what is allowed.

    Attributes
    ----------
    stages : dict
        ``{modality: fitted stage}``.
    model : torch.nn.Module
        The fusion model.
    classes_ : list of str
        The diagnosis classes.
    """

    def __init__(self, config: SystemConfig | dict | None = None):
        self.config = _as_config(config)
        self.model = None
        self.stages: dict[str, Stage] = {}
        self.modalities_: list[str] = []
        self.classes_: list[str] = list(DIAGNOSES)
        self.task_: str = self.config.task
        self.head_: str = self.config.head
        self.dims_: dict[str, int] = {}
        self.risk_cuts_: np.ndarray | None = None
        self.history_: list[dict] = []
        self.fit_ids_: pd.Index | None = None
        self.fit_outputs_: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        state = "fitted" if self.model is not None else "not fitted"
        stages = ", ".join(f"{m}={self.config.stage_name(m)}" for m in self.config.modalities)
        return f"OncoLabSystem({stages}, detector={self.config.detector}, fusion={self.config.fusion}; {state})"

    @property
    def label_note(self) -> str | None:
        """A sentence to show beside every result when a stage reads a label at prediction, else None."""
        return LABEL_NOTE if self.config.reads_labels_at_prediction else None

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return self.model is not None

    def check_fitted(self) -> None:
        """Raise a RuntimeError if the system is not fitted."""
        if self.model is None:
            raise RuntimeError("this OncoLabSystem is not fitted: call fit(cohort) or OncoLabSystem.load(path)")

    def read(self, cohort: Cohort, on_bad_image: str = "raise") -> Inputs:
        """:func:`read_inputs` with this system's configuration."""
        return read_inputs(cohort, self.config, on_bad_image)

    # ---- internals ---------------------------------------------------------------------
    def _embed(self, inputs: Inputs, fitted: dict | None = None,
               notes: list | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every modality's stage output (zero where absent) and the presence mask."""
        presence = inputs.presence.reindex(columns=self.modalities_, fill_value=False)
        X = {}
        for m in self.modalities_:
            if m not in inputs.raw:
                X[m] = np.zeros((len(presence), self.dims_[m]))
                continue
            Z = fitted[m] if fitted is not None and m in fitted else self.stages[m].transform(inputs.raw[m])
            if notes is not None:
                notes += [f"{presence.index[pos]}: {m} {note}" for pos, note in self.stages[m].notes()
                          if presence[m].iat[pos]]
            X[m] = np.where(presence[m].to_numpy()[:, None], Z, 0.0)  # masked; zero keeps it finite
        return X, presence.to_numpy(bool)

    def _check_cohort(self, cohort) -> Cohort:
        if not isinstance(cohort, Cohort):
            raise TypeError(f"expected an oncolab.data.Cohort, got {type(cohort).__name__}")
        if len(cohort) == 0:
            raise ValueError("the cohort has no patients")
        return cohort

    # ---- fit ---------------------------------------------------------------------------
    def fit(self, cohort: Cohort, on_bad_image: str = "raise", inputs: Inputs | None = None,
            stages: OncoLabSystem | None = None) -> OncoLabSystem:
        """Fit every stage and the fusion model on ``cohort`` (its own train/validation split).

        Parameters
        ----------
        cohort : Cohort
            The training patients (with their labels).
        on_bad_image : {"raise", "mask"}
            What a corrupt image does (see :func:`read_inputs`).
        inputs : Inputs, optional
            :func:`read_inputs` of this cohort with these stage settings, when already read.
        stages : OncoLabSystem, optional
            A system fitted on the same patients with the same stage settings, whose fitted
            stages are reused: only the fusion model is trained (the ablation does this).

        Returns
        -------
        OncoLabSystem
            ``self``, fitted.
        """
        from ..env import seed_everything
        from ..fusion import make_fusion, predict_model, train_model

        cohort = self._check_cohort(cohort)
        cfg = self.config
        seed_everything(cfg.seed)
        inputs = inputs if inputs is not None else self.read(cohort, on_bad_image)
        absent = [m for m in cfg.modalities if m not in inputs.raw]
        if absent:
            raise ValueError(f"modality {absent[0]!r} is absent in every training patient; remove it from the "
                             f"configuration's modalities (now {list(cfg.modalities)}) or supply it")
        self.modalities_ = list(cfg.modalities)
        self.task_ = resolve_task(cfg, cohort)
        has_dx = self.task_ != "survival"
        self.classes_ = list(cohort.classes) if has_dx else []
        ordered = cohort.meta.get("ordered", self.classes_ == list(DIAGNOSES))
        self.head_ = cfg.head if ordered or cfg.head == "softmax" else "softmax"
        strata = outcome_strata(cohort) if has_dx else cohort.labels["event"].to_numpy(bool).astype(int)
        y = np.asarray(cohort.y) if has_dx else np.zeros(len(cohort), int)
        counts = np.bincount(strata)
        groups = dict(zip(self.classes_, counts.tolist())) if has_dx else {"censored": int(counts[0]),
                                                                            "event": int(counts[-1])}
        n_val_min = max(len(counts), 2)
        if len(cohort) * cfg.val_fraction < n_val_min or (counts[counts > 0] < 2).any():
            raise ValueError(f"the cohort is too small to split off a validation part: {len(cohort)} patients with "
                             f"counts {groups}; fit needs every group at least twice and val_fraction x patients "
                             f">= {n_val_min} (val_fraction={cfg.val_fraction})")
        parts = train_val_test_split(strata, (1 - cfg.val_fraction, 0.0, cfg.val_fraction), seed=cfg.seed)
        tr, va = parts["train"], parts["test"]
        fitted: dict[str, np.ndarray] = {}
        if stages is not None:
            stages.check_fitted()
            differ = [k for k, v in cfg.stage_settings().items() if stages.config.stage_settings()[k] != v]
            if differ or not stages.fit_ids_.equals(cohort.ids) or set(self.modalities_) - set(stages.modalities_):
                raise ValueError("stages= must be a system fitted on the same patients, with the same stage "
                                 f"settings and all of {self.modalities_} (settings that differ: {differ})")
            self.stages = {m: stages.stages[m] for m in self.modalities_}
            fitted = {m: stages.fit_outputs_[m] for m in self.modalities_}
        else:
            boxes = (cohort.boxes[["x0", "y0", "x1", "y1"]].to_numpy(float)
                     if "boxes" in cohort.tables and "radiograph" in self.modalities_ else None)
            has_surv = self.task_ != "diagnosis"
            targets = Targets(y, self.classes_, boxes,
                              cohort.labels["time"].to_numpy(float) if has_surv else None,
                              cohort.labels["event"].to_numpy(bool) if has_surv else None)
            self.stages = {}
            for m in self.modalities_:
                rows = np.flatnonzero(inputs.presence[m].to_numpy())
                if len(rows) < 2:
                    raise ValueError(f"modality {m!r} is present in fewer than 2 training patients; "
                                     "cannot fit its stage")
                stage = stage_class(m, cfg.stage_name(m)).from_config(cfg)
                if stage.target == "diagnosis" and not has_dx:
                    raise ValueError(f"the {m} stage {cfg.stage_name(m)!r} learns from the diagnosis, which this "
                                     "cohort lacks; choose a stage that does not (e.g. 'measurements')")
                if stage.target == "survival" and not has_surv:
                    raise ValueError(f"the {m} stage {cfg.stage_name(m)!r} learns from survival, which this "
                                     "cohort lacks (no 'time' and 'event'); choose another stage")
                fitted[m] = stage.fit_transform(inputs.raw[m], rows, targets)
                self.stages[m] = stage
        notes = list(inputs.notes)
        X, mask = self._embed(inputs, fitted, notes)
        alone = ~mask.any(1)   # a patient with none of the modalities teaches the fusion nothing
        tr, va = tr[~alone[tr]], va[~alone[va]]
        self.fit_ids_ = cohort.ids
        self.fit_outputs_ = {m: X[m] for m in self.modalities_}
        self.dims_ = {m: int(X[m].shape[1]) for m in self.modalities_}
        lab = cohort.labels
        if self.task_ == "diagnosis":
            t, e = np.ones(len(cohort)), np.zeros(len(cohort), bool)   # not read by the diagnosis loss
        else:
            t, e = lab["time"].to_numpy(float), lab["event"].to_numpy(bool)
        self.model = make_fusion(cfg.fusion, self.dims_, seed=cfg.seed, n_classes=max(len(self.classes_), 2),
                                 head=self.head_, hidden=cfg.hidden, dropout=cfg.dropout)

        def sub(d, r):
            return {m: v[r] for m, v in d.items()}

        res = train_model(self.model, sub(X, tr), mask[tr], y[tr], t[tr], e[tr], task=self.task_, epochs=cfg.epochs,
                          lr=cfg.lr, weight_decay=cfg.weight_decay, survival_weight=cfg.survival_weight,
                          p_modality_dropout=cfg.modality_dropout, val=(sub(X, va), mask[va], y[va], t[va], e[va]),
                          patience=cfg.patience, seed=cfg.seed, progress=cfg.progress)
        self.history_ = res.history
        self.risk_cuts_ = (np.quantile(predict_model(self.model, sub(X, tr), mask[tr])["risk"], [1 / 3, 2 / 3])
                           if self.task_ != "diagnosis" else np.full(2, np.nan))
        self.fit_notes_ = notes
        return self

    # ---- what the fusion model reads ---------------------------------------------------
    def embed(self, cohort: Cohort, inputs: Inputs | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The fusion model's inputs for ``cohort``: ``({modality: (n, d) array}, (n, M) mask)``.

        Parameters
        ----------
        cohort : Cohort
        inputs : Inputs, optional
            :meth:`read` of ``cohort``, when already read.

        Returns
        -------
        tuple of (dict, ndarray)
        """
        self.check_fitted()
        return self._embed(inputs if inputs is not None else self.read(cohort))

    def feature_names(self) -> dict[str, list[str]]:
        """The name of every input of the fusion model, ``{modality: ["<modality>: <name>", ...]}``."""
        self.check_fitted()
        return {m: [f"{m}: {n}" for n in self.stages[m].feature_names()] for m in self.modalities_}

    # ---- predict -----------------------------------------------------------------------
    def predict(self, data: Cohort | Patient, on_bad_image: str = "raise", missing_modalities: str = "error",
                inputs: Inputs | None = None) -> pd.DataFrame:
        """One row per patient: class probabilities, predicted class, risk, risk group, warnings.

        Parameters
        ----------
        data : Cohort or Patient
            The patients to predict (their labels are not read).
        on_bad_image : {"raise", "mask"}
            What a corrupt image does.
        missing_modalities : {"error", "mask"}
            What a cohort lacking a whole modality the model was fitted with does: an error,
            or that modality masked for every patient (with a warning).
        inputs : Inputs, optional
            :meth:`read` of ``data``, when already read.

        Returns
        -------
        DataFrame
            Columns ``p_<class>`` and ``predicted`` (when the system learnt a diagnosis),
            ``risk`` and ``risk_group`` (when it learnt survival: tertiles of the training
            patients' risk), ``w_<modality>`` (for fusions with modality weights),
            ``modalities_used``, ``warnings``.
        """
        from ..fusion import predict_model

        self.check_fitted()
        _check_on_bad_image(on_bad_image)
        if missing_modalities not in ("error", "mask"):
            raise ValueError(f"missing_modalities must be 'error' or 'mask', got {missing_modalities!r}")
        cohort = self._check_cohort(cohort_from_patient(data, self.classes_) if isinstance(data, Patient) else data)
        inputs = inputs if inputs is not None else self.read(cohort, on_bad_image)
        # a modality the cohort lacks altogether (not one that only these patients lack, e.g. one patient's MRI)
        lacking = [m for m in self.modalities_ if m not in inputs.raw and m not in cohort.modalities]
        if lacking and missing_modalities == "error" and not isinstance(data, Patient):
            raise ValueError(f"this cohort has no {lacking} data, but the model was fitted with {self.modalities_}; "
                             "pass missing_modalities='mask' to predict without them")
        if lacking and not isinstance(data, Patient):
            warnings.warn(f"no {lacking} data: masked for every patient", stacklevel=2)
        notes = list(inputs.notes)
        X, mask = self._embed(inputs, notes=notes)
        none = ~mask.any(1)
        if none.any():
            raise ValueError(f"patient {cohort.ids[int(np.argmax(none))]} has none of the modalities {self.modalities_}")
        out = predict_model(self.model, X, mask)
        df = pd.DataFrame(index=cohort.ids)
        if self.task_ != "survival":
            for j, c in enumerate(self.classes_):
                df[f"p_{c}"] = out["proba"][:, j]
            df["predicted"] = np.asarray(self.classes_)[out["proba"].argmax(1)]
        if self.task_ != "diagnosis":
            df["risk"] = out["risk"]
            df["risk_group"] = np.asarray(RISK_GROUPS)[np.searchsorted(self.risk_cuts_, out["risk"])]
        if "weights" in out:
            for j, m in enumerate(self.modalities_):
                df[f"w_{m}"] = out["weights"][:, j]
        df["modalities_used"] = [",".join(m for m, k in zip(self.modalities_, row) if k) for row in mask]
        by_pid: dict[str, list[str]] = {}
        for note in notes:
            by_pid.setdefault(note.split(":")[0], []).append(note)
        df["warnings"] = [";".join(by_pid.get(str(p), [])) for p in cohort.ids]
        return df

    def evaluate(self, cohort: Cohort, n_boot: int = 200, seed: int | None = None, on_bad_image: str = "raise",
                 inputs: Inputs | None = None) -> pd.DataFrame:
        """Metrics on ``cohort``'s patients with percentile-bootstrap intervals.

        Parameters
        ----------
        cohort : Cohort
            Held-out patients with labels.
        n_boot : int
            Bootstrap resamples.
        seed : int, optional
            Seed of the resampling (default: the configuration's).
        on_bad_image : {"raise", "mask"}
            What a corrupt image does (masked patients are predicted from their other modalities).
        inputs : Inputs, optional
            :meth:`read` of ``cohort``, when already read.

        Returns
        -------
        DataFrame
            One row per metric: ``metric, value, ci_low, ci_high, n`` and ``note`` (the
            :attr:`label_note`, or empty). Only the heads the system learnt are scored: the
            diagnosis metrics (accuracy, macro precision, recall, F1 and AUC) when it learnt a
            diagnosis, the C-index when it learnt survival.
        """
        from ..metrics import bootstrap_metrics

        pred = self.predict(cohort, on_bad_image=on_bad_image, inputs=inputs)
        lab = cohort.labels
        seed = self.config.seed if seed is None else seed
        surv = (lab["time"].to_numpy(float), lab["event"].to_numpy(bool)) if self.task_ != "diagnosis" else None
        if self.task_ != "survival":
            proba = pred[[f"p_{c}" for c in self.classes_]].to_numpy()
            tab = bootstrap_metrics(cohort.y, proba, *(surv or (None, None)),
                                    None if surv is None else pred["risk"].to_numpy(), n_boot=n_boot, seed=seed)
        else:
            from ..metrics import bootstrap_ci
            from ..survival import harrell_c

            value, lo, hi = bootstrap_ci(lambda te, r: harrell_c(te[0], te[1], r), surv, pred["risk"].to_numpy(),
                                         n_boot=n_boot, seed=seed)
            tab = pd.DataFrame([{"metric": "c_index", "value": value, "ci_low": lo, "ci_high": hi, "n": len(pred)}])
        tab["note"] = self.label_note or ""
        return tab

    # ---- save / load -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path/model.safetensors`` and ``path/config.json`` (each via a temporary file).

        Parameters
        ----------
        path : str or PathLike
            A folder (created if needed).

        Returns
        -------
        Path
            The folder.
        """
        from safetensors.numpy import save_file

        self.check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {f"fusion.{k}": v.detach().cpu().numpy().copy()
                                         for k, v in self.model.state_dict().items()}
        stage_cfg = {}
        for m, stage in self.stages.items():
            c, a = stage.state()
            stage_cfg[m] = c
            arrays.update({f"stage.{m}.{k}": np.ascontiguousarray(np.asarray(v)) for k, v in a.items()})
        arrays["risk_cuts"] = np.asarray(self.risk_cuts_, np.float64)
        meta = {"format": "oncolab-system", "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                "modalities": self.modalities_, "dims": self.dims_, "stages": stage_cfg, "classes": self.classes_,
                "task": self.task_, "head": self.head_}
        tmp = path / "model.safetensors.partial"
        save_file(arrays, str(tmp))
        os.replace(tmp, path / "model.safetensors")
        tmp = path / "config.json.partial"
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(tmp, path / "config.json")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> OncoLabSystem:
        """Read a folder written by :meth:`save`; only JSON and tensors are read, no code runs.

        Parameters
        ----------
        path : str or PathLike
            The folder.

        Returns
        -------
        OncoLabSystem
            The fitted system.

        Raises
        ------
        FileNotFoundError
            A file is missing.
        ValueError
            A file is unreadable, or of another format or format version (the message names the file).
        """
        import torch
        from safetensors.numpy import load_file

        from ..fusion import make_fusion

        path = Path(path)
        cfg_path, w_path = path / "config.json", path / "model.safetensors"
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: expected a folder written by OncoLabSystem.save")
        try:
            meta = json.loads(cfg_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{cfg_path} is not readable JSON ({e}); expected the config.json of "
                             "OncoLabSystem.save") from e
        if not isinstance(meta, dict) or meta.get("format") != "oncolab-system":
            raise ValueError(f"{cfg_path} is not an OncoLab system configuration (no 'format': 'oncolab-system')")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{cfg_path} has format version {meta.get('format_version')!r}; this oncolab reads "
                             f"version {FORMAT_VERSION}: refit the model with this version")
        try:
            arrays = load_file(str(w_path))
        except Exception as e:  # safetensors raises its own error types for a truncated or foreign file
            raise ValueError(f"{w_path} is not a readable safetensors file ({e}); expected the weights written "
                             "by OncoLabSystem.save (is the file truncated?)") from e
        try:
            sys_ = cls(meta["config"])
            sys_.modalities_ = list(meta["modalities"])
            sys_.classes_ = list(meta["classes"])
            sys_.task_, sys_.head_ = meta["task"], meta["head"]
            sys_.dims_ = {m: int(meta["dims"][m]) for m in sys_.modalities_}
            if set(meta["stages"]) != set(sys_.modalities_):
                raise ValueError(f"stages {sorted(meta['stages'])} do not match modalities {sys_.modalities_}")
            for m in sys_.modalities_:
                sc = meta["stages"][m]
                pre = f"stage.{m}."
                sys_.stages[m] = stage_class(m, sc["name"]).from_state(
                    sc, {k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)})
            sys_.risk_cuts_ = arrays["risk_cuts"]
            c = sys_.config
            model = make_fusion(c.fusion, sys_.dims_, seed=c.seed, n_classes=max(len(sys_.classes_), 2),
                                head=sys_.head_, hidden=c.hidden, dropout=c.dropout)
            model.load_state_dict({k[len("fusion."):]: torch.from_numpy(v) for k, v in arrays.items()
                                   if k.startswith("fusion.")}, strict=True)
        except (KeyError, TypeError, RuntimeError, ValueError) as e:
            raise ValueError(f"incompatible saved model in {path}: {str(e).splitlines()[0]}") from e
        model.eval()
        sys_.model = model
        return sys_
