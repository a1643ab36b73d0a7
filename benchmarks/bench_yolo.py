"""Benchmark: the default YOLO run of chapter 3 on the synthetic cohort's YOLO export.

Trains ``YoloDetector()`` with its CPU defaults on the train split, then reports, on the
held-out test split, ultralytics' validator metrics (mAP@0.5, mAP@0.5:0.95, precision,
recall), the same mAP computed by ``oncolab.detection.evaluate_detections`` on the
predictions the validator scored, the training wall time and the machine's load.

    python benchmarks/bench_yolo.py                 # the book's default run
    python benchmarks/bench_yolo.py --epochs 2      # a quick look

Target: mAP@0.5 >= 0.90 on the test split with at most 5 minutes of CPU training. Both the wall
time and the process's CPU time are printed, with the load average: on a machine busy with
other work the wall time grows while the CPU time stays.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from oncolab.data import export_yolo, synthetic_cohort, train_val_test_split
from oncolab.detection import DEFAULTS, YoloDetector, evaluate_detections


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=400)
    ap.add_argument("--image-size", type=int, default=DEFAULTS["imgsz"])
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for the dataset and the run (default: a temp folder)")
    args = ap.parse_args()

    import torch

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_yolo_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
          f"load average at start: {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    cohort = synthetic_cohort(args.patients, seed=args.seed, modalities=["radiograph"], image_size=args.image_size)
    splits = train_val_test_split(cohort, seed=args.seed)
    data_yaml = export_yolo(cohort, out / "yolo", splits, overwrite=True)
    print(f"cohort + export: {time.perf_counter() - t0:.1f}s; "
          + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))

    det = YoloDetector(imgsz=args.image_size, device="cpu", project=out / "runs", name="bench", seed=args.seed)
    det.fit(data_yaml, epochs=args.epochs, batch=args.batch)
    load_after = os.getloadavg()[0]
    run = det.evaluate(data_yaml, split="test")
    ours = evaluate_detections(run.predictions, run.ground_truth)
    m = run.metrics
    print()
    print(f"training: wall time {det.train_seconds:.1f}s, CPU time of this process {det.train_cpu_seconds:.1f}s "
          f"({args.epochs} epochs, imgsz {args.image_size}, batch {args.batch}, {len(splits['train'])} training "
          f"images); load average after: {load_after:.1f} on {os.cpu_count()} cores")
    print(f"test split ({len(run.predictions)} images), ultralytics validator: "
          f"mAP@0.5 {m['mAP@0.5']:.4f}  mAP@0.5:0.95 {m['mAP@0.5:0.95']:.4f}  "
          f"precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    print(f"test split, oncolab.detection.evaluate_detections on the same predictions: "
          f"mAP@0.5 {ours.map50:.4f}  mAP@0.5:0.95 {ours.map50_95:.4f}")
    print(f"target mAP@0.5 >= 0.90: {'met' if m['mAP@0.5'] >= 0.90 else 'NOT met'}; "
          f"target training <= 300s: wall time {'met' if det.train_seconds <= 300 else 'NOT met'}, "
          f"CPU time {'met' if det.train_cpu_seconds <= 300 else 'NOT met'}"
          + (" (the wall time includes waiting for a loaded machine)" if load_after > (os.cpu_count() or 1) else ""))


if __name__ == "__main__":
    main()
