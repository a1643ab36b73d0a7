"""Explanations that are checked; taught in chapter 11 ("Interpretability").

One interface for image maps (Grad-CAM and attention rollout from :mod:`oncolab.vision`),
permutation importance for tabular inputs, integrated gradients for the fused model (of a
class's logit, or of the risk), modality ablation, per-patient explanation records (the
diagnosis and the risk), and the checks that an explanation is real: the model-randomisation
test, deletion curves, and agreement with the cohort's truth.
"""

from .attribution import (
    IMAGE_METHODS,
    image_map,
    integrated_gradients,
    integrated_gradients_captum,
    modality_ablation,
    permutation_importance,
)
from .records import ExplanationRecord, explanation_records
from .sanity import (
    deletion_curve,
    lesion_hit_rate,
    randomisation_test,
    randomise_weights,
    truth_ranks,
)

__all__ = ["IMAGE_METHODS", "ExplanationRecord", "deletion_curve", "explanation_records", "image_map",
           "integrated_gradients", "integrated_gradients_captum", "lesion_hit_rate", "modality_ablation",
           "permutation_importance", "randomisation_test", "randomise_weights", "truth_ranks"]
