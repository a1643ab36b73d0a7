"""The pure parts of benchmarks/bench_chapters.py: choosing chapters, reading time, merging and
writing the table, the course pages' markdown, and the targets. Nothing here executes a chapter."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("bench_chapters")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    nb = {"cells": [{"cell_type": kind, "metadata": {}, "source": src} for kind, src in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def _row(chapter, mode, wall, rc=0, cores=2):
    return {"chapter": chapter, "mode": mode, "wall_s": wall, "cpu_s": wall * 0.9, "peak_mib": 500.0,
            "returncode": rc, "cores": cores, "load_before": 1.0, "load_after": 1.5,
            "measured": "2026-01-02T10:00:00+00:00"}


def test_parse_time_v_is_the_presets_benchmark_one(bench):
    import bench_presets

    assert bench.parse_time_v is bench_presets.parse_time_v


def test_chapter_paths_by_stem_and_number(bench, tmp_path):
    for stem in ("01_a", "02_b", "10_c"):
        _notebook(tmp_path / f"{stem}.ipynb", [("markdown", "# Chapter")])
    assert [p.stem for p in bench.chapter_paths([], tmp_path)] == ["01_a", "02_b", "10_c"]
    assert [p.stem for p in bench.chapter_paths(["10", "1", "01_a"], tmp_path)] == ["01_a", "10_c"]
    with pytest.raises(ValueError, match="'7'"):
        bench.chapter_paths(["7"], tmp_path)
    with pytest.raises(ValueError, match="'nope'"):
        bench.chapter_paths(["nope"], tmp_path)


def test_every_book_chapter_is_found(bench):
    found = [p.name for p in bench.chapter_paths([])]
    assert found == sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb"))


def test_reading_minutes_counts_prose_and_code(bench, tmp_path):
    prose = " ".join(["word"] * 250)
    code = "x = np.zeros(3)\n" * 50            # 3 words a line
    nb = _notebook(tmp_path / "01_x.ipynb", [("markdown", "# Chapter 1. Title\n" + prose), ("code", code),
                                              ("raw", "not counted " * 100)])
    words = 4 + 250 + 150
    assert bench.reading_minutes(nb) == math.ceil(words / 200)
    assert bench.reading_minutes(nb, words_per_minute=100) == math.ceil(words / 100)
    with pytest.raises(ValueError, match="words_per_minute"):
        bench.reading_minutes(nb, 0)
    assert bench.chapter_title(nb) == "Title"


def test_merge_replaces_rows_of_the_same_chapter_and_mode(bench):
    old = bench.merge_rows(None, [_row("02_b", "defaults", 100), _row("01_a", "smoke", 20),
                                  _row("01_a", "defaults", 150)])
    assert list(zip(old["chapter"], old["mode"])) == [("01_a", "defaults"), ("01_a", "smoke"), ("02_b", "defaults")]
    new = bench.merge_rows(old, [_row("01_a", "defaults", 90)])
    assert len(new) == 3
    assert new.set_index(["chapter", "mode"]).loc[("01_a", "defaults"), "wall_s"] == 90
    assert new.set_index(["chapter", "mode"]).loc[("02_b", "defaults"), "wall_s"] == 100


def test_write_and_read_round_trip_without_partial_files(bench, tmp_path):
    table = bench.merge_rows(None, [_row("01_a", "defaults", 123.456), _row("02_b", "defaults", 7.0, rc=1)])
    path = tmp_path / "results" / "chapters.csv"
    bench.write_table(table, path, {"command": "x", "cores": 2})
    back = bench.read_table(path)
    assert list(back["chapter"]) == ["01_a", "02_b"]
    assert back["wall_s"].tolist() == pytest.approx([123.46, 7.0])
    assert json.loads(path.with_suffix(".json").read_text()) == {"command": "x", "cores": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["chapters.csv", "chapters.json"]
    assert bench.read_table(tmp_path / "none.csv") is None


def test_targets_hold_miss_or_cannot_tell(bench):
    chapters = ["01_a", "02_b"]
    table = bench.merge_rows(None, [_row("01_a", "defaults", 200), _row("02_b", "defaults", 230),
                                    _row("01_a", "smoke", 100), _row("02_b", "smoke", 100)])
    verdicts = [t["holds"] for t in bench.check_targets(table, chapters)]
    assert verdicts == [True, True, True]

    slow = bench.merge_rows(table, [_row("02_b", "defaults", bench.CHAPTER_TARGET_S + 1),
                                    _row("02_b", "smoke", bench.SMOKE_TARGET_S)])
    book, one, smoke = bench.check_targets(slow, chapters)
    assert one["holds"] is False and "02_b" in one["detail"]
    assert book["holds"] is True            # 200 + 241 s is under 20 minutes
    assert smoke["holds"] is False          # 100 + 360 s is not under 6 minutes

    long_book = bench.merge_rows(None, [_row(f"{i:02d}_x", "defaults", 230) for i in range(1, 7)])
    book, one, _ = bench.check_targets(long_book, [f"{i:02d}_x" for i in range(1, 7)])
    assert book["holds"] is False and one["holds"] is True    # 6 x 230 s = 23 min


def test_targets_cannot_tell_from_part_of_the_book(bench):
    table = bench.merge_rows(None, [_row("01_a", "defaults", 100), _row("02_b", "defaults", 50, rc=1)])
    book, one, smoke = bench.check_targets(table, ["01_a", "02_b", "03_c"])
    assert book["holds"] is None and "02_b" in book["detail"] and "03_c" in book["detail"]
    assert one["holds"] is None and "1 of 3" in one["detail"]
    assert smoke["holds"] is None
    over = bench.merge_rows(table, [_row("03_c", "defaults", bench.CHAPTER_TARGET_S + 5)])
    assert bench.check_targets(over, ["01_a", "02_b", "03_c", "04_d"])[1]["holds"] is False


def test_markdown_table_reads_the_measurements(bench, tmp_path):
    nbs = [_notebook(tmp_path / "01_a.ipynb", [("markdown", "# Chapter 1. First\n" + "w " * 390)]),
           _notebook(tmp_path / "02_b.ipynb", [("markdown", "# Chapter 2. Second")])]
    table = bench.merge_rows(None, [_row("01_a", "defaults", 151.4), _row("01_a", "smoke", 33.0),
                                    _row("02_b", "defaults", 99.0, rc=1)])
    text = bench.markdown_table(table, nbs, {"versions": {"torch": "9.9", "python": "3.11"}})
    lines = text.splitlines()
    first = next(line for line in lines if "1 First" in line)
    assert [c.strip() for c in first.strip("|").split("|")] == [
        "{doc}`1 First </chapters/01_a>`", "2", "151", "136", "500", "33"]
    second = next(line for line in lines if "2 Second" in line)
    assert "not measured" in second            # a failed run is not a measurement
    assert "1 of 2 measured" in text and "PyTorch 9.9" in text and "2 CPU core(s)" in text
    assert "load average 1.0 to 1.5" in text
    empty = bench.markdown_table(None, nbs)
    assert "Not measured yet" in empty and empty.count("not measured") == 2


def test_committed_table_matches_the_results(bench):
    """The course pages' table is the one the script makes from the committed CSV."""
    meta_path = bench.RESULTS.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    expected = bench.markdown_table(bench.read_table(bench.RESULTS), bench.chapter_paths([]), meta)
    assert bench.TABLE_MD.read_text() == expected, "run: python benchmarks/bench_chapters.py --table-only"


def test_recorded_command_leaves_folders_out(bench):
    cmd = bench.recorded_command(["1", "--keep", "/some/where", "--smoke", "--results=/x.csv"])
    assert cmd == "python benchmarks/bench_chapters.py 1 --keep ... --smoke --results=..."
    assert "/some/where" not in cmd


def test_run_chapter_refuses_an_unknown_mode(bench, tmp_path):
    with pytest.raises(ValueError, match="'fast'"):
        bench.run_chapter(ROOT / "chapters" / "01_multimodal_data.ipynb", "fast", tmp_path, 2)


def test_results_table_has_the_documented_columns(bench):
    table = bench.read_table(bench.RESULTS)
    if table is None:
        pytest.skip("no measurements committed yet")
    assert set(bench.COLUMNS) <= set(table.columns)
    assert set(table["mode"]) <= set(bench.MODES)
    assert not table.duplicated(["chapter", "mode"]).any()
    assert isinstance(table, pd.DataFrame)
