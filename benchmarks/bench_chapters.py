"""Wall-clock time, CPU time and peak memory of each chapter executed with its defaults.

    python benchmarks/bench_chapters.py [CHAPTER ...] [--smoke] [--no-defaults] [--cores 2] [--keep DIR]
    python benchmarks/bench_chapters.py --table-only

Each chapter runs as its own process, `papermill CHAPTER.ipynb OUT.ipynb -k oncolab` with every
parameter at its default (with `--smoke`, a second pass with `-p SMOKE True`), under
`/usr/bin/time -v`, which reports the wall-clock time, the CPU time (user + system, the kernel
and every process it waited for included) and the peak resident memory (of the largest single
process: the kernel, as a rule). With `--cores N` on a machine with more cores the process is
pinned to the first N (`taskset`), and the thread pools of NumPy and PyTorch are capped to N, so
that the numbers stand for a machine of N cores. A chapter is named by its file stem
(`01_multimodal_data`) or its number (`1`, `01`); without names every chapter is run. On a
machine without network access set `HF_HUB_OFFLINE=1 ONCOLAB_OFFLINE=1` first.

Targets, on 2 CPU cores:

* the whole book (every chapter with its defaults, as `make book` executes them) under 20 minutes;
* no chapter over 4 minutes with its defaults;
* the SMOKE run of all chapters under 6 minutes.

The script prints which targets hold. The book target is read from the sum of the chapters'
wall-clock times: `make book` adds the page build (a minute or so) to it.

Results go to `benchmarks/results/chapters.csv`, one row per chapter and mode (`defaults` or
`smoke`); running a few chapters replaces their rows and keeps the others. A sidecar
`chapters.json` records how the latest run was made (command, date, cores, versions).
`book/course/chapter_times.md`, the table the course pages include, is regenerated from the CSV
after every run (`--table-only`: only that): per chapter, the reading time (estimated from the
chapter's words, see :func:`reading_minutes`) and the measured times.

On a shared machine the wall-clock time depends on the other processes: the load average before
and after each run is recorded beside it, and the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_presets import parse_time_v, pinned
from common import versions, write_atomic

CHAPTER_LIBRARIES = ("oncolab", "torch", "numpy", "scikit-learn", "papermill", "jupyter-book")

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
RESULTS = ROOT / "benchmarks" / "results" / "chapters.csv"
TABLE_MD = ROOT / "book" / "course" / "chapter_times.md"
KERNEL = "oncolab"
MODES = ("defaults", "smoke")
COLUMNS = ["chapter", "mode", "wall_s", "cpu_s", "peak_mib", "returncode", "cores", "load_before",
           "load_after", "measured"]

#: The targets in seconds: every chapter with its defaults together, any one chapter with its
#: defaults, every chapter in SMOKE mode together.
BOOK_TARGET_S = 20 * 60
CHAPTER_TARGET_S = 4 * 60
SMOKE_TARGET_S = 6 * 60

#: Reading speed of the reading-time estimate, in words per minute.
WORDS_PER_MINUTE = 200


def chapter_paths(names: list[str], folder: Path = CHAPTERS) -> list[Path]:
    """The notebooks named by file stem or number, in book order (all of them for no name).

    Parameters
    ----------
    names : list of str
        Stems such as ``"01_multimodal_data"`` or numbers such as ``"1"`` or ``"01"``.
    folder : Path
        The folder of the chapters.

    Returns
    -------
    list of Path
        The notebooks, sorted, without repeats.

    Raises
    ------
    ValueError
        When a name matches no chapter, or a number matches more than one.
    """
    available = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return available
    chosen = set()
    for name in names:
        if name.isdigit():
            hits = [p for p in available if int(p.stem.split("_")[0]) == int(name)]
        else:
            hits = [p for p in available if p.stem == Path(name).stem]
        if len(hits) != 1:
            raise ValueError(f"chapter {name!r} matches {len(hits)} notebooks; expected one of "
                             f"{[p.stem for p in available]} or their numbers")
        chosen.add(hits[0])
    return sorted(chosen)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def chapter_title(nb_path: Path) -> str:
    """The chapter's title: its first heading without the ``Chapter N.`` prefix.

    Parameters
    ----------
    nb_path : Path
        The notebook.

    Returns
    -------
    str
        For example ``"Multimodal oncology data"``; the file stem when there is no heading.
    """
    cells = json.loads(nb_path.read_text())["cells"]
    for line in (_source(cells[0]).splitlines() if cells else []):
        if line.startswith("# "):
            return re.sub(r"^Chapter\s+\d+\.\s*", "", line[2:].strip())
    return nb_path.stem


def reading_minutes(nb_path: Path, words_per_minute: float = WORDS_PER_MINUTE) -> int:
    """Reading time of a chapter: the words of its prose and code at ``words_per_minute``.

    Every markdown and code cell counts (exercises and solutions included); a word is a run of
    characters between white space, so ``x = np.zeros(3)`` is three words. The estimate is for
    reading; running the code and doing the exercises take longer.

    Parameters
    ----------
    nb_path : Path
        The notebook.
    words_per_minute : float
        Reading speed, positive.

    Returns
    -------
    int
        Minutes, rounded up.

    Raises
    ------
    ValueError
        When ``words_per_minute`` is not positive.
    """
    if not words_per_minute > 0:
        raise ValueError(f"words_per_minute must be positive, got {words_per_minute!r}")
    cells = json.loads(nb_path.read_text())["cells"]
    words = sum(len(_source(c).split()) for c in cells if c["cell_type"] in ("markdown", "code"))
    return math.ceil(words / words_per_minute)


def run_chapter(nb_path: Path, mode: str, out: Path, cores: int | None) -> dict:
    """One chapter executed by papermill under ``/usr/bin/time -v``; its row of the table.

    Parameters
    ----------
    nb_path : Path
        The notebook.
    mode : str
        ``"defaults"`` (every parameter at its default) or ``"smoke"`` (``SMOKE=True``).
    out : Path
        Folder for the executed notebook; the chapter runs with it as working directory.
    cores : int or None
        Cores to run on (None: no limit).

    Returns
    -------
    dict
        The row: the columns of :data:`COLUMNS` and, for a failed run, ``error``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {list(MODES)}")
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "papermill", str(nb_path), str(out / nb_path.name),
           "-k", KERNEL, "--cwd", str(out), "--no-progress-bar"]
    if mode == "smoke":
        cmd += ["-p", "SMOKE", "True"]
    cmd, env = pinned(cmd, cores)
    load0 = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    row = {"chapter": nb_path.stem, "mode": mode, "returncode": proc.returncode, "cores": cores or os.cpu_count(),
           "load_before": load0, "load_after": os.getloadavg()[0],
           "measured": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    try:
        row.update(parse_time_v(proc.stderr))
    except ValueError:
        row.update(wall_s=float("nan"), cpu_s=float("nan"), peak_mib=float("nan"))
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if "Command exited" not in line]
        row["error"] = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "?")
    return row


def merge_rows(table: pd.DataFrame | None, rows: list[dict]) -> pd.DataFrame:
    """The table with ``rows`` in place of its rows of the same chapter and mode.

    Parameters
    ----------
    table : pandas.DataFrame or None
        The table so far (columns :data:`COLUMNS`, perhaps ``error``), or None.
    rows : list of dict
        New rows, each with at least ``chapter`` and ``mode``.

    Returns
    -------
    pandas.DataFrame
        One row per (chapter, mode), sorted by chapter, then ``defaults`` before ``smoke``.
    """
    new = pd.DataFrame(rows, columns=list(dict.fromkeys(COLUMNS + [k for r in rows for k in r])))
    if table is not None and len(table):
        keys = set(zip(new["chapter"], new["mode"]))
        keep = [(c, m) not in keys for c, m in zip(table["chapter"], table["mode"])]
        new = pd.concat([table[keep], new], ignore_index=True)
    new["mode"] = pd.Categorical(new["mode"], categories=list(MODES), ordered=True)
    new = new.sort_values(["chapter", "mode"]).reset_index(drop=True)
    new["mode"] = new["mode"].astype(str)
    return new


def write_table(table: pd.DataFrame, path: Path, meta: dict | None = None) -> None:
    """Write the table as CSV (and ``meta`` as the JSON beside it), each via a temporary file.

    Parameters
    ----------
    table : pandas.DataFrame
        The rows (:func:`merge_rows`).
    path : Path
        The CSV file; the sidecar is the same path with ``.json``.
    meta : dict, optional
        How the latest run was made.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(table.to_csv(index=False, float_format="%.2f"), path)
    if meta is not None:
        write_atomic(json.dumps(meta, indent=1) + "\n", path.with_suffix(".json"))


def read_table(path: Path) -> pd.DataFrame | None:
    """The table written by :func:`write_table`, or None when there is none yet."""
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"chapter": str, "mode": str})


def check_targets(table: pd.DataFrame, chapters: list[str]) -> list[dict]:
    """Which of the three targets hold, judged on the table's successful runs.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``chapter``, ``mode``, ``wall_s`` and ``returncode``.
    chapters : list of str
        Every chapter of the book (stems): the totals need all of them.

    Returns
    -------
    list of dict
        One per target: ``target`` (its words), ``holds`` (True, False, or None when the table
        cannot tell: a chapter not measured, or failed) and ``detail`` (the numbers behind it).
    """
    ok = table[table["returncode"] == 0]

    def times(mode):
        return ok[ok["mode"] == mode].set_index("chapter")["wall_s"].astype(float)

    def failed(mode):
        return sorted(table[(table["mode"] == mode) & (table["returncode"] != 0)]["chapter"])

    def total(mode, limit, words):
        t = times(mode).reindex(chapters)
        missing = [c for c in chapters if pd.isna(t.get(c))]
        if missing:
            bad = failed(mode)
            why = f"failed: {', '.join(bad)}; " if bad else ""
            return {"target": words, "holds": None,
                    "detail": f"{why}{len(chapters) - len(missing)} of {len(chapters)} chapters measured "
                              f"({t.sum():.0f} s so far); not measured: {', '.join(missing)}"}
        return {"target": words, "holds": bool(t.sum() < limit),
                "detail": f"{t.sum():.0f} s for {len(chapters)} chapters, against {limit:.0f} s"}

    each = times("defaults")
    over = each[each >= CHAPTER_TARGET_S]
    if len(each) == 0:
        one = {"holds": None, "detail": "no chapter measured with its defaults"}
    else:
        slowest = each.idxmax()
        one = {"holds": bool(len(over) == 0) if len(each) == len(chapters) or len(over) else None,
               "detail": f"slowest {slowest} {each[slowest]:.0f} s; "
                         + (f"over {CHAPTER_TARGET_S:.0f} s: {', '.join(over.index)}" if len(over)
                            else f"none over {CHAPTER_TARGET_S:.0f} s")
                         + ("" if len(each) == len(chapters) else f" ({len(each)} of {len(chapters)} measured)")}
    return [total("defaults", BOOK_TARGET_S, f"the whole book under {BOOK_TARGET_S // 60} minutes"),
            {"target": f"no chapter over {CHAPTER_TARGET_S // 60} minutes", **one},
            total("smoke", SMOKE_TARGET_S, f"the SMOKE run of all chapters under {SMOKE_TARGET_S // 60} minutes")]


def markdown_table(table: pd.DataFrame | None, nb_paths: list[Path], meta: dict | None = None) -> str:
    """The course pages' table: per chapter, reading time and the measured times with defaults.

    Parameters
    ----------
    table : pandas.DataFrame or None
        The measurements (:func:`read_table`); None when there are none.
    nb_paths : list of Path
        The chapters, in book order.
    meta : dict, optional
        The sidecar of the latest run, for the note under the table.

    Returns
    -------
    str
        MyST markdown: a note that the file is generated, the table and a note on how it was
        measured.
    """
    rows = table if table is not None else pd.DataFrame(columns=COLUMNS)
    ok = rows[(rows["returncode"] == 0) & (rows["mode"] == "defaults")].set_index("chapter")
    smoke = rows[(rows["returncode"] == 0) & (rows["mode"] == "smoke")].set_index("chapter")
    lines = ["% Generated by benchmarks/bench_chapters.py from benchmarks/results/chapters.csv: do not edit.",
             "",
             "| Chapter | Reading (min) | Run with defaults (s) | CPU (s) | Peak memory (MiB) | SMOKE run (s) |",
             "|---|--:|--:|--:|--:|--:|"]
    for p in nb_paths:
        number = int(p.stem.split("_")[0])
        cells = [f"{{doc}}`{number} {chapter_title(p)} </chapters/{p.stem}>`", str(reading_minutes(p))]
        if p.stem in ok.index:
            r = ok.loc[p.stem]
            cells += [f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}", f"{r['peak_mib']:.0f}"]
        else:
            cells += ["not measured"] + [""] * 2
        cells.append(f"{smoke.loc[p.stem, 'wall_s']:.0f}" if p.stem in smoke.index else "")
        lines.append("| " + " | ".join(cells) + " |")
    totals = []
    for name, measured in (("all chapters with their defaults", ok), ("all in SMOKE mode", smoke)):
        done = [p.stem for p in nb_paths if p.stem in measured.index]
        if done:
            totals.append(f"{name}: {measured.loc[done, 'wall_s'].sum() / 60:.1f} min"
                          + ("" if len(done) == len(nb_paths) else f" ({len(done)} of {len(nb_paths)} measured)"))
    cores = sorted({int(c) for c in ok["cores"].dropna()}) if "cores" in ok else []
    dates = sorted(str(d)[:10] for d in ok["measured"].dropna()) if "measured" in ok else []
    how = (f"Measured on {' and '.join(map(str, cores))} CPU core(s)"
           + (f", {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "") if dates else "")
           if cores else "Not measured yet")
    loads = pd.concat([ok["load_before"], ok["load_after"]]).dropna() if "load_before" in ok else pd.Series()
    if len(loads):
        how += f", load average {loads.min():.1f} to {loads.max():.1f} during the runs"
    if meta and meta.get("versions", {}).get("torch"):
        how += f" (PyTorch {meta['versions']['torch']}, Python {meta['versions'].get('python', '?')})"
    lines += ["",
              f"{'; '.join([how, *totals])}. Run time is the wall-clock time of executing the notebook "
              f"(`papermill`, kernel start included); CPU is user + system time; peak memory is the "
              f"largest process's resident set. On a busy machine (a load average above the number of "
              f"cores) the wall-clock time grows while the CPU time stays. Reading time is the chapter's words (prose and code, "
              f"exercises and solutions included) at {WORDS_PER_MINUTE} words a minute: running the "
              f"code and doing the exercises take longer. Regenerate with "
              f"`python benchmarks/bench_chapters.py` (all chapters) or name the chapters to re-measure.",
              ""]
    return "\n".join(lines)


def recorded_command(argv: list[str]) -> str:
    """The command line as the sidecar records it: the folders of ``--keep`` and ``--results`` left out.

    Parameters
    ----------
    argv : list of str
        The script's arguments.

    Returns
    -------
    str
        ``python benchmarks/bench_chapters.py`` and the arguments, each folder replaced by ``...``.
    """
    out, skip = [], False
    for a in argv:
        if skip:
            out.append("...")
            skip = False
        elif a in ("--keep", "--results"):
            out.append(a)
            skip = True
        elif a.startswith(("--keep=", "--results=")):
            out.append(a.split("=")[0] + "=...")
        else:
            out.append(a)
    return " ".join(["python", "benchmarks/bench_chapters.py", *out])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chapters", nargs="*", help="chapters to run, by stem or number (default: all)")
    p.add_argument("--smoke", action="store_true", help="also run each chapter with SMOKE=True")
    p.add_argument("--no-defaults", action="store_true", help="skip the run with defaults (with --smoke)")
    p.add_argument("--cores", type=int, default=2, help="cores to run on (default 2; 0: no limit)")
    p.add_argument("--keep", default=None, help="folder to keep the executed notebooks in (default: a temporary one)")
    p.add_argument("--results", default=str(RESULTS), help=f"the CSV to update (default {RESULTS.relative_to(ROOT)})")
    p.add_argument("--table-only", action="store_true",
                   help=f"run nothing: regenerate {TABLE_MD.relative_to(ROOT)} from the CSV")
    args = p.parse_args(argv)
    results = Path(args.results)
    every = chapter_paths([])
    try:
        paths = chapter_paths(args.chapters)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    modes = [m for m in MODES if (m == "defaults" and not args.no_defaults) or (m == "smoke" and args.smoke)]
    if args.table_only:
        modes = []
    elif not modes:
        print("error: nothing to run (--no-defaults without --smoke)", file=sys.stderr)
        return 2
    if modes and not Path("/usr/bin/time").is_file():
        print("error: /usr/bin/time is needed (GNU time; apt-get install time)", file=sys.stderr)
        return 2
    table = read_table(results)
    meta_path = results.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    rows: list[dict] = []
    if modes:
        root = Path(args.keep or tempfile.mkdtemp(prefix="oncolab-bench-chapters-"))
        t0 = time.perf_counter()
        for mode in modes:
            for nb in paths:
                row = run_chapter(nb, mode, root / mode / nb.stem, args.cores or None)
                rows.append(row)
                print(f"{nb.stem:26s} {mode:8s} wall {row['wall_s']:6.0f} s  CPU {row['cpu_s']:6.0f} s  "
                      f"peak {row['peak_mib']:6.0f} MiB  load {row['load_before']:.1f} -> {row['load_after']:.1f}"
                      + (f"  ERROR: {row['error']}" if "error" in row else ""), flush=True)
        table = merge_rows(table, rows)
        meta = {"command": recorded_command(argv),
                "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                "cores": args.cores or os.cpu_count(), "machine_cores": os.cpu_count(),
                "chapters": [nb.stem for nb in paths], "modes": modes, "kernel": KERNEL,
                "seconds": round(time.perf_counter() - t0, 1), "versions": versions(CHAPTER_LIBRARIES)}
        write_table(table, results, meta)
        print(f"written: {results} and {results.with_suffix('.json').name}; executed notebooks in {root}")
    if results.resolve() == RESULTS.resolve():
        write_atomic(markdown_table(table, every, meta), TABLE_MD)
        print(f"written: {TABLE_MD}")
    if table is not None and len(table):
        for t in check_targets(table, [nb.stem for nb in every]):
            verdict = {True: "holds", False: "MISSED", None: "unknown"}[t["holds"]]
            print(f"{verdict:8s} {t['target']}: {t['detail']}")
    return int(any(r["returncode"] != 0 for r in rows))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
