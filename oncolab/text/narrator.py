"""From a flagged blood panel to a short clinical narrative.

Taught in chapter 6 ("From blood tests to sentences").

The template narrator (:func:`narrate`) is deterministic for a seed. Its rules:

1. abnormal results come first: critical ones, then the others, in panel order;
2. each abnormal result is written with its value, unit and reference range;
3. normal results follow with their values and units;
4. biomarkers that were not measured are named as "not measured", never given a value;
5. a panel where nothing was measured says exactly that;
6. with ``narration="abnormal"`` only the abnormal results are written (rules 3 and 4 are
   skipped; a panel without one says that every measured value is within range), as a
   report that narrates the abnormal markers only does;
7. wording (the opening, the sentence pattern, synonyms such as "raised" for "high") is
   drawn from ``numpy.random.default_rng(seed)``: same seed, same text.

The LLM narrator (:class:`LLMNarrator`) asks a transformers text-generation pipeline to
rewrite the same facts as prose. It checks that every abnormal value survives in the
generated text and falls back to the template narrator, with a message, when no model can
be loaded (offline) or when the model drops or changes a value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from oncolab.data.labs import biomarker

from .panel import LabResult, flag_panel, is_missing

__all__ = ["DEFAULT_LLM", "NARRATIONS", "LLMNarrator", "narrate", "narrate_cohort", "narrate_results",
           "patient_seed"]

DEFAULT_LLM = "Qwen/Qwen2.5-0.5B-Instruct"

NARRATIONS = ("all", "abnormal")
"""Which results a narrative names: every one, or only those outside their reference range."""

_OPENINGS = (
    "Laboratory panel for a {who}.",
    "Blood tests of a {who}.",
    "Bloods for this {who}.",
)
_OPENINGS_ANON = ("Laboratory panel.", "Blood test results.", "Bloods.")
_WORDS = {
    "high": ("high", "raised", "elevated"),
    "low": ("low", "reduced", "decreased"),
    "critical high": ("critically high", "critically raised"),
    "critical low": ("critically low", "critically reduced"),
}
_ABNORMAL = (
    "{Label} is {word} at {value} {unit} (reference {range}).",
    "{Label} {value} {unit}, {word} (reference {range}).",
    "The {label} is {word}: {value} {unit} against a reference of {range}.",
)
_NONE_ABNORMAL = (
    "All measured values lie within their reference ranges.",
    "No result is outside its reference range.",
)
_NORMAL_INTRO = ("Within range: {items}.", "Normal results: {items}.")
_NORMAL_AFTER_ABNORMAL = _NORMAL_INTRO + ("The other results are normal: {items}.",)
_MISSING = ("Not measured: {items}.", "{Items} {verb} not measured.")
_NOTHING = ("No blood test results were recorded for this patient.",)


def patient_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of patient number ``index`` in a cohort narrated with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence([int(seed), int(index)])


def _short(name: str) -> str:
    """How a biomarker is named in a list: 'ALP' rather than 'alkaline phosphatase (ALP)'."""
    label = biomarker(name).label
    if "(" in label:
        return label[label.index("(") + 1:label.index(")")]
    return label


def _join(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _check_narration(narration: str) -> str:
    if narration not in NARRATIONS:
        raise ValueError(f"narration must be one of {list(NARRATIONS)}, got {narration!r}")
    return narration


def narrate_results(results: Sequence[LabResult], sex: str | None = None, age: float | None = None,
                    seed: int | np.random.SeedSequence = 0, narration: str = "all") -> str:
    """The template narrative for already-flagged results (see the module docstring).

    Parameters
    ----------
    results : sequence of LabResult
        The flagged panel (:func:`oncolab.text.flag_panel`).
    sex, age : optional
        Named in the opening sentence when given.
    seed : int or SeedSequence
        Seeds the wording.
    narration : {"all", "abnormal"}
        Every result, or only the abnormal ones (rule 6).

    Returns
    -------
    str
    """
    _check_narration(narration)
    rng = np.random.default_rng(seed)
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    sex = None if is_missing(sex) else sex
    age = None if is_missing(age) else age
    if sex is not None or age is not None:
        noun = {"F": "woman", "M": "man"}.get(sex, "patient") if sex is not None else "patient"
        who = f"{int(round(age))}-year-old {noun}" if age is not None else noun
        parts = [pick(_OPENINGS).format(who=who)]
    else:
        parts = [pick(_OPENINGS_ANON)]
    measured = [r for r in results if r.flag != "not measured"]
    if not measured:
        return parts[0] + " " + pick(_NOTHING)
    abnormal = [r for r in measured if r.abnormal]
    abnormal.sort(key=lambda r: r.flag != "critical")  # stable: critical first, panel order kept
    for r in abnormal:
        key = f"critical {r.direction}" if r.flag == "critical" else r.flag
        label = biomarker(r.name).label
        parts.append(pick(_ABNORMAL).format(Label=_cap(label), label=label, word=pick(_WORDS[key]),
                                            value=r.value_text, unit=r.unit, range=r.range_text))
    if not abnormal:
        parts.append(pick(_NONE_ABNORMAL))
    if narration == "abnormal":
        return " ".join(parts)
    normal = [r for r in measured if not r.abnormal]
    if normal:
        items = [f"{_short(r.name)} {r.value_text} {r.unit}" for r in normal]
        intro = _NORMAL_AFTER_ABNORMAL if abnormal else _NORMAL_INTRO
        parts.append(pick(intro).format(items=", ".join(items)))
    missing = [_short(r.name) for r in results if r.flag == "not measured"]
    if missing:
        t = pick(_MISSING)
        parts.append(t.format(items=", ".join(missing), Items=_cap(_join(missing)),
                              verb="was" if len(missing) == 1 else "were"))
    return " ".join(parts)


def narrate(panel: Mapping[str, Any] | pd.Series, sex: str | None = None, age: float | None = None,
            seed: int | np.random.SeedSequence = 0, narration: str = "all") -> str:
    """A patient's panel as clinical prose, deterministic for ``seed``.

    ``panel`` is what :func:`oncolab.text.panel.check_panel` accepts (numbers in the panel's
    units, ``(number, unit)`` pairs, NaN/None for missing). Bad input raises there: unknown
    biomarkers, unknown units, negative or implausible values. ``narration="abnormal"`` names
    only the results outside their reference range (:data:`NARRATIONS`).

    >>> narrate({"alp": 250, "calcium": (9.6, "mg/dL")}, sex="F", age=40, seed=0)[:60]
    'Blood tests of a 40-year-old woman. Alkaline phosphatase (AL'
    """
    return narrate_results(flag_panel(panel, sex, age), sex, age, seed, narration)


def narrate_cohort(cohort, seed: int = 0, by: str = "position", narration: str = "all") -> list[str]:
    """One narrative per patient of a cohort (its ``labs`` and, when present, ``clinical``).

    With ``by="position"`` patient number ``i`` is narrated with :func:`patient_seed`
    ``(seed, i)``, so a patient's text does not depend on which other patients are in the
    list. With ``by="id"`` the seed comes from the patient's identifier instead (a CRC-32 of
    it), so that the same patient gets the same words in any cohort, even alone (the
    complete system of chapter 12 narrates this way). ``narration`` is :func:`narrate`'s.
    """
    import zlib

    if by not in ("position", "id"):
        raise ValueError(f"by must be 'position' or 'id', got {by!r}")
    _check_narration(narration)
    labs = cohort.labs
    clinical = cohort.clinical if "clinical" in cohort.tables else None
    texts = []
    for i, (pid, row) in enumerate(labs.iterrows()):
        sex = age = None
        if clinical is not None:
            sex, age = clinical.at[pid, "sex"], clinical.at[pid, "age"]
        key = i if by == "position" else zlib.crc32(str(pid).encode())
        texts.append(narrate(row, sex, age, seed=patient_seed(seed, key), narration=narration))
    return texts


def _facts(results: Sequence[LabResult]) -> str:
    lines = []
    for r in results:
        if r.flag == "not measured":
            lines.append(f"- {r.label}: not measured")
        else:
            lines.append(f"- {r.label}: {r.value_text} {r.unit} (reference {r.range_text}), {r.flag}")
    return "\n".join(lines)


class LLMNarrator:
    """Rewrite a panel's facts as prose with a text-generation model; fall back when it cannot.

    Parameters
    ----------
    model:
        A Hugging Face model name or local folder for ``transformers.pipeline("text-generation")``.
        A hub name calls :func:`oncolab.env.require_hub` first, so offline the narrator falls
        back at once.
    generator:
        Instead of ``model``: any callable ``prompt -> str`` (a ready pipeline wrapped, or a
        function), for a model already in memory.
    max_new_tokens:
        Generation length.

    After each call, :attr:`last_source` is ``"llm"`` or ``"template"`` and
    :attr:`last_message` says why the template was used.
    """

    def __init__(self, model: str = DEFAULT_LLM, generator: Callable[[str], str] | None = None,
                 max_new_tokens: int = 200):
        self.model = model
        self.max_new_tokens = int(max_new_tokens)
        self._generator = generator
        self._load_error: str | None = None
        self.last_source = ""
        self.last_message = ""

    def _load(self) -> Callable[[str], str] | None:
        if self._generator is not None or self._load_error is not None:
            return self._generator
        from pathlib import Path

        from oncolab.env import HubUnavailableError, require_hub

        try:
            if not Path(self.model).exists():
                require_hub(self.model, local_hint="model=<a local folder>")
            from transformers import pipeline

            pipe = pipeline("text-generation", model=self.model)
        except (HubUnavailableError, OSError, ValueError, ImportError) as e:
            self._load_error = f"{type(e).__name__}: {e}"
            return None

        def generate(prompt: str) -> str:
            out = pipe(prompt, max_new_tokens=self.max_new_tokens, do_sample=False,
                       return_full_text=False)
            return out[0]["generated_text"]

        self._generator = generate
        return generate

    @staticmethod
    def prompt(results: Sequence[LabResult], sex: str | None, age: float | None) -> str:
        """The instruction given to the model: the facts (``results``), and what to keep."""
        who = ", ".join(x for x in [f"sex {sex}" if sex else "", f"age {age:g}" if age is not None else ""] if x)
        return (
            "Rewrite these blood test results as two or three sentences of clinical prose"
            + (f" for a patient ({who})" if who else "")
            + ". Mention the abnormal results first, each with its exact value, unit and "
            "reference range. Do not invent values; say 'not measured' for missing tests.\n"
            + _facts(results) + "\nNarrative:"
        )

    def narrate(self, panel: Mapping[str, Any] | pd.Series, sex: str | None = None,
                age: float | None = None, seed: int | np.random.SeedSequence = 0, narration: str = "all") -> str:
        """The model's narrative, or the template narrative with a warning when it fails.

        Parameters
        ----------
        panel, sex, age, seed
            As in :func:`narrate` (``seed`` words the template narrative of a fallback).
        narration : {"all", "abnormal"}
            Give the model every result, or only the abnormal ones.

        Returns
        -------
        str
        """
        _check_narration(narration)
        sex = None if is_missing(sex) else sex
        age = None if is_missing(age) else float(age)
        results = flag_panel(panel, sex, age)
        gen = self._load()
        if gen is None:
            return self._fallback(results, sex, age, seed,
                                  f"no text-generation model could be loaded ({self._load_error})", narration)
        facts = results if narration == "all" else [r for r in results if r.abnormal]
        text = str(gen(self.prompt(facts, sex, age))).strip()
        lost = [f"{r.value_text} {r.unit}" for r in results if r.abnormal
                and f"{r.value_text} {r.unit}" not in text]
        if not text or lost:
            return self._fallback(results, sex, age, seed,
                                  f"the model's text left out or changed {lost or 'everything'}", narration)
        self.last_source, self.last_message = "llm", ""
        return text

    def _fallback(self, results, sex, age, seed, why: str, narration: str) -> str:
        self.last_source = "template"
        self.last_message = f"LLM narrator fell back to the template narrator: {why}."
        warnings.warn(self.last_message, stacklevel=3)
        return narrate_results(results, sex, age, seed, narration)
