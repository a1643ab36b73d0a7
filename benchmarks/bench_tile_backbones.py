"""Tile backbones of the prostate slide stage at more than the chapter's training budget.

    python benchmarks/bench_tile_backbones.py [--budgets 16:1 32:4] [--n-patients 300] [--seed 0] [--n-boot 500]

Chapter 14 compares three descriptions of a slide tile for the ``crossfusion`` stage (the
hand-made ``stain_blob`` features, a small ResNet and a small ViT trained here) at a budget a
chapter can afford: tiles shrunk to 16 pixels, one training epoch. This script repeats that
comparison on the chapter's cohort and split (300 patients, seed 0, a third held out,
stratified by event) at each budget ``PIXELS:EPOCHS`` given, with
:func:`oncolab.pipeline.stages.prostate.backbone_risks`, and reports each backbone's
Harrell C on the held-out patients with its bootstrap interval and the paired bootstrap
difference from the hand-made features (same patients, same resamples). It answers whether the
networks catch up with more pixels and epochs, which the chapter cannot afford to show.

Writes ``benchmarks/results/tile_backbones.csv`` and a ``.json`` sidecar (command, date, wall and
CPU time per budget, versions), each through a temporary file. Set ``OMP_NUM_THREADS`` to the
cores the run stands for (the recorded run: 1, as the chapter's ``torch.set_num_threads(1)``).
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


def budget(text: str) -> tuple[int, int]:
    """``"PIXELS:EPOCHS"`` -> ``(pixels, epochs)``, both positive integers."""
    try:
        pixels, epochs = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a budget is PIXELS:EPOCHS, e.g. 32:4; got {text!r}") from None
    if pixels < 1 or epochs < 1 or 32 % pixels:
        raise argparse.ArgumentTypeError(f"pixels must divide the 32-pixel tiles and epochs be positive; got {text!r}")
    return pixels, epochs


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", nargs="+", type=budget, default=[(16, 1), (32, 4)],
                   help="PIXELS:EPOCHS of the network backbones (default 16:1, the chapter's, and 32:4)")
    p.add_argument("--n-patients", type=int, default=300, help="patients of the prostate cohort (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cohort, the split and the stages (default 0)")
    p.add_argument("--n-boot", type=int, default=500, help="bootstrap resamples (default 500)")
    p.add_argument("--out", default=str(RESULTS), help=f"folder of the CSV and JSON files (default {RESULTS})")
    args = p.parse_args(argv)

    import numpy as np
    import pandas as pd

    from oncolab.data import oracle, prostate_cohort, train_val_test_split
    from oncolab.metrics import bootstrap_ci, paired_bootstrap
    from oncolab.pipeline import preset, read_inputs
    from oncolab.pipeline.stages.prostate import backbone_risks
    from oncolab.survival import harrell_c

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    t0, c0 = time.perf_counter(), os.times()
    cohort = prostate_cohort(args.n_patients, seed=args.seed, mri_shape=(16, 48, 48), slide_size=2048)
    config = preset("crossfusion", modalities=("pathology",), folds=2, mil_epochs=15, seed=args.seed,
                    progress=False)
    tiles = np.stack(read_inputs(cohort, config.replace(tile_backbone="resnet")).raw["pathology"])
    parts = train_val_test_split(cohort, (2 / 3, 0.0, 1 / 3), seed=args.seed, stratify="event")
    train, test = np.sort(parts["train"]), np.sort(parts["test"])
    time_, event = cohort.labels["time"].to_numpy(float), cohort.labels["event"].to_numpy(bool)
    te = (time_[test], event[test])

    def c_index(tt, r):
        return harrell_c(tt[0], tt[1], r)

    ceiling = oracle(cohort.subset(test))["by_information"]["slide, both scales"]
    rows, seconds = [], {}
    for pixels, epochs in args.budgets:
        b0 = time.perf_counter()
        risks, fit_s = backbone_risks(config.replace(tile_pixels=pixels, tile_epochs=epochs), tiles, train, test,
                                      time_, event)
        seconds[f"{pixels}:{epochs}"] = round(time.perf_counter() - b0, 1)
        for name, r in risks.items():
            value, lo, hi = bootstrap_ci(c_index, te, r, n_boot=args.n_boot, seed=args.seed)
            row = {"tile_pixels": pixels, "tile_epochs": epochs, "backbone": name, "harrell_c": value,
                   "ci_low": lo, "ci_high": hi, "fit_s": round(fit_s[name], 1), "oracle_slide_c": ceiling}
            if name != "stain_blob":
                d = paired_bootstrap(c_index, te, r, risks["stain_blob"], n_boot=args.n_boot, seed=args.seed)
                row.update(minus_stain_blob=d["difference"], diff_low=d["ci_low"], diff_high=d["ci_high"])
            rows.append(row)
            print(f"{pixels:>2} px, {epochs} epoch(s)  {name:<10} C {value:.3f} [{lo:.3f}, {hi:.3f}]"
                  + (f"  minus stain_blob {row['minus_stain_blob']:+.3f} [{row['diff_low']:+.3f}, "
                     f"{row['diff_high']:+.3f}]" if name != "stain_blob" else "") + f"  ({fit_s[name]:.0f} s)")
    table = pd.DataFrame(rows)
    write_atomic(table.to_csv(index=False, float_format="%.6g"), out / "tile_backbones.csv")
    c1 = os.times()
    command = "OMP_NUM_THREADS={} python benchmarks/bench_tile_backbones.py {}".format(
        os.environ.get("OMP_NUM_THREADS", "(unset)"), shlex.join(argv)).strip()
    record = {"command": command, "date": started.isoformat(timespec="seconds"),
              "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(c1.user + c1.system - c0.user - c0.system, 1),
              "budget_wall_s": seconds, "n_patients": args.n_patients, "n_test": len(test), "seed": args.seed,
              "n_boot": args.n_boot, "cpu_count": os.cpu_count(),
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
              "platform": platform.platform(), "versions": versions()}
    write_atomic(json.dumps(record, indent=1) + "\n", out / "tile_backbones.json")
    print(f"oracle (slide, both scales) on the same patients: C {ceiling:.3f}")
    print(f"written: {out / 'tile_backbones.csv'}, {out / 'tile_backbones.json'} ({record['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
