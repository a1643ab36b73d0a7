"""BTXRD bone-tumour radiographs: LabelMe annotations + clinical table -> a YOLO dataset.

Used in chapter 3 ("Finding the tumor: object detection") and chapter 12. The published
archive (Yao et al., Scientific Data 2025) holds::

    BTXRD/images/IMG000001.jpeg ...      3,746 radiographs
    BTXRD/Annotations/IMG000001.json ... LabelMe JSON, tumour images only (rectangles, polygons)
    BTXRD/dataset.xlsx                    image_id, center, age, gender, site and view one-hot
                                          columns, tumor, benign, malignant, subtype columns

:func:`convert_btxrd` writes an ultralytics YOLO dataset (classes ``0 benign``,
``1 malignant``; normal radiographs kept as background images with empty label files), split
at random with a seed and stratified by diagnosis, plus ``clinical.csv`` in the book's table
conventions. The result is checked with :func:`oncolab.data.read_data_yaml` and
:func:`oncolab.data.read_yolo_labels` before it is returned.

    python -m data_scripts.btxrd OUT_DIR [--seed 0]

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

__all__ = ["CLASS_NAMES", "SITES", "VIEWS", "convert_btxrd", "find_root", "labelme_boxes",
           "read_table"]

CLASS_NAMES = {0: "benign", 1: "malignant"}
SITES = ["hand", "ulna", "radius", "humerus", "foot", "tibia", "fibula", "femur", "hip bone",
         "ankle-joint", "knee-joint", "hip-joint", "wrist-joint", "elbow-joint", "shoulder-joint"]
VIEWS = ["frontal", "lateral", "oblique"]
SUBTYPES = ["osteochondroma", "multiple osteochondromas", "simple bone cyst", "giant cell tumor",
            "osteofibroma", "synovial osteochondroma", "other bt", "osteosarcoma", "other mt"]
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
    """Read BTXRD's clinical table (``dataset.xlsx`` or a ``.csv`` export) and check its columns."""
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
    """The folder holding ``images/`` and the table: ``src`` itself or ``src/BTXRD``."""
    src = Path(src)
    for cand in (src, src / "BTXRD"):
        if (cand / "images").is_dir() and any((cand / n).is_file() for n in ("dataset.xlsx", "dataset.csv")):
            return cand
    raise FileNotFoundError(f"{src} does not look like the BTXRD archive: expected images/, "
                            "Annotations/ and dataset.xlsx (or the same inside BTXRD/)")


# ------------------------------------------------------------------------------ annotations
def labelme_boxes(annotation: dict, width: int, height: int) -> np.ndarray:
    """Pixel boxes ``(n, 4)`` ``x0 y0 x1 y1`` from one LabelMe annotation.

    Rectangles are used as drawn; when an annotation has no rectangle, each polygon gives
    its bounding box. Boxes are clipped to the image; empty ones are dropped.
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


# ------------------------------------------------------------------------------ conversion
def convert_btxrd(src: str | Path, out_dir: str | Path, seed: int = 0, val_fraction: float = 0.15,
                  test_fraction: float = 0.15, include_normal: bool = True,
                  overwrite: bool = False) -> Path:
    """Convert the BTXRD archive folder ``src`` into a YOLO dataset; return ``data.yaml``.

    Diagnosis comes from the table (``malignant`` -> class 1, ``benign`` -> class 0);
    normal radiographs (``tumor == 0``) become background images when ``include_normal``.
    A tumour image whose annotation file is missing or has no usable box raises, naming it.
    """
    import numpy as np
    import pandas as pd
    import yaml
    from PIL import Image

    from oncolab.data import read_data_yaml, read_yolo_labels
    from oncolab.data.io import _atomic_folder, _publish

    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} must be in [0, 1), got {frac!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")
    root = find_root(src)
    table_path = next(root / n for n in ("dataset.xlsx", "dataset.csv") if (root / n).is_file())
    table = read_table(table_path)
    bad = table[(table["benign"] == 1) & (table["malignant"] == 1)]
    if len(bad):
        raise ValueError(f"{table_path}: rows marked both benign and malignant: {list(bad['image_id'][:5])}")
    diagnosis = np.where(table["malignant"] == 1, "malignant",
                         np.where(table["benign"] == 1, "benign", "normal"))
    table = table.assign(diagnosis=diagnosis)
    if not include_normal:
        table = table[table["diagnosis"] != "normal"].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{table_path}: no images to convert")
    table["split"] = _split(table["diagnosis"].to_numpy(), val_fraction, test_fraction, seed)

    out_dir = Path(out_dir)
    tmp = _atomic_folder(out_dir, overwrite)
    try:
        splits = [s for s in ("train", "val", "test") if (table["split"] == s).any()]
        for s in splits:
            (tmp / "images" / s).mkdir(parents=True)
            (tmp / "labels" / s).mkdir(parents=True)
        n_boxes = []
        for _, row in table.iterrows():
            image_id = str(row["image_id"])
            img_path = root / "images" / image_id
            if not img_path.is_file():
                raise FileNotFoundError(f"{table_path} lists {image_id!r}, but {img_path} does not exist")
            stem = Path(image_id).stem
            shutil.copyfile(img_path, tmp / "images" / row["split"] / image_id)
            lines = []
            if row["diagnosis"] != "normal":
                ann_path = root / "Annotations" / f"{stem}.json"
                if not ann_path.is_file():
                    raise FileNotFoundError(f"tumour image {image_id!r} has no annotation {ann_path}")
                ann = json.loads(ann_path.read_text())
                w, h = ann.get("imageWidth"), ann.get("imageHeight")
                if not w or not h:
                    with Image.open(img_path) as im:
                        w, h = im.size
                boxes = labelme_boxes(ann, int(w), int(h))
                if len(boxes) == 0:
                    raise ValueError(f"{ann_path}: no rectangle or polygon with a positive area")
                cls = 1 if row["diagnosis"] == "malignant" else 0
                for x0, y0, x1, y1 in boxes:
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
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    read_data_yaml(out_dir / "data.yaml")
    return out_dir / "data.yaml"


def main(argv: list[str] | None = None) -> int:
    from .registry import DataFetchError, fetch

    p = argparse.ArgumentParser(prog="python -m data_scripts.btxrd")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
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
    print(f"wrote {convert_btxrd(extracted, args.out_dir, seed=args.seed, overwrite=args.overwrite)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
