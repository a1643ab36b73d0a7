"""The book's structure: chapters listed, sources without outputs, shape, and the build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
import chapters as chapter_tools  # noqa: E402


def _toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []) or []:
            files.add(ch["file"])
            for sec in ch.get("sections", []) or []:
                files.add(sec["file"])
    return files


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in chapters/"


def test_every_chapter_is_in_the_toc():
    listed = _toc_files()
    missing = [p.relative_to(ROOT).with_suffix("").as_posix() for p in CHAPTERS
               if p.relative_to(ROOT).with_suffix("").as_posix() not in listed]
    assert not missing, f"chapters not listed in _toc.yml: {missing}"


def test_every_toc_entry_exists():
    missing = [f for f in _toc_files()
               if not any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_sources_carry_no_outputs(nb_path):
    nb = json.loads(nb_path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{nb_path.name}: cells {dirty} have outputs; run tools/chapters.py sync"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_shape(nb_path):
    assert chapter_tools.problems(nb_path) == []


@pytest.mark.book
def test_book_builds_without_warnings(tmp_path):
    """The whole book builds with warnings as errors.

    Execution is off: the chapters were executed above (SMOKE mode, papermill) and their
    executed copies in _build/smoke/ are built in place of the sources, so the pages show real
    outputs and figures. The HTML goes to _build/test-book/_build/html, where the browser check
    (tests/test_browser.py) finds it.
    """
    import shutil

    stage = tmp_path / "book"
    stage.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, stage / name)
    shutil.copytree(ROOT / "book", stage / "book")
    (stage / "chapters").mkdir()
    smoke = ROOT / "_build" / "smoke"
    for nb in CHAPTERS:
        executed = smoke / nb.name
        fresh = executed.exists() and executed.stat().st_mtime >= nb.stat().st_mtime
        shutil.copy(executed if fresh else nb, stage / "chapters" / nb.name)
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["execute"]["execute_notebooks"] = "off"
    (stage / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = ROOT / "_build" / "test-book"
    shutil.rmtree(out, ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    res = subprocess.run([str(jb), "build", str(stage), "--path-output", str(out), "-W", "-n", "--keep-going"],
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        lines = (res.stdout + res.stderr).splitlines()
        warnings = [line for line in lines if "WARNING" in line or "ERROR" in line]
        pytest.fail("the book build failed:\n" + "\n".join(warnings[:40] or lines[-60:]))
    assert (out / "_build" / "html" / "index.html").exists()


def _cells(nb_path: Path) -> list[dict]:
    return json.loads(nb_path.read_text())["cells"]


def _text(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_exercise_has_a_solution(nb_path):
    """Each exercise label has a solution block: start, at least one solution code cell, end."""
    cells = _cells(nb_path)
    exercises, solved, open_label, has_code = [], [], None, False
    for c in cells:
        src = _text(c)
        if c["cell_type"] == "markdown":
            exercises += re.findall(r"```\{exercise\}[^\n]*\n:label:\s*(\S+)", src)
            for kind, label in re.findall(r"\{solution-(start|end)\}\s*(\S*)", src):
                if kind == "start":
                    assert open_label is None, f"{nb_path.name}: solution {label} starts inside {open_label}"
                    open_label, has_code = label, False
                else:
                    assert open_label is not None, f"{nb_path.name}: a solution ends that never started"
                    assert has_code, f"{nb_path.name}: solution {open_label} has no code cell tagged 'solution'"
                    solved.append(open_label)
                    open_label = None
        elif open_label is not None and "solution" in c.get("metadata", {}).get("tags", []):
            has_code = True
    assert open_label is None, f"{nb_path.name}: solution {open_label} never ends"
    missing = [e for e in exercises if e not in solved]
    assert not missing, f"{nb_path.name}: exercises without a solution: {missing}"
    assert sorted(solved) == sorted(exercises), f"{nb_path.name}: solutions {solved} for exercises {exercises}"


def _bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), re.M))


def test_bibliography_keys_are_unique():
    keys = re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), re.M)
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert keys and not dupes, f"duplicate keys in book/references.bib: {dupes}"


def test_every_citation_is_in_the_bibliography():
    keys = _bib_keys()
    pages = [(p.relative_to(ROOT).as_posix(), "\n".join(_text(c) for c in _cells(p) if c["cell_type"] == "markdown"))
             for p in CHAPTERS]
    pages += [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in sorted((ROOT / "book").rglob("*.md"))]
    unknown = sorted({(where, k.strip()) for where, text in pages
                      for group in re.findall(r"\{cite(?::\w+)?\}`([^`]*)`", text) for k in group.split(",")
                      if k.strip() not in keys})
    assert not unknown, f"citations of keys missing from book/references.bib: {unknown}"


def test_notation_page_matches_the_code():
    """Optical density is a natural logarithm and stain vectors are the rows of the stain matrix,
    as the notation page says and as the package computes."""
    import numpy as np

    from oncolab.data import stain_matrix
    from oncolab.vision.pathology import rgb_to_od

    notation = (ROOT / "book" / "notation.md").read_text()
    assert r"\mathrm{OD} = -\ln(I / I_0)" in notation and "one **row** per stain" in notation
    img = np.arange(1, 256, dtype=np.uint8)[None, :, None].repeat(3, axis=2)
    assert np.allclose(rgb_to_od(img), -np.log(img / 255.0))
    m = stain_matrix("A")
    assert m.shape == (2, 3)   # rows: haematoxylin, eosin; columns: R, G, B
