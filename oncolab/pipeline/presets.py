"""Named configurations of the complete system.

Taught in chapter 12 ("The complete system"). A preset is a set of :class:`SystemConfig`
settings; :func:`preset` gives the configuration, ``oncolab run --preset NAME`` uses it, and
any setting can still be changed on top of it.

* ``handcrafted`` (the defaults): the hand-made lesion finder and lesion measurements,
  nuclear measurements of the slide, the lab values, PCA of the genes, one-hot clinical
  data, attention fusion. Seconds to fit; no label is read at prediction.
* ``learned``: the stages of chapters 2-6: YOLO boxes, a cross-fitted CNN on the lesion
  window, cross-fitted attention-MIL over slide tiles, the lab narrative through TF-IDF.
  Its fusion is ``late``: one head per modality reads that modality's stage output (for the
  CNN and MIL stages, class log-probabilities that are already a prediction), and the heads'
  outputs are averaged over the modalities a patient has. The ablation of chapter 12 sets it
  beside the other fusions on the same stage outputs.
* ``annotated_box``: ``handcrafted`` with the *annotated* lesion box in place of the finder's:
  an upper bound for what a perfect detector would give, which reads a label of every
  patient it predicts (results say so).
"""

from __future__ import annotations

from typing import Any

from .config import SystemConfig

__all__ = ["PRESETS", "preset"]

PRESETS: dict[str, dict[str, Any]] = {
    "handcrafted": {},
    "learned": {"detector": "yolo", "radiograph_encoder": "cnn", "pathology_encoder": "mil", "labs_encoder": "tfidf",
                "fusion": "late"},
    "annotated_box": {"detector": "annotated"},
}
"""``{name: settings}``: each preset's changes to the defaults of :class:`SystemConfig`."""


def preset(name: str, **changes) -> SystemConfig:
    """The configuration of the preset ``name``, with ``changes`` on top.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    **changes
        Settings that override the preset's.

    Returns
    -------
    SystemConfig
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PRESETS)}")
    return SystemConfig.from_dict({**PRESETS[name], **changes})
