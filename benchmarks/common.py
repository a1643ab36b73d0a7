"""What the benchmark scripts share: atomic writes and the versions a result was measured with."""

from __future__ import annotations

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the benchmarks write the tables the book and the notes read."""

LIBRARIES = ("oncolab", "numpy", "pandas", "scikit-learn", "scipy", "torch", "torchvision", "timm", "transformers",
             "ultralytics", "scikit-survival")


def versions(libraries: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """The Python version, the platform and the installed version of each of ``libraries``.

    Parameters
    ----------
    libraries : tuple of str
        Distribution names (``"absent"`` for one not installed).

    Returns
    -------
    dict
        ``{name: version}``, with ``python`` and ``system`` first.
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}"}
    for name in libraries:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def write_atomic(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, then :func:`os.replace`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, path)
