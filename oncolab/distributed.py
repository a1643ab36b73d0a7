"""Data-parallel training with ``torch.distributed``: gradients averaged by hand, then DDP.

Taught in chapter 15 ("Scaling out").

Data parallelism: every process (a *rank*) holds a full copy of the model, takes its own
share of each global batch, computes gradients on it, and the ranks average their gradients
before each optimiser step, so every copy takes the same step. When the loss is a mean and
the shares are equal, the average of the shares' gradients *is* the gradient of the global
batch: ``W`` processes with ``B / W`` samples each train exactly like one process with ``B``.

* :func:`average_gradients`: the averaging by hand, one ``all_reduce`` per parameter;
* ``DistributedDataParallel`` (DDP) does the same in buckets, overlapped with the backward
  pass;
* :func:`train` runs one training job (on the batches of :func:`global_batches`) in any of
  three modes (``single``, ``manual``, ``ddp``) and writes the final parameters;
  ``python -m oncolab.distributed`` is its command line, to be launched by ``torchrun``, which
  starts the processes and sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``
  for each. This loop is written out by hand because data parallelism is what the chapter
  teaches; every other model in the book trains with :func:`oncolab.training.fit`;
* :func:`launch` starts ``torchrun`` from Python (used by the tests and the chapter);
* :class:`SlideTileStream`: an iterable dataset that reads slides tile by tile, each rank
  and each data-loader worker taking its own patients, so that no process holds a slide.

Here the backend is ``gloo`` on CPU processes. On a GPU node the same code runs with
``backend="nccl"``, one process per GPU (``torchrun --nproc_per_node=<gpus>``), each moving
its model to ``cuda:<LOCAL_RANK>``; on a cluster ``torchrun`` (or ``srun``) is started on every
node with ``--nnodes`` and a rendezvous address.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .training import limit_threads

__all__ = ["SlideTileStream", "average_gradients", "global_batches", "launch", "shard", "toy_problem", "train"]

MODES = ("single", "manual", "ddp")


def shard(indices, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of ``indices``: every ``world_size``-th item from ``rank`` on.

    Taught in chapter 15. The shares of all ranks are disjoint and together hold every item.

    Parameters
    ----------
    indices : array-like
        The items to share out.
    rank : int
        This process's rank, in ``[0, world_size)``.
    world_size : int
        Number of processes, >= 1.

    Returns
    -------
    numpy.ndarray
        ``indices[rank::world_size]``.

    Raises
    ------
    ValueError
        When ``world_size < 1`` or ``rank`` is outside ``[0, world_size)``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, world_size) with world_size >= 1, got rank={rank}, world_size={world_size}")
    return np.asarray(indices)[rank::world_size]


def average_gradients(model: nn.Module) -> None:
    """All-reduce (sum) every parameter's gradient across ranks and divide by the world size.

    Taught in chapter 15 (what ``DistributedDataParallel`` does, by hand). Parameters without
    a gradient are skipped.

    Parameters
    ----------
    model : torch.nn.Module
        The rank's copy of the model, after ``backward``.

    Returns
    -------
    None
        The gradients are changed in place: every rank ends with the mean gradient.

    Raises
    ------
    RuntimeError
        When no process group is initialised.
    """
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("average_gradients needs an initialised process group (torch.distributed.init_process_group)")
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


def toy_problem(n: int = 64, n_tiles: int = 4, in_dim: int = 8, n_bins: int = 4, seed: int = 0):
    """A small multi-scale survival job: bag features, time bins, events and a model factory.

    Survival times are exponential with a log hazard tied to the first feature, censored
    uniformly between 5 and 20; the times are returned only as their bins
    (:func:`oncolab.survival.time_bins`, :func:`oncolab.survival.bin_index`). ``make_model()``
    builds the same :class:`~oncolab.vision.multiscale.CrossFusionSurv` (without dropout) on
    every call. Taught in chapter 15.

    Parameters
    ----------
    n : int, default 64
        Patients.
    n_tiles : int, default 4
        Tiles per scale (three scales).
    in_dim : int, default 8
        Features per tile.
    n_bins : int, default 4
        Time bins wanted.
    seed : int, default 0
        Seeds the data and the model's initial weights.

    Returns
    -------
    x : torch.Tensor of float32, shape (n, 3, n_tiles, in_dim)
        The bags.
    mask : torch.Tensor of bool, shape (n, n_tiles)
        All True (every tile present).
    bin_idx : torch.Tensor of int64, shape (n,)
        Each patient's time bin.
    event : torch.Tensor of bool, shape (n,)
        True where the event was observed.
    make_model : callable
        Returns a fresh, identically initialised model.
    """
    from .survival.binning import bin_index, time_bins
    from .vision.multiscale import CrossFusionSurv

    g = np.random.default_rng(seed)
    x = g.standard_normal((n, 3, n_tiles, in_dim)).astype(np.float32)
    risk = x[:, :, :, 0].mean((1, 2)) * 2
    t = g.exponential(1 / np.exp(risk)) * 10
    c = g.uniform(5, 20, n)
    time_, event = np.minimum(t, c), t <= c
    edges = time_bins(time_, event, n_bins)
    b = bin_index(time_, edges)

    def make_model():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CrossFusionSurv(in_dim, 3, len(edges) - 1, dim=16, n_heads=2, dropout=0.0)

    return (torch.from_numpy(x), torch.ones(n, n_tiles, dtype=torch.bool),
            torch.from_numpy(b).long(), torch.from_numpy(event), make_model)


def global_batches(n: int, steps: int, global_batch: int, seed: int = 0) -> list[np.ndarray]:
    """The global batches :func:`train` takes, the same in every mode: ``global_batch`` patients
    out of ``n``, drawn without replacement for each of ``steps`` steps with ``seed``.

    Parameters
    ----------
    n : int
        Number of patients.
    steps : int
        Number of optimiser steps.
    global_batch : int
        Patients per step, all ranks together.
    seed : int
        Seeds the draws.

    Returns
    -------
    list of numpy.ndarray of int
        One array of patient indices per step.

    Raises
    ------
    ValueError
        When ``global_batch`` is outside ``[1, n]``.
    """
    if not 1 <= global_batch <= n:
        raise ValueError(f"global_batch must lie in [1, n={n}], got {global_batch}")
    order = np.random.default_rng(seed)
    return [order.choice(n, size=global_batch, replace=False) for _ in range(steps)]


def train(mode: str = "single", steps: int = 20, global_batch: int = 16, lr: float = 0.05,
          n: int = 64, seed: int = 0, out: str | Path | None = None) -> dict:
    """Train the toy problem's model for ``steps`` SGD steps in ``mode``; return (and save) results.

    ``single``: one process takes each whole global batch. ``manual`` and ``ddp`` expect
    to run under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` set): each rank takes its share of
    every global batch, and gradients are averaged by :func:`average_gradients` or by
    ``DistributedDataParallel``. The global batches are the same in every mode
    (:func:`global_batches` with ``seed + 1``), so the final parameters agree up to
    floating-point rounding. The loop is written out here because it is what chapter 15
    teaches; in one process it trains exactly like :func:`oncolab.training.fit` with SGD on
    the same batches (checked in the tests). (SGD with
    momentum, not Adam: Adam divides by the gradient's running size, which turns the
    rounding noise on parameters whose true gradient is zero, such as the attention's key
    bias, into full-size steps.) Rank 0 writes the result to ``out`` (JSON, via a temporary
    file). Taught in chapter 15.

    Parameters
    ----------
    mode : {"single", "manual", "ddp"}, default "single"
        How the gradients are combined, as above.
    steps : int, default 20
        SGD steps (momentum 0.9).
    global_batch : int, default 16
        Patients per step, all ranks together; divisible by the world size.
    lr : float, default 0.05
        Learning rate.
    n : int, default 64
        Patients of :func:`toy_problem`.
    seed : int, default 0
        Seeds the toy problem and the model; the batches use ``seed + 1``.
    out : str or pathlib.Path, optional
        JSON file rank 0 writes the result to.

    Returns
    -------
    dict
        ``mode``, ``world_size``, ``steps``, ``global_batch``, ``seconds`` (of the loop),
        ``losses`` (this rank's loss at each step, on its share) and ``params`` (each
        parameter flattened to a list).

    Raises
    ------
    ValueError
        When ``mode`` is unknown or ``global_batch`` is not divisible by the world size.
    """
    from .survival.losses import logistic_hazard_nll

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    distributed = mode != "single"
    if distributed and not dist.is_initialized():
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if global_batch % world:
        raise ValueError(f"global_batch={global_batch} must be divisible by the world size {world}")
    x, mask, b, ev, make_model = toy_problem(n=n, seed=seed)
    model = make_model()
    net = nn.parallel.DistributedDataParallel(model) if mode == "ddp" else model
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    t0 = time.perf_counter()
    with limit_threads(1):  # one thread per process: the processes share the CPU cores
        for batch in global_batches(n, steps, global_batch, seed + 1):
            mine = torch.as_tensor(shard(batch, rank, world))
            loss = logistic_hazard_nll(net(x[mine], mask[mine]), b[mine], ev[mine])
            opt.zero_grad()
            loss.backward()
            if mode == "manual":
                average_gradients(model)
            opt.step()
            losses.append(float(loss.detach()))
    seconds = time.perf_counter() - t0
    result = {"mode": mode, "world_size": world, "steps": steps, "global_batch": global_batch,
              "seconds": seconds, "losses": losses,
              "params": {k: v.detach().cpu().numpy().ravel().tolist() for k, v in model.state_dict().items()}}
    if out is not None and rank == 0:
        out = Path(out)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, out)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, mode: str, out: str | Path, steps: int = 20, global_batch: int = 16,
           n: int = 64, seed: int = 0, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``torchrun --nproc_per_node=nproc -m oncolab.distributed ...`` and wait for it.

    ``torchrun`` is taken from the running Python's environment (next to its executable). Each
    process runs :func:`train` on one thread (``OMP_NUM_THREADS=1``). Taught in chapter 15.

    Parameters
    ----------
    nproc : int
        Processes to start, >= 1.
    mode : {"single", "manual", "ddp"}
        The mode of :func:`train`.
    out : str or pathlib.Path
        JSON file rank 0 writes the result to.
    steps, global_batch, n, seed
        As for :func:`train`.
    timeout : float, default 300
        Seconds before the job is killed.

    Returns
    -------
    subprocess.CompletedProcess
        The finished ``torchrun`` run (its output captured as text).

    Raises
    ------
    ValueError
        When ``nproc < 1``.
    FileNotFoundError
        When ``torchrun`` is not installed next to the running Python.
    RuntimeError
        When the job fails; the message holds the end of the processes' output.
    subprocess.TimeoutExpired
        When the job runs longer than ``timeout``.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be a positive integer, got {nproc}")
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        raise FileNotFoundError(f"torchrun not found next to {sys.executable}; is torch installed?")
    cmd = [str(torchrun), f"--nproc_per_node={nproc}", "--nnodes=1",
           "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{_free_port()}",
           "-m", "oncolab.distributed", "--mode", mode, "--out", str(out), "--steps", str(steps),
           "--global-batch", str(global_batch), "--patients", str(n), "--seed", str(seed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"torchrun failed (exit {res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


class SlideTileStream(torch.utils.data.IterableDataset):
    """Streams multi-scale tile bags of slides, one patient at a time, split across processes.

    Each rank (from ``torch.distributed`` when initialised, else ``rank`` / ``world_size``)
    and each ``DataLoader`` worker takes every ``(world_size * workers)``-th patient, so the
    patients are read once in all. Tiles are read from each slide's ``read_region`` as they
    are needed: a process holds one bag at a time, never a slide. Iterating yields
    ``(position, bag)``: the patient's position in the cohort and a float32 tensor of shape
    ``(len(levels), n_tiles, 18)`` (:func:`oncolab.vision.multiscale.slide_bag`). Taught in
    chapter 15.

    Parameters
    ----------
    cohort : Cohort
        A cohort with slides (``cohort.slide(i)``), such as the prostate cohort.
    positions : array-like of int
        The patients to stream, as positions in the cohort.
    n_tiles : int, default 8
        Regions per slide.
    levels : sequence of int, default (2, 1, 0)
        Pyramid levels, from low to high magnification.
    tile : int, default 32
        Tile side in pixels.
    seed : int, default 0
        Patient ``i``'s regions are drawn with ``seed + i``.
    rank, world_size : int, optional
        This process's share; by default taken from ``torch.distributed`` when it is
        initialised, else 0 and 1.
    """

    def __init__(self, cohort, positions, n_tiles: int = 8, levels=(2, 1, 0), tile: int = 32,
                 seed: int = 0, rank: int | None = None, world_size: int | None = None):
        super().__init__()
        self.cohort, self.positions = cohort, np.asarray(positions)
        self.n_tiles, self.levels, self.tile, self.seed = n_tiles, tuple(levels), tile, seed
        self.rank, self.world_size = rank, world_size

    def _share(self) -> np.ndarray:
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            if dist.is_available() and dist.is_initialized():
                rank, world = dist.get_rank(), dist.get_world_size()
            else:
                rank, world = 0, 1
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return shard(self.positions, rank * nw + wid, world * nw)

    def __iter__(self):
        from .vision.multiscale import slide_bag

        for i in self._share():
            bag = slide_bag(self.cohort.slide(int(i)), self.n_tiles, self.levels, self.tile,
                            seed=self.seed + int(i))
            yield int(i), torch.from_numpy(bag)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train the toy multi-scale survival model (run under torchrun).")
    p.add_argument("--mode", choices=MODES, default="ddp")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--global-batch", type=int, default=16)
    p.add_argument("--patients", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    train(a.mode, a.steps, a.global_batch, n=a.patients, seed=a.seed, out=a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
