"""Time of `oncolab run` with its defaults (600 patients, seed 0), stage by stage.

    python benchmarks/bench_system.py [--out DIR] [extra `oncolab run` arguments]

Prints the wall-clock and CPU seconds of the whole run and the stage timings the run records
(image and table features, fitting the system, the ablation table); the target is 10 minutes on
a laptop-class CPU. On a shared machine wall-clock time depends on the load: the CPU seconds
(user + system of this process) are the steadier figure.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from oncolab.cli import main as cli

    out = None
    if "--out" in argv:
        i = argv.index("--out")
        out = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    out = out or tempfile.mkdtemp(prefix="oncolab-bench-")
    t0, c0 = time.perf_counter(), os.times()
    rc = cli(["run", "--out", out, "--quiet", *argv])
    wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    summary = json.loads((Path(out) / "run.json").read_text())
    print(f"oncolab run {' '.join(argv) or '(defaults)'}: wall {wall:.0f} s, CPU {cpu:.0f} s "
          f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    for k, v in summary["timings"].items():
        print(f"  {k:12s} {v:8.1f} s")
    print(f"  save/load identical: {summary['save_load_identical']}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
