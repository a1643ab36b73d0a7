"""Environment: seeds, device, data folder, and the offline decision.

Taught in chapter 1 ("Multimodal oncology data": seeds and the device), used by every chapter;
chapter 3 takes the offline decision explicitly before it imports ultralytics.

Importing :mod:`oncolab` changes nothing around it: it opens no connection, writes no file and
sets no hub variable. The offline decision is taken later, by :func:`configure`, right before the
first operation that could reach a model hub: :func:`require_hub` calls it before any
download of weights (timm, transformers, ultralytics), and :class:`oncolab.detection.YoloDetector`
calls it before it imports ultralytics (which looks up DNS names on import unless
``YOLO_OFFLINE`` is set). Where there is no network (a laptop on a train, a locked-down
cluster, a CI runner) the decision switches the hubs off: ``HF_HUB_OFFLINE``,
``TRANSFORMERS_OFFLINE`` and ``HF_DATASETS_OFFLINE`` for Hugging Face (transformers and timm),
``YOLO_OFFLINE`` for ultralytics; and a hub request then fails within two seconds with advice
instead of retrying for a minute. On Google Colab, or wherever the hub answers, nothing is
switched off and pretrained weights load as usual. A variable the user has set is never
overwritten.

ultralytics also downloads a plotting font (``Arial.ttf``) before every training or validation
run when its settings folder has none; :func:`install_ultralytics_font` puts matplotlib's
DejaVu Sans there under that name, and the detector calls it before it trains or validates.

``ONCOLAB_OFFLINE=1`` forces offline mode; ``ONCOLAB_OFFLINE=0`` forces online mode.
"""

from __future__ import annotations

import numbers
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
    "install_ultralytics_font",
    "is_colab",
    "network_available",
    "require_hub",
    "seed_everything",
]

_HUB_HOST = ("huggingface.co", 443)
_PROBE_TIMEOUT_S = 1.0
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "YOLO_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_ULTRALYTICS_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
_network_state: bool | None = None


class HubUnavailableError(RuntimeError):
    """A model or data hub was asked for while this machine is offline."""


def is_colab() -> bool:
    """Whether this code runs inside Google Colab.

    Returns
    -------
    bool
        True when ``google.colab`` is imported or ``COLAB_RELEASE_TAG`` is set.
    """
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _forced_offline() -> bool | None:
    """``ONCOLAB_OFFLINE`` read as a yes/no answer; None when it is unset or empty."""
    value = os.environ.get("ONCOLAB_OFFLINE", "").strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"ONCOLAB_OFFLINE={os.environ['ONCOLAB_OFFLINE']!r} is not understood; "
                     f"expected one of {sorted(_TRUE)} (offline) or {sorted(_FALSE)} (online)")


def _probe(result: list) -> None:
    try:
        with socket.create_connection(_HUB_HOST, timeout=_PROBE_TIMEOUT_S):
            result.append(True)
    except OSError:
        result.append(False)


def network_available(refresh: bool = False) -> bool:
    """Whether the model hub can be reached; probed on first use and remembered.

    ``ONCOLAB_OFFLINE`` answers without a probe. Otherwise the probe is one TCP connection to
    the Hugging Face hub with a one-second limit, run in a daemon thread so that a stuck DNS
    lookup cannot block; on Google Colab the answer is yes without a probe. :func:`configure`
    asks it (chapter 3).

    Parameters
    ----------
    refresh : bool
        Probe again instead of returning the remembered answer.

    Returns
    -------
    bool
        True when the hub answered (or ``ONCOLAB_OFFLINE=0``), False otherwise.

    Raises
    ------
    ValueError
        When ``ONCOLAB_OFFLINE`` holds a value that is neither yes nor no.
    """
    global _network_state
    forced = _forced_offline()
    if forced is not None:
        return not forced
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


def configure(offline: bool | None = None) -> dict:
    """Take the offline decision and apply it to the hub libraries; return what was decided.

    Called right before the first operation that could reach a model hub (by
    :func:`require_hub` and before ultralytics is imported), never on import. Offline, it sets
    ``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``, ``HF_DATASETS_OFFLINE`` and ``YOLO_OFFLINE``
    to ``1`` and switches Hugging Face telemetry off (``HF_HUB_DISABLE_TELEMETRY=1``); online
    or offline it sets ``TOKENIZERS_PARALLELISM=false`` (the tokenizers library's threads would
    otherwise warn in forked data loaders). Any variable the user has set is left alone. These
    libraries read the variables when they are first imported, so call this before importing
    ultralytics yourself. Calling it again is harmless. Writes no file. Taught in chapter 3,
    which calls it before ultralytics is imported.

    Parameters
    ----------
    offline : bool or None
        ``None`` (default) decides with :func:`network_available` (which honours
        ``ONCOLAB_OFFLINE``); ``True`` or ``False`` force the decision.

    Returns
    -------
    dict
        ``{"offline": bool, "colab": bool, "set": {name: value}}``, where ``set`` lists the
        variables this call set.

    Raises
    ------
    ValueError
        When ``offline`` is None and ``ONCOLAB_OFFLINE`` holds a value that is neither yes nor
        no.
    """
    if offline is None:
        offline = not network_available()
    settings: dict = {"offline": bool(offline), "colab": is_colab(), "set": {}}
    defaults = {"TOKENIZERS_PARALLELISM": "false"}
    if offline:
        defaults.update({key: "1" for key in _OFFLINE_VARIABLES})
        defaults["HF_HUB_DISABLE_TELEMETRY"] = "1"
    for key, value in defaults.items():
        if key not in os.environ:
            os.environ[key] = value
            settings["set"][key] = value
    return settings


def require_hub(what: str, local_hint: str = "a local path") -> None:
    """Fail fast, saying what to do, when ``what`` (a hub model or dataset) cannot be fetched.

    Every loader that reaches for a hub (timm and transformers weights, ultralytics' COCO
    weights) calls it before it tries: it takes the offline decision (:func:`configure`) and,
    offline or when the user has switched a hub off (``HF_HUB_OFFLINE``,
    ``TRANSFORMERS_OFFLINE`` or ``YOLO_OFFLINE``), raises within two seconds instead of letting
    the library retry for a minute. Chapters 2 and 6 meet the error it raises offline (ImageNet
    weights, BioBERT).

    Parameters
    ----------
    what : str
        The model or dataset asked for, as the error message should name it.
    local_hint : str
        How to point the loader at a copy on disk instead (shown in the message).

    Returns
    -------
    None
        When the hub can be reached.

    Raises
    ------
    HubUnavailableError
        When the hub cannot be reached; the message names ``what``, why (``ONCOLAB_OFFLINE``,
        no answer, or the variable that switched the hub off) and what to do.
    """
    settings = configure()
    flags = [k for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE")
             if os.environ.get(k, "").strip().lower() in _TRUE]
    if settings["offline"] or flags:
        if _forced_offline():
            reason = "ONCOLAB_OFFLINE is set"
        elif settings["offline"]:
            reason = "the hub did not answer"
        else:
            reason = "switched off by " + ", ".join(f"{k}={os.environ[k]}" for k in flags)
        raise HubUnavailableError(
            f"{what!r} must be downloaded from a model hub, but this machine is offline ({reason}). "
            f"Run this on Google Colab (or any machine with internet access), or pass {local_hint} "
            "to weights you have downloaded; or use pretrained=False to build the model untrained."
        )


def install_ultralytics_font(folder: str | Path | None = None) -> Path | None:
    """Put a TrueType font in ultralytics' settings folder under the names ultralytics looks for.

    ultralytics draws its plots with ``Arial.ttf`` / ``Arial.Unicode.ttf`` and, when they are
    missing from its settings folder, downloads them before every training or validation run.
    Any TrueType font serves: this copies matplotlib's ``DejaVuSans.ttf`` under both names
    (each via a temporary file, then renamed; an existing font is kept).
    :class:`oncolab.detection.YoloDetector` (chapter 3) calls it before it trains or validates.

    Parameters
    ----------
    folder : str, Path or None
        The folder to write into. ``None`` (default) takes ultralytics' own settings folder
        (``ultralytics.utils.USER_CONFIG_DIR``: ``YOLO_CONFIG_DIR``, else the system's
        configuration folder), importing ultralytics after :func:`configure`.

    Returns
    -------
    Path or None
        The folder holding the fonts, or None when matplotlib's font is missing or the folder
        cannot be written (ultralytics then looks for the font itself).
    """
    if folder is None:
        configure()
        from ultralytics.utils import USER_CONFIG_DIR

        folder = USER_CONFIG_DIR
    folder = Path(folder).expanduser()
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not src.is_file():
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in _ULTRALYTICS_FONTS:
            dst = folder / name
            if not dst.exists():
                tmp = dst.with_name(dst.name + ".partial")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
    except OSError:
        return None
    return folder


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs). Taught in chapter 1.

    The global generators are seeded (``random``, ``numpy.random``, ``torch``); it also sets
    ``PYTHONHASHSEED``, which only affects Python processes started afterwards.

    Parameters
    ----------
    seed : int
        A non-negative integer (NumPy receives it modulo 2**32).

    Returns
    -------
    int
        The seed.

    Raises
    ------
    ValueError
        When ``seed`` is not a non-negative integer.
    """
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

    Taught in chapter 1.

    Parameters
    ----------
    prefer : str or None
        A device to use instead (``"cpu"``, ``"cuda:1"``, ...); ``None`` reads the
        ``ONCOLAB_DEVICE`` variable, and picks when that is unset too.

    Returns
    -------
    str
        The device name.

    Raises
    ------
    ValueError
        When the preferred device is not available here (the message lists those that are).
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
    """The folder for downloaded and generated data. Taught in chapter 3 (where the YOLO dataset
    and runs are written).

    Parameters
    ----------
    *parts : str
        Sub-folders below the root, ``$ONCOLAB_DATA`` or else ``~/.cache/oncolab``.
    create : bool
        Create the folder (and its parents) when it does not exist.

    Returns
    -------
    Path
        The folder.
    """
    root = Path(os.environ.get("ONCOLAB_DATA", Path.home() / ".cache" / "oncolab")).expanduser()
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
