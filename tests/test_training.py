"""oncolab.training: the shared fit loop against hand-written loops and least squares; seeds,
early stopping, threads, modes, data forms and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oncolab.training import FitResult, fit, limit_threads


def _regression(n=96, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.1, n)
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


def _linear(p=3, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(p, 1)


def _mse(model, batch):
    x, y = batch
    return torch.mean((model(x).squeeze(-1) - y) ** 2)


def _mlp(seed=0, p=3, dropout=0.2):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(p, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_full_batch_fit_equals_a_hand_written_loop(optimizer):
    X, y = _regression()
    ours, ref = _linear(), _linear()
    res = fit(ours, _mse, (X, y), epochs=25, lr=0.05, weight_decay=1e-3, optimizer=optimizer, momentum=0.9,
              clip_grad_norm=1.0, seed=0)
    make = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[optimizer]
    kw = {"momentum": 0.9} if optimizer == "sgd" else {}
    opt = make(ref.parameters(), lr=0.05, weight_decay=1e-3, **kw)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = _mse(ref, (X, y))
        loss.backward()
        nn.utils.clip_grad_norm_(list(ref.parameters()), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    assert _same_weights(ours, ref)
    assert res.curve("train_loss") == losses
    assert res.steps == 25 and res.best_epoch == 24 and not res.stopped_early and res.seconds > 0
    assert not ours.training


def test_mini_batch_fit_of_a_cnn_equals_a_hand_written_loop():
    # chapter 2's check: the same initial weights and the same batches in the same order give the
    # same weights and batch-norm statistics as a plain epoch / batch loop
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(40, 1, 12, 12, generator=g), torch.randint(0, 3, (40,), generator=g)

    def cnn():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def loss_fn(model, idx):
        return F.cross_entropy(model(X[idx]), y[idx])

    order = torch.Generator().manual_seed(1)
    batches = [torch.randperm(40, generator=order).split(16) for _ in range(3)]
    ref = cnn()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    losses = []
    for epoch in range(3):
        ref.train()
        total = 0.0
        for idx in batches[epoch]:
            loss = loss_fn(ref, idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / 40)
    ours = cnn()
    res = fit(ours, loss_fn, lambda epoch: batches[epoch], epochs=3, lr=1e-2, seed=0)
    assert _same_weights(ours, ref)  # every weight and batch-norm buffer, bit for bit
    assert not _same_weights(ours, cnn())  # and training did move them
    np.testing.assert_allclose(res.curve("train_loss"), losses, rtol=1e-6)
    assert res.steps == 3 * 3 and not ours.training


def test_fit_reaches_the_least_squares_solution():
    X, y = _regression(n=200)
    A = np.c_[X.numpy(), np.ones(len(X))]
    coef = np.linalg.lstsq(A, y.numpy(), rcond=None)[0]
    for batch_size in (None, 32):
        model = _linear()
        fit(model, _mse, (X, y), epochs=300 if batch_size is None else 60, lr=0.05, batch_size=batch_size, seed=1)
        got = np.r_[model.weight.detach().numpy().ravel(), model.bias.detach().numpy()]
        np.testing.assert_allclose(got, coef, atol=0.03)


def test_same_seed_same_bytes_and_global_state_untouched():
    X, y = _regression()
    Xv, yv = _regression(seed=1)

    def run(seed):
        model = _mlp()
        res = fit(model, _mse, (X, y), val=(Xv, yv), epochs=8, lr=1e-2, batch_size=16, seed=seed, patience=3)
        return model, res

    state = torch.get_rng_state()
    (a, ra), (b, rb), (c, _) = run(3), run(3), run(4)
    assert torch.equal(state, torch.get_rng_state())
    assert _same_weights(a, b) and ra.history == rb.history
    assert not _same_weights(a, c)


def test_mini_batches_are_shuffled_each_epoch_and_cover_every_row():
    X = torch.arange(10, dtype=torch.float32)[:, None]
    seen: list[list[int]] = []

    def loss_fn(model, x):
        if model.training:
            seen.append(x[:, 0].long().tolist())
        return model(x).mean() * 0.0 + model.weight.sum() * 0.0

    fit(nn.Linear(1, 1), loss_fn, X, epochs=3, lr=0.1, batch_size=4, seed=0)
    assert [len(b) for b in seen] == [4, 4, 2] * 3
    epochs = [sorted(sum(seen[i:i + 3], [])) for i in (0, 3, 6)]
    assert all(e == list(range(10)) for e in epochs)
    orders = [sum(seen[i:i + 3], []) for i in (0, 3, 6)]
    assert len({tuple(o) for o in orders}) > 1
    seen.clear()
    fit(nn.Linear(1, 1), loss_fn, X, epochs=1, lr=0.1, batch_size=4, shuffle=False, seed=0)
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_early_stopping_restores_the_best_epoch():
    # 20 noisy training points, a wide network, no dropout: it overfits, the validation loss
    # falls then rises
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(20, 3)), dtype=torch.float32)
    y = X[:, 0] + torch.as_tensor(rng.normal(0, 1.0, 20), dtype=torch.float32)
    Xv = torch.as_tensor(rng.normal(size=(200, 3)), dtype=torch.float32)
    yv = Xv[:, 0] + torch.as_tensor(rng.normal(0, 1.0, 200), dtype=torch.float32)
    model = _mlp(dropout=0.0)
    res = fit(model, _mse, (X, y), val=(Xv, yv), epochs=2000, lr=3e-2, patience=15, seed=0)
    val = res.curve("val_loss")
    assert res.stopped_early and len(val) == res.best_epoch + 15 + 1 < 2000
    assert val[res.best_epoch] == min(val)
    assert val[-1] > val[res.best_epoch]
    with torch.no_grad():
        assert float(_mse(model, (Xv, yv))) == pytest.approx(val[res.best_epoch], rel=1e-6)
    # the same run, stopped by hand after the best epoch, holds the same weights
    again = _mlp(dropout=0.0)
    fit(again, _mse, (X, y), epochs=res.best_epoch + 1, lr=3e-2, seed=0)
    assert _same_weights(model, again)
    # without restore_best the last epoch's weights stay
    last = _mlp(dropout=0.0)
    res2 = fit(last, _mse, (X, y), val=(Xv, yv), epochs=2000, lr=3e-2, patience=15, restore_best=False, seed=0)
    with torch.no_grad():
        assert float(_mse(last, (Xv, yv))) == pytest.approx(res2.curve("val_loss")[-1], rel=1e-6)


def test_threads_are_limited_during_the_fit_and_restored():
    X, y = _regression()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside = []

    def loss_fn(model, batch):
        inside.append(torch.get_num_threads())
        return _mse(model, batch)

    try:
        fit(_linear(), loss_fn, (X, y), epochs=2, lr=0.1, seed=0, threads=1)
        assert set(inside) == {1} and torch.get_num_threads() == 2

        def boom(model, batch):
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fit(_linear(), boom, (X, y), epochs=2, lr=0.1, seed=0, threads=1)
        assert torch.get_num_threads() == 2
        inside.clear()
        fit(_linear(), loss_fn, (X, y), epochs=1, lr=0.1, seed=0)
        assert inside == [2]
        with limit_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            with limit_threads(0):
                pass
    finally:
        torch.set_num_threads(before)


def test_train_and_eval_modes_and_extra_numbers():
    X, y = _regression()
    Xv, yv = _regression(seed=2)
    calls = []

    def loss_fn(model, batch):
        calls.append((model.training, torch.is_grad_enabled(), len(batch[0])))
        loss = _mse(model, batch)
        return loss, {"rows": float(len(batch[0]))}

    model = _mlp()
    res = fit(model, loss_fn, (X, y), val=(Xv, yv), epochs=2, lr=1e-2, batch_size=40, val_batch_size=50, seed=0)
    assert calls[:5] == [(True, True, 40), (True, True, 40), (True, True, 16), (False, False, 50),
                         (False, False, 46)]
    assert not model.training
    rec = res.history[0]
    assert set(rec) == {"epoch", "train_loss", "train_rows", "val_loss", "val_rows"}
    # means weighted by the batches' rows
    assert rec["train_rows"] == pytest.approx((40 * 40 + 40 * 40 + 16 * 16) / 96)
    assert rec["val_rows"] == pytest.approx((50 * 50 + 46 * 46) / 96)
    # a mean over rows: batched validation equals the loss of the whole set
    model.eval()
    res_last = fit(model, _mse, (X, y), val=(Xv, yv), epochs=1, lr=1e-12, optimizer="sgd", val_batch_size=50, seed=0,
                   restore_best=False)
    with torch.no_grad():
        whole = float(_mse(model, (Xv, yv)))
    assert res_last.history[0]["val_loss"] == pytest.approx(whole, rel=1e-5)


def test_every_data_form_gives_the_same_fit():
    X, y = _regression()

    def run(train, loss_fn):
        model = _linear()
        fit(model, loss_fn, train, epochs=5, lr=0.05, seed=0)
        return model

    ref = run((X, y), _mse)
    as_dict = run({"x": X, "y": y}, lambda m, b: _mse(m, (b["x"], b["y"])))
    nested = run(((X,), {"y": y}), lambda m, b: _mse(m, (b[0][0], b[1]["y"])))
    numpy = run((X.numpy(), y.numpy()), _mse)
    batches = run(lambda epoch: [(X, y)], _mse)
    for m in (as_dict, nested, numpy, batches):
        assert _same_weights(m, ref)


def test_skipped_batches_schedule_and_callback():
    X, y = _regression()
    totals, records = [], []

    def schedule(opt, total):
        totals.append(total)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))

    def loss_fn(model, batch):
        return None if len(batch[0]) < 30 else _mse(model, batch)

    model = _linear()
    res = fit(model, loss_fn, (X, y), epochs=3, lr=0.1, batch_size=30, schedule=schedule, seed=0,
              callback=records.append)
    assert totals == [3 * 4]  # 96 rows in batches of 30: 4 per epoch
    assert res.steps == 3 * 3  # the batch of 6 is skipped each epoch
    assert records == res.history and [r["epoch"] for r in records] == [0, 1, 2]
    with pytest.raises(ValueError, match="batch_size must be None"):
        fit(model, _mse, lambda epoch: [(X, y)], epochs=1, lr=0.1, batch_size=4, seed=0)


def test_progress_bar(capsys):
    X, y = _regression()
    fit(_linear(), _mse, (X, y), epochs=3, lr=0.1, seed=0, progress=True, desc="fitting the line")
    assert "fitting the line" in capsys.readouterr().err


def test_bad_input_raises_clear_errors():
    X, y = _regression()
    m = _linear()
    with pytest.raises(ValueError, match=r"same number of rows.*\[10, 96\]"):
        fit(m, _mse, (X, y[:10]), epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        fit(m, _mse, (X, y), epochs=0, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        fit(m, _mse, (X, y), epochs=1, lr=0.1, seed=0, optimizer="lbfgs")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        fit(m, _mse, (X, y), epochs=1, lr=0.1, seed=-1)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        fit(m, _mse, (X, y), epochs=1, lr=0.0, seed=0)
    with pytest.raises(TypeError, match="training data must be a tensor"):
        fit(m, _mse, "rows", epochs=1, lr=0.1, seed=0)
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(m, lambda model, b: model(b[0]), (X, y), epochs=1, lr=0.1, seed=0)
    with pytest.raises(FloatingPointError, match="epoch 0, batch 0"):
        fit(m, lambda model, b: _mse(model, b) * math.inf, (X, y), epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(nn.ReLU(), _mse, (X, y), epochs=1, lr=0.1, seed=0)


def test_fit_result_curve_names_what_it_records():
    res = FitResult(nn.Linear(1, 1), history=[{"epoch": 0, "train_loss": 1.0}])
    assert res.curve() == [1.0]
    with pytest.raises(KeyError, match="val_loss.*train_loss"):
        res.curve("val_loss")
