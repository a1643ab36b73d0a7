"""The complete system: stages composed into one model from patient data to diagnosis and risk.

Taught in chapter 12 ("The complete system"); the ablation and robustness experiments in
chapter 10.

=========================  ==================================================================
module                     what it holds
=========================  ==================================================================
``stages/base.py``         the stage protocol (fit, transform, cross-fitting, state)
``stages/radiograph.py``   detectors (finder, yolo, annotated) and the radiograph stages
``stages/pathology.py``    nuclear measurements, attention-MIL
``stages/tables.py``       labs (numbers or text), genes, clinical
``stages/__init__.py``     :data:`STAGES`: one registry per modality
``config.py``              :class:`SystemConfig`: every setting once; CLI options from it
``presets.py``             named configurations (``handcrafted``, ``learned``, ...)
``system.py``              :class:`OncoLabSystem`: composes stages and fusion; save/load
``experiments.py``         :func:`ablation`, :func:`robustness`, :func:`detection_metrics`
``seeds.py``               :func:`compare_seed_systems`: the seed presets beside the seeds' numbers
``report.py``              :func:`patient_report` (one patient's Markdown report), :func:`feature_importance`
=========================  ==================================================================
"""

from __future__ import annotations

from .config import FORMAT_VERSION, SystemConfig
from .experiments import ablation, detection_metrics, robustness
from .presets import PRESETS, preset
from .report import (
    explain_patient,
    feature_importance,
    patient_report,
    tile_attention_map,
    top_genes,
)
from .seeds import SEED_RESULTS, SEED_SYSTEMS, compare_seed_systems, seed_systems_table
from .stages import DETECTORS, STAGES, Inputs, Stage, stage_class
from .system import RISK_GROUPS, OncoLabSystem, cohort_from_patient, read_inputs

__all__ = ["DETECTORS", "FORMAT_VERSION", "PRESETS", "RISK_GROUPS", "SEED_RESULTS", "SEED_SYSTEMS", "STAGES", "Inputs",
           "OncoLabSystem", "Stage", "SystemConfig", "ablation", "cohort_from_patient", "compare_seed_systems",
           "detection_metrics", "explain_patient", "feature_importance", "patient_report", "preset", "read_inputs",
           "robustness", "seed_systems_table", "stage_class", "tile_attention_map", "top_genes"]
