"""Gene-expression and clinical encoders.

Taught in chapter 7 ("Gene expression"); chapter 10 fuses their embeddings and chapter 12
plugs them into the complete system.

RNA-seq gives a *count* of reads per gene. Counts depend on how deeply the sample was
sequenced (the library size), so they are first made comparable (counts per million),
then put on a log scale (``log2(CPM + 1)``: expression changes are multiplicative), then
standardised per gene with a mean and spread fitted **on the training patients only**.
From there: PCA (a linear embedding), a small self-normalising network (SELU, Klambauer et
al. 2017) or an autoencoder (an embedding learned without labels).

Clinical variables (age, sex, site, center) become standardised numbers and category indices
(:class:`ClinicalPreprocessor`): as one-hot columns they feed the Cox model of chapter 8 and the
complete system, through :class:`oncolab.features.ClinicalFeatures`; :class:`ClinicalEncoder`
maps the indices to learned embedding vectors instead.
"""

from .clinical import ClinicalEncoder, ClinicalPreprocessor
from .expression import (
    PCA,
    GeneAutoencoder,
    GenePreprocessor,
    SNNEncoder,
    cpm,
    fit_autoencoder,
    log_cpm,
)

__all__ = ["PCA", "ClinicalEncoder", "ClinicalPreprocessor", "GeneAutoencoder", "GenePreprocessor",
           "SNNEncoder", "cpm", "fit_autoencoder", "log_cpm"]
