"""Shared pieces of the TCGA and METABRIC converters: survival arrays and the table folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import pandas as pd

__all__ = ["load_tables", "write_tables"]


def write_tables(out_dir: Path, clinical: pd.DataFrame, expression: pd.DataFrame,
                 survival: pd.DataFrame, meta: dict, overwrite: bool) -> Path:
    """Write ``clinical.csv``, ``expression.csv``, ``survival.csv`` and ``meta.json`` atomically.

    All three tables are indexed by ``patient_id`` (strings) and hold the same patients in
    the same order; ``survival`` has the columns ``event`` (bool) and ``time`` (float).
    """
    from oncolab.data.io import _atomic_folder, _publish

    if not (clinical.index.equals(expression.index) and clinical.index.equals(survival.index)):
        raise ValueError("clinical, expression and survival must list the same patients in the same order")
    if list(survival.columns) != ["event", "time"]:
        raise ValueError(f"survival must have the columns ['event', 'time'], got {list(survival.columns)}")
    out_dir = Path(out_dir)
    tmp = _atomic_folder(out_dir, overwrite)
    try:
        for name, df in (("clinical", clinical), ("expression", expression), ("survival", survival)):
            df.index = df.index.astype(str).rename("patient_id")
            df.to_csv(tmp / f"{name}.csv")
        (tmp / "meta.json").write_text(json.dumps({**meta, "n_patients": len(clinical),
                                                   "n_genes": expression.shape[1]}, indent=2))
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def load_tables(folder: str | Path):
    """Read a folder written by :func:`write_tables` as an ``oncolab.data.RealDataset``.

    ``X`` is the clinical table joined with the expression table (raw values: no encoding or
    scaling), ``y`` scikit-survival's structured ``(event, time)`` array.
    """
    import numpy as np
    import pandas as pd

    from oncolab.data import RealDataset

    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: is {folder} a converted TCGA/METABRIC folder?")
    meta = json.loads(meta_path.read_text())
    read = {n: pd.read_csv(folder / f"{n}.csv", index_col="patient_id", dtype={"patient_id": str})
            for n in ("clinical", "expression", "survival")}
    X = read["clinical"].join(read["expression"], how="inner")
    s = read["survival"].loc[X.index]
    y = np.empty(len(s), dtype=[("event", bool), ("time", float)])
    y["event"] = s["event"].astype(bool).to_numpy()
    y["time"] = s["time"].astype(float).to_numpy()
    return RealDataset(meta["name"], X, y, meta["description"], meta["citation"])
