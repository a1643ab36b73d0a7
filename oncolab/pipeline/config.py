"""One typed configuration of the complete system; its allowed values come from the registries.

Taught in chapter 12 ("The complete system").

:class:`SystemConfig` lists every setting once, with its type, default, bounds and help text.
The stage choices are the names registered in :data:`oncolab.pipeline.stages.STAGES` and
:data:`~oncolab.pipeline.stages.DETECTORS`, the fusions those of :data:`oncolab.fusion.FUSIONS`;
so registering a new stage makes it a valid setting and a CLI choice without another edit.
The ``oncolab run`` options are generated from these fields (:func:`add_arguments`).

A saved model records its configuration and :data:`FORMAT_VERSION`; a folder with another
format version is refused by name.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from ..data import MODALITIES
from .stages import DETECTORS, STAGES
from .stages.prostate import TILE_BACKBONES

__all__ = ["FORMAT_VERSION", "SystemConfig", "add_arguments", "choices", "config_from_args"]

FORMAT_VERSION = 3
"""Version of the saved-model format (``config.json`` + ``model.safetensors``)."""


def _fusions() -> tuple[str, ...]:
    from ..fusion import FUSIONS

    return tuple(FUSIONS)


def choices(name: str) -> tuple[str, ...]:
    """The allowed values of the setting ``name`` (empty for a free numeric setting).

    Parameters
    ----------
    name : str
        A field of :class:`SystemConfig`.

    Returns
    -------
    tuple of str
        The allowed values, from the registries where they come from one.
    """
    if name.endswith("_encoder") and name[: -len("_encoder")] in STAGES:
        return tuple(STAGES[name[: -len("_encoder")]])
    fixed = {"detector": tuple(DETECTORS), "fusion": _fusions(), "head": ("ordinal", "softmax"),
             "task": ("multitask", "diagnosis", "survival"), "stage_output": ("logp", "features"),
             "tile_pooling": ("mean", "attention"), "lab_narration": ("all", "abnormal"),
             "tile_backbone": TILE_BACKBONES}
    return fixed.get(name, ())


def _setting(default, help: str, minimum: float | None = None, maximum: float | None = None,
             stage: bool = False, open_low: bool = False, open_high: bool = False):
    """A dataclass field with its help text, bounds (closed unless ``open_*``) and whether it changes the stages."""
    return field(default=default, metadata={"help": help, "min": minimum, "max": maximum, "stage": stage,
                                            "open_low": open_low, "open_high": open_high})


@dataclass(frozen=True)
class SystemConfig:
    """Every setting of :class:`oncolab.pipeline.OncoLabSystem`, each written once.

    Build one with keywords, ``SystemConfig(fusion="late")``, from a dict with
    :meth:`from_dict`, or from a preset (:mod:`oncolab.pipeline.presets`); change one with
    :meth:`replace`. Unknown settings and values outside the allowed ones raise a ValueError
    naming the setting, the value and what is allowed.
    """

    modalities: tuple[str, ...] = _setting(tuple(MODALITIES), "modalities the system reads (default: the bone-tumour "
                                           "cohort's; any modality with registered stages may be named)")
    detector: str = _setting("finder", "lesion box of the radiograph stages: finder (hand-made), yolo, or "
                             "annotated (reads the annotated box at prediction: a label)", stage=True)
    radiograph_encoder: str = _setting("measurements", "radiograph stage", stage=True)
    pathology_encoder: str = _setting("measurements", "pathology stage", stage=True)
    mri_encoder: str = _setting("cnn3d", "MRI stage (the prostate cohort)", stage=True)
    labs_encoder: str = _setting("numeric", "lab panel stage (numbers, or the narrative as text)", stage=True)
    genes_encoder: str = _setting("pca", "gene-expression stage", stage=True)
    clinical_encoder: str = _setting("onehot", "clinical stage", stage=True)
    symptoms_encoder: str = _setting("findings", "symptom-note stage: findings (negation handled) or tfidf",
                                     stage=True)
    crop_window: float = _setting(0.5, "CNN window side as a fraction of the radiograph side", 0.0, 1.0, True,
                                  open_low=True)
    crop_size: int = _setting(64, "CNN input pixels", 8, stage=True)
    cnn_epochs: int = _setting(15, "training epochs of each cross-fitted radiograph network (cnn or vit)", 1,
                               stage=True)
    detector_epochs: int = _setting(12, "YOLO training epochs", 1, stage=True)
    detector_imgsz: int = _setting(96, "YOLO image size (a multiple of 32)", 32, stage=True)
    mil_epochs: int = _setting(40, "training epochs of each cross-fitted attention-MIL model (and of the slide-pyramid "
                               "stages' survival models)", 1, stage=True)
    tile_size: int = _setting(64, "pathology tile side in pixels", 8, stage=True)
    max_tiles: int = _setting(8, "tissue tiles per slide region read by the deep tile stages (drawn at random "
                              "beyond that)", 1, stage=True)
    tile_pixels: int = _setting(32, "side the deep tile stages (and a slide-pyramid stage's network tile_backbone) "
                                "shrink each tile to (must divide tile_size)", 8, stage=True)
    tile_epochs: int = _setting(4, "training epochs of each cross-fitted tile encoder (resnet_tiles, vit_tiles, and "
                                "the slide-pyramid stages' tile_backbone)", 1, stage=True)
    tile_backbone: str = _setting("stain_blob", "how the slide-pyramid stages (wsi_mil, crossfusion, convfusion) "
                                  "describe a tile: stain_blob (hand-made features), or a resnet or vit trained on "
                                  "the tiles in each fold (tile_pixels, tile_epochs, pretrained)", stage=True)
    tile_pooling: str = _setting("mean", "how the tile stages pool a patient's tiles: mean, or attention "
                                 "(attention-MIL on the tile embeddings)", stage=True)
    stage_output: str = _setting("logp", "what the deep image stages hand the fusion: class log-probabilities "
                                 "(logp) or penultimate-layer features reduced by PCA (features)", stage=True)
    feature_components: int = _setting(8, "PCA components of stage_output=features", 1, stage=True)
    pretrained: bool = _setting(False, "start the deep image stages from ImageNet weights (timm; needs the "
                                "model hub) instead of training small networks from scratch", stage=True)
    lab_narration: str = _setting("all", "which lab values the narrative of the text lab stages names: all, or "
                                  "only the abnormal ones", stage=True)
    text_components: int = _setting(16, "PCA components of the lab-text embedding", 1, stage=True)
    bert_epochs: int = _setting(10, "masked-language-model pretraining epochs of labs_encoder=bert", 1, stage=True)
    mri_epochs: int = _setting(8, "training epochs of each cross-fitted 3-D MRI network (mri_encoder=cnn3d)", 1,
                               stage=True)
    folds: int = _setting(3, "cross-fitting folds of the supervised stages", 2, stage=True)
    gene_components: int = _setting(16, "PCA components of genes_encoder=pca", 1, stage=True)
    fusion: str = _setting("attention", "fusion strategy (chapter 10)")
    head: str = _setting("ordinal", "diagnosis head: ordinal (classes in order) or softmax")
    task: str = _setting("multitask", "what the fusion model learns: diagnosis, survival, or both")
    hidden: int = _setting(32, "width of the fusion model", 1)
    dropout: float = _setting(0.1, "dropout of the fusion model", 0.0, 1.0, open_high=True)
    epochs: int = _setting(400, "maximum training epochs of the fusion model (early stopping)", 1)
    lr: float = _setting(3e-3, "learning rate of the fusion model", 0.0, open_low=True)
    weight_decay: float = _setting(1e-3, "weight decay of the fusion model", 0.0)
    survival_weight: float = _setting(1.0, "weight of the Cox loss beside cross-entropy", 0.0)
    modality_dropout: float = _setting(0.2, "probability of hiding a modality in each training step", 0.0, 1.0,
                                       open_high=True)
    val_fraction: float = _setting(0.2, "training patients held out for early stopping", 0.0, 0.5,
                                   open_low=True, open_high=True)
    patience: int = _setting(150, "early-stopping patience in epochs", 1)
    seed: int = _setting(0, "random seed; same seed, same bytes", 0, stage=True)
    progress: bool = _setting(True, "progress bars")

    def __post_init__(self):
        mods = self.modalities
        if isinstance(mods, str) or not mods or any(m not in STAGES for m in mods):
            raise ValueError(f"modalities must be a non-empty list drawn from {list(STAGES)}, got {mods!r}")
        object.__setattr__(self, "modalities", tuple(m for m in STAGES if m in mods))
        for f in fields(self):
            v = getattr(self, f.name)
            allowed = choices(f.name)
            if allowed and v not in allowed:
                raise ValueError(f"{f.name}={v!r} is not available; expected one of {list(allowed)}")
            if f.type in ("int", "float"):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or (f.type == "int" and not isinstance(v, int)):
                    raise ValueError(f"{f.name} must be {'an integer' if f.type == 'int' else 'a number'}, got {v!r}")
                lo, hi, md = f.metadata["min"], f.metadata["max"], f.metadata
                if lo is not None and (v < lo or (md["open_low"] and v == lo)):
                    raise ValueError(f"{f.name} must be {'>' if md['open_low'] else '>='} {lo}, got {v!r}")
                if hi is not None and (v > hi or (md["open_high"] and v == hi)):
                    raise ValueError(f"{f.name} must be {'<' if md['open_high'] else '<='} {hi}, got {v!r}")
            if f.type == "bool" and not isinstance(v, bool):
                raise ValueError(f"{f.name} must be True or False, got {v!r}")
        if self.detector_imgsz % 32:
            raise ValueError(f"detector_imgsz must be a multiple of 32 (YOLO's stride), got {self.detector_imgsz}")
        if self.tile_size % self.tile_pixels:
            raise ValueError(f"tile_pixels ({self.tile_pixels}) must divide tile_size ({self.tile_size}): tiles are "
                             "shrunk by an integer factor")

    # -- conversions ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None) -> SystemConfig:
        """A configuration from ``{setting: value}`` (the rest take their defaults).

        Parameters
        ----------
        values : dict, optional
            Settings by name; lists become tuples.

        Returns
        -------
        SystemConfig
        """
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown system setting(s) {unknown}; expected some of {sorted(known)}")
        if "modalities" in values and not isinstance(values["modalities"], str):
            values["modalities"] = tuple(values["modalities"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-able (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["modalities"] = list(self.modalities)
        return d

    def replace(self, **changes) -> SystemConfig:
        """A copy with ``changes`` applied (validated)."""
        return SystemConfig.from_dict({**self.to_dict(), **changes})

    def stage_settings(self) -> dict[str, Any]:
        """The settings that change a fitted stage (two systems with equal ones can share stages)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["stage"]}

    def stage_name(self, modality: str) -> str:
        """The registry name of ``modality``'s stage."""
        return getattr(self, f"{modality}_encoder")

    @property
    def reads_labels_at_prediction(self) -> bool:
        """True where a stage reads an annotation of the patients it predicts (``detector='annotated'``)."""
        return "radiograph" in self.modalities and self.detector == "annotated"


def _parse(f):
    kind = f.type

    def parse(text: str):
        try:
            v = int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{f.name.replace('_', '-')}: expected "
                                             f"{'an integer' if kind == 'int' else 'a number'}, got {text!r}") from None
        return v
    return parse


def _parse_bool(name: str):
    def parse(text: str) -> bool:
        low = text.strip().lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise argparse.ArgumentTypeError(f"--{name.replace('_', '-')}: expected true or false, got {text!r}")
    return parse


def add_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ("progress",)) -> None:
    """Add one ``--option`` per :class:`SystemConfig` field to ``parser`` (default: unset).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser (or argument group) to extend.
    skip : tuple of str
        Fields without an option.
    """
    group = parser.add_argument_group("system settings (defaults from the preset)")
    for f in fields(SystemConfig):
        if f.name in skip:
            continue
        opt = "--" + f.name.replace("_", "-")
        allowed = choices(f.name)
        help_text = f"{f.metadata['help']} (default {f.default if not isinstance(f.default, tuple) else ','.join(f.default)})"
        if f.name == "modalities":
            group.add_argument(opt, default=None, type=lambda s: tuple(x for x in s.split(",") if x),
                               help=help_text + "; comma-separated")
        elif allowed:
            group.add_argument(opt, default=None, choices=list(allowed), help=help_text)
        elif f.type == "bool":
            group.add_argument(opt, default=None, type=_parse_bool(f.name), help=help_text + "; true or false")
        else:
            group.add_argument(opt, default=None, type=_parse(f), help=help_text)


def config_from_args(args: argparse.Namespace, base: SystemConfig | None = None, **extra) -> SystemConfig:
    """``base`` with every option of :func:`add_arguments` that was given on the command line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.
    base : SystemConfig, optional
        The configuration the options change (default: the defaults).
    **extra
        Further settings (e.g. ``progress``).

    Returns
    -------
    SystemConfig
    """
    base = base or SystemConfig()
    given = {f.name: getattr(args, f.name) for f in fields(SystemConfig)
             if getattr(args, f.name, None) is not None}
    return base.replace(**given, **extra)
