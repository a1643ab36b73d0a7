"""The graded assignments and the course helpers.

otter-grader builds each assignment's student notebook and autograder from its one source
notebook; the autograder, run locally without Docker, gives the reference solution full marks
(for the demonstration seed and for another cohort seed) and the untouched student notebook
zero on every graded question. Static checks read the sources: the otter format, public and
hidden tests for every graded question, no outputs, the Colab install at the book's version,
and the points the course page states.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assignments"))
sys.path.insert(0, str(ROOT / "tools"))
import coursework  # noqa: E402

import chapters as chapter_tools  # noqa: E402

NAMES = coursework.assignment_names()


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _questions(nb: dict) -> dict[str, dict]:
    """``{name: {"config": ..., "tests": [(hidden, source)], "solution": [(cell type, source)]}}`` of a source notebook."""
    out, cur, where = {}, None, None
    for c in nb["cells"]:
        text = _src(c)
        if c["cell_type"] == "raw":
            head = text.strip().splitlines()[0] if text.strip() else ""
            if head.startswith("# BEGIN QUESTION"):
                cfg = yaml.safe_load("\n".join(text.splitlines()[1:]))
                cur = out.setdefault(cfg["name"], {"config": cfg, "tests": [], "solution": []})
            elif head.startswith("# END QUESTION"):
                cur = None
            elif head.startswith("# BEGIN "):
                where = head.split()[2].lower()
            elif head.startswith("# END "):
                where = None
            continue
        if cur is not None and where == "tests":
            config = re.search(r'""" # BEGIN TEST CONFIG\n(.*?)""" # END TEST CONFIG', text, re.S)
            hidden = bool(config and yaml.safe_load(config.group(1)).get("hidden"))
            cur["tests"].append((hidden, text))
        elif cur is not None and where == "solution":
            cur["solution"].append((c["cell_type"], text))
    return out


@pytest.fixture(scope="module")
def sources() -> dict[str, dict]:
    return {name: json.loads(coursework.source(name).read_text()) for name in NAMES}


def test_there_are_three_assignments():
    assert NAMES == ["a1_survival_folder", "a2_pathway_stage", "a3_decision_curves"]


@pytest.mark.parametrize("name", NAMES)
def test_source_is_an_otter_assignment_without_outputs(name, sources):
    nb = sources[name]
    first = nb["cells"][0]
    assert first["cell_type"] == "raw" and _src(first).startswith("# ASSIGNMENT CONFIG")
    config = yaml.safe_load("\n".join(_src(first).splitlines()[1:]))
    assert config["name"] == name and config["tests"]["ok_format"] is False
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    dirty = [c["id"] for c in nb["cells"] if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"cells with outputs: {dirty}"
    seed_lines = [line for c in nb["cells"] if c["cell_type"] == "code" for line in _src(c).splitlines()
                  if line.startswith("SEED = ")]
    assert len(seed_lines) == 1 and seed_lines[0].endswith("# SOLUTION"), "one SEED line, left to the student"


@pytest.mark.parametrize("name", NAMES)
def test_every_graded_question_has_public_and_hidden_tests(name, sources):
    questions = _questions(sources[name])
    graded = {q: v for q, v in questions.items() if not v["config"].get("manual")}
    manual = {q: v for q, v in questions.items() if v["config"].get("manual")}
    assert len(graded) >= 3 and len(manual) == 1, f"{sorted(questions)}"
    for q, v in graded.items():
        hidden = [h for h, _ in v["tests"]]
        assert any(hidden) and not all(hidden), f"{q}: needs a public check and a hidden test"
        assert v["solution"], f"{q}: no solution"
        assert all("def test_" in src for _, src in v["tests"])
    for q, v in manual.items():
        assert v["config"]["points"] > 0 and not v["tests"], f"{q}: a written question is marked by hand"


@pytest.mark.parametrize("name", NAMES)
def test_colab_installs_the_books_version(name, sources):
    url, _ = chapter_tools.repo_settings()
    setup = next(_src(c) for c in sources[name]["cells"] if c["cell_type"] == "code" and "google.colab" in _src(c))
    assert f"oncolab @ git+{url}@v{chapter_tools.version()}" in setup
    pin = next(line for line in (ROOT / "requirements-lock.txt").read_text().splitlines() if line.startswith("otter-grader=="))
    assert pin in setup, f"Colab must install the locked {pin}"
    assert f'otter.Notebook("{name}.ipynb")' in setup


@pytest.mark.parametrize("name", NAMES)
def test_course_page_states_each_questions_points(name, sources):
    page = (ROOT / "book" / "course" / "assignments.md").read_text()
    for q, v in _questions(sources[name]).items():
        row = re.search(rf"^\|\s*`{q}`\s*\|[^|\n]*\|\s*(\d+)\s*\|", page, re.M)
        assert row, f"the course page has no row for {name} {q}"
        assert int(row.group(1)) == v["config"]["points"], f"{q}: the page says {row.group(1)} points"


def test_with_seed_sets_the_one_seed_line(tmp_path, sources):
    ref = tmp_path / "ref.ipynb"
    ref.write_text(json.dumps(sources[NAMES[0]]))
    out = json.loads(coursework.with_seed(ref, 42, tmp_path / "s.ipynb").read_text())
    lines = [line for c in out["cells"] for line in _src(c).splitlines() if line.startswith("SEED = ")]
    assert lines == ["SEED = 42"]
    nb = sources[NAMES[0]]
    nb2 = {**nb, "cells": [c for c in nb["cells"] if "SEED = " not in _src(c)]}
    ref.write_text(json.dumps(nb2))
    with pytest.raises(ValueError, match="0 lines 'SEED = ...'"):
        coursework.with_seed(ref, 1, tmp_path / "t.ipynb")


def test_unknown_assignment_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown assignment 'a9'.*a1_survival_folder"):
        coursework.source("a9")


# --------------------------------------------------------------------------------------------
# otter assign and the autograder (otter's local runner, no Docker)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("coursework")
    return {name: coursework.build(name, out / "student", out / "autograder", run_tests=False) for name in NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_holds_no_solution_and_no_hidden_test(name, built, sources):
    student = json.loads(built[name]["student"].read_text())
    text = "\n".join(" ".join(line.split()) for c in student["cells"] for line in _src(c).splitlines())
    meta = json.dumps(student["metadata"])
    inner = re.compile(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", re.S)
    secret, public = [], []
    questions = _questions(sources[name])
    answers = {src for v in questions.values() for _, src in v["solution"]}
    tests = {src for v in questions.values() for _, src in v["tests"]}
    for c in sources[name]["cells"]:
        src = _src(c)
        if src in tests:
            continue
        if src in answers:
            found = inner.findall(src)
            secret += found if found else ([src] if c["cell_type"] == "markdown" else [])
            secret += [line.split("=", 1)[1].replace("# SOLUTION", "") for line in src.splitlines()
                       if line.rstrip().endswith("# SOLUTION")]
            src = "" if not found and c["cell_type"] == "markdown" else inner.sub("", src)
        public.append(src)
    public_text = "\n".join(" ".join(line.split()) for src in public for line in src.splitlines())
    secret_lines = {" ".join(line.split()) for block in secret for line in block.splitlines()}
    checked = [t for t in secret_lines if len(t) > 12 and t not in public_text]
    assert len(checked) >= 10, "too few solution lines to check"
    leaked = [t for t in checked if t in text]
    assert not leaked, f"solution lines in the student notebook: {leaked[:3]}"
    for q, v in questions.items():
        for hidden, test in v["tests"]:
            fn = re.search(r"def (test_\w+)", test).group(1)
            assert (fn in meta) is not hidden, f"{q}: {fn} {'leaked' if hidden else 'missing'} in the student notebook"
    assert "SEED = ..." in text
    assert sum(f'grader.check("{q}")' in text for q in _questions(sources[name])) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_autograder_image_installs_the_book(name, built):
    """otter grade (Docker) and Gradescope build their image from the zip: the book's Python and version."""
    import zipfile

    url, _ = chapter_tools.repo_settings()
    with zipfile.ZipFile(built[name]["autograder"]) as z:
        env = yaml.safe_load(z.read("environment.yml"))
        tests = sorted(n for n in z.namelist() if n.startswith("tests/"))
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert f"oncolab @ git+{url}@v{chapter_tools.version()}" in pip
    graded = [q for q, v in _questions(json.loads(coursework.source(name).read_text())).items()
              if not v["config"].get("manual")]
    assert tests == sorted(f"tests/{q}.py" for q in graded)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_gets_full_marks(name, built):
    r = coursework.grade(built[name]["reference"], built[name]["autograder"])
    assert r["possible"] >= 10 and len(r["scores"]) >= 3
    lost = {q: f"{v:g}/{r['max'][q]:g}" for q, v in r["scores"].items() if v < r["max"][q]}
    assert not lost, f"the reference solution lost points: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_gets_full_marks_on_another_cohort(name, built, tmp_path):
    other = coursework.with_seed(built[name]["reference"], 3, tmp_path / f"{name}.ipynb")
    r = coursework.grade(other, built[name]["autograder"])
    lost = {q: f"{v:g}/{r['max'][q]:g}" for q, v in r["scores"].items() if v < r["max"][q]}
    assert not lost, f"seed 3: the reference solution lost points: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_untouched_student_notebook_gets_zero(name, built, sources):
    r = coursework.grade(built[name]["student"], built[name]["autograder"])
    graded = {q for q, v in _questions(sources[name]).items() if not v["config"].get("manual")}
    assert set(r["scores"]) == graded
    assert all(v == 0 for v in r["scores"].values()), f"points without an answer: {r['scores']}"
    assert r["possible"] == sum(_questions(sources[name])[q]["config"]["points"] for q in graded)


# --------------------------------------------------------------------------------------------
# oncolab.course
# --------------------------------------------------------------------------------------------
def test_cohort_seed_is_stable_and_depends_on_id_and_key():
    import hashlib

    from oncolab.course import SEED_LIMIT, cohort_seed

    expected = int.from_bytes(hashlib.sha256(b"term-1:s123").digest()[:8], "big") % SEED_LIMIT
    assert cohort_seed("s123", "term-1") == cohort_seed(" s123 ", "term-1") == expected
    seeds = {cohort_seed(f"s{i}", "term-1") for i in range(200)}
    assert len(seeds) == 200 and all(0 <= s < SEED_LIMIT for s in seeds)
    assert cohort_seed("s123", "term-2") != expected
    assert cohort_seed(123) == cohort_seed("123")


@pytest.mark.parametrize("bad, error, message", [(None, TypeError, "student_id must be a str or an int"),
                                                 (True, TypeError, "bool"), ("  ", ValueError, "must not be empty")])
def test_cohort_seed_refuses_bad_ids(bad, error, message):
    from oncolab.course import cohort_seed

    with pytest.raises(error, match=message):
        cohort_seed(bad)


def test_check_exercise_reports_every_problem_at_once():
    import pandas as pd
    import torch

    from oncolab.course import check_exercise

    ns = {"auc": 0.71, "table": pd.DataFrame({"a": [1.0, np.nan]}), "t": torch.ones(2), "model": object(),
          "stub": ..., "inf": float("inf"), "empty": pd.DataFrame(), "big": 1.2, "nan": np.array([np.nan])}
    assert check_exercise("ch00-ex1", ns, ["auc", "table", "t", "model"], bounds={"auc": (0, 1)}).startswith(
        "Exercise ch00-ex1")
    with pytest.raises(AssertionError) as info:
        check_exercise("ch00-ex2", ns, ["missing", "stub", "inf", "empty", "big", "nan"], bounds={"big": (0, 1)})
    msg = str(info.value)
    for part in ("ch00-ex2", "`missing` is not defined", "`stub` is still a placeholder", "`inf` = inf is not a finite",
                 "`empty` is empty", "`big` = 1.2 lies outside [0, 1]", "`nan` holds no finite number"):
        assert part in msg, part
    with pytest.raises(ValueError, match="bounds given for \\['x'\\]"):
        check_exercise("e", ns, ["auc"], bounds={"x": (0, 1)})
    with pytest.raises(TypeError, match="names must be a list"):
        check_exercise("e", ns, "auc")
