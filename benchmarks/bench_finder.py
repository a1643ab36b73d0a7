"""Benchmark: the hand-made lesion finder on the synthetic cohort, time and held-out IoU.

Fits ``LesionFinder()`` on the training half of a synthetic cohort (its annotated boxes are
training labels), then predicts the boxes of the held-out half from their radiographs alone
and reports, against their annotated boxes, the IoU (mean, median, share >= 0.5) of

* the fitted finder,
* the finder with its default settings (no fit),
* the centred fallback box alone (the trivial baseline),

with the IoU by diagnosis (the lesion grows with aggressiveness), the fit time, and the
prediction time per image (wall clock and CPU time of this process, with the load average:
on a busy machine the wall time grows while the CPU time stays).

    python benchmarks/bench_finder.py                       # 300 patients, 256-pixel radiographs
    python benchmarks/bench_finder.py --patients 600 --image-size 128
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from oncolab.data import DIAGNOSES, synthetic_cohort, train_val_test_split
from oncolab.detection import LesionFinder, box_iou


def summary(iou: np.ndarray) -> str:
    return f"mean {iou.mean():.3f}  median {np.median(iou):.3f}  IoU>=0.5 {(iou >= 0.5).mean():6.1%}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    cohort = synthetic_cohort(args.patients, seed=args.seed, modalities=["radiograph"], image_size=args.image_size)
    split = train_val_test_split(cohort, (0.5, 0.0, 0.5), seed=args.seed)
    images = [cohort.radiograph(pid) for pid in cohort.ids]
    boxes = cohort.boxes.to_numpy()
    train, test = split["train"], split["test"]
    print(f"{args.patients} patients, {args.image_size}-pixel radiographs, seed {args.seed}: "
          f"fit on {len(train)}, held out {len(test)}; load average {os.getloadavg()[0]:.1f}")

    finder = LesionFinder()
    t0 = time.perf_counter()
    finder.fit([images[i] for i in train], boxes[train])
    fit_s = time.perf_counter() - t0
    n_fit = min(len(train), finder.max_fit_images)
    print(f"fit: {fit_s:.1f} s on {n_fit} images ({1e3 * fit_s / n_fit:.0f} ms per image), training IoU "
          f"{finder.training_iou_:.3f}\n  {finder}")

    held_out = [images[i] for i in test]
    finder.predict(held_out[:5])                       # warm up
    t0, c0 = time.perf_counter(), time.process_time()
    found_boxes, found = finder.predict(held_out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"predict: {1e3 * wall / len(test):.2f} ms per image (CPU {1e3 * cpu / len(test):.2f} ms); "
          f"found a lesion on {found.mean():.1%}")

    truth = boxes[test]
    iou = np.diag(box_iou(found_boxes, truth))
    default_iou = np.diag(box_iou(LesionFinder().predict(held_out)[0], truth))
    h, w = args.image_size, args.image_size
    fw, fh = finder.fallback_size_ * np.array([w, h])
    centred = np.tile([(w - fw) / 2, (h - fh) / 2, (w + fw) / 2, (h + fh) / 2], (len(test), 1))
    centred_iou = np.diag(box_iou(centred, truth))
    print("held-out IoU with the annotated box")
    print(f"  fitted finder     {summary(iou)}")
    print(f"  default settings  {summary(default_iou)}")
    print(f"  centred box       {summary(centred_iou)}")
    y = cohort.y[test]
    for k, name in enumerate(DIAGNOSES):
        if (y == k).any():
            print(f"  {name:<17} {summary(iou[y == k])}  ({(y == k).sum()} patients)")


if __name__ == "__main__":
    main()
