"""What every converter shares: checked tables in, an ``oncolab.data.Cohort`` out.

The converters in this folder turn a public dataset into the cohort folder that the book's
page "Your own cohort" documents and that ``oncolab.data.load_cohort`` reads:

* ``labels`` (indexed by ``patient_id``): ``diagnosis`` (a class name) and/or ``time`` (> 0)
  with ``event`` (bool);
* optional ``clinical`` (free columns), ``genes`` (one column per gene) and ``boxes``
  (``x0, y0, x1, y1`` in pixels; NaN where a patient has no lesion box);
* an image source with ``radiograph(pid)`` for datasets with radiographs;
* ``meta``: ``source``, ``classes`` (with a diagnosis), ``gene_values`` (with genes),
  ``modalities``, ``licence``, ``citation``, ``time_unit`` (with survival), plus what the
  converter adds (patients left out and why).

:func:`make_cohort` checks all of it and says, naming the source file, what was expected;
:func:`split_diagnosis` turns a clinical column into the diagnosis when a reader asks for
one. The folder itself is written by ``oncolab.data.export_cohort`` (a temporary folder
renamed into place, so a failed conversion leaves nothing behind).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used, so that the command lines start fast
    import argparse

    import pandas as pd

    from oncolab.data import Cohort

__all__ = ["BOX_COLUMNS", "add_diagnosis_options", "diagnosis_options", "exclude", "make_cohort", "split_diagnosis"]

BOX_COLUMNS = ["x0", "y0", "x1", "y1"]


def _show(value: Any) -> str:
    """A value as Python writes it (a NumPy scalar as the plain number)."""
    return repr(value.item() if hasattr(value, "item") else value)


def _ids(df: pd.DataFrame, name: str, where: str) -> None:
    if df.index.name != "patient_id":
        raise ValueError(f"{where}: the {name} table must be indexed by 'patient_id', got {df.index.name!r}")
    if not all(isinstance(i, str) and i for i in df.index):
        bad = next(i for i in df.index if not (isinstance(i, str) and i))
        raise ValueError(f"{where}: patient ids must be non-empty strings; the {name} table has {bad!r}")
    if not df.index.is_unique:
        dup = df.index[df.index.duplicated()][0]
        raise ValueError(f"{where}: patient {dup!r} appears twice in the {name} table; expected one row per patient")


def add_diagnosis_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--diagnosis COLUMN``, ``--classes A,B,...`` and ``--ordered`` to a converter's command line.

    Used by the converters' command lines (the book's page "Your own cohort").

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command line to extend; :func:`diagnosis_options` reads the parsed values.
    """
    parser.add_argument("--diagnosis", default=None, metavar="COLUMN",
                        help="a clinical column to use as the diagnosis (it leaves the clinical table)")
    parser.add_argument("--classes", default=None, metavar="A,B,...",
                        help="the diagnosis classes, comma-separated, in order; other values are left out")
    parser.add_argument("--ordered", action="store_true", help="the classes are ordered (a grade, a stage)")


def diagnosis_options(args: argparse.Namespace) -> dict[str, Any]:
    """The values of :func:`add_diagnosis_options` as keyword arguments of a converter.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    dict
        ``diagnosis``, ``classes`` (a list, or None) and ``ordered``.
    """
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    return {"diagnosis": args.diagnosis, "classes": classes, "ordered": args.ordered}


def exclude(reasons: Sequence[tuple[str, Any]]) -> tuple[Any, dict[str, int]]:
    """Apply reasons to leave patients out, in order, counting each patient under its first reason.

    Used by the converters to fill ``meta['excluded']`` (the book's page "Your own cohort").

    Parameters
    ----------
    reasons : sequence of (str, boolean array-like)
        A reason and a mask, True for each patient it leaves out; all masks over the same patients.

    Returns
    -------
    tuple
        ``(keep, counts)``: a boolean NumPy mask of the patients kept and {reason: number left
        out for it} for the reasons that left someone out.
    """
    import numpy as np

    if not reasons:
        raise ValueError("exclude needs at least one (reason, mask) pair")
    keep = np.ones(len(reasons[0][1]), dtype=bool)
    counts = {}
    for reason, mask in reasons:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != keep.shape:
            raise ValueError(f"the mask for {reason!r} has shape {mask.shape}; expected {keep.shape}")
        n = int((keep & mask).sum())
        if n:
            counts[reason] = n
        keep &= ~mask
    return keep, counts


def split_diagnosis(clinical: pd.DataFrame, column: str | None, classes: Sequence[str] | None = None,
                    ordered: bool = False, where: str = "clinical table"
                    ) -> tuple[pd.DataFrame, pd.Series | None, list[str] | None]:
    """Move one clinical column out of the model inputs and into the labels as the diagnosis.

    Used by the converters when a reader names a natural class label of a dataset (a
    tumour grade, a histological or molecular subtype); see the book's page "Your own
    cohort".

    Parameters
    ----------
    clinical : pandas.DataFrame
        The clinical table, indexed by ``patient_id``.
    column : str or None
        The column that becomes ``labels.diagnosis`` (it leaves the clinical table: a label
        is never a model input). None: no diagnosis (then ``classes`` and ``ordered`` must
        not be given).
    classes : sequence of str, optional
        The class names in their order (an ordinal grade low to high, say). Patients whose
        value is not one of them are left out. Default: every value present, sorted.
    ordered : bool
        Whether the classes are ordered; only checked here (it needs ``classes``).
    where : str
        The source, named in error messages.

    Returns
    -------
    tuple
        ``(clinical without the column, diagnosis, classes)``: the clinical table keeps
        every patient; the diagnosis (text) holds only the patients whose value is one of the
        classes, and the caller keeps those. ``(clinical, None, None)`` without a column.
    """
    if column is None:
        if classes is not None or ordered:
            raise ValueError("classes or ordered are given without a diagnosis column; name the column too")
        return clinical, None, None
    if ordered and classes is None:
        raise ValueError(f"ordered classes need their order: give the classes of {column!r} as well")
    if column not in clinical.columns:
        raise ValueError(f"{where}: no column {column!r} to use as the diagnosis; "
                         f"expected one of {list(clinical.columns)}")
    values = clinical[column]
    present = values.dropna().astype(str)
    if classes is None:
        classes = sorted(set(present))
    else:
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes}")
        unknown = [c for c in classes if c not in set(present)]
        if unknown:
            raise ValueError(f"{where}: class(es) {unknown} never occur in column {column!r}; "
                             f"its values are {sorted(set(present))}")
    diagnosis = present[present.isin(classes)]
    if diagnosis.nunique() < 2:
        raise ValueError(f"{where}: column {column!r} gives {diagnosis.nunique()} class(es) "
                         f"{sorted(set(diagnosis))}; a diagnosis needs at least two")
    return clinical.drop(columns=[column]), diagnosis.rename("diagnosis"), list(classes)


def make_cohort(*, source: str, where: str, licence: str, citation: str,
                diagnosis: pd.Series | None = None, classes: Sequence[str] | None = None, ordered: bool = False,
                time: pd.Series | None = None, event: pd.Series | None = None, time_unit: str | None = None,
                clinical: pd.DataFrame | None = None, genes: pd.DataFrame | None = None,
                gene_values: str | None = None, boxes: pd.DataFrame | None = None, images: Any = None,
                extra_meta: dict | None = None) -> Cohort:
    """Check a converted dataset's tables and assemble them as an ``oncolab.data.Cohort``.

    Used by every converter in ``data_scripts`` (the book's page "Your own cohort" shows
    the folder it becomes). The patients are those of the outcome (``diagnosis`` and/or
    ``time``/``event``); every other table must hold exactly them and is put in their order.

    Parameters
    ----------
    source : str
        The dataset's name (``meta['source']``).
    where : str
        The file or folder the tables came from, named in every error message.
    licence, citation : str
        How the dataset may be used and how to cite it.
    diagnosis : pandas.Series of str, optional
        One class name per patient, each one of ``classes``.
    classes : sequence of str, optional
        The class names in their order (required with ``diagnosis``; two or more).
    ordered : bool
        Whether the classes are ordered (grades, or normal < benign < malignant): the complete
        system then fits an ordinal head.
    time, event : pandas.Series, optional
        Survival: time (> 0, finite) and event (bool); both or neither.
    time_unit : str, optional
        The unit of ``time`` (``"days"``, ``"months"``, ...); required with survival.
    clinical : pandas.DataFrame, optional
        Free columns (numbers or categories).
    genes : pandas.DataFrame, optional
        Numeric, one column per gene; a patient has a value for every gene, or none.
    gene_values : {"counts", "log_expression"}, optional
        What the gene values are (required with ``genes``): whole read counts >= 0, or
        values >= 0 already on a log scale (a microarray's log2 intensities).
    boxes : pandas.DataFrame, optional
        ``x0, y0, x1, y1`` in pixels of the radiograph; a row of NaN for a patient without
        a lesion box; otherwise ``x0 < x1`` and ``y0 < y1``.
    images : object, optional
        The image source (a ``radiograph(pid)`` method); makes the cohort a radiograph cohort.
    extra_meta : dict, optional
        More entries for ``meta`` (patients left out, the source file names).

    Returns
    -------
    oncolab.data.Cohort
        Tables indexed by ``patient_id`` in the outcome's order, ``meta`` as listed above.
    """
    import numpy as np
    import pandas as pd

    from oncolab.data import Cohort
    from oncolab.data.io import GENE_VALUES

    if (time is None) != (event is None):
        raise ValueError(f"{where}: survival needs both time and event, got only "
                         f"{'time' if time is not None else 'event'}")
    if diagnosis is None and time is None:
        raise ValueError(f"{where}: no outcome; expected a diagnosis, a survival time and event, or both")
    parts = {}
    if diagnosis is not None:
        diagnosis = diagnosis.rename("diagnosis")
        _ids(diagnosis.to_frame(), "labels", where)
        if classes is None or len(set(classes)) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"{where}: a diagnosis needs two or more distinct classes, got {classes!r}")
        classes = [str(c) for c in classes]
        if diagnosis.isna().any():
            raise ValueError(f"{where}: patient {diagnosis.index[diagnosis.isna()][0]!r} has no diagnosis; "
                             "expected a class name for every patient")
        bad = sorted(set(diagnosis.astype(str)) - set(classes))
        if bad:
            raise ValueError(f"{where}: diagnosis value(s) {bad} are not among the classes {classes}")
        parts["diagnosis"] = diagnosis.astype(str)
    if time is not None:
        for name, s in (("time", time), ("event", event)):
            _ids(s.to_frame(name), "labels", where)
        t = pd.to_numeric(time, errors="coerce").astype(float)
        bad = t[~(np.isfinite(t) & (t > 0))]
        if len(bad):
            raise ValueError(f"{where}: survival time must be a finite number > 0; patient {bad.index[0]!r} "
                             f"has {_show(time.loc[bad.index[0]])}")
        bad_event = event.isna() | ~event.isin([0, 1])
        if bad_event.any():
            bad_id = event.index[bad_event][0]
            raise ValueError(f"{where}: event must be True/False (or 1/0); patient {bad_id!r} has "
                             f"{_show(event.loc[bad_id])}")
        if not time_unit:
            raise ValueError(f"{where}: time_unit is required with survival (days, months, ...)")
        parts["time"] = t
        parts["event"] = event.astype(bool)
    index = next(iter(parts.values())).index
    for name, s in parts.items():
        if not s.index.sort_values().equals(index.sort_values()):
            raise ValueError(f"{where}: {name} does not list the same patients as {next(iter(parts))}")
    labels = pd.DataFrame({k: v.reindex(index) for k, v in parts.items()})
    labels.index = pd.Index(index, name="patient_id")
    if len(labels) == 0:
        raise ValueError(f"{where}: no patient left to convert")
    if "diagnosis" in labels:
        missing = [c for c in classes if c not in set(labels["diagnosis"])]
        if missing:
            raise ValueError(f"{where}: class(es) {missing} have no patient; expected every class to occur")

    tables = {"labels": labels}
    for name, df in (("clinical", clinical), ("genes", genes), ("boxes", boxes)):
        if df is None:
            continue
        _ids(df, name, where)
        if set(df.index) != set(labels.index):
            extra = sorted(set(df.index) - set(labels.index))[:3]
            lacking = sorted(set(labels.index) - set(df.index))[:3]
            raise ValueError(f"{where}: the {name} table does not hold the labelled patients "
                             f"(extra {extra}, missing {lacking}); expected the same patients")
        tables[name] = df.loc[labels.index]

    modalities = []
    if images is not None:
        if not callable(getattr(images, "radiograph", None)):
            raise TypeError(f"{where}: the image source must have a radiograph(pid) method, "
                            f"got {type(images).__name__}")
        modalities.append("radiograph")
    if genes is not None:
        g = tables["genes"]
        if g.shape[1] == 0:
            raise ValueError(f"{where}: the genes table has no gene column")
        if not g.columns.is_unique:
            raise ValueError(f"{where}: gene {g.columns[g.columns.duplicated()][0]!r} appears twice; "
                             "expected one column per gene")
        non_numeric = [c for c in g.columns if not pd.api.types.is_numeric_dtype(g[c])]
        if non_numeric:
            raise ValueError(f"{where}: gene column(s) {non_numeric[:3]} are not numeric")
        if gene_values not in GENE_VALUES:
            raise ValueError(f"{where}: gene_values must be one of {list(GENE_VALUES)}, got {gene_values!r}")
        values = g.to_numpy(float)
        partial = np.isnan(values).any(axis=1) & ~np.isnan(values).all(axis=1)
        if partial.any():
            pid = g.index[np.flatnonzero(partial)[0]]
            raise ValueError(f"{where}: patient {pid!r} lacks some genes; expected a value for every gene, "
                             "or none (leave such genes out)")
        values = values[np.isfinite(values)]
        if gene_values == "counts" and not (np.all(values >= 0) and np.all(values % 1 == 0)):
            raise ValueError(f"{where}: gene_values='counts' needs whole numbers >= 0")
        if gene_values == "log_expression" and not np.all(values >= 0):
            raise ValueError(f"{where}: gene_values='log_expression' needs values >= 0 (a log scale such as "
                             f"log2 intensities); the smallest is {values.min()}")
        modalities.append("genes")
    if clinical is not None:
        modalities.append("clinical")
    if not modalities:
        raise ValueError(f"{where}: no model input; expected clinical, genes or radiographs")
    if boxes is not None:
        b = tables["boxes"]
        if list(b.columns) != BOX_COLUMNS:
            raise ValueError(f"{where}: boxes must have the columns {BOX_COLUMNS}, got {list(b.columns)}")
        if images is None:
            raise ValueError(f"{where}: boxes are drawn on radiographs, but no image source was given")
        v = b.to_numpy(float)
        partial = np.isnan(v).any(axis=1) & ~np.isnan(v).all(axis=1)
        bad = ~np.isnan(v).any(axis=1) & ~((v[:, 0] < v[:, 2]) & (v[:, 1] < v[:, 3]))
        if partial.any() or bad.any():
            pid = b.index[np.flatnonzero(partial | bad)[0]]
            raise ValueError(f"{where}: patient {pid!r} has the box {b.loc[pid].tolist()}; expected "
                             "x0 < x1 and y0 < y1 in pixels, or all four NaN for no box")

    meta = {"source": source, "modalities": modalities, "licence": licence, "citation": citation}
    if "diagnosis" in labels:
        meta["classes"] = list(classes)
        meta["ordered"] = bool(ordered)
    if genes is not None:
        meta["gene_values"] = gene_values
    if time is not None:
        meta["time_unit"] = time_unit
    meta.update(extra_meta or {})
    return Cohort(tables, images=images, meta=meta)
