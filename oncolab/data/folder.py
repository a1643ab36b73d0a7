"""Reading and checking a cohort folder: real data enters the system here.

Taught in chapter 1 (a synthetic cohort written to files and read back); the book's page
"Your own cohort" brings a researcher's own data in, and chapter 12 runs the complete system
on it. The format (which tables, which columns, lab names and units, image folders,
``cohort.json``) is documented in :mod:`oncolab.data.io`, which writes it.

:func:`validate_cohort` checks a folder and reports every problem at once, each as a
:class:`CohortProblem` that prints as ``file:line: what, expected what``: errors (the folder
cannot be used as it is) and warnings (something the system handles, such as a missing value
or a modality absent for some patients). :func:`load_cohort` reads a valid folder into a
:class:`~oncolab.data.Cohort`, refusing an invalid one with a single error that lists every
problem. Images are never read when a folder is loaded: the cohort's image source reads one
patient's file when it is asked for it.

Where a file has many problems of one kind (a text column in a numeric table), the first
:data:`MAX_SIMILAR` are listed and one more line gives the count of the others.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from .cohort import MODALITIES, OPTIONAL_MODALITIES, TABLES, Cohort
from .io import EXPORT_MARKER, GENE_VALUES, IMAGE_FOLDERS, META_FILE, DiskImages
from .labs import BIOMARKERS, biomarker, to_canonical

__all__ = ["MAX_SIMILAR", "CohortProblem", "load_cohort", "validate_cohort"]

#: how many problems of one kind in one file are listed before the rest are counted
MAX_SIMILAR = 20

_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a"})
_TRUE, _FALSE = frozenset({"true", "1", "1.0"}), frozenset({"false", "0", "0.0"})
_LAB_HEADER = re.compile(r"^(?P<name>[^\[\]]*?)\s*\[(?P<unit>[^\[\]]*)\]$")
_BOX_COLUMNS = ("x0", "y0", "x1", "y1")
_LABEL_COLUMNS = ("diagnosis", "y", "time", "event")
_MODALITY_TABLES = ("labs", "genes", "clinical", "symptoms")  # the modalities that are a table
_KNOWN_MODALITIES = MODALITIES + OPTIONAL_MODALITIES
_IMAGE_FOLDER_OF = {"radiograph": "radiograph", "pathology": "slide"}  # modality -> its image folder
_META_KEYS = {"source": str, "classes": list, "ordered": bool, "gene_values": str, "time_unit": str,
              "modalities": list, "tables": list, "images": list, "complete": bool, "n_patients": int}


@dataclass(frozen=True)
class CohortProblem:
    """One problem found in a cohort folder.

    Taught on the book's page "Your own cohort". ``str(problem)`` gives ``file:line: message``.

    Parameters
    ----------
    file : str
        The file, relative to the cohort folder (``labs.csv``, ``images/slide/P1.png``).
    line : int
        The line in that file, 1-based (the header of a table is line 1); 0 when the problem
        is about the whole file.
    message : str
        What is wrong and what was expected.
    level : {"error", "warning"}
        An error makes the folder unusable as it is; a warning names something the system
        handles (a missing value, a modality absent for some patients).
    """

    file: str
    line: int
    message: str
    level: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Report:
    """The problems found so far, at most :data:`MAX_SIMILAR` of one kind per file."""

    def __init__(self):
        self.problems: list[CohortProblem] = []
        self._counts: dict[tuple[str, str, str], int] = {}

    def add(self, level: str, file: str, line: int, message: str, kind: str | None = None) -> None:
        key = (level, file, kind or message)
        n = self._counts[key] = self._counts.get(key, 0) + 1
        if n <= MAX_SIMILAR:
            self.problems.append(CohortProblem(file, int(line), message, level))

    def error(self, file: str, line: int, message: str, kind: str | None = None) -> None:
        self.add("error", file, line, message, kind)

    def warning(self, file: str, line: int, message: str, kind: str | None = None) -> None:
        self.add("warning", file, line, message, kind)

    def has_errors(self) -> bool:
        return any(p.level == "error" for p in self.problems)

    def finish(self) -> list[CohortProblem]:
        """Every problem, a count for each kind that went over the limit, sorted by file and line."""
        out = list(self.problems)
        for (level, file, kind), n in self._counts.items():
            if n > MAX_SIMILAR:
                out.append(CohortProblem(file, 0, f"{n - MAX_SIMILAR} more lines with the problem: {kind}", level))
        return sorted(out, key=lambda p: (_file_rank(p.file), p.file, p.line))


def _file_rank(file: str) -> int:
    if file in (EXPORT_MARKER, META_FILE):
        return 0
    if file == "labels.csv":
        return 1
    return 3 if file.startswith("images") else 2


# --------------------------------------------------------------------------------------------
# reading one table
# --------------------------------------------------------------------------------------------
@dataclass
class _Table:
    """One CSV table as text: its data columns (patient_id excluded), ids and line numbers."""

    file: str
    columns: list[str]
    cells: dict[str, tuple[str, ...]]
    ids: list[str]
    lines: list[int]

    def line_of(self) -> dict[str, int]:
        """The line of each patient's first row."""
        out: dict[str, int] = {}
        for pid, line in zip(self.ids, self.lines):
            out.setdefault(pid, line)
        return out

    def text(self, column: str) -> list[str]:
        """A column's cells without surrounding spaces (numbers are read with them)."""
        return [c.strip() for c in self.cells[column]]


def _read_table(folder: Path, name: str, report: _Report) -> _Table | None:
    """Read ``<name>.csv``: header, one row per patient (cells as written); None when unusable."""
    file = f"{name}.csv"
    try:
        text = (folder / file).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        report.error(file, 0, f"is not UTF-8 text ({e.reason} at byte {e.start}); expected a UTF-8 CSV file")
        return None
    except OSError as e:
        report.error(file, 0, f"cannot be read ({e.strerror}); expected a readable CSV file")
        return None
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        report.error(file, 1, f"the header is not valid CSV ({e}); expected comma-separated column names")
        return None
    if not header:
        report.error(file, 0, "is empty; expected a header line with a patient_id column")
        return None
    header = [h.strip() for h in header]
    bad_header = False
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t")):
        sep = "';'" if ";" in header[0] else "tabs"
        report.error(file, 1, f"the header has one column {header[0]!r}, separated by {sep}; "
                              "expected comma-separated columns")
        return None
    seen = set()
    for k, h in enumerate(header):
        if not h:
            report.error(file, 1, f"column {k + 1} has no name; expected a name for every column")
            bad_header = True
        elif h in seen:
            report.error(file, 1, f"column {h!r} appears twice; expected each column once")
            bad_header = True
        seen.add(h)
    if "patient_id" not in header:
        report.error(file, 1, f"no 'patient_id' column (the columns are {header}); expected one naming each "
                              "patient")
        return None
    if bad_header:
        return None
    id_col = header.index("patient_id")
    rows, ids, lines, first = [], [], [], {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            report.error(file, reader.line_num, f"is not valid CSV ({e}); expected comma-separated fields")
            break
        line = reader.line_num
        if not row or all(not c.strip() for c in row) and len(row) == 1:
            continue  # a blank line
        if len(row) != len(header):
            report.error(file, line, f"has {len(row)} fields; expected {len(header)} as in the header",
                         kind="a row with a wrong number of fields")
            continue
        pid = row[id_col] = row[id_col].strip()
        if not pid:
            report.error(file, line, "patient_id is empty; expected the patient's id", kind="an empty patient_id")
            continue
        if pid in first:   # reported, and its cells still checked below (every problem at once)
            report.error(file, line, f"patient {pid!r} appears again (first on line {first[pid]}); "
                                     "expected one row per patient", kind="a patient listed twice")
        else:
            first[pid] = line
        ids.append(pid)
        lines.append(line)
        rows.append(row)
    by_column = list(zip(*rows)) if rows else [() for _ in header]
    cells = {h: by_column[k] for k, h in enumerate(header) if h != "patient_id"}
    return _Table(file, [h for h in header if h != "patient_id"], cells, ids, lines)


def _missing(cell: str) -> bool:
    return cell.strip().lower() in _MISSING


def _numbers(table: _Table, column: str, report: _Report, expected: str,
             rules: tuple[tuple[Callable[[np.ndarray], np.ndarray], str], ...] = (),
             kind: str = "") -> tuple[np.ndarray, np.ndarray]:
    """A column as floats, each bad cell reported by line and column.

    ``rules`` are ``(is_bad(values) -> mask, "what is wrong")`` pairs. Returns the values (NaN
    where missing or refused) and where a value was written.
    """
    cells = table.cells[column]
    try:
        values = np.array(cells, dtype=np.float64)  # every cell a number (or NaN): read at once
        written = ~np.isnan(values)
    except ValueError:
        values, written = np.full(len(cells), np.nan), np.zeros(len(cells), bool)
        for i, cell in enumerate(cells):
            if _missing(cell):
                continue
            written[i] = True
            try:
                values[i] = float(cell)
            except ValueError:
                report.error(table.file, table.lines[i],
                             f"column {column!r}: {cell.strip()!r} is not a number; expected {expected}",
                             kind=f"a value that is not a number{kind}")
    number = ~np.isnan(values)
    refused = np.zeros(len(cells), bool)
    with np.errstate(invalid="ignore"):
        for is_bad, problem in ((lambda v: ~np.isfinite(v), "is not finite"), *rules):
            bad = number & ~refused & is_bad(values)
            for i in np.flatnonzero(bad):
                report.error(table.file, table.lines[i], f"column {column!r}: {cells[i].strip()} {problem}; expected "
                                                         f"{expected}", kind=f"a value out of range{kind}")
            refused |= bad
    values[refused] = np.nan
    return values, written


def _as_int_if_whole(table: _Table, column: str, values: np.ndarray) -> np.ndarray:
    """int64 when every cell is written as an integer (none missing), else the floats."""
    if not len(values) or np.isnan(values).any():
        return values
    try:
        return np.array(table.cells[column], dtype=np.int64)
    except (ValueError, OverflowError):
        return values


def _warn_missing(table: _Table, report: _Report, columns: list[str], what: str) -> None:
    """One warning per column with missing values (in rows that have some value): how many, and the first line."""
    rows = [i for i in range(len(table.ids)) if not all(_missing(table.cells[c][i]) for c in columns)]
    for c in columns:
        miss = [table.lines[i] for i in rows if _missing(table.cells[c][i])]
        if miss and len(miss) < len(rows):
            report.warning(table.file, miss[0], f"column {c!r}: {len(miss)} missing value(s) (the first on this "
                                                f"line); {what}", kind="missing values")


def _frame(table: _Table, data: dict[str, Any]) -> pd.DataFrame:
    """The checked columns as a table indexed by patient id (a repeated patient's later rows dropped)."""
    df = pd.DataFrame(data, index=pd.Index(table.ids, name="patient_id", dtype=object))
    return df[~df.index.duplicated(keep="first")]


# --------------------------------------------------------------------------------------------
# the tables, one by one
# --------------------------------------------------------------------------------------------
def _check_meta(folder: Path, report: _Report) -> dict | None:
    """``cohort.json`` checked key by key; None when it is absent or unusable."""
    path = folder / META_FILE
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        report.error(META_FILE, e.lineno, f"is not valid JSON ({e.msg}, column {e.colno}); expected a JSON object")
        return None
    if not isinstance(meta, dict):
        report.error(META_FILE, 0, f"holds a {type(meta).__name__}; expected a JSON object of settings")
        return None

    def line(key: str) -> int:
        return _json_line(text, key)

    for key, typ in _META_KEYS.items():
        if key in meta and not (isinstance(meta[key], typ) and not (typ is int and isinstance(meta[key], bool))):
            report.error(META_FILE, line(key), f"{key!r} is {meta[key]!r}; expected a {typ.__name__}")
            meta.pop(key)
    if meta.get("complete") is False:
        report.error(META_FILE, line("complete"), "the folder is marked incomplete (\"complete\": false); "
                                                  "expected a finished export (export it again)")
    classes = meta.get("classes")
    if classes is not None:
        if not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes) or len(classes) < 2:
            report.error(META_FILE, line("classes"), f"'classes' is {classes!r}; expected two or more distinct "
                                                     "non-empty class names")
            meta.pop("classes")
    if "gene_values" in meta and meta["gene_values"] not in GENE_VALUES:
        report.error(META_FILE, line("gene_values"), f"'gene_values' is {meta['gene_values']!r}; expected one of "
                                                     f"{list(GENE_VALUES)}")
        meta.pop("gene_values")
    for key in ("source", "time_unit"):
        if key in meta and not meta[key].strip():
            report.error(META_FILE, line(key), f"{key!r} is empty; expected a name")
            meta.pop(key)
    if "modalities" in meta:
        if not all(isinstance(m, str) and m for m in meta["modalities"]):
            report.error(META_FILE, line("modalities"), f"'modalities' is {meta['modalities']!r}; expected "
                                                        f"modality names, some of {list(_KNOWN_MODALITIES)}")
            meta.pop("modalities")
        else:
            for m in meta["modalities"]:
                if m not in _KNOWN_MODALITIES:
                    report.warning(META_FILE, line("modalities"), f"modality {m!r} is not one the folder "
                                   f"format defines ({list(_KNOWN_MODALITIES)}); nothing of it is read")
    for name in meta.get("tables", []):
        if name not in TABLES:
            report.error(META_FILE, line("tables"), f"lists the table {name!r}; expected some of {list(TABLES)}")
        elif not (folder / f"{name}.csv").is_file():
            report.error(META_FILE, line("tables"), f"lists the table {name!r} but {name}.csv is missing; "
                                                    "expected every listed table")
    return meta


def _json_line(text: str, key: str) -> int:
    """The line of ``"key":`` in a JSON text (0 when not found)."""
    m = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def _check_ids(table: _Table, report: _Report) -> None:
    for pid, line in zip(table.ids, table.lines):
        if any(ch in pid for ch in "/\\") or pid.startswith("."):
            report.error(table.file, line, f"patient_id {pid!r} cannot name an image file; expected an id without "
                                           "'/', '\\' or a leading '.'", kind="a patient_id unusable as a file name")


def _read_labels(table: _Table, meta: dict, report: _Report) -> tuple[pd.DataFrame, list[str] | None]:
    """The labels table and the classes (None without a diagnosis)."""
    file, cols = table.file, table.columns
    _check_ids(table, report)
    for c in cols:
        if c not in _LABEL_COLUMNS:
            report.warning(file, 1, f"column {c!r} is not read; expected labels.csv to hold {list(_LABEL_COLUMNS)} "
                                    "(other patient data go into clinical.csv)")
    data: dict[str, Any] = {}
    classes = None
    if "diagnosis" in cols:
        cells = table.text("diagnosis")
        for i, cell in enumerate(cells):
            if _missing(cell):
                report.error(file, table.lines[i], f"patient {table.ids[i]!r} has no diagnosis; expected a class name "
                                                   "for every patient", kind="a missing diagnosis")
        found = sorted({c for c in cells if not _missing(c)})
        given = meta.get("classes")
        if given is not None:
            for i, cell in enumerate(cells):
                if not _missing(cell) and cell not in given:
                    report.error(file, table.lines[i], f"diagnosis {cell!r} is not one of the classes {given} of "
                                                       f"{META_FILE}", kind="a diagnosis outside the classes")
            unused = [c for c in given if c not in found]
            if unused:
                report.warning(file, 0, f"class(es) {unused} of {META_FILE} have no patient; a model cannot learn "
                                        "them")
            classes = list(given)
        elif len(found) < 2:
            report.error(file, 0, f"the diagnosis has {len(found)} class(es) {found}; expected two or more")
        else:
            classes = found
        data["diagnosis"] = pd.Series([None if _missing(c) else c for c in cells], dtype=object).to_numpy()
    if "y" in cols:
        if "diagnosis" not in cols:
            report.error(file, 1, "has a 'y' column but no 'diagnosis'; expected the class names in 'diagnosis' "
                                  "(y is derived from them)")
        else:
            code = {c: k for k, c in enumerate(classes or [])}
            y = _numbers(table, "y", report, "the diagnosis's position among the classes")[0]
            for i, (v, d) in enumerate(zip(y, data["diagnosis"])):
                if classes is not None and d in code and v == v and v != code[d]:
                    report.error(file, table.lines[i],
                                 f"y is {table.cells['y'][i].strip()} but diagnosis {d!r} is class {code[d]} of "
                                 f"{classes}; expected y = {code[d]} (or no y column)",
                                 kind="y disagreeing with the diagnosis")
            data["y"] = _as_int_if_whole(table, "y", y)
    has_time, has_event = "time" in cols, "event" in cols
    if has_time != has_event:
        report.error(file, 1, f"has {'time' if has_time else 'event'} but no {'event' if has_time else 'time'}; "
                              "expected both survival columns or neither")
    elif has_time:
        time = _numbers(table, "time", report, "a time > 0 to the event or to censoring",
                        rules=((lambda v: v <= 0, "is not > 0"),))[0]
        event = np.zeros(len(table.ids), bool)
        for i, (cell, t) in enumerate(zip(table.cells["time"], table.text("event"))):
            if _missing(cell):
                report.error(file, table.lines[i], f"patient {table.ids[i]!r} has no time; expected a time > 0 for "
                                                   "every patient", kind="a missing time")
            low = t.lower()
            if low in _TRUE or low in _FALSE:
                event[i] = low in _TRUE
            else:
                report.error(file, table.lines[i], f"event is {t!r}; expected 1 or 0 (true or false: was the event "
                                                   "observed?)", kind="an event that is not 0/1")
        data["time"], data["event"] = time, event
    if "diagnosis" not in cols and not has_time:
        report.warning(file, 0, "has no outcome (a diagnosis, or time and event): the patients can be predicted for, "
                                "not learnt from")
    order = [c for c in cols if c in data]
    return _frame(table, {c: data[c] for c in order}), classes


def _read_clinical(table: _Table, report: _Report) -> pd.DataFrame:
    data = {}
    for c in table.columns:
        text = table.text(c)
        cells = [x for x in text if not _missing(x)]
        numeric = sum(_is_number(x) for x in cells)
        if cells and numeric * 2 > len(cells):  # mostly numbers: a numeric column
            values = _numbers(table, c, report, "a number (the rest of the column is numeric) or an empty cell")[0]
            data[c] = _as_int_if_whole(table, c, values)
        else:
            data[c] = np.array([None if _missing(x) else x for x in text], dtype=object)
            if not cells:
                report.warning(table.file, 1, f"column {c!r} has no value; it carries no information")
    _warn_missing(table, report, table.columns, "the system fills a missing number and marks a missing "
                                                "category as unknown")
    return _frame(table, data)


def _read_symptoms(table: _Table, report: _Report) -> pd.DataFrame:
    """The symptom notes: the ``note`` column as written (an empty cell: no note)."""
    for c in table.columns:
        if c != "note":
            report.warning(table.file, 1, f"column {c!r} is not read; expected symptoms.csv to hold one 'note' column")
    if "note" not in table.columns:
        report.error(table.file, 1, f"has no 'note' column (the columns are {table.columns}); expected each "
                                    "patient's symptom note in a column 'note'")
        return _frame(table, {"note": np.full(len(table.ids), None, dtype=object)})
    notes = np.array([None if _missing(x) else x for x in table.cells["note"]], dtype=object)
    return _frame(table, {"note": notes})


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _lab_column(header: str, file: str, report: _Report) -> tuple[str, str | None] | None:
    """``(lab, unit)`` of a lab column's header such as ``calcium [mg/dL]``; None when refused."""
    m = _LAB_HEADER.match(header)
    name, unit = (m["name"], m["unit"].strip()) if m else (header, None)
    known = [b.name for b in BIOMARKERS]
    try:
        b = biomarker(name.strip().lower())
    except KeyError:
        report.error(file, 1, f"unknown lab {name.strip()!r}; expected one of {known}, optionally with a unit as in "
                              "'calcium [mg/dL]' (other measurements go into clinical.csv as numeric columns)")
        return None
    if unit is None:
        return b.name, None
    units = [b.unit, *(u for u, _ in b.conversions)]
    match = [u for u in units if u.lower() == unit.lower()]
    if not match:
        report.error(file, 1, f"lab {b.name!r}: unit {unit!r} is not understood; expected one of {units}")
        return None
    return b.name, match[0]


def _read_labs(table: _Table, report: _Report) -> pd.DataFrame:
    data, source = {}, {}
    for c in table.columns:
        parsed = _lab_column(c, table.file, report)
        if parsed is None:
            continue
        name, unit = parsed
        if name in source:
            report.error(table.file, 1, f"columns {source[name]!r} and {c!r} are both the lab {name!r}; expected "
                                        "one column per lab")
            continue
        source[name] = c
        values = np.full(len(table.ids), np.nan)
        expected = f"a number in {unit or biomarker(name).unit} or an empty cell"
        for i, cell in enumerate(table.cells[c]):
            if _missing(cell):
                continue
            try:
                v = float(cell)
            except ValueError:
                report.error(table.file, table.lines[i], f"column {c!r}: {cell.strip()!r} is not a number; expected "
                                                         f"{expected}", kind=f"a lab value that is not a number ({c})")
                continue
            try:
                values[i] = to_canonical(name, v, unit)
            except ValueError as e:
                hint = "; write the unit in the header, as in 'calcium [mg/dL]'" if "looks like" in str(e) else ""
                why = str(e).removeprefix(f"{name}: ").split(" Give the unit")[0].rstrip(".")
                report.error(table.file, table.lines[i], f"column {c!r}: {why}{hint}; expected {expected}",
                             kind=f"a lab value refused ({c})")
        data[name] = values
    _warn_missing(table, report, list(source.values()), "the system fills a missing lab value and flags it as not "
                                                        "measured")
    return _frame(table, data)


def _read_genes(table: _Table, gene_values: str, report: _Report) -> pd.DataFrame:
    rules: tuple = ((lambda v: v < 0, "is negative"),)
    if gene_values == "counts":
        expected = "a whole read count >= 0 ('gene_values': 'counts' in cohort.json)"
        rules += ((lambda v: v % 1 != 0, "is not a whole count"),)
    else:
        expected = "a log-scale value >= 0, such as a log2 intensity ('gene_values': 'log_expression')"
    if not table.columns:
        report.error(table.file, 1, "has no gene column; expected one column per gene")
    data = {c: _numbers(table, c, report, expected, rules=rules, kind=" (genes)") for c in table.columns}
    if data:
        x = np.column_stack([v for v, _ in data.values()])
        written = np.column_stack([w for _, w in data.values()])
        partial = written.any(1) & ~written.all(1)
        for i in np.flatnonzero(partial):
            gene = table.columns[int(np.flatnonzero(~written[i])[0])]
            report.error(table.file, table.lines[i],
                         f"patient {table.ids[i]!r} has no value for {int((~written[i]).sum())} gene(s) (the first "
                         f"{gene!r}); expected a value for every gene, or an empty row when the patient has no "
                         "expression data", kind="a patient with some genes missing")
        data = {c: _as_int_if_whole(table, c, x[:, k]) for k, c in enumerate(table.columns)}
    return _frame(table, data)


def _read_boxes(table: _Table, report: _Report) -> pd.DataFrame:
    lacking = [c for c in _BOX_COLUMNS if c not in table.columns]
    if lacking:
        report.error(table.file, 1, f"lacks the column(s) {lacking}; expected {list(_BOX_COLUMNS)} (the lesion's box "
                                    "in pixels)")
        return _frame(table, {c: np.full(len(table.ids), np.nan) for c in _BOX_COLUMNS})
    for c in table.columns:
        if c not in _BOX_COLUMNS:
            report.warning(table.file, 1, f"column {c!r} is not read; expected {list(_BOX_COLUMNS)}")
    parsed = [_numbers(table, c, report, "a pixel coordinate >= 0", rules=((lambda x: x < 0, "is negative (outside "
                                                                           "the image)"),)) for c in _BOX_COLUMNS]
    v = np.column_stack([values for values, _ in parsed])
    written = np.column_stack([w for _, w in parsed])
    for i in range(len(table.ids)):
        if written[i].any() and not written[i].all():
            report.error(table.file, table.lines[i], f"the box has {int(written[i].sum())} of 4 coordinates; expected "
                                                     "x0, y0, x1, y1, or four empty cells for no box",
                         kind="an incomplete box")
        elif not np.isnan(v[i]).any() and not (v[i, 0] < v[i, 2] and v[i, 1] < v[i, 3]):
            report.error(table.file, table.lines[i], f"the box (x0, y0, x1, y1) = {tuple(v[i].tolist())} has "
                                                     f"{'x1 <= x0' if v[i, 2] <= v[i, 0] else 'y1 <= y0'}; expected "
                                                     "x0 < x1 and y0 < y1", kind="an empty box")
    return _frame(table, dict(zip(_BOX_COLUMNS, v.T)))


def _read_flags(table: _Table, known: list[str], report: _Report) -> pd.DataFrame:
    data = {}
    for c in table.columns:
        if c not in known:
            report.error(table.file, 1, f"column {c!r} is not a modality; expected some of {known}")
            continue
        flags = np.zeros(len(table.ids), bool)
        for i, cell in enumerate(table.text(c)):
            low = cell.lower()
            if low in _TRUE or low in _FALSE:
                flags[i] = low in _TRUE
            else:
                report.error(table.file, table.lines[i], f"column {c!r}: {cell!r}; expected true or false (1 or 0): "
                                                         "was the modality acquired?", kind="a flag that is not 0/1")
        data[c] = flags
    return _frame(table, data)


def _read_numeric(table: _Table, report: _Report) -> pd.DataFrame:
    return _frame(table, {c: _numbers(table, c, report, "a number")[0] for c in table.columns})


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def _image_files(folder: Path, kind: str, ids: set[str] | None, report: _Report) -> dict[str, Path]:
    """{patient id: its PNG file} in ``images/<kind>/``; other files are reported."""
    files = {}
    for p in sorted((folder / "images" / kind).iterdir()):
        rel = f"images/{kind}/{p.name}"
        if p.name.startswith("."):
            continue
        if p.suffix != ".png" or not p.is_file():
            report.warning(rel, 0, f"is not read; expected {kind} images as <patient_id>.png",
                           kind=f"a file in images/{kind}/ that is not read")
        elif ids is not None and p.stem not in ids:
            report.warning(rel, 0, f"patient {p.stem!r} is not in labels.csv; the image is not read",
                           kind=f"an image of a patient not in labels.csv ({kind})")
        else:
            files[p.stem] = p
    return files


def _check_image(folder: Path, path: Path, report: _Report) -> tuple[int, int] | None:
    """The image's (width, height) from its header, its data checked; None when unreadable."""
    rel = path.relative_to(folder).as_posix()
    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()
        return size
    except Exception as e:  # Pillow raises many types for a damaged file
        report.error(rel, 0, f"cannot be read as an image ({type(e).__name__}: {e}); expected a PNG file",
                     kind="an unreadable image")
        return None


# --------------------------------------------------------------------------------------------
# the folder
# --------------------------------------------------------------------------------------------
def _presence(order: pd.Index, modalities: list[str], given: pd.DataFrame | None, tables: dict[str, pd.DataFrame],
              files: dict[str, dict[str, Path]], report: _Report) -> pd.DataFrame:
    """Who has which modality: presence.csv where it says, and only where the table row or image file exists.

    Without presence.csv, a patient has a table's modality when the row holds a value.
    """
    if given is not None:
        for c in given.columns:
            if c not in modalities:
                report.warning("presence.csv", 1, f"column {c!r} is not read: the folder has no {c} (its modalities "
                                                  f"are {modalities})")
    stated_columns = [c for c in given.columns if c in modalities] if given is not None else []
    presence = pd.DataFrame(index=order)
    for m in stated_columns + [m for m in modalities if m not in stated_columns]:
        kind = _IMAGE_FOLDER_OF.get(m)
        where = f"images/{kind}" if kind else f"{m}.csv"
        if m in _MODALITY_TABLES:
            have = order.isin(tables[m].index) if m in tables else np.zeros(len(order), bool)
        elif kind in files:
            have = order.isin(list(files[kind]))
        else:
            have = None  # no image folder, or a modality the format does not read: as stated
        # without a statement, a table's row must also hold a value
        found = have & tables[m].reindex(order).notna().any(axis=1).to_numpy() if m in tables else have
        if m not in stated_columns:
            value = found if found is not None else np.ones(len(order), bool)
        else:
            stated = given[m].reindex(order)
            unstated = stated.isna().to_numpy()
            if unstated.any():
                report.warning("presence.csv", 0, f"{int(unstated.sum())} patient(s) of labels.csv have no row (the "
                                                  f"first {order[unstated][0]!r}); whether they have {m} is taken "
                                                  "from the other files")
            value = np.where(unstated, True if found is None else found, stated.eq(True).to_numpy())
            if have is not None and (value & ~have).any():
                lost = value & ~have
                report.warning(where, 0, f"{int(lost.sum())} patient(s) marked present in presence.csv have no "
                                         f"{'file' if kind else 'row'} (the first {order[lost][0]!r}): their {m} is "
                                         "absent")
                value = value & have
            where = "presence.csv"
        presence[m] = np.asarray(value, bool)
        absent = ~presence[m].to_numpy()
        if absent.all():
            report.warning(where, 0, f"no patient has {m}: the modality is not used")
        elif absent.any():
            report.warning(where, 0, f"{int(absent.sum())} of {len(order)} patients have no {m} (the first "
                                     f"{order[absent][0]!r}); the system handles a modality absent for some patients")
    presence.index.name = "patient_id"
    return presence


def _modalities(folder: Path, meta: dict, image_kinds: list[str]) -> list[str]:
    """cohort.json's modalities, or those the folder has: a table, or an image folder."""
    if "modalities" in meta:
        return list(meta["modalities"])
    have = {m for m, k in _IMAGE_FOLDER_OF.items() if k in image_kinds}
    have |= {m for m in _MODALITY_TABLES if (folder / f"{m}.csv").is_file()}
    return [m for m in _KNOWN_MODALITIES if m in have]


def _check_modalities(folder: Path, meta: dict, modalities: list[str], image_kinds: list[str],
                      tables: dict[str, pd.DataFrame], report: _Report) -> None:
    """Each modality has its table or image folder, and each table its modality."""
    for m in modalities:
        if m in _MODALITY_TABLES and m not in tables and not (folder / f"{m}.csv").is_file():
            report.error(META_FILE, 0, f"lists the modality {m!r} but {m}.csv is missing; expected its table")
    for m, kind in _IMAGE_FOLDER_OF.items():
        if m in modalities and kind not in image_kinds and "images" not in meta:
            report.warning(META_FILE, 0, f"lists the modality {m!r} but the folder images/{kind}/ is absent: "
                                         f"no {kind} can be read")
    for m in _MODALITY_TABLES:
        if m in tables and m not in modalities:
            report.warning(f"{m}.csv", 0, f"is present but {META_FILE} does not list the modality {m!r}: "
                                          "the system does not use it")
    if "boxes" in tables and "radiograph" not in modalities:
        report.warning("boxes.csv", 0, "boxes are drawn on radiographs, but the folder has none "
                                       "(images/radiograph/): the boxes are not used")


def _check_boxes_fit(boxes: pd.DataFrame, lines: dict[str, int], sizes: dict[str, tuple[int, int] | None],
                     report: _Report) -> None:
    """Each box inside its radiograph, whose (width, height) was read from the file."""
    for pid, size in sizes.items():
        if size is None or pid not in boxes.index:
            continue
        (w, h), (x0, y0, x1, y1) = size, boxes.loc[pid, list(_BOX_COLUMNS)]
        if x1 > w or y1 > h:
            box = (float(x0), float(y0), float(x1), float(y1))
            report.error("boxes.csv", lines[pid], f"the box (x0, y0, x1, y1) = {box} extends beyond the {w}x{h} "
                                                  f"radiograph images/radiograph/{pid}.png; expected x1 <= {w} and "
                                                  f"y1 <= {h}", kind="a box outside its radiograph")


def _read_folder(folder: Path, check_images: bool) -> tuple[Cohort | None, list[CohortProblem]]:
    """Check a cohort folder and, when it has no error, read it into a Cohort."""
    report = _Report()
    if (folder / EXPORT_MARKER).exists():
        report.error(EXPORT_MARKER, 0, "the folder was left by an interrupted export; expected a folder that "
                                       "export_cohort finished (export the cohort again)")
    meta = _check_meta(folder, report)
    meta = dict(meta or {})
    tables: dict[str, pd.DataFrame] = {}
    lines: dict[str, dict[str, int]] = {}
    classes = None
    ids: set[str] | None = None
    if not (folder / "labels.csv").is_file():
        report.error("labels.csv", 0, "is missing; expected labels.csv with a patient_id column (one row per patient)")
    else:
        t = _read_table(folder, "labels", report)
        if t is not None:
            tables["labels"], classes = _read_labels(t, meta, report)
            ids = set(t.ids)
            if not t.ids:
                report.error("labels.csv", 0, "lists no patient; expected one row per patient")
    for p in sorted(folder.glob("*.csv")):
        if p.stem not in TABLES:
            report.warning(p.name, 0, f"is not a table of the format; expected some of {[f'{t}.csv' for t in TABLES]}")

    image_kinds = [k for k in IMAGE_FOLDERS if (folder / "images" / k).is_dir()]
    modalities = _modalities(folder, meta, image_kinds)
    gene_values = meta.get("gene_values", "counts")
    readers = {"clinical": _read_clinical, "labs": _read_labs,
               "genes": lambda t, r: _read_genes(t, gene_values, r), "boxes": _read_boxes,
               "symptoms": _read_symptoms,
               "presence": lambda t, r: _read_flags(t, sorted(set(_KNOWN_MODALITIES) | set(modalities)), r),
               "truth": _read_numeric}
    for name, read in readers.items():
        if not (folder / f"{name}.csv").is_file():
            continue
        t = _read_table(folder, name, report)
        if t is None:
            continue
        tables[name] = read(t, report)
        lines[name] = t.line_of()
        if ids is not None:
            for pid, line in zip(t.ids, t.lines):
                if pid not in ids:
                    report.error(t.file, line, f"patient {pid!r} is not in labels.csv; expected every patient of a "
                                               "table to have a row in labels.csv", kind="a patient not in labels.csv")
    _check_modalities(folder, meta, modalities, image_kinds, tables, report)
    if ids is None:
        return None, report.finish()

    order = tables["labels"].index
    # images: which patient has a file, and (checking) whether it reads
    files = {k: _image_files(folder, k, ids, report) for k in image_kinds}
    if check_images:
        sizes = {kind: {pid: _check_image(folder, found[pid], report) for pid in order if pid in found}
                 for kind, found in files.items()}
        if "boxes" in tables:
            _check_boxes_fit(tables["boxes"], lines["boxes"], sizes.get("radiograph", {}), report)

    given = tables.pop("presence", None)
    presence = _presence(order, modalities, given, tables, files, report)
    if "n_patients" in meta and meta["n_patients"] != len(order):
        line = _json_line((folder / META_FILE).read_text(encoding="utf-8", errors="replace"), "n_patients")
        report.warning(META_FILE, line, f"'n_patients' is {meta['n_patients']} but labels.csv lists {len(order)}; "
                                     "the patients are those of labels.csv")
    problems = report.finish()
    if report.has_errors():
        return None, problems

    for name in list(tables):
        if name != "labels":
            tables[name] = tables[name].reindex(order)
            tables[name].index.name = "patient_id"
    if given is not None or not presence.to_numpy().all():
        presence.index.name = "patient_id"
        tables["presence"] = presence
    meta = {k: v for k, v in meta.items() if k not in ("tables", "images", "complete")}
    meta.setdefault("source", folder.name)
    meta["modalities"] = modalities
    if classes is not None:
        meta["classes"] = classes
    if "genes" in tables:
        meta.setdefault("gene_values", "counts")
    images = DiskImages(folder) if image_kinds else None
    return Cohort(tables, images=images, meta=meta), problems


def validate_cohort(folder: str | Path) -> list[CohortProblem]:
    """Check a cohort folder and report every problem at once (not only the first).

    Taught on the book's page "Your own cohort" (the format is in :mod:`oncolab.data.io`).
    Every table is read and every value checked: ids (missing, repeated, in a table but not
    in ``labels.csv``), numbers, lab names and units, negative lab values, time <= 0, event
    not 0/1, a single class, boxes outside their image or with ``x1 <= x0``, unreadable
    images (each is opened), ``cohort.json``'s settings. Warnings name what the system
    handles: missing values, a modality absent for some patients, files it does not read.

    Parameters
    ----------
    folder : str or Path
        The cohort folder; one that does not exist gives a single error.

    Returns
    -------
    list of CohortProblem
        Sorted by file and line; empty when all is well. The folder loads with
        :func:`load_cohort` when no problem has ``level == "error"``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [CohortProblem(str(folder), 0, "cohort folder not found; expected a folder holding labels.csv")]
    return _read_folder(folder, check_images=True)[1]


def load_cohort(folder: str | Path) -> Cohort:
    """Read a cohort folder (exported by :func:`~oncolab.data.export_cohort` or made by hand) into a Cohort.

    Taught in chapter 1; the book's page "Your own cohort" loads a researcher's own folder.
    The tables are read and checked as :func:`validate_cohort` does, except that image files
    are not opened: the cohort's image source reads a patient's image when it is asked for
    it. A folder left by an interrupted export is refused.

    Parameters
    ----------
    folder : str or Path
        The cohort folder, exported or made by hand.

    Returns
    -------
    Cohort
        Its tables aligned to ``labels.csv``'s patients (lab values in canonical units),
        ``meta`` from ``cohort.json`` (``source`` defaulting to the folder's name, the
        ``classes``, the ``modalities`` found), and a :class:`~oncolab.data.DiskImages`
        source when the folder has images. A folder exported from a cohort loads equal to it
        (:meth:`Cohort.equals`).

    Raises
    ------
    FileNotFoundError
        When the folder does not exist.
    ValueError
        When the folder has errors: one message lists every one as ``file:line: message``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"cohort folder not found: {folder}")
    cohort, problems = _read_folder(folder, check_images=False)
    if cohort is None:
        errors = [f"  {p}" for p in problems if p.level == "error"]
        raise ValueError(f"{folder} is not a valid cohort folder ({len(errors)} error(s)):\n" + "\n".join(errors))
    return cohort
