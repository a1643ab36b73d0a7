"""A tiny BERT pretrained with masked language modelling, and sentence embeddings from it.

Taught in chapter 6 ("From blood tests to sentences"); the self-attention inside each layer
is built by hand in chapter 4.

Masked language modelling (MLM), as in the BERT paper:

1. choose 15% of the ordinary (non-special, non-padding) tokens of each text;
2. of the chosen tokens, replace 80% by ``[MASK]``, 10% by a random token, and leave 10%
   unchanged (so that the model cannot rely on ``[MASK]`` marking what to predict);
3. the loss is the cross-entropy of the model's prediction at the chosen positions only:
   ``-mean_i log softmax(logits_i)[original token_i]``; every other position has label -100.

:func:`mask_tokens` and :func:`mlm_loss` do this by hand; the unit tests check them against
``transformers.DataCollatorForLanguageModeling`` (same proportions) and against the loss
``BertForMaskedLM`` computes itself (same number).

A sentence embedding is the final layer's vector at ``[CLS]`` or the mean over the text's
tokens (:func:`embed_texts`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..training import fit

__all__ = [
    "embed_texts",
    "evaluate_mlm",
    "mask_tokens",
    "mlm_loss",
    "pretrain_mlm",
    "tiny_bert",
    "tiny_bert_config",
]


def tiny_bert_config(vocab_size: int, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 2,
                     intermediate_size: int | None = None, max_length: int = 256, pad_token_id: int = 0):
    """A ``transformers.BertConfig`` for a BERT small enough to pretrain on a CPU in minutes.

    Taught in chapter 6 (through :func:`tiny_bert`). Dropout is 0.1 on the hidden states and
    on the attention probabilities, as in BERT.

    Parameters
    ----------
    vocab_size : int
        Size of the tokenizer's vocabulary.
    hidden_size : int, default 64
        Width of every layer; a multiple of ``num_heads``.
    num_layers : int, default 2
        Transformer layers.
    num_heads : int, default 2
        Attention heads per layer.
    intermediate_size : int, optional
        Width of the feed-forward block; ``2 * hidden_size`` by default.
    max_length : int, default 256
        Most positions (``max_position_embeddings``).
    pad_token_id : int, default 0
        Id of the padding token.

    Returns
    -------
    transformers.BertConfig

    Raises
    ------
    ValueError
        When a size is not a positive integer or ``hidden_size`` is not a multiple of
        ``num_heads``.
    """
    from transformers import BertConfig

    for name, v in (("vocab_size", vocab_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                    ("num_heads", num_heads), ("max_length", max_length)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
    return BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                      num_attention_heads=num_heads, intermediate_size=intermediate_size or 2 * hidden_size,
                      max_position_embeddings=max_length, pad_token_id=pad_token_id,
                      hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def tiny_bert(tokenizer, seed: int = 0, **config):
    """A freshly initialised ``BertForMaskedLM`` for ``tokenizer``'s vocabulary (seeded).

    Taught in chapter 6. The weights are drawn after ``torch.manual_seed(seed)`` inside
    ``torch.random.fork_rng``, so PyTorch's global random state is left as it was.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerFast
        Gives the vocabulary size and the padding id (e.g. from
        :func:`~oncolab.text.train_wordpiece`).
    seed : int, default 0
        Seeds the initial weights; a non-negative integer.
    **config
        Further arguments of :func:`tiny_bert_config` (``hidden_size``, ``num_layers``, ...).

    Returns
    -------
    transformers.BertForMaskedLM
        In eval mode.

    Raises
    ------
    ValueError
        When ``seed`` or a size is invalid.
    """
    from transformers import BertForMaskedLM

    cfg = tiny_bert_config(len(tokenizer), pad_token_id=tokenizer.pad_token_id, **config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_check_seed(seed))
        model = BertForMaskedLM(cfg)
    model.eval()
    return model


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, mask_token_id: int, vocab_size: int,
                mlm_probability: float = 0.15, seed: int | torch.Generator = 0):
    """BERT's masking by hand: returns ``(masked_input_ids, labels)``.

    ``special_mask`` is True at ``[CLS]``, ``[SEP]`` and padding (never chosen). Labels are
    the original ids at chosen positions and -100 elsewhere. ``seed`` (or a
    ``torch.Generator``) makes the draw reproducible. Taught in chapter 6; the random
    replacement may be any id below ``vocab_size``, as in ``transformers``' collator.

    Parameters
    ----------
    input_ids : torch.Tensor of int, shape (batch, length)
        Token ids.
    special_mask : torch.Tensor, shape (batch, length)
        True (or 1) where a position must not be chosen.
    mask_token_id : int
        Id of ``[MASK]``.
    vocab_size : int
        Random replacements are drawn from ``0 .. vocab_size - 1``.
    mlm_probability : float, default 0.15
        Chance that an ordinary position is chosen, in (0, 1).
    seed : int or torch.Generator, default 0
        Seed of a fresh generator, or a generator to draw from (it advances).

    Returns
    -------
    masked_input_ids : torch.Tensor, like ``input_ids``
        A copy with the chosen positions masked or replaced.
    labels : torch.Tensor, like ``input_ids``
        The original id at chosen positions, -100 elsewhere.

    Raises
    ------
    ValueError
        When ``mlm_probability`` is outside (0, 1), the shapes differ, or ``seed`` is not a
        non-negative integer.
    """
    if not 0 < mlm_probability < 1:
        raise ValueError(f"mlm_probability must lie in (0, 1), got {mlm_probability}")
    if input_ids.shape != special_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and special_mask "
                         f"{tuple(special_mask.shape)} must have the same shape")
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(_check_seed(seed))
    special_mask = special_mask.bool()
    chosen = (torch.rand(input_ids.shape, generator=g) < mlm_probability) & ~special_mask
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    u = torch.rand(input_ids.shape, generator=g)
    to_mask = chosen & (u < 0.8)
    to_random = chosen & (u >= 0.8) & (u < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=g, dtype=input_ids.dtype)
    out = input_ids.clone()
    out[to_mask] = mask_token_id
    out[to_random] = random_ids[to_random]
    return out, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at the labelled positions, by hand: ``-mean log softmax(logits)[label]``.

    Taught in chapter 6 (checked against the loss ``BertForMaskedLM`` computes itself).

    Parameters
    ----------
    logits : torch.Tensor, shape (batch, length, vocab_size)
        The model's scores.
    labels : torch.Tensor of int, shape (batch, length)
        Target ids, -100 where a position is not scored.

    Returns
    -------
    torch.Tensor
        A scalar: the mean over the labelled positions, differentiable in ``logits``.

    Raises
    ------
    ValueError
        When the shapes do not match or no position is labelled.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    keep = labels != -100
    if not keep.any():
        raise ValueError("no position is labelled (all labels are -100)")
    z = logits[keep]
    log_probs = z - torch.logsumexp(z, dim=-1, keepdim=True)
    return -log_probs.gather(1, labels[keep].unsqueeze(1)).mean()


def _encode(tokenizer, texts: Sequence[str], max_length: int):
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    return tokenizer(texts, truncation=True, max_length=max_length, return_special_tokens_mask=True)


def _batch(enc, idx, pad_id: int):
    ids = [enc["input_ids"][i] for i in idx]
    spec = [enc["special_tokens_mask"][i] for i in idx]
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    special = torch.ones((len(ids), width), dtype=torch.bool)
    attn = torch.zeros((len(ids), width), dtype=torch.long)
    for r, (a, s) in enumerate(zip(ids, spec)):
        input_ids[r, :len(a)] = torch.tensor(a)
        special[r, :len(a)] = torch.tensor(s, dtype=torch.bool)
        attn[r, :len(a)] = 1
    return input_ids, special, attn


def evaluate_mlm(model, tokenizer, texts: Sequence[str], seed: int = 0, batch_size: int = 64,
                 max_length: int = 256) -> float:
    """Mean MLM loss on ``texts`` with a fixed, seeded masking (comparable before/after training).

    Taught in chapter 6 (the held-out loss before and after pretraining). The model is run in
    eval mode (no dropout) on the CPU tensors it is given, and its mode is restored after.

    Parameters
    ----------
    model : transformers.BertForMaskedLM
        The model to score.
    tokenizer : transformers.PreTrainedTokenizerFast
        Its tokenizer.
    texts : sequence of str
        The texts, at least one.
    seed : int, default 0
        Seeds the masking: the same seed masks the same positions the same way.
    batch_size : int, default 64
        Texts per forward pass.
    max_length : int, default 256
        Texts are truncated to this many tokens.

    Returns
    -------
    float
        The MLM loss averaged over every masked position of every text.

    Raises
    ------
    TypeError
        When ``texts`` is one string.
    ValueError
        When ``texts`` is empty or ``seed`` is invalid.
    """
    enc = _encode(tokenizer, texts, max_length)
    g = torch.Generator().manual_seed(_check_seed(seed))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(enc["input_ids"]), batch_size):
            idx = range(start, min(start + batch_size, len(enc["input_ids"])))
            ids, special, attn = _batch(enc, idx, tokenizer.pad_token_id)
            masked, labels = mask_tokens(ids, special, tokenizer.mask_token_id, len(tokenizer), seed=g)
            n = int((labels != -100).sum())
            if n == 0:
                continue
            logits = model(input_ids=masked, attention_mask=attn).logits
            total += float(mlm_loss(logits, labels)) * n
            count += n
    model.train(was_training)
    return total / count


def pretrain_mlm(model, tokenizer, texts: Sequence[str], epochs: int = 10, batch_size: int = 32,
                 lr: float = 1e-3, seed: int = 0, max_length: int = 256, weight_decay: float = 0.01,
                 callback=None) -> dict:
    """Pretrain ``model`` (a ``BertForMaskedLM``) on ``texts`` with MLM; chapter 6.

    Shuffled mini-batches of texts, each masked afresh with :func:`mask_tokens`; AdamW with
    a linear warm-up over the first 10% of the steps, then a linear decay to 0; gradients
    clipped to norm 1. The loop is :func:`oncolab.training.fit`; a batch with no masked token
    is skipped.

    Parameters
    ----------
    model : transformers.BertForMaskedLM
        The model to pretrain (in place; left in eval mode).
    tokenizer : transformers.PreTrainedTokenizerFast
        Its tokenizer (with ``[MASK]`` and padding tokens).
    texts : sequence of str
        The training texts.
    epochs, batch_size, lr, weight_decay : int, int, float, float
        Epochs, texts per batch, peak learning rate and AdamW's weight decay.
    seed : int
        Seeds the order of the texts, the masking and dropout: same seed, same weights.
    max_length : int
        Texts are truncated to this many tokens.
    callback : callable or None
        ``callback(epoch, loss)`` after each epoch.

    Returns
    -------
    dict
        ``"loss"``: the mean MLM loss of each epoch (over its batches, weighted by their
        numbers of texts); ``"seconds"``: wall-clock time; ``"steps"``: optimiser steps taken.

    Raises
    ------
    TypeError
        When ``texts`` is one string.
    ValueError
        When ``epochs`` or ``batch_size`` is not a positive integer, ``seed`` is invalid, or
        ``texts`` is empty.
    """
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    seed = _check_seed(seed)
    enc = _encode(tokenizer, texts, max_length)
    n = len(enc["input_ids"])
    masking = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device

    def loss_fn(m, idx):
        ids, special, attn = _batch(enc, idx.tolist(), tokenizer.pad_token_id)
        masked, labels = mask_tokens(ids, special, tokenizer.mask_token_id, len(tokenizer), seed=masking)
        if not (labels != -100).any():
            return None
        return m(input_ids=masked.to(device), attention_mask=attn.to(device), labels=labels.to(device)).loss

    def warmup_linear(opt, total):
        warm = max(1, total // 10)
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))

    res = fit(model, loss_fn, torch.arange(n), epochs=epochs, lr=lr, weight_decay=weight_decay,
              optimizer="adamw", batch_size=batch_size, schedule=warmup_linear, clip_grad_norm=1.0, seed=seed,
              callback=None if callback is None else lambda rec: callback(rec["epoch"], rec["train_loss"]))
    return {"loss": res.curve("train_loss"), "seconds": res.seconds, "steps": res.steps}


def embed_texts(model, tokenizer, texts: Sequence[str], pooling: str = "mean", batch_size: int = 64,
                max_length: int = 256) -> np.ndarray:
    """One vector per text from the last layer: ``pooling="cls"`` or ``"mean"`` (over tokens).

    ``model`` is a ``BertForMaskedLM`` (its ``.bert`` encoder is used) or a ``BertModel``.
    Mean pooling averages the vectors of the text's tokens, ``[CLS]`` and ``[SEP]`` included,
    padding excluded. Taught in chapter 6. The encoder runs in eval mode on the CPU tensors it
    is given; its mode is restored after.

    Parameters
    ----------
    model : transformers.BertForMaskedLM or transformers.BertModel
        The encoder.
    tokenizer : transformers.PreTrainedTokenizerFast
        Its tokenizer.
    texts : sequence of str
        The texts, at least one.
    pooling : {"mean", "cls"}, default "mean"
        How the token vectors become one vector.
    batch_size : int, default 64
        Texts per forward pass.
    max_length : int, default 256
        Texts are truncated to this many tokens.

    Returns
    -------
    numpy.ndarray of float32, shape (len(texts), hidden_size)

    Raises
    ------
    TypeError
        When ``texts`` is one string.
    ValueError
        When ``pooling`` is unknown or ``texts`` is empty.
    """
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
    encoder = getattr(model, "bert", model)
    enc = _encode(tokenizer, texts, max_length)
    was_training = encoder.training
    encoder.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(enc["input_ids"]), batch_size):
            idx = range(start, min(start + batch_size, len(enc["input_ids"])))
            ids, _, attn = _batch(enc, idx, tokenizer.pad_token_id)
            h = encoder(input_ids=ids, attention_mask=attn).last_hidden_state
            if pooling == "cls":
                out.append(h[:, 0])
            else:
                m = attn.unsqueeze(-1).to(h.dtype)
                out.append((h * m).sum(1) / m.sum(1))
    encoder.train(was_training)
    return torch.cat(out).numpy().astype(np.float32)
