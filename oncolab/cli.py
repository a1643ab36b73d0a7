"""The ``oncolab`` command: make a cohort, train and evaluate the whole system, write reports.

Taught in chapter 12 ("The complete system")::

    oncolab cohort --n-patients 200 --seed 0 --out data/cohort
    oncolab run --n-patients 600 --seed 0 --out runs/demo            # preset "learned"
    oncolab run --preset handcrafted --fusion late --out runs/hand
    oncolab validate my_cohort/                                      # every problem, file:line: message
    oncolab run --data my_cohort/ --out runs/mine
    oncolab predict --model runs/demo/model --data new_patients/ --out predictions.csv
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
    """The synthetic cohort of the command: the prostate cohort for a preset made for it, else the bone-tumour one."""
    from .data import MODALITIES, prostate_cohort, synthetic_cohort
    from .pipeline.presets import preset, preset_cohort

    if getattr(args, "preset", None) and preset_cohort(args.preset) == "prostate":
        return prostate_cohort(args.n_patients, seed=args.seed)   # whole slides and MRI: --image-size, --slide-size unused
    wanted = getattr(args, "modalities", None) or (preset(args.preset).modalities if getattr(args, "preset", None)
                                                   else ())
    extra = ("symptoms",) if "symptoms" in wanted else ()     # symptom notes: generated when a run reads them
    return synthetic_cohort(args.n_patients, seed=args.seed, image_size=args.image_size,
                            slide_size=args.slide_size, modalities=list(MODALITIES) + list(extra))


def cmd_cohort(args) -> int:
    from .data import export_cohort

    c = _cohort(args)
    export_cohort(c, args.out)
    print(f"wrote {c!r} to {args.out}")
    return 0


def _load_data(folder: str):
    from .data import load_cohort

    path = Path(folder)
    if not path.is_dir():
        raise SystemExit(f"error: --data {folder!r} is not a folder; expected a cohort folder (see `oncolab cohort`)")
    return load_cohort(path)


def _oracle(cohort):
    """The generator's oracle for a synthetic cohort, else None (a real cohort has no oracle)."""
    from .data import oracle

    return oracle(cohort) if "truth" in cohort.tables else None


def cmd_run(args) -> int:
    import numpy as np

    from .data import train_val_test_split
    from .pipeline import OncoLabSystem, ablation, patient_report, preset, read_inputs
    from .pipeline.config import config_from_args
    from .pipeline.system import outcome_strata

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = config_from_args(args, preset(args.preset), progress=not args.quiet)
    cohort = _load_data(args.data) if args.data else _cohort(args)
    if args.modalities is None:   # by default, every modality of the preset that the cohort has
        have = tuple(m for m in config.modalities if m in cohort.modalities)
        if not have:
            raise SystemExit(f"error: the cohort has none of the modalities {list(config.modalities)}")
        config = config.replace(modalities=have)
    print(f"cohort: {cohort!r}")
    parts = train_val_test_split(outcome_strata(cohort), seed=config.seed)  # patient-level, stratified
    train = np.sort(np.concatenate([parts["train"], parts["val"]]))
    test = parts["test"]
    timings = {}
    t = time.perf_counter()
    inputs = read_inputs(cohort, config)
    timings["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    system = OncoLabSystem(config).fit(cohort.subset(train), inputs=inputs.subset(train))
    timings["fit_s"] = time.perf_counter() - t
    test_cohort = cohort.subset(test)
    i_test = inputs.subset(test)
    metrics = system.evaluate(test_cohort, n_boot=args.n_boot, inputs=i_test)
    detector = getattr(system.stages.get("radiograph"), "detector", None)
    if (detector is not None and detector.name != "annotated" and "boxes" in test_cohort.tables
            and np.isfinite(test_cohort.boxes[["x0", "y0", "x1", "y1"]].to_numpy(float)).all(1).any()):
        import pandas as pd

        from .pipeline.experiments import detection_metrics

        metrics = pd.concat([metrics, detection_metrics(system, test_cohort, n_boot=args.n_boot)], ignore_index=True)
    oracle = _oracle(test_cohort)
    if oracle is not None:
        metrics["oracle"] = metrics["metric"].map({m: oracle[k] for m, k in (("macro_auc", "bayes_auc"),
                                                                             ("accuracy", "bayes_accuracy"),
                                                                             ("c_index", "c_index")) if k in oracle})
    _write_csv(metrics, out / "metrics.csv", index=False)
    print("\nheld-out test patients:\n" + metrics.drop(columns=["note"]).to_string(index=False, float_format="%.3f"))
    if system.label_note:
        print(f"note: {system.label_note}")
    if "detector_map50" in set(metrics["metric"]):
        print(f"note: detector_map50 and detector_map50_95: {metrics.set_index('metric').at['detector_map50', 'note']}")
    system.save(out / "model")
    p1 = system.predict(test_cohort, inputs=i_test)
    p2 = OncoLabSystem.load(out / "model").predict(test_cohort, inputs=i_test)
    same = bool(p1.drop(columns=["warnings"]).equals(p2.drop(columns=["warnings"])))
    _write_csv(p1, out / "predictions_test.csv")
    vals = metrics.set_index("metric")["value"]
    gaps = {}
    if oracle is not None and {"macro_auc", "c_index"} <= set(vals.index) and {"bayes_auc", "c_index"} <= set(oracle):
        gaps = {"auc_over_bayes": vals["macro_auc"] / oracle["bayes_auc"],
                "c_index_over_oracle": vals["c_index"] / oracle["c_index"]}
    if not args.no_ablation:
        t = time.perf_counter()
        abl = ablation(cohort, train, test, inputs, config, n_boot=args.n_boot, progress=not args.quiet,
                       stages=system)
        timings["ablation_s"] = time.perf_counter() - t
        if oracle is not None and "bayes_auc" in oracle:
            bm = oracle["by_modality"]
            abl["oracle_auc"] = [bm[m]["auc"] if m in bm else (oracle["bayes_auc"] if m == "all" else float("nan"))
                                 for m in abl["modalities"]]
        _write_csv(abl, out / "ablation.csv", index=False)
        print("\nablation (held-out test patients):\n"
              + abl.drop(columns=["note"]).to_string(index=False, float_format="%.3f"))
        singles = abl[~abl["modalities"].isin(["all"]) & ~abl["modalities"].str.contains("\\+")]
        if len(singles) and "macro_auc" in abl.columns:
            best = singles.loc[singles["macro_auc"].idxmax()]
            gaps.update(best_single=str(best["modalities"]), auc_over_best_single=vals["macro_auc"] - best["macro_auc"])
    if gaps:
        print("\nfusion against the references: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in gaps.items()))
    reports = []
    for i in range(min(args.reports, len(test))):
        reports.append(str(patient_report(system, test_cohort, i, out / "reports", reference=test_cohort,
                                          reference_predictions=p1)))
    timings["total_s"] = time.perf_counter() - t0
    summary = {"data": args.data, "n_patients": len(cohort), "seed": config.seed, "image_size": args.image_size,
               "slide_size": args.slide_size, "n_train": int(len(train)), "n_test": int(len(test)),
               "preset": args.preset, "config": system.config.to_dict(), "timings": timings,
               "save_load_identical": same, "reports": reports, "against_references": gaps,
               "label_note": system.label_note}
    if oracle is not None:
        summary["oracle_test"] = {k: oracle[k] for k in ("bayes_auc", "bayes_accuracy", "c_index", "c_index_signals")
                                  if k in oracle}
    _write_json(summary, out / "run.json")
    print(f"\nsave/load gives identical predictions: {same}")
    written = ["metrics.csv", "predictions_test.csv", *([] if args.no_ablation else ["ablation.csv"]), "model/",
               *(["reports/"] if reports else []), "run.json"]
    print(f"wrote {', '.join(written)} to {out} in {timings['total_s']:.0f} s")
    return 0 if same else 1


def cmd_validate(args) -> int:
    from .data import validate_cohort

    problems = validate_cohort(args.folder)
    for p in problems:
        print(f"{p.level}: {p}")
    errors = sum(p.level == "error" for p in problems)
    print(f"{args.folder}: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def cmd_predict(args) -> int:
    from .pipeline import OncoLabSystem

    system = OncoLabSystem.load(args.model)
    cohort = _load_data(args.data)
    pred = system.predict(cohort, on_bad_image="mask", missing_modalities="mask")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(pred, out)
    print(f"wrote predictions of {len(pred)} patients to {out}")
    return 0


def cmd_report(args) -> int:
    from .pipeline import OncoLabSystem, patient_report

    run = Path(args.model)
    model_dir = run / "model" if (run / "model" / "config.json").is_file() else run
    summary_path = run / "run.json"
    if not summary_path.is_file():
        print(f"error: {summary_path} not found; --model must be a folder written by `oncolab run`",
              file=sys.stderr)
        return 2
    summary = json.loads(summary_path.read_text())
    system = OncoLabSystem.load(model_dir)
    cohort = (_load_data(summary["data"]) if summary.get("data") else
              _cohort(argparse.Namespace(preset=summary.get("preset"), n_patients=summary["n_patients"],
                                         seed=summary["seed"], image_size=summary["image_size"],
                                         slide_size=summary["slide_size"])))
    if not 0 <= args.patient < len(cohort):
        print(f"error: --patient must lie in [0, {len(cohort) - 1}], got {args.patient}", file=sys.stderr)
        return 2
    path = patient_report(system, cohort, args.patient, args.out or run / "reports")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``oncolab`` argument parser; the ``run`` options are generated from :class:`~oncolab.pipeline.SystemConfig`."""
    from .pipeline import PRESETS
    from .pipeline.config import add_arguments
    from .pipeline.presets import PRESET_SUMMARIES

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

    presets_text = "presets (--preset NAME):\n" + "\n".join(
        f"  {name:<15}{PRESET_SUMMARIES[name]}" for name in PRESETS)
    sp = sub.add_parser("run", help="train and evaluate the whole system; write metrics, ablation, model, reports",
                        epilog=presets_text, formatter_class=argparse.RawDescriptionHelpFormatter)
    cohort_args(sp)
    sp.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    sp.add_argument("--data", default=None,
                    help="a cohort folder to train and evaluate on (default: generate the synthetic cohort)")
    sp.add_argument("--preset", default="learned", choices=list(PRESETS),
                    help="named configuration (default learned; each is described below, and in "
                         "oncolab.pipeline.presets); the options below change it")
    sp.add_argument("--n-boot", type=_non_negative, default=200, help="bootstrap resamples for the intervals (default 200)")
    sp.add_argument("--reports", type=_non_negative, default=3, help="patient reports to write (default 3)")
    sp.add_argument("--no-ablation", action="store_true", help="skip the ablation table")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")
    add_arguments(sp, skip=("progress", "seed"))  # --seed (above) seeds both the cohort and the system
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("validate", help="check a cohort folder and report every problem as file:line: message")
    sp.add_argument("folder", help="a cohort folder (see the book page 'Your own cohort')")
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("predict", help="predict new patients of a cohort folder with a saved model")
    sp.add_argument("--model", required=True, help="a model folder (model/ of `oncolab run`)")
    sp.add_argument("--data", required=True, help="a cohort folder")
    sp.add_argument("--out", required=True, help="output CSV file")
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("report", help="write one patient's report from a run folder")
    sp.add_argument("--model", required=True, help="a folder written by `oncolab run`")
    sp.add_argument("--patient", type=_non_negative, required=True, help="patient number in the run's cohort")
    sp.add_argument("--out", default=None, help="output folder (default <model>/reports)")
    sp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``oncolab`` command with ``argv`` (default: the process's arguments); return its exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
