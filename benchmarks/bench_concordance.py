"""Harrell's C on 20,000 patients: ours (O(n log^2 n), vectorised) against scikit-survival's
``concordance_index_censored`` (a loop over events with a vectorised inner comparison).

    python benchmarks/bench_concordance.py [--n 20000] [--repeats 3]

Prints the median time of each, their ratio, and checks that the two values are identical.
The target is a ratio (ours / scikit-survival) of at most 2.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sksurv.metrics import concordance_index_censored

from oncolab.survival import harrell_c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.n
    x = rng.normal(size=n)
    t = np.round(rng.exponential(np.exp(-x)) * 100, 1)  # ties in time, as in real data
    c = rng.uniform(0, 300, n)
    time_, event = np.minimum(t, c), t <= c
    risk = x + rng.normal(size=n)

    def bench(fn):
        out, times = None, []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, float(np.median(times))

    ours, t_ours = bench(lambda: harrell_c(time_, event, risk))
    ref, t_ref = bench(lambda: concordance_index_censored(event, time_, risk)[0])
    print(f"n = {n}, events = {int(event.sum())}, repeats = {args.repeats} (median time)")
    print(f"oncolab harrell_c:                     C = {ours:.10f}  {t_ours * 1000:9.1f} ms")
    print(f"sksurv concordance_index_censored:     C = {ref:.10f}  {t_ref * 1000:9.1f} ms")
    print(f"identical: {ours == ref};  time ratio ours / sksurv = {t_ours / t_ref:.3f} (target <= 2)")


if __name__ == "__main__":
    main()
