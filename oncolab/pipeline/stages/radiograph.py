"""Radiograph stages: a lesion detector, a window around its box, and an encoder.

Taught in chapter 12 ("The complete system"); the detectors are built in chapter 3 (YOLO)
and chapter 12 (the hand-made lesion finder), the CNN in chapter 2.

Every radiograph stage first finds the lesion box with a *detector* chosen by name
(``SystemConfig.detector``, one of :data:`DETECTORS`):

* ``finder``: :class:`oncolab.detection.LesionFinder`, classical image processing whose few
  parameters are tuned on the training patients' annotated boxes (milliseconds per image; a
  cohort without annotated boxes gets its default settings);
* ``yolo``: YOLO11n trained from scratch on the training patients (minutes);
* ``annotated``: the cohort's annotated box, *also for the patients it predicts*. That box
  is a label (a reader marked the lesion), so this detector is the one deliberate exception
  to "no label at prediction": an upper bound for what a perfect detector gives, or the
  setting of a dataset where a reader marks the lesion before classification. Every result
  of a system using it says so (``OncoLabSystem.label_note``).

then describes the lesion with an *encoder* (the stage's registry name):

* ``measurements``: the nine hand-made lesion measurements of
  :func:`oncolab.features.lesion_measurements` inside the box, standardised;
* ``cnn``: a square window centred on the box (``crop_window`` times the image side,
  resized to ``crop_size`` pixels) -> small ResNet trained on the diagnosis, cross-fitted
  (:class:`~oncolab.pipeline.stages.base.CrossFittedStage`) -> class log-probabilities, or the
  network's penultimate-layer features reduced by a PCA fitted on the training patients
  (``SystemConfig.stage_output``, :class:`~oncolab.pipeline.stages.outputs.CrossFittedEncoder`).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from .base import Stage, Targets, prefixed, present, read_images
from .outputs import CrossFittedEncoder

__all__ = ["DETECTORS", "AnnotatedBoxes", "Detector", "FinderBoxes", "RadiographCNN", "RadiographMeasurements",
           "YoloBoxes", "read_radiographs"]


def read_radiographs(cohort, config, on_bad_image: str = "raise"):
    """Every patient's radiograph (object array, None where absent), the usable mask and notes.

    With the ``annotated`` detector the cohort's ``boxes`` table is read too (the named
    exception, see the module docstring); otherwise no label table is read.
    """
    images, usable, notes = read_images(cohort, "radiograph", config, on_bad_image=on_bad_image)
    raw = {"images": images}
    if config.detector == "annotated":
        if "boxes" not in cohort.tables:
            raise ValueError("detector='annotated' reads the cohort's 'boxes' table, which this cohort lacks; "
                             "use detector='finder' or 'yolo'")
        raw["annotated_boxes"] = cohort.boxes[["x0", "y0", "x1", "y1"]].to_numpy(float)
    return raw, usable, notes


# --------------------------------------------------------------------------------------------
# detectors
# --------------------------------------------------------------------------------------------
class Detector:
    """A detector trained on the training patients' annotated boxes, predicting from images alone.

    Subclasses implement ``fit``, ``find(images) -> (boxes (n, 4), found (n,))``, ``state`` and
    ``from_state``; :meth:`predict` handles absent images and patients where nothing was found
    (the box becomes the whole image, and a note says so).
    """

    name = ""
    reads_labels_at_prediction = False

    def find(self, images: list) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def predict(self, raw: dict) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Boxes ``(n, 4)`` (NaN where no image) and ``(position, note)`` pairs."""
        images = raw["images"]
        boxes = np.full((len(images), 4), np.nan)
        notes: list[tuple[int, str]] = []
        idx = np.flatnonzero(present(images))
        if len(idx):
            found_boxes, found = self.find([images[i] for i in idx])
            for i, b, ok in zip(idx, found_boxes, found):
                if ok:
                    boxes[i] = b
                else:
                    h, w = images[i].shape[:2]
                    boxes[i] = (0, 0, w, h)
                    notes.append((int(i), "no lesion found: window centred on the image"))
        return boxes, notes


class AnnotatedBoxes(Detector):
    """The annotated box of every patient, at fit *and* at prediction (a label: see the module docstring)."""

    name = "annotated"
    reads_labels_at_prediction = True

    def fit(self, raw: dict, rows: np.ndarray, boxes: np.ndarray, seed: int, progress: bool) -> None:
        """Nothing to learn."""

    def predict(self, raw: dict) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """The annotated boxes ``(n, 4)``; an image without one is an error naming its position."""
        boxes = np.asarray(raw["annotated_boxes"], float).copy()
        lacking = present(raw["images"]) & ~np.isfinite(boxes).all(1)
        if lacking.any():
            raise ValueError(f"patient at position {int(np.argmax(lacking))} has a radiograph but no annotated box; "
                             "use detector='finder' or 'yolo'")
        return boxes, []

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"name": self.name}, {}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> AnnotatedBoxes:
        return cls()


class FinderBoxes(Detector):
    """Boxes from the hand-made :class:`oncolab.detection.LesionFinder`, tuned on training boxes."""

    name = "finder"

    def __init__(self, finder=None):
        self.finder = finder

    def fit(self, raw: dict, rows: np.ndarray, boxes: np.ndarray, seed: int, progress: bool) -> None:
        from ...detection import LesionFinder

        rows = np.array([r for r in rows if np.isfinite(boxes[r]).all()], int)
        # with annotated training boxes its settings are tuned on them; without, its defaults are used
        self.finder = (LesionFinder().fit([raw["images"][i] for i in rows], boxes[rows]) if len(rows) >= 2
                       else LesionFinder(seed=seed))

    def find(self, images: list) -> tuple[np.ndarray, np.ndarray]:
        if self.finder is None:
            raise RuntimeError("the lesion finder is not fitted")
        return self.finder.predict(images)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        c, a = self.finder.state()
        return {"name": self.name, "finder": c}, a

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> FinderBoxes:
        from ...detection import LesionFinder

        return cls(LesionFinder.from_state(config["finder"], arrays))


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


class YoloBoxes(Detector):
    """Boxes from YOLO11n trained from scratch on the training patients (chapter 3)."""

    name = "yolo"

    def __init__(self, epochs: int = 12, imgsz: int = 96, yolo=None):
        self.epochs, self.imgsz, self.yolo = int(epochs), int(imgsz), yolo

    def fit(self, raw: dict, rows: np.ndarray, boxes: np.ndarray, seed: int, progress: bool) -> None:
        from ...data.io import write_yolo_dataset
        from ...detection import YoloDetector

        images = raw["images"]
        rows = np.array([r for r in rows if np.isfinite(boxes[r]).all()], int)
        if len(rows) < 10:
            raise ValueError(f"the detector needs annotated boxes of at least 10 training patients, got {len(rows)}")
        perm = np.random.default_rng(seed).permutation(rows)
        n_val = max(2, len(rows) // 5)
        split = {"val": perm[:n_val], "train": perm[n_val:]}
        with tempfile.TemporaryDirectory(prefix="oncolab-yolo-") as tmp:
            items = {s: ((f"p{i:06d}", images[i], boxes[i]) for i in idx) for s, idx in split.items()}
            data = write_yolo_dataset(items, Path(tmp) / "data")
            det = YoloDetector("yolo11n.yaml", imgsz=self.imgsz, project=Path(tmp) / "runs", seed=seed,
                               verbose=progress, device="cpu")
            with _quiet_ultralytics(not progress):
                det.fit(data, epochs=self.epochs, val=True, plots=False, save=True)
        self.yolo = det
        self._state = det.state()

    def find(self, images: list) -> tuple[np.ndarray, np.ndarray]:
        if self.yolo is None:
            raise RuntimeError("the YOLO detector is not fitted")
        dets = self.yolo.predict(images, conf=0.05, max_det=1)
        found = np.array([len(d) > 0 for d in dets])
        return np.array([d.best() if len(d) else (np.nan,) * 4 for d in dets], float).reshape(-1, 4), found

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        c, a = self._state
        return {"name": self.name, "epochs": self.epochs, "imgsz": self.imgsz, "yolo": c}, a

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> YoloBoxes:
        from ...detection import YoloDetector

        obj = cls(config["epochs"], config["imgsz"], YoloDetector.from_state(config["yolo"], arrays, device="cpu"))
        obj._state = (config["yolo"], arrays)
        return obj


DETECTORS = {"finder": FinderBoxes, "yolo": YoloBoxes, "annotated": AnnotatedBoxes}
"""The lesion detectors, by name (``SystemConfig.detector``)."""


def _new_detector(config) -> object:
    if config.detector == "yolo":
        return YoloBoxes(config.detector_epochs, config.detector_imgsz)
    return DETECTORS[config.detector]()


class _DetectorMixin:
    """What both radiograph stages share: a detector fitted on the training boxes."""

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """See :func:`read_radiographs`."""
        return read_radiographs(cohort, config, on_bad_image)

    @property
    def reads_labels_at_prediction(self) -> bool:  # type: ignore[override]
        return self.detector.reads_labels_at_prediction

    def fit_detector(self, raw: dict, rows: np.ndarray, targets: Targets, seed: int, progress: bool) -> None:
        boxes = targets.boxes if targets.boxes is not None else np.full((len(raw["images"]), 4), np.nan)
        self.detector.fit(raw, rows, boxes, seed, progress)

    def boxes(self, raw: dict) -> np.ndarray:
        """The box each patient's lesion is described in, ``(n, 4)`` (NaN where no image); sets notes."""
        boxes, self.notes_ = self.detector.predict(raw)
        return boxes

    def detector_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        c, a = self.detector.state()
        return c, {f"detector.{k}": v for k, v in a.items()}

    def restore_detector(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        self.detector = DETECTORS[config["detector"]["name"]].from_state(config["detector"],
                                                                        prefixed(arrays, "detector."))


class RadiographMeasurements(_DetectorMixin, Stage):
    """Detector box -> :func:`oncolab.features.lesion_measurements` -> standardised (9 columns)."""

    modality: ClassVar[str] = "radiograph"
    name: ClassVar[str] = "measurements"

    def __init__(self, detector=None, seed: int = 0):
        self.detector = detector if detector is not None else FinderBoxes()
        self.seed = int(seed)
        self.notes_: list[tuple[int, str]] = []

    @classmethod
    def from_config(cls, config) -> RadiographMeasurements:
        return cls(_new_detector(config), config.seed)

    def _measure(self, raw: dict, boxes: np.ndarray) -> np.ndarray:
        from ...features import LESION_FEATURES, lesion_measurements

        X = np.full((len(boxes), len(LESION_FEATURES)), np.nan)
        for i, img in enumerate(raw["images"]):
            if img is not None:
                X[i] = lesion_measurements(img, boxes[i])
        return X

    def fit_transform(self, raw, rows, targets):
        self.fit_detector(raw, rows, targets, self.seed, False)
        X = self._measure(raw, self.boxes(raw))
        fit = X[rows]
        self.mean_ = np.nanmean(fit, 0)
        sd = np.nanstd(fit, 0, ddof=1)
        self.std_ = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return self._scale(X)

    def _scale(self, X):
        return np.nan_to_num((X - self.mean_) / self.std_, nan=0.0)

    def transform(self, raw):
        return self._scale(self._measure(raw, self.boxes(raw)))

    def feature_names(self) -> list[str]:
        from ...features import LESION_FEATURES

        return list(LESION_FEATURES)

    def settings(self) -> dict:
        return {"seed": self.seed}

    def extra_state(self) -> dict:
        return {"detector": self.detector_state()[0]}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "std": self.std_, **self.detector_state()[1]}

    def restore(self, config, arrays):
        self.restore_detector(config, arrays)
        self.mean_, self.std_ = arrays["mean"], arrays["std"]


class RadiographCNN(_DetectorMixin, CrossFittedEncoder):
    """Detector box -> square window -> small ResNet (cross-fitted) -> class log-probabilities or features.

    Parameters
    ----------
    detector : Detector, optional
        The box finder (default: :class:`FinderBoxes`).
    window : float
        Window side as a fraction of the image side, in (0, 1].
    crop_size : int
        Side in pixels the window is resized to.
    epochs : int
        Training epochs of each fold's network.
    folds, seed, progress
        As in :class:`~oncolab.pipeline.stages.CrossFittedStage`.
    output, components, pretrained
        As in :class:`~oncolab.pipeline.stages.outputs.CrossFittedEncoder`: class
        log-probabilities, or the penultimate layer reduced to ``components`` values;
        ``pretrained`` starts from timm's ``resnet18`` with ImageNet weights (needs the hub).
    """

    modality: ClassVar[str] = "radiograph"
    name: ClassVar[str] = "cnn"
    family: ClassVar[str] = "resnet"

    def __init__(self, detector=None, window: float = 0.5, crop_size: int = 64, epochs: int = 15, folds: int = 3,
                 seed: int = 0, progress: bool = False, output: str = "logp", components: int = 8,
                 pretrained: bool = False):
        if not 0 < window <= 1:
            raise ValueError(f"window must lie in (0, 1], got {window!r}")
        self.window, self.crop_size, self.epochs = float(window), int(crop_size), int(epochs)
        super().__init__(folds, seed, progress, output=output, components=components, pretrained=pretrained)
        self.detector = detector if detector is not None else FinderBoxes()
        self.notes_: list[tuple[int, str]] = []

    @classmethod
    def from_config(cls, config) -> RadiographCNN:
        return cls(_new_detector(config), config.crop_window, config.crop_size, config.cnn_epochs, config.folds,
                   config.seed, config.progress, config.stage_output, config.feature_components, config.pretrained)

    def crops(self, raw: dict, boxes: np.ndarray) -> np.ndarray:
        """Square windows (``window`` x image side) centred on ``boxes``, resized to ``crop_size``."""
        from ...detection.crops import centred_window, roi_crop

        out = np.zeros((len(boxes), self.crop_size, self.crop_size), np.uint8)
        for i, img in enumerate(raw["images"]):
            if img is not None:
                out[i] = roi_crop(img, centred_window(boxes[i], img.shape[:2], self.window), self.crop_size, margin=0.0)
        return out

    def usable(self, raw) -> np.ndarray:
        return present(raw["images"])

    def prepare(self, raw, rows, targets):
        if targets is not None:
            self.fit_detector(raw, rows, targets, self.seed, self.progress)
        return self.crops(raw, self.boxes(raw))

    def new_model(self, n_classes: int, config: dict | None = None, fold: int = 0):
        """A fold's network; weights are downloaded only to train (``config`` given: a model to load into)."""
        from ...vision.encoders import image_classifier

        return image_classifier(self.family, self.pretrained, 1, n_classes, self.crop_size, self.seed + fold,
                                download=config is None)

    def fit_model(self, inputs, rows, y, n_classes, seed):
        from ...vision.encoders import train_classifier

        model = self.new_model(n_classes, fold=seed - self.seed)
        train_classifier(model, inputs[rows], y, epochs=self.epochs, seed=seed)
        return model

    def predict_model(self, model, inputs, rows):
        from ...vision.encoders import predict_proba

        return predict_proba(model, inputs[rows])

    def grad_cam(self, crop: np.ndarray, target: int | None = None) -> np.ndarray:
        """Grad-CAM of the fold models on one window (mean of their maps), scaled to [0, 1]."""
        from ...vision.encoders import to_model_input
        from ...vision.gradcam import grad_cam

        maps = [grad_cam(m, m.last_conv_layer, to_model_input(crop[None], m), targets=target)[0] for m in self.models]
        cam = np.mean(maps, axis=0)
        return (cam - cam.min()) / (cam.max() - cam.min() + 1e-12)

    def settings(self) -> dict:
        return {**super().settings(), "window": self.window, "crop_size": self.crop_size, "epochs": self.epochs,
                "folds": self.folds, "seed": self.seed}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "detector": self.detector_state()[0]}

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), **self.detector_state()[1]}

    def restore(self, config, arrays):
        self.restore_detector(config, arrays)
        super().restore(config, arrays)
