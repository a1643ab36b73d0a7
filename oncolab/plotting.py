"""The book's figures, in one style.

Used from chapter 1 on. A function that makes a figure returns the matplotlib Figure, so that
a chapter can save or further annotate it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .data.cohort import DIAGNOSES, Cohort

__all__ = ["DIAGNOSIS_COLORS", "draw_box", "show_modalities", "use_book_style"]

DIAGNOSIS_COLORS = {"benign": "#1b9e77", "intermediate": "#d95f02", "malignant": "#7570b3"}


def use_book_style() -> None:
    """Small, clean figures that read well on a page and in a notebook.

    Taught in chapter 1; chapters 2, 3, 4, 11 and 13 call it too. It updates matplotlib's
    global ``rcParams`` (100 dpi on screen, 150 when saved, 7 x 4 inch figures, no top or
    right spines, no legend frame, 10-11 point text) for every later figure.

    Returns
    -------
    None
    """
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 150, "figure.figsize": (7, 4),
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
        "axes.titlesize": 11, "axes.labelsize": 10, "legend.frameon": False,
        "font.size": 10,
    })


def draw_box(ax, box: Sequence[float], color: str = "#e41a1c", label: str | None = None, lw: float = 1.5):
    """Draw one (x0, y0, x1, y1) pixel box on an image axis.

    Taught in chapter 1 (the lesion's annotated box); chapter 2 uses it too.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        An axis showing the image.
    box : sequence of 4 floats
        ``(x0, y0, x1, y1)`` in pixels (a pandas row of four values works).
    color : str, default "#e41a1c"
        Edge and label colour.
    label : str, optional
        Text written above the box's top-left corner.
    lw : float, default 1.5
        Line width.

    Returns
    -------
    None
        The box is added to ``ax``.
    """
    x0, y0, x1, y1 = box
    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=lw))
    if label:
        ax.text(x0, y0 - 2, label, color=color, fontsize=8, va="bottom")


def show_modalities(cohort: Cohort, per_class: int = 2, seed: int = 0):
    """Radiograph (with its box) and slide region for ``per_class`` patients of each diagnosis.

    Taught in chapter 1. The top row shows the radiographs with their annotated boxes, titled
    by diagnosis and patient id; the bottom row the H&E regions, titled by center. Needs the
    three diagnoses of :data:`oncolab.data.DIAGNOSES` (a class with fewer patients shows as
    many as it has).

    Parameters
    ----------
    cohort : Cohort
        A cohort with radiographs, boxes, slides and a clinical ``center`` column.
    per_class : int, default 2
        Patients drawn per diagnosis, without replacement.
    seed : int, default 0
        Seeds which patients are drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rng = np.random.default_rng(seed)
    rows = []
    for k, name in enumerate(DIAGNOSES):
        idx = np.flatnonzero(cohort.y == k)
        rows += [(name, int(i)) for i in rng.choice(idx, size=min(per_class, len(idx)), replace=False)]
    fig, axes = plt.subplots(2, len(rows), figsize=(2.2 * len(rows), 4.6), squeeze=False)
    for j, (name, i) in enumerate(rows):
        ax = axes[0, j]
        ax.imshow(cohort.radiograph(i), cmap="gray", vmin=0, vmax=255)
        draw_box(ax, cohort.boxes.iloc[i])
        ax.set_title(f"{name}\n{cohort.ids[i]}", color=DIAGNOSIS_COLORS[name], fontsize=9)
        axes[1, j].imshow(cohort.slide(i))
        axes[1, j].set_title(f"center {cohort.clinical['center'].iloc[i]}", fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("radiograph")
    axes[1, 0].set_ylabel("H&E region")
    fig.tight_layout()
    return fig
