"""Data parallelism: torchrun with 2 gloo processes on CPU trains like one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from oncolab.distributed import (
    SlideTileStream,
    average_gradients,
    global_batches,
    launch,
    shard,
    toy_problem,
    train,
)


def _params(path: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in json.loads(path.read_text())["params"].items()}


def test_torchrun_is_next_to_python():
    assert Path(sys.executable).with_name("torchrun").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["manual", "ddp"])
def test_two_gloo_processes_match_one_process(tmp_path, mode):
    single = train("single", steps=12, global_batch=16, out=tmp_path / "single.json")
    launch(2, mode, tmp_path / f"{mode}.json", steps=12, global_batch=16, timeout=600)
    res = json.loads((tmp_path / f"{mode}.json").read_text())
    assert res["world_size"] == 2 and res["mode"] == mode
    one, two = _params(tmp_path / "single.json"), _params(tmp_path / f"{mode}.json")
    assert one.keys() == two.keys()
    init = {k: v.numpy().ravel() for k, v in toy_problem()[4]().state_dict().items()}
    moved = max(np.abs(one[k] - init[k]).max() for k in one)
    assert moved > 1e-3  # training changed the parameters
    for k in one:
        np.testing.assert_allclose(two[k], one[k], atol=1e-5, rtol=1e-4, err_msg=k)
    # each rank's loss is on its half of the batch; their mean is not logged, but the
    # first step's loss must be a finite number like the single run's
    assert np.isfinite(res["losses"]).all() and len(res["losses"]) == len(single["losses"])


def test_gradient_of_the_batch_is_the_mean_of_the_shards():
    """The identity data parallelism rests on, checked in one process."""
    x, mask, b, ev, make = toy_problem(n=32)
    from oncolab.survival.losses import logistic_hazard_nll

    model = make()
    idx = torch.arange(16)
    logistic_hazard_nll(model(x[idx], mask[idx]), b[idx], ev[idx]).backward()
    full = [p.grad.clone() for p in model.parameters()]
    shards = []
    for r in range(2):
        model.zero_grad()
        mine = torch.as_tensor(shard(idx.numpy(), r, 2))
        logistic_hazard_nll(model(x[mine], mask[mine]), b[mine], ev[mine]).backward()
        shards.append([p.grad.clone() for p in model.parameters()])
    for g, g0, g1 in zip(full, *shards):
        torch.testing.assert_close((g0 + g1) / 2, g, atol=1e-6, rtol=1e-5)


def test_the_chapters_loop_in_one_process_trains_like_the_shared_fit():
    """Chapter 15 writes its loop by hand; in one process it must train like oncolab.training.fit."""
    from oncolab.survival.losses import logistic_hazard_nll
    from oncolab.training import fit

    steps, global_batch, lr, seed = 12, 16, 0.05, 0
    single = train("single", steps=steps, global_batch=global_batch, lr=lr, seed=seed)
    x, mask, b, ev, make = toy_problem(seed=seed)
    batches = [torch.as_tensor(i) for i in global_batches(len(x), steps, global_batch, seed + 1)]
    model = make()
    res = fit(model, lambda m, idx: logistic_hazard_nll(m(x[idx], mask[idx]), b[idx], ev[idx]),
              lambda epoch: batches, epochs=1, lr=lr, optimizer="sgd", momentum=0.9, seed=seed, threads=1)
    assert res.steps == steps
    init = {k: v.numpy().ravel() for k, v in make().state_dict().items()}
    ours = {k: v.numpy().ravel() for k, v in model.state_dict().items()}
    assert max(np.abs(ours[k] - init[k]).max() for k in ours) > 1e-3
    for k, v in single["params"].items():
        np.testing.assert_allclose(ours[k], np.asarray(v), atol=1e-6, rtol=1e-5, err_msg=k)
    # equal batches: the epoch's mean loss is the mean of the steps' losses
    assert res.history[0]["train_loss"] == pytest.approx(np.mean(single["losses"]), rel=1e-6)


def test_global_batches_are_seeded_and_distinct_within_a_batch():
    a, b = global_batches(64, 5, 16, seed=3), global_batches(64, 5, 16, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert all(len(set(u.tolist())) == 16 and u.max() < 64 for u in a)
    assert not all(np.array_equal(u, v) for u, v in zip(a, global_batches(64, 5, 16, seed=4)))
    with pytest.raises(ValueError, match="global_batch must lie in"):
        global_batches(8, 1, 16)


def test_shard_and_errors():
    assert shard(np.arange(7), 1, 3).tolist() == [1, 4]
    with pytest.raises(ValueError, match="rank must lie"):
        shard(np.arange(4), 2, 2)
    with pytest.raises(RuntimeError, match="process group"):
        average_gradients(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown mode"):
        train("horovod")


def test_tile_stream_splits_patients_across_ranks():
    from oncolab.data.prostate import prostate_cohort

    cohort = prostate_cohort(5, seed=0, slide_size=256)
    seen = []
    for rank in range(2):
        stream = SlideTileStream(cohort, np.arange(5), n_tiles=2, tile=16, rank=rank, world_size=2)
        for i, bag in stream:
            assert bag.shape == (3, 2, 18)
            seen.append(i)
    assert sorted(seen) == [0, 1, 2, 3, 4]
