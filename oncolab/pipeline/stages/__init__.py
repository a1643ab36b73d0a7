"""The stages of the complete system, one registry per modality.

Taught in chapter 12 ("The complete system"). The protocol every stage follows (fit on the
training patients, transform any patients, cross-fitting of supervised stages, state as
arrays + JSON) is in :mod:`oncolab.pipeline.stages.base`.

=============  ==================================================================  =========
modality       stages (``SystemConfig.<modality>_encoder``)                         chapter
=============  ==================================================================  =========
radiograph     ``measurements`` (hand-made lesion measurements), ``cnn``, ``vit``   2, 3, 4, 12
pathology      ``measurements`` (nuclear measurements), ``mil`` (attention-MIL),    5, 10, 12
               ``resnet_tiles``, ``vit_tiles`` (deep tile embeddings)
labs           ``numeric``, ``tfidf``, ``bert``, ``biobert`` (narrative as text),   6, 10
               ``forest`` (random forest, cross-fitted)
genes          ``pca``, ``scaled``, ``svm`` (kernel SVM, cross-fitted)              7, 10
clinical       ``onehot``                                                           7, 10
symptoms       ``findings`` (negation handled), ``tfidf``: the symptom note         6
mri            ``cnn3d`` (3D ResNet on the three sequences; learns from survival)   14
=============  ==================================================================  =========

The prostate cohort's slide pyramids have their own pathology stages, which learn from
survival: ``wsi_mil`` (attention-MIL over 20x tiles), ``crossfusion`` and ``convfusion``
(5x, 10x and 20x tiles merged by cross-attention or by convolution); chapter 14. Their
tiles are described by ``SystemConfig.tile_backbone``: the hand-made ``stain_blob``
features, or a ``resnet`` / ``vit`` trained within each cross-fitting fold.

The radiograph stages find the lesion with a detector from :data:`DETECTORS` (``finder``,
``yolo``, or ``annotated``: the one deliberate exception that reads a label at prediction).

Adding an encoder: write one class (a :class:`Stage`, a :class:`CrossFittedStage` when it
learns from the diagnosis, or a :class:`RiskCrossFittedStage` when it learns from survival)
and add one line to :data:`STAGES`; the configuration, the CLI
options and saving pick it up from here.
"""

from __future__ import annotations

from .base import CrossFittedStage, Inputs, RiskCrossFittedStage, Stage, Targets, crossfit_folds
from .classical import GenesSVM, LabsForest
from .deep import PathologyTileResNet, PathologyTileViT, RadiographViT
from .pathology import PathologyMeasurements, PathologyMIL
from .prostate import MRICNN3d, PathologyConvFusion, PathologyCrossFusion, PathologyWsiMIL
from .radiograph import (
    DETECTORS,
    AnnotatedBoxes,
    FinderBoxes,
    RadiographCNN,
    RadiographMeasurements,
    YoloBoxes,
)
from .symptoms import SymptomsFindings, SymptomsText
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
    "radiograph": {"measurements": RadiographMeasurements, "cnn": RadiographCNN,
                   "vit": RadiographViT},
    "pathology": {"measurements": PathologyMeasurements, "mil": PathologyMIL,
                  "resnet_tiles": PathologyTileResNet, "vit_tiles": PathologyTileViT,
                  "wsi_mil": PathologyWsiMIL, "crossfusion": PathologyCrossFusion, "convfusion": PathologyConvFusion},
    "mri": {"cnn3d": MRICNN3d},
    "labs": {"numeric": LabsNumeric, "tfidf": LabsText, "bert": LabsTinyBert, "biobert": LabsBioBert,
             "forest": LabsForest},
    "genes": {"pca": GenesPCA, "scaled": GenesScaled, "svm": GenesSVM},
    "clinical": {"onehot": ClinicalOneHot},
    "symptoms": {"findings": SymptomsFindings, "tfidf": SymptomsText},
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
           "GenesSVM", "LabsForest", "SymptomsFindings", "SymptomsText", "GenesScaled", "Inputs", "LabsBioBert", "LabsNumeric", "LabsText", "LabsTinyBert", "MRICNN3d", "PathologyConvFusion",
           "PathologyCrossFusion", "PathologyMIL", "PathologyWsiMIL", "RiskCrossFittedStage",
           "PathologyMeasurements", "PathologyTileResNet", "PathologyTileViT", "RadiographCNN",
           "RadiographMeasurements", "RadiographViT", "Stage", "Targets", "YoloBoxes", "crossfit_folds", "stage_class"]
