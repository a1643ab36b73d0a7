"""METABRIC breast cancer (cBioPortal DataHub): mRNA expression + clinical + overall survival, as a cohort folder.

Used in chapters 7 ("Gene expression") and 8 ("Survival analysis from first principles") and on
the book's page "Your own cohort". Licence: the cBioPortal DataHub study files are under ODbL
1.0; cite Curtis et al., Nature 2012 and Pereira et al., Nat Commun 2016 (the data) and
Cerami et al., Cancer Discov 2012 (cBioPortal).

The DataHub archive ``brca_metabric.tar.gz`` unpacks to ``brca_metabric/`` with
``data_clinical_patient.txt`` (tab-separated, four ``#`` header lines, then ``PATIENT_ID``,
``AGE_AT_DIAGNOSIS``, ``NPI``, ..., ``OS_MONTHS``, ``OS_STATUS`` = ``1:DECEASED`` /
``0:LIVING``), ``data_clinical_sample.txt`` (``PATIENT_ID``, ``SAMPLE_ID``, ...) and an
expression matrix (``Hugo_Symbol``, ``Entrez_Gene_Id``, one column per sample; log2
intensities of the Illumina HT-12 array).

:func:`convert_metabric` writes the cohort folder that ``oncolab.data.load_cohort`` reads:
``labels`` overall survival (``time`` in months > 0, ``event`` = death), ``genes`` (one column
per gene symbol, ``meta['gene_values'] = 'log_expression'``; a gene missing for any kept patient
is left out and counted), ``clinical`` (age and the study's prognostic columns). There is no
diagnosis unless asked for: ``--diagnosis CLAUDIN_SUBTYPE`` makes the PAM50 + claudin-low
subtype the class label (it then leaves the clinical table).

    python -m data_scripts.metabric OUT_DIR --trust-on-first-use [--diagnosis CLAUDIN_SUBTYPE]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import pandas as pd

__all__ = ["CLINICAL_COLUMNS", "EXPRESSION_FILES", "convert_metabric", "find_study", "metabric_cohort"]

EXPRESSION_FILES = ("data_mrna_illumina_microarray.txt", "data_mrna_agilent_microarray.txt",
                    "data_expression_median.txt")
CLINICAL_COLUMNS = ["AGE_AT_DIAGNOSIS", "NPI", "CELLULARITY", "CHEMOTHERAPY", "ER_IHC", "HER2_SNP6",
                    "HORMONE_THERAPY", "INFERRED_MENOPAUSAL_STATE", "INTCLUST", "CLAUDIN_SUBTYPE",
                    "RADIO_THERAPY", "LYMPH_NODES_EXAMINED_POSITIVE"]


def find_study(src: str | Path) -> Path:
    """The study folder of an unpacked METABRIC archive.

    Used by :func:`metabric_cohort` (chapter 7 and the book's page "Your own cohort").

    Parameters
    ----------
    src : str or Path
        The folder holding ``data_clinical_patient.txt``, or its parent holding ``brca_metabric/``.

    Returns
    -------
    Path
        The folder with ``data_clinical_patient.txt``; anything else raises, naming ``src``.
    """
    src = Path(src)
    for cand in (src, src / "brca_metabric"):
        if (cand / "data_clinical_patient.txt").is_file():
            return cand
    raise FileNotFoundError(f"{src} does not look like cBioPortal's brca_metabric study: "
                            "expected data_clinical_patient.txt")


def _os_event(status: pd.Series, path: Path) -> pd.Series:
    s = status.astype(str).str.upper()
    event = s.str.contains("DECEASED") | s.str.startswith("1:")
    alive = s.str.contains("LIVING") | s.str.startswith("0:")
    bad = status[status.notna() & ~(event | alive)]
    if len(bad):
        raise ValueError(f"{path}: OS_STATUS values not understood: {sorted(set(bad))[:5]}; "
                         "expected '1:DECEASED' / '0:LIVING'")
    return event.where(status.notna())


def _read_tsv(path: Path, **kwargs) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path, sep="\t", comment="#", **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a tab-separated cBioPortal table: {e}") from e


def _expression(study: Path) -> tuple[Path, pd.DataFrame]:
    """(file, patients x genes) from the study's expression matrix, samples mapped to patients."""
    import pandas as pd

    expr_path = next((study / n for n in EXPRESSION_FILES if (study / n).is_file()), None)
    if expr_path is None:
        raise FileNotFoundError(f"{study}: no expression file; expected one of {list(EXPRESSION_FILES)}")
    expr = _read_tsv(expr_path)
    if "Hugo_Symbol" not in expr.columns:
        raise ValueError(f"{expr_path}: expected a 'Hugo_Symbol' column, got {list(expr.columns[:3])}")
    expr = expr.dropna(subset=["Hugo_Symbol"]).drop_duplicates("Hugo_Symbol").set_index("Hugo_Symbol")
    expr = expr.drop(columns=[c for c in ("Entrez_Gene_Id",) if c in expr.columns]).T
    expr.index = expr.index.astype(str)
    expr.columns = expr.columns.astype(str)
    expr = expr.apply(pd.to_numeric, errors="coerce")
    sample_path = study / "data_clinical_sample.txt"
    if sample_path.is_file():
        samples = _read_tsv(sample_path, dtype=str)
        missing = [c for c in ("PATIENT_ID", "SAMPLE_ID") if c not in samples.columns]
        if missing:
            raise ValueError(f"{sample_path}: missing column(s) {missing}; expected PATIENT_ID and SAMPLE_ID")
        to_patient = dict(zip(samples["SAMPLE_ID"], samples["PATIENT_ID"]))
        unknown = [s for s in expr.index if s not in to_patient]
        if unknown:
            raise ValueError(f"{expr_path}: sample(s) {unknown[:3]} are not in {sample_path}")
        expr.index = [to_patient[s] for s in expr.index]
        dup = expr.index[expr.index.duplicated()]
        if len(dup):
            raise ValueError(f"{expr_path}: patient {dup[0]!r} has two expression samples; expected one")
    expr.index.name = "patient_id"
    return expr_path, expr


def metabric_cohort(src: str | Path, diagnosis: str | None = None, classes: Sequence[str] | None = None,
                    ordered: bool = False):
    """An unpacked ``brca_metabric`` study as an ``oncolab.data.Cohort``.

    Used on the book's page "Your own cohort"; :func:`convert_metabric` writes it.

    Parameters
    ----------
    src : str or Path
        The unpacked archive (the study folder or its parent).
    diagnosis : str, optional
        A clinical column to use as the diagnosis (``CLAUDIN_SUBTYPE``, say).
    classes : sequence of str, optional
        The diagnosis classes in order; patients with another value are left out.
    ordered : bool
        Whether those classes are ordered.

    Returns
    -------
    oncolab.data.Cohort
        Overall survival in months, genes (log expression), clinical; ``meta['excluded']``
        counts the patients left out by reason.
    """
    import numpy as np
    import pandas as pd

    from .cohorts import exclude, make_cohort, split_diagnosis
    from .registry import entry

    study = find_study(src)
    patient_path = study / "data_clinical_patient.txt"
    patients = _read_tsv(patient_path, dtype={"PATIENT_ID": str})
    need = ["PATIENT_ID", "OS_MONTHS", "OS_STATUS"]
    missing = [c for c in need if c not in patients.columns]
    if missing:
        raise ValueError(f"{patient_path}: missing column(s) {missing}; expected at least {need}")
    dup = patients["PATIENT_ID"][patients["PATIENT_ID"].duplicated()]
    if len(dup):
        raise ValueError(f"{patient_path}: patient {dup.iloc[0]!r} is listed twice; expected one row per patient")
    patients = patients.set_index("PATIENT_ID")
    patients.index.name = "patient_id"
    expr_path, expr = _expression(study)
    event = _os_event(patients["OS_STATUS"], patient_path)
    time = pd.to_numeric(patients["OS_MONTHS"], errors="coerce")
    clinical = patients[[c for c in CLINICAL_COLUMNS if c in patients.columns]]
    clinical = clinical.rename(columns={"AGE_AT_DIAGNOSIS": "age"})
    clinical, label, classes = split_diagnosis(clinical, diagnosis, classes, ordered, where=str(patient_path))
    reasons = [("no overall survival", event.isna() | time.isna()), ("time <= 0", time <= 0),
               ("no expression", ~patients.index.isin(expr.index))]
    if label is not None:
        reasons.append((f"no {diagnosis} among the classes", ~patients.index.isin(label.index)))
    ok, excluded = exclude(reasons)
    keep = sorted(patients.index[ok])
    genes = expr.loc[keep].astype(np.float64)
    complete = genes.columns[genes.notna().all()]
    return make_cohort(
        source="metabric", where=str(study), licence=entry("metabric").licence, citation=entry("metabric").citation,
        diagnosis=None if label is None else label.loc[keep], classes=classes, ordered=ordered,
        time=time.loc[keep].astype(float), event=event.loc[keep].astype(bool), time_unit="months",
        clinical=clinical.loc[keep], genes=genes[complete], gene_values="log_expression",
        extra_meta={"outcome": "overall survival", "expression_file": expr_path.name,
                    "excluded": excluded,
                    "genes_left_out_missing_values": int(genes.shape[1] - len(complete))})


def convert_metabric(src: str | Path, out_dir: str | Path, diagnosis: str | None = None,
                     classes: Sequence[str] | None = None, ordered: bool = False, overwrite: bool = False) -> Path:
    """Write an unpacked ``brca_metabric`` study as a cohort folder.

    Used on the book's page "Your own cohort"; ``oncolab.data.load_cohort`` reads the folder.

    Parameters
    ----------
    src : str or Path
        The unpacked archive.
    out_dir : str or Path
        The folder to create (its parent must exist); it appears whole or not at all.
    diagnosis, classes, ordered
        As for :func:`metabric_cohort`.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from oncolab.data import export_cohort

    return export_cohort(metabric_cohort(src, diagnosis, classes, ordered), out_dir, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    from .cohorts import add_diagnosis_options, diagnosis_options
    from .registry import DataFetchError, fetch

    p = argparse.ArgumentParser(prog="python -m data_scripts.metabric", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--trust-on-first-use", action="store_true")
    add_diagnosis_options(p)
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
    out = convert_metabric(extracted, args.out_dir, **diagnosis_options(args), overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
