"""Stages of the prostate cohort: whole-slide pyramids and MRI volumes, learning from survival.

Taught in chapter 14 ("Whole slides at several scales, and MRI"); the pieces are built there
(:mod:`oncolab.vision.multiscale`, :mod:`oncolab.vision.mri3d`) and the protocol in chapter 12.

The prostate cohort has no diagnosis, only time to biochemical recurrence, so these stages
learn from survival: each is a :class:`~oncolab.pipeline.stages.base.RiskCrossFittedStage`
(cross-fitted like the diagnosis stages, folds stratified by the event) whose fold models are
discrete-time survival models (:func:`oncolab.vision.multiscale.fit_bag_survival`), and each
hands the fusion one standardised risk per patient.

* pathology ``wsi_mil``: the slide pyramid read at full resolution (20x) only, as tiles
  described by :func:`oncolab.vision.multiscale.stain_blob_features` -> gated attention-MIL
  (CHIMERA's baseline aggregates 20x tiles with attention-MIL);
* pathology ``crossfusion``: the same regions at 5x, 10x and 20x -> :class:`CrossFusionSurv`
  (cross-attention from the middle scale);
* pathology ``convfusion``: the same regions at 5x, 10x and 20x -> :class:`ConvFusionSurv`
  (the scales merged by convolution);
* mri ``cnn3d``: the three sequences on one grid -> :class:`oncolab.vision.mri3d.MRIEncoder3d`.

The slide stages read a fixed set of regions per slide (drawn with the configuration's seed),
so a patient gets the same tiles alone or in a cohort; they can map attention and risk over
every region of a slide (:meth:`PathologyPyramid.region_maps`).

Each slide stage describes its tiles with one of :data:`TILE_BACKBONES`
(``SystemConfig.tile_backbone``): ``stain_blob``, the hand-made
:func:`~oncolab.vision.multiscale.stain_blob_features` (18 numbers per tile, the default), or
a ``resnet`` or ``vit`` (the book's small ResNet and ViT trained here, or timm's
ImageNet-pretrained ones with ``pretrained``; :meth:`PathologyPyramid.tile_encoder`). A network backbone is
trained within each cross-fitting fold, on the fitting patients' tiles (every tile labelled
with its patient's time and event, the logistic-hazard loss); its tile embeddings, frozen and
standardised, are then the bag the fold's survival model learns from (the pattern of a
pathology foundation model followed by an aggregator, with the encoder learnt here).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import RiskCrossFittedStage, read_images

__all__ = ["TILE_BACKBONES", "MRICNN3d", "PathologyConvFusion", "PathologyCrossFusion", "PathologyPyramid",
           "PathologyWsiMIL", "backbone_risks", "check_pyramid", "check_volume"]

TILE_BACKBONES = ("stain_blob", "resnet", "vit")
"""How a slide-pyramid stage describes a tile: hand-made features, or a small ResNet or ViT trained here."""


def check_pyramid(slide):
    """``slide`` if it is a whole-slide pyramid (OpenSlide's interface), else a TypeError saying what it is.

    Taught in chapter 14.

    Parameters
    ----------
    slide : object
        What the cohort's ``slide`` accessor returned.

    Returns
    -------
    object
        The slide.
    """
    needed = ("read_region", "level_count", "level_downsamples", "dimensions")
    if not all(hasattr(slide, a) for a in needed):
        what = f"an array of shape {np.shape(slide)}" if isinstance(slide, np.ndarray) else type(slide).__name__
        raise TypeError(f"expected a whole-slide pyramid with OpenSlide's read_region (as the prostate cohort's "
                        f"slides), got {what}; a slide region is read by the 'measurements' or 'mil' stages")
    return slide


def check_volume(volume) -> np.ndarray:
    """``volume`` as float32 if it is a finite MRI volume (3, D, H, W), else a ValueError naming its shape.

    Taught in chapter 14.

    Parameters
    ----------
    volume : array-like
        What the cohort's ``mri`` accessor returned.

    Returns
    -------
    numpy.ndarray
        float32 (3, D, H, W).
    """
    v = np.asarray(volume, np.float32)
    if v.ndim != 4 or v.shape[0] != 3 or min(v.shape[1:]) < 1 or not np.isfinite(v).all():
        raise ValueError(f"an MRI volume must be a finite (3 sequences, D, H, W) array, got shape {v.shape}")
    return v


class _SurvivalModels(RiskCrossFittedStage):
    """Fold models trained by :func:`oncolab.vision.multiscale.fit_bag_survival` on a tensor of inputs.

    Each fold model carries its time-bin edges (a buffer named ``edges``, computed from its own
    training patients), so a saved stage records how many bins every fold has.
    """

    def __init__(self, epochs: int = 40, folds: int = 3, bins: int = 6, seed: int = 0, progress: bool = False):
        super().__init__(folds, seed, progress)
        self.epochs, self.bins = int(epochs), int(bins)

    def build(self, n_bins: int):
        """An unfitted network with ``n_bins`` outputs."""
        raise NotImplementedError

    def forward_fn(self):
        """``forward(model, xb, mb)`` -> logits, as :func:`~oncolab.vision.multiscale.fit_bag_survival` takes it."""
        return None

    def batch_size(self) -> int:
        return 32

    def tensors(self, inputs, rows: np.ndarray):
        """The model inputs ``(X, mask)`` of the patients ``rows``, from what :meth:`prepare` returned."""
        X, M = inputs
        return X[rows], M[rows]

    def fit_model(self, inputs, rows, y, n_classes, seed):
        import torch

        from ...survival import time_bins
        from ...vision.multiscale import fit_bag_survival

        X, M = self.tensors(inputs, rows)
        edges = time_bins(y["time"], y["event"], self.bins)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.build(len(edges) - 1)
        net.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float64))
        fit_bag_survival(net, X, M, y["time"], y["event"], edges, epochs=self.epochs,
                         batch_size=self.batch_size(), seed=seed, forward=self.forward_fn())
        return net

    def predict_model(self, model, inputs, rows):
        from ...vision.multiscale import predict_bag_survival

        risks = [np.zeros(0)]
        for s in range(0, len(rows), 64):   # 64 patients at a time: an MRI batch stays small
            X, M = self.tensors(inputs, rows[s:s + 64])
            risks.append(predict_bag_survival(model, X, M, model.edges.numpy(), forward=self.forward_fn())["risk"])
        return np.concatenate(risks)

    def new_fold_model(self, fold: int, config: dict):
        import torch

        k = int(config["fold_bins"][fold])
        net = self.build(k)
        net.register_buffer("edges", torch.zeros(k + 1, dtype=torch.float64))
        return net

    def extra_state(self) -> dict:
        return {**super().extra_state(), "fold_bins": [int(len(m.edges) - 1) for m in self.models]}


class PathologyPyramid(_SurvivalModels):
    """A slide pyramid as a bag of aligned tiles at ``levels`` -> a survival MIL model, cross-fitted -> risk.

    Taught in chapter 14.

    Subclasses set ``name``, ``levels`` (pyramid levels from low to high magnification),
    ``n_tiles`` (regions per slide) and :meth:`bag_model`.

    Parameters
    ----------
    epochs : int
        Training epochs of each fold's survival model on the bags.
    folds, bins, seed, progress
        Cross-fitting folds, time bins of the discrete-time head, seed, progress bars.
    dim : int
        Width of the survival model.
    tile_size : int
        Tile side in pixels at every level.
    tile_backbone : {"stain_blob", "resnet", "vit"}
        How a tile is described (see the module docstring).
    tile_pixels : int
        Side a network backbone reads, each tile shrunk to it by area averaging (must divide
        ``tile_size``; a multiple of 4 for the ViT, of 16 when pretrained); unused by
        ``stain_blob``.
    tile_epochs : int
        Training epochs of each fold's network backbone on the tiles.
    pretrained : bool
        Start a network backbone from timm's ImageNet weights (needs the model hub).
    """

    modality: ClassVar[str] = "pathology"
    levels: ClassVar[tuple[int, ...]] = (2, 1, 0)
    n_tiles: ClassVar[int] = 16

    def __init__(self, epochs: int = 40, folds: int = 3, bins: int = 6, dim: int = 32, tile_size: int = 32,
                 seed: int = 0, progress: bool = False, tile_backbone: str = "stain_blob", tile_pixels: int = 32,
                 tile_epochs: int = 4, pretrained: bool = False):
        super().__init__(epochs, folds, bins, seed, progress)
        if tile_backbone not in TILE_BACKBONES:
            raise ValueError(f"tile_backbone must be one of {list(TILE_BACKBONES)}, got {tile_backbone!r}")
        for key, v in (("tile_size", tile_size), ("tile_pixels", tile_pixels), ("tile_epochs", tile_epochs)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{key} must be a positive integer, got {v!r}")
        if tile_backbone != "stain_blob":
            if tile_size % tile_pixels:
                raise ValueError(f"tile_pixels ({tile_pixels}) must divide tile_size ({tile_size})")
            patch = 16 if pretrained else 4
            if tile_backbone == "vit" and tile_pixels % patch:
                raise ValueError(f"a {'pretrained ' if pretrained else ''}ViT backbone needs tile_pixels to be a "
                                 f"multiple of {patch}, got {tile_pixels}")
        self.dim, self.tile_size = int(dim), int(tile_size)
        self.tile_backbone, self.tile_pixels, self.tile_epochs = tile_backbone, int(tile_pixels), int(tile_epochs)
        self.pretrained = bool(pretrained)

    @classmethod
    def from_config(cls, config) -> PathologyPyramid:
        return cls(config.mil_epochs, config.folds, tile_size=config.tile_size, seed=config.seed,
                   progress=config.progress, tile_backbone=config.tile_backbone, tile_pixels=config.tile_pixels,
                   tile_epochs=config.tile_epochs, pretrained=config.pretrained)

    @property
    def learns_tiles(self) -> bool:
        """True when a network backbone is trained on the tiles (not the hand-made features)."""
        return self.tile_backbone != "stain_blob"

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """Every patient's bag of tiles, the usable mask and notes (as :func:`~oncolab.pipeline.stages.base.read_images`).

        The same ``n_tiles`` regions (cells of the widest tile's footprint, drawn with
        ``config.seed``) are read on every slide, at every level of ``levels``, each tile
        ``config.tile_size`` pixels a side. With ``config.tile_backbone="stain_blob"`` a bag is
        their features, float32 ``(len(levels), n_tiles, 18)``; with a network backbone, the
        tiles themselves, uint8 ``(len(levels), n_tiles, tile_size, tile_size, 3)``
        (:func:`oncolab.vision.multiscale.stain_blob_features` of those tiles is the
        hand-made bag).
        """
        from ...vision.multiscale import aligned_tiles, region_bag, sample_locations

        def bag(slide):
            footprint = int(config.tile_size * max(slide.level_downsamples[lv] for lv in cls.levels))
            centers = sample_locations(slide, cls.n_tiles, footprint, config.seed)
            if config.tile_backbone == "stain_blob":
                return region_bag(slide, centers, cls.levels, config.tile_size)
            return np.ascontiguousarray(aligned_tiles(slide, centers, cls.levels, config.tile_size).swapaxes(0, 1))

        bags, usable, notes = read_images(cohort, "pathology", config, bag, on_bad_image, check=check_pyramid)
        return bags, usable, notes

    def prepare(self, raw, rows, targets):
        import torch

        usable = self.usable(raw)
        if self.learns_tiles:
            shape = (len(self.levels), self.n_tiles, self.tile_pixels, self.tile_pixels, 3)
            X = np.zeros((len(usable), *shape), np.uint8)
            for i in np.flatnonzero(usable):
                X[i] = self.shrink(raw[i])
            return torch.from_numpy(X), torch.ones(len(usable), self.n_tiles, dtype=torch.bool)
        if targets is not None:
            fit = np.stack([raw[i] for i in rows])  # (n, S, N, F)
            self.mean_ = fit.mean((0, 2))[:, None, :]
            sd = fit.std((0, 2))[:, None, :]
            self.std_ = np.where(sd > 1e-12, sd, 1.0)
        shape = (len(self.levels), self.n_tiles, len(self.mean_[0, 0]))
        X = np.zeros((len(usable), *shape), np.float32)
        for i in np.flatnonzero(usable):
            X[i] = self.standardise(raw[i])
        return torch.from_numpy(X), torch.ones(len(usable), self.n_tiles, dtype=torch.bool)

    def standardise(self, bag: np.ndarray) -> np.ndarray:
        """A bag of tile features ``(S, N, F)`` scaled with the training patients' mean and sd per scale."""
        bag = np.asarray(bag, np.float32)
        if bag.ndim != 3 or bag.shape[0] != len(self.levels) or bag.shape[2] != self.mean_.shape[2]:
            raise ValueError(f"a bag must be ({len(self.levels)} scales, N regions, {self.mean_.shape[2]} features), "
                             f"got shape {bag.shape}")
        return ((bag - self.mean_) / self.std_).astype(np.float32)

    def shrink(self, bag: np.ndarray) -> np.ndarray:
        """A bag of tiles shrunk to ``tile_pixels`` a side by area averaging (:func:`oncolab.vision.pathology.downsample_tiles`).

        Parameters
        ----------
        bag : numpy.ndarray of uint8, shape (S, N, tile_size, tile_size, 3)
            One slide's tiles, as :meth:`read` returns them for a network backbone.

        Returns
        -------
        numpy.ndarray of uint8, shape (S, N, tile_pixels, tile_pixels, 3)
        """
        from ...vision.pathology import downsample_tiles

        bag = np.asarray(bag)
        t = self.tile_size
        if bag.dtype != np.uint8 or bag.ndim != 5 or bag.shape[0] != len(self.levels) or bag.shape[2:] != (t, t, 3):
            raise ValueError(f"a bag of tiles must be uint8 ({len(self.levels)} scales, N regions, {t}, {t}, 3), "
                             f"got {bag.dtype} {bag.shape}")
        S, N = bag.shape[:2]
        small = downsample_tiles(bag.reshape(S * N, t, t, 3), self.tile_pixels)
        return small.reshape(S, N, self.tile_pixels, self.tile_pixels, 3)

    def bag_model(self, n_bins: int, in_dim: int):
        """An unfitted survival model of bags (set by each slide stage).

        Parameters
        ----------
        n_bins : int
            Time bins of the discrete-time head (its outputs).
        in_dim : int
            Numbers describing one tile (18 hand-made features, or a network's embedding width).

        Returns
        -------
        torch.nn.Module
        """
        raise NotImplementedError

    def build(self, n_bins: int):
        return self.bag_model(n_bins, int(self.mean_.shape[2]))

    # -- a network backbone ------------------------------------------------------------------
    def tile_encoder(self, n_bins: int, seed: int, download: bool):
        """An unfitted tile network with ``n_bins`` outputs.

        From scratch, the ResNet is :func:`oncolab.vision.image_classifier`'s ``small_resnet``
        and the ViT the book's ``small_vit`` with a 4 x 4 grid of patches (a tile is a few
        pixels a side: 16 tokens keep it cheap); with ``pretrained``, timm's ``resnet18`` and
        ``vit_tiny`` (16-pixel patches), whose ImageNet weights are downloaded only if
        ``download`` (to train; a saved stage loads its own weights).

        Parameters
        ----------
        n_bins : int
            Outputs: the time bins of the tile-level survival head.
        seed : int
            Seeds the initialisation.
        download : bool
            Fetch the ImageNet weights of a pretrained backbone (needs the model hub).

        Returns
        -------
        torch.nn.Module
            A network with ``num_features`` (its embedding width) and a head of ``n_bins``.
        """
        from ...vision.encoders import image_classifier, image_encoder

        p = self.tile_pixels
        if not self.pretrained:
            if self.tile_backbone == "vit":
                return image_encoder("small_vit", False, 3, n_bins, seed, img_size=p, patch_size=p // 4)
            return image_classifier("resnet", False, 3, n_bins, p, seed)
        return image_classifier(self.tile_backbone, True, 3, n_bins, p, seed, download=download)

    def embed(self, model, X):
        """Tiles ``(B, S, N, p, p, 3)`` uint8 -> the fold model's standardised tile embeddings ``(B, S, N, F)``.

        Parameters
        ----------
        model : oncolab.vision.mil.TileModel
            A fold model of a network backbone.
        X : torch.Tensor or numpy.ndarray
            Shrunk tiles (:meth:`shrink`).

        Returns
        -------
        torch.Tensor
            float32 embeddings, scaled with the fold's training mean and sd per scale.
        """
        import torch

        from ...vision.encoders import extract_features

        X = torch.as_tensor(np.asarray(X))
        lead, p = X.shape[:3], X.shape[-2]
        emb = extract_features(model.encoder, X.reshape(-1, p, p, 3).numpy(), batch_size=512, progress=False,
                               pre_logits=True)
        emb = torch.from_numpy(emb).reshape(*lead, -1)
        return (emb - model.emb_mean) / model.emb_std

    def fit_model(self, inputs, rows, y, n_classes, seed):
        if not self.learns_tiles:
            return super().fit_model(inputs, rows, y, n_classes, seed)
        import torch

        from ...survival import time_bins
        from ...vision.encoders import to_model_input
        from ...vision.mil import TileModel
        from ...vision.multiscale import fit_bag_survival

        X, M = self.tensors(inputs, rows)
        edges = time_bins(y["time"], y["event"], self.bins)
        k = len(edges) - 1
        # 1. the tile network, every tile labelled with its patient's time and event
        encoder = self.tile_encoder(k, seed, download=True)
        per = len(self.levels) * self.n_tiles
        tiles = to_model_input(X.reshape(-1, *X.shape[-3:]).numpy(), encoder)
        fit_bag_survival(encoder, tiles, torch.ones(len(tiles), 1, dtype=torch.bool), np.repeat(y["time"], per),
                         np.repeat(y["event"], per), edges, epochs=self.tile_epochs, batch_size=64, seed=seed,
                         forward=lambda m, xb, mb: m(xb))
        model = TileModel(encoder, None)
        model.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float64))
        model.register_buffer("emb_mean", torch.zeros(1))
        model.register_buffer("emb_std", torch.ones(1))
        # 2. its embeddings, frozen and standardised per scale, as the bags of the survival model
        emb = self.embed(model, X)
        model.emb_mean = emb.mean((0, 2), keepdim=True)[0]
        sd = emb.std((0, 2), keepdim=True)[0]
        model.emb_std = torch.where(sd > 1e-6, sd, torch.ones_like(sd))
        emb = (emb - model.emb_mean) / model.emb_std
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.pool = self.bag_model(k, int(emb.shape[-1]))
        fit_bag_survival(model.pool, emb, M, y["time"], y["event"], edges, epochs=self.epochs,
                         batch_size=self.batch_size(), seed=seed, forward=self.forward_fn())
        return model.eval()

    def predict_model(self, model, inputs, rows):
        if not self.learns_tiles:
            return super().predict_model(model, inputs, rows)
        from ...vision.multiscale import predict_bag_survival

        X, M = self.tensors(inputs, rows)
        return predict_bag_survival(model.pool, self.embed(model, X), M, model.edges.numpy(),
                                    forward=self.forward_fn())["risk"]

    def new_fold_model(self, fold: int, config: dict):
        if not self.learns_tiles:
            return super().new_fold_model(fold, config)
        import torch

        from ...vision.mil import TileModel

        k = int(config["fold_bins"][fold])
        encoder = self.tile_encoder(k, self.seed + fold, download=False)
        model = TileModel(encoder, self.bag_model(k, int(encoder.num_features)))
        model.register_buffer("edges", torch.zeros(k + 1, dtype=torch.float64))
        model.register_buffer("emb_mean", torch.zeros(len(self.levels), 1, int(encoder.num_features)))
        model.register_buffer("emb_std", torch.ones(len(self.levels), 1, int(encoder.num_features)))
        return model

    def new_model(self, n_classes: int, config: dict):
        raise NotImplementedError("pyramid stages build their fold models with new_fold_model")

    # -- where on the slide ----------------------------------------------------------------
    def region_inputs(self, slide) -> tuple[np.ndarray, np.ndarray]:
        """Every region of a slide, ready for the fold models: centres (R, 2) and a bag.

        Parameters
        ----------
        slide :
            A whole-slide pyramid (OpenSlide's interface).

        Returns
        -------
        tuple of numpy.ndarray
            The regions' level-0 centres, and their bag: standardised tile features
            ``(S, R, F)``, or with a network backbone the shrunk tiles ``(S, R, p, p, 3)``.
        """
        from ...vision.multiscale import aligned_tiles, region_bag, region_centers

        check_pyramid(slide)
        centers = region_centers(slide, self.levels, self.tile_size)
        if self.learns_tiles:
            return centers, self.shrink(aligned_tiles(slide, centers, self.levels, self.tile_size).swapaxes(0, 1))
        return centers, self.standardise(region_bag(slide, centers, self.levels, self.tile_size))

    def footprint(self, slide) -> int:
        """Side of one region in level-0 pixels on ``slide``."""
        return int(self.tile_size * max(slide.level_downsamples[lv] for lv in self.levels))

    def region_maps(self, bag: np.ndarray, models: list | None = None) -> dict[str, np.ndarray]:
        """Attention and risk of every region of one slide, averaged over the fold models.

        Taught in chapter 14. Attention is each region's weight when the model pools all the
        regions of the slide (:func:`oncolab.vision.multiscale.tile_attention`, for the
        multi-scale models the mean over the scales' pools); risk is what the model predicts
        from the region alone (:func:`oncolab.vision.multiscale.tile_risks`), standardised as
        the stage's output. With a network backbone each fold model embeds the tiles first.

        Parameters
        ----------
        bag : numpy.ndarray
            The slide's bag of regions (from :meth:`region_inputs`).
        models : list of torch.nn.Module, optional
            The models to explain (default: the stage's fold models; pass others, e.g.
            randomised copies, for a sanity check).

        Returns
        -------
        dict of str to numpy.ndarray
            ``"attention"`` and ``"risk"``, one value per region.
        """
        import torch

        from ...vision.multiscale import tile_attention, tile_risks

        models = self.models if models is None else models
        if not models:
            raise RuntimeError(f"the pathology {self.name!r} stage is not fitted")
        single = 0 if len(self.levels) == 1 else None
        att, risk = [], []
        for m in models:
            if self.learns_tiles:
                head, x = m.pool, self.embed(m, np.asarray(bag)[None])[0]
            else:
                head, x = m, torch.from_numpy(np.asarray(bag, np.float32))
            att.append(tile_attention(head, x[None], scale=single)[0])
            risk.append(tile_risks(head, x, m.edges.numpy(), forward=self.forward_fn()))
        return {"attention": np.mean(att, axis=0), "risk": (np.mean(risk, axis=0) - self.center_) / self.scale_}

    def settings(self) -> dict:
        return {"epochs": self.epochs, "folds": self.folds, "bins": self.bins, "dim": self.dim,
                "tile_size": self.tile_size, "seed": self.seed, "tile_backbone": self.tile_backbone,
                "tile_pixels": self.tile_pixels, "tile_epochs": self.tile_epochs, "pretrained": self.pretrained}

    def arrays(self):
        if self.learns_tiles:
            return super().arrays()
        return {**super().arrays(), "feature_mean": self.mean_, "feature_std": self.std_}

    def restore(self, config, arrays):
        if not self.learns_tiles:
            self.mean_, self.std_ = arrays["feature_mean"], arrays["feature_std"]
        super().restore(config, arrays)


class PathologyWsiMIL(PathologyPyramid):
    """20x tiles of the slide pyramid -> gated attention-MIL with a discrete-time head, cross-fitted -> risk."""

    name: ClassVar[str] = "wsi_mil"
    levels: ClassVar[tuple[int, ...]] = (0,)
    n_tiles: ClassVar[int] = 64

    def bag_model(self, n_bins: int, in_dim: int):
        from ...vision.mil import GatedAttentionMIL

        return GatedAttentionMIL(in_dim, n_bins, hidden_dim=self.dim, attention_dim=self.dim // 2, dropout=0.1)

    def forward_fn(self):
        return lambda m, xb, mb: m(xb[:, 0], mb).logits


class PathologyCrossFusion(PathologyPyramid):
    """The same regions at 5x, 10x and 20x -> CrossFusion-style cross-attention, cross-fitted -> risk."""

    name: ClassVar[str] = "crossfusion"

    def bag_model(self, n_bins: int, in_dim: int):
        from ...vision.multiscale import CrossFusionSurv

        return CrossFusionSurv(in_dim, len(self.levels), n_bins, dim=self.dim, n_heads=4, dropout=0.1)


class PathologyConvFusion(PathologyPyramid):
    """The same regions at 5x, 10x and 20x -> the scales merged by convolution, cross-fitted -> risk."""

    name: ClassVar[str] = "convfusion"

    def bag_model(self, n_bins: int, in_dim: int):
        from ...vision.multiscale import ConvFusionSurv

        return ConvFusionSurv(in_dim, len(self.levels), n_bins, dim=self.dim, n_heads=4, dropout=0.1)


class MRICNN3d(_SurvivalModels):
    """The three MRI sequences on one grid -> a small 3D ResNet with a discrete-time head, cross-fitted -> risk."""

    modality: ClassVar[str] = "mri"
    name: ClassVar[str] = "cnn3d"

    def __init__(self, epochs: int = 8, folds: int = 3, bins: int = 6, width: int = 4, seed: int = 0,
                 progress: bool = False):
        super().__init__(epochs, folds, bins, seed, progress)
        self.width = int(width)

    @classmethod
    def from_config(cls, config) -> MRICNN3d:
        return cls(config.mri_epochs, config.folds, seed=config.seed, progress=config.progress)

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """Every patient's MRI volume (3, D, H, W) (None where the patient has none)."""
        return read_images(cohort, "mri", config, None, on_bad_image, check=check_volume)

    def prepare(self, raw, rows, targets):
        """The volumes themselves (checked to share one shape): they are stacked a fold at a time,
        so that the cohort's volumes are never held twice."""
        usable = self.usable(raw)
        shapes = {raw[i].shape for i in np.flatnonzero(usable)}
        if targets is not None:
            self.shape_ = next(iter({raw[i].shape for i in rows}))
        if shapes - {tuple(self.shape_)}:
            raise ValueError(f"every MRI volume must have the shape {tuple(self.shape_)} the stage was fitted on; "
                             f"got {sorted(shapes)}")
        return raw

    def tensors(self, inputs, rows):
        import torch

        X = np.zeros((len(rows), *self.shape_), np.float32)
        for k, i in enumerate(rows):
            if inputs[i] is not None:
                X[k] = inputs[i]
        return torch.from_numpy(X), torch.ones(len(rows), 1, dtype=torch.bool)

    def build(self, n_bins: int):
        from ...vision.mri3d import MRIEncoder3d

        return MRIEncoder3d(3, width=self.width, out_dim=16, head=n_bins)

    def forward_fn(self):
        return lambda m, xb, mb: m(xb)

    def batch_size(self) -> int:
        return 16

    def settings(self) -> dict:
        return {"epochs": self.epochs, "folds": self.folds, "bins": self.bins, "width": self.width, "seed": self.seed}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "shape": list(self.shape_)}

    def restore(self, config, arrays):
        self.shape_ = tuple(config["shape"])
        super().restore(config, arrays)


def backbone_risks(config, tiles: np.ndarray, train: np.ndarray, test: np.ndarray, time, event,
                   backbones=TILE_BACKBONES) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The held-out slide risk of one pyramid stage per tile backbone, all fitted on the same patients.

    Taught in chapter 14 (which tile description?). The stage ``config.pathology_encoder``
    (``wsi_mil``, ``crossfusion`` or ``convfusion``) is built from ``config`` once per backbone
    of ``backbones``, fitted (cross-fitted, as in the system) on the patients ``train`` and
    applied to ``test``; ``stain_blob`` reads the hand-made features of the very tiles the
    networks read.

    Parameters
    ----------
    config : SystemConfig
        The settings (``tile_pixels``, ``tile_epochs``, ``pretrained``, ``mil_epochs``, ``folds``,
        ``seed``, ...); its ``tile_backbone`` is replaced by each of ``backbones``.
    tiles : ndarray (patients, scales, regions, side, side, 3) of uint8
        Every patient's tiles, as the stage's ``read`` gives them with a network backbone.
    train, test : array-like of int
        Positions of the fitting and of the held-out patients in ``tiles``.
    time, event : array-like (patients,)
        Every patient's follow-up and event flag (only the ``train`` ones are read to fit).
    backbones : sequence of str
        Some of :data:`TILE_BACKBONES`.

    Returns
    -------
    tuple
        ``{backbone: risk of the test patients}`` and ``{backbone: seconds to fit and apply}``.
    """
    import time as clock

    from ...vision.multiscale import stain_blob_features
    from .base import Targets

    unknown = [b for b in backbones if b not in TILE_BACKBONES]
    if unknown:
        raise ValueError(f"unknown tile backbone {unknown[0]!r}; expected some of {list(TILE_BACKBONES)}")
    tiles = np.asarray(tiles)
    if tiles.ndim != 6 or tiles.shape[-1] != 3:
        raise ValueError(f"tiles must be (patients, scales, regions, side, side, 3), got shape {tiles.shape}")
    train, test = np.asarray(train, int), np.asarray(test, int)
    time, event = np.asarray(time, float), np.asarray(event, bool)
    pyramids = {c.name: c for c in (PathologyWsiMIL, PathologyCrossFusion, PathologyConvFusion)}
    if config.pathology_encoder not in pyramids:
        raise ValueError(f"pathology_encoder must be a slide-pyramid stage ({list(pyramids)}), got "
                         f"{config.pathology_encoder!r}")
    stage_cls = pyramids[config.pathology_encoder]
    targets = Targets(np.zeros(len(train), int), [], time=time[train], event=event[train])
    bags = stain_blob_features(tiles) if "stain_blob" in backbones else None
    risks, seconds = {}, {}
    for backbone in backbones:
        t0 = clock.perf_counter()
        raw = bags if backbone == "stain_blob" else tiles
        stage = stage_cls.from_config(config.replace(tile_backbone=backbone))
        stage.fit_transform(raw[train], np.arange(len(train)), targets)
        risks[backbone] = stage.transform(raw[test])[:, 0]
        seconds[backbone] = clock.perf_counter() - t0
    return risks, seconds
