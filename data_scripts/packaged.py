"""Real survival datasets that ship with scikit-survival and lifelines, as cohort folders.

Used on the book's page "Your own cohort" (the complete system run on ``breast_cancer``) and
in chapters 1, 7 and 8, which load the same data through ``oncolab.data``. Nothing is
downloaded: the data come with the installed packages, so these conversions run offline.

=====================  =================  ==========================================  =========
name                   package            patients, inputs                            outcome
=====================  =================  ==========================================  =========
breast_cancer          scikit-survival    198; 76 genes (log2 microarray) + clinical  distant metastasis (days)
gbsg2                  scikit-survival    686; 8 clinical                             recurrence-free survival (days)
whas500                scikit-survival    500; 14 clinical (heart attack, not cancer) death (days)
veterans_lung_cancer   scikit-survival    137; 6 clinical                             death (days)
aids                   scikit-survival    1151; 11 clinical (HIV trial, not cancer)   AIDS-defining event (days)
flchain                scikit-survival    7871; 8 clinical (population study)         death (days)
lung                   lifelines          228; 8 clinical (NCCTG advanced lung cancer) death (days)
larynx                 lifelines          90; age + stage (laryngeal cancer)          death (years)
leukemia               lifelines          42; 3 clinical (acute leukaemia trial)      relapse (weeks)
=====================  =================  ==========================================  =========

Every cohort has survival labels and **no diagnosis** by default: these are prognostic
cohorts, and each candidate class label (a tumour grade, a histological cell type, the
oestrogen receptor) is a covariate recorded at diagnosis that a survival model uses as an
input. A reader who wants one names it: ``--diagnosis tgrade --classes I,II,III --ordered``
moves the column out of the clinical table into ``labels.diagnosis`` (see
:func:`data_scripts.cohorts.split_diagnosis`).

Columns keep the names and codes their package ships them with (categories as text), with two
changes said here: ``flchain`` loses ``chapter`` (the cause of death, known only for those who
died, so it gives the outcome away) and ``larynx``'s one-hot ``Stage_II``-``Stage_IV`` become
one ``stage`` column (I-IV). Patients are numbered ``"0"``, ``"1"``, ... in the package's
order, as :mod:`oncolab.data.real` numbers them; a patient with a follow-up time of 0 is left
out (the cohort format needs time > 0) and ``meta['excluded']`` says how many.
``lifelines`` also ships GBSG2 (the same patients as scikit-survival's ``gbsg2``), which is
not repeated here.

    python -m data_scripts.packaged list
    python -m data_scripts.packaged breast_cancer OUT [--diagnosis COLUMN [--classes A,B,... [--ordered]]]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from oncolab.data import Cohort

__all__ = ["PACKAGED", "PackagedDataset", "convert_packaged", "packaged_cohort"]

_SKSURV = "distributed with scikit-survival (GPL-3.0-or-later)"
_LIFELINES = "distributed with lifelines (MIT licence)"


@dataclass(frozen=True)
class PackagedDataset:
    """One dataset shipped with an installed package, and how it becomes a cohort.

    ``load`` returns ``(table, event, time)``: every input column (indexed by
    ``patient_id``) and the outcome; ``gene_columns`` picks the gene columns of ``table``
    (the rest is clinical).
    """

    name: str
    package: str
    load: Callable[[], tuple[pd.DataFrame, pd.Series, pd.Series]]
    time_unit: str
    outcome: str
    licence: str
    citation: str
    gene_columns: Callable[[pd.DataFrame], list[str]] | None = None
    gene_values: str | None = None


def _frame(X: pd.DataFrame) -> pd.DataFrame:
    """The package's table with categories as text and ids ``"0"``, ``"1"``, ..."""
    import pandas as pd

    X = X.copy()
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = X[c].astype(str)
    X.index = pd.Index([str(i) for i in range(len(X))], name="patient_id")
    return X


def _outcome(table: pd.DataFrame, event, time) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    import numpy as np
    import pandas as pd

    return (table, pd.Series(np.asarray(event, dtype=bool), index=table.index),
            pd.Series(np.asarray(time, dtype=float), index=table.index))


def _from_real(loader_name: str) -> Callable[[], tuple]:
    """A loader through :mod:`oncolab.data.real`, which the chapters use for the same data."""

    def load():
        import oncolab.data as data

        ds = getattr(data, loader_name)()
        return _outcome(ds.X, ds.y["event"], ds.y["time"])

    return load


def _from_sksurv(loader_name: str, event_field: str, time_field: str, drop: Sequence[str] = ()) -> Callable:
    def load():
        import sksurv.datasets

        X, y = getattr(sksurv.datasets, loader_name)()
        return _outcome(_frame(X.drop(columns=list(drop))), y[event_field], y[time_field])

    return load


def _from_lifelines(loader_name: str, event_col: str, time_col: str,
                    reshape: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Callable:
    def load():
        import lifelines.datasets

        df = getattr(lifelines.datasets, loader_name)().reset_index(drop=True)
        X = _frame(df.drop(columns=[event_col, time_col]))
        if reshape is not None:
            X = reshape(X)
        return _outcome(X, df[event_col].to_numpy() == 1, df[time_col].to_numpy())

    return load


def _larynx_stage(X: pd.DataFrame) -> pd.DataFrame:
    """``Stage_II``-``Stage_IV`` (one-hot, stage I when all are 0) -> one ``stage`` column."""
    import numpy as np

    onehot = X[["Stage_II", "Stage_III", "Stage_IV"]].to_numpy()
    if (onehot.sum(axis=1) > 1).any():
        raise ValueError("lifelines larynx: a patient has more than one Stage_* column set; expected at most one")
    stage = np.array(["I", "II", "III", "IV"])[onehot @ np.array([1, 2, 3])]
    return X.drop(columns=["Stage_II", "Stage_III", "Stage_IV"]).assign(stage=stage)


def _probe_columns(X: pd.DataFrame) -> list[str]:
    """breast_cancer's genes: every column but its four clinical ones (age, er, grade, size)."""
    clinical = ["age", "er", "grade", "size"]
    missing = [c for c in clinical if c not in X.columns]
    if missing:
        raise ValueError(f"scikit-survival breast_cancer: clinical column(s) {missing} missing; "
                         f"expected {clinical} and 76 gene columns")
    return [c for c in X.columns if c not in clinical]


PACKAGED: dict[str, PackagedDataset] = {d.name: d for d in [
    PackagedDataset(
        "breast_cancer", "scikit-survival", _from_real("load_breast_cancer_genes"), "days",
        "distant metastasis", f"{_SKSURV}; expression from NCBI GEO series GSE7390",
        "Desmedt et al., Clin Cancer Res 13:3207-3214 (2007), doi:10.1158/1078-0432.CCR-06-2765",
        gene_columns=_probe_columns, gene_values="log_expression"),
    PackagedDataset(
        "gbsg2", "scikit-survival", _from_real("load_gbsg2"), "days", "recurrence-free survival",
        f"{_SKSURV}; from the R package TH.data",
        "Schumacher et al., J Clin Oncol 12:2086-2093 (1994), doi:10.1200/JCO.1994.12.10.2086"),
    PackagedDataset(
        "whas500", "scikit-survival", _from_real("load_whas500"), "days", "death",
        f"{_SKSURV}; from Hosmer, Lemeshow and May's teaching data",
        "Hosmer, Lemeshow and May, Applied Survival Analysis, 2nd ed., Wiley (2008)"),
    PackagedDataset(
        "veterans_lung_cancer", "scikit-survival",
        _from_sksurv("load_veterans_lung_cancer", "Status", "Survival_in_days"), "days", "death",
        f"{_SKSURV}; the Veterans' Administration lung cancer trial",
        "Kalbfleisch and Prentice, The Statistical Analysis of Failure Time Data, 2nd ed., Wiley (2002)"),
    PackagedDataset(
        "aids", "scikit-survival", _from_sksurv("load_aids", "censor", "time"), "days",
        "AIDS-defining event", f"{_SKSURV}; the ACTG 320 trial from Hosmer, Lemeshow and May",
        "Hammer et al., N Engl J Med 337:725-733 (1997); Hosmer, Lemeshow and May, Applied Survival "
        "Analysis, 2nd ed., Wiley (2008)"),
    PackagedDataset(
        "flchain", "scikit-survival", _from_sksurv("load_flchain", "death", "futime", drop=["chapter"]),
        "days", "death", f"{_SKSURV}; from the R package survival",
        "Dispenzieri et al., Mayo Clin Proc 87:517-523 (2012), doi:10.1016/j.mayocp.2012.03.009"),
    PackagedDataset(
        "lung", "lifelines", _from_lifelines("load_lung", "status", "time"), "days", "death",
        f"{_LIFELINES}; the NCCTG lung cancer data of the R package survival",
        "Loprinzi et al., J Clin Oncol 12:601-607 (1994), doi:10.1200/JCO.1994.12.3.601"),
    PackagedDataset(
        "larynx", "lifelines", _from_lifelines("load_larynx", "death", "time", reshape=_larynx_stage), "years",
        "death", f"{_LIFELINES}; from Klein and Moeschberger",
        "Kardaun, Statistica Neerlandica 37:103-126 (1983); Klein and Moeschberger, Survival Analysis, "
        "2nd ed., Springer (2003)"),
    PackagedDataset(
        "leukemia", "lifelines", _from_lifelines("load_leukemia", "status", "t"), "weeks", "relapse",
        f"{_LIFELINES}; the Anderson remission data of Kleinbaum and Klein",
        "Freireich et al., Blood 21:699-716 (1963); Kleinbaum and Klein, Survival Analysis: A Self-Learning "
        "Text, 3rd ed., Springer (2012)"),
]}


def _dataset(name: str) -> PackagedDataset:
    if name not in PACKAGED:
        raise ValueError(f"unknown packaged dataset {name!r}; expected one of {sorted(PACKAGED)}")
    return PACKAGED[name]


def packaged_cohort(name: str, diagnosis: str | None = None, classes: Sequence[str] | None = None,
                    ordered: bool = False) -> Cohort:
    """One packaged dataset as an ``oncolab.data.Cohort`` (survival labels; genes where it has them).

    Used on the book's page "Your own cohort"; :func:`convert_packaged` writes it to a folder.

    Parameters
    ----------
    name : str
        One of :data:`PACKAGED` (``breast_cancer``, ``gbsg2``, ``whas500``, ...).
    diagnosis : str, optional
        A clinical column to use as the diagnosis (it leaves the clinical table).
    classes : sequence of str, optional
        The diagnosis classes in order; patients with another value are left out.
    ordered : bool
        Whether those classes are ordered (a grade).

    Returns
    -------
    oncolab.data.Cohort
        ``labels`` (``time``, ``event``; ``diagnosis`` when asked for), ``clinical``,
        ``genes`` for ``breast_cancer``; ``meta`` with source, licence, citation, time unit
        the package and its version (the data are those it ships), and ``excluded``
        (patients left out, by reason).
    """
    from importlib.metadata import version

    from .cohorts import exclude, make_cohort, split_diagnosis

    ds = _dataset(name)
    where = f"{ds.package} dataset {name!r}"
    table, event, time = ds.load()
    genes_cols = ds.gene_columns(table) if ds.gene_columns else []
    clinical = table.drop(columns=genes_cols)
    clinical, label, classes = split_diagnosis(clinical, diagnosis, classes, ordered, where=where)
    reasons = [("time <= 0", ~(time > 0))]
    if label is not None:
        reasons.append((f"no {diagnosis} among the classes", ~table.index.isin(label.index)))
    keep, excluded = exclude(reasons)
    ids = table.index[keep]
    return make_cohort(
        source=name, where=where, licence=ds.licence, citation=ds.citation,
        diagnosis=None if label is None else label.loc[ids], classes=classes, ordered=ordered,
        time=time.loc[ids], event=event.loc[ids], time_unit=ds.time_unit,
        clinical=clinical.loc[ids] if clinical.shape[1] else None,
        genes=table.loc[ids, genes_cols] if genes_cols else None, gene_values=ds.gene_values,
        extra_meta={"outcome": ds.outcome, "package": ds.package, "package_version": version(ds.package),
                    "excluded": excluded})


def convert_packaged(name: str, out_dir: str | Path, diagnosis: str | None = None,
                     classes: Sequence[str] | None = None, ordered: bool = False, overwrite: bool = False) -> Path:
    """Write one packaged dataset as a cohort folder (``oncolab.data.load_cohort`` reads it back).

    Used on the book's page "Your own cohort".

    Parameters
    ----------
    name : str
        One of :data:`PACKAGED`.
    out_dir : str or Path
        The folder to create (its parent must exist); it appears whole or not at all.
    diagnosis, classes, ordered
        As for :func:`packaged_cohort`.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from oncolab.data import export_cohort

    return export_cohort(packaged_cohort(name, diagnosis, classes, ordered), out_dir, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    from .cohorts import add_diagnosis_options, diagnosis_options

    p = argparse.ArgumentParser(prog="python -m data_scripts.packaged", description=__doc__.split("\n")[0])
    p.add_argument("name", help=f"'list', or one of {', '.join(PACKAGED)}")
    p.add_argument("out_dir", nargs="?")
    add_diagnosis_options(p)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.name == "list":
        for d in PACKAGED.values():
            print(f"{d.name}  ({d.package}; {d.outcome}, {d.time_unit})\n  licence: {d.licence}\n"
                  f"  cite: {d.citation}\n")
        return 0
    if args.out_dir is None:
        p.error("OUT_DIR is required")
    try:
        out = convert_packaged(args.name, args.out_dir, **diagnosis_options(args), overwrite=args.overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
