"""Reading a patient table by column name, with errors that name the column and the patient.

Used by every table transformer of :mod:`oncolab.features` (chapter 6 meets them through
:class:`~oncolab.features.LabFeatures`): each reads its input through these functions, so
that a table whose columns come in another order gives the same features, and a bad value is
reported by column and patient id instead of by a position in an array. Where the columns
must be named, an array is refused (:func:`require_frame`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["align_columns", "numeric_table", "require_frame"]


def _listing(names: Sequence, limit: int = 12) -> str:
    names = [str(n) for n in names]
    if len(names) <= limit:
        return str(names)
    return f"{names[:limit]}... ({len(names)} in all)"


def require_frame(table, kind: str) -> pd.DataFrame:
    """``table`` itself, checked to be a DataFrame (an array has no names to match columns by).

    Used by the table transformers (chapter 6: :class:`~oncolab.features.LabFeatures`).

    Parameters
    ----------
    table : object
        What was passed as a patient table.
    kind : str
        What one column is ("lab", "gene", "clinical variable"), for the error message.

    Returns
    -------
    pandas.DataFrame
        ``table``.

    Raises
    ------
    TypeError
        When ``table`` is not a DataFrame, naming its type.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a DataFrame with one column per {kind} (columns are matched by name), "
                        f"got {type(table).__name__}")
    return table


def align_columns(table, expected: Sequence, kind: str) -> pd.DataFrame:
    """The columns ``expected`` of ``table``, in that order, found by name.

    Used by the table transformers (chapter 6: :class:`~oncolab.features.LabFeatures`).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per patient, one column per variable, in any order.
    expected : sequence
        The column names to take, in the order of the output.
    kind : str
        What one column is ("lab", "gene", "clinical variable"), for the error messages.

    Returns
    -------
    pandas.DataFrame
        ``table[expected]``.

    Raises
    ------
    TypeError
        When ``table`` is not a DataFrame (an array has no names to align by).
    ValueError
        When a column name appears twice, when ``table`` has a column not in ``expected``
        (named, with the expected names), or lacks one of ``expected`` (named likewise).
    """
    require_frame(table, kind)
    expected = list(expected)
    cols = list(table.columns)
    dup = sorted({str(c) for c in cols if cols.count(c) > 1})
    if dup:
        raise ValueError(f"{kind} column(s) {dup} appear more than once; expected each of {_listing(expected)} once")
    known = set(expected)
    unknown = [c for c in cols if c not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {_listing(unknown)}; expected the {kind} columns {_listing(expected)}")
    present = set(cols)
    missing = [c for c in expected if c not in present]
    if missing:
        raise ValueError(f"the table lacks the {kind} column(s) {_listing(missing)}; "
                         f"expected {_listing(expected)}")
    return table[expected]


def numeric_table(table: pd.DataFrame, kind: str) -> np.ndarray:
    """The table's values as floats; NaN (and None) stay NaN, meaning "not measured".

    Used by the table transformers (chapter 6: :class:`~oncolab.features.LabFeatures`).

    Numbers written as text (``"12.5"``, as a CSV file may give them) are read as numbers.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per patient (the index holds the patient ids), one column per variable.
    kind : str
        What one column is ("lab", "gene"), for the error message.

    Returns
    -------
    numpy.ndarray
        float64 array of the table's shape.

    Raises
    ------
    ValueError
        When a value is neither a number nor missing, naming the column, the patient id and
        the value.
    """
    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in table.dtypes]
    if all(numeric):  # the usual case, in one step (a table of 20,000 genes)
        return table.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.empty(table.shape, dtype=np.float64)
    for j, name in enumerate(table.columns):
        col = table.iloc[:, j]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            out[:, j] = col.astype("float64").to_numpy()
            continue
        num = pd.to_numeric(col, errors="coerce")
        bad = (num.isna() & col.notna()).to_numpy()
        if pd.api.types.is_bool_dtype(col) or bad.any():
            k = int(np.argmax(bad)) if bad.any() else 0
            value = col.iloc[k].item() if isinstance(col.iloc[k], np.generic) else col.iloc[k]
            raise ValueError(f"{kind} {name!r} of patient {table.index[k]!r} is {value!r}, not a number; "
                             f"expected a number (or NaN when not measured)")
        out[:, j] = num.astype("float64").to_numpy()
    return out
