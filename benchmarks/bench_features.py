"""Feature extraction of radiograph crops on the CPU: time and peak memory.

    python benchmarks/bench_features.py [--n 1000] [--batch-size 64] [--threads 2]
                                        [--models small_resnet,resnet18]

Each encoder reads ``--n`` lesion crops at its default input size (timm's 224 pixels for
``resnet18`` and ``vit_tiny``, the 64-pixel crops of chapter 2 for ``small_resnet``) through
:func:`oncolab.vision.extract_features` (no_grad, batches, grayscale repeated to RGB for the
ImageNet encoders). The crops are cut from a small synthetic cohort and repeated (with flips)
up to ``--n``: extraction time does not depend on the pixel values.

Printed per encoder: wall-clock seconds, CPU seconds of this process (less sensitive to other
programs sharing the machine), images per second (wall clock), the peak of Python-tracked memory during
extraction (``tracemalloc``: NumPy buffers, not PyTorch's own allocator) and the process's
peak resident memory (``resource.getrusage``: everything, including PyTorch, since start).
Timings on a shared machine are noisy; run it alone for figures you quote.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np
import torch

from oncolab.data import synthetic_cohort
from oncolab.vision import extract_features, image_encoder, lesion_crops

DEFAULT_SIZE = {"resnet18": 224, "resnet50": 224, "vit_tiny": 224, "vit_small": 224,
                "small_resnet": 64, "small_cnn": 64}


def _peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def crops_for(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` uint8 lesion crops of ``size`` pixels: 50 patients' crops, repeated with flips."""
    cohort = synthetic_cohort(50, seed=seed, modalities=["radiograph"], image_size=256)
    base, _ = lesion_crops(cohort, size=size)
    variants = [base, base[:, :, ::-1], base[:, ::-1, :], base[:, ::-1, ::-1]]
    reps = int(np.ceil(n / (len(base) * len(variants))))
    return np.ascontiguousarray(np.concatenate(variants * reps)[:n])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="small_resnet,resnet18")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), n={args.n}, batch size {args.batch_size}")
    print(f"{'encoder':<14}{'size':>6}{'dim':>6}{'seconds':>10}{'CPU s':>8}{'img/s':>9}{'tracemalloc peak MiB':>22}{'peak RSS MiB':>14}")
    for name in args.models.split(","):
        size = DEFAULT_SIZE[name]
        in_chans = 1 if name.startswith("small_") else 3
        crops = crops_for(args.n, size)
        model = image_encoder(name, pretrained=False, in_chans=in_chans, num_classes=0, seed=0)
        extract_features(model, crops[: args.batch_size], batch_size=args.batch_size, progress=False)  # warm-up
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        feats = extract_features(model, crops, batch_size=args.batch_size, seed=0, progress=False)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert feats.shape == (args.n, model.num_features) and np.isfinite(feats).all()
        print(f"{name:<14}{size:>6}{feats.shape[1]:>6}{dt:>10.1f}{dc:>8.1f}{args.n / dt:>9.1f}"
              f"{peak / 2**20:>22.1f}{_peak_rss_mib():>14.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
