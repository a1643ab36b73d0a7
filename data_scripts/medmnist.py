"""MedMNIST (PathMNIST, BreastMNIST): the published ``.npz`` -> PNG images + a labels table.

Used in chapters 2 (images and CNNs) and 5 (pathology). The ``.npz`` holds
``{train,val,test}_images`` (uint8, ``(n, 28, 28)`` or ``(n, 28, 28, 3)``) and
``{train,val,test}_labels`` (``(n, 1)``). :func:`convert_medmnist` writes::

    out/
      images/train/train_00000.png ...
      labels.csv     image, split, label, label_name
      info.json      dataset, classes, counts, source checksum

    python -m data_scripts.medmnist pathmnist OUT_DIR [--max-per-split N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import numpy as np
    import pandas as pd

__all__ = ["CLASSES", "SPLITS", "convert_medmnist", "load_medmnist_folder"]

SPLITS = ("train", "val", "test")
CLASSES = {
    "pathmnist": ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                  "normal colon mucosa", "cancer-associated stroma",
                  "colorectal adenocarcinoma epithelium"],
    "breastmnist": ["malignant", "normal, benign"],
}


def _check_npz(npz, path: Path, n_classes: int) -> None:
    import numpy as np

    for split in SPLITS:
        for kind in ("images", "labels"):
            if f"{split}_{kind}" not in npz.files:
                raise ValueError(f"{path}: missing array '{split}_{kind}'; expected "
                                 f"{[f'{s}_{k}' for s in SPLITS for k in ('images', 'labels')]}")
        x, y = npz[f"{split}_images"], npz[f"{split}_labels"]
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3):
            raise ValueError(f"{path}: '{split}_images' must be uint8 (n, H, W) or (n, H, W, 3), "
                             f"got {x.dtype} {x.shape}")
        if len(y) != len(x):
            raise ValueError(f"{path}: {len(x)} {split} images but {len(y)} labels")
        flat = np.asarray(y).reshape(len(y), -1)[:, 0] if len(y) else np.zeros(0, int)
        if len(flat) and (flat.min() < 0 or flat.max() >= n_classes):
            raise ValueError(f"{path}: {split} labels outside [0, {n_classes}): "
                             f"min {flat.min()}, max {flat.max()}")


def convert_medmnist(npz_path: str | Path, out_dir: str | Path, dataset: str,
                     max_per_split: int | None = None, overwrite: bool = False) -> Path:
    """Write a MedMNIST ``.npz`` as PNG files and ``labels.csv``.

    Used by chapters 2 and 5 (online).

    Parameters
    ----------
    npz_path : str or Path
        The published ``.npz``.
    out_dir : str or Path
        The folder to create; it appears complete or not at all.
    dataset : {"pathmnist", "breastmnist"}
        Which dataset (it names the classes).
    max_per_split : int, optional
        Keep the first N images of each split (a small subset for a quick run).
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import numpy as np
    import pandas as pd

    from oncolab.data.io import atomic_folder, publish_folder, write_png

    if dataset not in CLASSES:
        raise ValueError(f"dataset must be one of {sorted(CLASSES)}, got {dataset!r}")
    if max_per_split is not None and (not isinstance(max_per_split, int) or max_per_split < 1):
        raise ValueError(f"max_per_split must be a positive integer or None, got {max_per_split!r}")
    npz_path, out_dir = Path(npz_path), Path(out_dir)
    classes = CLASSES[dataset]
    with np.load(npz_path) as npz:
        _check_npz(npz, npz_path, len(classes))
        tmp = atomic_folder(out_dir, overwrite)
        try:
            rows = []
            for split in SPLITS:
                x = npz[f"{split}_images"]
                y = np.asarray(npz[f"{split}_labels"]).reshape(len(x), -1)[:, 0].astype(int)
                n = len(x) if max_per_split is None else min(len(x), max_per_split)
                (tmp / "images" / split).mkdir(parents=True)
                for i in range(n):
                    rel = f"images/{split}/{split}_{i:05d}.png"
                    write_png(x[i], tmp / rel)
                    rows.append((rel, split, int(y[i]), classes[int(y[i])]))
            table = pd.DataFrame(rows, columns=["image", "split", "label", "label_name"])
            table.to_csv(tmp / "labels.csv", index=False)
            info = {"dataset": dataset, "classes": classes,
                    "counts": table.groupby("split").size().to_dict(),
                    "channels": 3 if npz["train_images"].ndim == 4 else 1,
                    "source": npz_path.name}
            (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True))
            publish_folder(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out_dir


def load_medmnist_folder(folder: str | Path, split: str | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a folder written by :func:`convert_medmnist` back.

    Used by chapters 2 and 5 (online).

    Parameters
    ----------
    folder : str or Path
        The converted folder.
    split : {"train", "val", "test"}, optional
        One split; all of them when None.

    Returns
    -------
    tuple
        ``(images, labels)``: the images stacked as uint8 and the rows of ``labels.csv``.
    """
    import numpy as np
    import pandas as pd

    from oncolab.data import read_image

    folder = Path(folder)
    table_path = folder / "labels.csv"
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path} not found: is {folder} a converted MedMNIST folder?")
    table = pd.read_csv(table_path)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        table = table[table["split"] == split].reset_index(drop=True)
    images = np.stack([read_image(folder / p) for p in table["image"]]) if len(table) else np.zeros((0,))
    return images, table


def main(argv: list[str] | None = None) -> int:
    from .registry import DataFetchError, fetch

    p = argparse.ArgumentParser(prog="python -m data_scripts.medmnist")
    p.add_argument("dataset", choices=sorted(CLASSES))
    p.add_argument("out_dir")
    p.add_argument("--max-per-split", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        npz = fetch(args.dataset)
    except DataFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = convert_medmnist(npz, args.out_dir, args.dataset, args.max_per_split, args.overwrite)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
