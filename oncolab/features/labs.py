"""The lab panel as numbers: one documented transform, then imputation, scaling and flags.

Taught in chapter 6 ("From blood tests to sentences", the numeric panel that a text model of
the same results must beat); chapter 8 feeds it to the Cox model and chapter 12 to the
complete system.

**The lab transform**, written once (:func:`lab_transform`): ``log(1 + value)`` of the value
in the panel's canonical unit (:data:`oncolab.data.labs.BIOMARKERS`; convert other units with
:func:`oncolab.text.to_canonical` first). Why a logarithm: concentrations are positive and
vary multiplicatively between patients (an LDH going from 200 to 400 U/L is the same change, a
doubling, as one going from 100 to 200), so their distribution is right-skewed; on a log scale
a ratio becomes a difference and the distribution nearly symmetric. Why ``log1p`` and not
``log``: a lab can report exactly 0 (a CRP of 0.0 mg/L, below the assay's
limit, an ESR of 0 mm/h), where ``log`` is minus infinity; and ``log(x + 1e-3)`` would turn
that zero into an outlier of -6.9, far below every measured value. For values well above 1
(ALP, LDH, haemoglobin) ``log1p`` is ``log`` to within ``1/x``; for small ones (calcium in
mmol/L, CRP) it is gentler. The unit therefore matters, which is why the value must be in the
canonical unit. A negative value is not a concentration and is refused.

**The features** (:class:`LabFeatures`): the transformed value, a missing value filled with
the training median, standardised with the mean and standard deviation of the measured
training values (``ddof=1``, the sample standard deviation, as :mod:`oncolab.omics` scales
genes and clinical numbers; the filled values do not shrink it), plus one 0/1
``<lab>_missing`` column per lab: a missing value is never invented, it is filled *and*
flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oncolab.data.labs import BIOMARKERS, biomarker

from .base import FeatureTransformer
from .tables import align_columns, numeric_table, require_frame

__all__ = ["LabFeatures", "lab_transform"]

_PANEL = [b.name for b in BIOMARKERS]


def _known(name) -> None:
    try:
        biomarker(name)
    except KeyError:
        raise ValueError(f"unknown lab {name!r}; expected the labs {_PANEL}") from None


def _checked_log1p(x: np.ndarray, names, index) -> np.ndarray:
    """log1p of a (n, k) array of lab values; negative or infinite values raise, by lab and patient."""
    bad = ~np.isnan(x) & ((x < 0) | ~np.isfinite(x))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        who = f" of patient {index[r]!r}" if index is not None else ""
        unit = f" {biomarker(names[c]).unit}" if names[c] in _PANEL else ""
        raise ValueError(f"lab {names[c]!r}{who} is {x[r, c]}; expected a value >= 0{unit} "
                         f"(a concentration or a count in the canonical unit), or NaN when not measured")
    return np.log1p(x)


def lab_transform(values, name: str | None = None):
    """``log(1 + value)`` of lab values in canonical units: the one lab transform of the package.

    Taught in chapter 6 (inside :class:`LabFeatures`, the numeric panel baseline); chapters 11
    and 13 call it directly. The module docstring explains the choice (a CRP can be 0.0).

    Parameters
    ----------
    values : pandas.DataFrame, pandas.Series or array_like
        Lab values in the canonical units of :data:`oncolab.data.labs.BIOMARKERS`; NaN means
        not measured. A DataFrame has one column per lab (named after it), a Series is one
        lab (its name), an array is one lab named by ``name``.
    name : str, optional
        The lab, for error messages when ``values`` is an array (ignored otherwise).

    Returns
    -------
    pandas.DataFrame, pandas.Series or numpy.ndarray
        The same type and shape as ``values`` (float64), NaN where a value was missing.

    Raises
    ------
    ValueError
        For a negative or infinite value or one that is not a number, naming the lab (and the
        patient id for a table).
    """
    if isinstance(values, pd.DataFrame):
        x = _checked_log1p(numeric_table(values, "lab"), list(values.columns), values.index)
        return pd.DataFrame(x, index=values.index, columns=values.columns)
    if isinstance(values, pd.Series):
        x = _checked_log1p(numeric_table(values.to_frame(), "lab"), [values.name], values.index)
        return pd.Series(x[:, 0], index=values.index, name=values.name)
    label = name if name is not None else "value"
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"lab {label!r}: expected numbers (NaN when not measured), got {values!r}") from None
    return _checked_log1p(arr.reshape(-1, 1), [label], None).reshape(arr.shape)


class LabFeatures(FeatureTransformer):
    """Lab table -> :func:`lab_transform`, median-imputed, standardised, plus "missing" flags.

    Taught in chapter 6 (the numeric panel baseline); used by chapter 8's survival table and
    by the complete system (chapter 12).

    ``fit`` learns, from the training patients only, each lab's median (to fill a missing
    value), mean and standard deviation (``ddof=1``, over the measured values) of the
    transformed values. ``transform`` returns, for each lab in ``names_`` order, the
    standardised value, then (``missing_indicators``) one 0/1 ``<lab>_missing`` column per lab.
    Columns are matched by name: a table whose columns come in another order gives the same
    output. ``get_feature_names_out()`` gives the lab names, then ``<lab>_missing`` for each
    (with ``missing_indicators``); ``state()`` holds ``{"names": [...], "missing_indicators":
    bool}`` and the arrays ``median``, ``mean``, ``scale``.

    Parameters
    ----------
    names : sequence of str, optional
        The labs to use, in output order; by default the columns of the training table. Each
        must be a biomarker of :data:`oncolab.data.labs.BIOMARKERS` (its canonical unit
        defines the transform).
    missing_indicators : bool
        Add the ``<lab>_missing`` columns (default True).

    Attributes
    ----------
    names_ : list of str
        The labs, in output order.
    median_, mean_, scale_ : numpy.ndarray
        Per lab, on the transformed scale: the fill value, the centre and the spread (1 where
        a lab does not vary in training).
    """

    fit_hint = "fit(training_lab_table)"

    def __init__(self, names=None, missing_indicators: bool = True):
        self.names = names
        self.missing_indicators = missing_indicators

    def _values(self, X, names) -> np.ndarray:
        return _checked_log1p(numeric_table(align_columns(X, names, "lab"), "lab"), names, X.index)

    def fit(self, X, y=None):
        """Learn each lab's median, mean and standard deviation on the training patients.

        Parameters
        ----------
        X : pandas.DataFrame
            The training patients' lab table, one column per lab (canonical units, NaN = not
            measured), indexed by patient id.
        y : ignored

        Returns
        -------
        LabFeatures
            ``self``.

        Raises
        ------
        TypeError
            When ``X`` is not a DataFrame.
        ValueError
            When there is no lab to use, a name is not a known biomarker, a named column is
            missing or an unknown one present, a value is negative, infinite or not a number
            (named with its patient), or a lab has no measured value in training.
        """
        require_frame(X, "lab")
        names = list(X.columns) if self.names is None else list(self.names)
        if not names:
            raise ValueError(f"no lab to use; expected some of {_PANEL}")
        for n in names:
            _known(n)
        x = self._values(X, names)
        measured = (~np.isnan(x)).sum(0)
        empty = [n for n, k in zip(names, measured) if k == 0]
        if empty:
            raise ValueError(f"no training patient has a measured value of lab(s) {empty}; "
                             f"expected at least one per lab")
        self.names_ = names
        self.n_features_in_ = len(names)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.median_ = np.nanmedian(x, axis=0)
        self.mean_ = np.nanmean(x, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.nanstd(x, axis=0, ddof=1) if len(x) > 1 else np.full(len(names), np.nan)
        self.scale_ = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        """Transformed, filled, standardised values and (optionally) the missing flags.

        Parameters
        ----------
        X : pandas.DataFrame
            A lab table with the columns ``names_`` in any order.

        Returns
        -------
        numpy.ndarray
            float64 array (n, k) or (n, 2k) with the flags, k = ``len(names_)``.

        Raises
        ------
        RuntimeError
            When not fitted.
        TypeError
            When ``X`` is not a DataFrame.
        ValueError
            When a fitted lab is missing, an unknown column is present, or a value is negative,
            infinite or not a number (named with its patient).
        """
        self.check_fitted()
        x = self._values(X, self.names_)
        miss = np.isnan(x)
        z = (np.where(miss, self.median_, x) - self.mean_) / self.scale_
        return np.hstack([z, miss.astype(np.float64)]) if self.missing_indicators else z

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "names_")

    def _names(self) -> list[str]:
        flags = [f"{n}_missing" for n in self.names_] if self.missing_indicators else []
        return [*self.names_, *flags]

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return ({"names": list(self.names_), "missing_indicators": bool(self.missing_indicators)},
                {"median": self.median_, "mean": self.mean_, "scale": self.scale_})

    @classmethod
    def _from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> LabFeatures:
        names = [str(n) for n in config["names"]]
        for n in names:
            _known(n)
        t = cls(names=names, missing_indicators=bool(config["missing_indicators"]))
        t.names_ = names
        t.n_features_in_ = len(names)
        t.feature_names_in_ = np.asarray(names, dtype=object)
        for key in ("median", "mean", "scale"):
            a = np.asarray(arrays[key], dtype=np.float64)
            if a.shape != (len(names),):
                raise ValueError(f"array {key!r} has shape {a.shape}; expected ({len(names)},), one value per lab")
            setattr(t, f"{key}_", a)
        return t
