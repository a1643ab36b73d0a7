"""The ``oncolab`` command: make a cohort, train and evaluate the whole system, write reports.

Taught in chapter 12 ("The complete system")::

    oncolab cohort --n-patients 200 --seed 0 --out data/cohort
    oncolab run --n-patients 600 --seed 0 --out runs/demo
    oncolab report --model runs/demo --patient 17
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _write_csv(df, path: Path, **kw) -> None:
    tmp = path.with_name(path.name + ".partial")
    df.to_csv(tmp, **kw)
    os.replace(tmp, path)


def _write_json(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=float))
    os.replace(tmp, path)


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``, with a message naming the bad value."""
    def parse(v: str) -> int:
        try:
            i = int(v)
        except ValueError:
            i = None
        if i is None or i < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v!r}")
        return i
    return parse


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


def _cohort(args):
    from .data import synthetic_cohort

    return synthetic_cohort(args.n_patients, seed=args.seed, image_size=args.image_size,
                            slide_size=args.slide_size)


def cmd_cohort(args) -> int:
    from .data import export_cohort

    c = _cohort(args)
    export_cohort(c, args.out)
    print(f"wrote {c!r} to {args.out}")
    return 0


def cmd_run(args) -> int:
    import numpy as np

    from .data import train_val_test_split
    from .report import patient_report
    from .system import LEARNED_CONFIG, OncoLabSystem, ablation, modality_features, subset_features

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cohort = _cohort(args)
    print(f"cohort: {cohort!r}")
    parts = train_val_test_split(cohort, seed=args.seed)
    train = np.sort(np.concatenate([parts["train"], parts["val"]]))
    test = parts["test"]
    config = {"epochs": args.epochs, "seed": args.seed, "progress": not args.quiet,
              **(LEARNED_CONFIG if args.stages == "learned" else {})}
    if args.fusion:
        config["fusion"] = args.fusion
    if args.stages == "learned":
        config.update(detector_epochs=args.detector_epochs, cnn_epochs=args.cnn_epochs, mil_epochs=args.mil_epochs,
                      labs_encoder=args.labs_encoder)
    timings = {}
    t = time.perf_counter()
    features = modality_features(cohort, progress=not args.quiet, config=config)
    timings["features_s"] = time.perf_counter() - t
    t = time.perf_counter()
    system = OncoLabSystem(config).fit(cohort.subset(train), features=subset_features(features, train))
    timings["fit_s"] = time.perf_counter() - t
    test_cohort = cohort.subset(test)
    f_test = subset_features(features, test)
    metrics = system.evaluate(test_cohort, n_boot=args.n_boot, features=f_test)
    oracle = test_cohort.oracle()
    metrics["oracle"] = metrics["metric"].map({"macro_auc": oracle["bayes_auc"], "accuracy": oracle["bayes_accuracy"],
                                               "c_index": oracle["c_index"]})
    _write_csv(metrics, out / "metrics.csv", index=False)
    print("\nheld-out test patients:\n" + metrics.to_string(index=False, float_format="%.3f"))
    system.save(out / "model")
    # save/load round trip must give identical predictions
    from .system import OncoLabSystem as _S

    p1 = system.predict(test_cohort, features=f_test)
    p2 = _S.load(out / "model").predict(test_cohort, features=f_test)
    same = bool(p1.drop(columns=["warnings"]).equals(p2.drop(columns=["warnings"])))
    _write_csv(p1, out / "predictions_test.csv")
    if not args.no_ablation:
        t = time.perf_counter()
        abl = ablation(cohort, train, test, features, config, n_boot=args.n_boot, progress=not args.quiet,
                       stages=system)
        timings["ablation_s"] = time.perf_counter() - t
        bm = oracle["by_modality"]
        abl["oracle_auc"] = [bm[m]["auc"] if m in bm else (oracle["bayes_auc"] if m == "all" else float("nan"))
                             for m in abl["modalities"]]
        _write_csv(abl, out / "ablation.csv", index=False)
        print("\nablation (held-out test patients):\n" + abl.to_string(index=False, float_format="%.3f"))
    vals = metrics.set_index("metric")["value"]
    gaps = {"auc_over_bayes": vals["macro_auc"] / oracle["bayes_auc"],
            "c_index_over_oracle": vals["c_index"] / oracle["c_index"]}
    if not args.no_ablation:
        singles = abl[~abl["modalities"].isin(["all"]) & ~abl["modalities"].str.contains("\\+")]
        best = singles.loc[singles["macro_auc"].idxmax()]
        gaps.update(best_single=str(best["modalities"]), auc_over_best_single=vals["macro_auc"] - best["macro_auc"])
    print("\nfusion against the references: " + ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in gaps.items()))
    reports = []
    for i in range(min(args.reports, len(test))):
        reports.append(str(patient_report(system, test_cohort, i, out / "reports", reference=test_cohort,
                                          reference_predictions=p1)))
    timings["total_s"] = time.perf_counter() - t0
    summary = {"n_patients": args.n_patients, "seed": args.seed, "image_size": args.image_size,
               "slide_size": args.slide_size, "n_train": int(len(train)), "n_test": int(len(test)),
               "config": system.config, "timings": timings, "save_load_identical": same, "reports": reports,
               "against_references": gaps,
               "oracle_test": {k: oracle[k] for k in ("bayes_auc", "bayes_accuracy", "c_index", "c_index_signals")}}
    _write_json(summary, out / "run.json")
    print(f"\nsave/load gives identical predictions: {same}")
    written = ["metrics.csv", "predictions_test.csv", *([] if args.no_ablation else ["ablation.csv"]), "model/",
               *(["reports/"] if reports else []), "run.json"]
    print(f"wrote {', '.join(written)} to {out} in {timings['total_s']:.0f} s")
    return 0 if same else 1


def cmd_report(args) -> int:
    from .data import synthetic_cohort
    from .report import patient_report
    from .system import OncoLabSystem

    run = Path(args.model)
    model_dir = run / "model" if (run / "model" / "config.json").is_file() else run
    summary_path = run / "run.json"
    if not summary_path.is_file():
        print(f"error: {summary_path} not found; --model must be a folder written by `oncolab run`",
              file=sys.stderr)
        return 2
    summary = json.loads(summary_path.read_text())
    system = OncoLabSystem.load(model_dir)
    cohort = synthetic_cohort(summary["n_patients"], seed=summary["seed"], image_size=summary["image_size"],
                              slide_size=summary["slide_size"])
    if not 0 <= args.patient < len(cohort):
        print(f"error: --patient must lie in [0, {len(cohort) - 1}], got {args.patient}", file=sys.stderr)
        return 2
    path = patient_report(system, cohort, args.patient, args.out or run / "reports")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oncolab", description="OncoLab: multimodal AI in oncology, from the "
                                "synthetic cohort to a trained system and per-patient reports.")
    sub = p.add_subparsers(dest="command", required=True)

    def cohort_args(sp):
        sp.add_argument("--n-patients", type=_positive, default=600, help="number of patients (default 600)")
        sp.add_argument("--seed", type=_non_negative, default=0, help="random seed; same seed, same bytes (default 0)")
        sp.add_argument("--image-size", type=_positive, default=256, help="radiograph side in pixels (default 256)")
        sp.add_argument("--slide-size", type=_positive, default=256,
                        help="pathology region side in pixels (default 256, half the cohort's 512, to keep "
                             "a CPU run short)")

    sp = sub.add_parser("cohort", help="generate the synthetic cohort and export it as files (PNG, CSV, YOLO)")
    cohort_args(sp)
    sp.add_argument("--out", required=True, help="output folder")
    sp.set_defaults(func=cmd_cohort)

    sp = sub.add_parser("run", help="train and evaluate the whole system; write metrics, ablation, model, reports")
    cohort_args(sp)
    sp.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    sp.add_argument("--fusion", default=None,
                    choices=["early", "late", "gated", "attention", "bilinear", "crossattn"],
                    help="fusion strategy of the main model (default: late with the learned stages, whose "
                         "log-probabilities add up as evidence; attention with the hand-made ones)")
    sp.add_argument("--stages", default="learned", choices=["learned", "handcrafted"],
                    help="learned (default): YOLO detector, CNN on the lesion window, attention-MIL over slide "
                         "tiles, lab narratives as text; handcrafted: measurements of the annotated box, the "
                         "slide's nuclei and the numeric lab panel (about a third of the time)")
    sp.add_argument("--labs-encoder", default="tfidf", choices=["tfidf", "bert", "biobert", "numeric"],
                    help="with the learned stages: how the lab narrative is encoded (tfidf, default; bert: a tiny "
                         "BERT pretrained on the training narratives, a few minutes more; biobert: from the "
                         "hub, needs a network) or numeric (the values themselves)")
    sp.add_argument("--detector-epochs", type=_positive, default=12,
                    help="YOLO training epochs of the learned stages (default 12)")
    sp.add_argument("--cnn-epochs", type=_positive, default=15,
                    help="training epochs of each cross-fitted radiograph CNN (default 15)")
    sp.add_argument("--mil-epochs", type=_positive, default=40,
                    help="training epochs of each cross-fitted attention-MIL model (default 40)")
    sp.add_argument("--epochs", type=_positive, default=400, help="maximum training epochs (early stopping; default 400)")
    sp.add_argument("--n-boot", type=_non_negative, default=200, help="bootstrap resamples for the intervals (default 200)")
    sp.add_argument("--reports", type=_non_negative, default=3, help="patient reports to write (default 3)")
    sp.add_argument("--no-ablation", action="store_true", help="skip the ablation table")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("report", help="write one patient's report from a run folder")
    sp.add_argument("--model", required=True, help="a folder written by `oncolab run`")
    sp.add_argument("--patient", type=_non_negative, required=True, help="patient number in the run's cohort")
    sp.add_argument("--out", default=None, help="output folder (default <model>/reports)")
    sp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
