"""Real-dataset scripts, offline: each converter on a small fixture written in the original
format, checksum verification through a local HTTP server, and fast offline failure."""

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
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_scripts import btxrd, medmnist, metabric, registry, tcga  # noqa: E402
from data_scripts.registry import DataFetchError, fetch, fetch_url  # noqa: E402
from oncolab.data import RealDataset, read_data_yaml, read_image, read_yolo_labels  # noqa: E402


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
    (medmnist, ["pathmnist", "OUT"]), (btxrd, ["OUT"]), (metabric, ["OUT", "--trust-on-first-use"]),
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
        row = {"image_id": img_id, "center": 1, "age": 20, "gender": "F",
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
            ann = {"version": "5.0.1", "shapes": shapes, "imagePath": img_id, "imageHeight": H, "imageWidth": W}
            (root / "Annotations" / f"{Path(img_id).stem}.json").write_text(json.dumps(ann))
    table = pd.DataFrame(rows)
    write_xlsx(table, root / "dataset.xlsx")
    return {"expected": expected, "table": table, "size": (W, H)}


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
    assert not (tmp_path / "yolo").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".yolo")]


# ------------------------------------------------------------------------------ TCGA (GDC API)
def _star_tsv(path: Path, tpm: dict[str, float]) -> None:
    lines = ["# gene-model: GENCODE v36",
             "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\t"
             "tpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded",
             "N_unmapped\t\t\t100\t100\t100\t\t\t", "N_multimapping\t\t\t50\t50\t50\t\t\t"]
    for i, (g, v) in enumerate(tpm.items()):
        gtype = "lncRNA" if g.startswith("LINC") else "protein_coding"
        lines.append(f"ENSG{i:011d}.1\t{g}\t{gtype}\t10\t5\t5\t{v}\t1.0\t1.0")
    path.write_text("\n".join(lines) + "\n")


def _gdc_fixture(srv: Path) -> dict:
    (srv / "data").mkdir(parents=True)
    patients = {"TCGA-AA-0001": ("Dead", 400, None, {"TP53": 3.5, "MDM2": 10.0, "LINC0001": 2.0}),
                "TCGA-AA-0002": ("Alive", None, 900, {"TP53": 1.0, "MDM2": 0.5, "LINC0001": 7.0}),
                "TCGA-AA-0003": ("Alive", None, None, {"TP53": 2.0, "MDM2": 2.0, "LINC0001": 1.0})}
    files, cases = [], []
    for k, (pid, (vital, dtd, dlf, tpm)) in enumerate(patients.items()):
        fid = f"file-{k}"
        _star_tsv(srv / "data" / fid, tpm)
        files.append({"file_id": fid, "file_name": f"{fid}.rna_seq.augmented_star_gene_counts.tsv",
                      "md5sum": _digest(srv / "data" / fid, "md5"), "file_size": 1,
                      "cases": [{"submitter_id": pid, "samples": [{"sample_type": "Primary Tumor"}]}]})
        cases.append({"submitter_id": pid,
                      "demographic": {"gender": "female", "vital_status": vital, "days_to_death": dtd,
                                      "age_at_index": 50 + k},
                      "diagnoses": [{"days_to_last_follow_up": dlf, "primary_diagnosis": "Leiomyosarcoma, NOS",
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
    assert len(paths) == 3
    out = tcga.convert_tcga(cases, files, paths, tmp_path / "tables", "TCGA-SARC")
    ds = tcga.load_tcga(out)
    assert isinstance(ds, RealDataset)
    assert list(ds.X.index) == ["TCGA-AA-0001", "TCGA-AA-0002"]  # 0003 has no follow-up time
    assert "LINC0001" not in ds.X.columns
    assert ds.X.at["TCGA-AA-0001", "MDM2"] == patients["TCGA-AA-0001"][3]["MDM2"]
    assert ds.y["event"].tolist() == [True, False] and ds.y["time"].tolist() == [400.0, 900.0]
    assert json.loads((out / "meta.json").read_text())["dropped_patients"] == 1

    listing = json.loads((srv / "files").read_text())
    listing["data"]["hits"][0]["md5sum"] = "f" * 32
    (srv / "files").write_text(json.dumps(listing))
    with pytest.raises(DataFetchError, match="checksum mismatch"):
        tcga.download_tcga("TCGA-SARC", tmp_path / "raw2", base_url=base)
    assert not list((tmp_path / "raw2").rglob("file-0*")), "the mismatched file was kept"


def test_tcga_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="TCGA project id"):
        tcga.download_tcga("SARC", tmp_path)
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="STAR-counts"):
        tcga.read_star_counts(tmp_path / "bad.tsv")


# ------------------------------------------------------------------------------ METABRIC
def _metabric_fixture(study: Path) -> None:
    study.mkdir(parents=True)
    header = ["#Patient Identifier\tAge\tOverall Survival (Months)\tOverall Survival Status\tNPI",
              "#Identifier\tAge\tOS months\tOS status\tNPI", "#STRING\tNUMBER\tNUMBER\tSTRING\tNUMBER",
              "#1\t1\t1\t1\t1", "PATIENT_ID\tAGE_AT_DIAGNOSIS\tOS_MONTHS\tOS_STATUS\tNPI"]
    rows = ["MB-0000\t75.6\t140.5\t0:LIVING\t6.04", "MB-0002\t43.2\t84.6\t1:DECEASED\t4.02",
            "MB-0005\t48.9\t\t1:DECEASED\t4.03", "MB-0006\t47.7\t164.9\t0:LIVING\t4.05"]
    (study / "data_clinical_patient.txt").write_text("\n".join(header + rows) + "\n")
    expr = ["Hugo_Symbol\tEntrez_Gene_Id\tMB-0000\tMB-0002\tMB-0005\tMB-0006",
            "ESR1\t2099\t8.1\t6.2\t7.0\t9.9", "ERBB2\t2064\t9.5\t12.1\t8.8\t9.0",
            "ESR1\t2099\t0\t0\t0\t0", "\t999\t1\t1\t1\t1"]
    (study / "data_mrna_illumina_microarray.txt").write_text("\n".join(expr) + "\n")


def test_metabric_converts_to_the_book_tables(tmp_path):
    _metabric_fixture(tmp_path / "unpacked" / "brca_metabric")
    out = metabric.convert_metabric(tmp_path / "unpacked", tmp_path / "tables")
    ds = metabric.load_metabric(out)
    assert list(ds.X.index) == ["MB-0000", "MB-0002", "MB-0006"]
    assert list(ds.X.columns) == ["age", "NPI", "ESR1", "ERBB2"]
    assert ds.X.at["MB-0002", "ERBB2"] == 12.1 and ds.X.at["MB-0000", "ESR1"] == 8.1
    assert ds.y["event"].tolist() == [False, True, False]
    np.testing.assert_allclose(ds.y["time"], [140.5, 84.6, 164.9])


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
    assert len(metabric.load_metabric(metabric.convert_metabric(tmp_path / "x", tmp_path / "t")).X) == 3
    with pytest.raises(DataFetchError):
        fetch_url(f"{base}/brca_metabric.tar.gz", "sha256:" + "1" * 64, "m.tar.gz", tmp_path / "raw3")
    assert list((tmp_path / "raw3").iterdir()) == []


def test_metabric_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_clinical_patient.txt"):
        metabric.convert_metabric(tmp_path, tmp_path / "o")
    _metabric_fixture(tmp_path / "s")
    p = tmp_path / "s" / "data_clinical_patient.txt"
    p.write_text(p.read_text().replace("0:LIVING", "ALIVE?"))
    with pytest.raises(ValueError, match="ALIVE"):
        metabric.convert_metabric(tmp_path / "s", tmp_path / "o")
    assert not (tmp_path / "o").exists()
    assert os.environ.get("ONCOLAB_OFFLINE") == "1"



def test_the_datasets_page_lists_every_registry_entry():
    """book/datasets.md names a working script for every registry entry."""
    import importlib

    page = (Path(__file__).resolve().parents[1] / "book" / "datasets.md").read_text()
    module_of = {"pathmnist": "medmnist", "breastmnist": "medmnist"}
    for name in registry.REGISTRY:
        module = module_of.get(name, name)
        assert f"python -m data_scripts.{module}" in page, name
        assert callable(importlib.import_module(f"data_scripts.{module}").main)
