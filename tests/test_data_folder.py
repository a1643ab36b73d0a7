"""A cohort folder made by hand: the format, ``validate_cohort`` and ``load_cohort`` (the page "Your own cohort")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oncolab.data import (
    Cohort,
    CohortProblem,
    export_cohort,
    load_cohort,
    synthetic_cohort,
    validate_cohort,
)
from oncolab.data.folder import MAX_SIMILAR


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.lstrip("\n"))


def errors(problems):
    return [p for p in problems if p.level == "error"]


def has(problems, file, line, text, level="error"):
    return any(p.file == file and p.line == line and text in p.message and p.level == level for p in problems)


@pytest.fixture
def hand_folder(tmp_path):
    """Two classes of our own naming, columns and patients in other orders, units in the lab headers."""
    f = tmp_path / "hospital"
    write(f, "labels.csv", """
diagnosis,patient_id
tumour,p1
normal,p2
tumour,p3
normal ,p4
""")
    write(f, "labs.csv", """
Calcium [mg/dL],patient_id,ALP [U/L],haemoglobin [g/dL],crp
9.6,p3,120,13.5,4.2
8.8,p1,95,,0.0
10.2,p2,210,11.9,12
""")
    write(f, "clinical.csv", """
sex,patient_id,age
F,p4, 61
M,p2,
F,p1,47
M,p3,70
""")
    return f


def test_a_hand_made_folder_loads(hand_folder):
    problems = validate_cohort(hand_folder)
    assert errors(problems) == [], [str(p) for p in problems]
    # what the system handles is a warning: a missing value, a patient without labs
    assert has(problems, "clinical.csv", 3, "column 'age': 1 missing value", level="warning")
    assert has(problems, "labs.csv", 0, "1 of 4 patients have no labs (the first 'p4')", level="warning")

    c = load_cohort(hand_folder)
    assert list(c.ids) == ["p1", "p2", "p3", "p4"]  # the order of labels.csv
    assert c.classes == ["normal", "tumour"] and c.y.tolist() == [1, 0, 1, 0]
    assert not c.has_survival and c.images is None and c.meta["source"] == "hospital"
    assert c.modalities == ("labs", "clinical")
    assert list(c.labs.columns) == ["calcium", "alp", "haemoglobin", "crp"]
    # canonical units, against the physical conversions: Ca 40.08 g/mol, so 1 mmol/L = 4.008 mg/dL;
    # haemoglobin 1 g/dL = 10 g/L
    np.testing.assert_allclose(c.labs.loc[["p1", "p2", "p3"], "calcium"], np.array([8.8, 10.2, 9.6]) / 4.008,
                               atol=1e-3)
    assert c.labs.loc["p3", "haemoglobin"] == 135.0 and c.labs.loc["p2", "haemoglobin"] == 119.0
    assert np.isnan(c.labs.loc["p1", "haemoglobin"]) and c.labs.loc["p1", "crp"] == 0.0
    assert c.labs.loc["p2", "alp"] == 210.0
    assert c.labs.loc["p4"].isna().all() and not c.has("labs", "p4") and c.has("labs", "p1")
    assert c.clinical.loc["p4", "age"] == 61 and np.isnan(c.clinical.loc["p2", "age"])
    assert c.clinical.loc["p1", "sex"] == "F"
    # a subset keeps the coding of the classes
    assert c.subset([0, 2]).y.tolist() == [1, 1]


def test_cohort_json_fixes_the_classes_and_their_order(hand_folder):
    write(hand_folder, "cohort.json", json.dumps({"classes": ["tumour", "normal"], "ordered": False,
                                                  "source": "our ward"}))
    c = load_cohort(hand_folder)
    assert c.classes == ["tumour", "normal"] and c.y.tolist() == [0, 1, 0, 1]
    assert c.meta["source"] == "our ward" and c.meta["ordered"] is False


def test_every_planted_problem_is_reported_with_its_file_and_line(tmp_path):
    f = tmp_path / "broken"
    write(f, "cohort.json", """
{
  "gene_values": "tpm",
  "time_unit": "months"
}
""")
    write(f, "labels.csv", """
patient_id,diagnosis,time,event
A,benign,12,1
B,malignant,-3,0
A,benign,5,1
C,malignant,abc,2
,benign,4,0
D,malignant,7,yes
""")
    write(f, "labs.csv", """
patient_id,ferritin,calcium [mg/L],ALP [U/L],crp
A,10,1,100,-2
B,10,1,abc,1
Z,10,1,100,1
""")
    write(f, "clinical.csv", """
patient_id,age
A,50
B,60
C,sixty
""")
    write(f, "genes.csv", """
patient_id,G1,G2
A,5,3
B,2.5,1
C,,4
""")
    write(f, "boxes.csv", """
patient_id,x0,y0,x1,y1
A,10,10,5,20
B,10,10,80,20
C,1,2,3,
""")
    (f / "images" / "radiograph").mkdir(parents=True)
    for pid in ("A", "B"):
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(f / "images" / "radiograph" / f"{pid}.png")
    (f / "images" / "radiograph" / "C.png").write_bytes(b"not a png at all")

    problems = validate_cohort(f)
    expected = {
        ("cohort.json", 2, "'gene_values' is 'tpm'; expected one of ['counts', 'log_expression']"),
        ("labels.csv", 3, "column 'time': -3 is not > 0"),
        ("labels.csv", 4, "patient 'A' appears again (first on line 2)"),
        ("labels.csv", 5, "column 'time': 'abc' is not a number"),
        ("labels.csv", 5, "event is '2'; expected 1 or 0"),
        ("labels.csv", 6, "patient_id is empty"),
        ("labels.csv", 7, "event is 'yes'"),
        ("labs.csv", 1, "unknown lab 'ferritin'; expected one of ['alp', 'ldh'"),
        ("labs.csv", 1, "lab 'calcium': unit 'mg/L' is not understood; expected one of ['mmol/L', 'mg/dL']"),
        ("labs.csv", 2, "column 'crp': a concentration cannot be negative"),
        ("labs.csv", 3, "column 'ALP [U/L]': 'abc' is not a number"),
        ("labs.csv", 4, "patient 'Z' is not in labels.csv"),
        ("clinical.csv", 4, "column 'age': 'sixty' is not a number"),
        ("genes.csv", 4, "patient 'C' has no value for 1 gene(s) (the first 'G1')"),
        ("boxes.csv", 2, "has x1 <= x0"),
        ("boxes.csv", 3, "extends beyond the 64x64 radiograph images/radiograph/B.png"),
        ("boxes.csv", 4, "the box has 3 of 4 coordinates"),
        ("images/radiograph/C.png", 0, "cannot be read as an image"),
    }
    for file, line, text in expected:
        assert has(problems, file, line, text), f"not reported: {file}:{line}: {text}\n" + \
            "\n".join(map(str, problems))
    # gene_values 'tpm' is refused, so the genes are read as counts: 2.5 is not a whole count
    assert has(problems, "genes.csv", 3, "column 'G1': 2.5 is not a whole count")
    assert len(errors(problems)) == len(expected) + 1, "\n".join(map(str, errors(problems)))
    # a warning for what the system handles: D has no labs, no clinical row, no genes
    assert has(problems, "labs.csv", 0, "patients have no labs", level="warning")
    # the same problems stop load_cohort, every one listed; it opens no image, so it does not
    # see the unreadable one, nor the box beyond its image
    with pytest.raises(ValueError, match=r"is not a valid cohort folder \(17 error\(s\)\)") as e:
        load_cohort(f)
    for p in errors(problems):
        assert (str(p) in str(e.value)) == (p.file != "images/radiograph/C.png" and "extends beyond" not in p.message)


def test_a_problem_prints_as_file_line_message():
    p = CohortProblem("labs.csv", 3, "column 'crp': 'x' is not a number; expected a number")
    assert str(p) == "labs.csv:3: column 'crp': 'x' is not a number; expected a number" and p.level == "error"


@pytest.mark.parametrize("labels,meta,file,line,text", [
    ("patient_id,diagnosis\na,x\nb,x\n", None, "labels.csv", 0, "the diagnosis has 1 class(es) ['x']"),
    ("patient_id,diagnosis\na,x\nb,y\n", '{"classes": ["x"]}', "cohort.json", 1, "'classes' is ['x']"),
    ("patient_id,diagnosis\na,x\nb,z\n", '{"classes": ["x", "y"]}', "labels.csv", 3,
     "diagnosis 'z' is not one of the classes ['x', 'y']"),
    ("patient_id,time\na,3\n", None, "labels.csv", 1, "has time but no event"),
    ("patient_id,diagnosis,y\na,x,1\nb,y,1\n", None, "labels.csv", 2, "y is 1 but diagnosis 'x' is class 0"),
    ("patient_id;diagnosis\na;x\n", None, "labels.csv", 1, "separated by ';'; expected comma-separated"),
    ("patient_id,diagnosis\na,x,extra\nb,y\n", None, "labels.csv", 2, "has 3 fields; expected 2"),
    ("patient_id,diagnosis\na/b,x\nb,y\n", None, "labels.csv", 2, "cannot name an image file"),
    ("diagnosis\nx\ny\n", None, "labels.csv", 1, "no 'patient_id' column"),
])
def test_one_problem_in_labels(tmp_path, labels, meta, file, line, text):
    write(tmp_path, "labels.csv", labels)
    if meta is not None:
        write(tmp_path, "cohort.json", meta)
    assert has(validate_cohort(tmp_path), file, line, text), [str(p) for p in validate_cohort(tmp_path)]


def test_many_problems_of_one_kind_are_counted(tmp_path):
    n = MAX_SIMILAR + 10
    write(tmp_path, "labels.csv", "patient_id,diagnosis\n" + "".join(f"p{i},{'ab'[i % 2]}\n" for i in range(n)))
    write(tmp_path, "labs.csv", "patient_id,alp\n" + "".join(f"p{i},high\n" for i in range(n)))
    problems = validate_cohort(tmp_path)
    listed = [p for p in problems if p.file == "labs.csv" and p.line > 0]
    assert len(listed) == MAX_SIMILAR and listed[0].line == 2
    assert has(problems, "labs.csv", 0, "10 more lines with the problem")


def test_lab_values_in_an_implausible_unit_are_refused(tmp_path):
    write(tmp_path, "labels.csv", "patient_id\na\nb\n")
    write(tmp_path, "labs.csv", "patient_id,calcium\na,2.3\nb,9.6\n")
    problems = validate_cohort(tmp_path)
    assert has(problems, "labs.csv", 3, "looks like a value in mg/dL")
    assert has(problems, "labs.csv", 3, "write the unit in the header")
    assert not has(problems, "labs.csv", 2, "")
    assert has(problems, "labels.csv", 0, "has no outcome", level="warning")


def test_log_expression_genes(tmp_path):
    write(tmp_path, "labels.csv", "patient_id,diagnosis\na,x\nb,y\n")
    write(tmp_path, "genes.csv", "patient_id,ESR1,ERBB2\na,7.25,3.5\nb,-1.0,2\n")
    write(tmp_path, "cohort.json", '{"gene_values": "log_expression"}')
    problems = validate_cohort(tmp_path)
    assert [(p.file, p.line) for p in errors(problems)] == [("genes.csv", 3)] and "is negative" in problems[0].message
    write(tmp_path, "genes.csv", "patient_id,ESR1,ERBB2\na,7.25,3.5\nb,1.0,2\n")
    c = load_cohort(tmp_path)
    assert c.meta["gene_values"] == "log_expression" and c.genes.loc["a", "ESR1"] == 7.25


def test_an_exported_synthetic_cohort_validates_and_loads_equal(tmp_path):
    c = synthetic_cohort(40, seed=11, image_size=64, slide_size=64,
                         modality_missing={"pathology": 0.3, "genes": 0.2, "radiograph": 0.1})
    folder = export_cohort(c, tmp_path / "synthetic")
    problems = validate_cohort(folder)
    assert errors(problems) == [], [str(p) for p in errors(problems)]
    assert has(problems, "presence.csv", 0, "patients have no pathology", level="warning")
    back = load_cohort(folder)
    assert back.equals(c) and back.classes == c.classes == ["benign", "intermediate", "malignant"]
    assert back.meta["ordered"] is True and np.array_equal(back.y, c.y)


def test_a_converted_cohort_exports_and_loads(tmp_path):
    """A cohort built in memory without y, survival or presence (as a converter builds one) round-trips."""
    ids = pd.Index([f"s{i}" for i in range(6)], name="patient_id")
    labels = pd.DataFrame({"diagnosis": ["G3", "G1", "G2", "G1", "G3", "G2"]}, index=ids)
    clinical = pd.DataFrame({"age": [50.5, 61.0, 44.0, 70.0, 58.0, 39.0], "stage": list("ABABAB")}, index=ids)
    boxes = pd.DataFrame({"x0": [1.0, np.nan, 2, 3, 4, 5], "y0": [1.0, np.nan, 2, 3, 4, 5],
                          "x1": [9.0, np.nan, 8, 9, 9, 9], "y1": [9.0, np.nan, 8, 9, 9, 9]}, index=ids)

    class Radiographs:
        def radiograph(self, pid):
            return np.full((12, 12), int(pid[1:]) * 20, np.uint8)

    c = Cohort({"labels": labels, "clinical": clinical, "boxes": boxes}, images=Radiographs(),
               meta={"source": "grades", "classes": ["G1", "G2", "G3"], "ordered": True,
                     "modalities": ["radiograph", "clinical"]})
    folder = export_cohort(c, tmp_path / "grades")
    assert errors(validate_cohort(folder)) == []
    back = load_cohort(folder)
    assert back.equals(c) and back.y.tolist() == [2, 0, 1, 0, 2, 1] and back.meta["source"] == "grades"
    assert np.array_equal(back.radiograph("s3"), c.radiograph("s3"))


def test_images_are_read_only_when_asked_for(tmp_path, monkeypatch):
    import oncolab.data.io as io

    c = synthetic_cohort(6, seed=2, image_size=48, slide_size=64)
    folder = export_cohort(c, tmp_path / "lazy")
    reads = []
    real = io.read_image
    monkeypatch.setattr(io, "read_image", lambda path, mode=None: reads.append(Path(path).name) or real(path, mode))
    back = load_cohort(folder)
    assert reads == []
    assert np.array_equal(back.radiograph("P00002"), c.radiograph("P00002")) and reads == ["P00002.png"]
    (folder / "images" / "slide" / "P00004.png").unlink()  # gone after loading: the error comes on access
    assert back.has("pathology", "P00004")
    with pytest.raises(FileNotFoundError, match=r"images/slide/P00004\.png"):
        back.slide("P00004")
    # checked again, the folder says so; loaded again, the patient has no slide
    assert has(validate_cohort(folder), "images/slide", 0, "marked present in presence.csv have no file",
               level="warning")
    assert not load_cohort(folder).has("pathology", "P00004")


def test_a_missing_image_is_an_absent_modality(tmp_path):
    write(tmp_path, "labels.csv", "patient_id,diagnosis\na,x\nb,y\nc,x\n")
    for pid in ("a", "c"):
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(tmp_path / f"{pid}.png")
        (tmp_path / "images" / "slide").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{pid}.png").rename(tmp_path / "images" / "slide" / f"{pid}.png")
    problems = validate_cohort(tmp_path)
    assert errors(problems) == [] and has(problems, "images/slide", 0, "1 of 3 patients have no pathology",
                                          level="warning")
    c = load_cohort(tmp_path)
    assert c.modalities == ("pathology",) and [c.has("pathology", p) for p in "abc"] == [True, False, True]
    assert c.slide("c").shape == (8, 8, 3)


def test_a_missing_folder(tmp_path):
    (p,) = validate_cohort(tmp_path / "nowhere")
    assert p.level == "error" and "cohort folder not found" in p.message
    with pytest.raises(FileNotFoundError, match="not found"):
        load_cohort(tmp_path / "nowhere")


def test_the_book_page_lists_every_lab_with_its_units():
    """The page "Your own cohort" documents the lab names and units the folder accepts: all of them."""
    from oncolab.data import BIOMARKERS

    page = (Path(__file__).resolve().parents[1] / "book" / "own_cohort.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in page.splitlines() if line.startswith("| `")}
    for b in BIOMARKERS:
        row = rows[b.name]
        assert f"| {b.unit} |" in row, row
        for unit, factor in b.conversions:
            assert f"{unit} (× {factor:g})" in row, row
