"""A per-patient report: Markdown with figures, from a fitted :class:`~oncolab.pipeline.OncoLabSystem`.

Taught in chapter 12 ("The complete system").

The report shows, for one patient: the radiograph with the lesion box the system used (the
detector's, when it has one, beside the annotated one) and the window its CNN or ViT looked
at, with the CNN's Grad-CAM map (or the ViT's attention rollout) over that window; the slide
region with the weight of every tile (attention-MIL, or a deep tile stage's attention or
tile probability); the explanation record of :mod:`oncolab.explain` (integrated gradients of
the fused model, for the predicted class and, when the system learnt survival, for the risk:
each modality's share and the inputs that moved the output most, also written as
``<patient>_explanation.json``); the lab panel as a narrative (:func:`oncolab.text.narrate`)
with the abnormal values listed; the genes furthest from the training average; each
modality's weight in the fused prediction (for fusions that have weights); the predicted
diagnosis with its probabilities; the risk group, and where the patient sits on the
Kaplan-Meier curves of the risk groups of a reference cohort. Every file is written to a
temporary name and renamed.

:func:`feature_importance` ranks every input of the fused model (gene components or genes,
clinical factors, lab values, image-stage outputs) by permutation importance, for the
diagnosis or for the risk.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Cohort, flag_value
from .stages import PathologyMIL, RadiographCNN
from .stages.deep import RadiographViT, TileEncoderStage
from .stages.prostate import PathologyPyramid

__all__ = ["abnormal_labs", "explain_patient", "feature_importance", "patient_report", "tile_attention_map",
           "top_genes"]


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
    """The ``k`` genes whose standardised log-expression is furthest from the training mean.

    Parameters
    ----------
    system : OncoLabSystem
        A fitted system with a genes stage.
    genes : Series
        One patient's counts, indexed by gene.
    k : int
        How many genes.

    Returns
    -------
    DataFrame
        Columns ``gene`` and ``z`` (standard deviations from the training mean).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pre = system.stages["genes"].transformer.pre_   # log-CPM, standardised with the training mean and sd
    names = list(pre.genes)
    z = pre.transform(pd.DataFrame([genes[names].to_numpy()], columns=names))[0]
    order = np.argsort(-np.abs(z))[:k]
    return pd.DataFrame({"gene": [names[i] for i in order], "z": z[order]})


def explain_patient(system, cohort: Cohort, inputs=None, steps: int = 32):
    """Chapter 11's explanation record per patient: integrated gradients of the predicted class and of the risk.

    The diagnosis part is filled when the system learnt a diagnosis, the risk part
    (``target="risk"`` of :func:`oncolab.explain.integrated_gradients`) when it learnt survival.

    Parameters
    ----------
    system : OncoLabSystem
        A fitted system.
    cohort : Cohort
        The patients.
    inputs : Inputs, optional
        ``system.read(cohort)``, when already read.
    steps : int
        Integration steps.

    Returns
    -------
    ExplanationRecord or list of ExplanationRecord
        The record of the only patient, or a list (one per patient).
    """
    from ..explain import explanation_records, integrated_gradients
    from ..fusion import predict_model

    X, mask = system.embed(cohort, inputs)
    out = predict_model(system.model, X, mask)
    proba = ig = risk = ig_risk = None
    if system.task_ != "survival":
        proba = out["proba"]
        ig = integrated_gradients(system.model, X, mask, proba.argmax(1), steps=steps)
    if system.task_ != "diagnosis":
        risk = out["risk"]
        ig_risk = integrated_gradients(system.model, X, mask, "risk", steps=steps)
    recs = explanation_records(cohort.ids, proba, ig, mask, system.classes_, feature_names=system.feature_names(),
                               top_k=5, risk=risk, risk_attributions=ig_risk)
    return recs[0] if len(recs) == 1 else recs


def feature_importance(system, cohort: Cohort, inputs=None, target: str = "diagnosis", n_repeats: int = 5,
                       seed: int = 0) -> pd.DataFrame:
    """Permutation importance of every input of the fused model, for the diagnosis or the risk.

    Taught in chapter 11. Each input column the fusion reads (a gene component or a gene, a
    clinical factor such as age or one category of site, a lab value, an image stage's
    output) is shuffled across ``cohort``'s patients with
    :func:`oncolab.explain.permutation_importance`, and the drop in the macro AUC
    (``target="diagnosis"``) or in Harrell's C-index of the risk (``target="risk"``) is its
    importance. Use held-out patients: on the training patients it measures what was
    memorised.

    Parameters
    ----------
    system : OncoLabSystem
        A fitted system.
    cohort : Cohort
        Patients with the labels of ``target``.
    inputs : Inputs, optional
        ``system.read(cohort)``, when already read.
    target : {"diagnosis", "risk"}
        The output whose score is measured.
    n_repeats : int
        Shuffles per column.
    seed : int
        Seed of the shuffles.

    Returns
    -------
    DataFrame
        One row per input, indexed by ``"<modality>: <name>"``, with ``modality``,
        ``importance_mean``, ``importance_std`` and ``rank`` (1 = most important), sorted by rank.
    """
    from ..explain import permutation_importance
    from ..fusion import predict_model
    from ..metrics import macro_auc
    from ..survival import harrell_c

    if target not in ("diagnosis", "risk"):
        raise ValueError(f"target must be 'diagnosis' or 'risk', got {target!r}")
    if target == "diagnosis" and system.task_ == "survival":
        raise ValueError("target='diagnosis' but this system learnt survival only; use target='risk'")
    if target == "risk" and system.task_ == "diagnosis":
        raise ValueError("target='risk' but this system learnt a diagnosis only; use target='diagnosis'")
    X, mask = system.embed(cohort, inputs)
    mods = list(X)
    cuts = np.cumsum([X[m].shape[1] for m in mods])[:-1]
    names = system.feature_names()
    lab = cohort.labels

    def split(A):
        return dict(zip(mods, np.split(A, cuts, axis=1)))

    if target == "diagnosis":
        y = np.asarray(cohort.y)

        def score(A, yy):
            return macro_auc(yy, predict_model(system.model, split(A), mask)["proba"])
    else:
        y = np.arange(len(cohort))
        t, e = lab["time"].to_numpy(float), lab["event"].to_numpy(bool)

        def score(A, idx):
            return harrell_c(t[idx], e[idx], predict_model(system.model, split(A), mask)["risk"])

    pi = permutation_importance(score, np.hstack([X[m] for m in mods]), y, n_repeats=n_repeats, seed=seed,
                                feature_names=[n for m in mods for n in names[m]])
    pi.insert(0, "modality", [m for m in mods for _ in names[m]])
    return pi.sort_values("rank")


def tile_attention_map(coords, weights, tile_size: int, shape: tuple[int, int]) -> np.ndarray:
    """A map of ``shape`` holding each tile's attention weight (scaled to a maximum of 1), 0 elsewhere.

    Parameters
    ----------
    coords : array (N, 2)
        Tile corners (row, column).
    weights : array (N,)
        Attention weights.
    tile_size : int
        Tile side in pixels.
    shape : tuple
        Shape of the map (the region's first two dimensions).

    Returns
    -------
    ndarray
        The map, in [0, 1].
    """
    w = np.asarray(weights, float)
    if len(w) != len(coords):
        raise ValueError(f"{len(coords)} tiles but {len(w)} attention weights")
    heat = np.zeros(shape[:2])
    for (r, c), a in zip(np.asarray(coords, int), w / (w.max() if len(w) and w.max() > 0 else 1.0)):
        heat[r:r + tile_size, c:c + tile_size] = a
    return heat


def _image_panels(system, p, raw: dict, target: int, lesion_mask=None) -> tuple[list, bool | None]:
    """Functions that each draw one image panel on an axes: radiograph with boxes, the CNN's
    window with Grad-CAM (the ViT's with attention rollout), slide with tile weights (those the
    system's stages provide); and whether the window's map peaks on the lesion (chapter 2's
    pointing game; None without a mask)."""
    import matplotlib.pyplot as plt

    from ..detection.crops import centred_window, roi_crop
    from ..vision.gradcam import overlay, pointing_game

    panels, hit = [], None
    rad = system.stages.get("radiograph")
    if p.radiograph is not None and "radiograph" in raw:
        box = rad.boxes(raw["radiograph"])[0]
        label = ("annotated lesion box (read at prediction)" if rad.detector.name == "annotated"
                 else f"{rad.detector.name} box (red),\nannotated (green dashed)")
        window = centred_window(box, p.radiograph.shape, rad.window) if isinstance(rad, RadiographCNN) else None

        def draw_radiograph(ax, box=box, window=window, label=label):
            ax.imshow(p.radiograph, cmap="gray")
            if p.box is not None and rad.detector.name != "annotated":
                x0, y0, x1, y1 = p.box
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2, ls="--"))
            if box is not None:
                x0, y0, x1, y1 = box
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=2))
            if window is not None:
                x0, y0, x1, y1 = window
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", lw=1, ls=":"))
            ax.set_title(f"radiograph: {label}" + (f",\n{rad.name.upper()} window (yellow dotted)"
                                                   if window is not None else ""), fontsize=8)
            ax.axis("off")
        panels.append(draw_radiograph)
        crop = cam = None
        if window is not None:
            crop = roi_crop(p.radiograph, window, rad.crop_size, margin=0.0)
            if isinstance(rad, RadiographViT):
                try:
                    cam, what = rad.attention_map(crop), "attention rollout of the ViT on its window"
                except TypeError:   # a timm ViT keeps no attention weights: no map
                    cam = None
            else:
                cam, what = rad.grad_cam(crop, target), "Grad-CAM of the CNN on its window"
        if cam is not None:
            if lesion_mask is not None:
                cut = roi_crop(np.asarray(lesion_mask, np.uint8) * 255, window, rad.crop_size, margin=0.0) > 127
                hit = bool(pointing_game(cam[None], cut[None])["hits"][0])
            panels.append(lambda ax: overlay(crop, cam, ax=ax, title=what))
    path = system.stages.get("pathology")
    if p.slide is not None and "pathology" in raw:
        if isinstance(path, PathologyMIL | TileEncoderStage):
            if isinstance(path, PathologyMIL):
                att, coords, t = path.attention(raw["pathology"], 0)
                title = "attention-MIL weight of each tile"
            else:
                att, coords, t, title = path.tile_weights(raw["pathology"], 0, target)
            heat = tile_attention_map(coords, att, t, p.slide.shape)
            panels.append(lambda ax: overlay(p.slide, heat, ax=ax, alpha=0.35, title=title))
        elif isinstance(path, PathologyPyramid):   # a whole-slide pyramid: the risk of every region alone
            from ..vision.multiscale import draw_region_map

            centers, bag = path.region_inputs(p.slide)
            risk = path.region_maps(bag)["risk"]
            panels.append(lambda ax: draw_region_map(p.slide, centers, risk, path.footprint(p.slide), ax=ax,
                                                     title=f"{path.name}: risk of each region alone"))
        else:
            def draw_slide(ax):
                ax.imshow(p.slide)
                ax.set_title("pathology region", fontsize=8)
                ax.axis("off")
            panels.append(draw_slide)
    return panels, hit


def patient_report(system, cohort: Cohort, patient: int | str, out_dir: str | os.PathLike,
                   reference: Cohort | None = None, reference_predictions: pd.DataFrame | None = None) -> Path:
    """Write ``out_dir/<patient_id>.md`` and its figures; return the Markdown file's path.

    Parameters
    ----------
    system : OncoLabSystem
        A fitted system.
    cohort : Cohort
        The patient's cohort.
    patient : int or str
        Position or id of the patient.
    out_dir : str or PathLike
        Output folder.
    reference : Cohort, optional
        Gives the Kaplan-Meier curves of the three risk groups (default ``cohort``).
    reference_predictions : DataFrame, optional
        ``system.predict(reference)``, when already computed.

    Returns
    -------
    Path
        The Markdown file.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt


    system.check_fitted()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = cohort.patient(patient)
    pid = p.patient_id
    pred = system.predict(cohort.subset([pid])).iloc[0]
    lines = [f"# Patient {pid}", ""]
    clin = p.clinical
    has_dx, has_risk = "predicted" in pred.index, "risk" in pred.index
    if {"age", "sex", "site", "center"} <= set(clin):
        lines += [f"{clin['age']:.0f}-year-old, sex {clin['sex']}, lesion site {clin['site']}, "
                  f"center {clin['center']}.", ""]
    elif clin:
        lines += ["Clinical data: " + ", ".join(f"{k} {v}" for k, v in clin.items()) + ".", ""]
    # prediction
    lines += ["## Prediction", ""]
    if has_dx:
        probs = ", ".join(f"{d} {pred[f'p_{d}']:.2f}" for d in system.classes_)
        lines += [f"**Predicted diagnosis: {pred['predicted']}** (probabilities: {probs}).", ""]
    if has_risk:
        lines += [f"Risk score {pred['risk']:.2f}: **{pred['risk_group']} risk group** (tertiles of the training "
                  "patients' risk).", ""]
    lines += [f"Modalities used: {pred['modalities_used'].replace(',', ', ')}.", ""]
    if pred.get("warnings"):
        lines += [f"Warnings: {pred['warnings']}", ""]
    if system.label_note:
        lines += [f"Note: {system.label_note}.", ""]
    # what the stages saw: the detector's box, the CNN window and its Grad-CAM, the MIL attention
    sub = cohort.subset([pid])
    inputs = system.read(sub)
    figs = []
    try:
        mask = cohort.lesion_mask(pid)
    except (ValueError, OSError, KeyError, AttributeError):  # no lesion masks for this cohort
        mask = None
    target = system.classes_.index(pred["predicted"]) if has_dx else None
    panels, lesion_hit = _image_panels(system, p, inputs.raw, target, mask)
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.5), squeeze=False)
        for ax, draw in zip(axes[0], panels):
            draw(ax)
        figs.append(("images", fig))
    # the explanation record (integrated gradients of the predicted class and of the risk)
    record = explain_patient(system, sub, inputs)
    record.lesion_hit = lesion_hit
    tmp = out / f"{pid}_explanation.json.partial"
    tmp.write_text(record.to_json())
    os.replace(tmp, out / f"{pid}_explanation.json")
    # each modality's share of the attributions, and its fusion weight
    bars = [(v, f"share of the attribution of the {what} (integrated gradients)", color)
            for v, what, color in ((record.modality_contributions, "diagnosis", "tab:purple"),
                                   (record.risk_contributions, "risk", "tab:red")) if v]
    wcols = [c for c in pred.index if c.startswith("w_")]
    if wcols:
        bars.append(({m: pred.get(f"w_{m}", np.nan) for m in bars[0][0]}, "fusion weight", "tab:blue"))
    mods = list(bars[0][0])
    fig, ax = plt.subplots(figsize=(5, 2.6))
    pos = np.arange(len(mods))
    h = 0.8 / len(bars)
    for k, (v, label, color) in enumerate(bars):
        ax.barh(pos + 0.4 - h * (k + 0.5), [v[m] for m in mods], h, color=color, label=label)
    ax.set_yticks(pos, mods)
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    figs.append(("weights", fig))
    ref = reference if reference is not None else cohort
    if has_risk and ref.has_survival:
        figs.append(("km", _km_figure(system, ref, reference_predictions, pred, p)))
    for name, fig in figs:
        fname = f"{pid}_{name}.png"
        _save_fig(fig, out / fname)
        lines += [f"![{name}]({fname})", ""]
    lines += _explanation_lines(record, pred, pid, lesion_hit)
    lines += _data_lines(system, p, clin)
    path = out / f"{pid}.md"
    _atomic_write_text(path, "\n".join(lines))
    return path


def _km_figure(system, ref: Cohort, reference_predictions, pred, p):
    """Kaplan-Meier curves of the three risk groups of ``ref``, the patient's group in bold."""
    import matplotlib.pyplot as plt

    from ..survival import kaplan_meier

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
        if g == pred["risk_group"] and p.time is not None and np.isfinite(p.time):
            ax.plot([p.time], [float(km(p.time))], "o", color="black",
                    label=f"this patient ({'event' if p.event else 'censored'} at {p.time:.0f})")
    ax.set_xlabel(f"time ({ref.meta.get('time_unit', 'months')})")
    ax.set_ylabel("survival")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    return fig


def _explanation_lines(record, pred, pid: str, lesion_hit) -> list[str]:
    """The report's "Why" section from the explanation record (diagnosis and risk, as learnt)."""
    lines = ["## Why: the explanation record", ""]
    if record.predicted is not None:
        lines += ["Share of the integrated-gradients attribution of the predicted class, by modality: "
                  + ", ".join(f"{m} {v:.2f}" for m, v in record.modality_contributions.items()) + ".", "",
                  "Inputs that moved the prediction most (attribution in logit units; positive: towards "
                  f"{pred['predicted']}):", "",
                  pd.DataFrame(record.top_features, columns=["input", "attribution"]).to_markdown(
                      index=False, floatfmt=".3f"), ""]
    if record.risk is not None:
        lines += ["Share of the integrated-gradients attribution of the risk, by modality: "
                  + ", ".join(f"{m} {v:.2f}" for m, v in record.risk_contributions.items()) + ".", "",
                  "Inputs that moved the risk most (attribution in log-hazard units; positive: higher risk than "
                  "the average patient's):", "",
                  pd.DataFrame(record.risk_top_features, columns=["input", "attribution"]).to_markdown(
                      index=False, floatfmt=".3f"), ""]
    return lines + [*(["Notes: " + "; ".join(record.notes), ""] if record.notes else []),
                    *([f"The map over the radiograph window peaks {'on' if lesion_hit else 'off'} the annotated "
                       "lesion (chapter 2's pointing game).", ""] if lesion_hit is not None else []),
                    f"The whole record: [{pid}_explanation.json]({pid}_explanation.json).", ""]


def _data_lines(system, p, clin: dict) -> list[str]:
    """The report's sections on the patient's labs, genes and recorded outcome."""
    lines = []
    if p.labs:
        lines += ["## Lab panel", ""]
        try:
            from ..text import narrate

            lines += [narrate(p.labs, sex=clin.get("sex"), age=clin.get("age"), seed=0), ""]
        except (ImportError, ValueError) as e:  # the narrator rejects implausible panels
            lines += [f"(no narrative: {e})", ""]
        ab = abnormal_labs(p.labs, clin.get("sex"), clin.get("age"))
        lines += (["Abnormal values:", "", ab.to_markdown(index=False), ""]
                  if len(ab) else ["All measured values are within their reference ranges.", ""])
    if p.genes is not None and "genes" in system.stages:
        tg = top_genes(system, p.genes)
        lines += ["## Genes furthest from the training average", "",
                  ", ".join(f"{g} ({z:+.1f} SD)" for g, z in zip(tg.gene, tg.z)), ""]
    outcome = []
    if p.diagnosis is not None:
        outcome.append(f"Diagnosis {p.diagnosis}.")
    if p.time is not None and np.isfinite(p.time):
        outcome.append(f"{'Event' if p.event else 'Censored'} at {p.time:.1f}.")
    if outcome:
        lines += ["## Outcome recorded in the cohort (not read by the system)", "", " ".join(outcome), ""]
    return lines
