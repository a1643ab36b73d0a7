"""How long the synthetic cohort takes to make (chapter 1).

    python benchmarks/bench_cohort.py [--n 1000] [--images 50]

Prints: the time to generate an n-patient cohort (tables, boxes; images lazily), the time per
patient to render a radiograph and a slide region on demand, the peak Python memory of
generation (tracemalloc), and the time of its oracle (which every chapter prints). Target:
1000 patients in <= 30 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from oncolab.data import oracle, synthetic_cohort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--images", type=int, default=50, help="patients whose images are rendered")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    tracemalloc.start()
    t0 = time.perf_counter()
    cohort = synthetic_cohort(args.n, seed=args.seed)
    gen_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    t0 = time.perf_counter()
    for i in range(args.images):
        cohort.radiograph(i)
    rad_s = (time.perf_counter() - t0) / args.images
    t0 = time.perf_counter()
    for i in range(args.images):
        cohort.slide(i)
    slide_s = (time.perf_counter() - t0) / args.images
    t0 = time.perf_counter()
    oracle(cohort)
    oracle_s = time.perf_counter() - t0

    print(f"cohort of {args.n} patients (tables + boxes, images lazy): {gen_s:.1f} s, "
          f"peak traced memory {peak / 2**20:.0f} MiB")
    print(f"on demand: radiograph {1000 * rad_s:.1f} ms/patient, slide region {1000 * slide_s:.1f} ms/patient")
    print(f"all images of all {args.n} patients would take about {args.n * (rad_s + slide_s):.0f} s")
    print(f"oracle (with its population simulation): {oracle_s:.2f} s")


if __name__ == "__main__":
    main()
