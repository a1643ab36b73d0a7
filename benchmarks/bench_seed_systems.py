"""The seed systems, reproduced: every bone-cohort seed preset on the same held-out patients.

    python benchmarks/bench_seed_systems.py [PRESET ...] [--n-patients 600] [--seed 0] [--n-boot 200] [--out DIR]

Generates the default cohort of `oncolab run` (600 patients, seed 0, 256-pixel radiographs and
slide regions, with the symptom notes the `medfusion` preset reads), runs
`oncolab.pipeline.seeds.compare_seed_systems` with each preset's default settings (the hand-made
system first, as the reference of the paired differences; a fifth of the patients held out,
the same patients `oncolab run` holds out) and writes

* `seed_systems.csv`: the comparison table, one row per preset and one for the oracle;
* `seed_systems.json`: the command, the date, the wall time (in all and per preset), the CPU
  count and thread settings, and the versions of Python and the libraries.

Both go to `benchmarks/results/` by default, each written to a temporary file first. Chapter 12
reads the CSV. Set `OMP_NUM_THREADS` to the cores the run stands for (the recorded run: 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from common import RESULTS, versions, write_atomic


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*", help="presets to compare (default: oncolab.pipeline.seeds.SEED_SYSTEMS)")
    p.add_argument("--n-patients", type=int, default=600, help="patients of the synthetic cohort (default 600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cohort, the split, the systems (default 0)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of every interval (default 200)")
    p.add_argument("--out", default=str(RESULTS), help=f"folder of the CSV and JSON files (default {RESULTS})")
    args = p.parse_args(argv)

    from oncolab.data import MODALITIES, synthetic_cohort
    from oncolab.pipeline.seeds import SEED_SYSTEMS, compare_seed_systems

    names = tuple(args.presets) or SEED_SYSTEMS
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    t0, c0 = time.perf_counter(), os.times()
    cohort = synthetic_cohort(args.n_patients, seed=args.seed, image_size=256, slide_size=256,
                              modalities=[*MODALITIES, "symptoms"])
    table = compare_seed_systems(cohort, names=names, seed=args.seed, n_boot=args.n_boot, progress=False)
    wall = time.perf_counter() - t0
    c1 = os.times()
    write_atomic(table.to_csv(float_format="%.6g"), out / "seed_systems.csv")
    command = "OMP_NUM_THREADS={} python benchmarks/bench_seed_systems.py {}".format(
        os.environ.get("OMP_NUM_THREADS", "(unset)"), shlex.join(argv)).strip()
    record = {"command": command, "date": started.isoformat(timespec="seconds"), "wall_s": round(wall, 1),
              "cpu_s": round(c1.user + c1.system - c0.user - c0.system, 1),
              "preset_wall_s": {k: round(v, 1) for k, v in table.attrs["fit_seconds"].items()},
              "n_patients": args.n_patients, "n_test": int(table["n"].iloc[0]), "seed": args.seed,
              "n_boot": args.n_boot, "presets": list(names), "cpu_count": os.cpu_count(),
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
              "platform": platform.platform(), "versions": versions()}
    write_atomic(json.dumps(record, indent=1) + "\n", out / "seed_systems.json")
    cols = ["macro_auc", "macro_auc_low", "macro_auc_high", "macro_f1", "macro_precision", "c_index",
            "detector_map50", "auc_minus_reference", "auc_minus_reference_low", "auc_minus_reference_high",
            "best_single", "fusion_minus_best_single"]
    print(table[cols].to_string(float_format="%.3f"))
    print(f"\n{len(names)} presets on {len(cohort)} patients ({record['n_test']} held out) in {wall:.0f} s wall, "
          f"{record['cpu_s']:.0f} s CPU; per preset: {record['preset_wall_s']}")
    print(f"written: {out / 'seed_systems.csv'}, {out / 'seed_systems.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
