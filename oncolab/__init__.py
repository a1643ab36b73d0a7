"""OncoLab: multimodal AI in oncology, from first principles.

The code of the OncoLab book. Importing the package has no side effect: it opens no
connection, writes no file and switches no hub off; the offline decision is taken right before
the first call that could reach a model hub (see :mod:`oncolab.env`). Subpackages are imported
on first use so that ``import oncolab`` stays fast.
"""

from __future__ import annotations

import importlib

from . import env as env

__version__ = "0.1.0"

_SUBMODULES = ("data", "features", "detection", "vision", "text", "omics", "survival", "fusion", "explain",
               "metrics", "training", "pipeline", "baselines", "distributed", "plotting", "course", "cli")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", "env", *_SUBMODULES]
