"""YOLO through ultralytics: train, validate and predict on a YOLO dataset, offline-safe.

Taught in chapter 3 ("Finding the tumor: object detection"); the complete system of chapter 12
calls it as ``detector = YoloDetector(); detector.fit(data_yaml); detections =
detector.predict(images)``.

Offline (tests, CI, a laptop without network) the model is built untrained from its YAML
config (``yolo11n.yaml``, shipped inside ultralytics); ``pretrained=True`` loads the COCO
weights ``yolo11n.pt`` and is only possible online (Google Colab). Before ultralytics is
first imported, the offline decision is taken (:func:`oncolab.env.configure`, which sets
``YOLO_OFFLINE`` when there is no network), and before every training or validation run a
font is put in ultralytics' settings folder (:func:`oncolab.env.install_ultralytics_font`), so
neither reaches for the network. Every run writes into ``project/name``
(by default under :func:`oncolab.env.data_dir`), never into the current directory.

The defaults (:data:`DEFAULTS`) are sized for a CPU: a 96-pixel input, a short schedule,
one optimiser step per batch (``nbs`` = ``batch``), a one-epoch warm-up and no mosaic; they
train on the book's synthetic cohort in a few minutes on two cores (``benchmarks/bench_yolo.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.io import YoloLabelError, read_data_yaml, read_image, read_yolo_labels
from ..env import configure, get_device, install_ultralytics_font, require_hub
from .boxes import Detections

__all__ = [
    "DEFAULTS",
    "IMAGE_SUFFIXES",
    "ValidationRun",
    "YoloDetector",
    "check_yolo_dataset",
    "ultralytics_map",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

DEFAULTS: dict = {
    "imgsz": 96,
    "epochs": 12,
    "batch": 16,
    "nbs": 16,             # nominal batch = batch: one optimiser step per batch
    "optimizer": "AdamW",
    "lr0": 0.002,
    "warmup_epochs": 1.0,
    "mosaic": 0.0,         # mosaic quarters the lesions at this small size
    "scale": 0.2,
    "translate": 0.1,
    "fliplr": 0.5,
    "flipud": 0.5,
    "hsv_h": 0.0,
    "hsv_s": 0.0,
    "hsv_v": 0.3,
    "patience": 100,
}
"""Training settings used by :meth:`YoloDetector.fit` unless overridden (CPU-sized)."""


# --------------------------------------------------------------------------------------------
# dataset checks
# --------------------------------------------------------------------------------------------
def _split_images(root: Path, entry) -> list[Path]:
    entries = entry if isinstance(entry, (list, tuple)) else [entry]
    files: list[Path] = []
    for e in entries:
        p = Path(e)
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix == ".txt":
            files += [Path(line.strip()) if Path(line.strip()).is_absolute() else root / line.strip()
                      for line in p.read_text().splitlines() if line.strip()]
        else:
            files.append(p)
    return files


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):   # ultralytics' rule: last /images/ -> /labels/
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _pil_open(path):
    """``PIL.Image.open`` as Pillow ships it.

    Importing ultralytics replaces ``PIL.Image.open`` by a version that, on a file Pillow cannot
    identify, tries to install the ``pi-heif`` plugin (with pip, when online) before failing;
    a damaged dataset image must fail at once instead.
    """
    import sys

    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(path)


def check_yolo_dataset(data_yaml: str | Path, splits: Sequence[str] = ("train", "val", "test"),
                       read_images: bool = True) -> dict[str, dict[str, int]]:
    """Check a YOLO dataset before training; return ``{split: {"images": n, "boxes": m}}``.

    Uses :func:`oncolab.data.read_data_yaml` (keys, folders exist and are not empty) and
    :func:`oncolab.data.read_yolo_labels` for every label file (five fields, box inside [0, 1]
    with positive area: errors name the file and line). With ``read_images`` every image is
    opened, so an unreadable file is reported by name here rather than skipped by ultralytics
    with a warning. An image without a label file is a background image (allowed). Taught in
    chapter 3; :meth:`YoloDetector.fit` runs it first.

    Parameters
    ----------
    data_yaml : str or pathlib.Path
        The dataset's ``data.yaml``.
    splits : sequence of str, default ("train", "val", "test")
        The splits to check; a split the YAML does not name is skipped.
    read_images : bool, default True
        Open (verify) every image.

    Returns
    -------
    dict of str to dict
        ``{split: {"images": n_images, "boxes": n_boxes}}`` for each split checked.

    Raises
    ------
    FileNotFoundError
        When ``data_yaml`` does not exist.
    oncolab.data.YoloLabelError
        (a ``ValueError``) When the YAML or a label file is malformed, a split holds no image,
        or there is no ``train`` split.
    ValueError
        When an image cannot be read.
    """
    data = read_data_yaml(data_yaml)
    root = Path(data["root"])
    n_classes = len(data["names"])
    out: dict[str, dict[str, int]] = {}
    for split in splits:
        if data.get(split) is None:
            continue
        images = _split_images(root, data[split])
        if not images:
            raise YoloLabelError(f"{data_yaml}: the {split!r} split ({data[split]}) holds no image files "
                                 f"(expected {', '.join(IMAGE_SUFFIXES)})")
        n_boxes = 0
        for img in images:
            if read_images:
                try:
                    with _pil_open(img) as im:
                        im.verify()
                except (OSError, SyntaxError, ImportError) as e:
                    raise ValueError(f"cannot read image {img}: {e}") from e
            lab = _label_path(img)
            if lab.is_file():
                n_boxes += len(read_yolo_labels(lab, n_classes))
        out[split] = {"images": len(images), "boxes": n_boxes}
    if "train" not in out:
        raise YoloLabelError(f"{data_yaml}: no 'train' split to train on")
    return out


# --------------------------------------------------------------------------------------------
# images in, detections out
# --------------------------------------------------------------------------------------------
def _to_bgr(image, i: int) -> np.ndarray:
    """One image as the uint8 (H, W, 3) BGR array ultralytics expects."""
    if isinstance(image, (str, Path)):
        image = read_image(image, "RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"images[{i}] must be uint8 (0-255), got dtype {arr.dtype}; "
                        "convert with (x * 255).round().astype(np.uint8) if it is a float image in [0, 1]")
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr[..., ::-1])   # RGB -> BGR
    raise ValueError(f"images[{i}] has shape {arr.shape}; expected a grayscale (H, W) or (H, W, 1) "
                     "image or an RGB (H, W, 3) image (convert RGBA or multi-channel images first)")


@dataclass
class ValidationRun:
    """ultralytics' validator on one split, with the predictions it scored; made by
    :meth:`YoloDetector.evaluate` (chapter 3).

    ``metrics`` holds ultralytics' own numbers (``precision``, ``recall``, ``mAP@0.5``,
    ``mAP@0.5:0.95``); ``predictions`` and ``ground_truth`` are the per-image boxes the
    validator matched (``xyxy``, in the validator's letterboxed pixel frame, where its IoUs are
    computed), ready for :func:`oncolab.detection.evaluate_detections`; ``files`` names the
    images in the same order; ``tp`` is the validator's own true-positive matrix (one row per
    detection in that order, one column per IoU threshold 0.5, 0.55, ..., 0.95).

    Attributes
    ----------
    metrics : dict of str to float
    predictions : list of Detections
    ground_truth : list of numpy.ndarray, each of shape (m, 4)
    files : list of str
    tp : numpy.ndarray of bool, shape (n_detections, 10)
    """

    metrics: dict[str, float]
    predictions: list[Detections] = field(repr=False)
    ground_truth: list[np.ndarray] = field(repr=False)
    files: list[str] = field(repr=False)
    tp: np.ndarray = field(repr=False)


def _recording_validator(records: list):
    from ultralytics.models.yolo.detect import DetectionValidator

    class RecordingValidator(DetectionValidator):
        """ultralytics' detection validator that also keeps every image's predictions."""

        def init_metrics(self, model):
            super().init_metrics(model)
            records.clear()

        def update_metrics(self, preds, batch):
            for si, pred in enumerate(preds):
                pbatch = self._prepare_batch(si, batch)
                records.append({
                    "file": str(pbatch["im_file"]),
                    "boxes": pred["bboxes"].detach().cpu().numpy().astype(float).copy(),
                    "scores": pred["conf"].detach().cpu().numpy().astype(float).copy(),
                    "classes": pred["cls"].detach().cpu().numpy().astype(int).copy(),
                    "gt_boxes": pbatch["bboxes"].detach().cpu().numpy().astype(float).reshape(-1, 4).copy(),
                    "gt_classes": pbatch["cls"].detach().cpu().numpy().astype(int).reshape(-1).copy(),
                    "shape": tuple(int(s) for s in pbatch["imgsz"]),
                    "tp": self._process_batch(pred, pbatch)["tp"].copy(),
                })
            super().update_metrics(preds, batch)

    return RecordingValidator


def ultralytics_map(predictions: Sequence, ground_truth: Sequence) -> dict[str, float]:
    """ultralytics' own mAP on given detections: its matcher and its ``ap_per_class``.

    The library side of the check in chapter 3: the same per-image detections and ground truth
    as :func:`oncolab.detection.evaluate_detections` takes (one class), scored with
    ``DetectionValidator.match_predictions`` and ``ultralytics.utils.metrics.ap_per_class``
    at the IoU thresholds 0.5, 0.55, ..., 0.95.

    Parameters
    ----------
    predictions : sequence
        One entry per image, in any form :func:`oncolab.detection.evaluate_detections` takes.
    ground_truth : sequence
        One entry per image, in the same order.

    Returns
    -------
    dict of str to float
        ``mAP@0.5``, ``mAP@0.5:0.95``, ``precision`` and ``recall`` (means over the classes
        with ground truth, as ultralytics computes them).

    Raises
    ------
    ValueError
        When the two sequences differ in length or an entry is invalid.
    TypeError
        When a prediction entry is none of the accepted forms.
    """
    import torch

    configure()   # before ultralytics is imported: it looks up DNS names on import unless offline
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class, box_iou

    from .boxes import split_ground_truth, split_predictions

    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} prediction entries for {len(ground_truth)} images")
    matcher = DetectionValidator.__new__(DetectionValidator)
    matcher.iouv = torch.linspace(0.5, 0.95, 10)
    tps, confs, pcls, tcls = [], [], [], []
    for i, (pred, gt) in enumerate(zip(predictions, ground_truth)):
        pb, ps, pc = split_predictions(pred, i)
        gb, gc = split_ground_truth(gt, i)
        order = np.argsort(-ps, kind="stable")   # the validator sees detections by decreasing score
        pb, ps, pc = pb[order], ps[order], pc[order]
        if len(pb) and len(gb):
            iou = box_iou(torch.as_tensor(gb, dtype=torch.float32), torch.as_tensor(pb, dtype=torch.float32))
            tp = matcher.match_predictions(torch.as_tensor(pc), torch.as_tensor(gc), iou).numpy()
        else:
            tp = np.zeros((len(pb), 10), bool)
        tps.append(tp)
        confs.append(ps)
        pcls.append(pc)
        tcls.append(gc)
    out = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls), np.concatenate(tcls))
    p, r, ap = out[2], out[3], out[5]
    return {"mAP@0.5": float(ap[:, 0].mean()), "mAP@0.5:0.95": float(ap.mean()),
            "precision": float(p.mean()), "recall": float(r.mean())}


# --------------------------------------------------------------------------------------------
# the detector
# --------------------------------------------------------------------------------------------
class YoloDetector:
    """A YOLO detector with a small interface: ``fit``, ``evaluate``, ``predict``, ``save``/``load``.

    Taught in chapter 3; the learned radiograph stage of chapter 12 finds its boxes with it.

    Parameters
    ----------
    model : str or pathlib.Path, default "yolo11n.yaml"
        An ultralytics model config (``"yolo11n.yaml"``, built untrained) or a weights file
        (``.pt``) written by :meth:`save` or by ultralytics.
    pretrained : bool, default False
        With a ``.yaml`` config, start from the matching COCO weights (``yolo11n.pt``). Needs
        the network (Google Colab); offline it fails at once with advice.
    imgsz : int, optional
        Input size in pixels (square), a multiple of 32 and at least 32; ``None`` takes the
        size trained weights were trained at, or :data:`DEFAULTS` for a new model.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; ``None`` picks with :func:`oncolab.env.get_device`.
    project : str or pathlib.Path, optional
        Runs are written to ``project/name``; by default ``project`` is
        ``data_dir("runs", "detect")``.
    name : str, default "detector"
        The run folder's name.
    seed : int, default 0
        Seeds ultralytics' training (deterministic mode on); a non-negative integer.
    verbose : bool, default True
        Let ultralytics print its progress during ``fit`` and ``evaluate``.

    Raises
    ------
    ValueError
        When ``model`` is neither a ``.yaml``/``.yml`` config nor a ``.pt`` file, ``seed`` or
        ``imgsz`` is invalid, or ``pretrained`` is asked with a ``.pt`` file.
    FileNotFoundError
        When a ``.pt`` file does not exist.
    oncolab.env.HubUnavailableError
        When ``pretrained`` weights must be downloaded while offline.
    """

    def __init__(self, model: str | Path = "yolo11n.yaml", pretrained: bool = False, imgsz: int | None = None,
                 device: str | None = None, project: str | Path | None = None, name: str = "detector",
                 seed: int = 0, verbose: bool = True):
        from ..env import data_dir

        model = str(model)
        if not (model.endswith(".yaml") or model.endswith(".yml") or model.endswith(".pt")):
            raise ValueError(f"model must be an ultralytics .yaml config or a .pt weights file, got {model!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.imgsz = int(imgsz or DEFAULTS["imgsz"])
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"imgsz must be a multiple of 32 and at least 32 (YOLO's largest stride), got {self.imgsz}")
        self.device = device or get_device()
        self.project = Path(project) if project is not None else data_dir("runs", "detect")
        self.name = str(name)
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.pretrained_weights: str | None = None
        if pretrained:
            if not model.endswith((".yaml", ".yml")):
                raise ValueError("pretrained=True goes with a .yaml config; a .pt file is already trained weights")
            weights = Path(model).with_suffix(".pt").name
            if not Path(weights).is_file():
                require_hub(weights, local_hint="model='path/to/yolo11n.pt'")
            self.pretrained_weights = weights
        elif model.endswith(".pt") and not Path(model).is_file():
            raise FileNotFoundError(f"weights file not found: {model} (build an untrained model from a .yaml "
                                    "config, or download the weights on a machine with network)")
        configure()   # before ultralytics is imported: it looks up DNS names on import unless offline
        from ultralytics import YOLO

        self.model_source = model
        self.model = YOLO(model, task="detect", verbose=False)
        if imgsz is None and model.endswith(".pt"):   # trained weights remember their input size
            self.imgsz = int(self.model.overrides.get("imgsz") or self.imgsz)
        self.train_seconds: float | None = None
        self.train_cpu_seconds: float | None = None
        self.run_dir: Path | None = None
        self.history = None

    def __repr__(self) -> str:
        state = f"trained in {self.train_seconds:.0f}s" if self.train_seconds is not None else "untrained"
        return f"YoloDetector(imgsz={self.imgsz}, device={self.device!r}, {state})"

    def fit(self, data_yaml: str | Path, epochs: int | None = None, batch: int | None = None,
            workers: int = 0, **overrides) -> YoloDetector:
        """Train on the YOLO dataset described by ``data_yaml``; returns ``self``.

        The dataset is checked first (:func:`check_yolo_dataset`). Progress is printed per
        epoch (loss, then precision, recall and mAP on the ``val`` split). ``overrides`` are
        any ultralytics training arguments (they win over :data:`DEFAULTS`). Afterwards
        ``train_seconds`` holds the wall time, ``train_cpu_seconds`` the CPU time of this
        process (all its threads: on a machine shared with other work it shows the cost of
        training better than the wall time), ``run_dir`` the run folder, ``history`` the
        per-epoch table (pandas), and the model holds the best epoch's weights.

        Parameters
        ----------
        data_yaml : str or pathlib.Path
            The dataset's ``data.yaml`` (with ``train`` and ``val`` splits).
        epochs : int, optional
            Epochs; :data:`DEFAULTS` when None.
        batch : int, optional
            Images per batch; :data:`DEFAULTS` when None. Also sets ``nbs`` (one optimiser step
            per batch) unless ``nbs`` is overridden.
        workers : int, default 0
            Data-loading worker processes.
        **overrides
            Other ultralytics training arguments.

        Returns
        -------
        YoloDetector
            ``self``, trained.

        Raises
        ------
        ValueError
            When the dataset fails :func:`check_yolo_dataset`, or ``overrides`` set ``imgsz``,
            ``project``, ``name``, ``data``, ``device`` or ``seed`` (set by the detector).
        FileNotFoundError
            When ``data_yaml`` does not exist.
        """
        check_yolo_dataset(data_yaml, read_images=True)
        if "imgsz" in overrides:
            raise ValueError("set imgsz when creating the YoloDetector, not in fit()")
        for key in ("project", "name", "data", "device", "seed"):
            if key in overrides:
                raise ValueError(f"{key!r} is set by the YoloDetector; pass it to its constructor instead")
        args = {**DEFAULTS, "imgsz": self.imgsz, "epochs": epochs or DEFAULTS["epochs"],
                "batch": batch or DEFAULTS["batch"]}
        if batch and "nbs" not in overrides:
            args["nbs"] = batch
        args.update(overrides)
        args.update(data=str(Path(data_yaml).resolve()), device=self.device, workers=workers,
                    project=str(Path(self.project).resolve()), name=self.name, exist_ok=True, seed=self.seed,
                    deterministic=True, verbose=self.verbose, pretrained=self.pretrained_weights or False,
                    amp=False if self.device == "cpu" else args.get("amp", True),
                    plots=args.get("plots", False))
        install_ultralytics_font()
        t0, c0 = time.perf_counter(), time.process_time()
        self.model.train(**args)
        self.train_seconds = time.perf_counter() - t0
        self.train_cpu_seconds = time.process_time() - c0
        trainer = self.model.trainer
        self.run_dir = Path(trainer.save_dir)
        csv = self.run_dir / "results.csv"
        if csv.is_file():
            import pandas as pd

            self.history = pd.read_csv(csv)
            self.history.columns = [c.strip() for c in self.history.columns]
        return self

    def evaluate(self, data_yaml: str | Path, split: str = "test", conf: float = 0.001, iou: float = 0.7,
                 batch: int = 16) -> ValidationRun:
        """Run ultralytics' validator on ``split``; return its metrics and the predictions it scored.

        Parameters
        ----------
        data_yaml : str or pathlib.Path
            The dataset's ``data.yaml``.
        split : str, default "test"
            The split to validate on.
        conf : float, default 0.001
            Lowest detection score kept (ultralytics' validation default: low, so that the
            precision-recall curve is complete).
        iou : float, default 0.7
            IoU threshold of ultralytics' non-maximum suppression.
        batch : int, default 16
            Images per batch.

        Returns
        -------
        ValidationRun
            ultralytics' metrics and the per-image predictions and ground truth it matched.

        Raises
        ------
        ValueError
            When ``data_yaml`` has no such split.
        FileNotFoundError
            When ``data_yaml`` does not exist.
        """
        data = read_data_yaml(data_yaml)
        if data.get(split) is None:
            raise ValueError(f"{data_yaml} has no {split!r} split; it has {[s for s in ('train', 'val', 'test') if data.get(s)]}")
        records: list = []
        validator = _recording_validator(records)
        install_ultralytics_font()
        metrics = self.model.val(validator=validator, data=str(Path(data_yaml).resolve()), split=split,
                                 imgsz=self.imgsz, batch=batch, conf=conf, iou=iou, device=self.device,
                                 workers=0, plots=False, verbose=self.verbose,
                                 project=str(Path(self.project).resolve()), name=f"{self.name}-{split}",
                                 exist_ok=True)
        p, r, map50, map5095 = (float(x) for x in metrics.mean_results())
        preds = [Detections(rec["boxes"], rec["scores"], rec["classes"], rec["shape"]) for rec in records]
        gts = [rec["gt_boxes"] for rec in records]
        tp = np.concatenate([rec["tp"] for rec in records]) if records else np.zeros((0, 10), bool)
        return ValidationRun({"precision": p, "recall": r, "mAP@0.5": map50, "mAP@0.5:0.95": map5095},
                             preds, gts, [rec["file"] for rec in records], tp)

    def predict(self, images: Sequence, conf: float = 0.25, iou: float = 0.7, max_det: int = 10,
                batch: int = 32) -> list[Detections]:
        """Detect lesions; one :class:`Detections` (``xyxy`` pixels of the input image) per image.

        ``images``: uint8 arrays, grayscale ``(H, W)`` / ``(H, W, 1)`` (repeated to three
        channels) or RGB ``(H, W, 3)``, or image file paths; a single array is treated as a
        batch of one image only if it is passed inside a list. Other shapes or dtypes raise
        a ValueError / TypeError that names the image.

        Parameters
        ----------
        images : sequence
            uint8 arrays or image file paths, as above.
        conf : float, default 0.25
            Lowest detection score kept, in [0, 1].
        iou : float, default 0.7
            IoU threshold of the non-maximum suppression, in [0, 1].
        max_det : int, default 10
            Most detections per image.
        batch : int, default 32
            Images per call to the model.

        Returns
        -------
        list of Detections
            One per image, in order, with ``image_shape`` ``(H, W)`` set; boxes sorted by
            decreasing score.

        Raises
        ------
        TypeError
            When a single image array is passed instead of a sequence, or an image is not uint8.
        ValueError
            When ``conf`` or ``iou`` is outside [0, 1] or an image has an unsupported shape.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype == np.uint8 \
                and (images.ndim == 2 or images.shape[-1] in (1, 3)):
            raise TypeError(f"predict() takes a sequence of images; wrap a single image of shape {images.shape} "
                            "in a list: predict([image])")
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise ValueError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
        bgr = [_to_bgr(im, i) for i, im in enumerate(images)]
        out: list[Detections] = []
        for start in range(0, len(bgr), batch):
            chunk = bgr[start:start + batch]
            results = self.model.predict(chunk, imgsz=self.imgsz, conf=conf, iou=iou, max_det=max_det,
                                         device=self.device, verbose=False)
            for im, res in zip(chunk, results):
                b = res.boxes
                out.append(Detections(b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(int),
                                      im.shape[:2]))
        return out

    def save(self, path: str | Path) -> Path:
        """Write the weights to ``path`` (a ``.pt`` file), via a temporary name; return the path.

        Parameters
        ----------
        path : str or pathlib.Path
            The file to write; it must end in ``.pt`` and its folder must exist.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ValueError
            When ``path`` does not end in ``.pt``.
        FileNotFoundError
            When the folder does not exist.
        """
        path = Path(path)
        if path.suffix != ".pt":
            raise ValueError(f"weights are saved as a .pt file, got {path}")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"the folder {path.parent} does not exist")
        tmp = path.with_name(path.name + ".partial")
        self.model.save(str(tmp))
        os.replace(tmp, path)
        return path

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)``: the architecture as JSON-able settings and every weight as an array.

        Unlike :meth:`save` (an ultralytics ``.pt``, which is a pickle), this pair can be kept
        in a safetensors file; :meth:`from_state` rebuilds the detector without running code
        from the file. Chapter 12's complete system saves its detector this way. Take the state
        before the first :meth:`predict` (ultralytics fuses batch norms into the convolutions
        for inference).

        Returns
        -------
        config : dict
            ``model`` (the ``.yaml`` config), ``imgsz`` and ``names`` (the class names in
            index order).
        arrays : dict of str to numpy.ndarray
            The network's ``state_dict``, one array per entry.

        Raises
        ------
        ValueError
            When the detector was built from a ``.pt`` file rather than a ``.yaml`` config.
        RuntimeError
            When the batch norms are already fused (the detector has predicted).
        """
        net = self.model.model
        if not self.model_source.endswith((".yaml", ".yml")):
            raise ValueError("state() needs a detector built from a .yaml config (its architecture is "
                             f"rebuilt from it), not from {self.model_source!r}")
        if any(not hasattr(m, "bn") for m in net.modules() if type(m).__name__ == "Conv"):
            raise RuntimeError("the detector's batch norms are already fused (it has predicted); take the "
                               "state right after fit()")
        cfg = {"model": self.model_source, "imgsz": self.imgsz, "names": [net.names[i] for i in sorted(net.names)]}
        return cfg, {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], **kwargs) -> YoloDetector:
        """The detector :meth:`state` described (``kwargs`` go to the constructor: device, ...).

        Parameters
        ----------
        config : dict
            The ``config`` of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state`.
        **kwargs
            Constructor arguments other than ``model`` and ``imgsz`` (``device``, ``project``,
            ...).

        Returns
        -------
        YoloDetector
            The rebuilt detector, in eval mode.

        Raises
        ------
        ValueError
            When the arrays do not fit the architecture and number of classes of ``config``.
        """
        import torch

        configure()   # before ultralytics is imported: it looks up DNS names on import unless offline
        from ultralytics.nn.tasks import DetectionModel
        from ultralytics.utils import LOGGER

        det = cls(model=config["model"], imgsz=config["imgsz"], verbose=False, **kwargs)
        names = list(config["names"])
        level = LOGGER.level
        LOGGER.setLevel("WARNING")     # silence "Overriding model.yaml nc=80 with nc=1"
        try:
            net = DetectionModel(config["model"], nc=len(names), verbose=False)
        finally:
            LOGGER.setLevel(level)
        net.names = dict(enumerate(names))
        net.args = getattr(det.model.model, "args", {})
        try:
            net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, strict=True)
        except RuntimeError as e:
            raise ValueError(f"the saved detector weights do not fit {config['model']!r} with "
                             f"{len(names)} class(es): {str(e).splitlines()[0]}") from e
        net.eval()
        det.model.model = net
        return det

    @classmethod
    def load(cls, path: str | Path, **kwargs) -> YoloDetector:
        """A detector from weights written by :meth:`save` (or by ultralytics).

        Parameters
        ----------
        path : str or pathlib.Path
            A ``.pt`` weights file.
        **kwargs
            Other constructor arguments (``imgsz``, ``device``, ...).

        Returns
        -------
        YoloDetector
            Its input size is the one the weights were trained at unless ``imgsz`` is given.

        Raises
        ------
        ValueError
            When ``path`` is neither a ``.pt`` file nor a ``.yaml``/``.yml`` config.
        FileNotFoundError
            When a ``.pt`` file does not exist.
        """
        return cls(model=str(path), **kwargs)

