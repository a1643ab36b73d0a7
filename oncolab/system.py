"""OncoLabSystem: one object from images, labs, genes and clinical data to diagnosis and risk.

Taught in chapter 12 ("The complete system").

The system composes stages, each chosen by name in its configuration::

    radiograph -> lesion box (annotated | YOLO) -> window -> small ResNet | box measurements ─┐
    pathology region -> tiles -> attention-MIL | nuclear measurements ───────────────────────┤
    lab panel -> narrative -> TF-IDF -> PCA | log-values + "not measured" flags ────────────┼─> fusion -> diagnosis
    gene counts -> log-CPM, per-gene scaling, PCA ──────────────────────────────────────────┤   (3 classes) + risk
    clinical -> standardised age + one-hot categories ──────────────────────────────────────┘

The learned stages (YOLO, CNN, MIL, text) live in :mod:`oncolab.learned_stages`, the
hand-made ones in :mod:`oncolab.stages`. :data:`LEARNED_CONFIG` switches every stage to its
learned version; :data:`DEFAULT_CONFIG` keeps the hand-made ones (seconds instead of minutes).

``fit(cohort)`` fits every stage on training patients only (a validation part is split off
for early stopping), ``evaluate(cohort)`` returns a tidy table of metrics with bootstrap
intervals, ``predict`` takes a :class:`~oncolab.data.Cohort` or one
:class:`~oncolab.data.Patient`, and ``save``/``load`` write and read a folder with
``model.safetensors`` (every number) and ``config.json`` (everything else): no pickle, so
loading a model never executes code from the file.

Missing data
------------
A modality a patient lacks (``cohort.presence``) is masked in the fusion model (see
:mod:`oncolab.fusion`), never filled silently. A modality absent in *every* training patient
is an error, as is a cohort at ``predict`` time that lacks a table the model was fitted with
(unless ``missing_modalities="mask"``, which masks it for every patient and warns). A
corrupt image (wrong shape, not finite) raises an error naming the patient; with
``on_bad_image="mask"`` it is masked instead and reported in the ``warnings`` column.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import DIAGNOSES, MODALITIES, Cohort, Patient, train_val_test_split
from .learned_stages import (
    LabTextStage,
    PathologyStage,
    RadiographStage,
    lab_text_raw,
    radiograph_raw,
    tile_bag,
)
from .omics import PCA, ClinicalPreprocessor, GenePreprocessor
from .stages import (
    RADIOGRAPH_FEATURES,
    SLIDE_FEATURES,
    _check_image,
    lab_features,
    radiograph_features,
    slide_features,
)

__all__ = ["DEFAULT_CONFIG", "FORMAT_VERSION", "LEARNED_CONFIG", "OncoLabSystem", "ablation", "robustness", "cohort_from_patient", "modality_features",
           "subset_features"]

FORMAT_VERSION = 2
DEFAULT_CONFIG: dict[str, Any] = {
    "modalities": list(MODALITIES),
    "detector": "annotated",          # "annotated": the cohort's lesion boxes; "yolo": a detector trained in fit
    "radiograph_encoder": "handcrafted",   # or "cnn": small ResNet on a window around the box
    "pathology_encoder": "handcrafted",    # or "mil": attention-MIL over tile features
    "labs_encoder": "numeric",             # or narrative -> "tfidf" | "bert" (tiny, pretrained in fit) | "biobert"
    "crop_window": 0.5,               # CNN window side, as a fraction of the radiograph's side
    "crop_size": 64,                  # CNN input pixels
    "cnn_epochs": 15,
    "detector_epochs": 12,
    "detector_imgsz": 96,
    "mil_epochs": 40,
    "tile_size": 64,
    "text_components": 16,
    "bert_epochs": 10,                # masked-language-model pretraining of labs_encoder="bert"
    "folds": 3,                       # cross-fitting folds of the CNN and MIL stages
    "genes_encoder": "pca",           # "pca" or "scaled" (all genes, standardised)
    "gene_components": 16,
    "clinical_encoder": "onehot",
    "fusion": "attention",
    "head": "ordinal",                # "ordinal" or "softmax" (benign < intermediate < malignant)
    "hidden": 32,
    "dropout": 0.1,
    "task": "multitask",
    "epochs": 400,
    "lr": 3e-3,
    "weight_decay": 1e-3,
    "survival_weight": 1.0,
    "modality_dropout": 0.2,
    "val_fraction": 0.2,
    "patience": 150,
    "seed": 0,
    "progress": True,
}
CHOICES = {
    "detector": ("annotated", "yolo"),
    "radiograph_encoder": ("handcrafted", "cnn"),
    "pathology_encoder": ("handcrafted", "mil"),
    "labs_encoder": ("numeric", "tfidf", "bert", "biobert"),
    "genes_encoder": ("pca", "scaled"),
    "clinical_encoder": ("onehot",),
    "fusion": ("early", "late", "gated", "attention", "bilinear", "crossattn"),
    "task": ("multitask", "diagnosis", "survival"),
    "head": ("softmax", "ordinal"),
}
RISK_GROUPS = ("low", "intermediate", "high")
LEARNED_CONFIG: dict[str, Any] = {"detector": "yolo", "radiograph_encoder": "cnn", "pathology_encoder": "mil",
                                  "labs_encoder": "tfidf", "fusion": "late"}
"""The stages of chapters 2-6 in place of the hand-made ones: ``OncoLabSystem(LEARNED_CONFIG)``.

Its fusion is ``"late"``: the CNN and MIL stages hand over class log-probabilities, which are
evidence that should *add up* across modalities (as log-likelihoods do); per-modality heads
summed (late fusion) do that, whereas attention fusion takes a weighted *average* of the
modalities and so cannot grow more confident when they agree."""
STAGE_KEYS = ("detector", "radiograph_encoder", "pathology_encoder", "labs_encoder", "genes_encoder",
              "gene_components", "clinical_encoder", "crop_window", "crop_size", "cnn_epochs", "detector_epochs",
              "detector_imgsz", "mil_epochs", "tile_size", "text_components", "bert_epochs", "folds", "seed")


def _check_config(config: dict | None) -> dict[str, Any]:
    cfg = dict(DEFAULT_CONFIG)
    if config:
        unknown = set(config) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown system setting(s) {sorted(unknown)}; expected some of {sorted(DEFAULT_CONFIG)}")
        cfg.update(config)
    for key, allowed in CHOICES.items():
        if cfg[key] not in allowed:
            raise ValueError(f"{key}={cfg[key]!r} is not available; expected one of {list(allowed)}")
    mods = cfg["modalities"]
    if isinstance(mods, str) or not mods or any(m not in MODALITIES for m in mods):
        raise ValueError(f"modalities must be a non-empty list drawn from {list(MODALITIES)}, got {mods!r}")
    cfg["modalities"] = [m for m in MODALITIES if m in mods]
    for key in ("epochs", "hidden", "gene_components", "patience", "seed", "crop_size", "cnn_epochs",
                "detector_epochs", "detector_imgsz", "mil_epochs", "tile_size", "text_components", "bert_epochs",
                "folds"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "seed" else 1):
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    if not 0 <= cfg["modality_dropout"] < 1:
        raise ValueError(f"modality_dropout must lie in [0, 1), got {cfg['modality_dropout']}")
    if cfg["folds"] < 2:
        raise ValueError(f"folds must be at least 2 (cross-fitting), got {cfg['folds']}")
    if cfg["detector_imgsz"] % 32:
        raise ValueError(f"detector_imgsz must be a multiple of 32 (YOLO's stride), got {cfg['detector_imgsz']}")
    if not 0 < cfg["crop_window"] <= 1:
        raise ValueError(f"crop_window must lie in (0, 1], got {cfg['crop_window']}")
    if not 0 < cfg["val_fraction"] < 0.5:
        raise ValueError(f"val_fraction must lie in (0, 0.5), got {cfg['val_fraction']}")
    return cfg


# --------------------------------------------------------------------------------------------
# raw features per modality
# --------------------------------------------------------------------------------------------
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


def cohort_from_patient(patient: Patient) -> Cohort:
    """A one-patient :class:`Cohort` holding the patient's data (so that one code path serves both)."""
    if not isinstance(patient, Patient):
        raise TypeError(f"expected an oncolab.data.Patient, got {type(patient).__name__}")
    pid = pd.Index([patient.patient_id], name="patient_id")
    pres = dict(patient.presence)
    pres.setdefault("radiograph", patient.radiograph is not None)
    pres.setdefault("pathology", patient.slide is not None)
    pres["radiograph"] = bool(pres["radiograph"] and patient.radiograph is not None)
    pres["pathology"] = bool(pres["pathology"] and patient.slide is not None)
    tables = {"labels": pd.DataFrame({"diagnosis": [patient.diagnosis], "y": [patient.y], "time": [patient.time],
                                      "event": [patient.event]}, index=pid)}
    mods = ["radiograph", "pathology"]
    if patient.clinical:
        tables["clinical"] = pd.DataFrame([patient.clinical], index=pid)
        mods.append("clinical")
    if patient.labs:
        tables["labs"] = pd.DataFrame([patient.labs], index=pid).astype(float)
        mods.append("labs")
    if patient.genes is not None:
        tables["genes"] = pd.DataFrame([patient.genes.to_numpy()], columns=list(patient.genes.index), index=pid)
        mods.append("genes")
    if patient.box is not None:
        tables["boxes"] = pd.DataFrame([patient.box], columns=["x0", "y0", "x1", "y1"], index=pid)
    tables["presence"] = pd.DataFrame({m: [bool(pres.get(m, m in mods))] for m in MODALITIES if m in mods}, index=pid)
    return Cohort(tables, images=_PatientImages(patient), meta={"source": "patient", "modalities": [m for m in MODALITIES if m in mods]})


def _learned(cfg: dict, modality: str) -> bool:
    """Whether ``modality`` goes through a stage of :mod:`oncolab.learned_stages` (raw data in)."""
    if modality == "radiograph":
        return (cfg["detector"], cfg["radiograph_encoder"]) != ("annotated", "handcrafted")
    if modality == "pathology":
        return cfg["pathology_encoder"] == "mil"
    if modality == "labs":
        return cfg["labs_encoder"] != "numeric"
    return False


def _has_table(cohort: Cohort, modality: str, cfg: dict | None = None) -> bool:
    if modality not in cohort.modalities:
        return False
    if modality == "radiograph":
        needs_boxes = cfg is None or cfg["detector"] == "annotated"
        return cohort.images is not None and ("boxes" in cohort.tables or not needs_boxes)
    if modality == "pathology":
        return cohort.images is not None
    return modality in cohort.tables


def modality_features(cohort: Cohort, modalities=None, on_bad_image: str = "raise",
                      progress: bool = False, config: dict | None = None) -> tuple[dict[str, Any], pd.DataFrame, list[str]]:
    """Raw per-modality features of every patient, the presence mask, and warnings.

    Returns ``(features, presence, notes)``: ``features[m]`` has one row per patient (NaN
    rows where the modality is absent; the clinical and gene entries are the cohort's
    tables), ``presence`` a bool DataFrame (patients x modalities). Taught in chapter 10.
    With a ``config`` whose stages are learned (:data:`LEARNED_CONFIG`), the radiograph,
    pathology and lab entries hold what those stages read instead: images and boxes, tile
    bags, narratives (see :mod:`oncolab.learned_stages`).
    """
    if on_bad_image not in ("raise", "mask"):
        raise ValueError(f"on_bad_image must be 'raise' or 'mask', got {on_bad_image!r}")
    cfg = _check_config(config)
    mods = list(modalities or MODALITIES)
    n = len(cohort)
    pres = cohort.presence
    presence = pd.DataFrame(False, index=cohort.ids, columns=mods)
    feats: dict[str, Any] = {}
    notes: list[str] = []
    for m in mods:
        if not _has_table(cohort, m, cfg):
            continue
        presence[m] = pres[m].to_numpy(bool) if m in pres.columns else True
    for m in ("radiograph", "pathology"):
        if m not in mods or not presence[m].any():
            continue
        learned = _learned(cfg, m)
        arr = np.full((n, 9), np.nan)
        items = np.empty(n, dtype=object)
        coords = np.empty(n, dtype=object)
        it = range(n)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"{m} features", leave=False)
        for i in it:
            if not presence[m].iat[i]:
                continue
            pid = cohort.ids[i]
            try:
                if m == "radiograph" and learned:
                    items[i] = _check_image(cohort.radiograph(pid), "radiograph", 2)
                elif m == "radiograph":
                    arr[i] = radiograph_features(cohort.radiograph(pid), cohort.boxes.loc[pid].to_numpy(float))
                elif learned:
                    items[i], coords[i] = tile_bag(cohort.slide(pid), cfg["tile_size"])
                else:
                    arr[i] = slide_features(cohort.slide(pid))
            except (ValueError, TypeError) as e:
                if on_bad_image == "raise":
                    raise ValueError(f"patient {pid}: bad {m} image ({e})") from e
                presence.iat[i, presence.columns.get_loc(m)] = False
                notes.append(f"{pid}: {m} masked ({e})")
        if m == "radiograph" and learned:
            boxes = (cohort.boxes[["x0", "y0", "x1", "y1"]].to_numpy(float) if "boxes" in cohort.tables
                     else np.full((n, 4), np.nan))
            feats[m] = radiograph_raw(list(items), boxes)
        elif learned:
            feats[m] = {"bags": items, "coords": coords, "tile_size": cfg["tile_size"]}
        else:
            feats[m] = arr
    if "labs" in mods and presence["labs"].any():
        presence["labs"] &= ~cohort.labs.isna().all(1).to_numpy()
        if _learned(cfg, "labs"):
            texts = lab_text_raw(cohort, seed=cfg["seed"])
            texts[~presence["labs"].to_numpy()] = None
            feats["labs"] = texts
        else:
            feats["labs"] = lab_features(cohort.labs)
    if "genes" in mods and presence["genes"].any():
        feats["genes"] = cohort.genes
    if "clinical" in mods and presence["clinical"].any():
        feats["clinical"] = cohort.clinical
    return feats, presence, notes


def _take(v, pos):
    if isinstance(v, pd.DataFrame):
        return v.iloc[pos]
    if isinstance(v, dict):
        return {k: _take(x, pos) for k, x in v.items()}
    if np.isscalar(v):
        return v
    return np.asarray(v)[pos]


def subset_features(features: tuple, positions) -> tuple:
    """The rows ``positions`` of the output of :func:`modality_features` (same order as ``cohort.subset``)."""
    feats, presence, notes = features
    pos = np.asarray(positions)
    sub = {m: _take(v, pos) for m, v in feats.items()}
    ids = set(presence.index[pos])
    return sub, presence.iloc[pos], [n for n in notes if n.split(":")[0] in ids]


# --------------------------------------------------------------------------------------------
# per-modality encoders: raw features -> embedding (fitted on training patients only)
# --------------------------------------------------------------------------------------------
class _Scaled:
    """Standardise columns with training mean/sd; NaN -> 0 (the training mean)."""

    kind = "scaled"

    def __init__(self, names=None):
        self.names = list(names) if names is not None else None

    def feature_names(self) -> list[str]:
        return self.names or [f"x{k + 1}" for k in range(len(self.mean_))]

    def fit(self, X, rows):
        if isinstance(X, pd.DataFrame):
            self.names = [str(c) for c in X.columns]
        X = np.asarray(X, float)[rows]
        self.mean_ = np.nanmean(X, 0)
        self.mean_ = np.where(np.isfinite(self.mean_), self.mean_, 0.0)
        sd = np.nanstd(X, 0, ddof=1)
        self.std_ = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return self

    def transform(self, X):
        Z = (np.asarray(X, float) - self.mean_) / self.std_
        return np.nan_to_num(Z, nan=0.0)

    def state(self):
        return {"kind": self.kind, "names": self.names}, {"mean": self.mean_, "std": self.std_}

    def load(self, cfg, arrays):
        self.mean_, self.std_ = arrays["mean"], arrays["std"]
        self.names = cfg.get("names") or self.names
        return self


class _Genes:
    kind = "genes"

    def __init__(self, n_components: int | None):
        self.n_components = n_components

    def feature_names(self) -> list[str]:
        return list(self.pre.genes) if self.pca is None else [f"PC{k + 1}" for k in range(self.pca.n_components)]

    def fit(self, X, rows):
        self.pre = GenePreprocessor().fit(X.iloc[rows])
        Z = self.pre.transform(X.iloc[rows])
        self.pca = PCA(min(self.n_components, *Z.shape)).fit(Z) if self.n_components else None
        if self.pca is not None:
            self.scale_ = np.sqrt(self.pca.explained_variance_)
        return self

    def transform(self, X):
        Z = self.pre.transform(X)
        return Z if self.pca is None else self.pca.transform(Z) / self.scale_

    def state(self):
        c, a = self.pre.state()
        cfg = {"kind": self.kind, "pre": c, "n_components": self.n_components}
        arrays = {f"pre.{k}": v for k, v in a.items()}
        if self.pca is not None:
            pc, pa = self.pca.state()
            cfg["pca"] = pc
            arrays.update({f"pca.{k}": v for k, v in pa.items()})
            arrays["scale"] = self.scale_
        return cfg, arrays

    def load(self, cfg, arrays):
        self.pre = GenePreprocessor.from_state(cfg["pre"], {k[4:]: v for k, v in arrays.items() if k.startswith("pre.")})
        self.pca = None
        if cfg.get("pca"):
            self.pca = PCA.from_state(cfg["pca"], {k[4:]: v for k, v in arrays.items() if k.startswith("pca.")})
            self.scale_ = arrays["scale"]
        return self


class _Clinical:
    kind = "clinical"

    def fit(self, X, rows):
        self.pre = ClinicalPreprocessor().fit(X.iloc[rows])
        return self

    def feature_names(self) -> list[str]:
        return self.pre.feature_names()

    def transform(self, X):
        return self.pre.one_hot(X)

    def state(self):
        c, a = self.pre.state()
        return {"kind": self.kind, "pre": c}, a

    def load(self, cfg, arrays):
        self.pre = ClinicalPreprocessor.from_state(cfg["pre"], arrays)
        return self


def _make_encoder(modality: str, cfg: dict):
    if _learned(cfg, modality):
        common = {"seed": cfg["seed"], "progress": cfg["progress"]}
        if modality == "radiograph":
            return RadiographStage(cfg["detector"], cfg["radiograph_encoder"], cfg["crop_window"], cfg["crop_size"],
                                   cfg["cnn_epochs"], cfg["folds"], cfg["detector_epochs"], cfg["detector_imgsz"],
                                   **common)
        if modality == "pathology":
            return PathologyStage(cfg["mil_epochs"], cfg["folds"], **common)
        return LabTextStage(cfg["text_components"], cfg["labs_encoder"], cfg["bert_epochs"], **common)
    if modality == "genes":
        return _Genes(cfg["gene_components"] if cfg["genes_encoder"] == "pca" else None)
    if modality == "clinical":
        return _Clinical()
    return _Scaled({"radiograph": RADIOGRAPH_FEATURES, "pathology": SLIDE_FEATURES}.get(modality))


# --------------------------------------------------------------------------------------------
# the system
# --------------------------------------------------------------------------------------------
class OncoLabSystem:
    """Detection -> encoders -> fusion -> diagnosis and risk, configured by a dict.

    Parameters
    ----------
    config:
        Any keys of :data:`DEFAULT_CONFIG` (the rest take their defaults). Unknown keys and
        unknown choices raise a ValueError listing what is allowed.
    """

    def __init__(self, config: dict | None = None):
        self.config = _check_config(config)
        self.model = None
        self.encoders: dict[str, Any] = {}
        self.modalities_: list[str] = []
        self.dims_: dict[str, int] = {}
        self.risk_cuts_: np.ndarray | None = None
        self.history_: list[dict] = []

    # ---- internals ---------------------------------------------------------------------
    def _embed(self, feats, presence, fitted: dict | None = None,
               notes: list | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Embeddings of every modality; ``fitted`` holds stage outputs computed during fit."""
        X = {}
        for m in self.modalities_:
            if fitted is not None and m in fitted:
                Z = fitted[m]
            elif m in feats:
                Z = self.encoders[m].transform(feats[m])
            if m in feats:
                for pos, note in getattr(self.encoders[m], "notes_", []):
                    if notes is not None and presence[m].iat[pos]:
                        notes.append(f"{presence.index[pos]}: {m} {note}")
                Z = np.where(presence[m].to_numpy()[:, None], Z, 0.0)  # masked below; zero keeps it finite
            else:
                Z = np.zeros((len(presence), self.dims_[m]))
            X[m] = Z
        mask = np.stack([presence[m].to_numpy(bool) if m in presence else np.zeros(len(presence), bool)
                         for m in self.modalities_], 1)
        return X, mask

    def _features(self, cohort: Cohort, on_bad_image: str, modalities=None):
        return modality_features(cohort, modalities or self.config["modalities"], on_bad_image,
                                 self.config["progress"], self.config)

    # ---- fit ---------------------------------------------------------------------------
    def fit(self, cohort: Cohort, on_bad_image: str = "raise", features: tuple | None = None,
            stages: OncoLabSystem | None = None) -> OncoLabSystem:
        """Fit every stage and the fusion model on ``cohort`` (its own train/val split).

        ``features``: the output of :func:`modality_features` for this cohort (with this
        configuration's stages), when already computed (several systems fitted on the same
        patients then share the image work). ``stages``: a system already fitted on the same
        patients with the same stage settings, whose fitted stages (detector, CNN, MIL, text
        and table encoders) are reused: only the fusion model is trained. The ablation of
        chapter 10 fits its many models this way.
        """
        from .env import seed_everything
        from .fusion import make_fusion, train_model

        if not isinstance(cohort, Cohort):
            raise TypeError(f"fit needs an oncolab.data.Cohort, got {type(cohort).__name__}")
        cfg = self.config
        seed_everything(cfg["seed"])
        feats, presence, notes = features if features is not None else self._features(cohort, on_bad_image)
        absent = [m for m in cfg["modalities"] if m not in feats or not presence[m].any()]
        if absent:
            raise ValueError(f"modality {absent[0]!r} is absent in every training patient; remove it from "
                             f"config['modalities'] (now {cfg['modalities']}) or supply it")
        self.modalities_ = list(cfg["modalities"])
        # a validation part for early stopping, split off the training patients (stratified)
        parts = train_val_test_split(cohort, (1 - cfg["val_fraction"], 0.0, cfg["val_fraction"]), seed=cfg["seed"])
        tr, va = parts["train"], parts["test"]
        y = cohort.y
        fitted: dict[str, np.ndarray] = {}
        if stages is not None:
            stages._check_fitted()
            differ = [k for k in STAGE_KEYS if stages.config[k] != cfg[k]]
            if differ or not stages.fit_ids_.equals(cohort.ids) or set(self.modalities_) - set(stages.modalities_):
                raise ValueError("stages= must be a system fitted on the same patients, with the same stage "
                                 f"settings and all of {self.modalities_} (settings that differ: {differ})")
            self.encoders = {m: stages.encoders[m] for m in self.modalities_}
            fitted = {m: stages.fit_embeddings_[m] for m in self.modalities_ if m in stages.fit_embeddings_}
        else:
            self.encoders = {}
            for m in self.modalities_:
                present = presence[m].to_numpy()
                rows = tr[present[tr]]
                if len(rows) < 2:
                    raise ValueError(f"modality {m!r} is present in fewer than 2 training patients; "
                                     "cannot fit its encoder")
                enc = _make_encoder(m, cfg)
                if hasattr(enc, "fit_transform"):  # a learned stage: cross-fitted on every fitting patient
                    fitted[m] = enc.fit_transform(feats[m], np.flatnonzero(present), y)
                else:
                    enc.fit(feats[m], rows)
                self.encoders[m] = enc
        notes = list(notes)
        X, mask = self._embed(feats, presence, fitted, notes)
        self.fit_ids_ = cohort.ids
        self.fit_embeddings_ = {m: X[m] for m in fitted}
        self.dims_ = {m: int(X[m].shape[1]) for m in self.modalities_}
        lab = cohort.labels
        t, e = lab["time"].to_numpy(float), lab["event"].to_numpy(bool)
        self.model = make_fusion(cfg["fusion"], self.dims_, seed=cfg["seed"], head=cfg["head"],
                                 hidden=cfg["hidden"], dropout=cfg["dropout"])
        sub = lambda d, r: {m: v[r] for m, v in d.items()}  # noqa: E731
        res = train_model(self.model, sub(X, tr), mask[tr], y[tr], t[tr], e[tr], task=cfg["task"],
                          epochs=cfg["epochs"], lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                          survival_weight=cfg["survival_weight"], p_modality_dropout=cfg["modality_dropout"],
                          val=(sub(X, va), mask[va], y[va], t[va], e[va]), patience=cfg["patience"],
                          seed=cfg["seed"], progress=cfg["progress"])
        self.history_ = res.history
        from .fusion import predict_model

        risk_tr = predict_model(self.model, sub(X, tr), mask[tr])["risk"]
        self.risk_cuts_ = np.quantile(risk_tr, [1 / 3, 2 / 3])
        self.fit_notes_ = notes
        return self

    def embed(self, cohort: Cohort, features: tuple | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The fusion model's inputs for ``cohort``: ``({modality: (n, d) array}, (n, M) mask)``."""
        self._check_fitted()
        feats, presence, _ = features if features is not None else self._features(cohort, "raise", self.modalities_)
        return self._embed(feats, presence.reindex(columns=self.modalities_, fill_value=False))

    def feature_names(self) -> dict[str, list[str]]:
        """The name of every input of the fusion model, ``{modality: [names]}`` (for explanations)."""
        self._check_fitted()
        return {m: [f"{m}: {n}" for n in self.encoders[m].feature_names()] for m in self.modalities_}

    def _check_fitted(self):
        if self.model is None:
            raise RuntimeError("this OncoLabSystem is not fitted: call fit(cohort) or OncoLabSystem.load(path)")

    # ---- predict -----------------------------------------------------------------------
    def predict(self, data: Cohort | Patient, on_bad_image: str = "raise",
                missing_modalities: str = "error", features: tuple | None = None) -> pd.DataFrame:
        """One row per patient: class probabilities, predicted diagnosis, risk, risk group,
        each modality's weight (where the fusion has weights), the modalities used, notes."""
        from .fusion import predict_model

        self._check_fitted()
        if missing_modalities not in ("error", "mask"):
            raise ValueError(f"missing_modalities must be 'error' or 'mask', got {missing_modalities!r}")
        cohort = cohort_from_patient(data) if isinstance(data, Patient) else data
        if not isinstance(cohort, Cohort):
            raise TypeError(f"predict needs a Cohort or a Patient, got {type(data).__name__}")
        lacking = [m for m in self.modalities_ if not _has_table(cohort, m, self.config)]
        if lacking and missing_modalities == "error" and not isinstance(data, Patient):
            raise ValueError(f"this cohort has no {lacking} data, but the model was fitted with "
                             f"{self.modalities_}; pass missing_modalities='mask' to predict without them")
        if lacking:
            warnings.warn(f"no {lacking} data: masked for every patient", stacklevel=2)
        if features is not None:
            feats, presence, notes = features
            presence = presence.reindex(columns=self.modalities_, fill_value=False)
        else:
            feats, presence, notes = modality_features(cohort, self.modalities_, on_bad_image, self.config["progress"],
                                                       self.config)
        if isinstance(data, Patient) and "genes" in feats:
            feats["genes"] = feats["genes"][self.encoders["genes"].pre.genes]
        notes = list(notes)
        X, mask = self._embed(feats, presence, notes=notes)
        none = ~mask.any(1)
        if none.any():
            raise ValueError(f"patient {cohort.ids[int(np.argmax(none))]} has none of the modalities {self.modalities_}")
        out = predict_model(self.model, X, mask)
        df = pd.DataFrame(out["proba"], index=cohort.ids, columns=[f"p_{d}" for d in DIAGNOSES])
        df["predicted"] = np.asarray(DIAGNOSES)[out["proba"].argmax(1)]
        df["risk"] = out["risk"]
        df["risk_group"] = np.asarray(RISK_GROUPS)[np.searchsorted(self.risk_cuts_, out["risk"])]
        if "weights" in out:
            for j, m in enumerate(self.modalities_):
                df[f"w_{m}"] = out["weights"][:, j]
        df["modalities_used"] = [",".join(m for m, k in zip(self.modalities_, row) if k) for row in mask]
        by_pid: dict[str, list[str]] = {}
        for note in notes:
            by_pid.setdefault(note.split(":")[0], []).append(note)
        df["warnings"] = [";".join(by_pid.get(p, [])) for p in cohort.ids]
        return df

    def evaluate(self, cohort: Cohort, n_boot: int = 200, seed: int | None = None,
                 features: tuple | None = None) -> pd.DataFrame:
        """A tidy table (metric, value, ci_low, ci_high, n) on ``cohort``'s patients."""
        from .fusion import bootstrap_metrics

        pred = self.predict(cohort, features=features)
        proba = pred[[f"p_{d}" for d in DIAGNOSES]].to_numpy()
        lab = cohort.labels
        return bootstrap_metrics(cohort.y, proba, lab["time"].to_numpy(float), lab["event"].to_numpy(bool),
                                 pred["risk"].to_numpy(), n_boot=n_boot,
                                 seed=self.config["seed"] if seed is None else seed)

    # ---- save / load -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path/model.safetensors`` and ``path/config.json`` (each via a temporary file)."""
        from safetensors.numpy import save_file

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {f"model.{k}": v.detach().cpu().numpy().copy()
                                         for k, v in self.model.state_dict().items()}
        stage_cfg = {}
        for m, enc in self.encoders.items():
            c, a = enc.state()
            stage_cfg[m] = c
            arrays.update({f"stage.{m}.{k}": np.ascontiguousarray(np.asarray(v)) for k, v in a.items()})
        arrays["risk_cuts"] = np.asarray(self.risk_cuts_, np.float64)
        meta = {"format": "oncolab-system", "format_version": FORMAT_VERSION, "config": self.config,
                "modalities": self.modalities_, "dims": self.dims_, "stages": stage_cfg,
                "classes": list(DIAGNOSES)}
        tmp = path / "model.safetensors.partial"
        save_file(arrays, str(tmp))
        os.replace(tmp, path / "model.safetensors")
        tmp = path / "config.json.partial"
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(tmp, path / "config.json")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> OncoLabSystem:
        """Read a folder written by :meth:`save`; only JSON and tensors are read, no code runs."""
        import torch
        from safetensors.numpy import load_file

        from .fusion import make_fusion

        path = Path(path)
        cfg_path, w_path = path / "config.json", path / "model.safetensors"
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: expected a folder written by OncoLabSystem.save")
        meta = json.loads(cfg_path.read_text())
        if not isinstance(meta, dict) or meta.get("format") != "oncolab-system":
            raise ValueError(f"{cfg_path} is not an OncoLab system configuration")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{cfg_path} has format version {meta.get('format_version')!r}; "
                             f"this oncolab reads version {FORMAT_VERSION}")
        if meta.get("classes") != list(DIAGNOSES):
            raise ValueError(f"saved classes {meta.get('classes')} differ from {list(DIAGNOSES)}")
        sys_ = cls(meta["config"])
        sys_.modalities_ = list(meta["modalities"])
        if sys_.modalities_ != sys_.config["modalities"] or set(meta["stages"]) != set(sys_.modalities_):
            raise ValueError(f"incompatible saved model: modalities {meta['modalities']} do not match its "
                             f"config {sys_.config['modalities']} and stages {sorted(meta['stages'])}")
        sys_.dims_ = {m: int(meta["dims"][m]) for m in sys_.modalities_}
        arrays = load_file(str(w_path))
        for m in sys_.modalities_:
            pre = f"stage.{m}."
            sys_.encoders[m] = _make_encoder(m, sys_.config).load(
                meta["stages"][m], {k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)})
        sys_.risk_cuts_ = arrays["risk_cuts"]
        model = make_fusion(sys_.config["fusion"], sys_.dims_, seed=sys_.config["seed"], head=sys_.config["head"],
                            hidden=sys_.config["hidden"], dropout=sys_.config["dropout"])
        state = {k[6:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model.")}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"incompatible saved model: its weights do not fit the configured "
                             f"{sys_.config['fusion']!r} fusion ({str(e).splitlines()[0]})") from e
        model.eval()
        sys_.model = model
        return sys_


# --------------------------------------------------------------------------------------------
# ablation: which modalities and which fusion matter
# --------------------------------------------------------------------------------------------
def ablation(cohort: Cohort, train: np.ndarray, test: np.ndarray, features: tuple | None = None,
             config: dict | None = None, modality_sets: list[list[str]] | None = None,
             fusions: list[str] | None = None, n_boot: int = 200, progress: bool = False,
             stages: OncoLabSystem | None = None) -> pd.DataFrame:
    """Fit one system per (modality set, fusion) on ``train`` positions, score it on ``test``.

    Defaults: every single modality, then all of them, with ``config['fusion']``; then all
    modalities with every other fusion. Returns a tidy table: one row per model with the
    diagnosis metrics, the C-index and bootstrap intervals of macro AUC and C-index.
    Taught in chapter 10; ``oncolab run`` writes it.

    The stages (detector, CNN, MIL, text and table encoders) are fitted once, on all
    modalities, and shared by every model (``stages``: a system already fitted on the
    ``train`` patients with this configuration's stages, to reuse its stages); so the table
    compares what fusion makes of the same per-modality embeddings.
    """
    base = _check_config({**(config or {}), "progress": False})
    mods = base["modalities"]
    if modality_sets is None:
        modality_sets = [[m] for m in mods] + [list(mods)]
    if fusions is None:
        fusions = [f for f in CHOICES["fusion"] if f != base["fusion"]]
    if features is None:
        features = modality_features(cohort, mods, progress=progress, config=base)
    ftr, fte = subset_features(features, train), subset_features(features, test)
    ctr, cte = cohort.subset(train), cohort.subset(test)
    if stages is None:
        stages = OncoLabSystem(base).fit(ctr, features=ftr)
    jobs = [(ms, base["fusion"]) for ms in modality_sets] + [(list(mods), f) for f in fusions]
    rows = []
    it = jobs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(jobs, desc="ablation")
    for ms, fusion in it:
        s = OncoLabSystem({**base, "modalities": ms, "fusion": fusion}).fit(ctr, features=ftr, stages=stages)
        tab = s.evaluate(cte, n_boot=n_boot, features=fte).set_index("metric")
        row = {"modalities": "+".join(ms) if len(ms) < len(MODALITIES) else "all", "fusion": fusion}
        for met in ("macro_precision", "macro_f1", "macro_auc", "accuracy", "c_index"):
            row[met] = tab.at[met, "value"]
        for met in ("macro_auc", "c_index"):
            row[f"{met}_ci"] = f"[{tab.at[met, 'ci_low']:.3f}, {tab.at[met, 'ci_high']:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def robustness(system: OncoLabSystem, cohort: Cohort, features: tuple | None = None,
               rates=(0.0, 0.25, 0.5, 0.75, 1.0), seed: int = 0) -> pd.DataFrame:
    """Macro AUC and C-index as each modality goes missing in a fraction ``rate`` of patients.

    For every modality and rate, that modality is masked in a random (seeded) ``rate`` of the
    patients who have it; the other modalities are left as they are. Taught in chapter 10.
    """
    from .fusion import point_metrics, predict_model

    X, mask = system.embed(cohort, features)
    lab = cohort.labels
    rng = np.random.default_rng(seed)
    rows = []
    for j, m in enumerate(system.modalities_):
        u = rng.random(len(mask))
        for r in rates:
            if not 0 <= r <= 1:
                raise ValueError(f"missing rates must lie in [0, 1], got {r}")
            mk = mask.copy()
            mk[:, j] &= u >= r
            keep = mk.any(1)  # a patient left with nothing cannot be predicted
            out = predict_model(system.model, {k: v[keep] for k, v in X.items()}, mk[keep])
            pm = point_metrics(cohort.y[keep], out["proba"], lab["time"].to_numpy()[keep],
                               lab["event"].to_numpy(bool)[keep], out["risk"])
            rows.append({"modality": m, "missing_rate": r, "macro_auc": pm["macro_auc"], "c_index": pm["c_index"],
                         "n": int(keep.sum())})
    return pd.DataFrame(rows)
