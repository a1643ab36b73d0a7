"""METABRIC breast cancer (cBioPortal DataHub): clinical table + mRNA expression.

Used in chapters 7 ("Gene expression") and 8 ("Survival analysis from first principles").
The DataHub archive ``brca_metabric.tar.gz`` unpacks to ``brca_metabric/`` with
``data_clinical_patient.txt`` (tab-separated, ``#`` header lines), ``data_clinical_sample.txt``
and an expression matrix (``Hugo_Symbol``, ``Entrez_Gene_Id``, one column per sample).

:func:`convert_metabric` writes the book's tables (``clinical.csv``, ``expression.csv``,
``survival.csv``, indexed by ``patient_id``); outcome overall survival in months.
:func:`load_metabric` reads them back as an ``oncolab.data.RealDataset``.

    python -m data_scripts.metabric OUT_DIR [--trust-on-first-use]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from ._tables import load_tables, write_tables

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import pandas as pd

__all__ = ["EXPRESSION_FILES", "convert_metabric", "find_study", "load_metabric"]

EXPRESSION_FILES = ("data_mrna_illumina_microarray.txt", "data_mrna_agilent_microarray.txt",
                    "data_expression_median.txt")
CLINICAL_COLUMNS = ["AGE_AT_DIAGNOSIS", "NPI", "CELLULARITY", "CHEMOTHERAPY", "ER_IHC", "HER2_SNP6",
                    "HORMONE_THERAPY", "INFERRED_MENOPAUSAL_STATE", "INTCLUST", "CLAUDIN_SUBTYPE",
                    "RADIO_THERAPY", "LYMPH_NODES_EXAMINED_POSITIVE"]


def find_study(src: str | Path) -> Path:
    """The folder with ``data_clinical_patient.txt``: ``src`` or ``src/brca_metabric``."""
    src = Path(src)
    for cand in (src, src / "brca_metabric"):
        if (cand / "data_clinical_patient.txt").is_file():
            return cand
    raise FileNotFoundError(f"{src} does not look like cBioPortal's brca_metabric study: "
                            "expected data_clinical_patient.txt")


def _os_event(status: pd.Series) -> pd.Series:
    s = status.astype(str).str.upper()
    event = s.str.contains("DECEASED") | s.str.startswith("1:")
    alive = s.str.contains("LIVING") | s.str.startswith("0:")
    bad = status[status.notna() & ~(event | alive)]
    if len(bad):
        raise ValueError(f"OS_STATUS values not understood: {sorted(set(bad))[:5]}; "
                         "expected '1:DECEASED' / '0:LIVING'")
    return event.where(status.notna())


def convert_metabric(src: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Convert an unpacked ``brca_metabric`` study folder into the book's tables."""
    import numpy as np
    import pandas as pd

    study = find_study(src)
    patients = pd.read_csv(study / "data_clinical_patient.txt", sep="\t", comment="#", dtype={"PATIENT_ID": str})
    need = ["PATIENT_ID", "OS_MONTHS", "OS_STATUS"]
    missing = [c for c in need if c not in patients.columns]
    if missing:
        raise ValueError(f"{study / 'data_clinical_patient.txt'}: missing column(s) {missing}")
    patients = patients.set_index("PATIENT_ID")
    expr_path = next((study / n for n in EXPRESSION_FILES if (study / n).is_file()), None)
    if expr_path is None:
        raise FileNotFoundError(f"{study}: no expression file; expected one of {list(EXPRESSION_FILES)}")
    expr = pd.read_csv(expr_path, sep="\t", comment="#")
    if "Hugo_Symbol" not in expr.columns:
        raise ValueError(f"{expr_path}: expected a 'Hugo_Symbol' column, got {list(expr.columns[:3])}")
    expr = expr.dropna(subset=["Hugo_Symbol"]).drop_duplicates("Hugo_Symbol").set_index("Hugo_Symbol")
    expr = expr.drop(columns=[c for c in ("Entrez_Gene_Id",) if c in expr.columns]).T
    expr.index = expr.index.astype(str)
    expr = expr.apply(pd.to_numeric, errors="coerce")
    event = _os_event(patients["OS_STATUS"])
    time = pd.to_numeric(patients["OS_MONTHS"], errors="coerce")
    ok = event.notna() & time.notna() & (time >= 0)
    keep = sorted(set(patients.index[ok]) & set(expr.index))
    if not keep:
        raise ValueError(f"{study}: no patient has both expression and overall survival")
    clinical = patients.loc[keep, [c for c in CLINICAL_COLUMNS if c in patients.columns]]
    clinical = clinical.rename(columns={"AGE_AT_DIAGNOSIS": "age"})
    survival = pd.DataFrame({"event": event.loc[keep].astype(bool), "time": time.loc[keep].astype(float)})
    meta = {"name": "metabric",
            "description": "METABRIC breast cancers (cBioPortal brca_metabric): clinical covariates and "
                           f"mRNA expression ({expr_path.name}); outcome overall survival in months.",
            "citation": "Curtis et al., Nature 2012; cBioPortal (Cerami et al., Cancer Discov 2012)",
            "dropped_patients": int(len(patients) - len(keep)), "expression_file": expr_path.name}
    return write_tables(Path(out_dir), clinical, expr.loc[keep].astype(np.float64), survival, meta, overwrite)


def load_metabric(folder: str | Path):
    """A converted METABRIC folder as an ``oncolab.data.RealDataset`` (time in months)."""
    return load_tables(folder)


def main(argv: list[str] | None = None) -> int:
    from .registry import DataFetchError, fetch

    p = argparse.ArgumentParser(prog="python -m data_scripts.metabric")
    p.add_argument("out_dir")
    p.add_argument("--trust-on-first-use", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        archive = fetch("metabric", trust_on_first_use=args.trust_on_first_use)
    except DataFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    extracted = archive.parent / "brca_metabric_unpacked"
    if not extracted.exists():
        tmp = extracted.with_name(extracted.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archive) as t:
            t.extractall(tmp, filter="data")
        tmp.replace(extracted)
    print(f"wrote {convert_metabric(extracted, args.out_dir, args.overwrite)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
