"""Hand-made features, one module per modality, as scikit-learn transformers.

Every chapter, baseline and stage of the complete system that describes a patient with
hand-made numbers takes them from here, so that one name means one computation everywhere.
Each transformer has ``fit`` / ``transform`` / ``get_feature_names_out`` (it fits in a
:class:`~sklearn.pipeline.Pipeline` and survives :func:`sklearn.base.clone`), learns only from
the patients it is fitted on, and saves itself without pickle: ``state()`` returns JSON-ready
settings and named arrays, ``from_state(config, arrays)`` rebuilds it. That protocol is written
once, in :class:`FeatureTransformer` (:mod:`oncolab.features.base`); :class:`Measurements` is
its form for a function applied to each patient's image, learning nothing.

==========  ============================  ========================================================  =======
modality    transformer                   what it computes                                          chapter
==========  ============================  ========================================================  =======
radiograph  :class:`IntensityHistogram`   grey-level histogram and dark-pixel fractions of the      1
                                          whole image (:func:`intensity_histogram`)
radiograph  :class:`LesionMeasurements`   nine measurements of the lesion inside a box: size,       10
                                          darkness, contrast, margin, rim, texture
                                          (:func:`lesion_measurements`, :data:`LESION_FEATURES`)
pathology   :class:`StainStatistics`      colour means and spreads, tissue fraction,                1
                                          haematoxylin distribution (:func:`stain_statistics`)
pathology   :class:`NuclearMeasurements`  nine measurements of the nuclei: density, size,           10
                                          pleomorphism, hyperchromasia, mitoses
                                          (:func:`nuclear_measurements`, :data:`NUCLEAR_FEATURES`)
labs        :class:`LabFeatures`          :func:`lab_transform` (``log1p`` in canonical units),     6
                                          median-filled, standardised, plus one "missing"
                                          flag per lab
genes       :class:`GeneFeatures`         log-CPM of counts (or log-scale expression as it is),     7
                                          per-gene standardisation, optional PCA
clinical    :class:`ClinicalFeatures`     standardised numbers, one-hot categories (with an         8
                                          "unknown" column per variable)
==========  ============================  ========================================================  =======

Table transformers match columns by name (:mod:`oncolab.features.tables`): a table whose
columns come in another order gives the same features, and an unknown or missing column, or
a value that is not a number, raises an error that names it (and the patient).
"""

from .base import FeatureTransformer, Measurements
from .clinical import ClinicalFeatures
from .genes import GeneFeatures
from .labs import LabFeatures, lab_transform
from .pathology import (
    NUCLEAR_FEATURES,
    STAIN_FEATURES,
    NuclearMeasurements,
    StainStatistics,
    nuclear_measurements,
    stain_statistics,
)
from .radiograph import (
    LESION_FEATURES,
    IntensityHistogram,
    LesionMeasurements,
    intensity_histogram,
    lesion_measurements,
)

__all__ = [
    "LESION_FEATURES", "NUCLEAR_FEATURES", "STAIN_FEATURES", "ClinicalFeatures", "FeatureTransformer",
    "GeneFeatures", "IntensityHistogram", "LabFeatures", "LesionMeasurements", "Measurements", "NuclearMeasurements",
    "StainStatistics", "intensity_histogram", "lab_transform", "lesion_measurements", "nuclear_measurements", "stain_statistics",
]
