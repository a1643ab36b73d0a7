"""Named configurations of the complete system.

Taught in chapter 12 ("The complete system"). A preset is a set of :class:`SystemConfig`
settings; :func:`preset` gives the configuration, ``oncolab run --preset NAME`` uses it, and
any setting can still be changed on top of it.

* ``handcrafted`` (the defaults): the hand-made lesion finder and lesion measurements,
  nuclear measurements of the slide, the lab values, PCA of the genes, one-hot clinical
  data, attention fusion. Seconds to fit; no label is read at prediction.
* ``learned``: the stages of chapters 2-6: YOLO boxes, a cross-fitted CNN on the lesion
  window, cross-fitted attention-MIL over slide tiles, the lab narrative through TF-IDF.
  Its fusion is ``late``: one head per modality reads that modality's stage output (for the
  CNN and MIL stages, class log-probabilities that are already a prediction), and the heads'
  outputs are averaged over the modalities a patient has. The ablation of chapter 12 sets it
  beside the other fusions on the same stage outputs.
* ``annotated_box``: ``handcrafted`` with the *annotated* lesion box in place of the finder's:
  an upper bound for what a perfect detector would give, which reads a label of every
  patient it predicts (results say so).

Three presets reproduce seed systems of the book on the bone cohort. Each sits beside the
published description; where it differs, it says how and why. All run offline on a CPU:
small networks trained here from scratch (``pretrained=True`` starts them from ImageNet
weights where the model hub is reachable), the synthetic cohort instead of the papers'
hospital data, so the papers' numbers are set beside ours for orientation only.

* ``bone_tumor``: the bone-tumour paper (Sang et al. 2025, *Journal of Bone Oncology*).
  *Seed:* YOLOv5 finds the tumour on the clinical radiograph (test mAP@0.5 0.7925); ResNets
  describe the detected region and the pathology image; the abnormal blood markers are turned
  into text by a large language model and encoded with BioBERT; the three are fused into a
  benign / intermediate / malignant diagnosis (macro precision 0.9056, F1 0.8736, AUC
  0.9759). *Here:* YOLO11n, trained on the training patients' boxes, stands for YOLOv5
  (ultralytics' current small detector of the same family: one library, one API, offline
  training from a configuration; ``detector="yolo"``); the square window around the detected
  box through the small ResNet of chapter 2 (``radiograph_encoder="cnn"``); the slide
  region's tissue tiles through a small ResNet trained on the tiles (``resnet_tiles``),
  their embeddings averaged per patient; both image stages hand the fusion penultimate-layer
  features reduced by a PCA fitted on the training patients (``stage_output="features"``,
  cross-fitted), as the paper fuses features rather than predictions; only the abnormal lab
  values are narrated (``lab_narration="abnormal"``), as in the paper; the narrative comes
  from the template narrator of chapter 6 (the LLM narrator
  needs a model download and minutes per cohort; it is checked against the same facts in
  chapter 6), encoded by the tiny BERT pretrained on the training narratives (``bert``;
  ``labs_encoder="biobert"`` loads BioBERT where the hub is reachable); ``early`` fusion (the
  three outputs concatenated before one network); the diagnosis only (``task="diagnosis"``).
  ``oncolab run`` reports macro precision, recall, F1 and AUC with bootstrap intervals, and
  the detector's mAP@0.5 on the *same* held-out patients (the paper scores its detector on
  its own detection split).
* ``oncovision``: OncoVision. *Seed:* a vision transformer on pathology images, an encoder
  of gene expression, embeddings of clinical data, a Cox or DeepSurv risk, early, late,
  intermediate or attention fusion, attention maps, feature importance for genes and
  clinical factors, and explanations of each case. *Here:* the slide region's tiles through
  the small ViT of chapter 4 (``vit_tiles``; 32-pixel tiles cut into 8 x 8 patches), the
  tiles pooled by attention-MIL (``tile_pooling="attention"``: the attention map over the
  tiles is drawn in every report), penultimate-layer features reduced by PCA
  (``stage_output="features"``); the genes through log-CPM, per-gene scaling and PCA
  (``pca``, chapter 7); the clinical data standardised and one-hot (``onehot``);
  ``attention`` fusion (the other fusions are compared on the same stage outputs by the
  ablation of ``oncolab run``); a diagnosis head and a Cox risk head trained together
  (``task="multitask"``: the neural Cox model of chapter 9 is DeepSurv's). Explanations: the
  report of every patient holds integrated gradients of the diagnosis *and* of the risk
  (:func:`~oncolab.pipeline.report.explain_patient`);
  :func:`~oncolab.pipeline.report.feature_importance` ranks every fusion input, the gene
  components and each clinical factor included, for the diagnosis or the risk. The radiograph
  and the labs are left out, as in the seed.
* ``medfusion``: MEDFUSION. *Seed:* free-text symptoms turned into structured features by
  natural-language processing (text classification and named-entity recognition); a CNN such
  as ResNet or VGG on the medical images; random forest and SVM on the structured data;
  early, late or hybrid fusion. *Here:* the bone cohort's symptom notes (the optional
  ``symptoms`` modality, which :func:`oncolab.data.synthetic_cohort` writes when asked for)
  through ``findings``: a lexicon finds the mentions (the named entities) and NegEx/ConText
  rules mark each negated ("denies night pain"), hedged ("? swelling") or a relative's, giving
  eight yes/no findings (chapter 6; the text classifier of the notes, TF-IDF, is
  ``symptoms_encoder="tfidf"``); the radiograph window around the hand-made finder's box
  through the small ResNet of chapter 2 (``cnn``), the slide region's tiles through
  attention-MIL (``mil``), both cross-fitted and handing the fusion class log-probabilities;
  a random forest on the lab panel (``labs_encoder="forest"``) and an RBF-kernel SVM on the
  gene expression's principal components (``genes_encoder="svm"``), both cross-fitted, kept
  as arrays (:mod:`oncolab.fusion.classical`); the clinical data one-hot; ``hybrid`` fusion:
  the structured group (labs, genes, clinical, symptom findings) fused early into one head,
  each image modality a head of its own, the heads' outputs averaged over what a patient has
  (:class:`oncolab.fusion.HybridFusion`). *Differences:* the seed fits its random forest and
  SVM on one table of structured data; the bone cohort has three, and a stage reads one
  modality, so each classifier takes the table that suits it (trees for the lab panel with
  its "not measured" flags, a kernel for the many correlated gene values) and the early
  group joins their class probabilities; the entity recognition is a lexicon, not a trained
  tagger (the generated notes use a known vocabulary; real notes need a larger one); the
  CNN is small and trained here (``pretrained=True`` for ImageNet weights); the window comes
  from the hand-made lesion finder (the seed has no detector); the slide goes through
  attention-MIL over hand-made tile descriptors, because a CNN on every tile
  (``resnet_tiles``) costs minutes per fold on two CPU cores. The book quotes no headline
  number of the seed to set beside ours.

Two presets are seed systems of chapter 14 for the prostate cohort (:func:`preset_cohort`
says ``"prostate"``; ``oncolab run --preset NAME`` generates that cohort):

* ``chimera``: the CHIMERA challenge's task 1 (MICCAI 2025: biochemical recurrence after
  prostatectomy from H&E whole slides, multiparametric MRI and clinical data). Its baseline
  (github.com/DIAGNijmegen/CHIMERA, ``task1_baseline``) describes 20x tiles with a pathology
  foundation model (UNI), aggregates them with gated attention-MIL, encodes the MRI with a
  pretrained 3D network (the PI-CAI nnU-Net) and concatenates the slide and MRI features
  before a survival head; the clinical variables are age, PSA, ISUP grade and stage. Here:
  ``wsi_mil`` (gated attention-MIL over 64 tiles read at 20x, each described by the frozen
  hand-made :func:`oncolab.vision.multiscale.stain_blob_features` in place of UNI),
  ``cnn3d`` (a small 3D ResNet trained here on T2w, ADC and DCE resampled to one grid, in
  place of nnU-Net features), the clinical table one-hot (with the Gleason patterns), and
  ``early`` fusion (concatenation). Unlike the baseline, each image stage hands the fusion a
  cross-fitted risk, not an embedding, and a patient without MRI is masked, not zero-filled.
* ``crossfusion``: CrossFusion (Soraki et al., "CrossFusion: a multi-scale cross-attention
  convolutional fusion model for cancer survival prediction", MIDL 2026, arXiv 2503.02064):
  the same regions of the whole slide at 5x, 10x and 20x, the 10x tokens attending to the
  5x and 20x ones, a transformer per scale and a discrete-time survival head, from the
  slide alone. Here: ``crossfusion`` (:class:`oncolab.vision.multiscale.CrossFusionSurv`:
  one cross-attention block and one transformer layer per scale, attention pooling per
  scale; 16 regions per slide, 32-pixel tiles, the hand-made tile encoder in place of the
  paper's UNI / CTransPath / ResNet-50 backbones). The paper's convolutional merging of the
  scales is the ``convfusion`` pathology stage, set beside it in chapter 14.
"""

from __future__ import annotations

from typing import Any

from .config import SystemConfig

__all__ = ["PRESETS", "PRESET_COHORTS", "PRESET_SUMMARIES", "preset", "preset_cohort"]

PRESETS: dict[str, dict[str, Any]] = {
    "handcrafted": {},
    "learned": {"detector": "yolo", "radiograph_encoder": "cnn", "pathology_encoder": "mil", "labs_encoder": "tfidf",
                "fusion": "late"},
    "annotated_box": {"detector": "annotated"},
    "bone_tumor": {"modalities": ("radiograph", "pathology", "labs"), "detector": "yolo", "radiograph_encoder": "cnn",
                   "pathology_encoder": "resnet_tiles", "labs_encoder": "bert", "lab_narration": "abnormal",
                   "stage_output": "features", "fusion": "early", "task": "diagnosis"},
    "oncovision": {"modalities": ("pathology", "genes", "clinical"), "pathology_encoder": "vit_tiles",
                   "tile_pooling": "attention", "stage_output": "features", "fusion": "attention"},
    "medfusion": {"modalities": ("radiograph", "pathology", "labs", "genes", "clinical", "symptoms"),
                  "radiograph_encoder": "cnn", "pathology_encoder": "mil", "labs_encoder": "forest",
                  "genes_encoder": "svm", "symptoms_encoder": "findings", "fusion": "hybrid"},
    "chimera": {"modalities": ("pathology", "mri", "clinical"), "pathology_encoder": "wsi_mil", "mri_encoder": "cnn3d",
                "tile_size": 32, "fusion": "early"},
    "crossfusion": {"modalities": ("pathology",), "pathology_encoder": "crossfusion", "tile_size": 32,
                    "fusion": "early"},
}
"""``{name: settings}``: each preset's changes to the defaults of :class:`SystemConfig`."""

PRESET_SUMMARIES: dict[str, str] = {
    "handcrafted": "hand-made lesion finder and measurements, nuclear measurements, lab values, gene PCA; seconds",
    "learned": "YOLO boxes, CNN on the lesion window, attention-MIL over slide tiles, lab narrative as TF-IDF; "
               "late fusion",
    "annotated_box": "handcrafted with the annotated box read at prediction: an upper bound that reads a label",
    "bone_tumor": "the bone-tumour paper: YOLO, ResNet features of the window and of slide tiles, abnormal labs "
                  "narrated into a BERT; early fusion of three",
    "oncovision": "OncoVision: ViT on slide tiles with attention pooling, gene expression, clinical data; "
                  "attention fusion, Cox risk, explanations of both",
    "medfusion": "MEDFUSION: symptom notes into findings (negation handled), CNN, random forest / SVM on "
                 "structured data; hybrid fusion",
    "chimera": "CHIMERA (prostate cohort): whole-slide attention-MIL, 3-D MRI CNN, clinical data; survival",
    "crossfusion": "CrossFusion (prostate cohort): the slide at three magnifications with cross-attention; survival",
}
"""``{name: one line}``: what each preset is, for ``oncolab run --help``."""

PRESET_COHORTS: dict[str, str] = {"chimera": "prostate", "crossfusion": "prostate"}
"""``{name: cohort}`` for the presets made for another synthetic cohort than the bone-tumour one."""


def preset(name: str, **changes) -> SystemConfig:
    """The configuration of the preset ``name``, with ``changes`` on top.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    **changes
        Settings that override the preset's.

    Returns
    -------
    SystemConfig
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PRESETS)}")
    return SystemConfig.from_dict({**PRESETS[name], **changes})


def preset_cohort(name: str) -> str:
    """The synthetic cohort a preset is made for: ``"bone"`` (the default) or ``"prostate"``.

    Taught in chapter 14; ``oncolab run --preset NAME`` generates this cohort when no
    ``--data`` is given.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.

    Returns
    -------
    str
        ``"bone"`` (:func:`oncolab.data.synthetic_cohort`) or ``"prostate"``
        (:func:`oncolab.data.prostate_cohort`).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PRESETS)}")
    return PRESET_COHORTS.get(name, "bone")
