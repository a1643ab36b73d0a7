"""Time and peak memory of ``oncolab run --data`` on real and exported synthetic cohort folders.

Issue: the complete system on a cohort folder must stream what it can (images are read per
patient) and stay within a laptop's memory. This script writes the folders, then runs the
command in a child process under ``/usr/bin/time -v`` (wall time, peak resident memory):

    python benchmarks/bench_run_data.py                       # breast_cancer + 5,000 synthetic patients
    python benchmarks/bench_run_data.py --synthetic 1000 --preset learned

The converted ``breast_cancer`` folder comes from ``data_scripts.packaged`` (offline).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
    return {"wall_s": round(wall, 1), "peak_mb": round(peak / 1024)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=5000, help="patients of the exported synthetic cohort")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--preset", default="handcrafted", help="preset of `oncolab run` (default handcrafted)")
    args = ap.parse_args(argv)
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory(prefix="oncolab-bench-") as tmp:
        tmp = Path(tmp)
        subprocess.run([py, "-m", "data_scripts.packaged", "breast_cancer", str(tmp / "bc")], check=True, cwd=ROOT,
                       capture_output=True)
        r = _timed([py, "-m", "oncolab.cli", "run", "--data", str(tmp / "bc"), "--preset", args.preset,
                    "--out", str(tmp / "run_bc"), "--quiet", "--reports", "1"])
        rows.append({"cohort": "breast_cancer (198 patients, genes + clinical)", **r})
        t0 = time.perf_counter()
        subprocess.run([py, "-m", "oncolab.cli", "cohort", "--n-patients", str(args.synthetic), "--seed", "0",
                        "--image-size", str(args.image_size), "--slide-size", str(args.image_size),
                        "--out", str(tmp / "syn")], check=True, cwd=ROOT, capture_output=True)
        export_s = time.perf_counter() - t0
        r = _timed([py, "-m", "oncolab.cli", "run", "--data", str(tmp / "syn"), "--preset", args.preset,
                    "--out", str(tmp / "run_syn"), "--quiet", "--reports", "1", "--no-ablation"])
        rows.append({"cohort": f"synthetic export ({args.synthetic} patients, 5 modalities, {args.image_size} px; "
                               f"exported in {export_s:.0f} s), no ablation", **r})
    print(f"oncolab run --data --preset {args.preset}")
    print(f"{'cohort':95s} {'wall s':>8s} {'peak MB':>8s}")
    for row in rows:
        print(f"{row['cohort']:95s} {row['wall_s']:8.1f} {row['peak_mb']:8d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
