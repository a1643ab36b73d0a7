"""Environment: network detection, offline-safe settings, seeds, device and data folders.

Taught in chapter 1 ("Multimodal oncology data"), used by every chapter.

On import, :mod:`oncolab` calls :func:`configure`. Where there is no network (a laptop on a
train, a locked-down cluster, a CI runner) it switches the model hubs off so that nothing
hangs: ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` for Hugging Face (transformers and
timm), ``YOLO_OFFLINE`` for ultralytics, and a TrueType font placed in ultralytics' settings
folder so that it never tries to download ``Arial.ttf``. On Google Colab, or wherever the
hub answers, nothing is switched off and pretrained weights load as usual. A variable the
user has set is never overwritten.

``ONCOLAB_OFFLINE=1`` forces offline mode; ``ONCOLAB_OFFLINE=0`` forces online mode.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
import threading
from pathlib import Path

__all__ = [
    "HubUnavailableError",
    "configure",
    "data_dir",
    "get_device",
    "is_colab",
    "network_available",
    "require_hub",
    "seed_everything",
]

_HUB_HOST = ("huggingface.co", 443)
_PROBE_TIMEOUT_S = 1.0
_network_state: bool | None = None


class HubUnavailableError(RuntimeError):
    """A model or data hub was asked for while this machine has no network."""


def is_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _probe(result: list) -> None:
    try:
        with socket.create_connection(_HUB_HOST, timeout=_PROBE_TIMEOUT_S):
            result.append(True)
    except OSError:
        result.append(False)


def network_available(refresh: bool = False) -> bool:
    """Whether the model hub can be reached; decided once and cached.

    ``ONCOLAB_OFFLINE`` overrides the probe. The probe is one TCP connection with a
    one-second limit, run in a daemon thread so that a stuck DNS lookup cannot block.
    """
    global _network_state
    forced = os.environ.get("ONCOLAB_OFFLINE")
    if forced is not None and forced.strip() != "":
        return forced.strip().lower() in {"0", "false", "no", "off"}
    if _network_state is None or refresh:
        if is_colab():
            _network_state = True
        else:
            result: list = []
            t = threading.Thread(target=_probe, args=(result,), daemon=True)
            t.start()
            t.join(_PROBE_TIMEOUT_S + 0.5)
            _network_state = bool(result and result[0])
    return _network_state


def _ultralytics_config_dir() -> Path:
    env = os.environ.get("YOLO_CONFIG_DIR")
    base = Path(env).expanduser() if env else Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "Ultralytics"


def _install_font_for_ultralytics() -> Path | None:
    """Copy matplotlib's DejaVuSans.ttf into ultralytics' settings folder as its two fonts.

    ultralytics draws its plots with ``Arial.ttf`` / ``Arial.Unicode.ttf`` and downloads them
    on every train or val run when they are missing. Any TrueType font serves.
    """
    target_dir = _ultralytics_config_dir()
    try:
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        if not src.exists():
            return None
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            dst = target_dir / name
            if not dst.exists():
                tmp = dst.with_name(dst.name + ".partial")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
        return target_dir
    except OSError:
        return None


def configure(offline: bool | None = None) -> dict:
    """Apply offline-safe settings when there is no network; return what was decided.

    Parameters
    ----------
    offline:
        ``None`` (default) decides from :func:`network_available`; ``True``/``False`` force it.
    """
    if offline is None:
        offline = not network_available()
    settings = {"offline": offline, "colab": is_colab(), "set": {}}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if offline:
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "YOLO_OFFLINE"):
            if key not in os.environ:
                os.environ[key] = "1"
                settings["set"][key] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("YOLO_VERBOSE", os.environ.get("YOLO_VERBOSE", "True"))
    font_dir = _install_font_for_ultralytics()
    settings["ultralytics_font_dir"] = str(font_dir) if font_dir else None
    return settings


def require_hub(what: str, local_hint: str = "a local path") -> None:
    """Fail fast, with what to do, when ``what`` (a hub model or dataset) cannot be fetched.

    Called by every loader that reaches for a hub (timm, transformers, ultralytics weights)
    before it tries, so that offline the request fails at once instead of retrying.
    """
    offline_flags = [k for k in ("HF_HUB_OFFLINE", "YOLO_OFFLINE") if os.environ.get(k) == "1"]
    if not network_available() or offline_flags:
        raise HubUnavailableError(
            f"{what!r} must be downloaded from a model hub, but this machine is offline "
            f"(no network{', ' + ', '.join(offline_flags) + '=1' if offline_flags else ''}). "
            f"Run this on Google Colab (or any machine with internet access), or pass {local_hint} "
            "to weights you have downloaded; or use pretrained=False to build the model untrained."
        )


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs); return the seed.

    Also asks PyTorch for deterministic algorithms where that costs nothing.
    """
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import numpy as np

    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return int(seed)


def get_device(prefer: str | None = None) -> str:
    """Pick the compute device: ``"cuda"`` if available, else ``"mps"``, else ``"cpu"``.

    ``prefer`` (or the ``ONCOLAB_DEVICE`` variable) forces a choice; asking for a device that
    is not available raises a ValueError that says which ones are.
    """
    import torch

    available = ["cpu"]
    if torch.cuda.is_available():
        available.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        available.insert(0 if "cuda" not in available else 1, "mps")
    choice = prefer or os.environ.get("ONCOLAB_DEVICE")
    if choice:
        base = choice.split(":")[0]
        if base not in available:
            raise ValueError(f"device {choice!r} is not available here; available: {available}")
        return choice
    return available[0]


def data_dir(*parts: str, create: bool = True) -> Path:
    """The folder for downloaded and generated data: ``$ONCOLAB_DATA`` or ``~/.cache/oncolab``."""
    root = Path(os.environ.get("ONCOLAB_DATA", Path.home() / ".cache" / "oncolab")).expanduser()
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
