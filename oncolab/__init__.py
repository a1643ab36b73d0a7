"""OncoLab: multimodal AI in oncology, from first principles.

The code of the OncoLab book. Importing the package applies offline-safe settings when there
is no network (see :mod:`oncolab.env`); subpackages are imported on first use so that
``import oncolab`` stays fast.
"""

from __future__ import annotations

import importlib

from . import env as env

__version__ = "0.1.0"
ENV_SETTINGS = env.configure()

_SUBMODULES = ("data", "detection", "vision", "text", "omics", "survival", "fusion", "explain", "stages",
               "evaluation", "baselines", "distributed",
               "system", "report", "plotting", "cli")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENV_SETTINGS", "__version__", "env", *_SUBMODULES]
