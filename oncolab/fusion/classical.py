"""Classical classifiers that save as arrays: a random forest and a kernel SVM.

Taught in chapter 10 ("Fusion strategies"), where MEDFUSION's route (random forest and SVM on
structured data, fused with an image model) is a baseline row; the complete system uses them
as stages (chapter 12).

scikit-learn fits both; what a fitted model *is* is then copied out as plain arrays, and
prediction is computed from those arrays alone, so that a model saves into
``model.safetensors`` and loads without pickle (loading runs no code):

* :class:`RandomForest`: every tree as five arrays over its nodes (left child, right child,
  feature, threshold, class fractions), all trees concatenated. A patient walks each tree
  from its root, going left where ``x[feature] <= threshold`` (on float32 values, as
  scikit-learn compares), to a leaf; the forest's probabilities are the mean of the leaves'
  class fractions. This is ``RandomForestClassifier.predict_proba``, checked to agree.
* :class:`KernelSVM`: standardised inputs, an RBF-kernel SVM with one binary machine per
  pair of classes (``SVC``), and a multinomial logistic regression that turns the pairwise
  decision values into probabilities. The decision value of the pair ``(i, j)`` is
  ``sum_s alpha_s K(x_s, x) + b_ij`` over the support vectors of the two classes, with
  ``K(u, v) = exp(-gamma |u - v|^2)``; the logistic regression is fitted on out-of-fold
  decision values (Platt's idea, with a multinomial model in place of pairwise sigmoids),
  so that it learns how far to trust a decision value on patients the SVM did not see.

Each has ``fit(X, y, n_classes)``, ``predict_proba(X)``, ``state()`` and ``from_state()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["KernelSVM", "RandomForest"]


def _check_X(X, what: str, n_features: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"{what}: X must be a finite 2-D array (patients x features), got shape {X.shape}"
                         f"{'' if X.ndim != 2 else ' with NaN or infinite values'}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{what}: X has {X.shape[1]} features; the model was fitted on {n_features}")
    return X


def _check_y(y, n: int, n_classes: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iu" or (len(y) and y.min() < 0):
        raise ValueError(f"y must hold one class number >= 0 per patient ({n}), got shape {y.shape}, dtype {y.dtype}")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if len(y) and y.max() >= k:
        raise ValueError(f"y has class {int(y.max())} but n_classes is {k}")
    if len(np.unique(y)) < 2:
        raise ValueError(f"fitting needs at least two classes among the patients, got {np.unique(y).tolist()}")
    return y.astype(np.int64), k


class RandomForest:
    """A random forest (scikit-learn's) whose trees are kept as arrays.

    Taught in chapter 10 (the module docstring says how it predicts).

    Parameters
    ----------
    n_trees : int
        Number of trees.
    min_samples_leaf : int
        The fewest training patients in a leaf.
    max_features : {"sqrt", "log2"} or float
        Features tried at each split (as in scikit-learn).
    seed : int
        Seeds the bootstrap samples and the features tried: same seed, same trees.
    """

    def __init__(self, n_trees: int = 300, min_samples_leaf: int = 3, max_features: str | float = "sqrt",
                 seed: int = 0):
        if isinstance(n_trees, bool) or not isinstance(n_trees, int) or n_trees < 1:
            raise ValueError(f"n_trees must be a positive integer, got {n_trees!r}")
        if isinstance(min_samples_leaf, bool) or not isinstance(min_samples_leaf, int) or min_samples_leaf < 1:
            raise ValueError(f"min_samples_leaf must be a positive integer, got {min_samples_leaf!r}")
        self.n_trees, self.min_samples_leaf = n_trees, min_samples_leaf
        self.max_features, self.seed = max_features, seed
        self.arrays_: dict[str, np.ndarray] | None = None

    def fit(self, X, y, n_classes: int | None = None) -> RandomForest:
        """Grow the forest with scikit-learn and keep its trees as arrays.

        Parameters
        ----------
        X : array-like (n, d)
            Finite features.
        y : array-like of int (n,)
            Classes, numbered from 0.
        n_classes : int, optional
            Number of classes (default: the largest class in ``y`` plus one); a class no
            training patient has gets probability 0.

        Returns
        -------
        RandomForest
            ``self``, fitted.
        """
        from sklearn.ensemble import RandomForestClassifier

        X = _check_X(X, "RandomForest.fit")
        y, k = _check_y(y, len(X), n_classes)
        rf = RandomForestClassifier(self.n_trees, min_samples_leaf=self.min_samples_leaf,
                                    max_features=self.max_features, random_state=self.seed, n_jobs=1).fit(X, y)
        left, right, feature, threshold, value, roots = [], [], [], [], [], []
        offset = 0
        for tree in rf.estimators_:
            t = tree.tree_
            leaf = t.children_left == -1
            roots.append(offset)
            # children as positions in the concatenated arrays; a leaf points to itself
            left.append(np.where(leaf, np.arange(t.node_count), t.children_left) + offset)
            right.append(np.where(leaf, np.arange(t.node_count), t.children_right) + offset)
            feature.append(np.where(leaf, 0, t.feature))
            threshold.append(np.where(leaf, np.inf, t.threshold))
            frac = np.zeros((t.node_count, k))
            frac[:, rf.classes_] = t.value[:, 0, :]
            value.append(frac / frac.sum(1, keepdims=True))
            offset += t.node_count
        self.arrays_ = {"left": np.concatenate(left).astype(np.int64),
                        "right": np.concatenate(right).astype(np.int64),
                        "feature": np.concatenate(feature).astype(np.int64),
                        "threshold": np.concatenate(threshold).astype(np.float64),
                        "value": np.concatenate(value).astype(np.float64),
                        "roots": np.asarray(roots, np.int64), "n_features": np.array([X.shape[1]], np.int64)}
        return self

    def _check_fitted(self) -> dict[str, np.ndarray]:
        if self.arrays_ is None:
            raise RuntimeError("this RandomForest is not fitted: call fit(X, y) first")
        return self.arrays_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: the mean over the trees of the class fractions of the leaf each patient reaches.

        Parameters
        ----------
        X : array-like (n, d)
            Finite features, the columns of ``fit``.

        Returns
        -------
        numpy.ndarray
            float64 (n, n_classes), rows summing to 1.
        """
        a = self._check_fitted()
        X = _check_X(X, "RandomForest.predict_proba", int(a["n_features"][0])).astype(np.float32)
        node = np.broadcast_to(a["roots"], (len(X), len(a["roots"]))).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            go_left = X[rows, a["feature"][node]] <= a["threshold"][node]
            nxt = np.where(go_left, a["left"][node], a["right"][node])
            if np.array_equal(nxt, node):
                break
            node = nxt
        return a["value"][node].mean(1)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The settings (JSON-ready) and the trees' arrays, for saving without pickle.

        Returns
        -------
        tuple of (dict, dict of str to numpy.ndarray)
        """
        return ({"n_trees": self.n_trees, "min_samples_leaf": self.min_samples_leaf,
                 "max_features": self.max_features, "seed": self.seed}, dict(self._check_fitted()))

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> RandomForest:
        """The fitted forest of :meth:`state`.

        Parameters
        ----------
        config : dict
            The settings.
        arrays : dict of str to numpy.ndarray
            The trees' arrays.

        Returns
        -------
        RandomForest
        """
        model = cls(**config)
        need = ("left", "right", "feature", "threshold", "value", "roots", "n_features")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise ValueError(f"the saved random forest lacks the arrays {missing}")
        model.arrays_ = {k: np.asarray(arrays[k]) for k in need}
        return model


def _proba_from_logits(z: np.ndarray) -> np.ndarray:
    """Softmax over classes; one column of logits is a binary model's log-odds of the second class."""
    if z.shape[1] == 1:
        p1 = 1 / (1 + np.exp(-z[:, 0]))
        return np.stack([1 - p1, p1], 1)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


class KernelSVM:
    """Standardisation, an RBF-kernel SVM (one machine per pair of classes) and calibrated probabilities.

    Taught in chapter 10 (the module docstring says how it predicts).

    Parameters
    ----------
    C : float
        The SVM's penalty on margin violations.
    gamma : "scale" or float
        Kernel width: ``"scale"`` is ``1 / n_features`` on the standardised inputs (as
        scikit-learn's ``"scale"``, whose variance is then 1).
    calibration_folds : int
        Folds of the out-of-fold decision values the probabilities are fitted on.
    seed : int
        Seeds the calibration folds.
    """

    def __init__(self, C: float = 1.0, gamma: str | float = "scale", calibration_folds: int = 5, seed: int = 0):
        if not isinstance(C, int | float) or isinstance(C, bool) or C <= 0:
            raise ValueError(f"C must be a positive number, got {C!r}")
        if gamma != "scale" and (not isinstance(gamma, int | float) or isinstance(gamma, bool) or gamma <= 0):
            raise ValueError(f"gamma must be 'scale' or a positive number, got {gamma!r}")
        if isinstance(calibration_folds, bool) or not isinstance(calibration_folds, int) or calibration_folds < 2:
            raise ValueError(f"calibration_folds must be an integer >= 2, got {calibration_folds!r}")
        self.C, self.gamma, self.calibration_folds, self.seed = C, gamma, calibration_folds, seed
        self.arrays_: dict[str, np.ndarray] | None = None

    def _svc(self, gamma: float):
        from sklearn.svm import SVC

        return SVC(C=self.C, kernel="rbf", gamma=gamma, decision_function_shape="ovo")

    @staticmethod
    def pair_decisions(Xs: np.ndarray, a: dict[str, np.ndarray]) -> np.ndarray:
        """Decision values of every pair of classes, ``(n, n_pairs)``, from the SVM's arrays.

        Taught in chapter 10. Pairs are ordered (0, 1), (0, 2), ..., (1, 2), ... over the
        classes the SVM saw; the values are those of scikit-learn's ``SVC.decision_function``
        with ``decision_function_shape="ovo"``, sign convention included.

        Parameters
        ----------
        Xs : numpy.ndarray (n, d)
            Standardised inputs.
        a : dict of str to numpy.ndarray
            ``support`` (support vectors), ``dual`` (dual coefficients, scikit-learn's
            ``dual_coef_`` layout), ``intercept``, ``n_support`` and ``gamma``.

        Returns
        -------
        numpy.ndarray
        """
        sv, dual, n_sup = a["support"], a["dual"], a["n_support"]
        d2 = (Xs**2).sum(1)[:, None] + (sv**2).sum(1)[None, :] - 2 * Xs @ sv.T
        K = np.exp(-float(a["gamma"][0]) * np.maximum(d2, 0.0))
        start = np.concatenate([[0], np.cumsum(n_sup)])
        out, p = [], 0
        for i in range(len(n_sup)):
            for j in range(i + 1, len(n_sup)):
                si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
                out.append(K[:, si] @ dual[j - 1, si] + K[:, sj] @ dual[i, sj] + a["intercept"][p])
                p += 1
        return np.stack(out, 1)

    def fit(self, X, y, n_classes: int | None = None) -> KernelSVM:
        """Standardise, fit the SVM, and fit the probabilities on out-of-fold decision values.

        Parameters
        ----------
        X : array-like (n, d)
            Finite features.
        y : array-like of int (n,)
            Classes, numbered from 0.
        n_classes : int, optional
            Number of classes (default: the largest class in ``y`` plus one); a class no
            training patient has gets probability 0.

        Returns
        -------
        KernelSVM
            ``self``, fitted.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        X = _check_X(X, "KernelSVM.fit")
        y, k = _check_y(y, len(X), n_classes)
        mean, sd = X.mean(0), X.std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        Xs = (X - mean) / sd
        gamma = 1.0 / X.shape[1] if self.gamma == "scale" else float(self.gamma)
        classes, counts = np.unique(y, return_counts=True)
        folds = min(self.calibration_folds, int(counts.min()))
        if folds < 2:
            raise ValueError(f"calibrating the SVM needs at least 2 patients of every class, got counts "
                             f"{dict(zip(classes.tolist(), counts.tolist()))}")
        oof = np.zeros((len(y), len(classes) * (len(classes) - 1) // 2))
        skf = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
        for fit_rows, held in skf.split(Xs, y):
            oof[held] = self._arrays_of(self._svc(gamma).fit(Xs[fit_rows], y[fit_rows]), gamma, classes, Xs[held])
        svc = self._svc(gamma).fit(Xs, y)
        a = self._arrays_of(svc, gamma, classes)
        lr = LogisticRegression(max_iter=2000).fit(oof, y)
        a.update({"mean": mean, "scale": sd, "classes": classes.astype(np.int64),
                  "calib_coef": lr.coef_.astype(np.float64), "calib_intercept": lr.intercept_.astype(np.float64),
                  "n_classes": np.array([k], np.int64)})
        self.arrays_ = a
        return self

    def _arrays_of(self, svc, gamma: float, classes: np.ndarray, X_held: np.ndarray | None = None):
        """The SVM's arrays, or (with ``X_held``) its pair decisions there, over the classes of the full fit."""
        if not np.array_equal(svc.classes_, classes):   # a fold lacking a class: cannot happen with stratified folds
            raise ValueError(f"a calibration fold has classes {svc.classes_.tolist()}, expected {classes.tolist()}")
        a = {"support": svc.support_vectors_.astype(np.float64), "dual": svc.dual_coef_.astype(np.float64),
             "intercept": svc.intercept_.astype(np.float64), "n_support": svc.n_support_.astype(np.int64),
             "gamma": np.array([gamma], np.float64)}
        return a if X_held is None else self.pair_decisions(X_held, a)

    def _check_fitted(self) -> dict[str, np.ndarray]:
        if self.arrays_ is None:
            raise RuntimeError("this KernelSVM is not fitted: call fit(X, y) first")
        return self.arrays_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities from the calibrated pairwise decision values.

        Parameters
        ----------
        X : array-like (n, d)
            Finite features, the columns of ``fit``.

        Returns
        -------
        numpy.ndarray
            float64 (n, n_classes), rows summing to 1.
        """
        a = self._check_fitted()
        X = _check_X(X, "KernelSVM.predict_proba", len(a["mean"]))
        D = self.pair_decisions((X - a["mean"]) / a["scale"], a)
        p = _proba_from_logits(D @ a["calib_coef"].T + a["calib_intercept"])
        out = np.zeros((len(X), int(a["n_classes"][0])))
        out[:, a["classes"]] = p
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The settings (JSON-ready) and the fitted arrays, for saving without pickle.

        Returns
        -------
        tuple of (dict, dict of str to numpy.ndarray)
        """
        return ({"C": self.C, "gamma": self.gamma, "calibration_folds": self.calibration_folds, "seed": self.seed},
                dict(self._check_fitted()))

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> KernelSVM:
        """The fitted SVM of :meth:`state`.

        Parameters
        ----------
        config : dict
            The settings.
        arrays : dict of str to numpy.ndarray
            The fitted arrays.

        Returns
        -------
        KernelSVM
        """
        model = cls(**config)
        need = ("support", "dual", "intercept", "n_support", "gamma", "mean", "scale", "classes", "calib_coef",
                "calib_intercept", "n_classes")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise ValueError(f"the saved SVM lacks the arrays {missing}")
        model.arrays_ = {k: np.asarray(arrays[k]) for k in need}
        return model
