"""One training loop for the book's small PyTorch models: seeded, with early stopping.

Taught in chapter 2 ("Images, CNNs and ResNet"), where the first CNN trains with it. Used by
every model whose training is not itself the subject of its chapter: the image classifiers of
chapters 2 and 4, attention-MIL (chapter 5), the tiny BERT's pretraining (chapter 6), the gene
autoencoder (chapter 7), the deep survival models (chapter 9), the fusion models (chapter 10)
and the multi-scale survival models (chapter 14). Chapter 15 writes its data-parallel loop by
hand, because that loop is what it teaches; the tests check it against this one.

:func:`fit` does what every one of those loops did by hand:

* **data**: the training rows as a tensor, an array, or a tuple / list / dict of them (nested
  as deep as needed), all with one row per sample in their first dimension; or a callable
  ``batches(epoch)`` that returns the epoch's batches itself (any iterable: a list of index
  tensors, a ``DataLoader``). The caller's ``loss_fn(model, batch)`` reads a batch of the same
  structure, so one loop serves tables, dicts of embeddings, padded bags of tiles and text;
* **one step per batch**: ``loss_fn`` in train mode, backward, optional gradient clipping,
  optimiser step, optional learning-rate schedule step;
* **validation** after each epoch: ``loss_fn`` in eval mode under ``torch.no_grad()``;
* **early stopping**: with validation data, the weights of the epoch with the lowest
  validation loss are kept, and training stops after ``patience`` epochs without an
  improvement larger than ``min_delta``;
* **seed**: the random numbers drawn in the loop (dropout) and the order of the mini-batches
  come from two streams derived from ``seed`` (``numpy.random.SeedSequence``), so they do not
  repeat the numbers that drew the initial weights when those were drawn with
  ``torch.manual_seed(seed)``; the global random state is left as it was. Same seed, same
  bytes (on one device with the same number of threads);
* **threads**: ``threads=1`` runs the loop on one CPU thread and restores the setting after
  (:func:`limit_threads`). The book's models are tiny: on a busy machine several threads spend
  more time waiting for each other than computing (30 times slower measured on 2 cores);
* **progress**: an optional tqdm bar over the epochs showing the last losses.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["OPTIMIZERS", "FitResult", "fit", "limit_threads"]

#: Optimiser names :func:`fit` accepts.
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : torch.nn.Module
        The trained model (the same object that was passed in), in eval mode, holding the
        weights of ``best_epoch``.
    history : list of dict
        One record per epoch run: ``epoch`` (from 0), ``train_loss`` (the mean of the batch
        losses weighted by the batches' numbers of rows), ``train_<name>`` for every extra
        number ``loss_fn`` reported, and with validation data ``val_loss`` and ``val_<name>``.
    best_epoch : int
        The epoch whose weights the model holds: the one with the lowest validation loss when
        early stopping on validation data, else the last epoch run.
    stopped_early : bool
        True when training stopped before ``epochs`` because of ``patience``.
    steps : int
        Optimiser steps taken (batches for which ``loss_fn`` returned ``None`` are not steps).
    seconds : float
        Wall-clock time of the loop.
    """

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    steps: int = 0
    seconds: float = 0.0

    def curve(self, key: str = "train_loss") -> list[float]:
        """The values of ``key`` (e.g. ``"train_loss"``, ``"val_loss"``) over the epochs run.

        Parameters
        ----------
        key : str
            A key of the history records.

        Returns
        -------
        list of float
            One value per epoch.

        Raises
        ------
        KeyError
            When the history has no such key (the message lists the keys it has).
        """
        if not self.history or key not in self.history[0]:
            known = sorted(self.history[0]) if self.history else []
            raise KeyError(f"no {key!r} in the training history; it records {known}")
        return [rec[key] for rec in self.history]


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Run the enclosed code with PyTorch using ``n`` CPU threads, and restore the setting after.

    Part of the training loop of chapter 2 (:func:`fit`); chapters 6 and 14 say why one thread
    is fastest for the book's small models on a shared CPU.

    Parameters
    ----------
    n : int or None
        Number of intra-op threads; ``None`` leaves the setting alone.

    Returns
    -------
    contextlib.AbstractContextManager
        A context manager; the previous number of threads is restored on exit, also when the
        enclosed code raises.

    Raises
    ------
    ValueError
        When ``n`` is neither None nor a positive integer (raised on entering the block).
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"threads must be a positive integer or None, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# data: rows (tensors, nested in tuples / lists / dicts) or a callable returning batches
# ----------------------------------------------------------------------------------------------
def _as_rows(data: Any, what: str) -> Any:
    """Convert NumPy leaves to tensors and check the structure; returns the converted data."""
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        return torch.as_tensor(data)
    if isinstance(data, Mapping):
        if not data:
            raise ValueError(f"{what} is an empty dict; expected tensors with one row per sample")
        return {k: _as_rows(v, what) for k, v in data.items()}
    if isinstance(data, tuple | list):
        if not data:
            raise ValueError(f"{what} is empty; expected tensors with one row per sample")
        return type(data)(_as_rows(v, what) for v in data)
    raise TypeError(f"{what} must be a tensor, an array, a tuple / list / dict of them, or a callable "
                    f"batches(epoch) returning batches; got {type(data).__name__}")


def _leaves(data: Any) -> Iterator[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        yield data
    elif isinstance(data, Mapping):
        for v in data.values():
            yield from _leaves(v)
    elif isinstance(data, tuple | list):
        for v in data:
            yield from _leaves(v)


def _n_rows(data: Any, what: str) -> int:
    sizes = {len(t) if t.dim() else 0 for t in _leaves(data)}
    if len(sizes) != 1:
        raise ValueError(f"every tensor of {what} needs the same number of rows (one per sample); "
                         f"got {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError(f"{what} has no rows")
    return n


def _take(data: Any, idx: torch.Tensor) -> Any:
    if isinstance(data, torch.Tensor):
        return data[idx.to(data.device)]
    if isinstance(data, Mapping):
        return {k: _take(v, idx) for k, v in data.items()}
    return type(data)(_take(v, idx) for v in data)


def _to(data: Any, device: torch.device) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(device)
    if isinstance(data, Mapping):
        return {k: _to(v, device) for k, v in data.items()}
    if isinstance(data, tuple | list):
        return type(data)(_to(v, device) for v in data)
    return data


def _batch_rows(batch: Any) -> int:
    first = next(_leaves(batch), None)
    return len(first) if first is not None and first.dim() else 1


class _Data:
    """The batches of one epoch, from rows or from the caller's callable."""

    def __init__(self, data: Any, batch_size: int | None, shuffle: bool, what: str):
        self.what = what
        self.call = callable(data) and not isinstance(data, torch.Tensor | np.ndarray)
        if self.call:
            if batch_size is not None:
                raise ValueError(f"batch_size must be None when {what} is a callable returning its own "
                                 f"batches; got batch_size={batch_size!r}")
            self.data, self.n = data, None
        else:
            self.data = _as_rows(data, what)
            self.n = _n_rows(self.data, what)
        self.batch_size, self.shuffle = batch_size, shuffle

    def n_batches(self) -> int | None:
        if self.n is None:
            return None
        return 1 if self.batch_size is None else math.ceil(self.n / self.batch_size)

    def batches(self, epoch: int, generator: torch.Generator | None) -> Iterable[Any]:
        if self.call:
            return self.data(epoch)
        if self.batch_size is None:
            return [self.data]
        order = (torch.randperm(self.n, generator=generator) if self.shuffle and generator is not None
                 else torch.arange(self.n))
        return (_take(self.data, order[s:s + self.batch_size]) for s in range(0, self.n, self.batch_size))


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------
def _positive_int(name: str, v, allow_none: bool = False) -> None:
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {v!r}")


def _split_loss(out, where: str) -> tuple[torch.Tensor | None, dict[str, float]]:
    if out is None:
        return None, {}
    logs: Mapping = {}
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], Mapping):
            raise TypeError(f"loss_fn must return a loss tensor, None, or (loss, dict of numbers); "
                            f"got a tuple of {len(out)} at {where}")
        out, logs = out
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(out).__name__} "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else ''} at {where}")
    return out, {str(k): float(v) for k, v in logs.items()}


class _Mean:
    """Means of the batch losses (and extra numbers) weighted by the batches' rows."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.rows = 0

    def add(self, loss: float, logs: dict[str, float], rows: int) -> None:
        for k, v in {"loss": loss, **logs}.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * rows
        self.rows += rows

    def record(self, prefix: str) -> dict[str, float]:
        if not self.rows:  # every batch skipped
            return {f"{prefix}_loss": math.nan}
        return {f"{prefix}_{k}": s / self.rows for k, s in self.sums.items()}


def _make_optimizer(name: str, params, lr: float, weight_decay: float, momentum: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def fit(model: nn.Module, loss_fn: Callable, train, *, val=None, epochs: int, lr: float,
        weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.0,
        batch_size: int | None = None, val_batch_size: int | None = None, shuffle: bool = True,
        patience: int | None = None, min_delta: float = 1e-6, restore_best: bool = True,
        schedule: Callable | None = None, clip_grad_norm: float | None = None, seed: int,
        threads: int | None = None, device: str | torch.device | None = None, progress: bool = False,
        desc: str = "training", callback: Callable[[dict], None] | None = None) -> FitResult:
    """Train ``model`` in place with mini-batch gradient descent; the loop of the module docstring.

    Taught in chapter 2 ("Images, CNNs and ResNet"), where the CNN trains with it; the models
    of chapters 4-7, 9, 10 and 14 train with it too.

    Parameters
    ----------
    model : torch.nn.Module
        The model to train (changed in place; left in eval mode).
    loss_fn : callable
        ``loss_fn(model, batch)`` returns a scalar loss tensor, or ``(loss, {name: number})`` to
        record more numbers per epoch (``train_<name>``, ``val_<name>``), or ``None`` to skip the
        batch (no step; e.g. a masked-language batch with no masked token). It is called in train
        mode for training batches and in eval mode under ``torch.no_grad()`` for validation:
        test ``model.training`` to do something only while training (augmentation). Randomness
        it draws should come from its own seeded ``torch.Generator``; dropout draws from the
        random state that ``seed`` sets.
    train : tensor, array, tuple / list / dict of them, or callable
        The training rows, one per sample in the first dimension of every tensor (NumPy
        arrays become tensors with their dtype). A batch has the same structure, holding
        the rows of the batch. A callable ``train(epoch)`` instead returns the epoch's
        batches (any iterable); ``batch_size`` must then be None.
    val : same forms as ``train``, optional
        Validation rows; with them each epoch records ``val_loss`` and early stopping applies.
    epochs : int
        Maximum number of passes over ``train``.
    lr, weight_decay : float
        Learning rate and weight decay of the optimiser.
    optimizer : {"adam", "adamw", "sgd"}
        The optimiser; ``momentum`` is used by ``"sgd"`` only.
    momentum : float
        SGD momentum.
    batch_size : int or None
        Rows per mini-batch, shuffled every epoch with ``seed`` (``shuffle=False`` keeps their
        order); None: the whole training set as one batch (full-batch training).
    val_batch_size : int or None
        Rows per validation batch (None: one batch). The validation loss is the mean of the
        batch losses weighted by their rows, which equals the loss of the whole set for any
        loss that is a mean over rows (not for the Cox partial likelihood: keep it None).
    shuffle : bool
        Shuffle the mini-batches (only with ``batch_size``).
    patience : int or None
        Stop after this many epochs without an improvement of the validation loss by more
        than ``min_delta``; None: run all epochs. Ignored without ``val``.
    min_delta : float
        Smallest decrease of the validation loss that counts as an improvement.
    restore_best : bool
        With ``val``, end with the weights of the epoch with the lowest validation loss.
    schedule : callable or None
        ``schedule(optimizer, total_steps)`` returns a learning-rate scheduler, stepped after
        every optimiser step; ``total_steps`` is ``epochs`` times the batches per epoch (None
        when ``train`` is a callable).
    clip_grad_norm : float or None
        Clip the gradients' global norm to this value before each step.
    seed : int
        Seeds dropout and the mini-batch order. Same seed, same weights, byte for byte.
    threads : int or None
        CPU threads during the loop (restored after); None leaves the setting alone.
    device : str, torch.device or None
        Move the model there and each batch to it; None: the device of the model's parameters.
    progress : bool
        Show a tqdm progress bar over the epochs, labelled ``desc``.
    desc : str
        Label of the progress bar.
    callback : callable or None
        ``callback(record)`` is called with each epoch's history record after the epoch.

    Returns
    -------
    FitResult
        The model, the history per epoch, the best epoch, whether training stopped early,
        the optimiser steps taken and the wall-clock seconds.

    Raises
    ------
    TypeError
        When ``model`` is not a ``torch.nn.Module``, ``loss_fn`` is not callable, ``train`` or
        ``val`` is not one of the accepted forms, or ``loss_fn`` returns something other than a
        scalar tensor, None or ``(loss, dict)``.
    ValueError
        When ``epochs``, ``batch_size``, ``val_batch_size`` or ``patience`` is not a positive
        integer (or None where allowed), ``seed`` is not a non-negative integer,
        ``optimizer`` is unknown, ``lr`` is not positive, ``weight_decay`` or ``min_delta``
        is negative, ``clip_grad_norm`` is not positive, the model has no trainable
        parameter, the data are empty or their tensors differ in rows, or ``batch_size`` is
        given with a callable ``train``.
    FloatingPointError
        When a training loss is NaN or infinite (the message names the epoch and batch).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    _positive_int("epochs", epochs)
    _positive_int("batch_size", batch_size, allow_none=True)
    _positive_int("val_batch_size", val_batch_size, allow_none=True)
    _positive_int("patience", patience, allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    if not (isinstance(lr, numbers.Real) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(weight_decay, numbers.Real) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if min_delta < 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be positive or None, got {clip_grad_norm!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    data = _Data(train, batch_size, shuffle, "the training data")
    vdata = _Data(val, val_batch_size, False, "the validation data") if val is not None else None

    if device is not None:
        model.to(device)
    dev = params[0].device
    rng_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    per_epoch = data.n_batches()
    total_steps = None if per_epoch is None else epochs * per_epoch
    result = FitResult(model)
    best, best_state, since = math.inf, None, 0
    epoch_iter: Iterable[int] = range(int(epochs))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = bar = tqdm(epoch_iter, desc=desc, leave=False)
    t0 = time.perf_counter()
    with (torch.random.fork_rng(devices=rng_devices), limit_threads(threads),
          bar if bar is not None else contextlib.nullcontext()):
        dropout_seed, order_seed = (int(v) for v in np.random.SeedSequence(int(seed)).generate_state(2))
        torch.manual_seed(dropout_seed)
        gen = torch.Generator().manual_seed(order_seed)
        opt = _make_optimizer(optimizer, params, float(lr), float(weight_decay), float(momentum))
        sched = schedule(opt, total_steps) if schedule is not None else None
        for epoch in epoch_iter:
            model.train()
            tr = _Mean()
            for b, batch in enumerate(data.batches(epoch, gen)):
                batch = _to(batch, dev)
                loss, logs = _split_loss(loss_fn(model, batch), f"epoch {epoch}, batch {b}")
                if loss is None:
                    continue
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(f"the training loss is {value} at epoch {epoch}, batch {b}; "
                                             "lower the learning rate or check the data for extreme values")
                opt.zero_grad()
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, clip_grad_norm)
                opt.step()
                if sched is not None:
                    sched.step()
                result.steps += 1
                tr.add(value, logs, _batch_rows(batch))
            rec: dict[str, float] = {"epoch": epoch, **tr.record("train")}
            if vdata is not None:
                model.eval()
                va = _Mean()
                with torch.no_grad():
                    for b, batch in enumerate(vdata.batches(epoch, None)):
                        batch = _to(batch, dev)
                        loss, logs = _split_loss(loss_fn(model, batch), f"validation batch {b}")
                        if loss is not None:
                            va.add(float(loss), logs, _batch_rows(batch))
                rec.update(va.record("val"))
                vloss = rec.get("val_loss", math.nan)
                if vloss < best - min_delta:
                    best, since, result.best_epoch = vloss, 0, epoch
                    if restore_best:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since += 1
            result.history.append(rec)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in rec.items() if k in ("train_loss", "val_loss")})
            if callback is not None:
                callback(rec)
            if vdata is not None and patience is not None and since >= patience:
                result.stopped_early = epoch < epochs - 1
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history) - 1
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result
