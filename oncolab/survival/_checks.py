"""Input checks shared by the survival estimators and metrics.

Taught in chapter 8 ("Survival analysis from first principles"): what a survival outcome is
(a time and an event flag per patient) and what makes one unusable.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_risk", "check_survival", "check_X"]


def check_survival(y=None, *, event=None, time=None, allow_all_censored: bool = False,
                   name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(event, time)`` as a bool and a float array, or raise a clear error.

    ``y`` is scikit-survival's structured array whose first field is the event flag (bool)
    and second the time; or pass ``event=`` and ``time=`` separately. Taught in chapter 8
    (what makes a survival outcome usable).

    Parameters
    ----------
    y : numpy structured array of shape (n,), optional
        Two fields, the event flag (bool) first and the time second, whatever their names.
        When given, ``event`` and ``time`` are ignored.
    event : array-like of bool, shape (n,), optional
        True where the event was observed, False where the patient was censored. Must have a
        boolean dtype (0/1 integers are refused).
    time : array-like of numbers, shape (n,), optional
        Follow-up time (to the event or to censoring), finite and >= 0.
    allow_all_censored : bool, default False
        Accept an outcome without any event (otherwise refused).
    name : str, default "y"
        The name used for ``y`` in error messages.

    Returns
    -------
    event : numpy.ndarray of bool, shape (n,)
    time : numpy.ndarray of float, shape (n,)

    Raises
    ------
    ValueError
        When ``y`` is not a structured array of two fields, neither ``y`` nor both ``event``
        and ``time`` are given, the arrays are not 1-D or differ in length, the event flag is
        not boolean, a time is not numeric, not finite or negative, there are fewer than two
        patients, or (unless ``allow_all_censored``) every patient is censored.
    """
    if y is not None:
        y = np.asarray(y)
        if y.dtype.names is None or len(y.dtype.names) != 2:
            raise ValueError(f"{name} must be a structured array with two fields (event: bool, time: float), "
                             f"got an array of dtype {y.dtype}")
        ev_name, t_name = y.dtype.names
        event, time = y[ev_name], y[t_name]
        ev_label = f"{name}[{ev_name!r}]"
    else:
        if event is None or time is None:
            raise ValueError("give either a structured y or both event= and time=")
        ev_label = "event"
    event = np.asarray(event)
    time = np.asarray(time)
    if event.ndim != 1 or time.ndim != 1:
        raise ValueError(f"event and time must be 1-D, got shapes {event.shape} and {time.shape}")
    if len(event) != len(time):
        raise ValueError(f"event and time have different lengths ({len(event)} and {len(time)})")
    if event.dtype != np.bool_:
        raise ValueError(f"{ev_label} must be boolean (True = event, False = censored), got dtype "
                         f"{event.dtype}; convert it with .astype(bool) if it holds 0/1")
    if not np.issubdtype(time.dtype, np.number):
        raise ValueError(f"time must be numeric, got dtype {time.dtype}")
    time = time.astype(float)
    if len(time) < 2:
        raise ValueError(f"need at least two patients, got {len(time)}")
    bad = ~np.isfinite(time)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"time must be finite, got {time[i]!r} at position {i}")
    if (time < 0).any():
        i = int(np.flatnonzero(time < 0)[0])
        raise ValueError(f"time must be >= 0, got {time[i]!r} at position {i}")
    if not allow_all_censored and not event.any():
        raise ValueError(f"all {len(time)} patients are censored (no event): survival cannot be estimated")
    return event, time


def check_risk(risk, n: int, name: str = "risk") -> np.ndarray:
    """A 1-D finite float array of length ``n``.

    Taught in chapter 8 (a risk score is one number per patient, higher = worse).

    Parameters
    ----------
    risk : array-like, shape (n,)
        One score per patient, convertible to float.
    n : int
        The number of patients the scores must match.
    name : str, default "risk"
        The name used in error messages.

    Returns
    -------
    numpy.ndarray of float, shape (n,)

    Raises
    ------
    ValueError
        When ``risk`` is not 1-D, has another length than ``n``, or holds NaN or infinity.
    """
    r = np.asarray(risk, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per patient), got shape {r.shape}")
    if len(r) != n:
        raise ValueError(f"{name} has {len(r)} values but there are {n} patients")
    if not np.isfinite(r).all():
        i = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"{name} must be finite, got {r[i]!r} at position {i}")
    return r


def check_X(X, n: int | None = None) -> np.ndarray:
    """A 2-D float matrix without NaN (impute first: a Pipeline does it inside each fold).

    Taught in chapter 8 (the covariates of a Cox model).

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n_patients, n_covariates)
        Numeric covariates (a DataFrame is read through ``to_numpy``).
    n : int, optional
        When given, the number of rows ``X`` must have (the patients of ``y``).

    Returns
    -------
    numpy.ndarray of float, shape (n_patients, n_covariates)

    Raises
    ------
    ValueError
        When ``X`` is not numeric, not 2-D, has another number of rows than ``n``, or holds
        NaN or infinite values (the first NaN's row and column are named).
    """
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"X must be numeric (encode categorical columns first): {e}") from None
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (patients x covariates), got shape {X.shape}")
    if n is not None and X.shape[0] != n:
        raise ValueError(f"X has {X.shape[0]} rows but y has {n} patients")
    if np.isnan(X).any():
        r, c = np.argwhere(np.isnan(X))[0]
        raise ValueError(f"X contains NaN (first at row {r}, column {c}); impute missing values first, "
                         "e.g. a SimpleImputer in a Pipeline")
    if not np.isfinite(X).all():
        raise ValueError("X contains infinite values")
    return X
