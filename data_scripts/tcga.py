"""One TCGA project through the GDC API: clinical table + gene expression, checksummed.

Used in chapters 7 ("Gene expression") and 8 ("Survival analysis from first principles").

Three steps, all through ``pooch`` (:func:`data_scripts.registry.fetch_url`):

1. the GDC ``files`` endpoint lists the project's open ``STAR - Counts`` expression files with
   each file's MD5 (a live query, re-run each time);
2. the GDC ``cases`` endpoint gives each patient's demographics, diagnosis and follow-up
   (a live query);
3. every expression file is downloaded from ``/data/<file_id>`` and verified against its MD5.

:func:`convert_tcga` then builds the book's tables (``clinical.csv``, ``expression.csv``,
``survival.csv``, indexed by ``patient_id``): one primary-tumour sample per patient, TPM
values of protein-coding genes, overall survival in days (death, or last follow-up when
alive). :func:`load_tcga` reads them back as an ``oncolab.data.RealDataset``.

    python -m data_scripts.tcga TCGA-SARC OUT_DIR [--max-cases N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ._tables import load_tables, write_tables

if TYPE_CHECKING:  # imported where used, so that a failed download fails fast
    import pandas as pd

__all__ = ["GDC_API", "case_fields", "convert_tcga", "download_tcga", "expression_filters",
           "load_tcga", "read_star_counts"]

GDC_API = "https://api.gdc.cancer.gov"
CASE_FIELDS = ["submitter_id", "demographic.gender", "demographic.vital_status",
               "demographic.days_to_death", "demographic.age_at_index",
               "diagnoses.age_at_diagnosis", "diagnoses.days_to_last_follow_up",
               "diagnoses.primary_diagnosis", "diagnoses.tissue_or_organ_of_origin"]
FILE_FIELDS = ["file_id", "file_name", "md5sum", "file_size", "cases.submitter_id",
               "cases.samples.sample_type"]


def expression_filters(project: str) -> dict:
    """GDC filter for a project's open-access STAR-counts expression files."""
    return {"op": "and", "content": [
        {"op": "=", "content": {"field": "cases.project.project_id", "value": project}},
        {"op": "=", "content": {"field": "data_type", "value": "Gene Expression Quantification"}},
        {"op": "=", "content": {"field": "analysis.workflow_type", "value": "STAR - Counts"}},
        {"op": "=", "content": {"field": "access", "value": "open"}},
    ]}


def case_fields() -> list[str]:
    return list(CASE_FIELDS)


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

    Returns ``(cases_json, files_json, expression_paths)``. Each expression file is verified
    against the MD5 in the GDC listing.
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


def read_star_counts(path: str | Path, value: str = "tpm_unstranded",
                     protein_coding_only: bool = True) -> pd.Series:
    """One GDC ``augmented_star_gene_counts.tsv`` as a Series gene name -> ``value``."""
    import pandas as pd

    df = pd.read_csv(path, sep="\t", comment="#")
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
        rows[pid] = {"age": age, "sex": demo.get("gender"),
                     "primary_diagnosis": diag.get("primary_diagnosis"),
                     "site": diag.get("tissue_or_organ_of_origin")}
        dead = demo.get("vital_status") == "Dead"
        time = demo.get("days_to_death") if dead else diag.get("days_to_last_follow_up")
        surv[pid] = {"event": dead, "time": np.nan if time is None else float(time)}
    return pd.DataFrame.from_dict(rows, orient="index"), pd.DataFrame.from_dict(surv, orient="index")


def convert_tcga(cases_json: str | Path, files_json: str | Path, expression_paths: list[str | Path],
                 out_dir: str | Path, project: str, overwrite: bool = False) -> Path:
    """Build the book's tables from downloaded GDC answers and expression files.

    Patients without a usable survival time (missing or negative) or without expression are
    left out; ``meta.json`` records how many.
    """
    import numpy as np
    import pandas as pd

    clinical, survival = _clinical_from_cases(_hits(cases_json))
    by_name = {h["file_name"]: h for h in _one_file_per_patient(_hits(files_json))}
    columns = {}
    for p in expression_paths:
        p = Path(p)
        if p.name not in by_name:
            raise ValueError(f"{p.name} is not a primary-tumour file in the GDC listing {files_json}")
        columns[by_name[p.name]["patient_id"]] = read_star_counts(p)
    if not columns:
        raise ValueError("no expression files given")
    expression = pd.DataFrame(columns).T.sort_index()
    keep = [pid for pid in expression.index if pid in survival.index
            and np.isfinite(survival.at[pid, "time"]) and survival.at[pid, "time"] >= 0]
    dropped = len(expression) - len(keep)
    if not keep:
        raise ValueError("no patient has both expression and a usable survival time")
    meta = {"name": f"tcga_{project.split('-', 1)[1].lower()}",
            "description": f"{project} from the NIH Genomic Data Commons: clinical covariates, TPM of "
                           f"protein-coding genes (STAR - Counts), one primary tumour per patient; "
                           f"outcome overall survival in days.",
            "citation": "The Cancer Genome Atlas Research Network, Nat Genet 2013; GDC (Grossman et al., NEJM 2016)",
            "project": project, "dropped_patients": dropped}
    return write_tables(Path(out_dir), clinical.loc[keep], expression.loc[keep],
                        survival.loc[keep, ["event", "time"]].astype({"event": bool, "time": float}),
                        meta, overwrite)


def load_tcga(folder: str | Path):
    """A converted TCGA folder as an ``oncolab.data.RealDataset`` (time in days)."""
    return load_tables(folder)


def main(argv: list[str] | None = None) -> int:
    from oncolab.env import data_dir

    from .registry import DataFetchError

    p = argparse.ArgumentParser(prog="python -m data_scripts.tcga")
    p.add_argument("project", help="a TCGA project id, e.g. TCGA-SARC")
    p.add_argument("out_dir")
    p.add_argument("--max-cases", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        cases, files, paths = download_tcga(args.project, data_dir("raw", args.project), args.max_cases)
    except DataFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {convert_tcga(cases, files, paths, args.out_dir, args.project, args.overwrite)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
