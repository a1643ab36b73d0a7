"""Wall-clock time and peak memory of `oncolab run` for each preset, with its default settings.

    python benchmarks/bench_presets.py [PRESET ...] [--cores 2] [--out DIR] [-- extra `oncolab run` arguments]

Each preset runs as its own process, `oncolab run --preset NAME --quiet` with every other
setting at its default (600 patients, seed 0, the ablation and three reports included), under
`/usr/bin/time -v`, which reports the wall-clock time, the CPU time (user + system) and the
peak resident memory of the process. With `--cores N` on a machine with more cores the process
is pinned to the first N (`taskset`), and PyTorch's threads are capped to N, so that the
numbers stand for a machine of N cores. The target: the slowest preset's default run under
10 minutes on 2 cores.

On a shared machine the wall-clock time depends on the other processes: the load average
before and after each run is printed beside it, and the CPU time is the steadier figure.
Without preset names every preset of `oncolab.pipeline.PRESETS` is run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 600.0


def _clock(text: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` -> seconds."""
    parts = [float(p) for p in text.strip().split(":")]
    return sum(p * 60 ** k for k, p in enumerate(reversed(parts)))


def parse_time_v(stderr: str) -> dict:
    """The wall-clock seconds, CPU seconds and peak memory (MiB) from ``/usr/bin/time -v``'s report.

    Parameters
    ----------
    stderr : str
        The report (the end of the process's standard error).

    Returns
    -------
    dict
        ``wall_s``, ``cpu_s`` and ``peak_mib``.
    """
    def field(name):
        m = re.search(rf"^\s*{re.escape(name)}[^:]*:\s*(.+)$", stderr, re.M)
        if m is None:
            raise ValueError(f"no {name!r} line in the report of /usr/bin/time -v")
        return m.group(1)

    wall = _clock(field("Elapsed (wall clock) time (h:mm:ss or m:ss)"))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return {"wall_s": wall, "cpu_s": cpu, "peak_mib": int(field("Maximum resident set size (kbytes)")) / 1024}


def pinned(cmd: list[str], cores: int | None) -> tuple[list[str], dict]:
    """``cmd`` pinned to the first ``cores`` cores (where the machine has more), and its environment.

    Parameters
    ----------
    cmd : list of str
        The command.
    cores : int or None
        Cores to stand for; None leaves the command and the environment as they are.

    Returns
    -------
    tuple
        The command (behind ``taskset`` where it pins) and the environment, with the BLAS and
        OpenMP thread counts (PyTorch's threads) capped to ``cores``.
    """
    env = dict(os.environ)
    if cores:
        env.update({k: str(cores) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        if (os.cpu_count() or cores) > cores and shutil.which("taskset"):
            cmd = ["taskset", "-c", f"0-{cores - 1}", *cmd]
    return cmd, env


def run_preset(name: str, out: Path, cores: int | None, extra: list[str]) -> dict:
    """One `oncolab run --preset NAME` under `/usr/bin/time -v`; its numbers and the run's own timings."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "oncolab.cli", "run", "--preset", name, "--quiet",
           "--out", str(out), *extra]
    cmd, env = pinned(cmd, cores)
    load0 = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    row = {"preset": name, "returncode": proc.returncode, "load_before": load0, "load_after": os.getloadavg()[0]}
    try:
        row.update(parse_time_v(proc.stderr))
    except ValueError:
        row.update(wall_s=float("nan"), cpu_s=float("nan"), peak_mib=float("nan"))
    summary = out / "run.json"
    if proc.returncode == 0 and summary.is_file():
        row.update({k: v for k, v in json.loads(summary.read_text())["timings"].items()})
        metrics = out / "metrics.csv"
        if metrics.is_file():
            import pandas as pd

            m = pd.read_csv(metrics).set_index("metric")["value"]
            row.update({k: m[k] for k in ("macro_auc", "c_index", "detector_map50") if k in m.index})
    else:
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return row


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*", help="presets to run (default: all of PRESETS)")
    p.add_argument("--cores", type=int, default=2, help="cores to run on (default 2; 0: no limit)")
    p.add_argument("--out", default=None, help="folder for the runs and bench_presets.csv (default: a temporary one)")
    args = p.parse_args(argv)
    if not Path("/usr/bin/time").is_file():
        print("error: /usr/bin/time is needed (GNU time; apt-get install time)", file=sys.stderr)
        return 2
    from oncolab.pipeline import PRESETS

    names = args.presets or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        print(f"error: unknown preset(s) {unknown}; expected some of {list(PRESETS)}", file=sys.stderr)
        return 2
    root = Path(args.out or tempfile.mkdtemp(prefix="oncolab-bench-presets-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    for name in names:
        row = run_preset(name, root / name, args.cores or None, extra)
        rows.append(row)
        print(f"{name:14s} wall {row['wall_s']:7.0f} s  CPU {row['cpu_s']:7.0f} s  peak {row['peak_mib']:6.0f} MiB  "
              f"load {row['load_before']:.1f} -> {row['load_after']:.1f}"
              + (f"  ERROR: {row['error']}" if "error" in row else ""), flush=True)
    import pandas as pd

    table = pd.DataFrame(rows).set_index("preset")
    tmp = root / "bench_presets.csv.partial"
    table.to_csv(tmp)
    os.replace(tmp, root / "bench_presets.csv")
    cols = [c for c in ("wall_s", "cpu_s", "peak_mib", "read_s", "fit_s", "ablation_s", "macro_auc", "c_index",
                        "detector_map50") if c in table.columns]
    print(f"\n`oncolab run --preset NAME` with default settings, {args.cores or os.cpu_count()} core(s), "
          f"{os.cpu_count()} on this machine:\n" + table[cols].to_string(float_format="%.2f"))
    ok = table[table["returncode"] == 0]
    if len(ok):
        slowest = ok["wall_s"].idxmax()
        verdict = "meets" if ok.at[slowest, "wall_s"] < TARGET_S else "MISSES"
        print(f"\nslowest: {slowest}, {ok.at[slowest, 'wall_s']:.0f} s wall ({ok.at[slowest, 'cpu_s']:.0f} s CPU): "
              f"{verdict} the target of {TARGET_S / 60:.0f} minutes")
    print(f"written: {root / 'bench_presets.csv'} ({time.perf_counter() - t0:.0f} s in all)")
    return int((table["returncode"] != 0).any())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
