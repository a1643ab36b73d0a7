"""The blood panel as data: biomarkers, units, reference ranges and flags.

Taught in chapter 1 (what the panel measures) and chapter 6 (flags and narratives).

Reference ranges are typical adult values from general clinical-chemistry references; a
laboratory's own ranges differ slightly and always win in practice. Where a range depends on
sex (haemoglobin) or on age and sex (ESR), :func:`reference_range` says so.

Flag rule (written down once, used everywhere):

* ``"critical"`` when the value is beyond the critical limit (``critical_low`` /
  ``critical_high``) where one is defined;
* ``"low"`` when below the reference range, ``"high"`` when above it;
* ``"normal"`` inside the range (limits included);
* ``"not measured"`` when the value is missing (NaN or None). A missing value is never
  invented.

Units (written down once, used everywhere): each biomarker has one canonical unit, the one the
cohort's lab table holds, and lists the other units people report it in with the factor that
converts them (:attr:`Biomarker.conversions`). :func:`to_canonical` applies them; a unit that
is not listed is refused by name, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BIOMARKERS",
    "Biomarker",
    "FLAGS",
    "flag_value",
    "biomarker",
    "is_missing",
    "reference_range",
    "to_canonical",
]

FLAGS = ("low", "normal", "high", "critical", "not measured")


@dataclass(frozen=True)
class Biomarker:
    """One analyte of the panel, in the units the cohort reports it in.

    Taught in chapter 1 (what the panel measures); the entries of :data:`BIOMARKERS`.

    Attributes
    ----------
    name : str
        Column name in the cohort's lab table.
    label : str
        How a clinician writes it.
    unit : str
        The canonical unit.
    low, high : float
        Reference range (adult male where sex matters).
    low_female, high_female : float or None
        The range for women where it differs.
    critical_low, critical_high : float or None
        Critical limits, where defined.
    median, log_sd, effect : float
        The synthetic generator's model: ``value = median * exp(log_sd * z + effect * s / sd(s))``.
    decimals : int
        Decimals a report shows.
    conversions : tuple of (str, float)
        Other units, each with the factor that converts a value in it to ``unit``.
    description : str
        What the analyte tells.
    """

    name: str  # column name in the cohort's lab table
    label: str  # how a clinician writes it
    unit: str
    low: float  # reference range (adult male where sex matters)
    high: float
    low_female: float | None = None
    high_female: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    # generative model: value = median * exp(log_sd * z + effect * s / sd(s)) (oncolab.data.synthetic)
    median: float = 1.0
    log_sd: float = 0.1
    effect: float = 0.0  # + rises with aggressiveness, - falls
    decimals: int = 0
    # other units people report it in: unit -> factor to multiply by to get `unit`
    conversions: tuple[tuple[str, float], ...] = ()
    description: str = ""


BIOMARKERS: tuple[Biomarker, ...] = (
    Biomarker("alp", "alkaline phosphatase (ALP)", "U/L", 40, 130, critical_high=1000,
              median=85, log_sd=0.25, effect=0.5, decimals=0,
              description="rises with bone formation and bone destruction"),
    Biomarker("ldh", "lactate dehydrogenase (LDH)", "U/L", 140, 280, critical_high=1500,
              median=200, log_sd=0.2, effect=0.4, decimals=0,
              description="released by fast-growing or dying cells; tumour burden"),
    Biomarker("crp", "C-reactive protein (CRP)", "mg/L", 0, 5, critical_high=200,
              median=2.5, log_sd=0.7, effect=0.9, decimals=1,
              description="acute-phase inflammation"),
    Biomarker("calcium", "calcium", "mmol/L", 2.15, 2.55, critical_low=1.75, critical_high=3.0,
              median=2.35, log_sd=0.035, effect=0.05, decimals=2,
              conversions=(("mg/dL", 0.2495),),
              description="bone resorption releases calcium"),
    Biomarker("haemoglobin", "haemoglobin", "g/L", 130, 170, low_female=120, high_female=155,
              critical_low=70, median=145, log_sd=0.07, effect=-0.08, decimals=0,
              conversions=(("g/dL", 10.0),),
              description="anaemia of chronic disease or marrow involvement"),
    Biomarker("wbc", "white cell count (WBC)", "10^9/L", 4.0, 11.0, critical_low=1.0,
              critical_high=30.0, median=6.8, log_sd=0.2, effect=0.2, decimals=1,
              description="inflammation and infection"),
    Biomarker("esr", "erythrocyte sedimentation rate (ESR)", "mm/h", 0, 15, high_female=20,
              median=10, log_sd=0.5, effect=0.6, decimals=0,
              description="non-specific inflammation; upper limit grows with age"),
    Biomarker("albumin", "albumin", "g/L", 35, 50, critical_low=20, median=43, log_sd=0.07,
              effect=-0.07, decimals=0, conversions=(("g/dL", 10.0),),
              description="falls with chronic illness and poor nutrition"),
)

_BY_NAME = {b.name: b for b in BIOMARKERS}


def biomarker(name: str) -> Biomarker:
    """Look a biomarker up by its column name; an unknown name raises a KeyError listing the known ones.

    Taught in chapter 1.

    Parameters
    ----------
    name : str
        A column of the lab table (e.g. ``"alp"``).

    Returns
    -------
    Biomarker

    Raises
    ------
    KeyError
        When ``name`` is not a known biomarker.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown biomarker {name!r}; known: {sorted(_BY_NAME)}") from None


def reference_range(name: str, sex: str | None = None, age: float | None = None) -> tuple[float, float]:
    """Reference range (low, high) for a biomarker, by sex and age where it matters.

    Taught in chapter 6. ESR's upper limit follows the Westergren rule of thumb when an age is
    given: age/2 for men and (age + 10)/2 for women, never below the adult default.

    Parameters
    ----------
    name : str
        The biomarker's column name.
    sex : {"F", "M"} or None
        The patient's sex (haemoglobin and ESR depend on it); ``None``: the adult default.
    age : float or None
        The patient's age in years (ESR depends on it).

    Returns
    -------
    tuple of float
        (low, high), in the biomarker's unit.

    Raises
    ------
    KeyError
        When ``name`` is not a known biomarker.
    ValueError
        When ``sex`` is neither None, "F" nor "M".
    """
    b = biomarker(name)
    low, high = b.low, b.high
    if sex is not None and sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', got {sex!r}")
    if sex == "F":
        low = b.low_female if b.low_female is not None else low
        high = b.high_female if b.high_female is not None else high
    if name == "esr" and age is not None:
        rule = age / 2 if sex != "F" else (age + 10) / 2
        high = max(high, rule)
    return float(low), float(high)


def flag_value(name: str, value: float | None, sex: str | None = None, age: float | None = None) -> str:
    """Flag one value by the rule in this module's docstring.

    Taught in chapter 6.

    Parameters
    ----------
    name : str
        The biomarker's column name.
    value : float or None
        The measured value (NaN or None: not measured); a negative value raises.
    sex, age : optional
        As for :func:`reference_range`.

    Returns
    -------
    str
        One of :data:`FLAGS`.

    Raises
    ------
    KeyError
        When ``name`` is not a known biomarker.
    ValueError
        When ``value`` is negative or ``sex`` is invalid.
    """
    b = biomarker(name)
    if is_missing(value):   # None or NaN of any float type (a numpy.float32 NaN included)
        return "not measured"
    value = float(value)
    if value < 0:
        raise ValueError(f"{name}: a concentration cannot be negative, got {value}")
    if (b.critical_low is not None and value < b.critical_low) or (
        b.critical_high is not None and value > b.critical_high
    ):
        return "critical"
    low, high = reference_range(name, sex, age)
    if value < low:
        return "low"
    if value > high:
        return "high"
    return "normal"


# A value far outside the reference range in the canonical unit (above 3x the upper limit or
# below a fifth of the lower one), which lands inside the range once converted from another
# known unit, was almost surely given in that other unit.
_TOO_LARGE, _TOO_SMALL = 3.0, 5.0


def is_missing(value: Any) -> bool:
    """Whether a lab value means "not measured": ``None`` or NaN.

    Taught in chapter 6.

    Parameters
    ----------
    value : object
        A lab value.

    Returns
    -------
    bool
        True for ``None`` and NaN (the test was not done, or not reported); False otherwise,
        including for text that is not a number.
    """
    if value is None:
        return True
    try:
        return bool(math.isnan(float(value)))
    except (TypeError, ValueError):
        return False


def _suspect_unit(b: Biomarker, value: float) -> tuple[str, float] | None:
    """The unit a value was probably given in, when it is implausible in ``b.unit``."""
    if not (value > b.high * _TOO_LARGE or value < b.low / _TOO_SMALL):
        return None
    for unit, factor in b.conversions:
        converted = value * factor
        if b.low / 2 <= converted <= b.high * 2:
            return unit, converted
    return None


def to_canonical(name: str, value: Any, unit: str | None = None) -> float:
    """The value of biomarker ``name`` in its canonical unit (NaN when missing).

    Taught in chapter 6; a cohort folder's lab table is converted with it (chapter 12, and
    the book's page "Your own cohort").

    A unit listed in the biomarker's ``conversions`` is converted; any other unit raises a
    ValueError naming it and the units that are understood. Negative values raise. A value that
    is implausible in the stated unit but plausible in another known one (calcium 9.6
    "mmol/L", which is 9.6 mg/dL = 2.40 mmol/L) raises too, saying which unit it was probably
    in. A converted value is rounded to one decimal more than the biomarker's usual precision.

    Parameters
    ----------
    name : str
        The biomarker (a name of :data:`BIOMARKERS`); an unknown name raises a KeyError
        listing the known ones.
    value : float, int or None
        The measured value; NaN or ``None`` for not measured.
    unit : str or None
        The unit ``value`` is in; ``None`` means the canonical unit.

    Returns
    -------
    float
        The value in the canonical unit (:attr:`Biomarker.unit`), NaN when missing.

    Raises
    ------
    KeyError
        When ``name`` is not a known biomarker.
    TypeError
        When ``value`` is not a number (a bool or a string, say).
    ValueError
        When ``value`` is not finite or negative, ``unit`` is not understood, or the value is
        implausible in its unit.
    """
    b = biomarker(name)
    if is_missing(value):
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: a value must be a number (or NaN/None), got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: a value must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name}: a concentration cannot be negative, got {value} {unit or b.unit}")
    known = {b.unit: 1.0, **dict(b.conversions)}
    if unit is not None and unit not in known:
        raise ValueError(f"{name}: unit {unit!r} is not understood; expected one of {list(known)}")
    factor = known[unit] if unit is not None else 1.0
    # a converted value keeps one decimal more than the panel reports (9.6 mg/dL -> 2.395)
    converted = round(value * factor, b.decimals + 1) if factor != 1.0 else value
    suspect = _suspect_unit(b, converted)
    if suspect is not None:
        raise ValueError(
            f"{name}: {value} {unit or b.unit} is not plausible; it looks like a value in "
            f"{suspect[0]} (= {suspect[1]:.4g} {b.unit}). Give the unit explicitly, "
            f"e.g. ({value}, {suspect[0]!r})."
        )
    return converted
