"""The learned stages of the complete system: detector, CNN, attention-MIL and lab-text encoder.

Taught in chapter 12 ("The complete system"); the pieces themselves are built in chapters 2
(CNN), 3 (YOLO), 5 (attention-MIL) and 6 (lab panels as text).

Each stage turns one modality's raw data (images, tile bags, narratives) into a short vector
per patient that the fusion model of chapter 10 reads:

* :class:`RadiographStage`: lesion box (the annotated one, or a YOLO detector trained on the
  training patients) -> a fixed square window centred on the box -> a small ResNet trained to
  classify the diagnosis -> its class log-probabilities (or, with ``encoder="handcrafted"``,
  the nine measurements of :func:`oncolab.stages.radiograph_features` inside the box);
* :class:`PathologyStage`: the slide region's tissue tiles, each described by
  :func:`oncolab.vision.tile_features` -> gated attention-MIL -> class log-probabilities,
  and one attention weight per tile (the report draws them);
* :class:`LabTextStage`: the lab panel narrated as text (:func:`oncolab.text.narrate_cohort`,
  seeded by patient id) -> TF-IDF, a tiny BERT pretrained on the training narratives, or
  BioBERT from the hub -> PCA.

Cross-fitting
-------------
A supervised stage (CNN, MIL) trained on the same patients as the fusion model would hand the
fusion over-confident, memorised outputs for exactly those patients, and the fusion would learn
to trust that modality far too much. So the stage is *cross-fitted*: the fitting patients are
split into ``folds`` parts; a model trained on the other parts gives each part its
(out-of-fold) outputs, and the fusion is trained on those. New patients get the average of
the ``folds`` models' probabilities. This is the stacking recipe of Wolpert (1992).

Every stage has ``fit_transform(raw, rows, y)`` (fit on positions ``rows``, return the
embedding of every patient), ``transform(raw)``, and ``state()``/``load(cfg, arrays)``: JSON
settings plus arrays, which the system keeps in its safetensors file (no pickle).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["LabTextStage", "PathologyStage", "RadiographStage", "crossfit_folds", "lab_text_raw", "radiograph_raw",
           "tile_bag"]


def crossfit_folds(rows: np.ndarray, y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified ``(fit_positions, held_out_positions)`` pairs over the positions ``rows``."""
    from sklearn.model_selection import StratifiedKFold

    rows = np.asarray(rows)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"folds must be an integer >= 2, got {k!r}")
    counts = np.bincount(np.asarray(y)[rows])
    if len(rows) < 2 * k or counts[counts > 0].min() < k:
        raise ValueError(f"cross-fitting with {k} folds needs at least {k} patients of every diagnosis among "
                         f"the {len(rows)} fitting patients (counts {counts.tolist()})")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(rows[a], rows[b]) for a, b in skf.split(np.zeros(len(rows)), np.asarray(y)[rows])]


@contextlib.contextmanager
def _quiet_ultralytics(quiet: bool):
    """Silence ultralytics' per-epoch log lines (its progress bars go through its logger)."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    if quiet:
        LOGGER.setLevel("WARNING")
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def _folds(folds: list, desc: str, progress: bool):
    """The cross-fitting folds, with a progress bar when asked."""
    if not progress:
        return folds
    from tqdm.auto import tqdm

    return tqdm(folds, desc=desc, leave=False)


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-6, 1.0))


def _torch_state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _load_torch(model, arrays: dict[str, np.ndarray], what: str):
    import torch

    try:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"the saved {what} weights do not fit its configuration: {str(e).splitlines()[0]}") from e
    model.eval()
    return model


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


# --------------------------------------------------------------------------------------------
# raw data per patient (nothing learned yet)
# --------------------------------------------------------------------------------------------
def radiograph_raw(images: list, boxes: np.ndarray) -> dict:
    """The radiograph stage's input: an object array of images (None where absent) and boxes."""
    arr = np.empty(len(images), dtype=object)
    arr[:] = images
    return {"images": arr, "boxes": np.asarray(boxes, float).reshape(len(images), 4)}


def tile_bag(slide, tile_size: int = 64, min_tissue: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """One slide region -> its tissue tiles' features ``(N, F)`` and corners ``(N, 2)``.

    The tiles are described by :func:`oncolab.vision.slide_tile_features`. A region without
    tissue raises :class:`oncolab.vision.EmptyTileSetError` (a ValueError).
    """
    from .vision.pathology import slide_tile_features

    bag = slide_tile_features(slide, tile_size=tile_size, min_tissue=min_tissue)
    return bag.features, np.asarray(bag.tiles.coords)


def lab_text_raw(cohort, seed: int = 0) -> np.ndarray:
    """The lab narrative of every patient (object array of str), seeded by patient id."""
    from .text import narrate_cohort

    arr = np.empty(len(cohort), dtype=object)
    arr[:] = narrate_cohort(cohort, seed=seed, by="id")
    return arr


def _present(values) -> np.ndarray:
    return np.array([v is not None for v in values], bool)


# --------------------------------------------------------------------------------------------
# radiograph: detector -> window -> CNN
# --------------------------------------------------------------------------------------------
class RadiographStage:
    """Lesion box -> square window -> encoder; see the module docstring.

    ``detector``: ``"annotated"`` (the cohort's boxes) or ``"yolo"`` (YOLO11n trained from
    scratch on the training patients' radiographs, ``detector_epochs`` epochs at
    ``detector_imgsz`` pixels). ``encoder``: ``"cnn"`` (small ResNet on ``crop_size`` pixel
    windows, ``window`` times the image side, cross-fitted over ``folds``) or
    ``"handcrafted"`` (:func:`oncolab.stages.radiograph_features` in the box).
    Where the detector finds nothing, the window is centred on the image and the patient's
    ``notes`` say so.
    """

    kind = "radiograph"

    def __init__(self, detector: str = "yolo", encoder: str = "cnn", window: float = 0.5, crop_size: int = 64,
                 epochs: int = 15, folds: int = 3, detector_epochs: int = 12, detector_imgsz: int = 96,
                 seed: int = 0, progress: bool = False):
        if detector not in ("annotated", "yolo"):
            raise ValueError(f"detector must be 'annotated' or 'yolo', got {detector!r}")
        if encoder not in ("cnn", "handcrafted"):
            raise ValueError(f"radiograph encoder must be 'cnn' or 'handcrafted', got {encoder!r}")
        if not 0 < window <= 1:
            raise ValueError(f"window must lie in (0, 1], got {window!r}")
        self.detector, self.encoder, self.window, self.crop_size = detector, encoder, float(window), int(crop_size)
        self.epochs, self.folds = int(epochs), int(folds)
        self.detector_epochs, self.detector_imgsz = int(detector_epochs), int(detector_imgsz)
        self.seed, self.progress = int(seed), bool(progress)
        self.yolo = None
        self.models: list = []
        self.scaler = None
        self.notes_: list[tuple[int, str]] = []

    # -- boxes ---------------------------------------------------------------------------
    def _train_detector(self, raw: dict, rows: np.ndarray) -> None:
        from .data.io import write_yolo_dataset
        from .detection import YoloDetector

        rng = np.random.default_rng(self.seed)
        rows = np.array([r for r in rows if np.isfinite(raw["boxes"][r]).all()])
        if len(rows) < 10:
            raise ValueError(f"the detector needs annotated boxes of at least 10 training patients, got {len(rows)}")
        perm = rng.permutation(rows)
        n_val = max(2, len(rows) // 5)
        split = {"val": perm[:n_val], "train": perm[n_val:]}
        with tempfile.TemporaryDirectory(prefix="oncolab-yolo-") as tmp:
            items = {s: ((f"p{i:06d}", raw["images"][i], raw["boxes"][i]) for i in idx) for s, idx in split.items()}
            data = write_yolo_dataset(items, Path(tmp) / "data")
            det = YoloDetector("yolo11n.yaml", imgsz=self.detector_imgsz, project=Path(tmp) / "runs",
                               seed=self.seed, verbose=self.progress, device="cpu")
            with _quiet_ultralytics(not self.progress):
                det.fit(data, epochs=self.detector_epochs, val=True, plots=False, save=True)
        self._yolo_state = det.state()
        self.yolo = det

    def boxes(self, raw: dict) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """The box each patient's window is centred on, ``(n, 4)`` (NaN where no image), and notes."""
        images = raw["images"]
        n = len(images)
        present = _present(images)
        notes: list[tuple[int, str]] = []
        if self.detector == "annotated":
            boxes = raw["boxes"].copy()
            lacking = present & ~np.isfinite(boxes).all(1)
            if lacking.any():
                raise ValueError(f"patient at position {int(np.argmax(lacking))} has a radiograph but no annotated "
                                 "box; use detector='yolo'")
            return boxes, notes
        if self.yolo is None:
            raise RuntimeError("the radiograph stage's detector is not fitted")
        boxes = np.full((n, 4), np.nan)
        idx = np.flatnonzero(present)
        if len(idx):
            dets = self.yolo.predict([images[i] for i in idx], conf=0.05, max_det=1)
            for i, d in zip(idx, dets):
                if len(d):
                    boxes[i] = d.best()
                else:
                    h, w = images[i].shape[:2]
                    boxes[i] = (0, 0, w, h)
                    notes.append((int(i), "no lesion detected: window centred on the image"))
        return boxes, notes

    def crops(self, raw: dict, boxes: np.ndarray) -> np.ndarray:
        """Square windows (``window`` x image side) centred on ``boxes``, resized to ``crop_size``."""
        from .detection.crops import centred_window, roi_crop

        out = np.zeros((len(boxes), self.crop_size, self.crop_size), np.uint8)
        for i, img in enumerate(raw["images"]):
            if img is not None:
                out[i] = roi_crop(img, centred_window(boxes[i], img.shape[:2], self.window), self.crop_size, margin=0.0)
        return out

    # -- encoder -------------------------------------------------------------------------
    def _new_cnn(self, fold: int):
        from .vision.encoders import image_encoder

        return image_encoder("small_resnet", in_chans=1, num_classes=3, seed=self.seed + fold)

    def _handcrafted(self, raw, boxes) -> np.ndarray:
        from .stages import radiograph_features

        X = np.full((len(boxes), 9), np.nan)
        for i, img in enumerate(raw["images"]):
            if img is not None:
                X[i] = radiograph_features(img, boxes[i])
        return X

    def fit_transform(self, raw: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        from .vision.encoders import predict_proba, train_classifier

        rows = np.asarray(rows)
        if self.detector == "yolo":
            self._train_detector(raw, rows)
        boxes, self.notes_ = self.boxes(raw)
        if self.encoder == "handcrafted":
            from .system import _Scaled

            X = self._handcrafted(raw, boxes)
            self.scaler = _Scaled().fit(X, rows)
            return self.scaler.transform(X)
        crops = self.crops(raw, boxes)
        Z = np.zeros((len(crops), 3))
        self.models = []
        folds = crossfit_folds(rows, y, self.folds, self.seed)
        for k, (fit_rows, held) in enumerate(_folds(folds, "radiograph CNN folds", self.progress)):
            model = self._new_cnn(k)
            train_classifier(model, crops[fit_rows], y[fit_rows], epochs=self.epochs, seed=self.seed + k)
            Z[held] = _log(predict_proba(model, crops[held]))
            self.models.append(model)
        rest = np.setdiff1d(np.flatnonzero(_present(raw["images"])), rows)
        if len(rest):
            Z[rest] = self._ensemble(crops[rest])
        return Z

    def _ensemble(self, crops: np.ndarray) -> np.ndarray:
        from .vision.encoders import predict_proba

        return _log(np.mean([predict_proba(m, crops) for m in self.models], axis=0))

    def transform(self, raw: dict) -> np.ndarray:
        boxes, self.notes_ = self.boxes(raw)
        if self.encoder == "handcrafted":
            return self.scaler.transform(self._handcrafted(raw, boxes))
        crops = self.crops(raw, boxes)
        Z = np.zeros((len(crops), 3))
        idx = np.flatnonzero(_present(raw["images"]))
        if len(idx):
            Z[idx] = self._ensemble(crops[idx])
        return Z

    def grad_cam(self, crop: np.ndarray, target: int | None = None) -> np.ndarray:
        """Grad-CAM of the CNN ensemble on one window (mean of the fold models' maps), in [0, 1]."""
        from .vision.encoders import to_model_input
        from .vision.gradcam import grad_cam

        if self.encoder != "cnn" or not self.models:
            raise RuntimeError("Grad-CAM needs the fitted CNN encoder (encoder='cnn')")
        maps = [grad_cam(m, m.last_conv_layer, to_model_input(crop[None], m), targets=target)[0] for m in self.models]
        cam = np.mean(maps, axis=0)
        return (cam - cam.min()) / (cam.max() - cam.min() + 1e-12)

    def feature_names(self) -> list[str]:
        from .data import DIAGNOSES
        from .stages import RADIOGRAPH_FEATURES

        return list(RADIOGRAPH_FEATURES) if self.encoder == "handcrafted" else [f"CNN log p({d})" for d in DIAGNOSES]

    # -- save / load ---------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        cfg = {"kind": self.kind, "detector": self.detector, "encoder": self.encoder, "window": self.window,
               "crop_size": self.crop_size, "epochs": self.epochs, "folds": self.folds,
               "detector_epochs": self.detector_epochs, "detector_imgsz": self.detector_imgsz, "seed": self.seed,
               "n_models": len(self.models)}
        arrays: dict[str, np.ndarray] = {}
        if self.yolo is not None:
            ycfg, ya = self._yolo_state
            cfg["yolo"] = ycfg
            arrays.update({f"yolo.{k}": v for k, v in ya.items()})
        for k, m in enumerate(self.models):
            arrays.update({f"cnn{k}.{n}": v for n, v in _torch_state(m).items()})
        if self.scaler is not None:
            c, a = self.scaler.state()
            arrays.update({f"scaler.{n}": v for n, v in a.items()})
        return cfg, arrays

    def load(self, cfg: dict, arrays: dict[str, np.ndarray]) -> RadiographStage:
        from .detection import YoloDetector

        if cfg.get("yolo"):
            self._yolo_state = (cfg["yolo"], _prefixed(arrays, "yolo."))
            self.yolo = YoloDetector.from_state(cfg["yolo"], self._yolo_state[1], device="cpu")
        self.models = [_load_torch(self._new_cnn(k), _prefixed(arrays, f"cnn{k}."), "CNN")
                       for k in range(int(cfg.get("n_models", 0)))]
        if self.encoder == "handcrafted":
            from .system import _Scaled

            self.scaler = _Scaled().load({}, _prefixed(arrays, "scaler."))
        return self


# --------------------------------------------------------------------------------------------
# pathology: tiles -> attention-MIL
# --------------------------------------------------------------------------------------------
class PathologyStage:
    """Tile features -> gated attention-MIL (cross-fitted) -> class log-probabilities."""

    kind = "pathology"

    def __init__(self, epochs: int = 40, folds: int = 3, hidden_dim: int = 32, attention_dim: int = 16,
                 seed: int = 0, progress: bool = False):
        self.epochs, self.folds, self.hidden_dim, self.attention_dim = int(epochs), int(folds), int(hidden_dim), int(attention_dim)
        self.seed, self.progress = int(seed), bool(progress)
        self.models: list = []

    def _scaled(self, bags) -> list:
        return [None if b is None else ((b - self.mean_) / self.std_).astype(np.float32) for b in bags]

    def fit_transform(self, raw: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        from .vision.mil import fit_mil, predict_mil

        bags = raw["bags"]
        rows = np.asarray(rows)
        tiles = np.concatenate([bags[i] for i in rows])
        self.mean_ = tiles.mean(0)
        sd = tiles.std(0)
        self.std_ = np.where(sd > 1e-12, sd, 1.0)
        sb = self._scaled(bags)
        Z = np.zeros((len(bags), 3))
        self.models = []
        folds = crossfit_folds(rows, y, self.folds, self.seed)
        for k, (fit_rows, held) in enumerate(_folds(folds, "attention-MIL folds", self.progress)):
            m = fit_mil([sb[i] for i in fit_rows], y[fit_rows], n_classes=3, epochs=self.epochs,
                        hidden_dim=self.hidden_dim, attention_dim=self.attention_dim, seed=self.seed + k)
            Z[held] = _log(predict_mil(m, [sb[i] for i in held])[0])
            self.models.append(m)
        rest = np.setdiff1d(np.flatnonzero(_present(bags)), rows)
        if len(rest):
            Z[rest] = self._ensemble([sb[i] for i in rest])[0]
        return Z

    def _ensemble(self, bags: list) -> tuple[np.ndarray, list[np.ndarray]]:
        from .vision.mil import predict_mil

        outs = [predict_mil(m, bags) for m in self.models]
        proba = np.mean([o[0] for o in outs], axis=0)
        attention = [np.mean([o[1][j] for o in outs], axis=0) for j in range(len(bags))]
        return _log(proba), attention

    def transform(self, raw: dict) -> np.ndarray:
        sb = self._scaled(raw["bags"])
        Z = np.zeros((len(sb), 3))
        idx = np.flatnonzero(_present(sb))
        if len(idx):
            Z[idx] = self._ensemble([sb[i] for i in idx])[0]
        return Z

    def attention(self, raw: dict, position: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The tiles' attention weights (mean over the fold models), their corners and the tile size."""
        bag = raw["bags"][position]
        if bag is None:
            raise ValueError(f"patient at position {position} has no slide")
        return self._ensemble(self._scaled([bag]))[1][0], raw["coords"][position], raw["tile_size"]

    def feature_names(self) -> list[str]:
        from .data import DIAGNOSES

        return [f"MIL log p({d})" for d in DIAGNOSES]

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        cfg = {"kind": self.kind, "epochs": self.epochs, "folds": self.folds, "hidden_dim": self.hidden_dim,
               "attention_dim": self.attention_dim, "seed": self.seed, "n_models": len(self.models),
               "in_dim": int(len(self.mean_))}
        arrays = {"mean": self.mean_, "std": self.std_}
        for k, m in enumerate(self.models):
            arrays.update({f"mil{k}.{n}": v for n, v in _torch_state(m).items()})
        return cfg, arrays

    def load(self, cfg: dict, arrays: dict[str, np.ndarray]) -> PathologyStage:
        from .vision.mil import GatedAttentionMIL

        self.mean_, self.std_ = arrays["mean"], arrays["std"]
        self.models = [_load_torch(GatedAttentionMIL(cfg["in_dim"], 3, self.hidden_dim, self.attention_dim),
                                   _prefixed(arrays, f"mil{k}."), "attention-MIL") for k in range(cfg["n_models"])]
        return self


# --------------------------------------------------------------------------------------------
# labs: narrative -> TF-IDF -> PCA
# --------------------------------------------------------------------------------------------
class LabTextStage:
    """Lab narrative -> text encoder -> PCA to ``components`` values, each scaled to unit variance.

    ``model``: ``"tfidf"`` (:class:`oncolab.text.TfidfEncoder`, fitted on the training
    narratives), ``"bert"`` (:class:`oncolab.text.TinyBertEncoder`, its WordPiece vocabulary and
    masked-language-model pretraining on the training narratives, ``bert_epochs`` epochs) or
    ``"biobert"`` (:class:`oncolab.text.BioBertEncoder`: pretrained, from the hub; needs a
    network, and a saved system stores its name, not its weights). None of them sees a label,
    so the stage needs no cross-fitting.
    """

    kind = "labs_text"
    MODELS = ("tfidf", "bert", "biobert")

    def __init__(self, components: int = 16, model: str = "tfidf", bert_epochs: int = 10, seed: int = 0,
                 progress: bool = False):
        if model not in self.MODELS:
            raise ValueError(f"lab text model must be one of {list(self.MODELS)}, got {model!r}")
        self.components, self.model, self.bert_epochs, self.seed = int(components), model, int(bert_epochs), int(seed)

    def _new_encoder(self):
        return self._encoder_class()(**({"epochs": self.bert_epochs} if self.model == "bert" else {}))

    def _encoder_class(self):
        from .text import BioBertEncoder, TfidfEncoder, TinyBertEncoder

        return {"tfidf": TfidfEncoder, "bert": TinyBertEncoder, "biobert": BioBertEncoder}[self.model]

    def _encode(self, texts) -> np.ndarray:
        return self.encoder.encode([t for t in texts if t is not None]).astype(np.float64)

    def _embed(self, texts) -> np.ndarray:
        Z = np.zeros((len(texts), self.pca.n_components))
        idx = np.flatnonzero(_present(texts))
        if len(idx):
            Z[idx] = self.pca.transform(self._encode(texts[idx])) / self.scale_
        return Z

    def fit_transform(self, texts: np.ndarray, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        from .omics import PCA

        fit_texts = [texts[i] for i in rows]
        self.encoder = self._new_encoder()
        if not self.encoder.fitted:
            self.encoder.fit(fit_texts, seed=self.seed)
        T = self._encode(fit_texts)
        self.pca = PCA(min(self.components, *T.shape)).fit(T)
        self.scale_ = np.sqrt(np.maximum(self.pca.explained_variance_, 1e-12))
        return self._embed(texts)

    def transform(self, texts: np.ndarray) -> np.ndarray:
        return self._embed(texts)

    def feature_names(self) -> list[str]:
        return [f"{self.model} PC{k + 1}" for k in range(self.pca.n_components)]

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        ec, ea = self.encoder.state()
        pc, pa = self.pca.state()
        arrays = {**{f"enc.{k}": v for k, v in ea.items()}, **{f"pca.{k}": v for k, v in pa.items()},
                  "scale": self.scale_}
        return {"kind": self.kind, "model": self.model, "components": self.components, "seed": self.seed,
                "encoder": ec, "pca": pc}, arrays

    def load(self, cfg: dict, arrays: dict[str, np.ndarray]) -> LabTextStage:
        from .omics import PCA

        self.encoder = self._encoder_class().from_state(cfg["encoder"], _prefixed(arrays, "enc."))
        self.pca = PCA.from_state(cfg["pca"], _prefixed(arrays, "pca."))
        self.scale_ = arrays["scale"]
        return self
