"""Data: the ``Cohort`` type, the synthetic cohorts and their oracle, files on disk, splits and real datasets.

Chapter 1 teaches all of it (chapter 6 the optional symptom notes); chapter 14 adds the
prostate cohort; the book's page "Your own cohort" reads a researcher's own folder
(:func:`load_cohort`, :func:`validate_cohort`). This subpackage knows nothing of models.
"""

from .cohort import (
    DIAGNOSES,
    MODALITIES,
    OPTIONAL_MODALITIES,
    Cohort,
    Patient,
    check_modalities,
    survival_array,
)
from .folder import CohortProblem, load_cohort, validate_cohort
from .generators import oracle, oracle_table
from .io import (
    DiskImages,
    YoloLabelError,
    export_cohort,
    export_yolo,
    read_data_yaml,
    read_image,
    read_yolo_labels,
    write_yolo_dataset,
)
from .labs import BIOMARKERS, Biomarker, biomarker, flag_value, reference_range, to_canonical
from .prostate import ProstateCohort, ProstateConfig, prostate_cohort
from .real import (
    RealDataset,
    load_breast_cancer_genes,
    load_fna_breast_cancer,
    load_gbsg2,
    load_whas500,
)
from .splits import kfold_indices, train_val_test_split
from .synthetic import (
    CENTERS,
    GENE_PATHWAYS,
    GENES,
    INFORMATIVE_GENES,
    SITES,
    SYMPTOM_FINDINGS,
    CohortConfig,
    diagnosis_posterior,
    lesion_geometry,
    render_radiograph,
    render_slide,
    stain_matrix,
    symptom_note,
    synthetic_cohort,
)

__all__ = [
    "BIOMARKERS", "CENTERS", "DIAGNOSES", "GENES", "GENE_PATHWAYS", "INFORMATIVE_GENES", "MODALITIES",
    "OPTIONAL_MODALITIES", "SITES", "SYMPTOM_FINDINGS",
    "Biomarker", "Cohort", "CohortConfig", "CohortProblem", "DiskImages", "Patient", "ProstateCohort", "ProstateConfig",
    "RealDataset", "YoloLabelError", "biomarker", "check_modalities", "diagnosis_posterior", "export_cohort",
    "export_yolo", "flag_value", "kfold_indices", "lesion_geometry", "load_breast_cancer_genes", "load_cohort",
    "load_fna_breast_cancer", "load_gbsg2", "load_whas500", "oracle", "oracle_table", "prostate_cohort",
    "read_data_yaml", "read_image", "read_yolo_labels", "reference_range", "render_radiograph", "render_slide",
    "stain_matrix", "survival_array", "symptom_note", "synthetic_cohort", "to_canonical", "train_val_test_split",
    "validate_cohort", "write_yolo_dataset",
]
