"""The book's synthetic cohort generators, and the oracle of a cohort found from the one that made it.

Taught in chapter 1 (the bone-tumour cohort of :mod:`oncolab.data.synthetic`) and chapter 14
(the prostate cohort of :mod:`oncolab.data.prostate`).

Because a generator knows the truth it drew, it can say how well the best possible model
would do: that is its oracle. The oracle belongs to the generator, not to the
:class:`~oncolab.data.Cohort` container; each generator writes its name in
``cohort.meta["source"]``, and :func:`oracle` and :func:`oracle_table` use it to call the
right generator's function. A cohort from anywhere else (a real dataset, a folder written by
hand) is refused: its truth is unknown.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pandas as pd

from . import prostate, synthetic
from .cohort import Cohort

__all__ = ["GENERATORS", "oracle", "oracle_table"]

#: ``meta["source"]`` -> (the generator function's name, its module)
GENERATORS: dict[str, tuple[str, ModuleType]] = {
    synthetic.SOURCE: ("synthetic_cohort", synthetic),
    prostate.SOURCE: ("prostate_cohort", prostate),
}


def _generator(cohort: Cohort) -> ModuleType:
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected a Cohort, got {type(cohort).__name__}")
    source = cohort.meta.get("source")
    if source not in GENERATORS:
        known = " or ".join(f"{name} ({src!r})" for src, (name, _) in GENERATORS.items())
        raise ValueError(f"no oracle for a cohort with meta['source'] == {source!r}: only a cohort made by "
                         f"{known} has one (a real dataset's truth is unknown)")
    return GENERATORS[source][1]


def oracle(cohort: Cohort, **options: Any) -> dict[str, Any]:
    """The best any model could reach on a synthetic cohort, from the generator that made it.

    Taught in chapter 1; chapters 2-14 set their results beside it.

    Parameters
    ----------
    cohort : Cohort
        A cohort made by :func:`~oncolab.data.synthetic_cohort` or
        :func:`~oncolab.data.prostate_cohort` (or a subset of one); any other is refused
        with a ValueError naming its ``meta['source']``.
    **options
        Passed on to the generator's oracle: ``n_sim`` and ``seed`` for the bone-tumour
        cohort (:func:`oncolab.data.synthetic.oracle`); none for the prostate cohort
        (:func:`oncolab.data.prostate.oracle`).

    Returns
    -------
    dict
        The generator's ceilings: for the bone-tumour cohort the Bayes accuracy and macro
        AUC (fused, per modality, population) and the C-index of the true risk; for the
        prostate cohort the C-index of the true risk and per information set.
    """
    return _generator(cohort).oracle(cohort, **options)


def oracle_table(cohort: Cohort) -> pd.DataFrame:
    """The oracle of a synthetic cohort as a table, one row per information set.

    Taught in chapter 1 (the bone-tumour cohort) and chapter 14 (the prostate cohort).

    Parameters
    ----------
    cohort : Cohort
        A cohort made by :func:`~oncolab.data.synthetic_cohort` or
        :func:`~oncolab.data.prostate_cohort` (see :func:`oracle`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``information``. Bone-tumour cohort: one row per modality whose latent
        signal the oracle reads (``"radiograph alone"``, ...; the four imaging and molecular
        modalities, and ``symptoms`` in a cohort with symptom notes), then one row for all of
        those signals fused, labelled by their names (``"radiograph + pathology + labs + genes
        (fused)"``, with ``" + symptoms"`` before ``" (fused)"`` when the cohort has notes), with
        the Bayes accuracy and macro AUC. Prostate cohort: the true risk first, then one row
        per information set, with the Harrell's C ceiling.
    """
    o = _generator(cohort).oracle(cohort)
    rows = _TABLE_ROWS[cohort.meta["source"]](o)
    return pd.DataFrame(rows).set_index("information")


def _bone_rows(o: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"information": f"{m} alone", "Bayes accuracy": v["accuracy"], "Bayes macro AUC": v["auc"]}
            for m, v in o["by_modality"].items()]
    # the fused rule reads the signals of exactly the modalities listed alone (symptoms too when there are notes)
    fused = " + ".join(o["by_modality"]) + " (fused)"
    return [*rows, {"information": fused, "Bayes accuracy": o["bayes_accuracy"], "Bayes macro AUC": o["bayes_auc"]}]


def _prostate_rows(o: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"information": "true risk", "C-index ceiling": o["c_index"]}]
    return rows + [{"information": k, "C-index ceiling": v} for k, v in o["by_information"].items()]


#: ``meta["source"]`` -> the rows of its oracle table, from its oracle
_TABLE_ROWS = {synthetic.SOURCE: _bone_rows, prostate.SOURCE: _prostate_rows}
