"""BTXRD bone-tumour radiographs: LabelMe annotations + clinical table -> a cohort folder or a YOLO dataset.

Used in chapter 3 ("Finding the tumor: object detection"), chapter 12 and the book's page
"Your own cohort". The published archive (Yao et al., Scientific Data 2025; licence CC BY-NC-ND
4.0) holds::

    BTXRD/images/IMG000001.jpeg ...      3,746 radiographs
    BTXRD/Annotations/IMG000001.json ... LabelMe JSON, tumour images only (rectangles, polygons)
    BTXRD/dataset.xlsx                    image_id, center, age, gender, site and view one-hot
                                          columns, tumor, benign, malignant, subtype columns

Two conversions share the reading of the archive:

* :func:`convert_btxrd_cohort` writes a radiograph-only cohort folder (the book's page "Your
  own cohort"; ``oncolab.data.load_cohort`` reads it): ``labels.diagnosis`` from the table's
  ``benign`` / ``malignant`` / ``tumor`` columns, classes ``normal < benign < malignant`` (those
  present), ``boxes`` the box around every annotated tumour region of the image (NaN for a
  normal radiograph), ``clinical`` center, age, sex, site and view (never the subtype, which is a
  label), the radiographs as grayscale PNG (optionally shrunk, boxes scaled alike). The table has
  no patient identifier, so each radiograph is one row (``patient_id`` = the image name without
  extension); views of one patient may fall on both sides of a random split.
* :func:`convert_btxrd` writes an ultralytics YOLO dataset (classes ``0 benign``,
  ``1 malignant``, every annotated box; normal radiographs kept as background images with
  empty label files), split at random with a seed and stratified by diagnosis, plus
  ``clinical.csv``. It is checked with :func:`oncolab.data.read_data_yaml` and
  :func:`oncolab.data.read_yolo_labels` before it is returned (chapter 3 trains on it).

    python -m data_scripts.btxrd OUT_DIR [--seed 0]                  the YOLO dataset
    python -m data_scripts.btxrd OUT_DIR --cohort [--max-side 1024]  the cohort folder

Licence: CC BY-NC-ND 4.0. Keep converted data for your own non-commercial use.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import numpy as np
    import pandas as pd

__all__ = ["CLASS_NAMES", "COHORT_CLASSES", "SITES", "SUBTYPES", "VIEWS", "BtxrdImages",
           "btxrd_cohort", "convert_btxrd", "convert_btxrd_cohort", "find_root", "image_size", "labelme_boxes",
           "read_archive", "read_table", "tumour_boxes"]

CLASS_NAMES = {0: "benign", 1: "malignant"}
COHORT_CLASSES = ["normal", "benign", "malignant"]
SITES = ["hand", "ulna", "radius", "humerus", "foot", "tibia", "fibula", "femur", "hip bone",
         "ankle-joint", "knee-joint", "hip-joint", "wrist-joint", "elbow-joint", "shoulder-joint"]
VIEWS = ["frontal", "lateral", "oblique"]
SUBTYPES = ["osteochondroma", "multiple osteochondromas", "simple bone cyst", "giant cell tumor",
            "osteofibroma", "synovial osteochondroma", "other bt", "osteosarcoma", "other mt"]
MALIGNANT_SUBTYPES = ["osteosarcoma", "other mt"]
REQUIRED = ["image_id", "center", "age", "gender", "tumor", "benign", "malignant"]
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


# ------------------------------------------------------------------------------ the table
def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def _read_xlsx_first_sheet(path: Path) -> pd.DataFrame:
    """The first worksheet of an ``.xlsx`` file, read with the standard library.

    Used when ``openpyxl`` (pandas' Excel reader) is not installed; handles shared strings,
    inline strings and numbers, which is what the BTXRD table contains.
    """
    import pandas as pd

    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ET.fromstring(z.read("xl/sharedStrings.xml"))
            for si in root.findall("m:si", _NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
        sheets = sorted(n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
        if not sheets:
            raise ValueError(f"{path}: no worksheet found; is it an .xlsx file?")
        root = ET.fromstring(z.read(sheets[0]))
    rows: list[dict[int, object]] = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, object] = {}
        for c in row.findall("m:c", _NS):
            kind, v = c.get("t"), c.find("m:v", _NS)
            if kind == "s":
                value: object = shared[int(v.text)]
            elif kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            elif v is None:
                continue
            elif kind in ("str", "e"):
                value = v.text
            else:
                f = float(v.text)
                value = int(f) if f.is_integer() else f
            cells[_col_index(c.get("r"))] = value
        rows.append(cells)
    if not rows:
        raise ValueError(f"{path}: the first worksheet is empty")
    width = max(max(r) for r in rows if r) + 1
    header = [str(rows[0].get(i, f"column_{i}")) for i in range(width)]
    return pd.DataFrame([[r.get(i) for i in range(width)] for r in rows[1:]], columns=header)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read BTXRD's clinical table and check its columns.

    Used by :func:`read_archive` (chapter 3 and the book's page "Your own cohort").

    Parameters
    ----------
    path : str or Path
        ``dataset.xlsx`` (read without ``openpyxl`` if need be) or a ``.csv`` export of it.

    Returns
    -------
    pandas.DataFrame
        The table as published (column names stripped); a missing required column
        (``image_id``, ``center``, ``age``, ``gender``, ``tumor``, ``benign``, ``malignant``)
        raises, naming the file.
    """
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".csv":
        df = pd.read_csv(path)
    elif path.suffix.lower() == ".xlsx":
        try:
            df = pd.read_excel(path)
        except ImportError:
            df = _read_xlsx_first_sheet(path)
    else:
        raise ValueError(f"expected dataset.xlsx or a .csv table, got {path.name!r}")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected at least {REQUIRED}")
    return df


def find_root(src: str | Path) -> Path:
    """The folder of an unpacked BTXRD archive that holds ``images/`` and the table.

    Used by :func:`read_archive` (chapter 3 and the book's page "Your own cohort").

    Parameters
    ----------
    src : str or Path
        That folder, or its parent holding ``BTXRD/``.

    Returns
    -------
    Path
        ``src`` or ``src/BTXRD``; anything else raises, saying what was expected.
    """
    src = Path(src)
    for cand in (src, src / "BTXRD"):
        if (cand / "images").is_dir() and any((cand / n).is_file() for n in ("dataset.xlsx", "dataset.csv")):
            return cand
    raise FileNotFoundError(f"{src} does not look like the BTXRD archive: expected images/, "
                            "Annotations/ and dataset.xlsx (or the same inside BTXRD/)")


# ------------------------------------------------------------------------------ annotations
def labelme_boxes(annotation: dict, width: int, height: int) -> np.ndarray:
    """Pixel boxes from one LabelMe annotation.

    Used by :func:`tumour_boxes` (chapter 3 and the book's page "Your own cohort").

    Parameters
    ----------
    annotation : dict
        A LabelMe JSON object (its ``shapes``).
    width, height : int
        The image's size in pixels.

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` boxes ``x0 y0 x1 y1``: the rectangles as drawn or, when there is no
        rectangle, the bounding box of each polygon; clipped to the image, empty ones dropped.
    """
    import numpy as np

    shapes = annotation.get("shapes", [])
    rects = [s for s in shapes if s.get("shape_type") == "rectangle"]
    use = rects or [s for s in shapes if s.get("shape_type") == "polygon"]
    boxes = []
    for s in use:
        pts = np.asarray(s.get("points", []), dtype=float).reshape(-1, 2)
        if len(pts) < 2:
            continue
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        x0, x1 = np.clip([x0, x1], 0, width)
        y0, y1 = np.clip([y0, y1], 0, height)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            boxes.append((x0, y0, x1, y1))
    return np.asarray(boxes, dtype=float).reshape(-1, 4)


def _one_hot_name(row: pd.Series, columns: list[str]) -> str:

    hits = [c for c in columns if c in row.index and row[c] == 1]
    return hits[0] if hits else ""


def _split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        out[idx[:n_test]] = "test"
        out[idx[n_test:n_test + n_val]] = "val"
        out[idx[n_test + n_val:]] = "train"
    return out


def image_size(path: str | Path) -> tuple[int, int]:
    """The size of an image as it is displayed, read from its header (no decoding).

    Used by both BTXRD conversions (chapter 3 and the book's page "Your own cohort").

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    tuple of int
        ``(width, height)``; a JPEG whose EXIF orientation turns it by 90 degrees has them
        swapped, as LabelMe (which drew the boxes) and ultralytics show it.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except OSError as e:
        raise ValueError(f"cannot read image {path}: {e}") from e
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def tumour_boxes(annotation_path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The tumour boxes of one BTXRD LabelMe file.

    Used by both BTXRD conversions (chapter 3 and the book's page "Your own cohort").

    Parameters
    ----------
    annotation_path : str or Path
        The LabelMe JSON file.
    size : tuple of int
        The radiograph's displayed ``(width, height)`` (:func:`image_size`).

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` boxes ``x0 y0 x1 y1`` in pixels, n >= 1. An annotation drawn on an image
        of another size, an unreadable file, or one without a usable rectangle or polygon
        raises, naming the file.
    """
    path = Path(annotation_path)
    try:
        ann = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable LabelMe JSON file: {e}") from e
    if not isinstance(ann, dict) or not isinstance(ann.get("shapes"), list):
        raise ValueError(f"{path}: expected a LabelMe annotation (an object with a 'shapes' list)")
    w, h = size
    stated = (ann.get("imageWidth"), ann.get("imageHeight"))
    if all(stated) and (int(stated[0]), int(stated[1])) != (w, h):
        raise ValueError(f"{path}: drawn on a {stated[0]}x{stated[1]} image, but the radiograph is {w}x{h}")
    boxes = labelme_boxes(ann, w, h)
    if len(boxes) == 0:
        raise ValueError(f"{path}: no rectangle or polygon with a positive area")
    return boxes


def _diagnoses(table: pd.DataFrame, table_path: Path) -> np.ndarray:
    """normal / benign / malignant per row, from the ``tumor``, ``benign``, ``malignant`` flags.

    A tumour row with neither flag takes its class from its one subtype column; rows that
    contradict themselves raise, naming the images.
    """
    import numpy as np

    tumor, benign, malignant = ((table[c] == 1).to_numpy() for c in ("tumor", "benign", "malignant"))
    ids = table["image_id"].astype(str).to_numpy()
    both = benign & malignant
    if both.any():
        raise ValueError(f"{table_path}: rows marked both benign and malignant: {list(ids[both][:5])}")
    flagged_normal = ~tumor & (benign | malignant)
    if flagged_normal.any():
        raise ValueError(f"{table_path}: rows with tumor = 0 but benign or malignant = 1: "
                         f"{list(ids[flagged_normal][:5])}; expected tumor = 1 for them")
    out = np.where(malignant, "malignant", np.where(benign, "benign", "normal")).astype(object)
    for i in np.flatnonzero(tumor & ~benign & ~malignant):
        subtypes = [c for c in SUBTYPES if c in table.columns and table.iloc[i][c] == 1]
        if len(subtypes) != 1:
            raise ValueError(f"{table_path}: {ids[i]!r} has tumor = 1 but neither benign nor malignant, and "
                             f"subtype(s) {subtypes}; expected one flag or exactly one subtype column set")
        out[i] = "malignant" if subtypes[0] in MALIGNANT_SUBTYPES else "benign"
    return out


def read_archive(src: str | Path, include_normal: bool = True) -> tuple[Path, Path, pd.DataFrame]:
    """Find and read an unpacked BTXRD archive, checking the table against itself and the images.

    Used by both BTXRD conversions (chapter 3 and the book's page "Your own cohort").

    Parameters
    ----------
    src : str or Path
        The unpacked archive (:func:`find_root`).
    include_normal : bool
        Keep the normal radiographs.

    Returns
    -------
    tuple
        ``(root, table_path, table)``: the folder with ``images/``, the clinical table's path,
        and the table with a ``diagnosis`` column (normal, benign, malignant) from the
        ``tumor``, ``benign`` and ``malignant`` flags (a tumour row with neither flag takes it
        from its one subtype column; contradictory rows raise, naming the images). Every image
        it lists must exist.
    """
    root = find_root(src)
    table_path = next(root / n for n in ("dataset.xlsx", "dataset.csv") if (root / n).is_file())
    table = read_table(table_path)
    ids = table["image_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"{table_path}: image {ids[ids.duplicated()].iloc[0]!r} is listed twice")
    table = table.assign(diagnosis=_diagnoses(table, table_path))
    if not include_normal:
        table = table[table["diagnosis"] != "normal"].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{table_path}: no images to convert")
    missing = [i for i in table["image_id"].astype(str) if not (root / "images" / i).is_file()]
    if missing:
        raise FileNotFoundError(f"{table_path} lists {missing[:3]} ({len(missing)} in all), but "
                                f"{root / 'images'} has no such file")
    return root, table_path, table


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


class BtxrdImages:
    """The radiographs of an unpacked BTXRD archive, read from its JPEG files one at a time.

    Used by :func:`btxrd_cohort` as the cohort's image source (the book's page "Your own
    cohort"); ``oncolab.data.export_cohort`` asks it for each patient's radiograph.

    Parameters
    ----------
    files : dict of str to Path
        Patient id to image file.
    max_side : int, optional
        Shrink an image whose longer side is larger to this many pixels (aspect kept).
    """

    def __init__(self, files: dict[str, Path], max_side: int | None = None):
        if max_side is not None and (not isinstance(max_side, int) or max_side < 16):
            raise ValueError(f"max_side must be an integer >= 16 or None, got {max_side!r}")
        self.files = dict(files)
        self.max_side = max_side

    def radiograph(self, pid: str):
        """One radiograph, read from its file when asked for.

        Parameters
        ----------
        pid : str
            The patient id (the image name without extension).

        Returns
        -------
        numpy.ndarray
            uint8 (H, W) grayscale, EXIF orientation applied, shrunk to ``max_side``.
        """
        import numpy as np
        from PIL import Image, ImageOps

        if pid not in self.files:
            raise KeyError(f"no BTXRD image for patient {pid!r}")
        path = self.files[pid]
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im).convert("L")
                size = _scaled_size(*im.size, self.max_side)
                if size != im.size:
                    im = im.resize(size, Image.Resampling.BILINEAR)
                return np.asarray(im).copy()
        except OSError as e:
            raise ValueError(f"cannot read image {path}: {e}") from e


# ------------------------------------------------------------------------------ conversion
def btxrd_cohort(src: str | Path, include_normal: bool = True, max_side: int | None = None):
    """The BTXRD archive as a radiograph-only ``oncolab.data.Cohort`` (images read lazily).

    Used on the book's page "Your own cohort"; :func:`convert_btxrd_cohort` writes it.

    Parameters
    ----------
    src : str or Path
        The unpacked archive (the folder holding ``images/``, or its parent).
    include_normal : bool
        Keep the normal radiographs (class ``normal``); else only benign and malignant.
    max_side : int, optional
        Shrink each radiograph whose longer side is larger (boxes are scaled alike).

    Returns
    -------
    oncolab.data.Cohort
        ``labels.diagnosis`` with ``meta['classes']`` ordered normal < benign < malignant
        (those present; ``meta['ordered']`` is True), ``boxes`` (the box around every annotated region; NaN for normal
        radiographs), ``clinical`` (center, age, sex, site, view), a :class:`BtxrdImages`
        source.
    """
    import numpy as np
    import pandas as pd

    from .cohorts import BOX_COLUMNS, make_cohort
    from .registry import entry

    root, table_path, table = read_archive(src, include_normal)
    pids = [Path(str(i)).stem for i in table["image_id"]]
    if len(set(pids)) != len(pids):
        dup = next(p for p in pids if pids.count(p) > 1)
        raise ValueError(f"{table_path}: two images are named {dup!r} (extensions aside); expected unique names")
    index = pd.Index(pids, name="patient_id")
    files = {pid: root / "images" / str(i) for pid, i in zip(pids, table["image_id"])}
    images = BtxrdImages(files, max_side)
    boxes = np.full((len(table), 4), np.nan)
    for k, (pid, diagnosis) in enumerate(zip(pids, table["diagnosis"])):
        if diagnosis == "normal":
            continue
        ann_path = root / "Annotations" / f"{pid}.json"
        if not ann_path.is_file():
            raise FileNotFoundError(f"tumour image {files[pid].name!r} has no annotation {ann_path}")
        w, h = image_size(files[pid])
        b = tumour_boxes(ann_path, (w, h))
        sw, sh = _scaled_size(w, h, max_side)
        boxes[k] = [b[:, 0].min() * sw / w, b[:, 1].min() * sh / h, b[:, 2].max() * sw / w, b[:, 3].max() * sh / h]
    clinical = pd.DataFrame({
        "center": table["center"].to_numpy(),
        "age": pd.to_numeric(table["age"], errors="coerce").to_numpy(),
        "sex": table["gender"].to_numpy(),
        "site": [_one_hot_name(r, SITES) for _, r in table.iterrows()],
        "view": [_one_hot_name(r, VIEWS) for _, r in table.iterrows()],
    }, index=index)
    present = set(table["diagnosis"])
    return make_cohort(
        source="btxrd", where=str(table_path), licence=entry("btxrd").licence, citation=entry("btxrd").citation,
        diagnosis=pd.Series(table["diagnosis"].to_numpy(), index=index),
        classes=[c for c in COHORT_CLASSES if c in present], ordered=True,
        clinical=clinical, boxes=pd.DataFrame(boxes, index=index, columns=BOX_COLUMNS), images=images,
        extra_meta={"max_side": max_side, "boxes": "the box around every annotated tumour region; NaN for "
                                                    "a normal radiograph"})


def convert_btxrd_cohort(src: str | Path, out_dir: str | Path, include_normal: bool = True,
                         max_side: int | None = None, overwrite: bool = False, progress: bool = False) -> Path:
    """Write the BTXRD archive as a radiograph-only cohort folder (grayscale PNG + tables).

    Used on the book's page "Your own cohort"; ``oncolab.data.load_cohort`` reads the folder.

    Parameters
    ----------
    src : str or Path
        The unpacked archive.
    out_dir : str or Path
        The folder to create (its parent must exist); it appears whole or not at all.
    include_normal, max_side
        As for :func:`btxrd_cohort`.
    overwrite : bool
        Replace an existing folder.
    progress : bool
        Show a progress bar over the radiographs.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from oncolab.data import export_cohort

    return export_cohort(btxrd_cohort(src, include_normal, max_side), out_dir, overwrite=overwrite,
                         progress=progress)


def convert_btxrd(src: str | Path, out_dir: str | Path, seed: int = 0, val_fraction: float = 0.15,
                  test_fraction: float = 0.15, include_normal: bool = True,
                  overwrite: bool = False) -> Path:
    """Convert the BTXRD archive folder ``src`` into a YOLO dataset; return ``data.yaml``.

    Taught in chapter 3, which trains YOLO on the result.

    Parameters
    ----------
    src : str or Path
        The unpacked archive.
    out_dir : str or Path
        The dataset folder to create; it appears whole or not at all.
    seed : int
        Seed of the random split (stratified by diagnosis).
    val_fraction, test_fraction : float
        Shares of each class in the validation and test splits.
    include_normal : bool
        Keep normal radiographs as background images (empty label files).
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        The dataset's ``data.yaml`` (classes ``0 benign``, ``1 malignant``). A tumour image
        whose annotation file is missing or has no usable box raises, naming it.
    """
    import pandas as pd
    import yaml

    from oncolab.data import read_data_yaml, read_yolo_labels
    from oncolab.data.io import atomic_folder, publish_folder

    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} must be in [0, 1), got {frac!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")
    root, table_path, table = read_archive(src, include_normal)
    table["split"] = _split(table["diagnosis"].to_numpy(), val_fraction, test_fraction, seed)

    out_dir = Path(out_dir)
    tmp = atomic_folder(out_dir, overwrite)
    try:
        splits = [s for s in ("train", "val", "test") if (table["split"] == s).any()]
        for s in splits:
            (tmp / "images" / s).mkdir(parents=True)
            (tmp / "labels" / s).mkdir(parents=True)
        n_boxes = []
        for _, row in table.iterrows():
            image_id = str(row["image_id"])
            img_path = root / "images" / image_id
            stem = Path(image_id).stem
            shutil.copyfile(img_path, tmp / "images" / row["split"] / image_id)
            lines = []
            if row["diagnosis"] != "normal":
                ann_path = root / "Annotations" / f"{stem}.json"
                if not ann_path.is_file():
                    raise FileNotFoundError(f"tumour image {image_id!r} has no annotation {ann_path}")
                w, h = image_size(img_path)
                cls = 1 if row["diagnosis"] == "malignant" else 0
                for x0, y0, x1, y1 in tumour_boxes(ann_path, (w, h)):
                    lines.append(f"{cls} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
                                 f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
            (tmp / "labels" / row["split"] / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            n_boxes.append(len(lines))
        for lbl in (tmp / "labels").rglob("*.txt"):
            read_yolo_labels(lbl, n_classes=len(CLASS_NAMES))
        clinical = pd.DataFrame({
            "image_id": table["image_id"].astype(str),
            "center": table["center"],
            "age": table["age"],
            "sex": table["gender"],
            "site": [_one_hot_name(r, SITES) for _, r in table.iterrows()],
            "view": [_one_hot_name(r, VIEWS) for _, r in table.iterrows()],
            "diagnosis": table["diagnosis"],
            "subtype": [_one_hot_name(r, SUBTYPES) for _, r in table.iterrows()],
            "split": table["split"],
            "n_boxes": n_boxes,
        }).set_index("image_id")
        clinical.to_csv(tmp / "clinical.csv")
        data = {"path": str(out_dir.resolve()), **{s: f"images/{s}" for s in splits},
                "names": dict(CLASS_NAMES)}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        publish_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    read_data_yaml(out_dir / "data.yaml")
    return out_dir / "data.yaml"


def main(argv: list[str] | None = None) -> int:
    from .registry import DataFetchError, fetch

    p = argparse.ArgumentParser(prog="python -m data_scripts.btxrd", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--cohort", action="store_true", help="write a cohort folder instead of a YOLO dataset")
    p.add_argument("--seed", type=int, default=0, help="seed of the YOLO dataset's split")
    p.add_argument("--max-side", type=int, default=None, help="cohort: shrink radiographs to this longer side")
    p.add_argument("--tumours-only", action="store_true", help="leave the normal radiographs out")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        archive = fetch("btxrd")
    except DataFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    extracted = archive.with_suffix("")
    if not extracted.exists():
        tmp = extracted.with_name(extracted.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        tmp.replace(extracted)
    if args.cohort:
        out = convert_btxrd_cohort(extracted, args.out_dir, include_normal=not args.tumours_only,
                                   max_side=args.max_side, overwrite=args.overwrite, progress=True)
    else:
        out = convert_btxrd(extracted, args.out_dir, seed=args.seed, include_normal=not args.tumours_only,
                            overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
