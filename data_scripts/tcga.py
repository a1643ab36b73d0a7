"""One TCGA project through the GDC API: gene expression + clinical + overall survival, as a cohort folder.

Used in chapters 7 ("Gene expression") and 8 ("Survival analysis from first principles") and on
the book's page "Your own cohort". Licence: NIH Genomic Data Commons open-access data (GDC data
access policies); cite The Cancer Genome Atlas Research Network, Nat Genet 2013, and Grossman
et al., NEJM 2016 (the GDC).

Three steps, all through ``pooch`` (:func:`data_scripts.registry.fetch_url`):

1. the GDC ``files`` endpoint lists the project's open ``STAR - Counts`` expression files with
   each file's MD5 (a live query, re-run each time);
2. the GDC ``cases`` endpoint gives each patient's demographics, diagnosis and follow-up
   (a live query);
3. every expression file (``*.rna_seq.augmented_star_gene_counts.tsv``: ``gene_id``,
   ``gene_name``, ``gene_type``, ``unstranded``, ..., ``tpm_unstranded``) is downloaded from
   ``/data/<file_id>`` and verified against its MD5.

:func:`convert_tcga` then writes the cohort folder that ``oncolab.data.load_cohort`` reads: one
primary-tumour sample per patient; ``genes`` the unstranded read counts of protein-coding genes
(``meta['gene_values'] = 'counts'``, what chapter 7's gene features start from); ``clinical``
age, sex (F/M), primary diagnosis and site; ``labels`` overall survival in days (death, or last
follow-up when alive; time > 0). There is no diagnosis unless asked for
(``--diagnosis primary_diagnosis`` makes the histology the class label).

    python -m data_scripts.tcga TCGA-SARC OUT_DIR [--max-cases N] [--diagnosis primary_diagnosis]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import pandas as pd

__all__ = ["GDC_API", "convert_tcga", "download_tcga", "expression_filters",
           "read_star_counts", "tcga_cohort"]

GDC_API = "https://api.gdc.cancer.gov"
CASE_FIELDS = ["submitter_id", "demographic.gender", "demographic.vital_status",
               "demographic.days_to_death", "demographic.age_at_index",
               "diagnoses.age_at_diagnosis", "diagnoses.days_to_last_follow_up",
               "diagnoses.primary_diagnosis", "diagnoses.tissue_or_organ_of_origin"]
SEX_CODES = {"female": "F", "male": "M"}
FILE_FIELDS = ["file_id", "file_name", "md5sum", "file_size", "cases.submitter_id",
               "cases.samples.sample_type"]


def expression_filters(project: str) -> dict:
    """The GDC filter for a project's open-access STAR-counts expression files.

    Used by :func:`download_tcga` (chapter 7 and the book's page "Your own cohort").

    Parameters
    ----------
    project : str
        A TCGA project id (``TCGA-SARC``).

    Returns
    -------
    dict
        The ``filters`` of a GDC ``files`` query, as the GDC API documents them.
    """
    return {"op": "and", "content": [
        {"op": "=", "content": {"field": "cases.project.project_id", "value": project}},
        {"op": "=", "content": {"field": "data_type", "value": "Gene Expression Quantification"}},
        {"op": "=", "content": {"field": "analysis.workflow_type", "value": "STAR - Counts"}},
        {"op": "=", "content": {"field": "access", "value": "open"}},
    ]}


def _query_url(base: str, endpoint: str, filters: dict, fields: list[str], size: int) -> str:
    return f"{base}/{endpoint}?" + urlencode({"filters": json.dumps(filters), "fields": ",".join(fields),
                                             "format": "JSON", "size": str(size)})


def _hits(path: Path) -> list[dict]:
    try:
        payload = json.loads(Path(path).read_text())
        return payload["data"]["hits"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a GDC API answer (expected data.hits): {e}") from None


def download_tcga(project: str, dest: str | Path, max_cases: int | None = None,
                  base_url: str = GDC_API) -> tuple[Path, Path, list[Path]]:
    """Download one project's case table, file listing and expression files into ``dest``.

    Used by chapter 7's online section and the book's page "Your own cohort" (through
    ``python -m data_scripts.tcga``). Offline it stops at once with advice.

    Parameters
    ----------
    project : str
        A TCGA project id (``TCGA-SARC``).
    dest : str or Path
        The folder to download into (created if needed).
    max_cases : int, optional
        Download the expression files of the first N patients only (a quick look).
    base_url : str
        The GDC API (a mirror for testing).

    Returns
    -------
    tuple
        ``(cases_json, files_json, expression_paths)``: the two API answers and the
        expression files, each verified against the MD5 of the GDC listing.
    """
    from .registry import fetch_url

    if not isinstance(project, str) or not project.startswith("TCGA-"):
        raise ValueError(f"project must be a TCGA project id such as 'TCGA-SARC', got {project!r}")
    if max_cases is not None and (not isinstance(max_cases, int) or max_cases < 1):
        raise ValueError(f"max_cases must be a positive integer or None, got {max_cases!r}")
    dest = Path(dest)
    files_json = fetch_url(_query_url(base_url, "files", expression_filters(project), FILE_FIELDS, 5000),
                           None, f"{project}_files.json", dest, name=f"{project} file listing",
                           live_query=True)
    case_filter = {"op": "=", "content": {"field": "project.project_id", "value": project}}
    cases_json = fetch_url(_query_url(base_url, "cases", case_filter, CASE_FIELDS, 5000),
                           None, f"{project}_cases.json", dest, name=f"{project} cases", live_query=True)
    chosen = _one_file_per_patient(_hits(files_json))
    if max_cases is not None:
        chosen = chosen[:max_cases]
    paths = []
    for hit in chosen:
        paths.append(fetch_url(f"{base_url}/data/{hit['file_id']}", f"md5:{hit['md5sum']}",
                               hit["file_name"], dest / "expression", name=hit["file_name"]))
    return cases_json, files_json, paths


def _one_file_per_patient(hits: list[dict]) -> list[dict]:
    """Primary-tumour files only, the first file (by name) of each patient, sorted by patient."""
    per_patient: dict[str, dict] = {}
    for h in sorted(hits, key=lambda h: h["file_name"]):
        case = (h.get("cases") or [{}])[0]
        types = {s.get("sample_type") for s in case.get("samples", [])}
        if "Primary Tumor" not in types:
            continue
        per_patient.setdefault(case["submitter_id"], {**h, "patient_id": case["submitter_id"]})
    return [per_patient[k] for k in sorted(per_patient)]


def read_star_counts(path: str | Path, value: str = "unstranded",
                     protein_coding_only: bool = True) -> pd.Series:
    """One GDC ``augmented_star_gene_counts.tsv`` as a Series gene name -> value.

    Used by :func:`tcga_cohort` (chapter 7 and the book's page "Your own cohort").

    Parameters
    ----------
    path : str or Path
        The STAR-counts file.
    value : str
        A column of the file: ``unstranded`` (read counts), ``tpm_unstranded``,
        ``fpkm_unstranded``, ...
    protein_coding_only : bool
        Keep the ``protein_coding`` genes only.

    Returns
    -------
    pandas.Series
        Float values indexed by gene name; the ``N_*`` summary rows are dropped, and so is
        every later row of a gene name that occurs twice.
    """
    import pandas as pd

    try:
        df = pd.read_csv(path, sep="\t", comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a GDC STAR-counts file (tab-separated): {e}") from None
    need = {"gene_id", "gene_name", "gene_type", value}
    if not need <= set(df.columns):
        raise ValueError(f"{path}: not a GDC STAR-counts file; expected columns {sorted(need)}, "
                         f"got {list(df.columns)}")
    df = df[~df["gene_id"].astype(str).str.startswith("N_")]
    if protein_coding_only:
        df = df[df["gene_type"] == "protein_coding"]
    df = df.drop_duplicates("gene_name")
    return pd.Series(df[value].to_numpy(float), index=df["gene_name"].astype(str).to_numpy(), name=value)


def _clinical_from_cases(hits: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    import numpy as np
    import pandas as pd

    rows, surv = {}, {}
    for c in hits:
        pid = c["submitter_id"]
        demo = c.get("demographic") or {}
        diag = (c.get("diagnoses") or [{}])[0]
        age = demo.get("age_at_index")
        if age is None and diag.get("age_at_diagnosis") is not None:
            age = diag["age_at_diagnosis"] / 365.25
        rows[pid] = {"age": age, "sex": SEX_CODES.get(str(demo.get("gender")).lower()),
                     "primary_diagnosis": diag.get("primary_diagnosis"),
                     "site": diag.get("tissue_or_organ_of_origin")}
        dead = demo.get("vital_status") == "Dead"
        time = demo.get("days_to_death") if dead else diag.get("days_to_last_follow_up")
        surv[pid] = {"event": dead, "time": np.nan if time is None else float(time)}
    return pd.DataFrame.from_dict(rows, orient="index"), pd.DataFrame.from_dict(surv, orient="index")


def tcga_cohort(cases_json: str | Path, files_json: str | Path, expression_paths: Sequence[str | Path],
                project: str, diagnosis: str | None = None, classes: Sequence[str] | None = None,
                ordered: bool = False):
    """Downloaded GDC answers and expression files as an ``oncolab.data.Cohort``.

    Used on the book's page "Your own cohort"; :func:`convert_tcga` writes it.

    Parameters
    ----------
    cases_json, files_json : str or Path
        The GDC ``cases`` and ``files`` answers (:func:`download_tcga`).
    expression_paths : sequence of str or Path
        STAR-counts files named as in the file listing.
    project : str
        The TCGA project id (``TCGA-SARC``).
    diagnosis : str, optional
        A clinical column to use as the diagnosis (``primary_diagnosis``, say).
    classes : sequence of str, optional
        The diagnosis classes in order; patients with another value are left out.
    ordered : bool
        Whether those classes are ordered.

    Returns
    -------
    oncolab.data.Cohort
        Overall survival in days, genes (read counts of protein-coding genes found in every
        file), clinical; ``meta['excluded']`` counts the patients left out by reason.
    """
    import numpy as np
    import pandas as pd

    from .cohorts import exclude, make_cohort, split_diagnosis
    from .registry import entry

    if not isinstance(project, str) or not project.startswith("TCGA-"):
        raise ValueError(f"project must be a TCGA project id such as 'TCGA-SARC', got {project!r}")
    clinical, survival = _clinical_from_cases(_hits(cases_json))
    by_name = {h["file_name"]: h for h in _one_file_per_patient(_hits(files_json))}
    columns = {}
    for p in expression_paths:
        p = Path(p)
        if p.name not in by_name:
            raise ValueError(f"{p.name} is not a primary-tumour file in the GDC listing {files_json}")
        columns[by_name[p.name]["patient_id"]] = read_star_counts(p, "unstranded")
    if not columns:
        raise ValueError("no expression files given; expected the STAR-counts files of download_tcga")
    expression = pd.DataFrame(columns).T.sort_index()
    expression.index.name = "patient_id"
    ids = expression.index
    in_cases = ids.isin(survival.index)
    survival = survival.reindex(ids)
    clinical = clinical.reindex(ids)
    clinical.index.name = "patient_id"
    time = survival["time"].astype(float)
    clinical, label, classes = split_diagnosis(clinical, diagnosis, classes, ordered, where=str(cases_json))
    reasons = [("not in the case table", ~in_cases), ("no survival time", ~np.isfinite(time)),
               ("time <= 0", time <= 0)]
    if label is not None:
        reasons.append((f"no {diagnosis} among the classes", ~ids.isin(label.index)))
    keep, excluded = exclude(reasons)
    kept = ids[keep]
    if len(kept) == 0:
        raise ValueError(f"{cases_json}: no patient has both expression and a usable survival time")
    complete = expression.columns[expression.loc[kept].notna().all()]
    return make_cohort(
        source=f"tcga_{project.split('-', 1)[1].lower()}", where=str(cases_json),
        licence=entry("tcga").licence, citation=entry("tcga").citation,
        diagnosis=None if label is None else label.loc[kept], classes=classes, ordered=ordered,
        time=time.loc[kept], event=survival.loc[kept, "event"].astype(bool), time_unit="days",
        clinical=clinical.loc[kept], genes=expression.loc[kept, complete].astype(np.int64), gene_values="counts",
        extra_meta={"project": project, "outcome": "overall survival", "excluded": excluded,
                    "expression": "STAR - Counts, unstranded read counts of protein-coding genes",
                    "genes_left_out_missing_values": int(expression.shape[1] - len(complete))})


def convert_tcga(cases_json: str | Path, files_json: str | Path, expression_paths: Sequence[str | Path],
                 out_dir: str | Path, project: str, diagnosis: str | None = None,
                 classes: Sequence[str] | None = None, ordered: bool = False, overwrite: bool = False) -> Path:
    """Write downloaded GDC answers and expression files as a cohort folder.

    Used on the book's page "Your own cohort"; ``oncolab.data.load_cohort`` reads the folder.

    Parameters
    ----------
    cases_json, files_json, expression_paths, project, diagnosis, classes, ordered
        As for :func:`tcga_cohort`.
    out_dir : str or Path
        The folder to create (its parent must exist); it appears whole or not at all.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from oncolab.data import export_cohort

    cohort = tcga_cohort(cases_json, files_json, expression_paths, project, diagnosis, classes, ordered)
    return export_cohort(cohort, out_dir, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    from oncolab.env import data_dir

    from .cohorts import add_diagnosis_options, diagnosis_options
    from .registry import DataFetchError

    p = argparse.ArgumentParser(prog="python -m data_scripts.tcga", description=__doc__.split("\n")[0])
    p.add_argument("project", help="a TCGA project id, e.g. TCGA-SARC")
    p.add_argument("out_dir")
    p.add_argument("--max-cases", type=int, default=None)
    add_diagnosis_options(p)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        cases, files, paths = download_tcga(args.project, data_dir("raw", args.project), args.max_cases)
    except DataFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = convert_tcga(cases, files, paths, args.out_dir, args.project, **diagnosis_options(args),
                       overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
