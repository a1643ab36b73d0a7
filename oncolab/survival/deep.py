"""Deep survival models in PyTorch: DeepSurv and a discrete-time (logistic hazard) network.

Taught in chapter 9 ("Deep survival models"). Both follow scikit-survival's API (see
:mod:`oncolab.survival.base`) so that they drop into Pipelines and cross-validation beside
the Cox model and the ensembles.

* :class:`DeepSurv` (Katzman et al. 2018): an MLP ``g(x)`` replaces ``x' beta`` in the Cox
  model and is trained on the negative partial likelihood (:func:`~oncolab.survival.cox_ph_loss`);
  the baseline hazard is Breslow's, so survival curves are ``exp(-H0(t) exp(g(x)))``.
* :class:`DiscreteTimeSurvival` (logistic hazard; Gensheimer and Narasimhan 2019, Kvamme and
  Borgan 2021): time is cut into bins at quantiles of the event times; the network outputs one
  logit per bin, the conditional probability of the event in that bin given survival to its
  start; trained on :func:`~oncolab.survival.logistic_hazard_nll`. No proportional-hazards
  assumption. Its risk score is minus the restricted mean survival time up to the last bin.

Inputs are standardised inside the model (means and scales of the training data). Training is
full-batch Adam with weight decay; with ``val_fraction > 0`` a stratified part of the training
data is held out and the weights with the best validation loss are kept (early stopping).
Same ``seed``, same weights.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from ._checks import check_survival, check_X
from .base import SurvivalMixin
from .cox import breslow_baseline
from .losses import cox_ph_loss, logistic_hazard_nll

__all__ = ["DeepSurv", "DiscreteTimeSurvival", "mlp"]


def mlp(n_in: int, hidden=(32,), n_out: int = 1, dropout: float = 0.1) -> torch.nn.Sequential:
    """Linear -> ReLU -> Dropout blocks, then a linear output layer."""
    layers: list[torch.nn.Module] = []
    d = n_in
    for h in hidden:
        layers += [torch.nn.Linear(d, int(h)), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        d = int(h)
    layers.append(torch.nn.Linear(d, n_out))
    return torch.nn.Sequential(*layers)


class _TorchSurvival(SurvivalMixin, BaseEstimator):
    """Shared training loop: standardise, split off validation, Adam, keep the best epoch."""

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

    def _train(self, net, Xs, loss_fn, event):
        # these networks are tiny: one thread is faster than several (no contention)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._train_loop(net, Xs, loss_fn, event)
        finally:
            torch.set_num_threads(threads)

    def _train_loop(self, net, Xs, loss_fn, event):
        n = len(Xs)
        idx = np.arange(n)
        if self.val_fraction and self.val_fraction > 0:
            tr, va = train_test_split(idx, test_size=self.val_fraction, random_state=self.seed, stratify=event)
            if event[tr].sum() == 0 or event[va].sum() == 0:
                tr, va = idx, None
        else:
            tr, va = idx, None
        Xt = torch.as_tensor(Xs, dtype=torch.float32)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        best, best_state, wait = np.inf, None, 0
        history = []
        for _ in range(int(self.epochs)):
            net.train()
            opt.zero_grad()
            loss = loss_fn(net(Xt[tr]), tr)
            loss.backward()
            opt.step()
            rec = {"train": float(loss.detach())}
            if va is not None:
                net.eval()
                with torch.no_grad():
                    v = float(loss_fn(net(Xt[va]), va))
                rec["val"] = v
                if v < best - 1e-6:
                    best, wait = v, 0
                    best_state = {k: t.clone() for k, t in net.state_dict().items()}
                else:
                    wait += 1
                    if wait >= self.patience:
                        history.append(rec)
                        break
            history.append(rec)
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.history_ = history
        return net

    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")


class DeepSurv(_TorchSurvival):
    """DeepSurv: a neural Cox model (see the module docstring).

    Parameters: ``hidden`` (layer widths), ``dropout``, ``lr``, ``weight_decay``, ``epochs``,
    ``val_fraction`` and ``patience`` (early stopping), ``ties`` of the loss, ``seed``.
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
        Xs, event, time = self._prepare(X, y)
        t_t = torch.as_tensor(time)
        e_t = torch.as_tensor(event)

        def loss_fn(out, rows):
            return cox_ph_loss(out, t_t[rows], e_t[rows], ties=self.ties)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = mlp(Xs.shape[1], self.hidden, 1, self.dropout)
            self.net_ = self._train(net, Xs, loss_fn, event)
        eta = self._eta(torch.as_tensor(Xs, dtype=torch.float32))
        self.baseline_time_, self.cum_baseline_hazard_ = breslow_baseline(eta, time, event)
        return self

    def _eta(self, Xt: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.net_(Xt).reshape(-1).double().numpy()

    def predict(self, X):
        """The network's log-risk ``g(x)`` (higher = worse)."""
        self._check_fitted()
        return self._eta(self._tensor(X))

    def predict_survival(self, X, times) -> np.ndarray:
        """``exp(-H0(t) exp(g(x)))`` with Breslow's ``H0``: shape (n_patients, n_times)."""
        self._check_fitted()
        times = np.asarray(times, float)
        idx = np.searchsorted(self.baseline_time_, times, side="right") - 1
        h0 = np.where(idx >= 0, self.cum_baseline_hazard_[np.maximum(idx, 0)], 0.0)
        return np.exp(-np.exp(self.predict(X))[:, None] * h0[None, :])


class DiscreteTimeSurvival(_TorchSurvival):
    """Discrete-time logistic-hazard network (see the module docstring).

    ``n_bins`` time intervals with edges at quantiles of the training event times.
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

    @staticmethod
    def make_bins(time, event, n_bins: int) -> np.ndarray:
        """Bin edges ``0 = e_0 < e_1 < ... < e_K = max time`` at quantiles of the event times."""
        if not isinstance(n_bins, int | np.integer) or n_bins < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
        q = np.quantile(time[event], np.linspace(0, 1, n_bins + 1)[1:-1])
        return np.unique(np.r_[0.0, q, time.max()])

    def bin_index(self, time) -> np.ndarray:
        """Bin ``b`` with ``e_b < t <= e_{b+1}`` (time 0 goes to the first bin)."""
        return np.clip(np.searchsorted(self.edges_[1:-1], np.asarray(time, float), side="left"),
                       0, len(self.edges_) - 2)

    def fit(self, X, y):
        Xs, event, time = self._prepare(X, y)
        self.edges_ = self.make_bins(time, event, self.n_bins)
        K = len(self.edges_) - 1
        b = torch.as_tensor(self.bin_index(time))
        e_t = torch.as_tensor(event)

        def loss_fn(out, rows):
            return logistic_hazard_nll(out, b[rows], e_t[rows])

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = mlp(Xs.shape[1], self.hidden, K, self.dropout)
            self.net_ = self._train(net, Xs, loss_fn, event)
        self.baseline_time_ = self.edges_[1:]
        return self

    def predict_hazard(self, X) -> np.ndarray:
        """Per-bin conditional event probabilities ``h_k(x)``: shape (n_patients, n_bins)."""
        self._check_fitted()
        with torch.no_grad():
            return torch.sigmoid(self.net_(self._tensor(X))).double().numpy()

    def predict_survival(self, X, times) -> np.ndarray:
        """``S(t | x)``: the product of ``1 - h_k`` at the bin edges, linear in between; held
        constant after the last edge. Shape (n_patients, n_times)."""
        h = self.predict_hazard(X)
        S_edges = np.c_[np.ones(len(h)), np.cumprod(1 - h, axis=1)]
        times = np.clip(np.asarray(times, float), 0, self.edges_[-1])
        return np.stack([np.interp(times, self.edges_, s) for s in S_edges])

    def predict(self, X):
        """Risk = minus the restricted mean survival time up to the last edge (higher = worse)."""
        S = self.predict_survival(X, self.edges_)
        return -np.trapezoid(S, self.edges_, axis=1)
