"""A per-patient report: Markdown with figures, from a fitted :class:`~oncolab.system.OncoLabSystem`.

Taught in chapter 12 ("The complete system").

The report shows, for one patient: the radiograph with the lesion box the system used and
the slide region; the lab panel as a narrative (:func:`oncolab.text.narrate`) with the
abnormal values listed; the genes furthest from the training average; each modality's weight
in the fused prediction (for fusions that have weights); the predicted diagnosis with its
probabilities; the risk group, and where the patient sits on the Kaplan-Meier curves of the
risk groups of a reference cohort. Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DIAGNOSES, Cohort, flag_value

__all__ = ["abnormal_labs", "patient_report", "top_genes"]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def _save_fig(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def abnormal_labs(labs: dict, sex: str | None = None, age: float | None = None) -> pd.DataFrame:
    """The lab values outside their reference range (flag from :func:`oncolab.data.flag_value`)."""
    rows = []
    for name, value in labs.items():
        flag = flag_value(name, value, sex, age)
        if flag in ("low", "high", "critical"):
            rows.append({"analyte": name, "value": value, "flag": flag})
    return pd.DataFrame(rows, columns=["analyte", "value", "flag"])


def top_genes(system, genes: pd.Series, k: int = 8) -> pd.DataFrame:
    """The ``k`` genes whose standardised log-expression is furthest from the training mean."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pre = system.encoders["genes"].pre
    z = pre.transform(pd.DataFrame([genes[pre.genes].to_numpy()], columns=pre.genes))[0]
    order = np.argsort(-np.abs(z))[:k]
    return pd.DataFrame({"gene": [pre.genes[i] for i in order], "z": z[order]})


def patient_report(system, cohort: Cohort, patient: int | str, out_dir: str | os.PathLike,
                   reference: Cohort | None = None, reference_predictions: pd.DataFrame | None = None) -> Path:
    """Write ``out_dir/<patient_id>.md`` and its figures; return the Markdown file's path.

    ``reference`` (default ``cohort``) gives the Kaplan-Meier curves of the three risk groups;
    ``reference_predictions`` (``system.predict(reference)``, when already computed) saves
    computing them again.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .survival import kaplan_meier

    system._check_fitted()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = cohort.patient(patient)
    pid = p.patient_id
    pred = system.predict(cohort.subset([pid])).iloc[0]
    lines = [f"# Patient {pid}", ""]
    clin = p.clinical
    if clin:
        lines += [f"{clin.get('age', '?'):.0f}-year-old, sex {clin.get('sex', '?')}, lesion site "
                  f"{clin.get('site', '?')}, center {clin.get('center', '?')}.", ""]
    # prediction
    probs = ", ".join(f"{d} {pred[f'p_{d}']:.2f}" for d in DIAGNOSES)
    lines += ["## Prediction", "",
              f"**Predicted diagnosis: {pred['predicted']}** (probabilities: {probs}).", "",
              f"Risk score {pred['risk']:.2f}: **{pred['risk_group']} risk group** (tertiles of the training "
              "patients' risk).", "", f"Modalities used: {pred['modalities_used'].replace(',', ', ')}.", ""]
    if pred.get("warnings"):
        lines += [f"Warnings: {pred['warnings']}", ""]
    # images
    figs = []
    if p.radiograph is not None:
        fig, axes = plt.subplots(1, 2 if p.slide is not None else 1, figsize=(7, 3.5), squeeze=False)
        ax = axes[0, 0]
        ax.imshow(p.radiograph, cmap="gray")
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=2))
        ax.set_title("radiograph and lesion box")
        ax.axis("off")
        if p.slide is not None:
            axes[0, 1].imshow(p.slide)
            axes[0, 1].set_title("pathology region")
            axes[0, 1].axis("off")
        figs.append(("images", fig))
    # modality weights
    wcols = [c for c in pred.index if c.startswith("w_")]
    if wcols:
        fig, ax = plt.subplots(figsize=(4, 2.5))
        ax.barh([c[2:] for c in wcols], [pred[c] for c in wcols], color="tab:blue")
        ax.set_xlabel("weight in the fused prediction")
        ax.set_xlim(0, 1)
        figs.append(("weights", fig))
    # Kaplan-Meier by risk group
    ref = reference if reference is not None else cohort
    rp = reference_predictions if reference_predictions is not None else system.predict(ref)
    if not rp.index.equals(ref.ids):
        raise ValueError("reference_predictions must have one row per patient of the reference cohort, in order")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    lab = ref.labels
    for g, color in zip(("low", "intermediate", "high"), ("tab:green", "tab:orange", "tab:red")):
        sel = (rp["risk_group"] == g).to_numpy()
        if sel.sum() < 2:
            continue
        km = kaplan_meier(lab["time"].to_numpy()[sel], lab["event"].to_numpy(bool)[sel])
        lw = 3 if g == pred["risk_group"] else 1.2
        ax.step(np.r_[0.0, km.time], np.r_[1.0, km.survival], where="post", color=color, lw=lw, label=f"{g} risk (n={int(sel.sum())})")
        if g == pred["risk_group"]:
            ax.plot([p.time], [float(km(p.time))], "o", color="black",
                    label=f"this patient ({'event' if p.event else 'censored'} at {p.time:.0f} months)")
    ax.set_xlabel("months")
    ax.set_ylabel("survival")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    figs.append(("km", fig))
    for name, fig in figs:
        fname = f"{pid}_{name}.png"
        _save_fig(fig, out / fname)
        lines += [f"![{name}]({fname})", ""]
    lines += ["The radiograph and slide encoders are hand-made features (box size, lesion contrast, "
              "nuclear density); their explanation is the features themselves, so no saliency map is drawn.", ""]
    # labs
    if p.labs:
        lines += ["## Lab panel", ""]
        try:
            from .text import narrate

            lines += [narrate(p.labs, sex=clin.get("sex"), age=clin.get("age"), seed=0), ""]
        except (ImportError, ValueError) as e:  # the narrator rejects implausible panels
            lines += [f"(no narrative: {e})", ""]
        ab = abnormal_labs(p.labs, clin.get("sex"), clin.get("age"))
        lines += (["Abnormal values:", "", ab.to_markdown(index=False), ""]
                  if len(ab) else ["All measured values are within their reference ranges.", ""])
    if p.genes is not None and "genes" in system.encoders:
        tg = top_genes(system, p.genes)
        lines += ["## Genes furthest from the training average", "",
                  ", ".join(f"{g} ({z:+.1f} SD)" for g, z in zip(tg.gene, tg.z)), ""]
    lines += ["## Truth (synthetic cohort only)", "",
              f"Diagnosis {p.diagnosis}; {'event' if p.event else 'censored'} at {p.time:.1f} months.", ""]
    path = out / f"{pid}.md"
    _atomic_write_text(path, "\n".join(lines))
    return path
