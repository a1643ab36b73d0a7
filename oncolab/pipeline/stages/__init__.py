"""The stages of the complete system, one registry per modality.

Taught in chapter 12 ("The complete system"). The protocol every stage follows (fit on the
training patients, transform any patients, cross-fitting of supervised stages, state as
arrays + JSON) is in :mod:`oncolab.pipeline.stages.base`.

=============  ==================================================================  =========
modality       stages (``SystemConfig.<modality>_encoder``)                         chapter
=============  ==================================================================  =========
radiograph     ``measurements`` (hand-made lesion measurements), ``cnn``            2, 3, 12
pathology      ``measurements`` (nuclear measurements), ``mil`` (attention-MIL)     5, 10
labs           ``numeric``, ``tfidf``, ``bert``, ``biobert`` (narrative as text)    6
genes          ``pca``, ``scaled``                                                  7
clinical       ``onehot``                                                           7, 10
=============  ==================================================================  =========

The radiograph stages find the lesion with a detector from :data:`DETECTORS` (``finder``,
``yolo``, or ``annotated``: the one deliberate exception that reads a label at prediction).

Adding an encoder: write one class (a :class:`Stage`, or a :class:`CrossFittedStage` when it
learns from the diagnosis) and add one line to :data:`STAGES`; the configuration, the CLI
options and saving pick it up from here.
"""

from __future__ import annotations

from .base import CrossFittedStage, Inputs, Stage, Targets, crossfit_folds
from .pathology import PathologyMeasurements, PathologyMIL
from .radiograph import (
    DETECTORS,
    AnnotatedBoxes,
    FinderBoxes,
    RadiographCNN,
    RadiographMeasurements,
    YoloBoxes,
)
from .tables import (
    ClinicalOneHot,
    GenesPCA,
    GenesScaled,
    LabsBioBert,
    LabsNumeric,
    LabsText,
    LabsTinyBert,
)

STAGES: dict[str, dict[str, type[Stage]]] = {
    "radiograph": {"measurements": RadiographMeasurements, "cnn": RadiographCNN},
    "pathology": {"measurements": PathologyMeasurements, "mil": PathologyMIL},
    "labs": {"numeric": LabsNumeric, "tfidf": LabsText, "bert": LabsTinyBert, "biobert": LabsBioBert},
    "genes": {"pca": GenesPCA, "scaled": GenesScaled},
    "clinical": {"onehot": ClinicalOneHot},
}
"""``STAGES[modality][name]``: the stage class; the first name of each modality is its default."""


def stage_class(modality: str, name: str) -> type[Stage]:
    """The registered stage ``name`` of ``modality``; an unknown one raises a ValueError listing the choices.

    Parameters
    ----------
    modality : str
        One of the keys of :data:`STAGES`.
    name : str
        The stage's registry name.

    Returns
    -------
    type
        The stage class.
    """
    if modality not in STAGES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {list(STAGES)}")
    if name not in STAGES[modality]:
        raise ValueError(f"unknown {modality} stage {name!r}; expected one of {list(STAGES[modality])}")
    return STAGES[modality][name]


__all__ = ["DETECTORS", "STAGES", "AnnotatedBoxes", "ClinicalOneHot", "CrossFittedStage", "FinderBoxes", "GenesPCA",
           "GenesScaled", "Inputs", "LabsBioBert", "LabsNumeric", "LabsText", "LabsTinyBert", "PathologyMIL",
           "PathologyMeasurements", "RadiographCNN", "RadiographMeasurements", "Stage", "Targets", "YoloBoxes",
           "crossfit_folds", "stage_class"]
