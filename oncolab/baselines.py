"""Simple per-modality features and baselines: the floor every model is measured from.

Taught in chapter 1 (where they show that the oracle is well above what a simple model of
any single modality reaches); reused as reference rows in later chapters.

Features are hand-made and cheap: an intensity histogram of the radiograph, colour and
haematoxylin statistics of the slide region, the log lab panel, log gene counts, and the
clinical variables one-hot encoded. Each baseline is a scikit-learn pipeline (imputation and
scaling fitted on the training patients only) with a logistic regression on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .data.cohort import Cohort

__all__ = ["modality_features", "per_modality_baselines", "radiograph_features", "slide_features"]


def radiograph_features(image: np.ndarray, bins: int = 16) -> np.ndarray:
    """Intensity histogram (``bins`` fractions) plus the fraction of very dark pixels."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"a radiograph is a 2-D grayscale array, got shape {img.shape}")
    hist = np.histogram(img, bins=bins, range=(0, 255))[0] / img.size
    return np.concatenate([hist, [(img < 60).mean(), (img < 90).mean()]])


def slide_features(image: np.ndarray) -> np.ndarray:
    """Colour means and spreads, tissue fraction, and haematoxylin statistics of a slide region.

    Haematoxylin is separated by colour deconvolution (scikit-image's ``rgb2hed``, Ruifrok &
    Johnston stain vectors).
    """
    from skimage.color import rgb2hed

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"a slide region is an RGB array (H, W, 3), got shape {img.shape}")
    rgb = img.astype(np.float32) / 255
    tissue = rgb.mean(2) < 0.85
    h = rgb2hed(img)[..., 0]
    ht = h[tissue] if tissue.any() else h.ravel()
    return np.concatenate([rgb.reshape(-1, 3).mean(0), rgb.reshape(-1, 3).std(0), [tissue.mean()],
                           [ht.mean(), ht.std(), np.quantile(ht, 0.9), (ht > np.quantile(h, 0.95)).mean()]])


def modality_features(cohort: Cohort, modality: str, progress: bool = False) -> np.ndarray:
    """A feature matrix (n_patients, d) for one modality; NaN where a lab was not measured."""
    ids = cohort.ids
    it = range(len(ids))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"{modality} features")
    if modality == "radiograph":
        return np.stack([radiograph_features(cohort.radiograph(i)) for i in it])
    if modality == "pathology":
        return np.stack([slide_features(cohort.slide(i)) for i in it])
    if modality == "labs":
        return np.log(cohort.labs.to_numpy(float) + 1e-3)
    if modality == "genes":
        return np.log1p(cohort.genes.to_numpy(float))
    if modality == "clinical":
        return pd.get_dummies(cohort.clinical, columns=["sex", "site", "center"], dtype=float).to_numpy()
    raise ValueError(f"unknown modality {modality!r}; expected radiograph, pathology, labs, genes or clinical")


def _model(seed: int):
    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=0.5, max_iter=2000,
                                                                              random_state=seed))


def per_modality_baselines(cohort: Cohort, train: Sequence[int], test: Sequence[int],
                           modalities: Sequence[str] = ("radiograph", "pathology", "labs", "genes"),
                           include_fused: bool = True, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Logistic regression on each modality's simple features (and on all of them concatenated).

    Returns a table with held-out accuracy and macro one-vs-rest AUC per modality, beside the
    oracle for the same information on the same test patients when the cohort has one.
    """
    y = cohort.y
    feats = {m: modality_features(cohort, m, progress=progress) for m in modalities}
    oracle = cohort.subset(test).oracle() if "truth" in cohort.tables else None
    rows = []
    sets = [(m, [m]) for m in modalities] + ([("all (concatenated)", list(modalities))] if include_fused else [])
    for name, mods in sets:
        X = np.hstack([feats[m] for m in mods])
        model = _model(seed).fit(X[train], y[train])
        p = model.predict_proba(X[test])
        row = {"modality": name, "accuracy": accuracy_score(y[test], p.argmax(1)),
               "macro AUC": roc_auc_score(y[test], p, multi_class="ovr", average="macro")}
        if oracle is not None:
            row["oracle AUC"] = (oracle["by_modality"][name]["auc"] if name in oracle["by_modality"]
                                 else oracle["bayes_auc"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("modality")
