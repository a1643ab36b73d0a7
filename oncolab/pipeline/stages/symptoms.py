"""Stages of the symptom note: findings with negation handled, or the words through TF-IDF.

Taught in chapter 12 ("The complete system"); the extraction is built in chapter 6
(:mod:`oncolab.text.symptoms`). The note is the cohort's ``symptoms`` table (column ``note``),
an optional modality: a system reads it only when its configuration names ``symptoms``.

* ``findings``: :class:`oncolab.text.FindingExtractor` (a lexicon finds the mentions,
  NegEx/ConText triggers mark them negated, hedged or a relative's) -> one 0/1 value per
  finding -> standardised with the training patients' mean and standard deviation. Nothing
  is learned from a label, so no cross-fitting is needed.
* ``tfidf``: the note -> TF-IDF of words and word pairs -> PCA, each component of unit
  variance (the lab narrative's text stage, :class:`~oncolab.pipeline.stages.LabsText`, on
  the note instead). Negation is left to what word pairs such as "no fever" carry.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import Stage, present
from .tables import LabsText

__all__ = ["SymptomsFindings", "SymptomsText", "read_notes"]


def read_notes(cohort, config=None, on_bad_image: str = "raise"):
    """Every patient's symptom note (object array, None where absent), the usable mask and no notes.

    Taught in chapter 12: the ``read`` of both symptoms stages.

    Parameters
    ----------
    cohort : Cohort
        The patients; a note is read where the ``symptoms`` table has one and ``presence``
        does not say the modality is absent.
    config : SystemConfig, optional
        Unused (the stages' ``read`` signature).
    on_bad_image : str
        Unused (a note is no image).

    Returns
    -------
    tuple
        ``(notes, usable, [])``; a note that is not text raises a ValueError naming the patient.
    """
    n = len(cohort)
    notes = np.empty(n, dtype=object)
    if "symptoms" not in cohort.tables:
        return None, np.zeros(n, bool), []
    table = cohort.tables["symptoms"]
    if "note" not in table.columns:
        raise ValueError(f"the symptoms table has no 'note' column (its columns are {list(table.columns)}); "
                         "expected each patient's symptom note in a column 'note'")
    column = table["note"]
    usable = column.notna().to_numpy()
    pres = cohort.presence
    if "symptoms" in pres.columns:
        usable &= pres["symptoms"].to_numpy(bool)
    for i in np.flatnonzero(usable):
        note = column.iat[i]
        if not isinstance(note, str):
            raise ValueError(f"patient {cohort.ids[i]}: the symptom note is {note!r} ({type(note).__name__}); "
                             "expected text")
        notes[i] = note
    return notes, usable, []


class SymptomsFindings(Stage):
    """Note -> findings (0/1, negation handled) -> standardised with the training patients' statistics.

    Parameters
    ----------
    uncertain : {0, 1}
        What a hedged finding counts as (:func:`oncolab.text.extract_findings`).
    """

    modality: ClassVar[str] = "symptoms"
    name: ClassVar[str] = "findings"

    def __init__(self, uncertain: int = 1):
        from ...text import FindingExtractor

        self.extractor = FindingExtractor(uncertain).fit()
        self.uncertain = int(uncertain)
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        return read_notes(cohort, config, on_bad_image)

    def findings(self, raw) -> np.ndarray:
        """The 0/1 findings of every patient with a note (zeros elsewhere), before standardising.

        Parameters
        ----------
        raw : object array
            The notes (None where absent), as :meth:`read` gives them.

        Returns
        -------
        numpy.ndarray
            float64 (n, 8), the columns of :data:`oncolab.text.FINDINGS`.
        """
        F = np.zeros((len(raw), len(self.extractor.get_feature_names_out())))
        idx = np.flatnonzero(present(raw))
        if len(idx):
            F[idx] = self.extractor.transform([raw[i] for i in idx])
        return F

    def fit_transform(self, raw, rows, targets):
        F = self.findings(raw)[np.asarray(rows)]
        sd = F.std(0)
        self.mean_, self.scale_ = F.mean(0), np.where(sd > 1e-12, sd, 1.0)
        return self.transform(raw)

    def transform(self, raw):
        if self.mean_ is None:
            raise RuntimeError(f"the symptoms {self.name!r} stage is not fitted")
        Z = (self.findings(raw) - self.mean_) / self.scale_
        return np.where(present(raw)[:, None], Z, 0.0)

    def feature_names(self) -> list[str]:
        return [str(n) for n in self.extractor.get_feature_names_out()]

    def settings(self) -> dict:
        return {"uncertain": self.uncertain}

    def arrays(self):
        return {"mean": self.mean_, "scale": self.scale_}

    def restore(self, config, arrays):
        self.mean_, self.scale_ = np.asarray(arrays["mean"]), np.asarray(arrays["scale"])


class SymptomsText(LabsText):
    """Note -> TF-IDF of words and word pairs -> PCA to ``components`` values, each of unit variance."""

    modality: ClassVar[str] = "symptoms"
    name: ClassVar[str] = "tfidf"

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        return read_notes(cohort, config, on_bad_image)
