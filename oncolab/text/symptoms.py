"""Findings out of a free-text symptom note, with negation and hedges handled (NegEx / ConText).

Taught in chapter 6 ("From blood tests to sentences"), after the lab narratives: the reverse
direction, from a clinician's sentences to structured yes/no findings. The complete system
reads the notes through the ``symptoms`` stages (chapter 12).

Two steps, each a handful of visible rules:

1. **Named-entity recognition by lexicon** (:func:`find_mentions`): each finding of
   :data:`oncolab.data.SYMPTOM_FINDINGS` has a list of terms (:data:`FINDING_TERMS`); every
   match in the lower-cased note is a mention, the longest match winning where terms overlap
   ("night pain" is night pain, not pain).
2. **Context** (Chapman et al. 2001, NegEx; Harkema et al. 2009, ConText): a *trigger* phrase
   of :data:`TRIGGERS` changes the mentions in its *scope*. A forward trigger ("no",
   "denies", "negative for", "possible", "?") reaches to the end of its clause; a backward one
   ("denied", "absent", "cannot be ruled out") reaches back to the clause's start; a family
   trigger ("mother", "family history") covers its whole clause. A scope stops at a
   terminating phrase ("but", "however", "reports", ...), at the next trigger of another kind,
   and at the clause's end (a full stop or a semicolon). Longer triggers win over the shorter
   ones inside them, so "cannot be ruled out" hedges where "ruled out" alone would negate.

A mention's status is ``family`` (not the patient's: ignored), ``absent`` (negated),
``uncertain`` (hedged) or ``present``. A finding is present when one mention of it is,
uncertain when the best is a hedge, absent when only negated, and ``not mentioned``
otherwise. :func:`extract_findings` turns that into one 0/1 column per finding: present is
1, absent and not mentioned are 0, and a hedge counts as ``uncertain`` says (1 by default: a
hedged finding is one worth a look). :class:`FindingExtractor` is the same as a scikit-learn
transformer.

The lexicon covers the words of the book's synthetic notes and common synonyms; real notes
need a larger vocabulary (UMLS, as medspaCy's QuickUMLS gives), and the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from oncolab.data import SYMPTOM_FINDINGS
from oncolab.features import Measurements

__all__ = ["FINDINGS", "FINDING_TERMS", "STATUSES", "TRIGGERS", "FindingExtractor", "Mention", "extract_findings",
           "find_mentions", "finding_status"]

#: the findings, in the order of their columns
FINDINGS: tuple[str, ...] = tuple(SYMPTOM_FINDINGS)

#: finding -> the terms that name it (regular expressions over lower-case text, whole words)
FINDING_TERMS: dict[str, tuple[str, ...]] = {
    "pain": ("pain", "painful", "aching", "ache", "discomfort", "tenderness"),
    "night_pain": ("night pain", "night-time pain", "nocturnal pain", "pain at night", "worse at night",
                   r"pain that wakes \w+ (?:up )?at night", r"wakes \w+ at night"),
    "swelling": ("swelling", "swollen", "palpable mass", "mass", "lump"),
    "limited_motion": ("limited range of motion", "reduced range of motion", "restricted movement",
                       "restricted range of motion", "reduced mobility", "stiffness", "stiff"),
    "fever": ("fever", "fevers", "low-grade fever", "febrile", "pyrexia"),
    "weight_loss": ("weight loss", r"weight loss of \d+ kg", "unintentional weight loss", "loss of weight",
                    "losing weight", r"lost \d+ kg"),
    "fatigue": ("fatigue", "tiredness", "tired", "malaise", "lethargy", "lethargic"),
    "pathological_fracture": ("fracture", "pathological fracture", "fracture after minor trauma",
                              "fracture through the lesion"),
}

#: (kind, direction, phrases): the context rules. kind: negated | uncertain | family | terminate;
#: direction: forward (to the clause's end), backward (to its start) or both
TRIGGERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("negated", "forward", ("no", "not", "denies", "deny", "without", "negative for", "no evidence of",
                            "no history of", "there is no", "free of", "absence of")),
    ("negated", "backward", ("denied", "absent", "none", "not reported", "not present", "ruled out")),
    ("uncertain", "forward", ("possible", "possibly", "questionable", r"\?", "unclear whether", "unclear if",
                              "may have", "suspected", "suspicion of", "cannot rule out")),
    ("uncertain", "backward", ("cannot be ruled out", "can not be ruled out", "cannot be excluded",
                               "not excluded")),
    ("family", "both", ("family history", "mother", "father", "brother", "sister", "parent", "sibling",
                        "grandmother", "grandfather", "aunt", "uncle")),
    ("terminate", "", ("but", "however", "although", "though", "except", "aside from", "apart from", "yet",
                       "reports", "complains of", "presents with", "describes")),
)

#: a finding's status in a note, from the most to the least affirmative
STATUSES: tuple[str, ...] = ("present", "uncertain", "absent", "not mentioned")

_CLAUSE_END = re.compile(r"(?<=[.!])\s+|;\s*|\n+")


def _pattern(terms: Iterable[str]) -> re.Pattern:
    """One regular expression for whole-word matches of ``terms``, longest first."""
    body = "|".join(sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])")


_TERM_PATTERNS = {k: _pattern(v) for k, v in FINDING_TERMS.items()}
_TRIGGER_PATTERNS = [(kind, direction, _pattern(phrases)) for kind, direction, phrases in TRIGGERS]


@dataclass(frozen=True)
class Mention:
    """One mention of a finding in a note.

    Attributes
    ----------
    finding : str
        Which finding (a key of :data:`FINDING_TERMS`).
    text : str
        The words matched, as written.
    start, end : int
        Their character positions in the note.
    status : str
        ``present``, ``uncertain``, ``absent`` or ``family``.
    trigger : str
        The trigger phrase that set the status (empty for ``present``).
    """

    finding: str
    text: str
    start: int
    end: int
    status: str
    trigger: str = ""


def _longest(matches: list[tuple[int, int, object]]) -> list[tuple[int, int, object]]:
    """Non-overlapping matches, the longest winning at each place (then the earliest)."""
    kept, end = [], -1
    for m in sorted(matches, key=lambda m: (m[0], m[0] - m[1])):
        if m[0] >= end:
            kept.append(m)
            end = m[1]
    return kept


def _clauses(note: str) -> list[tuple[int, int]]:
    """(start, end) of each clause: split after a full stop, at a semicolon or a line break."""
    out, start = [], 0
    for m in _CLAUSE_END.finditer(note):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, len(note)))
    return [(a, b) for a, b in out if b > a]


def find_mentions(note: str) -> list[Mention]:
    """Every mention of a finding in a note, with its status from the context rules.

    Taught in chapter 6 (the module docstring gives the rules).

    Parameters
    ----------
    note : str
        The note.

    Returns
    -------
    list of Mention
        In the order of the text.
    """
    if not isinstance(note, str):
        raise TypeError(f"a note must be a string, got {type(note).__name__}: {note!r}")
    low = note.lower()
    out = []
    for c0, c1 in _clauses(low):
        clause = low[c0:c1]
        triggers = _longest([(m.start(), m.end(), (kind, direction)) for kind, direction, p in _TRIGGER_PATTERNS
                             for m in p.finditer(clause)])
        terms = _longest([(m.start(), m.end(), k) for k, p in _TERM_PATTERNS.items() for m in p.finditer(clause)])
        # a mention inside a trigger phrase is no mention ("no history of" holds no finding, but be safe)
        terms = [t for t in terms if not any(a <= t[0] < b for a, b, _ in triggers)]
        scopes = []  # (kind, start, end, trigger text)
        for j, (a, b, (kind, direction)) in enumerate(triggers):
            if kind == "terminate":
                continue
            before = [t for t in triggers[:j] if t[2][0] != kind]
            after = [t for t in triggers[j + 1:] if t[2][0] != kind]
            lo = before[-1][1] if before else 0
            hi = after[0][0] if after else len(clause)
            text = clause[a:b]
            if direction in ("forward", "both"):
                scopes.append((kind, b, hi, text))
            if direction in ("backward", "both"):
                scopes.append((kind, lo, a, text))
        for a, b, k in terms:
            hits = {kind: text for kind, lo, hi, text in scopes if lo <= a and b <= hi}
            for status, kind in (("family", "family"), ("absent", "negated"), ("uncertain", "uncertain")):
                if kind in hits:
                    out.append(Mention(k, note[c0 + a:c0 + b], c0 + a, c0 + b, status, hits[kind]))
                    break
            else:
                out.append(Mention(k, note[c0 + a:c0 + b], c0 + a, c0 + b, "present"))
    return out


def finding_status(note: str) -> dict[str, str]:
    """Each finding's status in a note: present, uncertain, absent or not mentioned.

    Taught in chapter 6. A finding is present when one of its mentions is (a relative's
    mention does not count), else uncertain when one is hedged, else absent when one is
    negated, else not mentioned.

    Parameters
    ----------
    note : str
        The note.

    Returns
    -------
    dict of str to str
        ``{finding: status}`` for every finding of :data:`FINDINGS`, in that order.
    """
    rank = {s: r for r, s in enumerate(STATUSES)}
    best = dict.fromkeys(FINDINGS, "not mentioned")
    for m in find_mentions(note):
        if m.status != "family" and rank[m.status] < rank[best[m.finding]]:
            best[m.finding] = m.status
    return best


def _check_uncertain(uncertain) -> float:
    if isinstance(uncertain, bool) or uncertain not in (0, 1):
        raise ValueError(f"uncertain must be 0 or 1 (what a hedged finding counts as), got {uncertain!r}")
    return float(uncertain)


def _row(note: str, uncertain: float) -> np.ndarray:
    value = {"present": 1.0, "uncertain": uncertain, "absent": 0.0, "not mentioned": 0.0}
    return np.array([value[s] for s in finding_status(note).values()], dtype=np.float64)


def extract_findings(notes: Sequence[str] | pd.Series, uncertain: int = 1) -> pd.DataFrame:
    """One 0/1 column per finding, one row per note.

    Taught in chapter 6, where the result is checked against the generator's truth and set
    beside a TF-IDF model of the same notes.

    Parameters
    ----------
    notes : sequence of str or pandas.Series
        The notes (a Series keeps its index, e.g. ``cohort.symptoms["note"]``).
    uncertain : {0, 1}
        What a hedged finding counts as.

    Returns
    -------
    pandas.DataFrame
        int64 columns :data:`FINDINGS`: 1 present (or hedged, with ``uncertain=1``), 0 absent
        or not mentioned.
    """
    u = _check_uncertain(uncertain)
    if isinstance(notes, str):
        raise TypeError("notes must be a sequence of strings, not one string")
    index = notes.index if isinstance(notes, pd.Series) else None
    rows = [_row(n, u) for n in notes]
    return pd.DataFrame(np.array(rows, dtype=np.int64).reshape(-1, len(FINDINGS)), columns=list(FINDINGS),
                        index=index)


class FindingExtractor(Measurements):
    """:func:`extract_findings` as a scikit-learn transformer; learns nothing.

    Taught in chapter 6. ``transform(X)`` takes a sequence of notes, one per patient, and
    returns a float64 array (n, 8) whose columns are :data:`FINDINGS`; ``state()`` holds the
    one setting.

    Parameters
    ----------
    uncertain : {0, 1}
        What a hedged finding counts as.
    """

    def __init__(self, uncertain: int = 1):
        self.uncertain = uncertain

    def _settings(self) -> dict:
        return {"uncertain": int(_check_uncertain(self.uncertain))}

    def _measure(self, item) -> np.ndarray:
        return _row(item, _check_uncertain(self.uncertain))

    def _names(self) -> tuple[str, ...]:
        return FINDINGS
