"""A cohort on disk: ordinary files (PNG, CSV, JSON, a YOLO dataset) and back.

Taught in chapter 1 ("Multimodal oncology data"); the YOLO dataset feeds chapter 3. The
book's page "Your own cohort" brings a researcher's own data into the system through the
same folder.

The cohort folder
-----------------
:func:`export_cohort` writes it, :func:`oncolab.data.load_cohort` reads it and
:func:`oncolab.data.validate_cohort` checks it, reporting every problem at once as
``file:line: what, expected what``. A folder made by hand follows the same rules::

    folder/
      labels.csv                         required: one row per patient
      clinical.csv labs.csv genes.csv    optional, one per modality
      symptoms.csv                       optional: a free-text symptom note per patient
      boxes.csv presence.csv             optional
      cohort.json                        optional: what the tables mean
      images/radiograph/<patient_id>.png optional, grayscale
      images/slide/<patient_id>.png      optional, RGB
      truth.csv images/lesion_mask/      synthetic cohorts only (the generator's truth)

Every table is comma-separated UTF-8 text with a header line and a ``patient_id`` column
(anywhere); the other columns come in any order, and the rows in any order: they are matched
to ``labels.csv`` by id. An empty cell (or ``NA``, ``NaN``) is a missing value.

``labels.csv``
    ``patient_id``: unique, non-empty, usable as a file name. ``diagnosis`` (optional): a
    class name per patient, any names, two or more distinct; the classes are ``cohort.json``'s
    ``"classes"`` when given (which also fixes their order, with ``"ordered": true`` for
    ordered ones such as grades), otherwise the distinct diagnoses sorted. ``time`` and
    ``event`` (optional, together): time to the event or to censoring, > 0, in
    ``"time_unit"`` (months when not given), and event 1/0 or true/false. A ``y`` column is
    not needed (:attr:`oncolab.data.Cohort.y` is derived from the classes); if there is one
    it must agree with them. With neither a diagnosis nor survival, the folder holds patients
    to predict for.
``clinical.csv``
    Any columns. A column of numbers is numeric, any other is categorical text. Measurements
    that are not among the known labs go here, as numeric columns.
``labs.csv``
    One column per lab, named by a biomarker of :data:`oncolab.data.BIOMARKERS` (``alp``,
    ``ldh``, ``crp``, ``calcium``, ``haemoglobin``, ``wbc``, ``esr``, ``albumin``; case is
    ignored), optionally with its unit in square brackets: ``ALP [U/L]``, ``calcium
    [mg/dL]``. Values are converted to the biomarker's canonical unit by
    :func:`oncolab.data.labs.to_canonical`; a header without a unit means the canonical unit.
    An unknown lab name is refused (listing the known ones), as is a unit the biomarker does
    not list; a negative or non-numeric value is an error naming file, line and column.
``genes.csv``
    One numeric column per gene. ``cohort.json``'s ``"gene_values"`` says what they are:
    ``"counts"`` (the default: whole read counts >= 0, turned into log-CPM downstream) or
    ``"log_expression"`` (values >= 0 already on a log scale, as from a microarray). A patient
    has a value for every gene, or an empty row.
``symptoms.csv``
    One text column ``note``: the patient's symptom note as written in the record (quoted
    as CSV quotes text with commas; an empty cell for no note). Read by the ``symptoms``
    stages, which find the findings it states, negates or hedges
    (:mod:`oncolab.text.symptoms`).
``boxes.csv``
    ``x0, y0, x1, y1``: the annotated lesion's box on the radiograph, in pixels
    (``0 <= x0 < x1 <= width``, likewise for y). No row, or four empty cells, for no box.
``presence.csv``
    One true/false column per modality: was it acquired for this patient? Without it, a
    modality is present for a patient with a row holding a value in its table, or with an
    image file.
``images/``
    ``radiograph/<patient_id>.png`` (grayscale; other modes are converted) and
    ``slide/<patient_id>.png`` (an RGB pathology region). They are read one patient at a
    time, when asked for (:class:`DiskImages`), never all at once.
``cohort.json``
    Optional for a folder made by hand. Keys: ``source`` (default: the folder's name),
    ``classes``, ``ordered``, ``gene_values``, ``time_unit``, ``modalities`` (default: those
    with a table or an image folder). An export adds ``seed``, ``config``, ``tables``,
    ``images``, ``n_patients`` and ``complete``.

A patient absent from an optional table, or without an image file, lacks that modality for
that patient (a warning: the system handles it); a patient in a table but not in
``labels.csv`` is an error.

Nothing is left half-written: an export goes to a temporary sibling folder holding the
marker file :data:`EXPORT_MARKER`, which is removed just before the folder is renamed into
place; a folder that still holds the marker was left by an interrupted export and is
refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .cohort import Cohort

__all__ = [
    "atomic_folder",
    "publish_folder",
    "write_png",
    "EXPORT_MARKER",
    "GENE_VALUES",
    "IMAGE_FOLDERS",
    "META_FILE",
    "DiskImages",
    "YoloLabelError",
    "export_cohort",
    "export_yolo",
    "read_data_yaml",
    "read_image",
    "read_yolo_labels",
    "write_yolo_dataset",
]

#: the cohort folder's settings file
META_FILE = "cohort.json"
#: the file that marks a folder an export has not finished
EXPORT_MARKER = ".export-incomplete"
#: what ``cohort.json``'s ``"gene_values"`` may say the gene table holds
GENE_VALUES = ("counts", "log_expression")
#: image folder under ``images/`` -> the Pillow mode its PNG files are read in
IMAGE_FOLDERS = {"radiograph": "L", "slide": "RGB", "lesion_mask": "L"}


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


def write_png(array: np.ndarray, path: Path) -> None:
    """Write a uint8 image (grayscale or RGB) as a PNG at ``path``; taught in chapter 1.

    Parameters
    ----------
    array : ndarray
        ``(H, W)`` or ``(H, W, 3)`` uint8.
    path : Path
        Where to write (inside a temporary folder: see :func:`atomic_folder`).
    """
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=1)


class DiskImages:
    """The image source of an exported cohort: its PNG files, read from the folder on demand.

    Taught in chapter 1. It has one method per image kind of :class:`~oncolab.data.Cohort`
    (``radiograph``, ``slide``, ``lesion_mask``), each taking a patient id.

    Parameters
    ----------
    folder : str or Path
        The cohort folder (written by :func:`export_cohort` or by hand): the images are
        ``images/<kind>/<patient_id>.png``, read only when asked for.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _read(self, kind: str, pid: str) -> np.ndarray:
        return read_image(self.folder / "images" / kind / f"{pid}.png", IMAGE_FOLDERS[kind])

    def radiograph(self, pid: str) -> np.ndarray:
        """The patient's radiograph, uint8 (H, W)."""
        return self._read("radiograph", pid)

    def slide(self, pid: str) -> np.ndarray:
        """The patient's slide region, uint8 (H, W, 3)."""
        return self._read("slide", pid)

    def lesion_mask(self, pid: str) -> np.ndarray:
        """The patient's lesion mask, bool (H, W)."""
        return self._read("lesion_mask", pid) > 127


def atomic_folder(folder: Path, overwrite: bool) -> Path:
    """A new temporary folder beside ``folder``, to be filled and then published with :func:`publish_folder`.

    Parameters
    ----------
    folder : Path
        The final folder.
    overwrite : bool
        Whether an existing ``folder`` may be replaced (else FileExistsError).

    Returns
    -------
    Path
        The temporary folder (same file system, so that publishing is a rename).
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} exists; pass overwrite=True to replace it")
    if not folder.parent.exists():
        raise FileNotFoundError(f"the parent folder {folder.parent} does not exist")
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))


def publish_folder(tmp: Path, folder: Path) -> None:
    """Rename the filled temporary folder ``tmp`` to ``folder`` (replacing an old one), so that no reader
    ever sees a half-written folder.

    Parameters
    ----------
    tmp : Path
        From :func:`atomic_folder`.
    folder : Path
        The final folder.
    """
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
    if images and cohort.images is not None and set(cohort.IMAGE_KINDS) - set(IMAGE_FOLDERS):
        raise ValueError(f"export_cohort writes {sorted(IMAGE_FOLDERS)} images as PNG; this {type(cohort).__name__} "
                         f"has image kinds {sorted(cohort.IMAGE_KINDS)}: pass images=False to write its tables only")
    tmp = atomic_folder(folder, overwrite)
    try:
        (tmp / EXPORT_MARKER).write_text("an export of this cohort has not finished\n")
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
                    if cohort.has(modality, pid):
                        write_png(get(pid), tmp / "images" / kind / f"{pid}.png")
            wrote_images = [k for k, _, _ in kinds]
        meta = {**cohort.meta, "tables": sorted(cohort.tables), "images": wrote_images,
                "n_patients": len(cohort), "complete": True}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        (tmp / EXPORT_MARKER).unlink()
        publish_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


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
        A cohort with radiographs and a ``boxes`` table; patients without a radiograph or
        without a box (a row of NaN) are skipped.
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
            box = cohort.boxes.loc[pid, ["x0", "y0", "x1", "y1"]].to_numpy(float)
            if cohort.has("radiograph", pid) and not np.isnan(box).any():
                yield pid, cohort.radiograph(pid), box

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
    tmp = atomic_folder(folder, overwrite)
    try:
        for split, entries in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            for name, img, box in entries:
                h, w = img.shape[:2]
                write_png(img, tmp / "images" / split / f"{name}.png")
                x0, y0, x1, y1 = (float(v) for v in box)
                line = f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}\n"
                (tmp / "labels" / split / f"{name}.txt").write_text(line)
        data = {"path": str(folder.resolve()), **{s: f"images/{s}" for s in splits},
                "names": {i: n for i, n in enumerate(class_names)}}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        publish_folder(tmp, folder)
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

