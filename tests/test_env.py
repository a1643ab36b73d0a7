"""oncolab.env: import has no side effects; the offline decision is taken right before a hub
call; a hub call offline fails fast with advice; ultralytics gets its font before training;
seeds, device and data folder.

The import checks run in a fresh interpreter whose home, configuration and cache folders are
empty temporary folders and whose socket functions record every call and refuse it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oncolab.env import (
    HubUnavailableError,
    configure,
    data_dir,
    get_device,
    install_ultralytics_font,
    network_available,
    require_hub,
    seed_everything,
)

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "YOLO_OFFLINE")

# Runs first in the child: every way out to the network is recorded, then refused.
PREAMBLE = """
import json, os, socket, sys, time
CALLS = []
def _refuse(name):
    def refuse(*args, **kwargs):
        CALLS.append([name, repr([a for a in args if not isinstance(a, socket.socket)][:2])])
        raise OSError("network access refused: " + name)
    return refuse
socket.getaddrinfo = _refuse("getaddrinfo")
socket.create_connection = _refuse("create_connection")
socket.socket.connect = _refuse("socket.connect")
socket.socket.connect_ex = _refuse("socket.connect_ex")
ENV0 = dict(os.environ)
def changed_env():
    return {k: os.environ.get(k) for k in set(ENV0) | set(os.environ) if ENV0.get(k) != os.environ.get(k)}
"""


def _isolated(tmp_path: Path, offline: str | None) -> tuple[dict[str, str], dict[str, Path]]:
    """A child environment with empty home/config/cache folders and no offline variable set."""
    folders = {name: tmp_path / name for name in ("home", "config", "cache", "yolo", "cwd")}
    for folder in folders.values():
        folder.mkdir()
    drop = ("HF_", "XDG_", "YOLO_", "ONCOLAB_", "TRANSFORMERS_", "TOKENIZERS_", "TORCH_HOME", "MPLCONFIGDIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HOME=str(folders["home"]), XDG_CONFIG_HOME=str(folders["config"]),
               XDG_CACHE_HOME=str(folders["cache"]), YOLO_CONFIG_DIR=str(folders["yolo"]),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    if offline is not None:
        env["ONCOLAB_OFFLINE"] = offline
    return env, folders


def _run(code: str, tmp_path: Path, offline: str | None = None, timeout: int = 180) -> tuple[dict, dict[str, Path]]:
    env, folders = _isolated(tmp_path, offline)
    out = subprocess.run([sys.executable, "-c", PREAMBLE + code], env=env, cwd=folders["cwd"],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), folders


def _written(folders: dict[str, Path]) -> list[str]:
    return sorted(str(p) for f in folders.values() for p in f.rglob("*"))


# --- import ------------------------------------------------------------------------------------
def test_import_opens_no_connection_writes_no_file_and_switches_no_hub_off(tmp_path):
    code = ("import oncolab, oncolab.env, oncolab.data, oncolab.detection, oncolab.text, oncolab.vision\n"
            "print(json.dumps({'calls': CALLS, 'env': changed_env(), "
            "'ultralytics': 'ultralytics' in sys.modules}))")
    res, folders = _run(code, tmp_path)
    assert res["calls"] == []
    hub_variables = ("HF_", "TRANSFORMERS_", "TOKENIZERS_", "YOLO_", "ONCOLAB_")
    assert {k: v for k, v in res["env"].items() if k.startswith(hub_variables)} == {}
    assert _written(folders) == []
    assert not res["ultralytics"]      # it looks up DNS names when imported before the decision


# --- the offline decision -----------------------------------------------------------------------
HUB_CALLS = f"FLAGS = {FLAGS!r}\n" + """
import timm  # imported by image_encoder before it asks for the hub: its import time is not waiting
from oncolab.detection import YoloDetector
from oncolab.env import HubUnavailableError
from oncolab.text import BIOBERT, BioBertEncoder
from oncolab.vision import image_encoder
before = {k: os.environ.get(k) for k in FLAGS}
calls_at_import = list(CALLS)
out = []
for label, call in [("biobert", lambda: BioBertEncoder(BIOBERT)),
                    ("timm", lambda: image_encoder("resnet18", pretrained=True)),
                    ("yolo", lambda: YoloDetector(pretrained=True, device="cpu"))]:
    t = time.perf_counter()
    try:
        call()
        message = None
    except HubUnavailableError as e:
        message = str(e)
    out.append([label, message, time.perf_counter() - t])
after = {k: os.environ.get(k) for k in FLAGS}
print(json.dumps({"out": out, "before": before, "after": after, "calls_at_import": calls_at_import,
                  "calls": CALLS}))
"""


def _check_hub_failures(res):
    expected = {"biobert": ("'dmis-lab/biobert-base-cased-v1.2'", "model=<a folder"),
                "timm": ("'timm/resnet18'", "pretrained=False"),
                "yolo": ("'yolo11n.pt'", "model='path/to/yolo11n.pt'")}
    assert [label for label, _, _ in res["out"]] == list(expected)
    for label, message, seconds in res["out"]:
        assert message is not None, f"{label}: no HubUnavailableError offline"
        what, hint = expected[label]
        assert what in message and hint in message and "Google Colab" in message, message
        assert seconds < 2.0, f"{label} took {seconds:.2f} s to fail"
    assert res["calls_at_import"] == []
    assert res["before"] == dict.fromkeys(FLAGS)               # nothing decided at import
    assert res["after"] == dict.fromkeys(FLAGS, "1")           # decided at the first hub call


def test_hub_calls_fail_fast_with_advice_when_forced_offline(tmp_path):
    res, _ = _run(HUB_CALLS, tmp_path, offline="1")
    _check_hub_failures(res)
    assert res["calls"] == []                                  # ONCOLAB_OFFLINE=1: no probe at all
    assert "ONCOLAB_OFFLINE is set" in res["out"][0][1]


def test_hub_calls_fail_fast_when_the_hub_does_not_answer(tmp_path):
    res, _ = _run(HUB_CALLS, tmp_path, offline=None)
    _check_hub_failures(res)
    # one probe, at the first hub call, remembered for the others
    assert res["calls"] == [["create_connection", repr([("huggingface.co", 443)])]]
    assert "the hub did not answer" in res["out"][0][1]


def test_detector_takes_the_decision_before_importing_ultralytics(tmp_path):
    code = """
from oncolab.detection import YoloDetector
from oncolab.env import install_ultralytics_font
det = YoloDetector(imgsz=64, device="cpu", project="runs", verbose=False)
import ultralytics.utils
print(json.dumps({"calls": CALLS, "yolo_offline": os.environ.get("YOLO_OFFLINE"),
                  "online": ultralytics.utils.ONLINE, "config": str(ultralytics.utils.USER_CONFIG_DIR),
                  "fonts": str(install_ultralytics_font())}))
"""
    res, folders = _run(code, tmp_path, offline=None)
    # the probe only: ultralytics found YOLO_OFFLINE set and looked nothing up
    assert res["calls"] == [["create_connection", repr([("huggingface.co", 443)])]]
    assert res["yolo_offline"] == "1" and res["online"] is False
    config = folders["yolo"] / "Ultralytics"
    assert res["config"] == res["fonts"] == str(config)       # the folder ultralytics reads its fonts from
    assert (config / "Arial.ttf").is_file() and (config / "Arial.Unicode.ttf").is_file()


@pytest.fixture
def clean_flags(monkeypatch):
    """No offline variable set; whatever the test sets is undone afterwards."""
    for key in (*FLAGS, "ONCOLAB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TOKENIZERS_PARALLELISM"):
        monkeypatch.delenv(key, raising=False)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network access refused in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_oncolab_offline_overrides_the_probe(monkeypatch, clean_flags):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "0")
    assert network_available() is True
    monkeypatch.setenv("ONCOLAB_OFFLINE", "yes")
    assert network_available() is False
    assert clean_flags == []
    monkeypatch.setenv("ONCOLAB_OFFLINE", "maybe")
    with pytest.raises(ValueError, match="ONCOLAB_OFFLINE='maybe'"):
        network_available()


def test_a_stuck_probe_is_abandoned_within_two_seconds(monkeypatch, clean_flags):
    def stuck(*args, **kwargs):
        time.sleep(3)
        return contextlib.nullcontext()

    monkeypatch.setattr(socket, "create_connection", stuck)
    t0 = time.perf_counter()
    assert network_available(refresh=True) is False
    assert time.perf_counter() - t0 < 2.0


def test_configure_sets_only_unset_variables(monkeypatch, clean_flags):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "0")
    online = configure()
    assert online["offline"] is False and not any(k in os.environ for k in FLAGS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")                 # the user's choice is kept
    offline = configure(offline=True)
    assert offline["offline"] is True
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert {k: offline["set"][k] for k in FLAGS if k in offline["set"]} == {
        "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "YOLO_OFFLINE": "1"}
    assert configure(offline=True)["set"] == {}               # again: nothing left to set


def test_a_hub_switched_off_by_the_user_is_refused_online(monkeypatch, clean_flags):
    monkeypatch.setenv("ONCOLAB_OFFLINE", "0")
    require_hub("some/model")                                   # online, nothing switched off
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="switched off by HF_HUB_OFFLINE=1"):
        require_hub("some/model")


# --- ultralytics' font ---------------------------------------------------------------------------
def test_install_ultralytics_font_writes_both_names_once(tmp_path):
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target = tmp_path / "settings" / "Ultralytics"
    assert install_ultralytics_font(target) == target
    assert sorted(p.name for p in target.iterdir()) == ["Arial.Unicode.ttf", "Arial.ttf"]
    assert (target / "Arial.ttf").read_bytes() == src.read_bytes()
    assert (target / "Arial.Unicode.ttf").read_bytes() == src.read_bytes()
    (target / "Arial.ttf").write_bytes(b"a font of the user's")
    install_ultralytics_font(target)
    assert (target / "Arial.ttf").read_bytes() == b"a font of the user's"     # kept
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert install_ultralytics_font(blocked / "Ultralytics") is None


def test_ultralytics_finds_the_installed_font_without_downloading(tmp_path, monkeypatch):
    configure()
    from ultralytics.utils import checks

    def no_download(*args, **kwargs):
        raise AssertionError(f"ultralytics tried to download a font: {args}")

    monkeypatch.setattr(checks, "USER_CONFIG_DIR", tmp_path)
    monkeypatch.setattr(checks.downloads, "is_url", no_download)
    monkeypatch.setattr(checks.downloads, "safe_download", no_download)
    cached = checks.check_font.__wrapped__        # ultralytics remembers the answer per font name
    cached.cache_clear()
    install_ultralytics_font(tmp_path)
    try:
        assert Path(checks.check_font("Arial.ttf")) == tmp_path / "Arial.ttf"
        assert Path(checks.check_font("Arial.Unicode.ttf")) == tmp_path / "Arial.Unicode.ttf"
    finally:
        cached.cache_clear()


# --- seeds, device, data folder ------------------------------------------------------------------
def test_seed_everything_repeats_draws():
    import random

    import numpy as np
    import torch

    seed_everything(5)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(5)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    for bad in (-1, 1.5, True, "5"):
        with pytest.raises(ValueError, match="non-negative integer"):
            seed_everything(bad)


def test_get_device(monkeypatch):
    import torch

    monkeypatch.delenv("ONCOLAB_DEVICE", raising=False)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert get_device() == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    assert get_device("cpu") == "cpu"
    monkeypatch.setenv("ONCOLAB_DEVICE", "cpu")
    assert get_device() == "cpu"
    with pytest.raises(ValueError, match=r"device 'tpu' is not available here; available: \["):
        get_device("tpu")


def test_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOLAB_DATA", str(tmp_path / "root"))
    assert data_dir("a", "b", create=False) == tmp_path / "root" / "a" / "b"
    assert not (tmp_path / "root").exists()
    path = data_dir("a", "b")
    assert path == tmp_path / "root" / "a" / "b" and path.is_dir()
