"""The synthetic multimodal bone-tumour cohort: a generative model whose truth is known.

Taught in chapter 1 ("Multimodal oncology data"); every later chapter trains on it.

The generative model
--------------------
For patient *i*:

1. Diagnosis ``y`` in {benign, intermediate, malignant} with prior ``class_prior``.
2. Aggressiveness ``a | y ~ Normal(mu[y], sigma_a^2)`` with ``mu = (-1.2, 0, 1.2)``.
3. Each imaging or molecular modality *m* sees its own noisy copy of it,
   ``s_m = a + e_m`` with ``e_m ~ Normal(0, tau_m^2)`` independent across modalities
   (``tau`` = radiograph 0.9, pathology 0.8, labs 1.1, genes 1.0). A modality's observed data
   are functions of ``s_m`` plus nuisance that carries no information (lesion position,
   bone anatomy, stain of the center, sampling noise). So each modality alone is
   informative but incomplete, and combining them removes noise: fusion can beat every
   single modality.

   * radiograph: lesion radius, margin (sharp rim -> blurred, irregular edge) and lytic
     texture grow with ``u = Phi(s_radiograph / sd)``; the box is the lesion's extent;
   * pathology: nuclear density, size, pleomorphism, hyperchromasia and the number of
     mitoses grow with ``u``; the stain vectors depend on the center (Beer-Lambert optical
     density model);
   * labs: ``value = median * exp(log_sd * z + effect * s_labs / sd(s_labs))`` per biomarker;
     each value missing with probability ``lab_missing``;
   * genes: read counts ``~ Poisson(size_factor * exp(mu_g + loading_g * s_genes + pathway
     noise + gene noise))``; 24 of the 64 genes (proliferation, bone remodelling, immune)
     have a non-zero loading, the other 40 are noise.
   * symptoms (an optional modality, made only when asked for by name): a free-text note
     of the visit. Each finding *k* of :data:`SYMPTOM_FINDINGS` (pain, night pain, swelling,
     limited motion, fever, weight loss, fatigue, pathological fracture) is present with
     probability ``sigmoid(b_k + c_k * s_symptoms / sd)`` (night pain only where there is
     pain); :func:`symptom_note` writes the note: present findings affirmed in varied words,
     some absent ones negated ("denies night pain", "Fever: none.", "No fever, weight loss or
     night pain."), a few of either kind hedged ("? swelling", "fracture cannot be ruled
     out"), and now and then a relative's finding ("family history of ..."), which is not the
     patient's. Whether each finding is present is kept in ``truth`` (``finding_<name>``).
4. Clinical: age, sex, site and center, drawn independently of the diagnosis.
5. Survival (months): Weibull proportional hazards, ``S(t) = exp(-(t / scale)^shape *
   exp(eta))`` with true risk ``eta = beta_a * a + beta_age * (age - 50) / 15``; censoring by
   the end of follow-up (uniform 24-120 months) and loss to follow-up (exponential).

The oracle
----------
Because ``s | y`` is Gaussian, the Bayes rule given every modality's signal has a closed
form: with weights ``w_m = 1 / tau_m^2``, the weighted mean ``sbar`` is sufficient and
``sbar | y ~ Normal(mu[y], sigma_a^2 + 1 / sum(w))`` (:func:`diagnosis_posterior`).
:func:`oracle` reports its accuracy and macro one-vs-rest AUC (in the cohort, and for the
population by simulation), the same for each modality alone, and the concordance (Harrell's C)
of the true risk ``eta``. No model of the observed data can beat these in expectation; they
are the ceilings results are set beside. A cohort with symptom notes adds ``s_symptoms``, the
signal the note's findings are drawn from (a ceiling the note, which shows it only through
eight yes/no findings, stays well below). The oracle is a function of this generator, not of
the :class:`~oncolab.data.Cohort` container: it refuses a cohort that this module did not make.

Same seed, same bytes: every random draw comes from ``numpy.random.default_rng`` seeded by
``(seed, stream)`` (:func:`seeded_rng`), and each patient's images from ``(seed, patient
number, modality)``. The symptom notes draw from streams of their own (their signal and
findings from one, each patient's wording from ``(seed, stream, patient number)``), so asking
for them leaves every other table as it was.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.special import ndtr

from .cohort import DIAGNOSES, Cohort, check_modalities
from .labs import BIOMARKERS

__all__ = [
    "CENTERS",
    "GENES",
    "GENE_PATHWAYS",
    "INFORMATIVE_GENES",
    "SITES",
    "SOURCE",
    "SYMPTOM_FINDINGS",
    "CohortConfig",
    "SyntheticImages",
    "check_generated",
    "check_integer",
    "diagnosis_posterior",
    "lesion_geometry",
    "lesion_mask",
    "oracle",
    "render_radiograph",
    "render_slide",
    "seeded_rng",
    "stain_matrix",
    "symptom_note",
    "synthetic_cohort",
]

#: ``meta["source"]`` of every cohort :func:`synthetic_cohort` makes
SOURCE = "synthetic"

SITES = ("femur", "tibia", "humerus", "pelvis", "other")
SITE_PRIOR = (0.35, 0.25, 0.15, 0.10, 0.15)
CENTERS = ("A", "B", "C", "D")

# pathway -> (genes, loading on s_genes). Non-zero loadings are the informative genes.
GENE_PATHWAYS: dict[str, tuple[tuple[str, ...], float]] = {
    "proliferation": (("MKI67", "TOP2A", "CCNB1", "CDK1", "BUB1", "AURKA", "PLK1", "CENPF",
                       "TYMS", "MCM2"), 0.55),
    "bone_remodelling": (("RUNX2", "SP7", "ALPL", "COL1A1", "SPP1", "IBSP", "MMP9", "CTSK"), 0.35),
    "immune": (("CD8A", "GZMB", "PRF1", "CD3E", "CXCL9", "HLA-DRA"), -0.35),
    "housekeeping": (("ACTB", "GAPDH", "B2M", "RPLP0", "PPIA", "TBP", "HPRT1", "GUSB"), 0.0),
    "adhesion": (("CDH1", "CDH2", "VIM", "FN1", "ITGB1", "CD44", "EPCAM", "ICAM1"), 0.0),
    "lipid_metabolism": (("ACACA", "FASN", "SCD", "HMGCR", "LDLR", "PPARG", "CPT1A", "ACLY"), 0.0),
    "dna_repair": (("BRCA1", "BRCA2", "RAD51", "ATM", "XRCC1", "PARP1", "MLH1", "MSH2"), 0.0),
    "interferon": (("ISG15", "IFIT1", "MX1", "OAS1", "IFI6", "IRF7", "STAT1", "IFI44L"), 0.0),
}
GENES: tuple[str, ...] = tuple(g for genes, _ in GENE_PATHWAYS.values() for g in genes)
INFORMATIVE_GENES: tuple[str, ...] = tuple(
    g for genes, load in GENE_PATHWAYS.values() if load != 0 for g in genes
)
_SIGNAL_MODALITIES = ("radiograph", "pathology", "labs", "genes")
_STREAMS = {"labels": 1, "clinical": 2, "labs": 3, "genes": 4, "survival": 5, "images": 6,
            "missing": 7, "geometry": 8, "symptoms": 9, "notes": 10}

#: symptom finding -> (b, c): present with probability ``sigmoid(b + c * s_symptoms / sd)``;
#: ``night_pain`` only among patients with ``pain``
SYMPTOM_FINDINGS: dict[str, tuple[float, float]] = {
    "pain": (1.2, 1.0),
    "night_pain": (-0.6, 1.6),
    "swelling": (-0.4, 1.2),
    "limited_motion": (-0.9, 0.9),
    "fever": (-2.2, 1.3),
    "weight_loss": (-2.0, 1.4),
    "fatigue": (-1.0, 0.6),
    "pathological_fracture": (-2.8, 1.3),
}


@dataclass(frozen=True)
class CohortConfig:
    """Every knob of the generative model (defaults are the book's cohort)."""

    class_prior: tuple[float, float, float] = (0.4, 0.3, 0.3)
    mu: tuple[float, float, float] = (-1.2, 0.0, 1.2)
    sigma_a: float = 0.6
    tau: dict[str, float] = field(default_factory=lambda: {
        "radiograph": 0.9, "pathology": 0.8, "labs": 1.1, "genes": 1.0, "symptoms": 1.0})
    image_size: int = 256
    slide_size: int = 512
    lab_missing: float = 0.08
    modality_missing: dict[str, float] = field(default_factory=dict)
    weibull_scale: float = 80.0  # months
    weibull_shape: float = 1.3
    beta_a: float = 0.9
    beta_age: float = 0.3
    follow_up: tuple[float, float] = (24.0, 120.0)
    loss_rate: float = 1 / 300.0

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (tuples as lists), as kept in ``cohort.meta["config"]``."""
        d = asdict(self)
        for k in ("class_prior", "mu", "follow_up"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CohortConfig:
        """The config back from :meth:`to_dict`'s dict; an unknown setting raises, naming it."""
        d = dict(d)
        for k in ("class_prior", "mu", "follow_up"):
            if k in d:
                d[k] = tuple(d[k])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown cohort setting(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**d)


def check_integer(name: str, value: Any, minimum: int = 1) -> int:
    """Check a size or a seed given to a generator.

    Taught in chapter 1.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : object
        The value given; a bool, a float or a string is refused (TypeError).
    minimum : int
        The smallest value accepted (ValueError below it).

    Returns
    -------
    int
        ``value`` as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def seeded_rng(seed: int, *stream: int) -> np.random.Generator:
    """The random generator of one stream of a seed: same (seed, stream), same numbers.

    Taught in chapter 1. Each part of a synthetic cohort (labels, labs, one patient's images,
    ...) draws from its own stream, so adding a draw to one part never changes another.

    Parameters
    ----------
    seed : int
        The cohort's seed.
    *stream : int
        Integers naming the stream (a part, a patient number, a modality).

    Returns
    -------
    numpy.random.Generator
        ``numpy.random.default_rng([seed, *stream])``.
    """
    return np.random.default_rng([int(seed), *map(int, stream)])


def _signal_sd(cfg: CohortConfig, modality: str) -> float:
    """Marginal standard deviation of s_m, used to map a signal to u in (0, 1)."""
    mu = np.asarray(cfg.mu)
    p = np.asarray(cfg.class_prior)
    var_a = float(p @ (mu - p @ mu) ** 2) + cfg.sigma_a**2
    return float(np.sqrt(var_a + cfg.tau[modality] ** 2))


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise with unit variance (made at low resolution when sigma is large)."""
    factor = max(1, int(sigma // 3))
    small = (-(-shape[0] // factor), -(-shape[1] // factor))
    field_ = ndimage.gaussian_filter(rng.standard_normal(small), sigma / factor, mode="wrap")
    if factor > 1:
        field_ = ndimage.zoom(field_, factor, order=1, mode="grid-wrap", grid_mode=True)[: shape[0], : shape[1]]
    field_ = field_ - field_.mean()
    return (field_ / (field_.std() + 1e-12)).astype(np.float32)


def lesion_geometry(u: float, rng: np.random.Generator) -> dict[str, float]:
    """Where the bone and the lesion lie on a radiograph (fractions of the image size).

    Taught in chapter 1. Only the radius and the irregularity of the margin depend on ``u``;
    position, tilt, width, aspect and orientation are nuisance.

    Parameters
    ----------
    u : float
        The lesion's aggressiveness as the radiograph shows it, in [0, 1].
    rng : numpy.random.Generator
        Draws the nuisance.

    Returns
    -------
    dict of str to float
        Bone centre ``cx``, tilt ``angle``, half-width ``half_w``, cortex thickness ``cortex``;
        lesion centre ``lx``, ``ly``, radius ``r``, ``aspect``, orientation ``theta``, the
        phases of its margin's ripples, and ``u``.
    """
    g = {"angle": rng.uniform(-0.25, 0.25), "cx": rng.uniform(0.4, 0.6),
         "half_w": rng.uniform(0.14, 0.19), "ly": rng.uniform(0.25, 0.75),
         "offset": rng.uniform(-0.3, 0.3), "r": 0.05 + 0.09 * u + rng.uniform(-0.01, 0.01),
         "aspect": rng.uniform(1.0, 1.5), "theta": rng.uniform(0, np.pi),
         "phase3": rng.uniform(0, 2 * np.pi), "phase5": rng.uniform(0, 2 * np.pi),
         "phase9": rng.uniform(0, 2 * np.pi), "cortex": rng.uniform(0.18, 0.25), "u": u}
    g["lx"] = g["cx"] + (g["ly"] - 0.5) * np.tan(g["angle"]) + g["offset"] * g["half_w"]
    return g


def _lesion_fields(g: dict[str, float], size: int, rows: slice = slice(None), cols: slice = slice(None)):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)[:, rows, cols] / size
    dx, dy = xx - g["lx"], yy - g["ly"]
    xr = dx * np.cos(g["theta"]) + dy * np.sin(g["theta"])
    yr = -dx * np.sin(g["theta"]) + dy * np.cos(g["theta"])
    rho = np.sqrt((xr / g["aspect"]) ** 2 + yr**2)
    phi = np.arctan2(yr, xr)
    irregular = 0.3 * g["u"] * (0.5 * np.sin(3 * phi + g["phase3"]) + 0.3 * np.sin(5 * phi + g["phase5"])
                                + 0.2 * np.sin(9 * phi + g["phase9"]))
    edge = g["r"] * (1 + irregular)
    return xx, yy, rho, edge


def lesion_mask(g: dict[str, float], size: int) -> np.ndarray:
    """The lesion's pixels for a geometry.

    Taught in chapter 1, where a lesion drawn by hand is checked against it.

    Parameters
    ----------
    g : dict of str to float
        A geometry from :func:`lesion_geometry`.
    size : int
        The radiograph's side in pixels.

    Returns
    -------
    numpy.ndarray
        bool (size, size), True inside the lesion.
    """
    # the lesion lies within 0.3 image widths of its centre: evaluate that window only
    reach = 0.32
    r0, r1 = max(int((g["ly"] - reach) * size), 0), min(int(np.ceil((g["ly"] + reach) * size)), size)
    c0, c1 = max(int((g["lx"] - reach) * size), 0), min(int(np.ceil((g["lx"] + reach) * size)), size)
    _, _, rho, edge = _lesion_fields(g, size, slice(r0, r1), slice(c0, c1))
    mask = np.zeros((size, size), bool)
    mask[r0:r1, c0:c1] = rho < edge
    return mask


def render_radiograph(u: float, rng: np.random.Generator, size: int = 256,
                      geometry: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One radiograph with one lesion; returns (uint8 image (size, size), bool lesion mask).

    ``u`` in (0, 1) is the lesion's aggressiveness as the radiograph shows it: radius,
    blur and irregularity of the margin, and how dark and mottled (lytic) it is all grow
    with ``u``; a low ``u`` gives a small, sharp lesion with a bright sclerotic rim.
    ``geometry`` (from :func:`lesion_geometry`) fixes where things lie; drawn from ``rng``
    when not given. Taught in chapter 1.

    Parameters
    ----------
    u : float
        Aggressiveness in [0, 1].
    rng : numpy.random.Generator
        Draws the nuisance and the noise.
    size : int
        Side in pixels.
    geometry : dict or None
        Where the bone and the lesion lie.

    Returns
    -------
    tuple of numpy.ndarray
        The image, uint8 (size, size), and the lesion mask, bool (size, size).
    """
    if not 0.0 <= u <= 1.0:
        raise ValueError(f"u must lie in [0, 1], got {u}")
    g = geometry if geometry is not None else lesion_geometry(u, rng)
    xx, yy, rho, edge = _lesion_fields(g, size)
    # soft tissue: a smooth gradient and low-frequency texture
    img = 70 + 25 * (1 - np.abs(xx - 0.5) * 2) + 6 * _smooth_noise(rng, (size, size), size / 16)
    # the bone shaft: a tilted band with a bright cortex and a trabecular medulla
    d = (xx - g["cx"]) * np.cos(g["angle"]) - (yy - 0.5) * np.sin(g["angle"])
    half_w = g["half_w"]
    inside = np.abs(d) < half_w
    img = np.where(inside, 150 + 10 * _smooth_noise(rng, (size, size), size / 64), img)
    img = np.where(inside & (np.abs(d) > half_w * (1 - g["cortex"])), 215, img)
    # the lesion: lytic (darker), mottled, with a blurred margin that grows with u
    mask = rho < edge
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), (0.5 + 4.0 * u) * size / 256)
    mottle = (8 + 30 * u) * _smooth_noise(rng, (size, size), 1.5 + 2 * (1 - u))
    img = img * (1 - alpha) + (img - (55 + 55 * u) + mottle) * alpha
    # a sclerotic rim on slow-growing (low u) lesions
    rim = (np.abs(rho - edge) < 0.012) * max(0.0, 1 - 2.2 * u)
    img = img + 55 * ndimage.gaussian_filter(rim.astype(np.float32), 0.8)
    img = img + rng.normal(0, 5, size=(size, size))
    img = ndimage.gaussian_filter(img, 0.6)
    return np.clip(img, 0, 255).astype(np.uint8), mask


_REF_STAIN = np.array([[0.65, 0.70, 0.29],   # haematoxylin OD vector (Ruifrok & Johnston)
                       [0.07, 0.99, 0.11]])  # eosin
_CENTER_STAIN = {  # per-center (haematoxylin strength, eosin strength, hue rotation of H)
    "A": (1.00, 1.00, 0.00),
    "B": (1.30, 0.85, 0.10),
    "C": (0.80, 1.30, -0.08),
    "D": (1.10, 0.70, 0.18),
}


def stain_matrix(center: str, jitter: np.ndarray | None = None) -> np.ndarray:
    """The (2, 3) optical-density stain matrix a center's lab produces (rows H, E).

    Taught in chapter 1. Each row is scaled by the center's stain strength; the haematoxylin
    vector is rotated a little towards blue or red.

    Parameters
    ----------
    center : str
        One of :data:`CENTERS`.
    jitter : array-like of shape (2,) or None
        A patient-level relative change of the H and E strengths.

    Returns
    -------
    numpy.ndarray
        float (2, 3): the optical density per unit concentration of haematoxylin (row 0)
        and eosin (row 1) in R, G, B.
    """
    if center not in _CENTER_STAIN:
        raise ValueError(f"unknown center {center!r}; expected one of {list(_CENTER_STAIN)}")
    h_s, e_s, rot = _CENTER_STAIN[center]
    h = _REF_STAIN[0] + np.array([-rot, 0.0, rot])
    h = h / np.linalg.norm(h)
    e = _REF_STAIN[1] / np.linalg.norm(_REF_STAIN[1])
    m = np.stack([h * h_s, e * e_s])
    if jitter is not None:
        m = m * (1 + np.asarray(jitter)[:, None])
    return m


def render_slide(u: float, center: str, rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """One H&E slide region, uint8 (size, size, 3).

    Tissue (a smooth blob with background around it) carries eosin-stained stroma and
    nuclei. Nuclear density, size, size variation (pleomorphism), shape irregularity,
    darkness (hyperchromasia) and the number of mitoses grow with ``u`` in (0, 1). The
    colours follow Beer-Lambert: ``RGB = 255 * exp(-(c_H * v_H + c_E * v_E))`` with the
    center's stain vectors (:func:`stain_matrix`). Taught in chapter 1.

    Parameters
    ----------
    u : float
        Aggressiveness in [0, 1].
    center : str
        The staining center, one of :data:`CENTERS`.
    rng : numpy.random.Generator
        Draws the tissue, the nuclei, the stain jitter and the noise.
    size : int
        Side in pixels.

    Returns
    -------
    numpy.ndarray
        uint8 (size, size, 3) RGB.
    """
    if not 0.0 <= u <= 1.0:
        raise ValueError(f"u must lie in [0, 1], got {u}")
    tissue_field = _smooth_noise(rng, (size, size), size / 6)
    tissue = ndimage.gaussian_filter((tissue_field > -0.6).astype(np.float32), 2)
    fibres = _smooth_noise(rng, (size, size), 3) * 0.5 + _smooth_noise(rng, (size, size), 12)
    conc_e = tissue * (0.55 + 0.12 * fibres)
    conc_h = np.zeros((size, size), np.float32)
    scale = size / 512
    n_nuclei = int(rng.poisson((180 + 520 * u) * scale**2 * float(tissue.mean()) / 0.8))
    radius_mean = (4.0 + 3.0 * u) * scale
    radius_sd = (0.4 + 2.2 * u) * scale
    darkness = 0.9 + 0.8 * u
    ys, xs = np.nonzero(tissue > 0.5)
    if len(ys) and n_nuclei:
        pick = rng.integers(0, len(ys), size=n_nuclei)
        cy, cx = ys[pick], xs[pick]
        r = np.maximum(1.5 * scale, rng.normal(radius_mean, radius_sd, size=n_nuclei))
        ecc = 1 + rng.uniform(0, 0.2 + 0.8 * u, size=n_nuclei)
        ang = rng.uniform(0, np.pi, size=n_nuclei)
        val = darkness * rng.uniform(0.8, 1.2, size=n_nuclei)
        # stamp every nucleus at once: an ellipse on a (P, P) patch around its centre
        half = int(np.ceil((r * ecc).max())) + 2
        off = np.arange(-half, half + 1)
        dy, dx = np.meshgrid(off, off, indexing="ij")
        cos, sin = np.cos(ang)[:, None, None], np.sin(ang)[:, None, None]
        a = (dx * cos + dy * sin) / ecc[:, None, None]
        b = -dx * sin + dy * cos
        inside = np.clip(r[:, None, None] + 0.5 - np.sqrt(a * a + b * b), 0, 1) * val[:, None, None]
        py = cy[:, None, None] + dy
        px = cx[:, None, None] + dx
        ok = (inside > 0) & (py >= 0) & (py < size) & (px >= 0) & (px < size)
        np.maximum.at(conc_h, (py[ok], px[ok]), inside[ok].astype(np.float32))
        n_mitoses = int(rng.poisson(1 + 14 * u**2 * scale**2))
        for _ in range(n_mitoses):  # a ragged dark cluster of chromosome clumps near a nucleus
            k = rng.integers(0, n_nuclei)
            for _k in range(6):
                my = int(np.clip(cy[k] + rng.normal(0, 2.5 * scale), 0, size - 1))
                mx = int(np.clip(cx[k] + rng.normal(0, 2.5 * scale), 0, size - 1))
                conc_h[max(my - 1, 0):my + 2, max(mx - 1, 0):mx + 2] = 2.2
    conc_h = ndimage.gaussian_filter(conc_h, 0.7 * scale) * tissue
    jitter = rng.normal(0, 0.05, size=2)
    m = stain_matrix(center, jitter)
    od = conc_h[..., None] * m[0] + conc_e[..., None] * m[1]
    rgb = 255 * np.exp(-od) + rng.normal(0, 2.0, size=od.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


class SyntheticImages:
    """Makes a synthetic cohort's images on demand, keeping the last few in memory.

    Each patient's images depend only on (seed, patient number, modality) and the signal,
    so they are the same bytes whatever order they are asked for in.
    """

    def __init__(self, seed: int, config: CohortConfig, truth: pd.DataFrame, clinical: pd.DataFrame,
                 cache_size: int = 64):
        self.seed = int(seed)
        self.config = config
        self._u_rad = dict(zip(truth.index, ndtr(truth["s_radiograph"] / _signal_sd(config, "radiograph"))))
        self._u_path = dict(zip(truth.index, ndtr(truth["s_pathology"] / _signal_sd(config, "pathology"))))
        self._number = {pid: int(pid[1:]) for pid in truth.index}
        self._center = dict(zip(clinical.index, clinical["center"]))
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size

    def _cached(self, key, make):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = make()
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return value

    def _radiograph_and_mask(self, pid: str):
        def make():
            u = float(self._u_rad[pid])
            g = lesion_geometry(u, seeded_rng(self.seed, _STREAMS["geometry"], self._number[pid]))
            rng = seeded_rng(self.seed, _STREAMS["images"], self._number[pid], 0)
            return render_radiograph(u, rng, self.config.image_size, geometry=g)
        return self._cached(("rad", pid), make)

    def radiograph(self, pid: str) -> np.ndarray:
        return self._radiograph_and_mask(pid)[0].copy()

    def lesion_mask(self, pid: str) -> np.ndarray:
        return self._radiograph_and_mask(pid)[1].copy()

    def slide(self, pid: str) -> np.ndarray:
        def make():
            rng = seeded_rng(self.seed, _STREAMS["images"], self._number[pid], 1)
            return render_slide(float(self._u_path[pid]), self._center[pid], rng, self.config.slide_size)
        return self._cached(("slide", pid), make).copy()


# --------------------------------------------------------------------------------------------
# symptom notes
# --------------------------------------------------------------------------------------------
# how each finding is written, in any statement (night pain also as ", worse at night" after the pain)
_PHRASES: dict[str, tuple[str, ...]] = {
    "pain": ("pain", "aching", "discomfort"),
    "night_pain": ("night pain", "pain at night", "nocturnal pain", "pain that wakes {obj} at night"),
    "swelling": ("swelling", "local swelling", "soft-tissue swelling", "palpable mass"),
    "limited_motion": ("limited range of motion", "stiffness", "restricted movement", "reduced mobility"),
    "fever": ("fever", "fevers", "low-grade fever", "pyrexia"),
    "weight_loss": ("weight loss", "unintentional weight loss", "loss of weight"),
    "fatigue": ("fatigue", "tiredness", "malaise", "lethargy"),
    "pathological_fracture": ("pathological fracture", "fracture after minor trauma", "fracture through the lesion"),
}
# and, besides those, when the finding is stated (affirmed, hedged, or a relative's)
_STATED = {"pain": ("a dull ache",), "swelling": ("a palpable mass", "a lump"),
           "weight_loss": ("weight loss of {kg} kg",),
           "pathological_fracture": ("a pathological fracture", "a fracture after minor trauma")}
_AFFIRM = ("Reports {f}.", "Complains of {f}.", "{F} noted.", "Presents with {f}.", "Positive for {f}.",
           "Also describes {f}.", "{F} for the past {n} weeks.")
_NEGATE = ("No {f}.", "Denies {f}.", "Negative for {f}.", "There is no {f}.", "No history of {f}.",
           "No evidence of {f}.", "{F}: none.", "{F} denied.", "{F} absent.", "{F} not reported.")
_NEGATE_LIST = ("Denies {f}.", "No {f}.", "Negative for {f}.")
_HEDGE = ("Possible {f}.", "Questionable {f}.", "? {f}.", "{F} cannot be ruled out.",
          "Unclear whether there is {f}.", "May have {f}.")
_BUT = ("No {g}, but reports {f}.", "Denies {g}; complains of {f}.", "Denies {g} but has {f}.")
_FAMILY = ("Family history of {f} in {pos} {relative}.", "{Pos} {relative} had {f}.")
_PLACES = {"femur": ("thigh", "femur"), "tibia": ("shin", "tibia", "lower leg"), "humerus": ("upper arm", "humerus"),
           "pelvis": ("hip", "pelvis"), "other": ("forearm", "shoulder", "ankle")}
_P_HEDGE = {True: 0.10, False: 0.03}  # a finding hedged, given present / absent
_P_NEGATE = 0.45  # an absent finding said to be absent (the rest are not mentioned)
_P_FAMILY = 0.12


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def symptom_note(findings: Mapping[str, bool], rng: np.random.Generator, age: float = 50, sex: str = "F",
                 site: str = "femur") -> str:
    """A free-text symptom note that states some findings, negates, hedges or omits others.

    Taught in chapter 6, where findings are read back out of such notes with negation
    handled. The note opens with the patient and the pain (or the lesion found on imaging);
    each other finding that is present is affirmed (or, now and then, hedged), and an absent
    one is negated with probability 0.45 (alone, in a list such as "Denies fever, weight loss
    or night pain.", or beside an affirmed one: "No fever, but reports swelling."), hedged
    with probability 0.03, or not mentioned. With probability 0.12 a relative's finding is
    added ("Family history of pathological fracture in her mother."), which says nothing of
    the patient.

    Parameters
    ----------
    findings : mapping of str to bool
        Whether each finding of :data:`SYMPTOM_FINDINGS` is present (every one must be given;
        night pain only with pain).
    rng : numpy.random.Generator
        Draws the wording.
    age : float
        Age in years.
    sex : {"F", "M"}
        Sex.
    site : str
        One of :data:`SITES`: where the lesion is.

    Returns
    -------
    str
        One line of text (sentences ending with a full stop).
    """
    missing = [k for k in SYMPTOM_FINDINGS if k not in findings]
    if missing:
        raise ValueError(f"findings must say whether each finding is present; missing {missing}")
    if site not in _PLACES:
        raise ValueError(f"unknown site {site!r}; expected one of {list(_PLACES)}")
    if sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', got {sex!r}")
    have = {k: bool(findings[k]) for k in SYMPTOM_FINDINGS}
    if have["night_pain"] and not have["pain"]:
        raise ValueError("findings has night_pain without pain; expected night pain only where there is pain")
    adult = age >= 18
    person = ("woman" if adult else "girl") if sex == "F" else ("man" if adult else "boy")
    obj, pos = ("her", "her") if sex == "F" else ("him", "his")
    side = _pick(rng, ("left", "right"))
    place = f"{side} {_pick(rng, _PLACES[site])}" if site != "pelvis" else _pick(rng, ("pelvis", f"{side} hip"))
    article = "An" if str(int(age)).startswith(("8", "11", "18")) else "A"

    def phrase(k: str, stated: bool = False) -> str:
        options = _PHRASES[k] + (_STATED.get(k, ()) if stated else ())
        return _pick(rng, options).format(obj=obj, kg=int(rng.integers(2, 10)))

    sentences = []
    duration = f"{int(rng.integers(2, 12))} {_pick(rng, ('weeks', 'months'))}"
    night_said = False
    if have["pain"]:
        opening = f"{article} {int(age)}-year-old {person} with {duration} of {phrase('pain', True)} in the {place}"
        if have["night_pain"] and rng.random() < 0.4:
            opening += ", worse at night"
            night_said = True
        sentences.append(opening + ".")
    else:
        sentences.append(f"{article} {int(age)}-year-old {person} referred with a lesion of the {place} seen on "
                         "imaging.")
    # every other finding: affirm, hedge, negate or omit
    affirmed, negated, hedged = [], [], []
    for k in SYMPTOM_FINDINGS:
        if (k == "pain" and have["pain"]) or (k == "night_pain" and (night_said or not have["pain"])):
            continue
        if rng.random() < _P_HEDGE[have[k]]:
            hedged.append(k)
        elif have[k]:
            affirmed.append(k)
        elif rng.random() < _P_NEGATE:
            negated.append(k)
    rng.shuffle(affirmed)
    rng.shuffle(negated)
    body = []
    if negated and affirmed and rng.random() < 0.3:
        body.append(_pick(rng, _BUT).format(g=phrase(negated.pop()), f=phrase(affirmed.pop(), True)))
    if len(negated) >= 2 and rng.random() < 0.5:
        group = [phrase(negated.pop()) for _ in range(min(len(negated), int(rng.integers(2, 4))))]
        listed = group[0] if len(group) == 1 else ", ".join(group[:-1]) + " or " + group[-1]
        body.append(_pick(rng, _NEGATE_LIST).format(f=listed))
    for kind, keys in (("affirm", affirmed), ("negate", negated), ("hedge", hedged)):
        templates = {"affirm": _AFFIRM, "negate": _NEGATE, "hedge": _HEDGE}[kind]
        for k in keys:
            f = phrase(k, stated=kind != "negate")
            body.append(_pick(rng, templates).format(f=f, F=_cap(f), n=int(rng.integers(2, 9))))
    if rng.random() < _P_FAMILY:
        relative = _pick(rng, ("mother", "father", "brother", "sister"))
        f = phrase(_pick(rng, ("pathological_fracture", "weight_loss", "swelling")), True)
        body.append(_pick(rng, _FAMILY).format(f=f, pos=pos, Pos=_cap(pos), relative=relative))
    order = rng.permutation(len(body))
    return " ".join(sentences + [body[i] for i in order])


def _symptoms(seed: int, cfg: CohortConfig, a: np.ndarray, clinical: pd.DataFrame) -> tuple[np.ndarray,
                                                                                            pd.DataFrame, list[str]]:
    """The symptom signal, the findings (0/1 per finding) and each patient's note."""
    n = len(a)
    r = seeded_rng(seed, _STREAMS["symptoms"])
    signal = a + cfg.tau["symptoms"] * r.standard_normal(n)
    z = signal / _signal_sd(cfg, "symptoms")
    draws = r.random((n, len(SYMPTOM_FINDINGS)))
    found = {}
    for j, (k, (b, c)) in enumerate(SYMPTOM_FINDINGS.items()):
        found[k] = draws[:, j] < 1 / (1 + np.exp(-(b + c * z)))
    found["night_pain"] &= found["pain"]
    table = pd.DataFrame({f"finding_{k}": v.astype(np.int64) for k, v in found.items()}, index=clinical.index)
    notes = [symptom_note({k: found[k][i] for k in found}, seeded_rng(seed, _STREAMS["notes"], int(pid[1:])),
                          row.age, row.sex, row.site)
             for i, (pid, row) in enumerate(zip(clinical.index, clinical.itertuples()))]
    return signal, table, notes


# --------------------------------------------------------------------------------------------
# the cohort
# --------------------------------------------------------------------------------------------
def _box_from_mask(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def synthetic_cohort(
    n_patients: int = 600,
    seed: int = 0,
    modalities: Sequence[str] | None = None,
    image_size: int | None = None,
    slide_size: int | None = None,
    config: CohortConfig | None = None,
    **overrides: Any,
) -> Cohort:
    """Generate the book's synthetic multimodal bone-tumour cohort (see this module's docstring).

    Taught in chapter 1.

    Parameters
    ----------
    n_patients : int
        Number of patients (a positive integer).
    seed : int
        Same seed, same bytes.
    modalities : sequence of str, optional
        Subset of ``("radiograph", "pathology", "labs", "genes", "clinical")`` (all by
        default), and ``"symptoms"`` for the symptom notes (made only when named).
    image_size, slide_size : int, optional
        Pixel size of the square radiograph and slide region (defaults 256 and 512).
    config : CohortConfig, optional
        The generative model (the book's defaults when not given).
    **overrides
        Any field of :class:`CohortConfig` as a keyword argument.

    Returns
    -------
    Cohort
        Tables made at once; images made when first asked for (``cohort.radiograph(i)``);
        the lesion boxes by drawing each lesion's mask once, without keeping it. With
        ``"symptoms"``: a ``symptoms`` table (column ``note``), and ``truth`` gains
        ``s_symptoms`` and one 0/1 column ``finding_<name>`` per finding of
        :data:`SYMPTOM_FINDINGS`; the other tables are the same bytes as without it.
        ``meta["source"]`` is :data:`SOURCE`, which lets :func:`oncolab.data.oracle` find
        :func:`oracle`.
    """
    n = check_integer("n_patients", n_patients)
    seed = check_integer("seed", seed, minimum=0)
    mods = check_modalities(modalities)
    cfg = config or CohortConfig()
    if image_size is not None:
        overrides["image_size"] = check_integer("image_size", image_size, minimum=32)
    if slide_size is not None:
        overrides["slide_size"] = check_integer("slide_size", slide_size, minimum=64)
    if overrides:
        cfg = CohortConfig.from_dict({**cfg.to_dict(), **overrides})
    if not np.isclose(sum(cfg.class_prior), 1.0) or min(cfg.class_prior) < 0:
        raise ValueError(f"class_prior must be non-negative and sum to 1, got {cfg.class_prior}")
    missing_keys = set(_SIGNAL_MODALITIES + (("symptoms",) if "symptoms" in mods else ())) - set(cfg.tau)
    if missing_keys:
        raise ValueError(f"tau needs a noise level for every modality; missing {sorted(missing_keys)}")
    for m, rate in cfg.modality_missing.items():
        check_modalities([m])
        if not 0 <= rate < 1:
            raise ValueError(f"modality_missing[{m!r}] must lie in [0, 1), got {rate}")

    ids = pd.Index([f"P{i:05d}" for i in range(n)], name="patient_id")

    # 1-3: diagnosis, aggressiveness, modality signals
    r = seeded_rng(seed, _STREAMS["labels"])
    y = r.choice(3, size=n, p=np.asarray(cfg.class_prior))
    a = np.asarray(cfg.mu)[y] + cfg.sigma_a * r.standard_normal(n)
    signals = {m: a + cfg.tau[m] * r.standard_normal(n) for m in _SIGNAL_MODALITIES}

    # 4: clinical
    r = seeded_rng(seed, _STREAMS["clinical"])
    age = np.clip(np.round(r.normal(48, 18, size=n)), 8, 92)
    sex = np.where(r.random(n) < 0.45, "F", "M")
    site = np.asarray(SITES)[r.choice(len(SITES), size=n, p=SITE_PRIOR)]
    center = np.asarray(CENTERS)[r.integers(0, len(CENTERS), size=n)]
    clinical = pd.DataFrame({"age": age, "sex": sex, "site": site, "center": center}, index=ids)

    # labs
    r = seeded_rng(seed, _STREAMS["labs"])
    sd_lab = _signal_sd(cfg, "labs")
    labs = {}
    for b in BIOMARKERS:
        z = r.standard_normal(n)
        v = b.median * np.exp(b.log_sd * z + b.effect * signals["labs"] / sd_lab)
        if b.name == "haemoglobin":
            v = v - 12.0 * (sex == "F")
        v = np.round(v, b.decimals)
        v[r.random(n) < cfg.lab_missing] = np.nan
        labs[b.name] = v
    labs = pd.DataFrame(labs, index=ids)

    # genes
    r = seeded_rng(seed, _STREAMS["genes"])
    base = r.normal(5.0, 1.2, size=len(GENES))
    loadings = np.array([load for genes, load in GENE_PATHWAYS.values() for _ in genes])
    pathway_of = np.array([k for k, (genes, _) in enumerate(GENE_PATHWAYS.values()) for _ in genes])
    pathway_noise = r.normal(0, 0.25, size=(n, len(GENE_PATHWAYS)))[:, pathway_of]
    gene_noise = r.normal(0, 0.35, size=(n, len(GENES)))
    size_factor = np.exp(r.normal(0, 0.3, size=(n, 1)))
    log_mean = base + loadings * signals["genes"][:, None] + pathway_noise + gene_noise
    counts = r.poisson(size_factor * np.exp(log_mean))
    genes = pd.DataFrame(counts, index=ids, columns=list(GENES))

    # 5: survival
    r = seeded_rng(seed, _STREAMS["survival"])
    eta = cfg.beta_a * a + cfg.beta_age * (age - 50) / 15
    t_event = cfg.weibull_scale * (-np.log(r.random(n)) / np.exp(eta)) ** (1 / cfg.weibull_shape)
    t_admin = r.uniform(*cfg.follow_up, size=n)
    t_loss = r.exponential(1 / cfg.loss_rate, size=n)
    t_cens = np.minimum(t_admin, t_loss)
    time = np.round(np.minimum(t_event, t_cens), 2)
    time = np.maximum(time, 0.01)
    event = t_event <= t_cens
    labels = pd.DataFrame({"diagnosis": np.asarray(DIAGNOSES)[y], "y": y, "time": time,
                           "event": event}, index=ids)

    # which modalities were acquired
    r = seeded_rng(seed, _STREAMS["missing"])
    presence = pd.DataFrame({m: np.ones(n, bool) for m in mods}, index=ids)
    for m, rate in cfg.modality_missing.items():
        if m in mods and m != "clinical":
            presence[m] = r.random(n) >= rate
    truth = pd.DataFrame({"aggressiveness": a, **{f"s_{m}": signals[m] for m in _SIGNAL_MODALITIES},
                          "true_risk": eta}, index=ids)
    if "symptoms" in mods:
        s_symptoms, found, notes = _symptoms(seed, cfg, a, clinical)
        truth = pd.concat([truth, pd.DataFrame({"s_symptoms": s_symptoms}, index=ids), found], axis=1)
        note = pd.Series(notes, index=ids, dtype=object)
        note[~presence["symptoms"].to_numpy()] = None

    tables: dict[str, pd.DataFrame] = {"labels": labels, "presence": presence, "truth": truth}
    if "clinical" in mods:
        tables["clinical"] = clinical
    if "labs" in mods:
        labs.loc[~presence["labs"]] = np.nan
        tables["labs"] = labs
    if "genes" in mods:
        tables["genes"] = genes
    if "symptoms" in mods:
        tables["symptoms"] = pd.DataFrame({"note": note}, index=ids)
    images = None
    if "radiograph" in mods or "pathology" in mods:
        images = SyntheticImages(seed, cfg, truth, clinical)
    if "radiograph" in mods:
        # the lesion's extent, from its mask (drawn once per patient, not kept)
        sz = cfg.image_size
        boxes = np.zeros((n, 4))
        u = ndtr(truth["s_radiograph"].to_numpy() / _signal_sd(cfg, "radiograph"))
        for i, pid in enumerate(ids):
            boxes[i] = _box_from_mask(_lesion_mask_only(u[i], seed, int(pid[1:]), sz))
        tables["boxes"] = pd.DataFrame(boxes, index=ids, columns=["x0", "y0", "x1", "y1"])
    meta = {"source": SOURCE, "seed": seed, "n_patients": n, "modalities": list(mods),
            "classes": list(DIAGNOSES), "ordered": True, "config": cfg.to_dict()}
    return Cohort(tables, images=images, meta=meta)


def _lesion_mask_only(u: float, seed: int, number: int, size: int) -> np.ndarray:
    """The lesion mask of one patient, from the same geometry stream as its radiograph."""
    return lesion_mask(lesion_geometry(float(u), seeded_rng(seed, _STREAMS["geometry"], number)), size)


# --------------------------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------------------------
def _posterior(s: np.ndarray, cfg: CohortConfig, noise_var: float) -> np.ndarray:
    mu = np.asarray(cfg.mu)
    var = cfg.sigma_a**2 + noise_var
    logp = np.log(np.asarray(cfg.class_prior)) - 0.5 * (s[:, None] - mu) ** 2 / var
    logp -= logp.max(1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(1, keepdims=True)


def _fused_signal(signals: dict[str, np.ndarray], cfg: CohortConfig, mods: Sequence[str]):
    w = np.array([1 / cfg.tau[m] ** 2 for m in mods])
    s = sum(wi * signals[m] for wi, m in zip(w, mods)) / w.sum()
    return s, 1 / w.sum()


def diagnosis_posterior(signals: Mapping[str, Any], config: CohortConfig) -> np.ndarray:
    """The Bayes rule of the generative model: P(diagnosis | the signals of some modalities).

    Taught in chapter 1 (the oracle, and its first exercise). With ``w_m = 1 / tau_m^2`` the
    weighted mean ``sbar`` of the given signals is sufficient, and ``sbar | y ~ Normal(mu[y],
    sigma_a^2 + 1 / sum(w))``, so the posterior has a closed form.

    Parameters
    ----------
    signals : mapping of str to array-like
        For each modality used (some of radiograph, pathology, labs, genes), its signal
        ``s_m`` per patient: the ``truth`` table's ``s_<modality>`` column.
    config : CohortConfig
        The generative model, e.g. ``CohortConfig.from_dict(cohort.meta["config"])``.

    Returns
    -------
    numpy.ndarray
        (n, 3) probabilities of benign, intermediate, malignant; each row sums to 1.
    """
    if not signals:
        raise ValueError(f"signals is empty; expected a signal for some of {list(_SIGNAL_MODALITIES)}")
    unknown = [m for m in signals if m not in config.tau]
    if unknown:
        raise ValueError(f"no signal noise level for modality {unknown[0]!r}; expected some of {sorted(config.tau)}")
    arrays = {m: np.asarray(v, dtype=float) for m, v in signals.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"every signal must be 1-D with one value per patient, got shapes "
                         f"{ {m: a.shape for m, a in arrays.items()} }")
    s, v = _fused_signal(arrays, config, list(arrays))
    return _posterior(s, config, v)


def check_generated(cohort: Cohort, source: str, generator: str) -> None:
    """Refuse a cohort that a given generator did not make (an oracle needs its generator's truth).

    Taught in chapter 1.

    Parameters
    ----------
    cohort : Cohort
        The cohort to check.
    source : str
        The ``meta["source"]`` the generator writes (its module's ``SOURCE``).
    generator : str
        The generator's name, for the error message (e.g. ``"synthetic_cohort"``).

    Returns
    -------
    None
        Raises TypeError for something that is not a cohort, ValueError for a cohort from
        elsewhere (another generator, a real dataset, a folder without the truth table).
    """
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected a Cohort made by {generator}, got {type(cohort).__name__}")
    got = cohort.meta.get("source")
    if got != source or "truth" not in cohort.tables or "config" not in cohort.meta:
        raise ValueError(
            f"expected a cohort made by {generator} (meta['source'] == {source!r}, a 'truth' table and "
            f"meta['config']); got meta['source'] == {got!r}, tables {sorted(cohort.tables)}"
            f"{'' if 'config' in cohort.meta else ' and no config'}. Only a synthetic cohort has an "
            "oracle: a real dataset's truth is unknown")


def oracle(cohort: Cohort, n_sim: int = 200_000, seed: int = 12345) -> dict[str, Any]:
    """Ceilings for a bone-tumour cohort: Bayes accuracy and macro AUC, per modality and fused; C-index.

    Taught in chapter 1; every later chapter sets its results beside it. Usually called as
    :func:`oncolab.data.oracle`, which finds this function from ``cohort.meta["source"]``.

    Parameters
    ----------
    cohort : Cohort
        A cohort made by :func:`synthetic_cohort` (or a subset of one, or one loaded back
        from its folder); any other cohort is refused with a ValueError.
    n_sim : int
        Simulated patients for the population values.
    seed : int
        Seed of that simulation.

    Returns
    -------
    dict
        * ``bayes_accuracy``, ``bayes_auc``: the Bayes rule given every imaging/molecular
          modality's signal (and the symptom signal ``s_symptoms`` in a cohort with symptom
          notes), on this cohort's patients;
        * ``population_bayes_accuracy``, ``population_bayes_auc``: the same over ``n_sim``
          simulated patients (the expected value, free of this cohort's sampling noise);
        * ``by_modality``: {modality: {"accuracy", "auc"}} for the Bayes rule given one modality
          (``symptoms`` too in a cohort with symptom notes);
        * ``c_index``: Harrell's C of the true risk ``eta`` against the observed (time, event);
        * ``c_index_signals``: Harrell's C of the best risk predictable from the signals
          (``E[eta | signals]``), a tighter ceiling for models of the observed data;
        * ``n``: the number of patients.
    """
    check_generated(cohort, SOURCE, "synthetic_cohort")
    n_sim = check_integer("n_sim", n_sim)
    from sklearn.metrics import accuracy_score
    from sksurv.metrics import concordance_index_censored

    from ..metrics import macro_auc

    cfg = CohortConfig.from_dict(cohort.meta["config"])
    truth = cohort.truth
    y = cohort.y
    mods = _SIGNAL_MODALITIES + (("symptoms",) if "s_symptoms" in truth.columns else ())
    signals = {m: truth[f"s_{m}"].to_numpy() for m in mods}

    def scores(p, yy):
        out = {"accuracy": float(accuracy_score(yy, p.argmax(1)))}
        out["auc"] = macro_auc(yy, p) if len(np.unique(yy)) == 3 else float("nan")
        return out

    s, v = _fused_signal(signals, cfg, mods)
    fused = scores(_posterior(s, cfg, v), y)
    by_mod = {m: scores(_posterior(signals[m], cfg, cfg.tau[m] ** 2), y) for m in mods}

    # population values by simulation (signals only: cheap)
    r = np.random.default_rng(seed)
    ys = r.choice(3, size=n_sim, p=np.asarray(cfg.class_prior))
    a = np.asarray(cfg.mu)[ys] + cfg.sigma_a * r.standard_normal(n_sim)
    sim = {m: a + cfg.tau[m] * r.standard_normal(n_sim) for m in mods}
    ss, vv = _fused_signal(sim, cfg, mods)
    pop = scores(_posterior(ss, cfg, vv), ys)

    ev = cohort.labels["event"].to_numpy(bool)
    tt = cohort.labels["time"].to_numpy(float)
    c_true = concordance_index_censored(ev, tt, truth["true_risk"].to_numpy())[0]
    # E[a | signals]: posterior mean of a under the Gaussian mixture
    post = _posterior(s, cfg, v)
    mu = np.asarray(cfg.mu)
    shrink = cfg.sigma_a**2 / (cfg.sigma_a**2 + v)
    ea = (post * (mu + shrink * (s[:, None] - mu))).sum(1)
    age = cohort.clinical["age"].to_numpy() if "clinical" in cohort.tables else np.full(len(y), 50.0)
    c_sig = concordance_index_censored(ev, tt, cfg.beta_a * ea + cfg.beta_age * (age - 50) / 15)[0]
    return {
        "bayes_accuracy": fused["accuracy"], "bayes_auc": fused["auc"],
        "population_bayes_accuracy": pop["accuracy"], "population_bayes_auc": pop["auc"],
        "by_modality": by_mod,
        "c_index": float(c_true), "c_index_signals": float(c_sig),
        "n": len(y),
    }
