"""A cohort on disk: ordinary files (PNG, CSV, JSON, a YOLO dataset) and back.

Taught in chapter 1 ("Multimodal oncology data"); the YOLO dataset feeds chapter 3.

Layout written by :func:`export_cohort`::

    folder/
      cohort.json              meta: source, seed, config, modalities, tables, complete=true
      clinical.csv labs.csv genes.csv labels.csv boxes.csv presence.csv truth.csv
      images/radiograph/P00000.png   (grayscale)
      images/slide/P00000.png        (RGB)
      images/lesion_mask/P00000.png  (0/255; synthetic cohorts only)

Nothing is left half-written: everything goes to a temporary sibling folder that is renamed
into place at the end, so an interrupted export never leaves a folder that loads as a cohort.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .cohort import TABLES, Cohort

__all__ = [
    "DiskImages",
    "YoloLabelError",
    "export_cohort",
    "export_yolo",
    "load_cohort",
    "read_data_yaml",
    "read_image",
    "read_yolo_labels",
]

_META = "cohort.json"
_BOOL_TABLES = {"presence"}
_IMAGE_MODES = {"radiograph": "L", "slide": "RGB", "lesion_mask": "L"}  # image kind -> PNG mode


def read_image(path: str | Path, mode: str | None = None) -> np.ndarray:
    """Read an image file into a uint8 array; an unreadable file raises naming the file.

    Taught in chapter 1; the complete system of chapter 12 reads a reader's own images with it.

    Parameters
    ----------
    path : str or Path
        The image file (PNG, JPEG, TIFF, ... whatever Pillow reads).
    mode : {"L", "RGB"} or None
        Convert: RGB to grayscale by ITU-R 601-2 luma, grayscale to RGB by copying the
        channel. ``None`` keeps the file's own mode.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W) or (H, W, C).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if mode is not None:
                if mode not in ("L", "RGB"):
                    raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
                im = im.convert(mode)
            return np.asarray(im).copy()
    except (OSError, SyntaxError, ImportError) as e:
        # ImportError: ultralytics replaces PIL's opener and, for a file PIL cannot read,
        # tries optional format plugins (HEIF) that are not installed
        raise ValueError(f"cannot read image {path}: {e}") from e


def _write_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=1)


class DiskImages:
    """The image source of an exported cohort: its PNG files, read from the folder on demand.

    Taught in chapter 1. It has one method per image kind of :class:`~oncolab.data.Cohort`
    (``radiograph``, ``slide``, ``lesion_mask``), each taking a patient id.

    Parameters
    ----------
    folder : str or Path
        The cohort folder written by :func:`export_cohort`.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _read(self, kind: str, pid: str) -> np.ndarray:
        return read_image(self.folder / "images" / kind / f"{pid}.png", _IMAGE_MODES[kind])

    def radiograph(self, pid: str) -> np.ndarray:
        """The patient's radiograph, uint8 (H, W)."""
        return self._read("radiograph", pid)

    def slide(self, pid: str) -> np.ndarray:
        """The patient's slide region, uint8 (H, W, 3)."""
        return self._read("slide", pid)

    def lesion_mask(self, pid: str) -> np.ndarray:
        """The patient's lesion mask, bool (H, W)."""
        return self._read("lesion_mask", pid) > 127


def _atomic_folder(folder: Path, overwrite: bool) -> Path:
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} exists; pass overwrite=True to replace it")
    if not folder.parent.exists():
        raise FileNotFoundError(f"the parent folder {folder.parent} does not exist")
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))


def _publish(tmp: Path, folder: Path) -> None:
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)


def export_cohort(cohort: Cohort, folder: str | Path, images: bool = True, overwrite: bool = False,
                  progress: bool = False) -> Path:
    """Write a cohort as CSV tables, PNG images and ``cohort.json`` (the layout in this module's docstring).

    Taught in chapter 1. The folder appears whole or not at all.

    Parameters
    ----------
    cohort : Cohort
        The cohort. Its images are written when they are radiographs and slide regions;
        a cohort with other image kinds (the prostate cohort's slide pyramids and MRI) needs
        ``images=False``.
    folder : str or Path
        The folder to create; its parent must exist.
    images : bool
        Also write the images (PNG).
    overwrite : bool
        Replace an existing folder.
    progress : bool
        Show a progress bar over the patients.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    if images and cohort.images is not None and set(cohort.IMAGE_KINDS) - set(_IMAGE_MODES):
        raise ValueError(f"export_cohort writes {sorted(_IMAGE_MODES)} images as PNG; this {type(cohort).__name__} "
                         f"has image kinds {sorted(cohort.IMAGE_KINDS)}: pass images=False to write its tables only")
    tmp = _atomic_folder(folder, overwrite)
    try:
        for name, df in cohort.tables.items():
            df.to_csv(tmp / f"{name}.csv")
        wrote_images = []
        if images and cohort.images is not None:
            kinds = []
            if "radiograph" in cohort.modalities:
                kinds += [("radiograph", cohort.radiograph, "radiograph")]
                if "truth" in cohort.tables:
                    kinds += [("lesion_mask", lambda p: (cohort.lesion_mask(p) * 255).astype(np.uint8), "radiograph")]
            if "pathology" in cohort.modalities:
                kinds += [("slide", cohort.slide, "pathology")]
            ids = cohort.ids
            if progress:
                from tqdm.auto import tqdm
                ids = tqdm(ids, desc="exporting images")
            for kind, _, _ in kinds:
                (tmp / "images" / kind).mkdir(parents=True)
            for pid in ids:
                for kind, get, modality in kinds:
                    if bool(cohort.presence.at[pid, modality]):
                        _write_png(get(pid), tmp / "images" / kind / f"{pid}.png")
            wrote_images = [k for k, _, _ in kinds]
        meta = {**cohort.meta, "tables": sorted(cohort.tables), "images": wrote_images,
                "n_patients": len(cohort), "complete": True}
        (tmp / _META).write_text(json.dumps(meta, indent=2, sort_keys=True))
        _publish(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_cohort(folder: str | Path) -> Cohort:
    """Load a folder written by :func:`export_cohort` back into an equal :class:`~oncolab.data.Cohort`.

    Taught in chapter 1. A folder left by an interrupted export, or without ``cohort.json``,
    is refused with a message naming it.

    Parameters
    ----------
    folder : str or Path
        The cohort folder.

    Returns
    -------
    Cohort
        Its tables, its meta (source, seed, config, modalities) and a :class:`DiskImages`
        source when the folder has images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"cohort folder not found: {folder}")
    meta_path = folder / _META
    if not meta_path.is_file():
        raise ValueError(f"{folder} is not a complete cohort: {_META} is missing "
                         "(was the export interrupted?)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{meta_path} is not valid JSON: {e}") from e
    if not meta.get("complete"):
        raise ValueError(f"{folder} is not marked complete in {_META}")
    tables = {}
    for name in meta.get("tables", []):
        if name not in TABLES:
            raise ValueError(f"{meta_path}: unknown table {name!r}; expected some of {list(TABLES)}")
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"table {name!r} listed in {meta_path} but {path} is missing")
        df = pd.read_csv(path, index_col="patient_id", keep_default_na=True, float_precision="round_trip")
        df.index = df.index.astype(str)
        if name in _BOOL_TABLES:
            df = df.astype(bool)
        if name == "labels":
            df["event"] = df["event"].astype(bool)
        tables[name] = df
    meta = {k: v for k, v in meta.items() if k not in ("tables", "images", "complete")}
    images = DiskImages(folder) if (folder / "images").is_dir() else None
    return Cohort(tables, images=images, meta=meta)


# --------------------------------------------------------------------------------------------
# YOLO datasets
# --------------------------------------------------------------------------------------------
class YoloLabelError(ValueError):
    """A YOLO label file or data.yaml that does not follow the format."""


def export_yolo(cohort: Cohort, folder: str | Path, splits: dict[str, Sequence[int]],
                class_names: Sequence[str] = ("lesion",), overwrite: bool = False) -> Path:
    """Write the cohort's radiographs and lesion boxes as an ultralytics YOLO dataset.

    Taught in chapter 1; chapter 3 trains YOLO on it.

    Parameters
    ----------
    cohort : Cohort
        A cohort with radiographs and a ``boxes`` table; patients without a radiograph are
        skipped.
    folder : str or Path
        The dataset folder to create.
    splits : dict of str to sequence of int
        Split name (``train``, ``val``, ``test``) to patient positions.
    class_names : sequence of str
        The class names (one class: ``lesion``).
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        The ``data.yaml`` naming the splits and classes. Each image gets
        ``labels/<split>/<id>.txt`` with one line ``class cx cy w h`` (normalised to [0, 1]).
    """
    bad = set(splits) - {"train", "val", "test"}
    if bad:
        raise ValueError(f"unknown split name(s) {sorted(bad)}; expected some of ['test', 'train', 'val']")
    if "radiograph" not in cohort.modalities or "boxes" not in cohort.tables:
        raise ValueError("export_yolo needs a cohort with radiographs and boxes")

    def items(idx):
        for i in np.asarray(idx, dtype=int):
            pid = str(cohort.ids[i])
            if bool(cohort.presence.at[pid, "radiograph"]):
                yield pid, cohort.radiograph(pid), cohort.boxes.loc[pid, ["x0", "y0", "x1", "y1"]].to_numpy(float)

    return write_yolo_dataset({split: items(idx) for split, idx in splits.items()}, folder, class_names, overwrite)


def write_yolo_dataset(splits: dict[str, Iterable[tuple[str, np.ndarray, Sequence[float]]]], folder: str | Path,
                       class_names: Sequence[str] = ("lesion",), overwrite: bool = False) -> Path:
    """Write images with one class-0 box each as an ultralytics YOLO dataset.

    Taught in chapter 3 (through :func:`export_yolo`); the complete system of chapter 12
    trains its detector on such a folder. The folder appears whole or not at all.

    Parameters
    ----------
    splits : dict of str to iterable
        A split name (``train``, ``val``, ``test``) to ``(name, image, xyxy box)`` items (an
        iterator is fine: images are written one at a time).
    folder : str or Path
        The dataset folder to create.
    class_names : sequence of str
        The class names.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        The dataset's ``data.yaml``.
    """
    import yaml

    folder = Path(folder)
    bad = set(splits) - {"train", "val", "test"}
    if bad:
        raise ValueError(f"unknown split name(s) {sorted(bad)}; expected some of ['test', 'train', 'val']")
    tmp = _atomic_folder(folder, overwrite)
    try:
        for split, entries in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            for name, img, box in entries:
                h, w = img.shape[:2]
                _write_png(img, tmp / "images" / split / f"{name}.png")
                x0, y0, x1, y1 = (float(v) for v in box)
                line = f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}\n"
                (tmp / "labels" / split / f"{name}.txt").write_text(line)
        data = {"path": str(folder.resolve()), **{s: f"images/{s}" for s in splits},
                "names": {i: n for i, n in enumerate(class_names)}}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        _publish(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder / "data.yaml"


def read_data_yaml(path: str | Path) -> dict:
    """Read and check a YOLO ``data.yaml``: ``names`` and at least a ``train`` split that exist.

    Taught in chapter 3; a malformed file raises :class:`YoloLabelError` naming it.

    Parameters
    ----------
    path : str or Path
        The ``data.yaml``.

    Returns
    -------
    dict
        Its contents, with ``names`` as {class index: name} and ``root``, the folder the
        split paths are relative to.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.yaml not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise YoloLabelError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise YoloLabelError(f"{path}: expected a mapping with 'train', 'val' and 'names', got {type(data).__name__}")
    missing = [k for k in ("train", "names") if k not in data]
    if missing:
        raise YoloLabelError(f"{path}: missing key(s) {missing}; expected 'path', 'train', 'val', 'names'")
    names = data["names"]
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise YoloLabelError(f"{path}: 'names' must be a non-empty list or mapping, got {data['names']!r}")
    data["names"] = {int(k): str(v) for k, v in names.items()}
    root = Path(data.get("path") or path.parent)
    if not root.is_absolute():
        root = path.parent / root
    for split in ("train", "val", "test"):
        if split in data and data[split] is not None:
            p = root / data[split]
            if not p.exists():
                raise FileNotFoundError(f"{path}: the {split!r} split points to {p}, which does not exist")
            if p.is_dir() and not any(p.iterdir()):
                raise YoloLabelError(f"{path}: the {split!r} split folder {p} is empty")
    data["root"] = str(root)
    return data


def read_yolo_labels(path: str | Path, n_classes: int | None = None) -> np.ndarray:
    """Read one YOLO label file.

    Taught in chapter 1. Every line must have five numbers, the class an integer in range,
    the box inside [0, 1] with positive width and height; otherwise a
    :class:`YoloLabelError` names the file and line.

    Parameters
    ----------
    path : str or Path
        The label file (``labels/<split>/<id>.txt``).
    n_classes : int or None
        The number of classes, to check the class indices against.

    Returns
    -------
    numpy.ndarray
        float (n, 5): ``class cx cy w h`` per box, normalised to [0, 1].
    """
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 5:
            raise YoloLabelError(f"{path}:{lineno}: expected 5 fields 'class cx cy w h', got {len(fields)}: {line!r}")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise YoloLabelError(f"{path}:{lineno}: non-numeric field in {line!r}") from None
        cls, cx, cy, w, h = values
        if cls != int(cls) or cls < 0 or (n_classes is not None and cls >= n_classes):
            raise YoloLabelError(f"{path}:{lineno}: class {fields[0]!r} is not an integer in [0, {n_classes})")
        if w <= 0 or h <= 0:
            raise YoloLabelError(f"{path}:{lineno}: box has zero or negative area (w={w}, h={h})")
        if not all(0 <= v <= 1 for v in (cx, cy, w, h)) or cx - w / 2 < -1e-6 or cx + w / 2 > 1 + 1e-6 \
                or cy - h / 2 < -1e-6 or cy + h / 2 > 1 + 1e-6:
            raise YoloLabelError(f"{path}:{lineno}: box ({cx}, {cy}, {w}, {h}) is not inside [0, 1]")
        rows.append(values)
    return np.asarray(rows, dtype=float).reshape(-1, 5)

