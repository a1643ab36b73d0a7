"""Fusion: six ways to combine modality embeddings, modality dropout, heads and training.

Taught in chapter 10 ("Fusion strategies"); the complete system (chapter 12) picks one by
name.

Every fusion module reads a dict ``{modality: (n, d_m) tensor}`` and a presence mask
``(n, M)`` (True = acquired) in the order of ``fusion.modalities``, and returns ``(z,
weights)``: the fused representation and, where the strategy has them, each modality's
weight per patient (for explanation; ``None`` otherwise). A missing modality is never
silently treated as a measured zero: each strategy says what it does with the mask.
"""

from .models import (
    FUSIONS,
    AttentionFusion,
    BilinearFusion,
    CrossAttentionFusion,
    EarlyFusion,
    FusionOutput,
    GatedFusion,
    LateFusion,
    MultimodalModel,
    make_fusion,
    modality_dropout,
)
from .train import predict_model, train_model

__all__ = ["FUSIONS", "AttentionFusion", "BilinearFusion", "CrossAttentionFusion", "EarlyFusion", "FusionOutput",
           "GatedFusion", "LateFusion", "MultimodalModel", "make_fusion", "modality_dropout",
           "predict_model", "train_model"]
