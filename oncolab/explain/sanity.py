"""Is an explanation real? Sanity checks and agreement with the truth; chapter 11.

* :func:`randomisation_test` (Adebayo et al. 2018, "Sanity checks for saliency maps"): an
  explanation of a model must change when the model's weights are replaced by random ones.
  The maps of the trained and the randomised model are compared by Spearman rank
  correlation; a high similarity means the explainer does not look at the model (an edge
  detector would pass an eye test and fail this one).
* :func:`deletion_curve` (Petsiuk et al. 2018): remove inputs in the order an attribution
  ranks them and watch the model's score fall; a real attribution falls faster than a random
  order.
* :func:`lesion_hit_rate` and :func:`truth_ranks`: because the synthetic cohort knows where
  the lesion is and which genes/labs carry signal, an explanation can be scored against the
  truth.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from torch import nn

__all__ = ["deletion_curve", "lesion_hit_rate", "randomise_weights", "randomisation_test", "truth_ranks"]


def randomise_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` re-initialised: every layer's own initialisation, drawn afresh.

    Each sub-module with a ``reset_parameters`` method (linear, convolution, normalisation
    layers, ...) calls it; parameters held by other modules (a transformer's class token and
    position embedding) are drawn from ``N(0, 0.02^2)``. This is the "full randomisation" of
    Adebayo et al. 2018. Same seed, same weights; the global random state is left as it was.
    """
    import torch

    rnd = copy.deepcopy(model)
    covered: set[int] = set()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        # offset, so as not to repeat the draws of a model built right after torch.manual_seed(seed)
        torch.manual_seed(int(seed) + 104729)
        for mod in rnd.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
                covered.update(id(p) for p in mod.parameters(recurse=False))
            if hasattr(mod, "reset_running_stats"):
                mod.reset_running_stats()
        for p in rnd.parameters():
            if id(p) not in covered:
                p.normal_(0.0, 0.02)
    return rnd


def randomisation_test(explainer: Callable[[nn.Module], np.ndarray], model: nn.Module, threshold: float = 0.5,
                       seed: int = 0) -> dict:
    """The model-randomisation sanity check; chapter 11.

    ``explainer(model)`` returns maps (N, ...) for a fixed batch of inputs. It is called on the
    trained model and on :func:`randomise_weights` of it; for each input the Spearman
    correlation between the two maps is computed (a constant map counts as similarity 1: it
    did not change; a map that turns flat while the trained one was not counts as 0). The
    explainer ``passed`` when the median similarity is below ``threshold``. Returns
    ``similarity`` (per input), ``median_similarity``, ``passed`` and
    ``flat_after_randomisation`` (how many maps of the randomised model are constant, which
    happens to Grad-CAM when no channel has a positive weight).
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    a = np.asarray(explainer(model), dtype=np.float64)
    b = np.asarray(explainer(randomise_weights(model, seed)), dtype=np.float64)
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"the explainer must return (N, ...) maps of one shape, got {a.shape} and {b.shape}")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    sim = np.empty(len(a))
    flat = np.ptp(b, axis=1) == 0
    for i in range(len(a)):
        if np.ptp(a[i]) == 0 or np.ptp(b[i]) == 0:
            sim[i] = 1.0 if np.allclose(a[i], b[i]) else 0.0
        else:
            sim[i] = stats.spearmanr(a[i], b[i]).statistic
    med = float(np.median(sim))
    return {"similarity": sim, "median_similarity": med, "threshold": threshold, "passed": bool(med < threshold),
            "flat_after_randomisation": int(flat.sum())}


def deletion_curve(score: Callable[[np.ndarray], np.ndarray], x, attribution, baseline=0.0, steps: int = 10,
                   seed: int | None = None) -> pd.DataFrame:
    """Score as the most important inputs are deleted, a fraction at a time; chapter 11.

    ``x`` is (n, d) (images flattened, or tabular rows), ``attribution`` the same shape; each
    row's inputs are replaced by ``baseline`` in decreasing order of attribution (with
    ``seed`` given, in a random order instead: the reference curve). ``score(X)`` returns one
    number per row (e.g. the probability of the explained class). Returns one row per
    fraction deleted with the mean score, and the area under the curve in ``df.attrs['auc']``
    (lower = the attribution found what the model uses).
    """
    x = np.asarray(x, dtype=np.float64)
    att = np.asarray(attribution, dtype=np.float64)
    if x.ndim != 2 or att.shape != x.shape:
        raise ValueError(f"x and attribution must both be (n, d) of one shape, got {x.shape} and {att.shape}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    n, d = x.shape
    if seed is None:
        order = np.argsort(-att, axis=1, kind="stable")
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(rng.random((n, d)), axis=1)
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float64), x.shape)
    fracs = np.linspace(0, 1, steps + 1)
    rows = []
    for f in fracs:
        k = int(round(f * d))
        xd = x.copy()
        if k:
            cols = order[:, :k]
            r = np.arange(n)[:, None]
            xd[r, cols] = base[r, cols]
        rows.append({"fraction_deleted": f, "score": float(np.mean(score(xd)))})
    df = pd.DataFrame(rows)
    df.attrs["auc"] = float(np.trapezoid(df["score"], df["fraction_deleted"]))
    return df


def lesion_hit_rate(heatmaps, masks, tolerance: int = 0) -> dict:
    """Share of maps whose maximum lies on the true lesion, with its baselines; chapter 11.

    A thin name for :func:`oncolab.vision.pointing_game` (chapter 2), so that every check of
    chapter 11 is found in one place.
    """
    from ..vision.gradcam import pointing_game

    return pointing_game(heatmaps, masks, tolerance=tolerance)


def truth_ranks(importance: pd.Series, informative: Sequence[str]) -> pd.DataFrame:
    """Where the truly informative features land in an importance ranking; chapter 11.

    ``importance`` is indexed by feature name (higher = more important). Returns, for each
    informative feature, its rank (1 = top), and in ``df.attrs``: ``precision_at_k`` (share
    of the top ``k = len(informative)`` that are informative), ``chance`` (what a random
    ranking gives on average: ``k / n_features``) and ``mean_rank``.
    """
    imp = pd.Series(importance, dtype=float)
    unknown = [g for g in informative if g not in imp.index]
    if unknown:
        raise ValueError(f"informative features {unknown[:5]} are not in the importance index")
    if not len(informative):
        raise ValueError("informative must name at least one feature")
    rank = imp.rank(ascending=False, method="min").astype(int)
    k = len(informative)
    top = set(rank.sort_values(kind="stable").index[:k])
    df = pd.DataFrame({"rank": rank[list(informative)]}).sort_values("rank")
    df.attrs.update(precision_at_k=len(top & set(informative)) / k, chance=k / len(imp),
                    mean_rank=float(df["rank"].mean()), n_features=len(imp))
    return df
