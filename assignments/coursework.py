"""The graded assignments: build the student notebooks and autograders, grade, and check seeds.

    python assignments/coursework.py build [NAME ...] [--student DIR] [--autograder DIR] [--no-run-tests]
    python assignments/coursework.py grade NAME SUBMISSION ... [--autograder DIR] [--out grades.csv]
    python assignments/coursework.py seeds NAME [--seeds 0-29] [--autograder DIR]

Each assignment is one source notebook, ``assignments/NAME/NAME.ipynb``, written once in
otter-grader's format: the questions with their solutions (``# BEGIN SOLUTION``) and their
tests (``# BEGIN TESTS``; a test whose configuration says ``hidden: true`` is hidden).

``build`` runs ``otter assign`` on each source (by default after checking that the reference
solution passes every test) and writes

* ``student/assignments/NAME/NAME.ipynb``: the student notebook, with stubs in place of the
  solutions and the public checks (``grader.check("q1_...")``);
* ``autograder/NAME/NAME-autograder.zip``: the autograder, with the hidden tests (for
  ``otter run`` on any machine, ``otter grade`` with Docker, or Gradescope);
* ``autograder/NAME/NAME.ipynb``: the reference solution, with every test.

``grade`` grades submissions (notebooks, or the zip files the export cell writes) without
Docker, with otter's local runner, and writes one row per submission: each question's score,
the total and the maximum. ``seeds`` grades the reference solution with ``SEED`` set to each
of the given seeds: every hidden test must pass for every student's cohort.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path(__file__).resolve().parent
SEED_LINE = re.compile(r"^SEED = .*$", re.M)


def assignment_names() -> list[str]:
    """The assignments, one folder each with a source notebook of the same name."""
    return sorted(p.parent.name for p in SOURCES.glob("*/*.ipynb") if p.stem == p.parent.name)


def source(name: str) -> Path:
    """The source notebook of assignment ``name``; an unknown name raises a ValueError listing the known ones."""
    path = SOURCES / name / f"{name}.ipynb"
    if not path.is_file():
        raise ValueError(f"unknown assignment {name!r}; expected one of {assignment_names()}")
    return path


def autograder_zip(name: str, autograder_dir: Path) -> Path:
    """The autograder zip of ``name`` written by :func:`build`."""
    path = Path(autograder_dir) / name / f"{name}-autograder.zip"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python assignments/coursework.py build {name}` first")
    return path


def build(name: str, student_dir: Path, autograder_dir: Path, run_tests: bool = True) -> dict[str, Path]:
    """Run ``otter assign`` on one assignment; place the student notebook and the autograder.

    Returns ``{"student": notebook, "reference": notebook, "autograder": zip}``. Each output
    folder is replaced whole, via a temporary folder.
    """
    from otter.assign import main as otter_assign

    src = source(name)
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        work = Path(tmp)
        (work / name).mkdir()
        shutil.copy(src, work / name / src.name)
        shutil.copy(SOURCES / "requirements.txt", work / "requirements.txt")   # the grading image's
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            try:
                otter_assign(str(work / name / src.name), str(work / "dist"), no_pdfs=True,
                             no_run_tests=not run_tests)
            except Exception as e:
                raise RuntimeError(f"otter assign failed on {src}:\n{quiet.getvalue()[-3000:]}") from e
        zips = list((work / "dist" / "autograder").glob(f"{name}-autograder_*.zip"))
        if len(zips) != 1:
            raise RuntimeError(f"otter assign wrote {len(zips)} autograder zips for {name}; expected one")
        zips[0].rename(zips[0].with_name(f"{name}-autograder.zip"))
        out = {}
        for kind, dest_root in (("student", Path(student_dir)), ("autograder", Path(autograder_dir))):
            dest = dest_root / name
            dest_root.mkdir(parents=True, exist_ok=True)
            partial = dest_root / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(work / "dist" / kind, partial)
            shutil.rmtree(dest, ignore_errors=True)
            partial.replace(dest)
            out[kind] = dest
    return {"student": out["student"] / src.name, "reference": out["autograder"] / src.name,
            "autograder": out["autograder"] / f"{name}-autograder.zip"}


def grade(submission: Path, autograder: Path) -> dict:
    """Grade one submission without Docker: ``{question: score}``, ``total``, ``possible``, ``max``.

    ``max`` holds each question's maximum; manually graded questions are not in the table.
    """
    from otter.api import grade_submission

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        results = grade_submission(str(submission), str(autograder), quiet=True)
    if results.catastrophic_error is not None:
        raise RuntimeError(f"grading {submission} failed: {results.catastrophic_error}")
    scores = {q: float(results.get_score(q)) for q in results.test_files}
    possible = {q: float(results.get_result(q).possible) for q in results.test_files}
    return {"scores": scores, "max": possible, "total": float(results.total), "possible": float(results.possible)}


def with_seed(reference: Path, seed: int, dest: Path) -> Path:
    """A copy of a notebook whose ``SEED = ...`` line sets ``seed`` (the line must be there)."""
    nb = json.loads(reference.read_text())
    found = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = "".join(cell["source"])
        new, k = SEED_LINE.subn(f"SEED = {int(seed)}", text)
        if k:
            cell["source"] = new.splitlines(keepends=True)
            found += k
    if found != 1:
        raise ValueError(f"{reference} has {found} lines 'SEED = ...'; expected exactly one")
    tmp = dest.with_name(dest.name + ".partial")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(dest)
    return dest


def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="assignments/coursework.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="student notebooks and autograders")
    b.add_argument("names", nargs="*")
    b.add_argument("--student", type=Path, default=ROOT / "student" / "assignments")
    b.add_argument("--autograder", type=Path, default=ROOT / "autograder")
    b.add_argument("--no-run-tests", action="store_true", help="skip grading the reference solution")
    g = sub.add_parser("grade", help="grade submissions into a table")
    g.add_argument("name")
    g.add_argument("submissions", nargs="+", type=Path)
    g.add_argument("--autograder", type=Path, default=ROOT / "autograder")
    g.add_argument("--out", type=Path, default=None, help="CSV file for the grade table")
    s = sub.add_parser("seeds", help="grade the reference solution on many cohort seeds")
    s.add_argument("name")
    s.add_argument("--seeds", default="0-9", help="e.g. 0-29 or 1,5,9")
    s.add_argument("--autograder", type=Path, default=ROOT / "autograder")
    a = ap.parse_args(argv)

    if a.cmd == "build":
        for name in a.names or assignment_names():
            paths = build(name, a.student, a.autograder, run_tests=not a.no_run_tests)
            print(f"{name}: student notebook {paths['student']}; autograder {paths['autograder']}")
        return 0

    import pandas as pd

    zip_path = autograder_zip(a.name, a.autograder)
    if a.cmd == "grade":
        rows = []
        for path in a.submissions:
            r = grade(path, zip_path)
            rows.append({"submission": path.name, **r["scores"], "total": r["total"], "possible": r["possible"]})
            print(f"{path.name}: {r['total']:g} / {r['possible']:g}")
        table = pd.DataFrame(rows)
        if a.out:
            tmp = a.out.with_name(a.out.name + ".partial")
            table.to_csv(tmp, index=False)
            tmp.replace(a.out)
            print(f"grade table written to {a.out}")
        else:
            print(table.to_string(index=False))
        return 0

    reference = zip_path.with_name(f"{a.name}.ipynb")
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in _seeds(a.seeds):
            r = grade(with_seed(reference, seed, Path(tmp) / reference.name), zip_path)
            lost = {q: f"{v:g}/{r['max'][q]:g}" for q, v in r["scores"].items() if v < r["max"][q]}
            print(f"seed {seed}: {r['total']:g} / {r['possible']:g}" + (f"  points lost: {lost}" if lost else ""))
            if lost:
                bad.append(seed)
    print("full marks for every seed" if not bad else f"points lost for seeds {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
