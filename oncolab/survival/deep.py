"""Deep survival models in PyTorch: DeepSurv and a discrete-time (logistic hazard) network.

Taught in chapter 9 ("Deep survival models"). Both follow scikit-survival's API (see
:mod:`oncolab.survival.base`) so that they drop into Pipelines and cross-validation beside
the Cox model and the ensembles.

* :class:`DeepSurv` (Katzman et al. 2018): an MLP ``g(x)`` replaces ``x' beta`` in the Cox
  model and is trained on the negative partial likelihood (:func:`~oncolab.survival.cox_ph_loss`);
  the baseline hazard is Breslow's, so survival curves are ``exp(-H0(t) exp(g(x)))``.
* :class:`DiscreteTimeSurvival` (logistic hazard; Gensheimer and Narasimhan 2019, Kvamme and
  Borgan 2021): time is cut into bins at quantiles of the event times
  (:mod:`oncolab.survival.binning`, which states the edge convention); the network outputs one
  logit per bin, the conditional probability of the event in that bin given survival to its
  start; trained on :func:`~oncolab.survival.logistic_hazard_nll`. No proportional-hazards
  assumption. Its risk score is minus the restricted mean survival time up to the last bin.

Inputs are standardised inside the model (means and scales of the training data). Training is
full-batch Adam with weight decay (:func:`oncolab.training.fit`, on one CPU thread); with
``val_fraction > 0`` a stratified part of the training data is held out and the weights with
the best validation loss are kept (early stopping). The per-epoch losses are kept in
``history_``. Same ``seed``, same weights.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from ..training import fit
from ._checks import check_survival, check_X
from .base import SurvivalMixin
from .binning import bin_index, time_bins
from .cox import breslow_baseline
from .losses import cox_ph_loss, logistic_hazard_nll

__all__ = ["DeepSurv", "DiscreteTimeSurvival", "mlp"]


def mlp(n_in: int, hidden=(32,), n_out: int = 1, dropout: float = 0.1) -> torch.nn.Sequential:
    """Linear -> ReLU -> Dropout blocks, then a linear output layer.

    Taught in chapter 9 (the network inside :class:`DeepSurv` and
    :class:`DiscreteTimeSurvival`). Its initial weights come from PyTorch's global random
    state: seed it (``torch.manual_seed``) before calling, as the models do.

    Parameters
    ----------
    n_in : int
        Number of input features.
    hidden : sequence of int, default (32,)
        Width of each hidden layer, in order; empty for a linear model.
    n_out : int, default 1
        Number of outputs.
    dropout : float, default 0.1
        Dropout probability after each hidden layer.

    Returns
    -------
    torch.nn.Sequential
        Maps a float tensor of shape (batch, n_in) to one of shape (batch, n_out).
    """
    layers: list[torch.nn.Module] = []
    d = n_in
    for h in hidden:
        layers += [torch.nn.Linear(d, int(h)), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        d = int(h)
    layers.append(torch.nn.Linear(d, n_out))
    return torch.nn.Sequential(*layers)


class _TorchSurvival(SurvivalMixin, BaseEstimator):
    """Shared parts: standardise, split off validation, train with :func:`oncolab.training.fit`."""

    def _prepare(self, X, y):
        event, time = check_survival(y)
        X = check_X(X, len(time))
        self.n_features_in_ = X.shape[1]
        self.x_mean_ = X.mean(0)
        sd = X.std(0)
        self.x_scale_ = np.where(sd > 0, sd, 1.0)
        return (X - self.x_mean_) / self.x_scale_, event, time

    def _tensor(self, X) -> torch.Tensor:
        X = check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} columns, the model was fitted on {self.n_features_in_}")
        return torch.as_tensor((X - self.x_mean_) / self.x_scale_, dtype=torch.float32)

    def _train(self, net, Xs, targets: tuple[torch.Tensor, ...], loss, event):
        """Full-batch Adam on ``loss(output, *targets)``; a stratified validation part (by event)
        picks the epoch whose weights are kept. Sets ``history_``; returns ``net``."""
        idx = np.arange(len(Xs))
        tr, va = idx, None
        if self.val_fraction and self.val_fraction > 0:
            tr, va = train_test_split(idx, test_size=self.val_fraction, random_state=self.seed, stratify=event)
            if event[tr].sum() == 0 or event[va].sum() == 0:
                tr, va = idx, None
        Xt = torch.as_tensor(Xs, dtype=torch.float32)

        def rows(r):
            return (Xt[r], *(t[r] for t in targets))

        def loss_fn(model, batch):
            return loss(model(batch[0]), *batch[1:])

        # these networks are tiny: one thread is faster than several (no contention)
        res = fit(net, loss_fn, rows(tr), val=None if va is None else rows(va), epochs=int(self.epochs),
                  lr=self.lr, weight_decay=self.weight_decay, patience=self.patience, seed=self.seed, threads=1)
        self.history_ = res.history
        return net

    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")


class DeepSurv(_TorchSurvival):
    """DeepSurv: a neural Cox model (see the module docstring).

    Taught in chapter 9.

    Parameters
    ----------
    hidden : sequence of int, default (32,)
        Hidden layer widths of the MLP (:func:`mlp`).
    dropout : float, default 0.1
        Dropout after each hidden layer.
    lr : float, default 1e-2
        Adam learning rate.
    weight_decay : float, default 1e-3
        Adam weight decay.
    epochs : int, default 300
        Most full-batch epochs.
    val_fraction : float, default 0.2
        Fraction of the training patients held out (stratified by event) to pick the epoch
        whose weights are kept; 0 trains on all of them for ``epochs`` epochs. When a part
        would hold no event, no validation part is used.
    patience : int, default 30
        Stop after this many epochs without a better validation loss (only with a validation
        part).
    ties : {"breslow", "efron"}, default "efron"
        Tie handling of the partial likelihood loss.
    seed : int, default 0
        Seeds the initial weights, dropout and the validation split.

    Attributes
    ----------
    net_ : torch.nn.Sequential
        The trained network.
    x_mean_, x_scale_ : numpy.ndarray, shape (n_features,)
        Standardisation of the inputs.
    baseline_time_, cum_baseline_hazard_ : numpy.ndarray
        Breslow's baseline cumulative hazard on the training patients.
    history_ : list of dict
        The per-epoch losses (:class:`oncolab.training.FitResult`).
    """

    def __init__(self, hidden=(32,), dropout: float = 0.1, lr: float = 1e-2, weight_decay: float = 1e-3,
                 epochs: int = 300, val_fraction: float = 0.2, patience: int = 30, ties: str = "efron",
                 seed: int = 0):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.val_fraction = val_fraction
        self.patience = patience
        self.ties = ties
        self.seed = seed

    def fit(self, X, y):
        """Train the network on the negative partial likelihood, then Breslow's baseline.

        Parameters
        ----------
        X : array-like, shape (n, n_features)
            Numeric covariates without NaN.
        y : numpy structured array of (event, time), shape (n,)
            The outcome.

        Returns
        -------
        DeepSurv
            ``self``, fitted.

        Raises
        ------
        ValueError
            When ``X`` or ``y`` fails the survival input checks.
        """
        Xs, event, time = self._prepare(X, y)

        def loss(out, t, e):
            return cox_ph_loss(out, t, e, ties=self.ties)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = mlp(Xs.shape[1], self.hidden, 1, self.dropout)
        self.net_ = self._train(net, Xs, (torch.as_tensor(time), torch.as_tensor(event)), loss, event)
        eta = self._eta(torch.as_tensor(Xs, dtype=torch.float32))
        self.baseline_time_, self.cum_baseline_hazard_ = breslow_baseline(eta, time, event)
        return self

    def _eta(self, Xt: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.net_(Xt).reshape(-1).double().numpy()

    def predict(self, X):
        """The network's log-risk ``g(x)`` (higher = worse).

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates, standardised inside with the training means and scales.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients,)

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        ValueError
            When ``X`` has another number of columns than the training data.
        """
        self._check_fitted()
        return self._eta(self._tensor(X))

    def predict_survival(self, X, times) -> np.ndarray:
        """``exp(-H0(t) exp(g(x)))`` with Breslow's ``H0``: shape (n_patients, n_times).

        ``H0`` is 0 before the first training time and keeps its last value after the last.

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates.
        times : array-like of float, shape (n_times,)
            Where to evaluate.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients, n_times)

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        times = np.asarray(times, float)
        idx = np.searchsorted(self.baseline_time_, times, side="right") - 1
        h0 = np.where(idx >= 0, self.cum_baseline_hazard_[np.maximum(idx, 0)], 0.0)
        return np.exp(-np.exp(self.predict(X))[:, None] * h0[None, :])


class DiscreteTimeSurvival(_TorchSurvival):
    """Discrete-time logistic-hazard network (see the module docstring).

    ``n_bins`` time intervals with edges at quantiles of the training event times
    (:func:`~oncolab.survival.time_bins`; a time on an edge belongs to the bin that ends there,
    :func:`~oncolab.survival.bin_index`). The fitted edges are ``edges_``. Taught in chapter 9.

    Parameters
    ----------
    n_bins : int, default 20
        Number of time bins wanted (tied quantiles merge, so there may be fewer).
    hidden, dropout, lr, weight_decay, epochs, val_fraction, patience, seed
        As for :class:`DeepSurv`.

    Attributes
    ----------
    edges_ : numpy.ndarray of float, shape (K + 1,)
        The bin edges, from 0 to the longest training follow-up.
    baseline_time_ : numpy.ndarray of float, shape (K,)
        ``edges_[1:]``, the time grid of ``predict_survival_function``.
    net_ : torch.nn.Sequential
        The trained network (K logits).
    history_ : list of dict
        The per-epoch losses.
    """

    def __init__(self, n_bins: int = 20, hidden=(32,), dropout: float = 0.1, lr: float = 1e-2,
                 weight_decay: float = 1e-3, epochs: int = 300, val_fraction: float = 0.2, patience: int = 30,
                 seed: int = 0):
        self.n_bins = n_bins
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed

    def fit(self, X, y):
        """Cut time into bins and train the network on the logistic-hazard likelihood.

        Parameters
        ----------
        X : array-like, shape (n, n_features)
            Numeric covariates without NaN.
        y : numpy structured array of (event, time), shape (n,)
            The outcome.

        Returns
        -------
        DiscreteTimeSurvival
            ``self``, fitted.

        Raises
        ------
        ValueError
            When ``X`` or ``y`` fails the survival input checks, or the event times are too few
            or too tied for two bins (:func:`~oncolab.survival.time_bins`).
        """
        Xs, event, time = self._prepare(X, y)
        self.edges_ = time_bins(time, event, self.n_bins)
        K = len(self.edges_) - 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = mlp(Xs.shape[1], self.hidden, K, self.dropout)
        targets = (torch.as_tensor(bin_index(time, self.edges_)), torch.as_tensor(event))
        self.net_ = self._train(net, Xs, targets, logistic_hazard_nll, event)
        self.baseline_time_ = self.edges_[1:]
        return self

    def predict_hazard(self, X) -> np.ndarray:
        """Per-bin conditional event probabilities ``h_k(x)``: shape (n_patients, K).

        ``K = len(edges_) - 1`` may be smaller than ``n_bins`` (tied quantiles merge).

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients, K)
            The sigmoid of the network's logits, in (0, 1).

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        with torch.no_grad():
            return torch.sigmoid(self.net_(self._tensor(X))).double().numpy()

    def predict_survival(self, X, times) -> np.ndarray:
        """``S(t | x)``: the product of ``1 - h_k`` at the bin edges, linear in between; held
        constant after the last edge. Shape (n_patients, n_times).

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates.
        times : array-like of float, shape (n_times,)
            Where to evaluate (clipped to ``[0, edges_[-1]]``).

        Returns
        -------
        numpy.ndarray of float, shape (n_patients, n_times)
            1 at time 0, non-increasing.

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        h = self.predict_hazard(X)
        S_edges = np.c_[np.ones(len(h)), np.cumprod(1 - h, axis=1)]
        times = np.clip(np.asarray(times, float), 0, self.edges_[-1])
        return np.stack([np.interp(times, self.edges_, s) for s in S_edges])

    def predict(self, X):
        """Risk = minus the restricted mean survival time up to the last edge (higher = worse).

        The restricted mean is the trapezoidal area under :meth:`predict_survival` over
        ``edges_``.

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients,)

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        S = self.predict_survival(X, self.edges_)
        return -np.trapezoid(S, self.edges_, axis=1)
