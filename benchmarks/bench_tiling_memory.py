"""Peak memory of tiling a whole 2048 x 2048 synthetic slide at three scales, lazily.

Tiles every 128 x 128 region of the slide at levels 2, 1 and 0 (32 x 32 pixels each, the
5x / 10x / 20x of chapters 14 and 15) with :func:`oncolab.vision.multiscale.iter_aligned_tiles`
and reports the peak Python-heap memory (``tracemalloc``) and the time taken, beside the size
the slide's pyramid would have if it were held in memory. ``--full`` also renders level 0
in one piece, for comparison (slow, and the peak is large).

    python benchmarks/bench_tiling_memory.py [--size 2048] [--full]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from oncolab.data.prostate import prostate_cohort
from oncolab.vision.multiscale import iter_aligned_tiles


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--full", action="store_true", help="also render level 0 in one piece")
    a = p.parse_args()
    slide = prostate_cohort(1, seed=0, slide_size=a.size).slide(0)
    pyramid_mb = sum(w * h * 3 for w, h in slide.level_dimensions) / 2**20
    tracemalloc.start()
    t0 = time.perf_counter()
    n = 0
    for _, tiles in iter_aligned_tiles(slide, (2, 1, 0), 32):
        n += tiles.shape[0]
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"slide {a.size} x {a.size}, 3 levels: the pyramid in memory would take {pyramid_mb:.1f} MiB (uint8 RGB)")
    print(f"lazy tiling: {n} tiles of 32 x 32 at 3 scales ({n // 3} regions) in {seconds:.1f} s, "
          f"peak traced memory {peak / 2**20:.2f} MiB")
    if a.full:
        tracemalloc.start()
        t0 = time.perf_counter()
        slide.read_region((0, 0), 0, (a.size, a.size))
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"level 0 rendered in one piece: {seconds:.1f} s, peak traced memory {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
