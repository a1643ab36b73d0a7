"""Throughput and peak memory of the chapter-5 pathology pipeline on the CPU.

    python benchmarks/bench_pathology.py [--regions 40] [--size 512] [--tile 64] [--epochs 60]

Times, per slide region: rendering (the synthetic cohort), tiling, Macenko normalisation and
tile features (:func:`oncolab.vision.pathology.slide_tile_features`), and Reinhard
normalisation; then training and prediction of gated attention-MIL on the resulting bags
(after a one-epoch warm-up fit: the first optimiser a process builds pays a one-off import).
Prints seconds per region, regions per second and the process's peak resident memory.
Timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 ** 2 if sys.platform == "darwin" else rss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, default=40)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from oncolab.data import synthetic_cohort
    from oncolab.vision.mil import fit_mil, predict_mil
    from oncolab.vision.pathology import (
        EmptyTileSetError,
        MacenkoNormalizer,
        ReinhardNormalizer,
        slide_tile_features,
        tissue_mask,
    )

    cohort = synthetic_cohort(args.regions, seed=args.seed, modalities=["pathology", "clinical"],
                              slide_size=args.size)
    t0 = time.perf_counter()
    regions = [cohort.slide(i) for i in range(len(cohort))]
    t_render = time.perf_counter() - t0
    ref = next(r for r in regions if tissue_mask(r).mean() > 0.6)
    mac, rein = MacenkoNormalizer().fit(ref), ReinhardNormalizer().fit(ref)

    t0 = time.perf_counter()
    bags, labels = [], []
    for r, yi in zip(regions, cohort.y):
        try:
            bags.append(slide_tile_features(r, mac, args.tile).features)
            labels.append(yi)
        except EmptyTileSetError:
            pass
    t_pipe = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in regions:
        if tissue_mask(r).mean() > 0:
            rein.transform(r)
    t_rein = time.perf_counter() - t0

    x = np.concatenate(bags)
    z = [(b - x.mean(0)) / (x.std(0) + 1e-9) for b in bags]
    t0 = time.perf_counter()  # the first optimiser in a process imports torch's compiler stack
    fit_mil(z, np.array(labels), n_classes=3, epochs=1, seed=args.seed)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = fit_mil(z, np.array(labels), n_classes=3, epochs=args.epochs, seed=args.seed)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    predict_mil(model, z)
    t_pred = time.perf_counter() - t0

    n = len(regions)
    n_tiles = sum(len(b) for b in bags)
    print(f"{n} regions of {args.size} px, {len(bags)} with tissue, {n_tiles} tiles of {args.tile} px")
    print(f"render (synthetic cohort)        {t_render / n:7.3f} s/region")
    print(f"tile + Macenko + tile features   {t_pipe / n:7.3f} s/region  ({n / t_pipe:.1f} regions/s)")
    print(f"Reinhard normalisation           {t_rein / n:7.3f} s/region")
    print(f"first fit in a process (1 epoch) {t_warm:7.2f} s (one-off import inside torch.optim)")
    print(f"attention-MIL fit, {args.epochs} epochs     {t_fit:7.2f} s ({t_fit / args.epochs:.3f} s/epoch)")
    print(f"attention-MIL predict            {t_pred:7.3f} s for {len(bags)} bags")
    print(f"peak resident memory             {peak_rss_mb():7.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
