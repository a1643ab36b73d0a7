"""Wall-clock time and peak memory of `oncolab run` for the two prostate presets, chimera and crossfusion.

    python benchmarks/bench_prostate_presets.py [--cores 2] [--out DIR] [-- extra `oncolab run` arguments]
    python benchmarks/bench_prostate_presets.py -- --n-patients 300 --no-ablation

Each preset runs as its own process, `oncolab run --preset NAME --quiet`, which generates the
synthetic prostate cohort (whole-slide pyramids of 2048 x 2048 pixels, MRI of 24 x 64 x 64
voxels, 600 patients by default), fits the system, the ablation and three patient reports,
under `/usr/bin/time -v` (wall-clock time, CPU time, peak resident memory). The measuring is
that of `bench_presets.py` (same folder), run for these two presets; see there for `--cores`.

What costs what: `chimera` renders 64 tiles of 32 x 32 pixels at 20x per slide and trains the
3D CNN of the MRI stage (three folds), the slowest part, and keeps every MRI volume in memory
(600 x 3 x 24 x 64 x 64 float32, about 700 MB: the peak); `crossfusion` renders 16 regions of
128 x 128 level-0 pixels per slide (read at 5x, 10x and 20x) and trains CrossFusion (three
folds). A patient report draws the risk of every region of one slide, which renders the
whole slide once.

Measured on the book's 2-core machine, shared with other jobs (load average 4-5), with
`-- --n-patients 300 --no-ablation --reports 1` (C-index on the 60 held-out patients):

    preset        wall s   CPU s   peak MiB   read s   fit s   C-index
    chimera          141      93       1873       37      81      0.83
    crossfusion       49      33       1165       26      13      0.78

About 1 GB of the peak is the libraries themselves (PyTorch, scikit-learn, matplotlib).

The slide stages describe each tile by hand-made features by default; a network backbone
trained on the tiles (``--tile-backbone resnet`` or ``vit``, with ``--tile-pixels`` and
``--tile-epochs``) keeps the tiles themselves in memory and trains one network per fold, so
time it with the same arguments, e.g.
`-- --n-patients 300 --no-ablation --reports 1 --tile-backbone vit --tile-pixels 16`.
The MRI network's epochs are ``--mri-epochs``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_presets import main as bench_presets_main  # noqa: E402

PROSTATE_PRESETS = ("chimera", "crossfusion")


def main(argv: list[str]) -> int:
    """Run ``bench_presets.py`` for the prostate presets; ``argv`` as for it, without preset names."""
    return bench_presets_main([*PROSTATE_PRESETS, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
