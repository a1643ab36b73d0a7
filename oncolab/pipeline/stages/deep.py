"""Deep image stages: ResNet and ViT tile embeddings of the slide, a ViT on the radiograph window.

Taught in chapter 12 ("The complete system"); the encoders are built in chapter 2 (ResNet)
and chapter 4 (ViT), the tiles in chapter 5.

* pathology ``resnet_tiles`` | ``vit_tiles``: the slide region's tissue tiles
  (:func:`oncolab.vision.tile_slide`: at most ``max_tiles`` tiles of ``tile_size`` pixels,
  shrunk to ``tile_pixels`` by :func:`oncolab.vision.downsample_tiles`) -> a small ResNet or
  a small ViT trained on the diagnosis, every tile labelled with its patient's class
  (cross-fitted by patient) -> the patient's tiles pooled: ``mean`` (the mean of the tiles'
  class probabilities, or of their embeddings), or ``attention`` (attention-MIL, chapter 5,
  trained on the tile embeddings of the fitting patients; its weights say which tiles count);
* radiograph ``vit``: the detector and window of the radiograph CNN
  (:class:`~oncolab.pipeline.stages.RadiographCNN`, whose code it inherits) with the small
  ViT of chapter 4 in place of the ResNet.

What these stages hand the fusion (``SystemConfig.stage_output``): class log-probabilities
or penultimate-layer features reduced by PCA, both cross-fitted
(:class:`~oncolab.pipeline.stages.outputs.CrossFittedEncoder`).

``pretrained=True`` starts each encoder from timm's ImageNet weights (``resnet18``,
``vit_tiny``; needs the model hub, see :func:`oncolab.vision.image_encoder`); by default the
book's small networks are trained from scratch here, which takes minutes on a CPU. A saved
stage is rebuilt without reaching the hub: its own weights replace any download.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import present
from .outputs import CrossFittedEncoder
from .pathology import read_tiled_slides
from .radiograph import RadiographCNN

__all__ = ["POOLINGS", "PathologyTileResNet", "PathologyTileViT", "RadiographViT", "TileEncoderStage"]

POOLINGS = ("mean", "attention")
"""How a tile stage pools a patient's tiles."""


# --------------------------------------------------------------------------------------------
# radiograph: the CNN's detector and window, a ViT
# --------------------------------------------------------------------------------------------
class RadiographViT(RadiographCNN):
    """Detector box -> square window -> small ViT (cross-fitted) -> class log-probabilities or features.

    The settings are :class:`~oncolab.pipeline.stages.RadiographCNN`'s; ``crop_size`` must be a
    multiple of 8, or of 16 with ``pretrained`` (timm's ``vit_tiny``).
    """

    modality: ClassVar[str] = "radiograph"
    name: ClassVar[str] = "vit"
    family: ClassVar[str] = "vit"

    def set_output(self, output: str, components: int, pretrained: bool) -> None:
        super().set_output(output, components, pretrained)
        patch = 16 if pretrained else 8
        if self.crop_size % patch:
            raise ValueError(f"the {'pretrained ' if pretrained else ''}radiograph ViT needs crop_size to be a "
                             f"multiple of {patch}, got {self.crop_size}")

    def grad_cam(self, crop: np.ndarray, target: int | None = None) -> np.ndarray:
        raise TypeError("a ViT has no convolution layer for Grad-CAM; use attention_map (attention rollout)")

    def attention_map(self, crop: np.ndarray) -> np.ndarray:
        """Attention rollout of the fold models on one window (mean of their maps), scaled to [0, 1].

        Parameters
        ----------
        crop : ndarray (crop_size, crop_size)
            The window (``crops(raw, boxes)[i]``).

        Returns
        -------
        ndarray
            The map, the window's shape. Rollout explains no particular class (chapter 4).
        """
        from ...vision.encoders import to_model_input
        from ...vision.gradcam import attention_rollout

        maps = [attention_rollout(m, to_model_input(crop[None], m))[0] for m in self.models]
        cam = np.mean(maps, axis=0)
        return (cam - cam.min()) / (cam.max() - cam.min() + 1e-12)


# --------------------------------------------------------------------------------------------
# pathology: tile encoders
# --------------------------------------------------------------------------------------------
class TileEncoderStage(CrossFittedEncoder):
    """Slide tiles -> an image encoder trained on the patients' classes -> tiles pooled per patient.

    Subclasses set ``family`` (``"resnet"`` or ``"vit"``) and their registry ``name``.

    Parameters
    ----------
    tile_size, tile_pixels, max_tiles : int
        Tile side in the region, the side it is shrunk to, the most tiles per patient.
    epochs : int
        Training epochs of each fold's tile encoder.
    pooling : {"mean", "attention"}
        How a patient's tiles become one output.
    mil_epochs : int
        Training epochs of the attention-MIL pooling.
    folds, seed, progress, output, components, pretrained
        As in :class:`CrossFittedEncoder`.
    """

    modality: ClassVar[str] = "pathology"
    family: ClassVar[str] = ""

    def __init__(self, tile_size: int = 64, tile_pixels: int = 32, max_tiles: int = 8, epochs: int = 4,
                 pooling: str = "mean", mil_epochs: int = 40, folds: int = 3, seed: int = 0, progress: bool = False,
                 output: str = "logp", components: int = 8, pretrained: bool = False):
        super().__init__(folds, seed, progress, output=output, components=components, pretrained=pretrained)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        for key, v in (("tile_size", tile_size), ("tile_pixels", tile_pixels), ("max_tiles", max_tiles),
                       ("epochs", epochs), ("mil_epochs", mil_epochs)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{key} must be a positive integer, got {v!r}")
        if tile_size % tile_pixels:
            raise ValueError(f"tile_pixels ({tile_pixels}) must divide tile_size ({tile_size})")
        self.tile_size, self.tile_pixels, self.max_tiles = int(tile_size), int(tile_pixels), int(max_tiles)
        self.epochs, self.pooling, self.mil_epochs = int(epochs), pooling, int(mil_epochs)
        if self.family == "vit" and self.tile_pixels % (16 if pretrained else 8):
            raise ValueError(f"a {'pretrained ' if pretrained else ''}ViT on tiles needs tile_pixels to be a "
                             f"multiple of {16 if pretrained else 8}, got {self.tile_pixels}")

    @classmethod
    def from_config(cls, config) -> TileEncoderStage:
        return cls(config.tile_size, config.tile_pixels, config.max_tiles, config.tile_epochs, config.tile_pooling,
                   config.mil_epochs, config.folds, config.seed, config.progress, config.stage_output,
                   config.feature_components, config.pretrained)

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """Every patient's tiles ``{"tiles": uint8 (N, p, p, 3), "coords": corners (N, 2)}`` (object arrays).

        At most ``config.max_tiles`` tissue tiles of ``config.tile_size`` pixels per region (drawn
        with ``config.seed`` beyond that), shrunk to ``config.tile_pixels``.
        """
        from ...vision.pathology import downsample_tiles, tile_slide

        def cut(region):
            t = tile_slide(region, config.tile_size, min_tissue=0.5, max_tiles=config.max_tiles, seed=config.seed)
            return downsample_tiles(t, config.tile_pixels), np.asarray(t.coords)

        return read_tiled_slides(cohort, config, cut, ("tiles", "coords"), on_bad_image)

    def usable(self, raw) -> np.ndarray:
        return present(raw["tiles"])

    def prepare(self, raw, rows, targets):
        return raw["tiles"]

    def new_model(self, n_classes: int, config: dict | None = None, fold: int = 0):
        """A fold model; weights are downloaded only to train (``config`` given: a model to load into)."""
        from ...vision.encoders import image_classifier
        from ...vision.mil import GatedAttentionMIL, TileModel

        encoder = image_classifier(self.family, self.pretrained, 3, n_classes, self.tile_pixels, self.seed + fold,
                               download=config is None)
        pool = (GatedAttentionMIL(int(encoder.num_features), n_classes, 32, 16) if self.pooling == "attention"
                else None)
        return TileModel(encoder, pool)

    @staticmethod
    def _stack(inputs, rows) -> tuple[np.ndarray, np.ndarray]:
        counts = np.array([len(inputs[i]) for i in rows])
        return np.concatenate([inputs[i] for i in rows]), counts

    def _per_tile(self, model, inputs, rows, pre_logits: bool) -> list[np.ndarray]:
        """Each patient's tile logits (or embeddings), one array per patient of ``rows``."""
        from ...vision.encoders import extract_features

        X, counts = self._stack(inputs, rows)
        out = extract_features(model.encoder, X, batch_size=256, progress=False, pre_logits=pre_logits)
        return np.split(out, np.cumsum(counts)[:-1])

    def fit_model(self, inputs, rows, y, n_classes, seed):
        from ...vision.encoders import train_classifier
        from ...vision.mil import fit_mil

        model = self.new_model(n_classes, fold=seed - self.seed)
        X, counts = self._stack(inputs, rows)
        train_classifier(model.encoder, X, np.repeat(y, counts), epochs=self.epochs, seed=seed)
        if self.pooling == "attention":
            bags = self._per_tile(model, inputs, rows, pre_logits=True)
            model.pool.load_state_dict(fit_mil(bags, y, n_classes=n_classes, epochs=self.mil_epochs, hidden_dim=32,
                                               attention_dim=16, seed=seed).state_dict())
        model.eval()
        return model

    def _attention(self, model, bags: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        from ...vision.mil import predict_mil

        return predict_mil(model.pool, bags)

    def predict_model(self, model, inputs, rows):
        import torch

        if self.pooling == "attention":
            return self._attention(model, self._per_tile(model, inputs, rows, pre_logits=True))[0]
        return np.stack([torch.from_numpy(t).softmax(1).mean(0).numpy()
                         for t in self._per_tile(model, inputs, rows, pre_logits=False)])

    def embed_model(self, model, inputs, rows) -> np.ndarray:
        bags = self._per_tile(model, inputs, rows, pre_logits=True)
        if self.pooling == "attention":
            weights = self._attention(model, bags)[1]
            return np.stack([w @ b for w, b in zip(weights, bags)])
        return np.stack([b.mean(0) for b in bags])

    def tile_weights(self, raw: dict, position: int,
                     target: int | None = None) -> tuple[np.ndarray, np.ndarray, int, str]:
        """One patient's weight of each tile (mean over the fold models), its corners and side.

        Parameters
        ----------
        raw : dict
            The stage's raw inputs (``read``).
        position : int
            The patient's position in ``raw``.
        target : int, optional
            Class whose probability a mean-pooled tile shows (default: the most probable).

        Returns
        -------
        tuple
            ``(weights (N,), coords (N, 2), tile_size, what)``: with attention pooling the
            attention-MIL weights; with mean pooling each tile's probability of ``target``.
            ``what`` says which, for a figure title.
        """
        import torch

        tiles = raw["tiles"][position]
        if tiles is None:
            raise ValueError(f"patient at position {position} has no slide")
        one = np.empty(1, dtype=object)
        one[0] = tiles
        if self.pooling == "attention":
            w = np.mean([self._attention(m, self._per_tile(m, one, [0], True))[1][0] for m in self.models], axis=0)
            return w, raw["coords"][position], self.tile_size, f"{self.name}: attention weight of each tile"
        p = np.mean([torch.from_numpy(self._per_tile(m, one, [0], False)[0]).softmax(1).numpy() for m in self.models],
                    axis=0)
        k = int(p.mean(0).argmax()) if target is None else int(target)
        name = self.classes_[k] if k < len(self.classes_) else str(k)
        return p[:, k], raw["coords"][position], self.tile_size, f"{self.name}: P({name}) of each tile"

    def settings(self) -> dict:
        return {**super().settings(), "tile_size": self.tile_size, "tile_pixels": self.tile_pixels,
                "max_tiles": self.max_tiles, "epochs": self.epochs, "pooling": self.pooling,
                "mil_epochs": self.mil_epochs, "folds": self.folds, "seed": self.seed}


class PathologyTileResNet(TileEncoderStage):
    """Slide tiles -> small ResNet (chapter 2; ``resnet18`` when pretrained) -> pooled per patient."""

    name: ClassVar[str] = "resnet_tiles"
    family: ClassVar[str] = "resnet"


class PathologyTileViT(TileEncoderStage):
    """Slide tiles -> small ViT (chapter 4; ``vit_tiny`` when pretrained) -> pooled per patient."""

    name: ClassVar[str] = "vit_tiles"
    family: ClassVar[str] = "vit"
