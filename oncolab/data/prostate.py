"""The synthetic prostate cohort: biochemical recurrence (BCR) after radical prostatectomy.

Taught in chapter 14 ("Whole slides at several scales, and MRI"); chapter 15 streams its
slides. It is the book's second synthetic cohort, shaped like the CHIMERA challenge: an H&E
whole-slide image, a multiparametric MRI volume (T2-weighted, ADC, DCE) and clinical
variables (age, PSA, ISUP grade group, pathological stage) per patient, with time to BCR.

The generative model
--------------------
For patient *i*, three tumour latents, jointly Gaussian with unit variances:

* ``z_arch``: gland architecture (how small, crowded and fused the tumour glands are: the
  Gleason pattern), visible only at **low magnification**, where a tile spans several glands;
* ``z_nuc``: nuclear atypia (nuclear size, pleomorphism, chromatin and prominent nucleoli),
  visible only at **high magnification**, where a nucleus spans several pixels;
* ``z_les``: the index lesion on MRI (its radius, its ADC drop and its early enhancement).

``corr(z_arch, z_nuc) = corr(z_arch, z_les) = 0.3``, ``corr(z_nuc, z_les) = 0``. The true
log-hazard is ``eta = b_arch z_arch + b_nuc z_nuc + b_les z_les + b_age (age - 66) / 7``
(defaults 0.9, 0.9, 0.5, 0.1): architecture and atypia drive recurrence equally, so a model
that reads the slide at one magnification only sees half of what the slide holds.

How each scale hides the other latent:

* the gland pattern is a smooth random field whose correlation length shrinks from 64 to 24
  level-0 pixels as ``z_arch`` grows; stroma, epithelium and lumen are thresholds of the
  field at fixed quantiles, so their area fractions do not depend on ``z_arch``: only the
  arrangement does, and a 32-pixel tile at full resolution sees less than one gland;
* nuclei sit on a jittered 5-pixel grid; atypia shows in their detail: coarse, clumped
  chromatin (pixel-level texture inside the nucleus), prominent eosinophilic nucleoli, and
  a wider spread of sizes (pleomorphism), while the mean nuclear area and darkness stay
  the same (the share of nuclei kept is scaled to keep the expected haematoxylin area
  fixed). Averaging 4 x 4 pixels (the lowest level) blurs that detail into the same mean
  colour.

The slide is a 2048 x 2048 pyramid with three levels (downsamples 1, 2, 4: "20x", "10x",
"5x"). It is never held in memory: :meth:`ProstateSlide.read_region` renders only the pixels
asked for. Every random number of the slide is a counter-based hash of (seed, patient,
stream, position), so a tile's pixels do not depend on which tiles were read before; the
lower levels are 2 x 2 (4 x 4) means of level 0, as in a scanner's pyramid.
Tumour occupies about half of the slide (a slowly varying field); elsewhere the tissue is
benign (low architecture and atypia), so not every tile is informative.

The MRI study has three sequences: an ellipsoidal gland with a spherical lesion whose radius,
T2 darkening, ADC drop and DCE enhancement grow with ``z_les``; position, gland shape, a bias
field and noise are nuisance. As on a scanner, each sequence is acquired on its own voxel
grid over the same field of view (:data:`MRI_FOV`, in mm): T2w on ``mri_shape``, ADC (from
diffusion) at half the in-plane resolution, DCE at half the in-plane resolution, two thirds
of the slices and a small shift (:func:`mri_grids`). :meth:`ProstateCohort.mri_sequences`
gives them as acquired; :meth:`ProstateCohort.mri` gives the volume (3, D, H, W) with ADC and
DCE resampled onto the T2w grid (:func:`resample_volume`, trilinear in scanner coordinates).
Clinical variables: age; PSA (log-normal, rising with ``z_les`` and ``z_arch``); ISUP grade
group 1-5 (a noisy read of ``z_arch``: Gleason grading is architectural) and the primary and
secondary Gleason patterns that make it up (ISUP 1 = 3+3, 2 = 3+4, 3 = 4+3, 4 = 4+4, 3+5 or
5+3, 5 = 4+5, 5+4 or 5+5; Epstein et al. 2016); pathological stage pT2 / pT3a / pT3b (a noisy
read of ``z_les``). MRI is missing for a fraction of patients (``mri_missing``, default 0.2).

BCR time (months) is Weibull proportional hazards with censoring by the end of follow-up
(uniform 24-96 months) and loss to follow-up (exponential).

The oracle
----------
Because the latents are jointly Gaussian, ``E[eta | some latents]`` is linear in them
(:func:`conditional_risk`). :func:`oracle` reports Harrell's C of the true risk and of
``E[eta | S]`` for the information sets a model could read: the slide at both scales
(``z_arch, z_nuc``), low magnification only (``z_arch``), high magnification only
(``z_nuc``), the MRI lesion (``z_les``). These are ceilings: they assume the latent is read
without error. Like the bone cohort's, the oracle is a function of this generator; the cohort
itself is a plain :class:`~oncolab.data.Cohort` (:class:`ProstateCohort` adds only its slide
pyramid and MRI accessors).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .cohort import Cohort
from .synthetic import CENTERS, check_generated, check_integer, seeded_rng, stain_matrix

__all__ = [
    "GLEASON_BY_ISUP",
    "INFORMATION_SETS",
    "LATENTS",
    "MRI_FOV",
    "PROSTATE_MODALITIES",
    "SEQUENCES",
    "SOURCE",
    "MRIVolume",
    "ProstateCohort",
    "ProstateConfig",
    "ProstateImages",
    "ProstateSlide",
    "conditional_risk",
    "lattice_noise",
    "mri_grids",
    "oracle",
    "prostate_cohort",
    "render_mri",
    "render_mri_sequences",
    "resample_volume",
]

#: ``meta["source"]`` of every cohort :func:`prostate_cohort` makes
SOURCE = "synthetic prostate BCR"
#: the prostate cohort's modalities (the columns of its ``presence`` table)
PROSTATE_MODALITIES: tuple[str, ...] = ("pathology", "mri", "clinical")

LATENTS = ("z_arch", "z_nuc", "z_les")
STAGES = ("pT2", "pT3a", "pT3b")
#: the MRI sequences, in the order of the channels of :meth:`ProstateCohort.mri`
SEQUENCES: tuple[str, ...] = ("T2w", "ADC", "DCE")
#: the field of view every MRI sequence covers, in mm along (D, H, W), centred on 0
MRI_FOV: tuple[float, float, float] = (72.0, 96.0, 96.0)
#: the (primary, secondary) Gleason patterns each ISUP grade group is made of, and their probabilities
GLEASON_BY_ISUP: dict[int, tuple[tuple[tuple[int, int], ...], tuple[float, ...]]] = {
    1: (((3, 3),), (1.0,)),
    2: (((3, 4),), (1.0,)),
    3: (((4, 3),), (1.0,)),
    4: (((4, 4), (3, 5), (5, 3)), (0.8, 0.1, 0.1)),
    5: (((4, 5), (5, 4), (5, 5)), (0.45, 0.35, 0.2)),
}
_STREAMS = {"latents": 21, "clinical": 22, "survival": 23, "missing": 24, "mri": 25, "slide": 26, "gleason": 27}
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class ProstateConfig:
    """Every knob of the prostate generative model (defaults are the book's cohort)."""

    slide_size: int = 2048
    slide_levels: int = 3
    mri_shape: tuple[int, int, int] = (24, 64, 64)
    rho_arch_nuc: float = 0.3
    rho_arch_les: float = 0.3
    b_arch: float = 0.9
    b_nuc: float = 0.9
    b_les: float = 0.5
    b_age: float = 0.1
    weibull_scale: float = 70.0  # months
    weibull_shape: float = 1.2
    follow_up: tuple[float, float] = (24.0, 96.0)
    loss_rate: float = 1 / 200.0
    mri_missing: float = 0.2
    gland_spacing: tuple[float, float] = (64.0, 24.0)  # level-0 pixels at z_arch -> -inf, +inf
    nucleus_radius: tuple[float, float] = (2.0, 2.2)  # level-0 pixels at z_nuc -> -inf, +inf

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (tuples as lists), as kept in ``cohort.meta["config"]``."""
        d = asdict(self)
        for k in ("mri_shape", "follow_up", "gland_spacing", "nucleus_radius"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProstateConfig:
        """The config back from :meth:`to_dict`'s dict; an unknown setting raises, naming it."""
        d = dict(d)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown prostate cohort setting(s) {sorted(unknown)}; expected some of {sorted(known)}")
        for k in ("mri_shape", "follow_up", "gland_spacing", "nucleus_radius"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def covariance(self) -> np.ndarray:
        """Covariance of (z_arch, z_nuc, z_les)."""
        r1, r2 = self.rho_arch_nuc, self.rho_arch_les
        return np.array([[1.0, r1, r2], [r1, 1.0, 0.0], [r2, 0.0, 1.0]])

    def betas(self) -> np.ndarray:
        """The log-hazard coefficients of (z_arch, z_nuc, z_les)."""
        return np.array([self.b_arch, self.b_nuc, self.b_les])


# --------------------------------------------------------------------------------------------
# counter-based random numbers: the value at (i, j) depends only on (key, i, j)
# --------------------------------------------------------------------------------------------
def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _key(*words: int) -> int:
    """A 64-bit key from integers (seed, patient, stream, ...): same words, same key."""
    h = hashlib.blake2b(digest_size=8)
    for w in words:
        h.update((int(w) & _MASK64).to_bytes(8, "little"))
    return int.from_bytes(h.digest(), "little")


def _hash_uniform(key: int, i: np.ndarray, j: np.ndarray, k: int = 0) -> np.ndarray:
    """Uniform(0, 1) numbers indexed by integer coordinates (i, j) and a sub-stream k."""
    i = np.asarray(i, np.int64).view(np.uint64)
    j = np.asarray(j, np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        x = _splitmix(np.uint64((key + 0x632BE59BD9B4E019 * (k + 1)) & _MASK64) ^ _splitmix(i))
        x = _splitmix(x ^ (j * np.uint64(0xD1342543DE82EF95)))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _hash_normal(key: int, i: np.ndarray, j: np.ndarray, k: int = 0) -> np.ndarray:
    u1 = _hash_uniform(key, i, j, 2 * k)
    u2 = _hash_uniform(key, i, j, 2 * k + 1)
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def lattice_noise(key: int, y0: int, x0: int, h: int, w: int, spacing: float) -> np.ndarray:
    """A smooth unit-variance Gaussian random field on the pixels [y0, y0+h) x [x0, x0+w).

    The field is ``f(y, x) = sum_ij v_ij k(y - i d) k(x - j d) / norm`` with ``v_ij`` standard
    normal numbers at the nodes of a lattice of spacing ``d`` (from the counter-based hash,
    so they depend only on ``(key, i, j)``) and a Gaussian kernel ``k`` of width ``d``. Any
    window of the field is computed alone, as two matrix products, and agrees with the same
    pixels cut from a larger window: that is what lets a slide be rendered tile by tile.
    Taught in chapter 14.

    Parameters
    ----------
    key : int
        The field's 64-bit random key.
    y0, x0 : int
        Top-left pixel of the window.
    h, w : int
        Window height and width in pixels.
    spacing : float
        Lattice spacing ``d`` in pixels (the field's correlation length).

    Returns
    -------
    numpy.ndarray
        float32 (h, w), mean 0 and variance 1 over the field.
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    s = float(spacing)
    ys = np.arange(y0, y0 + h, dtype=np.float64)
    xs = np.arange(x0, x0 + w, dtype=np.float64)
    i = np.arange(int(np.floor((y0 - 3.5 * s) / s)), int(np.ceil((y0 + h + 3.5 * s) / s)) + 1)
    j = np.arange(int(np.floor((x0 - 3.5 * s) / s)), int(np.ceil((x0 + w + 3.5 * s) / s)) + 1)
    gy = np.exp(-0.5 * ((ys[:, None] - i[None, :] * s) / s) ** 2)
    gx = np.exp(-0.5 * ((xs[:, None] - j[None, :] * s) / s) ** 2)
    v = _hash_normal(key, i[:, None], j[None, :])
    f = gy @ v @ gx.T
    norm = np.sqrt((gy**2).sum(1))[:, None] * np.sqrt((gx**2).sum(1))[None, :]
    return (f / norm).astype(np.float32)


_THREADPOOLS = None


def _one_blas_thread():
    """A context in which BLAS uses one thread: the small products here run many times
    faster than with a pool of threads fighting over shared cores."""
    global _THREADPOOLS
    from threadpoolctl import ThreadpoolController

    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------------------
# the slide
# --------------------------------------------------------------------------------------------
class ProstateSlide:
    """A lazily rendered H&E whole-slide image with an OpenSlide-like interface.

    ``read_region((x, y), level, (w, h))`` returns uint8 RGB (h, w, 3) pixels of ``level``
    whose top-left corner is ``(x, y)`` in level-0 coordinates, exactly as
    ``openslide.OpenSlide.read_region`` does (which returns RGBA PIL images). Nothing is
    cached: each call renders only what it returns.

    Parameters
    ----------
    arch, nuc:
        Architecture grade and nuclear atypia of the tumour, each in (0, 1).
    center:
        The staining center (``"A"``-``"D"``), see :func:`oncolab.data.stain_matrix`.
    key:
        The slide's 64-bit random key; ``jitter`` its patient-level stain strength change.
    """

    _NUCLEUS_CELL = 5  # level-0 pixels between nucleus sites

    def __init__(self, arch: float, nuc: float, center: str, key: int, size: int = 2048,
                 levels: int = 3, jitter: Sequence[float] = (0.0, 0.0),
                 gland_spacing: tuple[float, float] = (64.0, 24.0),
                 nucleus_radius: tuple[float, float] = (2.0, 2.2)):
        for name, v in (("arch", arch), ("nuc", nuc)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")
        check_integer("size", size, minimum=64)
        check_integer("levels", levels, minimum=1)
        if size % (2 ** (levels - 1)):
            raise ValueError(f"size {size} must be divisible by the largest downsample {2 ** (levels - 1)}")
        self.arch, self.nuc, self.center, self.key = float(arch), float(nuc), center, int(key)
        self.m = stain_matrix(center, np.asarray(jitter, float))
        self.size = int(size)
        self.level_count = int(levels)
        self.level_downsamples = tuple(float(2**k) for k in range(levels))
        self.level_dimensions = tuple((size // 2**k, size // 2**k) for k in range(levels))
        self.dimensions = self.level_dimensions[0]
        g0, g1 = gland_spacing
        self._spacing_tumour = g0 + (g1 - g0) * self.arch
        self._spacing_benign = g0 + (g1 - g0) * 0.1
        self._r0, self._r1 = nucleus_radius

    def __repr__(self) -> str:
        return (f"ProstateSlide({self.size}x{self.size}, levels={self.level_count}, "
                f"center={self.center!r})")

    def _k(self, stream: int) -> int:
        return _key(self.key, stream)

    def tumour_field(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """The tumour weight in [0, 1] on level-0 pixels (about half the slide is tumour)."""
        t = lattice_noise(self._k(1), y0, x0, h, w, 256.0)
        return np.clip((t + 0.25) / 0.5, 0.0, 1.0)

    def tumour_fraction(self, centers: np.ndarray, footprint: int, step: int = 4) -> np.ndarray:
        """The generator's truth per region: the mean tumour weight over each region's footprint.

        Taught in chapter 14, to check a map of where a model finds risk against where the
        generator placed the tumour. Never a model input.

        Parameters
        ----------
        centers : numpy.ndarray, shape (n, 2)
            Level-0 (x, y) centres of the regions.
        footprint : int
            Side of a region in level-0 pixels.
        step : int
            The tumour weight is averaged over every ``step``-th pixel (it varies over
            hundreds of pixels, so a coarse average is exact to a few thousandths).

        Returns
        -------
        numpy.ndarray, shape (n,)
            Values in [0, 1]: the share of each region that is tumour.
        """
        centers = np.asarray(centers)
        if centers.ndim != 2 or centers.shape[1] != 2:
            raise ValueError(f"centers must be (n, 2) level-0 (x, y) points, got shape {centers.shape}")
        check_integer("footprint", footprint, minimum=1)
        check_integer("step", step, minimum=1)
        out = np.empty(len(centers))
        with _one_blas_thread():
            for k, (x, y) in enumerate(centers):
                x0, y0 = int(x) - footprint // 2, int(y) - footprint // 2
                out[k] = float(self.tumour_field(y0, x0, footprint, footprint)[::step, ::step].mean())
        return out

    def _render0(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """Level-0 pixels [y0, y0+h) x [x0, x0+w) as uint8 RGB."""
        c = self._NUCLEUS_CELL
        # whole nucleus cells covering the window, plus one cell of neighbours on each side
        a0, a1 = y0 // c, -(-(y0 + h) // c)
        b0, b1 = x0 // c, -(-(x0 + w) // c)
        na, nb = a1 - a0, b1 - b0
        Y0, X0, H, W = (a0 - 1) * c, (b0 - 1) * c, (na + 2) * c, (nb + 2) * c
        tum = self.tumour_field(Y0, X0, H, W)
        g = ((1 - tum) * lattice_noise(self._k(2), Y0, X0, H, W, self._spacing_benign)
             + tum * lattice_noise(self._k(3), Y0, X0, H, W, self._spacing_tumour))
        epi = _sigmoid((g - 0.3) * 8)
        lumen = _sigmoid((g - 1.1) * 8)
        atyp = (1 - tum) * 0.1 + tum * self.nuc  # local nuclear atypia

        # nucleus sites: one per c x c cell, jittered; parameters from the hash of the cell
        CI, CJ = np.meshgrid(np.arange(a0 - 1, a1 + 1), np.arange(b0 - 1, b1 + 1), indexing="ij")
        k5 = self._k(5)
        cy = (CI + 0.5 + 0.7 * (_hash_uniform(k5, CI, CJ, 0) - 0.5)) * c
        cx = (CJ + 0.5 + 0.7 * (_hash_uniform(k5, CI, CJ, 1) - 0.5)) * c
        py = np.round(cy).astype(int) - Y0
        px = np.round(cx).astype(int) - X0
        a = atyp[py, px]
        e_site = epi[py, px] - lumen[py, px]
        s_site = 1 - epi[py, px]
        rmean = self._r0 + (self._r1 - self._r0) * a
        rsd = 0.05 + 0.25 * a
        r = np.minimum(rmean * np.exp(rsd * _hash_normal(k5, CI, CJ, 1)), c)
        # keep fewer, larger nuclei: the expected nuclear area per site stays the same
        area_ratio = (self._r0 / rmean) ** 2 * np.exp(-2 * rsd**2)
        p_keep = (0.85 * e_site + 0.10 * s_site) * area_ratio
        keep = _hash_uniform(k5, CI, CJ, 4) < p_keep
        dark = 1.0 + 0.08 * _hash_normal(k5, CI, CJ, 3)
        nucleolus = (_hash_uniform(k5, CI, CJ, 5) < a) & keep
        r = np.where(keep, r, 0.0).astype(np.float32)
        cy, cx, dark = cy.astype(np.float32), cx.astype(np.float32), dark.astype(np.float32)
        rn = np.where(nucleolus, 0.4 * r, -1.0).astype(np.float32)

        # pixels as blocks (cell row, row in cell, cell column, column in cell): the
        # neighbouring sites of every pixel of a block are slices, not gathers
        yp = ((a0 + np.arange(na))[:, None] * c + np.arange(c)[None, :]).astype(np.float32)[:, :, None, None]
        xp = ((b0 + np.arange(nb))[:, None] * c + np.arange(c)[None, :]).astype(np.float32)[None, None, :, :]
        conc_h = np.zeros((na, c, nb, c), np.float32)
        core_e = np.zeros((na, c, nb, c), np.float32)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                sl = (slice(dy, dy + na), slice(dx, dx + nb))
                d = np.sqrt((yp - cy[sl][:, None, :, None]) ** 2 + (xp - cx[sl][:, None, :, None]) ** 2)
                inside = np.clip(r[sl][:, None, :, None] + 0.5 - d, 0, 1)
                core = np.clip(rn[sl][:, None, :, None] + 0.5 - d, 0, 1)
                np.maximum(conc_h, inside * dark[sl][:, None, :, None] * (1 - 0.7 * core), out=conc_h)
                np.maximum(core_e, 0.9 * core, out=core_e)
        oy, ox = y0 - a0 * c, x0 - b0 * c
        conc_h = conc_h.reshape(na * c, nb * c)[oy:oy + h, ox:ox + w]
        core_e = core_e.reshape(na * c, nb * c)[oy:oy + h, ox:ox + w]
        win = (slice(y0 - Y0, y0 - Y0 + h), slice(x0 - X0, x0 - X0 + w))
        yy = np.arange(y0, y0 + h)[:, None]
        xx = np.arange(x0, x0 + w)[None, :]
        # coarse chromatin: pixel-level texture inside the nuclei, growing with atypia
        chromatin = _hash_normal(self._k(7), yy, xx).astype(np.float32)
        conc_h = conc_h * np.clip(1 + 0.6 * atyp[win] * chromatin, 0.2, 2.5)
        fibres = lattice_noise(self._k(4), y0, x0, h, w, 3.0)
        e, lu = epi[win], lumen[win]
        conc_e = np.maximum((1 - e) * (0.62 + 0.10 * fibres) + (e - lu) * 0.38 + lu * 0.03, core_e)
        od = conc_h[..., None] * self.m[0].astype(np.float32) + conc_e[..., None] * self.m[1].astype(np.float32)
        noise = (4.0 * (_hash_uniform(self._k(6), yy, xx) - 0.5)).astype(np.float32)
        rgb = 255.0 * np.exp(-od) + noise[..., None]
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """Pixels of one level of the pyramid, as ``openslide.OpenSlide.read_region`` reads them.

        The region may extend past the slide's edge (as in OpenSlide); those pixels are
        rendered like any others. Level ``k`` pixels are means of ``2^k x 2^k`` level-0 pixels.

        Parameters
        ----------
        location : tuple of int
            Top-left (x, y) of the region, in level-0 coordinates.
        level : int
            The pyramid level, 0 (full resolution) to ``level_count - 1``.
        size : tuple of int
            (w, h) in pixels of that level.

        Returns
        -------
        numpy.ndarray
            uint8 (h, w, 3) RGB.
        """
        if not isinstance(level, int | np.integer) or not 0 <= level < self.level_count:
            raise ValueError(f"level must be an integer in [0, {self.level_count - 1}], got {level!r}")
        x, y = (int(v) for v in location)
        w, h = (int(v) for v in size)
        if w < 1 or h < 1:
            raise ValueError(f"size must be positive (w, h), got {size}")
        ds = 2**int(level)
        with _one_blas_thread():
            px = self._render0(y, x, h * ds, w * ds)
        if ds == 1:
            return px
        mean = px.reshape(h, ds, w, ds, 3).astype(np.float32).mean((1, 3))
        return np.round(mean).astype(np.uint8)

    def thumbnail(self, size: int = 256) -> np.ndarray:
        """A small overview of the whole slide, rendered strip by strip.

        Parameters
        ----------
        size : int
            Side of the thumbnail; it must divide the slide's side.

        Returns
        -------
        numpy.ndarray
            uint8 (size, size, 3) RGB, each pixel the mean of a block of level-0 pixels.
        """
        ds = self.size // size
        if ds < 1 or self.size % size:
            raise ValueError(f"thumbnail size must divide the slide size {self.size}, got {size}")
        out = np.empty((size, size, 3), np.uint8)
        rows = max(1, 64 // ds) if ds < 64 else 1
        for r0 in range(0, size, rows):
            r1 = min(size, r0 + rows)
            with _one_blas_thread():
                px = self._render0(r0 * ds, 0, (r1 - r0) * ds, self.size).astype(np.float32)
            out[r0:r1] = np.round(px.reshape(r1 - r0, ds, size, ds, 3).mean((1, 3))).astype(np.uint8)
        return out


# --------------------------------------------------------------------------------------------
# the MRI volume
# --------------------------------------------------------------------------------------------
class MRIVolume(NamedTuple):
    """One MRI sequence as acquired: its voxels and where they are in the scanner.

    ``array`` is float32 (D, H, W); ``spacing`` the voxel size in mm along (D, H, W);
    ``origin`` the position in mm of the centre of voxel (0, 0, 0) (DICOM's image position).
    Voxel ``(i, j, k)`` is centred at ``origin + (i, j, k) * spacing``.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]


def mri_grids(shape: tuple[int, int, int]) -> dict[str, tuple[tuple[int, int, int], tuple, tuple]]:
    """The voxel grid of each MRI sequence: ``{sequence: (shape, spacing, origin)}``.

    Taught in chapter 14. Every grid covers :data:`MRI_FOV`: T2w on ``shape``; ADC at half the
    in-plane resolution (diffusion-weighted imaging is coarser); DCE at half the in-plane
    resolution, two thirds of the slices (rounded, at least 4) and shifted by (0, 1.5, -1.5)
    mm (acquired later, after the contrast injection).

    Parameters
    ----------
    shape : tuple of int
        (D, H, W) of the T2w grid, every size >= 8.

    Returns
    -------
    dict
        For each of :data:`SEQUENCES`: (shape, spacing in mm, origin in mm) as in
        :class:`MRIVolume`.
    """
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be (D, H, W) with every size >= 8, got {shape}")
    D, H, W = (int(v) for v in shape)
    shapes = {"T2w": (D, H, W), "ADC": (D, H // 2, W // 2), "DCE": (max(4, round(2 * D / 3)), H // 2, W // 2)}
    shifts = {"T2w": (0.0, 0.0, 0.0), "ADC": (0.0, 0.0, 0.0), "DCE": (0.0, 1.5, -1.5)}
    out = {}
    for name in SEQUENCES:
        sp = tuple(f / n for f, n in zip(MRI_FOV, shapes[name]))
        org = tuple(-f / 2 + d / 2 + s for f, d, s in zip(MRI_FOV, sp, shifts[name]))
        out[name] = (shapes[name], sp, org)
    return out


def resample_volume(volume: np.ndarray, spacing, origin, shape, new_spacing, new_origin) -> np.ndarray:
    """A volume resampled onto another voxel grid of the same scanner space, trilinearly.

    Taught in chapter 14: MRI sequences are acquired on different grids and must be put on one
    before a 3D CNN reads them as channels. Each output voxel's centre is mapped to the input
    grid's voxel coordinates, ``(new_origin + index * new_spacing - origin) / spacing``, and
    the input is interpolated there, one axis after the other (trilinear interpolation is
    separable); a centre outside the input grid takes the value of the nearest edge voxel.
    This is ``scipy.ndimage.map_coordinates(volume, coords, order=1, mode="nearest")`` (a
    test checks it), and SimpleITK's ``Resample`` with a linear interpolator and an identity
    transform inside the input grid.

    Parameters
    ----------
    volume : numpy.ndarray, shape (D, H, W)
        The input voxels.
    spacing, origin : sequence of 3 floats
        The input grid (mm), as in :class:`MRIVolume`.
    shape : sequence of 3 ints
        The output grid's size.
    new_spacing, new_origin : sequence of 3 floats
        The output grid (mm).

    Returns
    -------
    numpy.ndarray
        float32 ``shape``.
    """
    v = np.asarray(volume, np.float64)
    if v.ndim != 3 or v.size == 0:
        raise ValueError(f"volume must be a non-empty (D, H, W) array, got shape {v.shape}")
    spacing, origin = np.asarray(spacing, float), np.asarray(origin, float)
    new_spacing, new_origin = np.asarray(new_spacing, float), np.asarray(new_origin, float)
    for name, a in (("spacing", spacing), ("origin", origin), ("new_spacing", new_spacing),
                    ("new_origin", new_origin)):
        if a.shape != (3,) or not np.isfinite(a).all():
            raise ValueError(f"{name} must be 3 finite numbers (mm along D, H, W), got {a.tolist()}")
    if (spacing <= 0).any() or (new_spacing <= 0).any():
        raise ValueError(f"spacings must be positive, got {spacing.tolist()} and {new_spacing.tolist()}")
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive sizes, got {tuple(shape)}")
    for axis in range(3):
        n = v.shape[axis]
        c = (new_origin[axis] + np.arange(shape[axis]) * new_spacing[axis] - origin[axis]) / spacing[axis]
        c = np.clip(c, 0, n - 1)
        i0 = np.minimum(np.floor(c).astype(int), max(n - 2, 0))
        i1 = np.minimum(i0 + 1, n - 1)
        w = (c - i0).reshape([-1 if a == axis else 1 for a in range(3)])
        v = np.take(v, i0, axis=axis) * (1 - w) + np.take(v, i1, axis=axis) * w
    return v.astype(np.float32)


def render_mri_sequences(u_les: float, rng: np.random.Generator,
                         shape: tuple[int, int, int] = (24, 64, 64)) -> dict[str, MRIVolume]:
    """A multiparametric prostate MRI study as acquired: T2w, ADC and DCE, each on its own grid.

    ``u_les`` in (0, 1) is the lesion's aggressiveness: its radius grows, its T2 signal and
    ADC fall (restricted diffusion) and its early contrast enhancement rises with it. The
    gland's size, position and the lesion's place in the gland, a smooth bias field (T2w)
    and noise are nuisance. The anatomy is one continuous scene in scanner coordinates; each
    sequence samples it at the voxel centres of its grid (:func:`mri_grids`) and adds its own
    noise. Taught in chapter 14.

    Parameters
    ----------
    u_les : float
        The lesion's aggressiveness in [0, 1].
    rng : numpy.random.Generator
        Draws the nuisance and the noise.
    shape : tuple of int
        (D, H, W) of the T2w grid, every size >= 8.

    Returns
    -------
    dict of str to MRIVolume
        One :class:`MRIVolume` per sequence of :data:`SEQUENCES`.
    """
    if not 0.0 <= u_les <= 1.0:
        raise ValueError(f"u_les must lie in [0, 1], got {u_les}")
    grids = mri_grids(shape)
    c = rng.uniform(-0.1, 0.1, 3)
    ax = rng.uniform([0.55, 0.40, 0.50], [0.75, 0.55, 0.65])
    ang = rng.uniform(0, 2 * np.pi)
    lz = c[0] + rng.uniform(-0.3, 0.3) * ax[0]
    # the lesion: in the peripheral zone of the gland
    ly = c[1] + 0.55 * ax[1] * abs(np.sin(ang)) * 0.8 + 0.1 * ax[1]
    lx = c[2] + 0.55 * ax[2] * np.cos(ang)
    rad = 0.10 + 0.16 * u_les  # in units of half the field of view (a 64-voxel axis: 3 to 8 voxels)
    bias_coef = rng.standard_normal(3)
    out = {}
    for name in SEQUENCES:
        shp, sp, org = grids[name]
        # voxel centres in units of half the field of view
        axes = [(o + np.arange(n) * d) / (f / 2) for o, n, d, f in zip(org, shp, sp, MRI_FOV)]
        z, y, x = np.meshgrid(*axes, indexing="ij")
        rho = np.sqrt(((z - c[0]) / ax[0]) ** 2 + ((y - c[1]) / ax[1]) ** 2 + ((x - c[2]) / ax[2]) ** 2)
        gland = _sigmoid((1 - rho) * 12)
        dl = np.sqrt(((z - lz) * 0.8) ** 2 + (y - ly) ** 2 + (x - lx) ** 2)
        lesion = _sigmoid((rad - dl) / 0.015) * gland
        if name == "T2w":
            bias = 1 + 0.1 * (bias_coef @ np.stack([z, y, x]).reshape(3, -1)).reshape(shp)
            vol = (0.25 + 0.55 * gland - (0.20 + 0.20 * u_les) * lesion) * bias
        elif name == "ADC":
            vol = 0.2 + 1.0 * gland - (0.30 + 0.45 * u_les) * lesion
        else:
            vol = 0.15 + 0.35 * gland + (0.20 + 0.60 * u_les) * lesion
        vol = (vol + rng.normal(0, 0.04, size=shp)).astype(np.float32)
        out[name] = MRIVolume(vol, sp, org)
    return out


def render_mri(u_les: float, rng: np.random.Generator, shape: tuple[int, int, int] = (24, 64, 64)) -> np.ndarray:
    """A multiparametric prostate MRI volume on the T2w grid, float32 (3, D, H, W): T2w, ADC, DCE.

    :func:`render_mri_sequences`, then ADC and DCE resampled onto the T2w grid by
    :func:`resample_volume`. Taught in chapter 14.

    Parameters
    ----------
    u_les : float
        The lesion's aggressiveness in [0, 1].
    rng : numpy.random.Generator
        Draws the nuisance and the noise.
    shape : tuple of int
        (D, H, W), every size >= 8.

    Returns
    -------
    numpy.ndarray
        float32 (3, D, H, W): the T2w, ADC and DCE volumes on one grid.
    """
    seqs = render_mri_sequences(u_les, rng, shape)
    t2 = seqs["T2w"]
    return np.stack([t2.array] + [resample_volume(seqs[n].array, seqs[n].spacing, seqs[n].origin, t2.array.shape,
                                                  t2.spacing, t2.origin) for n in SEQUENCES[1:]])


# --------------------------------------------------------------------------------------------
# the cohort
# --------------------------------------------------------------------------------------------
class ProstateImages:
    """The prostate cohort's image source: whole slides and MRI volumes, made on demand.

    Taught in chapter 14. Each patient's slide and volume depend only on (seed, patient
    number) and the patient's latents, so they are the same bytes whatever order they are
    asked for in, and a subset of the cohort shares this source.

    Parameters
    ----------
    seed : int
        The cohort's seed.
    config : ProstateConfig
        The generative model (slide size and levels, MRI shape, gland and nucleus scales).
    truth : pandas.DataFrame
        The latents ``z_arch``, ``z_nuc``, ``z_les`` per patient id.
    clinical : pandas.DataFrame
        The ``center`` of each patient (it sets the slide's stain).
    """

    def __init__(self, seed: int, config: ProstateConfig, truth: pd.DataFrame, clinical: pd.DataFrame):
        self.seed = int(seed)
        self.config = config
        self._arch = dict(zip(truth.index, ndtr(truth["z_arch"].to_numpy())))
        self._nuc = dict(zip(truth.index, ndtr(truth["z_nuc"].to_numpy())))
        self._les = dict(zip(truth.index, ndtr(truth["z_les"].to_numpy())))
        self._center = dict(zip(clinical.index, clinical["center"]))

    def slide(self, pid: str) -> ProstateSlide:
        """The patient's whole-slide image (lazy: nothing is rendered until read)."""
        number = int(pid[1:])
        jitter = seeded_rng(self.seed, _STREAMS["slide"], number).normal(0, 0.05, size=2)
        cfg = self.config
        return ProstateSlide(float(self._arch[pid]), float(self._nuc[pid]), str(self._center[pid]),
                             _key(self.seed, _STREAMS["slide"], number), size=cfg.slide_size,
                             levels=cfg.slide_levels, jitter=jitter,
                             gland_spacing=cfg.gland_spacing, nucleus_radius=cfg.nucleus_radius)

    def mri(self, pid: str) -> np.ndarray:
        """The patient's MRI volume on the T2w grid, float32 (3, D, H, W)."""
        rng = seeded_rng(self.seed, _STREAMS["mri"], int(pid[1:]))
        return render_mri(float(self._les[pid]), rng, self.config.mri_shape)

    def mri_sequences(self, pid: str) -> dict[str, MRIVolume]:
        """The patient's MRI sequences as acquired, each on its own grid (the voxels :meth:`mri` resamples)."""
        rng = seeded_rng(self.seed, _STREAMS["mri"], int(pid[1:]))
        return render_mri_sequences(float(self._les[pid]), rng, self.config.mri_shape)


class ProstateCohort(Cohort):
    """The prostate BCR cohort: a :class:`~oncolab.data.Cohort` whose slides are lazy pyramids and which has MRI.

    Taught in chapter 14. Everything but the image kinds (:meth:`mri`, and a slide that is a
    lazy :class:`ProstateSlide` pyramid, read with ``read_region((x, y), level, (w, h))`` as
    with OpenSlide) is :class:`Cohort`'s (tables, ``presence``, ``survival_y``, ``subset``,
    ``fingerprint``, ``equals``, ``has``):

    ============  ===============================================================
    table          columns
    ============  ===============================================================
    clinical       age (years), psa (ng/mL), isup (grade group 1-5), gleason_primary,
                   gleason_secondary (patterns 3-5), stage, center
    labels         time (months to BCR or censoring), event (bool: BCR observed)
    presence       pathology, mri, clinical (bool: acquired?)
    truth          z_arch, z_nuc, z_les, true_risk (never a model input)
    ============  ===============================================================

    There is no diagnosis: ``cohort.y`` raises. The image source is a :class:`ProstateImages`.
    """

    IMAGE_KINDS: ClassVar[dict[str, str]] = {"slide": "pathology", "mri": "mri", "mri_sequences": "mri"}

    def mri_sequences(self, key: int | str) -> dict[str, MRIVolume]:
        """The patient's MRI sequences as acquired, each on its own voxel grid.

        Parameters
        ----------
        key : int or str
            The patient's position (negative allowed) or id; a patient without an MRI raises
            a ValueError.

        Returns
        -------
        dict of str to MRIVolume
            ``{"T2w": ..., "ADC": ..., "DCE": ...}`` (see :func:`mri_grids`).
        """
        return self.image("mri_sequences", key)

    def mri(self, key: int | str) -> np.ndarray:
        """The patient's MRI volume (T2w, ADC, DCE), ADC and DCE resampled onto the T2w grid.

        Parameters
        ----------
        key : int or str
            The patient's position (negative allowed) or id; a patient without an MRI
            (``presence['mri']`` is False) raises a ValueError.

        Returns
        -------
        numpy.ndarray
            float32 (3, D, H, W).
        """
        return self.image("mri", key)

    def image_arrays(self, key: int | str, tile: int = 32) -> dict[str, np.ndarray]:
        """What stands for a patient's images in ``fingerprint`` and ``equals``.

        A whole slide is too large to compare: a ``tile`` x ``tile`` region at the slide's
        centre, read at every level, stands for it.

        Parameters
        ----------
        key : int or str
            The patient's position (negative allowed) or id.
        tile : int
            Side of the region read at each level, in that level's pixels.

        Returns
        -------
        dict of str to numpy.ndarray
            ``"slide level k"`` for each level, and ``"mri"`` where the patient has one.
        """
        pid = self._pid(key)
        out: dict[str, np.ndarray] = {}
        if self.images is None:
            return out
        if self.has("pathology", pid):
            s = self.slide(pid)
            for lv in range(s.level_count):
                out[f"slide level {lv}"] = s.read_region((s.size // 2, s.size // 2), lv, (tile, tile))
        if self.has("mri", pid):
            out["mri"] = self.mri(pid)
        return out


def conditional_risk(cohort: Cohort, latents: Sequence[str]) -> np.ndarray:
    """The best risk predictable from some latents: ``E[eta | latents]``, per patient.

    Taught in chapter 14. The latents are jointly Gaussian, so the conditional mean of their
    part of ``eta`` is linear in the given ones; the age term is added as it is known.

    Parameters
    ----------
    cohort : Cohort
        A cohort made by :func:`prostate_cohort` (others are refused with a ValueError).
    latents : sequence of str
        Some of :data:`LATENTS` (none: the age term alone).

    Returns
    -------
    numpy.ndarray
        One risk per patient (higher = earlier recurrence expected).
    """
    check_generated(cohort, SOURCE, "prostate_cohort")
    bad = [name for name in latents if name not in LATENTS]
    if bad:
        raise ValueError(f"unknown latent {bad[0]!r}; expected some of {list(LATENTS)}")
    cfg = ProstateConfig.from_dict(cohort.meta["config"])
    z = cohort.truth[list(LATENTS)].to_numpy()
    age_term = cfg.b_age * (cohort.clinical["age"].to_numpy() - 66) / 7
    if not latents:
        return age_term
    cov, b = cfg.covariance(), cfg.betas()
    s = [LATENTS.index(name) for name in latents]
    coef = np.linalg.solve(cov[np.ix_(s, s)], cov[s] @ b)
    return z[:, s] @ coef + age_term


#: the information sets the oracle reports, and the latents each one reveals
INFORMATION_SETS: dict[str, tuple[str, ...]] = {
    "all latents": LATENTS, "slide, both scales": ("z_arch", "z_nuc"),
    "slide, low magnification": ("z_arch",), "slide, high magnification": ("z_nuc",),
    "MRI lesion": ("z_les",)}


def oracle(cohort: Cohort) -> dict[str, Any]:
    """Ceilings for a prostate cohort: Harrell's C of the true risk and of ``E[eta | S]``.

    Taught in chapter 14. Usually called as :func:`oncolab.data.oracle`, which finds this
    function from ``cohort.meta["source"]``.

    Parameters
    ----------
    cohort : Cohort
        A cohort made by :func:`prostate_cohort` (or a subset of one); any other cohort is
        refused with a ValueError.

    Returns
    -------
    dict
        * ``c_index``: Harrell's C of the true risk ``eta`` against the observed (time, event);
        * ``by_information``: {information set: Harrell's C of :func:`conditional_risk`} for
          each set of :data:`INFORMATION_SETS`;
        * ``n``, ``events``: the number of patients and of recurrences.
    """
    from sksurv.metrics import concordance_index_censored

    check_generated(cohort, SOURCE, "prostate_cohort")
    ev = cohort.labels["event"].to_numpy(bool)
    tt = cohort.labels["time"].to_numpy(float)
    by = {name: float(concordance_index_censored(ev, tt, conditional_risk(cohort, s))[0])
          for name, s in INFORMATION_SETS.items()}
    c_true = float(concordance_index_censored(ev, tt, cohort.truth["true_risk"].to_numpy())[0])
    return {"c_index": c_true, "by_information": by, "n": len(cohort), "events": int(ev.sum())}



def prostate_cohort(n_patients: int = 400, seed: int = 0, config: ProstateConfig | None = None,
                    **overrides: Any) -> ProstateCohort:
    """Generate the synthetic prostate BCR cohort (see this module's docstring).

    Taught in chapter 14; chapter 15 streams its slides.

    Parameters
    ----------
    n_patients : int
        Number of patients (a positive integer).
    seed : int
        Same seed, same bytes.
    config : ProstateConfig, optional
        The generative model (the book's defaults when not given).
    **overrides
        Any field of :class:`ProstateConfig` as a keyword argument (e.g.
        ``mri_shape=(16, 32, 32)``, ``slide_size=1024``).

    Returns
    -------
    ProstateCohort
        Tables made at once; slides and MRI volumes made when asked for.
        ``meta["source"]`` is :data:`SOURCE`, which lets :func:`oncolab.data.oracle` find
        :func:`oracle`; ``meta["config"]`` is the configuration as a dict.
    """
    n = check_integer("n_patients", n_patients)
    seed = check_integer("seed", seed, minimum=0)
    cfg = config or ProstateConfig()
    if overrides:
        cfg = ProstateConfig.from_dict({**cfg.to_dict(), **overrides})
    if not 0 <= cfg.mri_missing < 1:
        raise ValueError(f"mri_missing must lie in [0, 1), got {cfg.mri_missing}")
    if len(cfg.mri_shape) != 3 or min(cfg.mri_shape) < 8:
        raise ValueError(f"mri_shape must be (D, H, W) with every size >= 8, got {cfg.mri_shape}")
    check_integer("slide_size", cfg.slide_size, minimum=64)
    cov = cfg.covariance()
    if np.linalg.eigvalsh(cov).min() <= 0:
        raise ValueError(f"rho_arch_nuc={cfg.rho_arch_nuc}, rho_arch_les={cfg.rho_arch_les} do not give a valid covariance")
    ids = pd.Index([f"R{i:05d}" for i in range(n)], name="patient_id")

    r = seeded_rng(seed, _STREAMS["latents"])
    z = r.standard_normal((n, 3)) @ np.linalg.cholesky(cov).T
    z_arch, z_nuc, z_les = z.T

    r = seeded_rng(seed, _STREAMS["clinical"])
    age = np.clip(np.round(r.normal(66, 7, n)), 42, 85)
    psa = np.round(np.exp(1.9 + 0.45 * z_les + 0.25 * z_arch + r.normal(0, 0.5, n)), 2)
    isup = np.digitize(z_arch + r.normal(0, 0.6, n), [-0.6, 0.2, 0.8, 1.4]) + 1
    stage = np.asarray(STAGES)[np.digitize(z_les + r.normal(0, 0.7, n), [0.5, 1.3])]
    center = np.asarray(CENTERS)[r.integers(0, len(CENTERS), n)]
    r = seeded_rng(seed, _STREAMS["gleason"])
    u = r.random(n)
    primary, secondary = np.empty(n, int), np.empty(n, int)
    for g, (patterns, probs) in GLEASON_BY_ISUP.items():
        rows = isup == g
        pick = np.searchsorted(np.cumsum(probs)[:-1], u[rows], side="right")
        primary[rows] = np.asarray(patterns)[pick, 0]
        secondary[rows] = np.asarray(patterns)[pick, 1]
    clinical = pd.DataFrame({"age": age, "psa": psa, "isup": isup, "gleason_primary": primary,
                             "gleason_secondary": secondary, "stage": stage, "center": center}, index=ids)

    r = seeded_rng(seed, _STREAMS["survival"])
    eta = z @ cfg.betas() + cfg.b_age * (age - 66) / 7
    t_event = cfg.weibull_scale * (-np.log(r.random(n)) / np.exp(eta)) ** (1 / cfg.weibull_shape)
    t_cens = np.minimum(r.uniform(*cfg.follow_up, n), r.exponential(1 / cfg.loss_rate, n))
    time = np.maximum(np.round(np.minimum(t_event, t_cens), 2), 0.01)
    labels = pd.DataFrame({"time": time, "event": t_event <= t_cens}, index=ids)

    r = seeded_rng(seed, _STREAMS["missing"])
    presence = pd.DataFrame({"pathology": np.ones(n, bool), "mri": r.random(n) >= cfg.mri_missing,
                             "clinical": np.ones(n, bool)}, index=ids)
    truth = pd.DataFrame({"z_arch": z_arch, "z_nuc": z_nuc, "z_les": z_les, "true_risk": eta}, index=ids)
    tables = {"clinical": clinical, "labels": labels, "presence": presence, "truth": truth}
    meta = {"source": SOURCE, "seed": seed, "n_patients": n, "modalities": list(PROSTATE_MODALITIES),
            "config": cfg.to_dict()}
    return ProstateCohort(tables, images=ProstateImages(seed, cfg, truth, clinical), meta=meta)
