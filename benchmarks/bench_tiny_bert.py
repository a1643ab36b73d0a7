"""Tiny BERT on a CPU: WordPiece training time, MLM pretraining time, MLM loss before and after.

    python benchmarks/bench_tiny_bert.py [--patients 600] [--epochs 10] [--hidden 64] [--threads 1]

Prints one line per figure. The cohort's narratives are split as in chapter 6: the tokenizer
and the model are trained on the fitting patients (train + validation) and the MLM loss is
measured on the test patients' narratives with a fixed, seeded masking. Wall-clock timings
depend on the machine and on what else is running on it; the CPU time of the process is
printed beside them.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from oncolab.data import synthetic_cohort, train_val_test_split
from oncolab.metrics import bootstrap_ci, macro_auc
from oncolab.text import (
    embed_texts,
    embedding_model,
    evaluate_mlm,
    narrate_cohort,
    pretrain_mlm,
    tiny_bert,
    train_wordpiece,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cohort = synthetic_cohort(args.patients, seed=args.seed, modalities=["labs", "clinical"])
    split = train_val_test_split(cohort, seed=args.seed)
    fit = np.sort(np.r_[split["train"], split["val"]])
    test = split["test"]
    t0 = time.perf_counter()
    texts = narrate_cohort(cohort, seed=args.seed)
    t_narrate = time.perf_counter() - t0
    fit_texts, test_texts = [texts[i] for i in fit], [texts[i] for i in test]
    t0 = time.perf_counter()
    tok = train_wordpiece(fit_texts, args.vocab)
    t_tok = time.perf_counter() - t0
    n_tokens = [len(tok(t)["input_ids"]) for t in fit_texts]
    model = tiny_bert(tok, seed=args.seed, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads)
    before = evaluate_mlm(model, tok, test_texts, seed=args.seed)
    cpu0 = time.process_time()
    hist = pretrain_mlm(model, tok, fit_texts, epochs=args.epochs, batch_size=args.batch, lr=args.lr, seed=args.seed)
    cpu_pretrain = time.process_time() - cpu0
    after = evaluate_mlm(model, tok, test_texts, seed=args.seed)
    t0 = time.perf_counter()
    emb = embed_texts(model, tok, texts, pooling="mean")
    t_embed = time.perf_counter() - t0
    clf = embedding_model().fit(emb[fit], cohort.y[fit])
    auc, lo, hi = bootstrap_ci(macro_auc, cohort.y[test], clf.predict_proba(emb[test]), n_boot=500, seed=args.seed)

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"patients: {args.patients} ({len(fit)} fit, {len(test)} test); tokens per narrative: "
          f"mean {np.mean(n_tokens):.0f}, max {max(n_tokens)}")
    print(f"narrating {len(texts)} patients: {t_narrate:.2f} s")
    print(f"WordPiece training (vocabulary {len(tok)}): {t_tok:.2f} s")
    print(f"tiny BERT: {args.layers} layers, hidden {args.hidden}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"MLM pretraining: {args.epochs} epochs, {hist['steps']} steps, {hist['seconds']:.1f} s "
          f"({hist['seconds'] / hist['steps'] * 1000:.0f} ms per step); CPU time {cpu_pretrain:.1f} s "
          "(less sensitive to other programs on the machine)")
    print(f"MLM loss per epoch (training): {' '.join(f'{x:.3f}' for x in hist['loss'])}")
    print(f"held-out MLM loss: before {before:.3f}, after {after:.3f} (log vocabulary {np.log(len(tok)):.3f})")
    print(f"embedding {len(texts)} narratives: {t_embed:.2f} s")
    print(f"mean-pooled embeddings -> logistic regression, held-out macro AUC {auc:.3f} (95% CI {lo:.3f}-{hi:.3f})")


if __name__ == "__main__":
    main()
