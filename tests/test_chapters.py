"""Every chapter, executed by papermill with SMOKE=True in the project's kernel.

A failure shows the failing cell and its traceback (papermill's error message). The
executed notebooks are kept in _build/smoke/ for inspection. Ceilings are generous: they
catch a chapter that hangs, not one that is a little slow.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
KERNEL = "oncolab"
DEFAULT_CEILING_S = 600
CEILING_S = {"03_detection": 900, "12_complete_system": 900, "14_whole_slides_mri": 900,
             "15_scaling_out": 900}


def _kernel_available() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL in KernelSpecManager().find_kernel_specs()


@pytest.mark.chapter
@pytest.mark.parametrize("nb_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_smoke_mode(nb_path: Path, tmp_path: Path):
    import papermill as pm

    if not _kernel_available():
        pytest.fail(f"the Jupyter kernel {KERNEL!r} is not registered: run `make setup`")
    out_dir = ROOT / "_build" / "smoke"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb_path.name
    ceiling = CEILING_S.get(nb_path.stem, DEFAULT_CEILING_S)
    env_backup = dict(os.environ)
    os.environ["ONCOLAB_DATA"] = str(tmp_path / "data")
    os.environ.pop("MPLBACKEND", None)  # the kernel uses the inline backend
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb_path), str(out), parameters={"SMOKE": True}, kernel_name=KERNEL,
            cwd=str(tmp_path), execution_timeout=ceiling, progress_bar=False, log_output=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    elapsed = time.perf_counter() - t0
    assert elapsed < ceiling, f"{nb_path.name} took {elapsed:.0f}s, over its {ceiling}s ceiling"
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{nb_path.name} produced error outputs: {errors[0].get('ename')}"
