"""The chapters' prose says only what the code computes or what a cited source reports.

A number written in a chapter's markdown is fixed text: a re-run with another seed, another
cohort size or another library version cannot change it. So every decimal number, percentage
or number written with thousands separators in a chapter's prose must be one of

* a constant of the chapter's own code (a parameter, a literal the code uses or asserts): its
  value appears among the numeric literals of the chapter's code cells; or
* a cited constant, listed below with the reason it may stand as text (a figure a paper
  reports, an illustrative number in a definition).

Numbers that a run produces (an AUC, a ranking, a count of events) belong in the output: a
sentence the code prints. They are not checked against executed notebooks on purpose: a number
in the prose that happens to equal one run's output is exactly the fixed claim a re-run can
contradict. Only the chapters' sources are read, so the test needs no executed notebooks.

The test also refuses citations written as plain text ("He et al. (2016)"): the book cites with
``{cite}`` roles against ``book/references.bib``, so that every reference links to the
bibliography.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

#: Chapters not yet held to these rules, each with the reason.
EXCLUDED: dict[str, str] = {}

#: Numbers a chapter may state as text, by chapter, each with the reason.
ALLOWED = {
    "03_detection": {
        "0.7925": "test mAP@0.5 reported by Sang et al. (2025) for their YOLOv5 detector on their own "
                  "radiographs, quoted with its source",
        "3,746": "the number of radiographs of the BTXRD dataset, as its authors (Yao et al., 2025) report",
        "1,867": "the number of BTXRD radiographs with a tumour box, as its authors report",
    },
    "07_gene_expression": {
        "20,000": "the order of the number of human protein-coding genes, an illustration of scale",
    },
    "13_evaluation": {
        "70%": "an illustrative probability in the definition of calibration, not a result",
    },
    "15_scaling_out": {
        "80,000": "the side of a real slide, which the next cell computes from the code's constants "
                  "(0.25 micrometre per pixel, a 20 mm side)",
        "100,000": "the other side, computed the same way from a 25 mm side",
    },
}

NUMBER = re.compile(r"(?<![\w.@/\-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+(?:\.\d+)?\s?%)(?![\w.]*\d)")
CODE_NUMBER = re.compile(r"(?<![\w.])(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
PLAIN_CITATION = re.compile(
    r"\b[A-Z][\w'\-]+ et al\.?,?\s*\(?(?:19|20)\d{2}\b"                     # He et al. (2016), He et al., 2016
    r"|\b[A-Z][\w'\-]+ and [A-Z][\w'\-]+,?\s*\(?(?:19|20)\d{2}\)"           # Kaplan and Meier (1958)
    r"|\([A-Z][\w'\-]+(?: and [A-Z][\w'\-]+)?,\s*(?:19|20)\d{2}\)")         # (Cox, 1972)


def _source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _cells(nb_path: Path) -> tuple[list[str], list[str]]:
    nb = json.loads(nb_path.read_text())
    markdown = [_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    code = [_source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    return markdown, code


def _prose(markdown: str) -> str:
    """Markdown without what is not a statement: link targets, URLs, citation roles, arXiv ids."""
    text = re.sub(r"\]\([^)]*\)", "]", markdown)
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"\{cite(?::\w+)?\}`[^`]*`", "", text)
    return re.sub(r"arXiv:\s*\d{4}\.\d{4,5}", "", text)


def prose_numbers(markdown: str) -> list[str]:
    """The decimal numbers, percentages and numbers with thousands separators of a markdown text."""
    return NUMBER.findall(_prose(markdown))


def code_values(code: str) -> set[float]:
    """The values of the numeric literals of some Python source (``1_000`` read as 1000)."""
    return {round(float(t), 10) for t in CODE_NUMBER.findall(re.sub(r"(?<=\d)_(?=\d)", "", code))}


def unsupported(token: str, values: set[float]) -> bool:
    """Whether a prose number is neither a value of the code nor, for a percentage, its fraction."""
    t = token.replace(",", "").replace(" ", "")
    if t.endswith("%"):
        v = float(t[:-1])
        return round(v / 100, 10) not in values and round(v, 10) not in values
    return round(float(t), 10) not in values


def test_the_number_scanner_finds_what_it_should():
    md = ("AUC 0.83 (83% of pairs), 11,689,512 parameters, mAP@0.5, a [link](https://x.org/v0.1.0), "
          "{cite:t}`he2016deep`, arXiv:1603.07285, year 2016 and 5 folds")
    assert prose_numbers(md) == ["0.83", "83%", "11,689,512"]
    values = code_values("x = 0.83\nn = 11_689_512\nlevel = 0.95")
    assert not unsupported("0.83", values) and not unsupported("11,689,512", values)
    assert not unsupported("95%", values) and not unsupported("83%", values)
    assert unsupported("84%", values) and unsupported("0.84", values) and unsupported("11,689,513", values)


def test_the_citation_scanner_finds_what_it_should():
    for bad in ("as He et al. (2016) showed", "He et al., 2016", "Kaplan and Meier (1958)", "(Cox, 1972)"):
        assert PLAIN_CITATION.search(bad), bad
    for good in ("{cite:t}`he2016deep` showed", "the 2016 paper", "chapters 8 and 9 (GBSG2)"):
        assert not PLAIN_CITATION.search(_prose(good)), good


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_prose_numbers_come_from_the_code_or_a_cited_source(nb_path):
    if nb_path.stem in EXCLUDED:
        pytest.skip(EXCLUDED[nb_path.stem])
    markdown, code = _cells(nb_path)
    values = code_values("\n".join(code))
    allowed = ALLOWED.get(nb_path.stem, {})
    bad = sorted({tok for md in markdown for tok in prose_numbers(md)
                  if tok not in allowed and unsupported(tok, values)})
    assert not bad, (f"{nb_path.name}: the prose states {bad}, which no code cell of the chapter computes "
                     "or asserts; print run-dependent numbers from the code, or list a cited constant "
                     "in ALLOWED with its reason")


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_allowed_numbers_are_still_used(nb_path):
    """An allow-list entry that the chapter no longer states is stale and must go."""
    markdown, _ = _cells(nb_path)
    stated = {tok for md in markdown for tok in prose_numbers(md)}
    stale = sorted(set(ALLOWED.get(nb_path.stem, {})) - stated)
    assert not stale, f"{nb_path.name}: ALLOWED lists {stale}, which the prose no longer states"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_citations_use_cite_roles(nb_path):
    if nb_path.stem in EXCLUDED:
        pytest.skip(EXCLUDED[nb_path.stem])
    markdown, _ = _cells(nb_path)
    found = [m.group(0) for md in markdown for m in PLAIN_CITATION.finditer(_prose(md))]
    assert not found, f"{nb_path.name}: plain-text citations {found}; cite with {{cite}} against book/references.bib"
