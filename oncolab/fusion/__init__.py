"""Fusion: seven ways to combine modality embeddings, modality dropout, heads and training.

Taught in chapter 10 ("Fusion strategies"); the complete system (chapter 12) picks one by
name. :mod:`oncolab.fusion.classical` holds the classical classifiers of MEDFUSION's route
(a random forest and a kernel SVM), saved as arrays.

Every fusion module reads a dict ``{modality: (n, d_m) tensor}`` and a presence mask
``(n, M)`` (True = acquired) in the order of ``fusion.modalities``, and returns ``(z,
weights)``: the fused representation and, where the strategy has them, each modality's
weight per patient (for explanation; ``None`` otherwise). A missing modality is never
silently treated as a measured zero: each strategy says what it does with the mask.
"""

from .classical import KernelSVM, RandomForest
from .models import (
    FUSIONS,
    IMAGE_MODALITIES,
    AttentionFusion,
    BilinearFusion,
    CrossAttentionFusion,
    EarlyFusion,
    FusionOutput,
    GatedFusion,
    HybridFusion,
    LateFusion,
    MultimodalModel,
    make_fusion,
    modality_dropout,
)
from .train import predict_model, train_model

__all__ = ["FUSIONS", "IMAGE_MODALITIES", "AttentionFusion", "BilinearFusion", "CrossAttentionFusion", "EarlyFusion",
           "FusionOutput", "GatedFusion", "HybridFusion", "KernelSVM", "LateFusion", "MultimodalModel", "RandomForest",
           "make_fusion", "modality_dropout", "predict_model", "train_model"]
