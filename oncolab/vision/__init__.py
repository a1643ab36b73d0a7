"""Image encoders: CNNs, ResNet and ViT from first principles, timm, features, explanations.

Chapter 2 ("Images, CNNs and ResNet") teaches :mod:`~oncolab.vision.resnet`, the encoders
and Grad-CAM; chapter 4 ("Vision transformers") teaches :mod:`~oncolab.vision.vit` and
attention rollout; chapter 5 ("Pathology: tiles, stains and multiple-instance learning")
teaches :mod:`~oncolab.vision.pathology` and :mod:`~oncolab.vision.mil`.
"""

from .encoders import (
    ENCODERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    classifier_head,
    extract_features,
    fixed_input_size,
    image_classifier,
    image_encoder,
    lesion_crops,
    predict_proba,
    to_model_input,
    train_classifier,
)
from .gradcam import (
    attention_rollout,
    grad_cam,
    grad_cam_package,
    heatmap_iou,
    overlay,
    pointing_game,
)
from .resnet import BasicBlock, Bottleneck, ResNet, SmallCNN, conv2d_by_hand, count_parameters
from .vit import (
    VIT_CONFIGS,
    Attention,
    Block,
    PatchEmbed,
    VisionTransformer,
    load_timm_weights,
    multi_head_attention,
    patchify,
)

__all__ = [
    "ENCODERS", "IMAGENET_MEAN", "IMAGENET_STD", "VIT_CONFIGS", "Attention", "BasicBlock", "Block",
    "Bottleneck", "PatchEmbed", "ResNet", "SmallCNN", "VisionTransformer", "attention_rollout",
    "classifier_head", "conv2d_by_hand", "count_parameters", "extract_features", "fixed_input_size", "grad_cam",
    "grad_cam_package", "heatmap_iou", "image_classifier", "image_encoder", "lesion_crops", "load_timm_weights",
    "multi_head_attention", "overlay", "patchify", "pointing_game", "predict_proba",
    "to_model_input", "train_classifier",
]

# Pathology (tiles, stains) and attention-MIL, taught in chapter 5.
try:
    from . import mil as _mil
    from . import pathology as _pathology
except ImportError:  # pragma: no cover - only while those modules are absent
    pass
else:
    for _mod in (_pathology, _mil):
        for _name in _mod.__all__:
            globals()[_name] = getattr(_mod, _name)
        __all__ += list(_mod.__all__)
    del _mod, _name
