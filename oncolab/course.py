"""Coursework helpers: a cohort seed per student, and the public checks of the chapters' exercises.

Taught on the book's course pages ("Graded assignments" and "Instructor notes").

* :func:`cohort_seed`: the seed of a student's own synthetic cohort, from the student's id and
  a course key, so that every student works on different data and the instructor can
  regenerate it;
* :func:`check_exercise`: the check cell that follows each exercise in the student version of
  a chapter (``tools/chapters.py student``): it looks for the names the exercise's results
  are bound to and tests that each holds a usable value, reporting every problem at once.

The graded assignments are checked by otter-grader (public checks in the student notebook,
hidden tests in the autograder); these helpers are for the chapters and the seeds.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["SEED_LIMIT", "check_exercise", "cohort_seed"]

SEED_LIMIT = 2**31
"""Seeds from :func:`cohort_seed` lie in ``[0, SEED_LIMIT)``."""


def cohort_seed(student_id: str | int, course_key: str = "") -> int:
    """The cohort seed of one student: the same id and key give the same seed on any machine.

    Taught on the course page "Instructor notes". The seed is the first 8 bytes of
    ``sha256(course_key + ":" + student_id)`` modulo :data:`SEED_LIMIT`. A new ``course_key``
    each term gives every student new data, so that last year's answers do not fit.

    Parameters
    ----------
    student_id : str or int
        The student's id as the course writes it (leading and trailing spaces are ignored).
    course_key : str
        A word chosen by the instructor for the course and term.

    Returns
    -------
    int
        A seed in ``[0, SEED_LIMIT)``, for :func:`oncolab.data.synthetic_cohort`.
    """
    if isinstance(student_id, bool) or not isinstance(student_id, (str, int)):
        raise TypeError(f"student_id must be a str or an int, got {type(student_id).__name__}")
    if not isinstance(course_key, str):
        raise TypeError(f"course_key must be a str, got {type(course_key).__name__}")
    sid = str(student_id).strip()
    if not sid:
        raise ValueError(f"student_id must not be empty, got {student_id!r}")
    digest = hashlib.sha256(f"{course_key}:{sid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_LIMIT


def _numeric_values(value) -> np.ndarray | None:
    """The numbers held by ``value`` as a float array, or None when it holds none to check."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "select_dtypes"):  # a DataFrame
        value = value.select_dtypes("number").to_numpy()
    elif hasattr(value, "to_numpy") and hasattr(value, "dtype"):  # a Series
        value = value.to_numpy()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.astype(float)
    return None


def _problem(name: str, value, bounds: tuple[float, float] | None) -> str | None:
    """What is wrong with one result (None when it looks usable)."""
    if value is Ellipsis or value is None:
        return f"`{name}` is still a placeholder ({value!r}): assign your result to it"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value)
        if not math.isfinite(v):
            return f"`{name}` = {v} is not a finite number"
        if bounds is not None and not bounds[0] <= v <= bounds[1]:
            return f"`{name}` = {v:.4g} lies outside [{bounds[0]:g}, {bounds[1]:g}], where this quantity must lie"
        return None
    numeric = _numeric_values(value)
    if numeric is not None:
        if numeric.size == 0:
            return f"`{name}` is empty"
        if not np.isfinite(numeric).any():
            return f"`{name}` holds no finite number"
        if bounds is not None and ((numeric < bounds[0]) | (numeric > bounds[1])).any():
            return f"`{name}` has values outside [{bounds[0]:g}, {bounds[1]:g}]"
        return None
    if hasattr(value, "__len__") and not isinstance(value, type):
        try:
            if len(value) == 0:
                return f"`{name}` is empty"
        except TypeError:
            pass
    return None


def check_exercise(label: str, namespace: Mapping[str, Any], names: Sequence[str],
                   bounds: Mapping[str, tuple[float, float]] | None = None) -> str:
    """The public check of an exercise: its results exist under the expected names and hold usable values.

    Taught on the course page "Instructor notes"; the student version of every chapter calls
    it after each exercise. A result is usable when it is not a placeholder (``...`` or
    None), a number is finite (and within ``bounds`` where given), an array, tensor or table
    is not empty and holds a finite number, and a container is not empty. The check says
    nothing about whether the answer is right: the chapter's questions and the solutions,
    released by the instructor, do.

    Parameters
    ----------
    label : str
        The exercise's label (``"ch01-ex1"``), for the messages.
    namespace : mapping
        Where the results live, usually the notebook's ``globals()``.
    names : sequence of str
        The names the results must be bound to.
    bounds : mapping, optional
        ``{name: (low, high)}`` for results with known limits (an AUC lies in [0, 1]).

    Returns
    -------
    str
        A one-line summary, also printed, when every result is usable.

    Raises
    ------
    AssertionError
        Listing every missing or unusable result at once.
    """
    if isinstance(names, str):
        raise TypeError(f"names must be a list of names, got the string {names!r}")
    bounds = dict(bounds or {})
    unknown = sorted(set(bounds) - set(names))
    if unknown:
        raise ValueError(f"bounds given for {unknown}, which are not among the names {list(names)}")
    problems = []
    for n in names:
        if n not in namespace:
            problems.append(f"`{n}` is not defined: bind your result to this name")
            continue
        msg = _problem(n, namespace[n], bounds.get(n))
        if msg:
            problems.append(msg)
    if problems:
        raise AssertionError(f"Exercise {label}: " + "; ".join(problems))
    summary = f"Exercise {label}: {', '.join(names)} defined and usable."
    print(summary)
    return summary
