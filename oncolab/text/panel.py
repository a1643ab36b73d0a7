"""A patient's blood panel, checked and flagged: the facts a narrative is written from.

Taught in chapter 6 ("From blood tests to sentences"). The biomarkers themselves (names,
units, reference ranges by sex and age, critical limits, unit conversions) and the flag rule
live in :mod:`oncolab.data.labs`; this module only applies them to one patient:

* :func:`to_canonical` turns a value given in some unit into the panel's unit, or raises;
* :func:`check_panel` validates a whole panel (known names, units, no negative values);
* :func:`flag_panel` returns one :class:`LabResult` per biomarker, with its flag.

A value may be given as a number (in the panel's unit), as ``(number, unit)``, or as NaN /
``None`` for "not measured". A missing value is reported as missing, never invented.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from oncolab.data.labs import (
    BIOMARKERS,
    biomarker,
    flag_value,
    is_missing,
    reference_range,
    to_canonical,
)

__all__ = [
    "LabResult",
    "check_panel",
    "flag_panel",
    "flag_table",
    "format_value",
    "is_missing",
    "to_canonical",
]

def check_panel(panel: Mapping[str, Any] | pd.Series) -> dict[str, float]:
    """Validate a panel and return ``{name: value in the panel's unit}`` for every biomarker.

    ``panel`` maps biomarker names to numbers, ``(number, unit)`` pairs, or NaN/None.
    Biomarkers it does not mention are "not measured" (NaN). Unknown names raise a KeyError
    listing the known ones. A panel where nothing was measured is allowed: the narrator
    says so (see :func:`oncolab.text.narrator.narrate`). Taught in chapter 6.

    Parameters
    ----------
    panel : mapping or pandas.Series
        ``{biomarker name: value}``; a value is a number in the canonical unit, a
        ``(number, unit)`` pair, or NaN/None.

    Returns
    -------
    dict of str to float
        One entry per biomarker of :data:`oncolab.data.labs.BIOMARKERS`, in that order, in the
        canonical unit (NaN when not measured).

    Raises
    ------
    TypeError
        When ``panel`` is not a mapping, or a value is neither a number nor NaN/None.
    KeyError
        When a name is not a known biomarker.
    ValueError
        When a pair is malformed, a unit is not understood, or a value is negative, not finite
        or implausible in its unit (:func:`oncolab.data.labs.to_canonical`).
    """
    if isinstance(panel, pd.Series):
        panel = panel.to_dict()
    if not isinstance(panel, Mapping):
        raise TypeError(f"a panel is a mapping of biomarker name -> value, got {type(panel).__name__}")
    for name in panel:
        biomarker(name)  # raises on unknown names
    out = {}
    for b in BIOMARKERS:
        v = panel.get(b.name, None)
        if isinstance(v, tuple):
            if len(v) != 2 or not isinstance(v[1], str):
                raise ValueError(f"{b.name}: expected (value, unit), got {v!r}")
            out[b.name] = to_canonical(b.name, v[0], v[1])
        else:
            out[b.name] = to_canonical(b.name, v)
    return out


def format_value(name: str, value: float) -> str:
    """A value as the narrative writes it: the biomarker's usual decimals, more if needed.

    Extra decimals appear only when rounding would change the number (a converted value,
    say), so that a value just above a limit never reads as the limit itself: then six
    significant digits, or the usual decimals plus four where that would need an exponent.
    Taught in chapter 6.

    Parameters
    ----------
    name : str
        The biomarker's column name.
    value : float
        The value in its canonical unit.

    Returns
    -------
    str
        The number as text, without the unit.

    Raises
    ------
    KeyError
        When ``name`` is not a known biomarker.
    """
    b = biomarker(name)
    s = f"{value:.{b.decimals}f}"
    if float(s) != value:
        s = f"{value:.6g}"
        if "e" in s:
            s = f"{value:.{b.decimals + 4}f}"
    return s


@dataclass(frozen=True)
class LabResult:
    """One biomarker of one patient, flagged; made by :func:`flag_panel` (chapter 6).

    Attributes
    ----------
    name : str
        The biomarker's column name.
    label : str
        How a clinician writes it.
    value : float
        In ``unit``; NaN when not measured.
    unit : str
        The canonical unit.
    low, high : float
        The reference range for this patient's sex and age.
    flag : str
        One of :data:`oncolab.data.labs.FLAGS`.
    """

    name: str
    label: str
    value: float  # NaN when not measured
    unit: str
    low: float
    high: float
    flag: str  # low / normal / high / critical / not measured

    @property
    def direction(self) -> str:
        """``"high"``, ``"low"`` or ``""``: which side of the range a flagged value lies on."""
        if self.flag in ("low", "high"):
            return self.flag
        if self.flag == "critical":
            return "high" if self.value > self.high else "low"
        return ""

    @property
    def abnormal(self) -> bool:
        """True when the flag is ``low``, ``high`` or ``critical``."""
        return self.flag in ("low", "high", "critical")

    @property
    def value_text(self) -> str:
        """The value as :func:`format_value` writes it ("nan" when not measured)."""
        return format_value(self.name, self.value)

    @property
    def range_text(self) -> str:
        """The reference range with its unit, e.g. ``"40-130 U/L"``."""
        return f"{format_value(self.name, self.low)}-{format_value(self.name, self.high)} {self.unit}"


def _clinical(sex: Any, age: Any) -> tuple[str | None, float | None]:
    sex = None if is_missing(sex) else sex
    age = None if is_missing(age) else float(age)
    if age is not None and not 0 <= age <= 130:
        raise ValueError(f"age must lie in [0, 130] years, got {age}")
    return sex, age


def flag_panel(panel: Mapping[str, Any] | pd.Series, sex: str | None = None,
               age: float | None = None) -> list[LabResult]:
    """Check a panel (see :func:`check_panel`) and flag every biomarker, in panel order.

    The flag rule is :func:`oncolab.data.labs.flag_value`'s; the reference range is the one
    for this patient's sex and age (:func:`oncolab.data.labs.reference_range`). Taught in
    chapter 6.

    Parameters
    ----------
    panel : mapping or pandas.Series
        As for :func:`check_panel`.
    sex : {"F", "M"} or None, optional
        The patient's sex; None (or NaN) uses the adult default ranges.
    age : float or None, optional
        The patient's age in years, in [0, 130]; None (or NaN) when unknown.

    Returns
    -------
    list of LabResult
        One per biomarker of :data:`oncolab.data.labs.BIOMARKERS`, in that order.

    Raises
    ------
    ValueError
        When ``age`` is outside [0, 130], ``sex`` is not "F" or "M", or the panel fails
        :func:`check_panel` (which also raises TypeError and KeyError).
    """
    sex, age = _clinical(sex, age)
    values = check_panel(panel)
    out = []
    for b in BIOMARKERS:
        v = values[b.name]
        low, high = reference_range(b.name, sex, age)
        out.append(LabResult(b.name, b.label, v, b.unit, low, high, flag_value(b.name, v, sex, age)))
    return out


def flag_table(labs: pd.DataFrame, clinical: pd.DataFrame | None = None) -> pd.DataFrame:
    """Flags for a whole lab table (one row per patient), using sex and age when given.

    Taught in chapter 6 (how often each flag occurs in the cohort).

    Parameters
    ----------
    labs : pandas.DataFrame
        One row per patient, one column per biomarker (canonical units, NaN = not measured).
    clinical : pandas.DataFrame, optional
        With columns ``sex`` and ``age``, indexed like ``labs``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``labs``, one column per biomarker of
        :data:`oncolab.data.labs.BIOMARKERS`, holding its flag.

    Raises
    ------
    KeyError
        When a column of ``labs`` is not a known biomarker, or a patient is missing from
        ``clinical``.
    ValueError
        As :func:`flag_panel`.
    """
    rows = []
    for pid, row in labs.iterrows():
        sex = age = None
        if clinical is not None:
            sex, age = clinical.at[pid, "sex"], clinical.at[pid, "age"]
        rows.append({r.name: r.flag for r in flag_panel(row, sex, age)})
    return pd.DataFrame(rows, index=labs.index)
