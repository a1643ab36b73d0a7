"""Real-dataset scripts, offline: each converter on a small fixture written in the dataset's own
layout, converted end to end and read back with ``oncolab.data.load_cohort``; the packaged
datasets converted for real and compared with their package; checksum verification through a
local HTTP server; fast offline failure."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import sys
import threading
import time
import zipfile
from functools import partial
from importlib.metadata import version
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_scripts import btxrd, medmnist, metabric, packaged, registry, tcga  # noqa: E402
from data_scripts.cohorts import exclude, make_cohort  # noqa: E402
from data_scripts.registry import DataFetchError, fetch, fetch_url  # noqa: E402
from oncolab.data import (  # noqa: E402
    Cohort,
    load_cohort,
    read_data_yaml,
    read_image,
    read_yolo_labels,
    validate_cohort,
)


# ------------------------------------------------------------------------------ servers and files
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def serve(tmp_path):
    """Serve a folder on 127.0.0.1; returns a function folder -> base URL."""
    servers = []

    def _serve(folder: Path) -> str:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield _serve
    for s in servers:
        s.shutdown()
        s.server_close()


def _digest(path: Path, alg: str) -> str:
    return hashlib.new(alg, Path(path).read_bytes()).hexdigest()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _col(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def write_xlsx(df: pd.DataFrame, path: Path) -> None:
    """A minimal but valid .xlsx (shared strings for text, numbers as numbers)."""
    strings: list[str] = []

    def cell(ref, v):
        if isinstance(v, str):
            if v not in strings:
                strings.append(v)
            return f'<c r="{ref}" t="s"><v>{strings.index(v)}</v></c>'
        return f'<c r="{ref}"><v>{v}</v></c>'

    rows = [list(df.columns)] + df.astype(object).values.tolist()
    body = "".join(f'<row r="{r + 1}">' + "".join(cell(f"{_col(c)}{r + 1}", v) for c, v in enumerate(row))
                   + "</row>" for r, row in enumerate(rows))
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="rels" ContentType="application/'
                   'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                   'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                   f'ContentType="{ct}.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
                   f'ContentType="{ct}.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" '
                   f'ContentType="{ct}.sharedStrings+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://'
                   'schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                   f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{ns}" '
                   f'xmlns:r="{rel}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8"?><Relationships '
                   'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
                   f'Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/><Relationship '
                   f'Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0" encoding="UTF-8"?><worksheet '
                   f'xmlns="{ns}"><sheetData>{body}</sheetData></worksheet>')
        z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{ns}" '
                   f'count="{len(strings)}" uniqueCount="{len(strings)}">'
                   + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>")


# ------------------------------------------------------------------------------ registry
def test_registry_entries_are_complete():
    assert {"pathmnist", "breastmnist", "btxrd", "tcga", "metabric"} <= set(registry.REGISTRY)
    for e in registry.REGISTRY.values():
        assert e.url.startswith("https://"), e
        assert e.size and e.licence and e.citation and e.filename, e
        if e.known_hash is None:
            assert e.checksum_note, f"{e.name}: no checksum and no note saying why"
        else:
            alg, hexd = e.known_hash.split(":")
            assert alg in {"sha256", "md5"} and len(hexd) == {"sha256": 64, "md5": 32}[alg]
            int(hexd, 16)
    assert registry.REGISTRY["btxrd"].sha256 is not None


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(KeyError, match="pathmnist"):
        registry.entry("no_such_set")


def test_checksum_verified_and_mismatch_leaves_no_file(tmp_path, serve):
    src = tmp_path / "srv"
    src.mkdir()
    (src / "blob.bin").write_bytes(np.random.default_rng(0).bytes(50_000))
    base = serve(src)
    good = f"sha256:{_digest(src / 'blob.bin', 'sha256')}"
    out = fetch_url(f"{base}/blob.bin", good, "blob.bin", tmp_path / "dl1")
    assert out.read_bytes() == (src / "blob.bin").read_bytes()
    md5 = f"md5:{_digest(src / 'blob.bin', 'md5')}"
    assert fetch_url(f"{base}/blob.bin", md5, "blob.bin", tmp_path / "dl_md5").is_file()

    dest = tmp_path / "dl2"
    with pytest.raises(DataFetchError, match="checksum mismatch"):
        fetch_url(f"{base}/blob.bin", "sha256:" + "0" * 64, "blob.bin", dest)
    assert list(dest.iterdir()) == [], "a failed download left a file behind"


def test_entry_without_checksum_needs_explicit_trust(tmp_path):
    with pytest.raises(DataFetchError, match="trust_on_first_use"):
        fetch("metabric", tmp_path)


@pytest.mark.parametrize("name", ["pathmnist", "breastmnist", "btxrd"])
def test_offline_fails_fast_with_advice(name, tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(DataFetchError, match="offline") as info:
        fetch(name, tmp_path / name)
    assert time.perf_counter() - t0 < 2.0
    assert "Colab" in str(info.value)
    assert not (tmp_path / name).exists() or list((tmp_path / name).iterdir()) == []


def test_a_verified_file_already_in_place_is_used_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "1")
    blob = np.random.default_rng(5).bytes(1000)
    (tmp_path / "x.bin").write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    assert fetch_url("https://example.org/x.bin", f"sha256:{sha}", "x.bin", tmp_path) == tmp_path / "x.bin"
    (tmp_path / "x.bin").write_bytes(blob[:-1])
    with pytest.raises(DataFetchError, match="offline"):
        fetch_url("https://example.org/x.bin", f"sha256:{sha}", "x.bin", tmp_path)


def test_unreachable_server_fails_fast_without_partial_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "0")
    url = f"http://127.0.0.1:{_closed_port()}/pathmnist.npz"
    t0 = time.perf_counter()
    with pytest.raises(DataFetchError, match="cannot download"):
        fetch("pathmnist", tmp_path / "d", url=url)
    assert time.perf_counter() - t0 < 2.0
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize("module,args", [
    (medmnist, ["pathmnist", "OUT"]), (btxrd, ["OUT"]), (btxrd, ["OUT", "--cohort", "--max-side", "512"]),
    (metabric, ["OUT", "--trust-on-first-use"]),
    (metabric, ["OUT", "--trust-on-first-use", "--diagnosis", "CLAUDIN_SUBTYPE"]),
    (tcga, ["TCGA-SARC", "OUT"])])
def test_each_script_stops_offline_with_a_message(module, args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "1")
    monkeypatch.setenv("ONCOLAB_DATA", str(tmp_path / "data"))
    out = tmp_path / "out"
    t0 = time.perf_counter()
    rc = module.main([str(out) if a == "OUT" else a for a in args])
    assert time.perf_counter() - t0 < 2.0
    assert rc == 1
    assert "offline" in capsys.readouterr().err
    assert not out.exists()
    leftovers = [p for p in (tmp_path / "data").rglob("*") if p.is_file()] if (tmp_path / "data").exists() else []
    assert leftovers == []


# ------------------------------------------------------------------------------ MedMNIST
def _medmnist_npz(path: Path, rgb: bool, n_classes: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shape = (28, 28, 3) if rgb else (28, 28)
    arrays = {}
    for split, n in (("train", 7), ("val", 3), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, n_classes, (n, 1)).astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return arrays


@pytest.mark.parametrize("name,rgb", [("pathmnist", True), ("breastmnist", False)])
def test_medmnist_npz_converts_to_png_and_labels(name, rgb, tmp_path, serve):
    src = tmp_path / "srv"
    src.mkdir()
    arrays = _medmnist_npz(src / f"{name}.npz", rgb, len(medmnist.CLASSES[name]))
    base = serve(src)
    npz = fetch_url(f"{base}/{name}.npz", f"md5:{_digest(src / f'{name}.npz', 'md5')}", f"{name}.npz",
                    tmp_path / "raw")
    out = medmnist.convert_medmnist(npz, tmp_path / "out", name)
    for split in medmnist.SPLITS:
        images, table = medmnist.load_medmnist_folder(out, split)
        np.testing.assert_array_equal(images, arrays[f"{split}_images"])
        np.testing.assert_array_equal(table["label"], arrays[f"{split}_labels"][:, 0])
        assert list(table["label_name"]) == [medmnist.CLASSES[name][i] for i in table["label"]]
    info = json.loads((out / "info.json").read_text())
    assert info["counts"] == {"train": 7, "val": 3, "test": 4} and info["channels"] == (3 if rgb else 1)
    small = medmnist.convert_medmnist(npz, tmp_path / "small", name, max_per_split=2)
    assert len(pd.read_csv(small / "labels.csv")) == 6


def test_medmnist_bad_input_is_named(tmp_path):
    np.savez(tmp_path / "x.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="train_labels"):
        medmnist.convert_medmnist(tmp_path / "x.npz", tmp_path / "o", "pathmnist")
    _medmnist_npz(tmp_path / "b.npz", False, 5)
    with pytest.raises(ValueError, match=r"labels outside \[0, 2\)"):
        medmnist.convert_medmnist(tmp_path / "b.npz", tmp_path / "o", "breastmnist")
    with pytest.raises(ValueError, match="dataset must be one of"):
        medmnist.convert_medmnist(tmp_path / "b.npz", tmp_path / "o", "chestmnist")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ cohort folders
def _valid(folder: Path) -> Cohort:
    """A converted folder passes ``oncolab.data.validate_cohort`` without an error, and loads."""
    errors = [str(p) for p in validate_cohort(folder) if p.level == "error"]
    assert errors == [], errors
    return load_cohort(folder)


def _labels_csv(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "labels.csv", index_col="patient_id", dtype={"patient_id": str})


# ------------------------------------------------------------------------------ BTXRD
def _btxrd_fixture(root: Path) -> dict:
    """Five radiographs in BTXRD's layout: 2 normal, 2 benign, 1 malignant."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "Annotations").mkdir()
    W, H = 80, 60
    rows, expected = [], {}
    spec = [("IMG000001.jpeg", "normal", None), ("IMG000002.jpeg", "benign", "rect"),
            ("IMG000003.jpg", "malignant", "poly"), ("IMG000004.jpeg", "benign", "two"),
            ("IMG000005.jpeg", "normal", None)]
    sites = ["femur", "tibia", "humerus", "femur", "hand"]
    for (img_id, diag, kind), site in zip(spec, sites):
        Image.fromarray(rng.integers(0, 256, (H, W), dtype=np.uint8)).save(root / "images" / img_id, "JPEG")
        row = {"image_id": img_id, "center": 1 + len(rows) % 3, "age": 20 + len(rows), "gender": "FM"[len(rows) % 2],
               **{s: int(s == site) for s in btxrd.SITES}, "tumor": int(diag != "normal"),
               "benign": int(diag == "benign"), "malignant": int(diag == "malignant"),
               **{s: 0 for s in btxrd.SUBTYPES}, "frontal": 1, "lateral": 0, "oblique": 0}
        if diag == "malignant":
            row["osteosarcoma"] = 1
        elif diag == "benign":
            row["osteochondroma"] = 1
        rows.append(row)
        shapes = []
        if kind == "rect":
            shapes = [{"label": "osteochondroma", "points": [[10, 12], [30, 42]], "shape_type": "rectangle"},
                      {"label": "osteochondroma", "points": [[11, 13], [29, 13], [20, 40]], "shape_type": "polygon"}]
            expected[img_id] = [(0, 10, 12, 30, 42)]
        elif kind == "poly":
            shapes = [{"label": "osteosarcoma", "points": [[40, 5], [70, 20], [55, 50]], "shape_type": "polygon"}]
            expected[img_id] = [(1, 40, 5, 70, 50)]
        elif kind == "two":
            shapes = [{"label": "a", "points": [[0, 0], [20, 20]], "shape_type": "rectangle"},
                      {"label": "b", "points": [[50, 30], [90, 70]], "shape_type": "rectangle"}]  # clipped
            expected[img_id] = [(0, 0, 0, 20, 20), (0, 50, 30, 80, 60)]
        else:
            expected[img_id] = []
        if shapes:
            ann = {"version": "5.0.1", "flags": {}, "shapes": shapes, "imagePath": img_id, "imageData": None,
                   "imageHeight": H, "imageWidth": W}
            (root / "Annotations" / f"{Path(img_id).stem}.json").write_text(json.dumps(ann))
    table = pd.DataFrame(rows)
    write_xlsx(table, root / "dataset.xlsx")
    return {"expected": expected, "table": table, "size": (W, H),
            "diagnosis": {Path(i).stem: d for i, d, _ in spec},
            "sites": dict(zip([Path(i).stem for i, _, _ in spec], sites))}


def test_btxrd_xlsx_reader_matches_the_table(tmp_path):
    fx = _btxrd_fixture(tmp_path / "BTXRD")
    got = btxrd._read_xlsx_first_sheet(tmp_path / "BTXRD" / "dataset.xlsx")
    pd.testing.assert_frame_equal(got, fx["table"], check_dtype=False)


def test_btxrd_converts_to_a_valid_yolo_dataset(tmp_path):
    fx = _btxrd_fixture(tmp_path / "archive" / "BTXRD")
    data_yaml = btxrd.convert_btxrd(tmp_path / "archive", tmp_path / "yolo", seed=0, val_fraction=0.34,
                                    test_fraction=0.0)
    data = read_data_yaml(data_yaml)
    assert data["names"] == {0: "benign", 1: "malignant"}
    clinical = pd.read_csv(tmp_path / "yolo" / "clinical.csv", index_col="image_id")
    assert set(clinical["split"]) <= {"train", "val"}
    W, H = fx["size"]
    for img_id, boxes in fx["expected"].items():
        split = clinical.at[img_id, "split"]
        img = tmp_path / "yolo" / "images" / split / img_id
        assert read_image(img).shape == (H, W)
        labels = read_yolo_labels(tmp_path / "yolo" / "labels" / split / f"{Path(img_id).stem}.txt", 2)
        want = np.array([(c, (x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H)
                         for c, x0, y0, x1, y1 in boxes]).reshape(-1, 5)
        np.testing.assert_allclose(labels, want, atol=1e-5)
    assert clinical.loc["IMG000003.jpg", ["diagnosis", "subtype", "site"]].tolist() == \
        ["malignant", "osteosarcoma", "humerus"]
    again = btxrd.convert_btxrd(tmp_path / "archive", tmp_path / "yolo2", seed=0, val_fraction=0.34,
                                test_fraction=0.0)
    assert (again.parent / "clinical.csv").read_bytes() == (tmp_path / "yolo" / "clinical.csv").read_bytes()


def test_btxrd_missing_annotation_is_named_and_nothing_written(tmp_path):
    _btxrd_fixture(tmp_path / "BTXRD")
    (tmp_path / "BTXRD" / "Annotations" / "IMG000003.json").unlink()
    with pytest.raises(FileNotFoundError, match="IMG000003"):
        btxrd.convert_btxrd(tmp_path / "BTXRD", tmp_path / "yolo")
    with pytest.raises(FileNotFoundError, match="IMG000003"):
        btxrd.convert_btxrd_cohort(tmp_path / "BTXRD", tmp_path / "cohort")
    assert not (tmp_path / "yolo").exists() and not (tmp_path / "cohort").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _union_boxes(fx: dict) -> dict[str, tuple]:
    out = {}
    for img_id, boxes in fx["expected"].items():
        b = np.array([x[1:] for x in boxes], dtype=float).reshape(-1, 4)
        out[Path(img_id).stem] = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()) if len(b) else None
    return out


def test_btxrd_converts_to_a_radiograph_cohort(tmp_path):
    fx = _btxrd_fixture(tmp_path / "archive" / "BTXRD")
    cohort = btxrd.btxrd_cohort(tmp_path / "archive")
    out = btxrd.convert_btxrd_cohort(tmp_path / "archive", tmp_path / "cohort")
    want_boxes = _union_boxes(fx)
    ids = sorted(fx["diagnosis"])

    # what was written, read with pandas and Pillow alone
    meta = json.loads((out / "cohort.json").read_text())
    assert meta["source"] == "btxrd" and meta["modalities"] == ["radiograph", "clinical"]
    assert meta["classes"] == ["normal", "benign", "malignant"] and meta["ordered"] is True
    assert "CC BY-NC-ND" in meta["licence"] and "Yao" in meta["citation"]
    labels = _labels_csv(out)
    assert list(labels.columns) == ["diagnosis"] and sorted(labels.index) == ids
    assert labels["diagnosis"].to_dict() == fx["diagnosis"]
    clinical = pd.read_csv(out / "clinical.csv", index_col="patient_id")
    assert list(clinical.columns) == ["center", "age", "sex", "site", "view"]  # never the subtype
    assert clinical["site"].to_dict() == fx["sites"]
    assert clinical["sex"].tolist() == list(fx["table"]["gender"])
    boxes = pd.read_csv(out / "boxes.csv", index_col="patient_id")
    for pid, box in want_boxes.items():
        if box is None:
            assert boxes.loc[pid].isna().all(), pid
        else:
            np.testing.assert_allclose(boxes.loc[pid].to_numpy(float), box)
    W, H = fx["size"]
    for pid in ids:
        png = read_image(out / "images" / "radiograph" / f"{pid}.png")
        suffix = ".jpg" if pid == "IMG000003" else ".jpeg"
        jpeg = np.asarray(Image.open(tmp_path / "archive" / "BTXRD" / "images" / f"{pid}{suffix}").convert("L"))
        assert png.shape == (H, W)
        np.testing.assert_array_equal(png, jpeg)
        np.testing.assert_array_equal(png, cohort.radiograph(pid))

    # and read back by the library
    back = _valid(out)
    assert back.equals(cohort)
    assert back.meta["classes"] == ["normal", "benign", "malignant"]


def test_btxrd_cohort_shrinks_images_and_boxes_alike(tmp_path):
    fx = _btxrd_fixture(tmp_path / "BTXRD")
    cohort = btxrd.btxrd_cohort(tmp_path / "BTXRD", include_normal=False, max_side=40)
    assert list(cohort.labels["diagnosis"]) == ["benign", "malignant", "benign"]
    assert cohort.meta["classes"] == ["benign", "malignant"]
    for pid, box in _union_boxes(fx).items():
        if box is None:
            assert pid not in cohort.ids
            continue
        assert cohort.radiograph(pid).shape == (30, 40)
        np.testing.assert_allclose(cohort.boxes.loc[pid].to_numpy(float), np.array(box) / 2)


def test_btxrd_reads_boxes_in_the_displayed_orientation(tmp_path):
    """A JPEG turned by its EXIF tag is annotated (by LabelMe) as displayed: 60 wide, 80 high."""
    _btxrd_fixture(tmp_path / "BTXRD")
    path = tmp_path / "BTXRD" / "images" / "IMG000002.jpeg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(path, "JPEG", exif=exif)
    assert btxrd.image_size(path) == (60, 80)
    ann_path = tmp_path / "BTXRD" / "Annotations" / "IMG000002.json"
    ann = json.loads(ann_path.read_text())
    with pytest.raises(ValueError, match=r"IMG000002.json: drawn on a 80x60 image, but the radiograph is 60x80"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    ann.update(imageWidth=60, imageHeight=80)
    ann_path.write_text(json.dumps(ann))
    cohort = btxrd.btxrd_cohort(tmp_path / "BTXRD")
    assert cohort.radiograph("IMG000002").shape == (80, 60)
    np.testing.assert_allclose(cohort.boxes.loc["IMG000002"].to_numpy(float), [10, 12, 30, 42])


def test_btxrd_table_contradictions_are_named(tmp_path):
    fx = _btxrd_fixture(tmp_path / "BTXRD")
    table = fx["table"].copy()
    table.loc[3, "benign"] = 0  # IMG000004: tumour, no flag, one subtype (osteochondroma) -> benign
    write_xlsx(table, tmp_path / "BTXRD" / "dataset.xlsx")
    assert btxrd.btxrd_cohort(tmp_path / "BTXRD").labels.at["IMG000004", "diagnosis"] == "benign"
    table.loc[3, "osteochondroma"] = 0
    write_xlsx(table, tmp_path / "BTXRD" / "dataset.xlsx")
    with pytest.raises(ValueError, match=r"dataset.xlsx: 'IMG000004.jpeg' has tumor = 1 but neither"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    table = fx["table"].copy()
    table.loc[0, "benign"] = 1  # a normal image (tumor = 0) flagged benign
    write_xlsx(table, tmp_path / "BTXRD" / "dataset.xlsx")
    with pytest.raises(ValueError, match=r"tumor = 0 but benign or malignant = 1: \['IMG000001.jpeg'\]"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    table = fx["table"].drop(columns=["malignant"])
    write_xlsx(table, tmp_path / "BTXRD" / "dataset.xlsx")
    with pytest.raises(ValueError, match=r"dataset.xlsx: missing column\(s\) \['malignant'\]"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    write_xlsx(fx["table"], tmp_path / "BTXRD" / "dataset.xlsx")
    (tmp_path / "BTXRD" / "images" / "IMG000005.jpeg").unlink()
    with pytest.raises(FileNotFoundError, match=r"IMG000005.jpeg"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    with pytest.raises(FileNotFoundError, match="does not look like the BTXRD archive"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD" / "Annotations")


def test_btxrd_bad_annotation_is_named(tmp_path):
    _btxrd_fixture(tmp_path / "BTXRD")
    ann = tmp_path / "BTXRD" / "Annotations" / "IMG000002.json"
    ann.write_text("{not json")
    with pytest.raises(ValueError, match="IMG000002.json: not a readable LabelMe JSON"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    ann.write_text(json.dumps({"shapes": [{"shape_type": "point", "points": [[1, 1]]}]}))
    with pytest.raises(ValueError, match="IMG000002.json: no rectangle or polygon"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD")
    with pytest.raises(ValueError, match="max_side must be an integer >= 16"):
        btxrd.btxrd_cohort(tmp_path / "BTXRD", max_side=4)


# ------------------------------------------------------------------------------ TCGA (GDC API)
def _star_tsv(path: Path, counts: dict[str, int]) -> None:
    """A GDC ``augmented_star_gene_counts.tsv``: a comment line, the header, four N_ rows, genes."""
    lines = ["# gene-model: GENCODE v36",
             "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\t"
             "tpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded",
             "N_unmapped\t\t\t100\t100\t100\t\t\t", "N_multimapping\t\t\t50\t50\t50\t\t\t",
             "N_noFeature\t\t\t70\t2000\t2100\t\t\t", "N_ambiguous\t\t\t40\t5\t5\t\t\t"]
    for i, (g, v) in enumerate(counts.items()):
        gtype = "lncRNA" if g.startswith("LINC") else "protein_coding"
        lines.append(f"ENSG{i:011d}.1\t{g}\t{gtype}\t{v}\t{v // 2}\t{v - v // 2}\t{v / 7:.4f}\t1.0\t1.0")
    path.write_text("\n".join(lines) + "\n")


def _gdc_fixture(srv: Path) -> dict:
    (srv / "data").mkdir(parents=True)
    patients = {  # vital status, days to death, days to last follow-up, primary diagnosis, sex, counts
        "TCGA-AA-0001": ("Dead", 400, None, "Leiomyosarcoma, NOS", "female", {"TP53": 35, "MDM2": 100, "LINC0001": 2}),
        "TCGA-AA-0002": ("Alive", None, 900, "Dedifferentiated liposarcoma", "male",
                         {"TP53": 10, "MDM2": 5, "LINC0001": 7}),
        "TCGA-AA-0003": ("Alive", None, None, "Leiomyosarcoma, NOS", "female", {"TP53": 20, "MDM2": 20, "LINC0001": 1}),
        "TCGA-AA-0004": ("Dead", 0, None, "Leiomyosarcoma, NOS", "male", {"TP53": 7, "MDM2": 3, "LINC0001": 1}),
        "TCGA-AA-0005": ("Dead", 120, 80, "Leiomyosarcoma, NOS", "not reported", {"TP53": 0, "MDM2": 9, "LINC0001": 4}),
    }
    files, cases = [], []
    for k, (pid, (vital, dtd, dlf, diag, sex, counts)) in enumerate(patients.items()):
        fid = f"file-{k}"
        _star_tsv(srv / "data" / fid, counts)
        files.append({"file_id": fid, "file_name": f"{fid}.rna_seq.augmented_star_gene_counts.tsv",
                      "md5sum": _digest(srv / "data" / fid, "md5"), "file_size": 1,
                      "cases": [{"submitter_id": pid, "samples": [{"sample_type": "Primary Tumor"}]}]})
        cases.append({"submitter_id": pid,
                      "demographic": {"gender": sex, "vital_status": vital, "days_to_death": dtd,
                                      "age_at_index": 50 + k},
                      "diagnoses": [{"days_to_last_follow_up": dlf, "primary_diagnosis": diag,
                                     "tissue_or_organ_of_origin": "Uterus, NOS"}]})
    # a normal-tissue file that must be ignored
    files.append({"file_id": "file-n", "file_name": "file-n.tsv", "md5sum": "0" * 32, "file_size": 1,
                  "cases": [{"submitter_id": "TCGA-AA-0001", "samples": [{"sample_type": "Solid Tissue Normal"}]}]})
    (srv / "files").write_text(json.dumps({"data": {"hits": files}}))
    (srv / "cases").write_text(json.dumps({"data": {"hits": cases}}))
    return patients


def test_tcga_download_verifies_md5_and_converts(tmp_path, serve):
    srv = tmp_path / "srv"
    patients = _gdc_fixture(srv)
    base = serve(srv)
    cases, files, paths = tcga.download_tcga("TCGA-SARC", tmp_path / "raw", base_url=base)
    assert len(paths) == 5
    out = tcga.convert_tcga(cases, files, paths, tmp_path / "cohort", "TCGA-SARC")
    back = _valid(out)
    kept = ["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0005"]  # 0003: no follow-up; 0004: time 0
    assert list(back.ids) == kept
    assert back.meta["excluded"] == {"no survival time": 1, "time <= 0": 1}
    assert back.meta["source"] == "tcga_sarc" and back.meta["gene_values"] == "counts"
    assert back.meta["modalities"] == ["genes", "clinical"] and back.meta["time_unit"] == "days"
    assert "GDC" in back.meta["licence"] and "Cancer Genome Atlas" in back.meta["citation"]
    assert list(back.genes.columns) == ["TP53", "MDM2"]  # the lncRNA is not protein-coding
    for pid in kept:
        assert back.genes.loc[pid].to_dict() == {g: patients[pid][5][g] for g in ("TP53", "MDM2")}
    assert back.labels["event"].tolist() == [True, False, True]
    assert back.labels["time"].tolist() == [400.0, 900.0, 120.0]  # the dead: days to death
    assert "diagnosis" not in back.labels
    assert back.clinical["sex"].tolist()[:2] == ["F", "M"] and pd.isna(back.clinical.at["TCGA-AA-0005", "sex"])
    assert back.clinical["primary_diagnosis"].tolist() == [patients[p][3] for p in kept]
    assert back.clinical["age"].tolist() == [50, 51, 54]
    assert back.equals(tcga.tcga_cohort(cases, files, paths, "TCGA-SARC"))

    listing = json.loads((srv / "files").read_text())
    listing["data"]["hits"][0]["md5sum"] = "f" * 32
    (srv / "files").write_text(json.dumps(listing))
    with pytest.raises(DataFetchError, match="checksum mismatch"):
        tcga.download_tcga("TCGA-SARC", tmp_path / "raw2", base_url=base)
    assert not list((tmp_path / "raw2").rglob("file-0*")), "the mismatched file was kept"


def test_tcga_histology_as_the_diagnosis(tmp_path, serve):
    srv = tmp_path / "srv"
    patients = _gdc_fixture(srv)
    cases, files, paths = tcga.download_tcga("TCGA-SARC", tmp_path / "raw", base_url=serve(srv))
    out = tcga.convert_tcga(cases, files, paths, tmp_path / "c", "TCGA-SARC", diagnosis="primary_diagnosis")
    cohort = _valid(out)
    assert cohort.meta["classes"] == ["Dedifferentiated liposarcoma", "Leiomyosarcoma, NOS"]
    assert cohort.labels["diagnosis"].to_dict() == {p: patients[p][3] for p in cohort.ids}
    assert "primary_diagnosis" not in cohort.clinical.columns  # a label is never an input


def test_tcga_rejects_bad_input(tmp_path, serve):
    with pytest.raises(ValueError, match="TCGA project id"):
        tcga.download_tcga("SARC", tmp_path)
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="bad.tsv: not a GDC STAR-counts file"):
        tcga.read_star_counts(tmp_path / "bad.tsv")
    srv = tmp_path / "srv"
    _gdc_fixture(srv)
    cases, files, paths = tcga.download_tcga("TCGA-SARC", tmp_path / "raw", base_url=serve(srv))
    (tmp_path / "answer.json").write_text(json.dumps({"warnings": {}}))
    with pytest.raises(ValueError, match=r"answer.json: not a GDC API answer \(expected data.hits\)"):
        tcga.convert_tcga(tmp_path / "answer.json", files, paths, tmp_path / "o", "TCGA-SARC")
    stray = tmp_path / "stray.tsv"
    _star_tsv(stray, {"TP53": 1})
    with pytest.raises(ValueError, match="stray.tsv is not a primary-tumour file in the GDC listing"):
        tcga.convert_tcga(cases, files, [*paths, stray], tmp_path / "o", "TCGA-SARC")
    with pytest.raises(ValueError, match="no expression files given"):
        tcga.convert_tcga(cases, files, [], tmp_path / "o", "TCGA-SARC")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ METABRIC
_METABRIC_COLUMNS = ["PATIENT_ID", "LYMPH_NODES_EXAMINED_POSITIVE", "NPI", "COHORT", "SEX", "AGE_AT_DIAGNOSIS",
                     "OS_MONTHS", "OS_STATUS", "CLAUDIN_SUBTYPE", "VITAL_STATUS", "RFS_MONTHS", "RFS_STATUS"]
_METABRIC_ROWS = [
    ["MB-0000", "10", "6.044", "1", "Female", "75.65", "140.5", "0:LIVING", "claudin-low", "Living", "138.65",
     "0:Not Recurred"],
    ["MB-0002", "0", "4.02", "1", "Female", "43.19", "84.63", "1:DECEASED", "LumA", "Died of Disease", "83.52",
     "1:Recurred"],
    ["MB-0005", "1", "4.03", "1", "Female", "48.87", "", "1:DECEASED", "LumB", "Died of Disease", "", ""],
    ["MB-0006", "3", "4.05", "1", "Female", "47.68", "164.93", "0:LIVING", "LumB", "Living", "162.76",
     "0:Not Recurred"],
    ["MB-0008", "8", "6.08", "1", "Female", "76.97", "0", "1:DECEASED", "LumB", "Died of Other Causes", "0",
     "1:Recurred"],
    ["MB-0010", "0", "4.06", "1", "Female", "78.77", "7.8", "1:DECEASED", "LumB", "Died of Disease", "7.8",
     "1:Recurred"],
]
_METABRIC_EXPRESSION = {"ESR1": [8.1, 6.2, 7.0, 9.9, 6.5, 7.7], "ERBB2": [9.5, 12.1, 8.8, 9.0, 10.1, 9.3],
                        "FOXA1": [7.2, 5.5, 6.1, None, 6.6, 8.0]}


def _metabric_fixture(study: Path, sample_prefix: str = "") -> None:
    """cBioPortal's brca_metabric layout: patient and sample tables with 4 '#' lines, the expression matrix."""
    study.mkdir(parents=True)
    n = len(_METABRIC_COLUMNS)
    header = ["#" + "\t".join(c.replace("_", " ").title() for c in _METABRIC_COLUMNS),
              "#" + "\t".join(c.lower() for c in _METABRIC_COLUMNS),
              "#" + "\t".join(["STRING"] * n), "#" + "\t".join(["1"] * n), "\t".join(_METABRIC_COLUMNS)]
    (study / "data_clinical_patient.txt").write_text("\n".join(header + ["\t".join(r) for r in _METABRIC_ROWS]) + "\n")
    ids = [r[0] for r in _METABRIC_ROWS]
    samples = ["#Patient Identifier\tSample Identifier\tCancer Type", "#p\ts\tc", "#STRING\tSTRING\tSTRING", "#1\t1\t1",
               "PATIENT_ID\tSAMPLE_ID\tCANCER_TYPE"] + [f"{p}\t{sample_prefix}{p}\tBreast Cancer" for p in ids]
    (study / "data_clinical_sample.txt").write_text("\n".join(samples) + "\n")
    expr = ["Hugo_Symbol\tEntrez_Gene_Id\t" + "\t".join(sample_prefix + p for p in ids)]
    for i, (g, values) in enumerate(_METABRIC_EXPRESSION.items()):
        expr.append(f"{g}\t{2000 + i}\t" + "\t".join("NA" if v is None else str(v) for v in values))
    expr += ["ESR1\t2099\t" + "\t".join(["0"] * len(ids)), "\t999\t" + "\t".join(["1"] * len(ids))]
    (study / "data_mrna_illumina_microarray.txt").write_text("\n".join(expr) + "\n")


def test_metabric_converts_to_a_cohort(tmp_path):
    _metabric_fixture(tmp_path / "unpacked" / "brca_metabric", sample_prefix="S-")
    out = metabric.convert_metabric(tmp_path / "unpacked", tmp_path / "cohort")
    back = _valid(out)
    kept = ["MB-0000", "MB-0002", "MB-0006", "MB-0010"]  # MB-0005: no OS time; MB-0008: OS time 0
    assert list(back.ids) == kept
    assert back.meta["excluded"] == {"no overall survival": 1, "time <= 0": 1}
    assert back.meta["gene_values"] == "log_expression" and back.meta["time_unit"] == "months"
    assert back.meta["source"] == "metabric" and "ODbL" in back.meta["licence"] and "Curtis" in back.meta["citation"]
    assert list(back.genes.columns) == ["ESR1", "ERBB2"]  # FOXA1 is missing for MB-0006
    assert back.meta["genes_left_out_missing_values"] == 1
    rows = {r[0]: k for k, r in enumerate(_METABRIC_ROWS)}
    for g in ("ESR1", "ERBB2"):
        assert back.genes[g].tolist() == [_METABRIC_EXPRESSION[g][rows[p]] for p in kept]  # the first ESR1 row
    assert back.labels["event"].tolist() == [False, True, False, True]
    np.testing.assert_array_equal(back.labels["time"], [140.5, 84.63, 164.93, 7.8])
    # inputs only: no outcome column (vital status, relapse) leaks into the clinical table
    assert set(back.clinical.columns) == {"age", "NPI", "LYMPH_NODES_EXAMINED_POSITIVE", "CLAUDIN_SUBTYPE"}
    assert back.clinical["age"].tolist() == [75.65, 43.19, 47.68, 78.77]
    assert "diagnosis" not in back.labels


def test_metabric_subtype_as_the_diagnosis(tmp_path):
    _metabric_fixture(tmp_path / "brca_metabric")
    cohort = _valid(metabric.convert_metabric(tmp_path, tmp_path / "c", diagnosis="CLAUDIN_SUBTYPE",
                                              classes=["LumA", "LumB"]))
    assert list(cohort.ids) == ["MB-0002", "MB-0006", "MB-0010"]  # MB-0000 is claudin-low
    assert cohort.meta["excluded"]["no CLAUDIN_SUBTYPE among the classes"] == 1
    assert cohort.labels["diagnosis"].tolist() == ["LumA", "LumB", "LumB"]
    assert cohort.meta["classes"] == ["LumA", "LumB"]
    assert "CLAUDIN_SUBTYPE" not in cohort.clinical.columns
    with pytest.raises(ValueError, match=r"class\(es\) \['Basal'\] never occur in column 'CLAUDIN_SUBTYPE'"):
        metabric.metabric_cohort(tmp_path, diagnosis="CLAUDIN_SUBTYPE", classes=["LumA", "Basal"])


def test_metabric_checksum_pinned_download(tmp_path, serve):
    """The archive goes through the same pooch path: the right hash passes, a wrong one fails."""
    import tarfile

    _metabric_fixture(tmp_path / "pack" / "brca_metabric")
    srv = tmp_path / "srv"
    srv.mkdir()
    with tarfile.open(srv / "brca_metabric.tar.gz", "w:gz") as t:
        t.add(tmp_path / "pack" / "brca_metabric", arcname="brca_metabric")
    base = serve(srv)
    sha = _digest(srv / "brca_metabric.tar.gz", "sha256")
    got = fetch_url(f"{base}/brca_metabric.tar.gz", f"sha256:{sha}", "brca_metabric.tar.gz", tmp_path / "raw")
    with tarfile.open(got) as t:
        t.extractall(tmp_path / "x", filter="data")
    assert len(_valid(metabric.convert_metabric(tmp_path / "x", tmp_path / "t"))) == 4
    with pytest.raises(DataFetchError):
        fetch_url(f"{base}/brca_metabric.tar.gz", "sha256:" + "1" * 64, "m.tar.gz", tmp_path / "raw3")
    assert list((tmp_path / "raw3").iterdir()) == []


def test_metabric_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_clinical_patient.txt"):
        metabric.convert_metabric(tmp_path, tmp_path / "o")
    _metabric_fixture(tmp_path / "s")
    p = tmp_path / "s" / "data_clinical_patient.txt"
    p.write_text(p.read_text().replace("0:LIVING", "ALIVE?"))
    with pytest.raises(ValueError, match=r"data_clinical_patient.txt: OS_STATUS values not understood: \['ALIVE\?'\]"):
        metabric.convert_metabric(tmp_path / "s", tmp_path / "o")
    p.write_text(p.read_text().replace("OS_MONTHS", "OS_TIME"))
    with pytest.raises(ValueError, match=r"data_clinical_patient.txt: missing column\(s\) \['OS_MONTHS'\]"):
        metabric.convert_metabric(tmp_path / "s", tmp_path / "o")
    _metabric_fixture(tmp_path / "t", sample_prefix="S-")
    (tmp_path / "t" / "data_clinical_sample.txt").unlink()
    (tmp_path / "t" / "data_clinical_sample.txt").write_text("PATIENT_ID\tSAMPLE_ID\nMB-0000\tS-MB-0000\n")
    with pytest.raises(ValueError, match=r"data_mrna_illumina_microarray.txt: sample\(s\) \['S-MB-0002'"):
        metabric.convert_metabric(tmp_path / "t", tmp_path / "o")
    (tmp_path / "t" / "data_mrna_illumina_microarray.txt").unlink()
    with pytest.raises(FileNotFoundError, match="no expression file; expected one of"):
        metabric.convert_metabric(tmp_path / "t", tmp_path / "o")
    assert not (tmp_path / "o").exists()
    assert os.environ.get("ONCOLAB_OFFLINE") == "1"


# ------------------------------------------------------------------------------ packaged datasets
def _reference(name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The dataset straight from its package: inputs, event, time (no converter code involved)."""
    import lifelines.datasets
    import sksurv.datasets

    sk = {"breast_cancer": ("load_breast_cancer", "e.tdm", "t.tdm"), "gbsg2": ("load_gbsg2", "cens", "time"),
          "whas500": ("load_whas500", "fstat", "lenfol"),
          "veterans_lung_cancer": ("load_veterans_lung_cancer", "Status", "Survival_in_days"),
          "aids": ("load_aids", "censor", "time"), "flchain": ("load_flchain", "death", "futime")}
    ll = {"lung": ("load_lung", "status", "time"), "larynx": ("load_larynx", "death", "time"),
          "leukemia": ("load_leukemia", "status", "t")}
    if name in sk:
        loader, e, t = sk[name]
        X, y = getattr(sksurv.datasets, loader)()
        return X.reset_index(drop=True), y[e].astype(bool), y[t].astype(float)
    loader, e, t = ll[name]
    df = getattr(lifelines.datasets, loader)().reset_index(drop=True)
    return df.drop(columns=[e, t]), df[e].to_numpy() == 1, df[t].to_numpy(float)


def _same_values(got: pd.Series, want: pd.Series, what: str) -> None:
    if pd.api.types.is_numeric_dtype(want) and not isinstance(want.dtype, pd.CategoricalDtype):
        np.testing.assert_array_equal(got.to_numpy(float), want.to_numpy(float), err_msg=what)
    else:  # categories are written as text; a CSV reads '0'/'1' back as numbers
        assert [str(v) for v in got] == [str(v) for v in want], what


@pytest.mark.parametrize("name", sorted(packaged.PACKAGED))
def test_packaged_dataset_converts_and_loads(name, tmp_path):
    out = packaged.convert_packaged(name, tmp_path / name)
    back = _valid(out)
    X, event, time_ = _reference(name)
    keep = time_ > 0
    assert list(back.ids) == [str(i) for i in np.flatnonzero(keep)]
    np.testing.assert_array_equal(back.labels["time"], time_[keep])
    np.testing.assert_array_equal(back.labels["event"], event[keep])
    assert list(back.labels.columns) == ["time", "event"]  # survival; no diagnosis by default
    assert back.meta["source"] == name and back.meta["time_unit"] == packaged.PACKAGED[name].time_unit
    assert back.meta["licence"].startswith("distributed with") and back.meta["citation"]
    assert back.meta["package_version"] == version(packaged.PACKAGED[name].package)
    assert back.meta["excluded"] == ({"time <= 0": int((~keep).sum())} if (~keep).any() else {})
    X = X[keep].reset_index(drop=True)
    if name == "breast_cancer":
        assert back.meta["modalities"] == ["genes", "clinical"] and back.meta["gene_values"] == "log_expression"
        assert back.genes.shape == (198, 76) and list(back.clinical.columns) == ["age", "er", "grade", "size"]
        np.testing.assert_array_equal(back.genes.to_numpy(), X[list(back.genes.columns)].to_numpy())
    else:
        assert back.meta["modalities"] == ["clinical"] and "genes" not in back.tables
    if name == "flchain":
        assert "chapter" not in back.clinical.columns  # the cause of death gives the outcome away
        X = X.drop(columns=["chapter"])
    if name == "larynx":
        stage = np.array(["I", "II", "III", "IV"])[X[["Stage_II", "Stage_III", "Stage_IV"]].to_numpy() @ [1, 2, 3]]
        assert back.clinical["stage"].tolist() == stage.tolist()
        X = X.drop(columns=["Stage_II", "Stage_III", "Stage_IV"])
    inputs = pd.concat([back.clinical, back.genes], axis=1) if "genes" in back.tables else back.clinical
    assert sorted(c for c in inputs.columns if c != "stage") == sorted(X.columns)
    for c in X.columns:
        _same_values(inputs[c].reset_index(drop=True), X[c], f"{name}.{c}")


def test_packaged_datasets_match_the_book_loaders():
    """breast_cancer, gbsg2 and whas500 are the data chapters 1, 7 and 8 load through oncolab.data."""
    from oncolab.data import load_breast_cancer_genes, load_gbsg2, load_whas500

    for name, load in (("breast_cancer", load_breast_cancer_genes), ("gbsg2", load_gbsg2), ("whas500", load_whas500)):
        cohort, ds = packaged.packaged_cohort(name), load()
        np.testing.assert_array_equal(cohort.survival_y()["time"], ds.y["time"])
        inputs = cohort.clinical.join(cohort.genes) if "genes" in cohort.tables else cohort.clinical
        pd.testing.assert_frame_equal(inputs[list(ds.X.columns)], ds.X)


def test_packaged_grade_as_the_diagnosis(tmp_path):
    X, _, _ = _reference("gbsg2")
    cohort = packaged.packaged_cohort("gbsg2", diagnosis="tgrade", classes=["I", "II", "III"], ordered=True)
    assert cohort.meta["classes"] == ["I", "II", "III"] and cohort.meta["ordered"] is True
    assert cohort.labels["diagnosis"].tolist() == X["tgrade"].astype(str).tolist()
    assert "tgrade" not in cohort.clinical.columns
    two = packaged.packaged_cohort("gbsg2", diagnosis="tgrade", classes=["I", "III"])
    assert len(two) == int((X["tgrade"] != "II").sum())
    assert two.meta["excluded"] == {"no tgrade among the classes": int((X["tgrade"] == "II").sum())}
    out = packaged.convert_packaged("veterans_lung_cancer", tmp_path / "vet", diagnosis="Celltype")
    meta = json.loads((out / "cohort.json").read_text())
    assert meta["classes"] == ["adeno", "large", "smallcell", "squamous"] and meta["ordered"] is False
    assert list(_labels_csv(out).columns) == ["diagnosis", "time", "event"]
    back = _valid(out)
    assert back.labels["diagnosis"].tolist() == _reference("veterans_lung_cancer")[0]["Celltype"].astype(str).tolist()


def test_packaged_bad_requests_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown packaged dataset 'nope'; expected one of \['aids'"):
        packaged.packaged_cohort("nope")
    with pytest.raises(ValueError, match="no column 'grade' to use as the diagnosis; expected one of"):
        packaged.packaged_cohort("gbsg2", diagnosis="grade")
    with pytest.raises(ValueError, match=r"'tgrade' gives 1 class\(es\) \['I'\]; a diagnosis needs at least two"):
        packaged.packaged_cohort("gbsg2", diagnosis="tgrade", classes=["I"])
    with pytest.raises(ValueError, match="classes or ordered are given without a diagnosis column"):
        packaged.packaged_cohort("gbsg2", classes=["I", "II"])
    with pytest.raises(ValueError, match="ordered classes need their order: give the classes of 'tgrade'"):
        packaged.packaged_cohort("gbsg2", diagnosis="tgrade", ordered=True)
    packaged.convert_packaged("larynx", tmp_path / "l")
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        packaged.convert_packaged("larynx", tmp_path / "l")
    assert len(_valid(packaged.convert_packaged("larynx", tmp_path / "l", overwrite=True))) == 90


def test_packaged_command_line(tmp_path, capsys):
    assert packaged.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in packaged.PACKAGED) and "licence" in listed
    assert packaged.main(["gbsg2", str(tmp_path / "g"), "--diagnosis", "tgrade", "--classes", "I,II,III",
                          "--ordered"]) == 0
    assert f"wrote {tmp_path / 'g'}" in capsys.readouterr().out
    meta = json.loads((tmp_path / "g" / "cohort.json").read_text())
    assert meta["classes"] == ["I", "II", "III"] and meta["ordered"] is True
    assert packaged.main(["nope", str(tmp_path / "n")]) == 1
    assert "unknown packaged dataset 'nope'" in capsys.readouterr().err and not (tmp_path / "n").exists()


# ------------------------------------------------------------------------------ shared checks
def _tables(n: int = 3) -> dict:
    ids = pd.Index([f"p{i}" for i in range(n)], name="patient_id")
    return {"time": pd.Series(np.arange(1.0, n + 1), index=ids), "event": pd.Series([True, False, True][:n], index=ids),
            "clinical": pd.DataFrame({"age": np.arange(n) + 40.0}, index=ids)}


def _make(**overrides):
    kwargs = {"source": "test", "where": "table.csv", "licence": "CC0", "citation": "nobody", "time_unit": "days",
              **_tables(), **overrides}
    return make_cohort(**kwargs)


def test_make_cohort_orders_tables_by_the_labels():
    t = _tables()
    cohort = _make(clinical=t["clinical"].iloc[::-1])
    assert list(cohort.clinical.index) == ["p0", "p1", "p2"]
    assert cohort.clinical["age"].tolist() == [40.0, 41.0, 42.0]
    assert cohort.meta == {"source": "test", "modalities": ["clinical"], "licence": "CC0", "citation": "nobody",
                           "time_unit": "days"}


@pytest.mark.parametrize("change,message", [
    ({"time": pd.Series([1.0, 0.0, 2.0], index=pd.Index(["p0", "p1", "p2"], name="patient_id"))},
     r"table.csv: survival time must be a finite number > 0; patient 'p1' has 0.0"),
    ({"event": pd.Series([True, "yes", False], index=pd.Index(["p0", "p1", "p2"], name="patient_id"))},
     r"table.csv: event must be True/False \(or 1/0\); patient 'p1' has 'yes'"),
    ({"event": None}, "survival needs both time and event, got only time"),
    ({"time_unit": None}, "time_unit is required with survival"),
    ({"time": None, "event": None}, "no outcome; expected a diagnosis"),
    ({"clinical": None}, "no model input; expected clinical, genes or radiographs"),
    ({"clinical": pd.DataFrame({"age": [1.0, 2.0]}, index=pd.Index(["p0", "p9"], name="patient_id"))},
     r"the clinical table does not hold the labelled patients \(extra \['p9'\], missing \['p1', 'p2'\]\)"),
    ({"clinical": pd.DataFrame({"age": [1.0, 2.0, 3.0]}, index=pd.Index(["p0", "p1", "p2"], name="id"))},
     "the clinical table must be indexed by 'patient_id', got 'id'"),
    ({"diagnosis": pd.Series(["a", "b", "c"], index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "classes": ["a", "b"]}, r"diagnosis value\(s\) \['c'\] are not among the classes \['a', 'b'\]"),
    ({"diagnosis": pd.Series(["a", "a", "a"], index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "classes": ["a"]}, "a diagnosis needs two or more distinct classes"),
    ({"genes": pd.DataFrame({"A": [1.0, np.nan, 3.0], "B": [1.0, 2.0, 3.0]},
                            index=pd.Index(["p0", "p1", "p2"], name="patient_id")), "gene_values": "log_expression"},
     "patient 'p1' lacks some genes; expected a value for every gene, or none"),
    ({"diagnosis": pd.Series(["a", "a", "a"], index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "classes": ["a", "b"]}, r"class\(es\) \['b'\] have no patient"),
    ({"genes": pd.DataFrame({"TP53": [1.0, -2.0, 3.0]}, index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "gene_values": "counts"}, "gene_values='counts' needs whole numbers >= 0"),
    ({"genes": pd.DataFrame({"TP53": [1.0, -0.5, 3.0]}, index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "gene_values": "log_expression"}, r"gene_values='log_expression' needs values >= 0 .* the smallest is -0.5"),
    ({"genes": pd.DataFrame({"TP53": [1.0, 2.0, 3.0]}, index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "gene_values": "tpm"}, r"gene_values must be one of \['counts', 'log_expression'\], got 'tpm'"),
    ({"genes": pd.DataFrame({"TP53": ["hi", "lo", "lo"]}, index=pd.Index(["p0", "p1", "p2"], name="patient_id")),
      "gene_values": "log_expression"}, r"gene column\(s\) \['TP53'\] are not numeric"),
    ({"boxes": pd.DataFrame([[0, 0, 5, 5]] * 3, columns=["x0", "y0", "x1", "y1"],
                            index=pd.Index(["p0", "p1", "p2"], name="patient_id"))},
     "boxes are drawn on radiographs, but no image source was given"),
])
def test_make_cohort_names_what_is_wrong(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _make(**change)


def test_make_cohort_checks_boxes_and_ids():
    class Images:
        def radiograph(self, pid):
            return np.zeros((8, 8), np.uint8)

    ids = pd.Index(["p0", "p1", "p2"], name="patient_id")
    ok = pd.DataFrame([[0, 0, 5, 5], [np.nan] * 4, [1, 2, 3, 4]], columns=["x0", "y0", "x1", "y1"], index=ids)
    cohort = _make(boxes=ok, images=Images())
    assert cohort.meta["modalities"] == ["radiograph", "clinical"]
    bad = ok.copy()
    bad.loc["p2", "x1"] = 0
    with pytest.raises(ValueError, match=r"patient 'p2' has the box \[1.0, 2.0, 0.0, 4.0\]; expected x0 < x1"):
        _make(boxes=bad, images=Images())
    with pytest.raises(TypeError, match="image source must have a radiograph"):
        _make(boxes=ok, images=object())
    dup = pd.Index(["p0", "p0", "p2"], name="patient_id")
    with pytest.raises(ValueError, match="patient 'p0' appears twice in the labels table"):
        _make(time=pd.Series([1.0, 2.0, 3.0], index=dup), event=pd.Series([True] * 3, index=dup),
              clinical=pd.DataFrame({"a": [1, 2, 3]}, index=dup))


def test_exclude_counts_each_patient_under_its_first_reason():
    keep, counts = exclude([("a", [True, True, False, False]), ("b", [True, False, True, False])])
    assert keep.tolist() == [False, False, False, True]
    assert counts == {"a": 2, "b": 1}
    keep, counts = exclude([("a", [False, False])])
    assert keep.tolist() == [True, True] and counts == {}
    with pytest.raises(ValueError, match=r"the mask for 'b' has shape \(1,\); expected \(2,\)"):
        exclude([("a", [False, False]), ("b", [True])])


def test_the_datasets_page_lists_every_registry_entry():
    """book/datasets.md names a working script for every registry entry."""
    import importlib

    page = (Path(__file__).resolve().parents[1] / "book" / "datasets.md").read_text()
    module_of = {"pathmnist": "medmnist", "breastmnist": "medmnist"}
    for name in registry.REGISTRY:
        module = module_of.get(name, name)
        assert f"python -m data_scripts.{module}" in page, name
        assert callable(importlib.import_module(f"data_scripts.{module}").main)
