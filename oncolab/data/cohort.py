"""The ``Cohort`` and ``Patient`` types every chapter passes around.

Taught in chapter 1 ("Multimodal oncology data").

A cohort is a handful of tables indexed by ``patient_id`` plus an image source that makes or
reads each patient's radiograph and pathology slide region on demand, so that a
2000-patient cohort never holds all its images in memory:

============  =====================================================================
table          columns
============  =====================================================================
clinical       age (years), sex (F/M), site, center
labs           one column per biomarker of :data:`oncolab.data.labs.BIOMARKERS` (NaN = not measured)
genes          one column per gene of :data:`oncolab.data.synthetic.GENES` (raw read counts)
labels         diagnosis (benign / intermediate / malignant), y (0/1/2), time (months), event (bool)
boxes          x0, y0, x1, y1: the lesion's box on the radiograph, in pixels
presence       one bool column per modality: was it acquired for this patient?
truth          the generator's latents (synthetic cohorts only): never a model input
============  =====================================================================

Models read the first six; ``truth`` exists so that results can be set beside the oracle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DIAGNOSES", "MODALITIES", "Cohort", "Patient", "check_modalities", "resolve_patient",
           "select_ids", "survival_array"]

DIAGNOSES: tuple[str, ...] = ("benign", "intermediate", "malignant")
MODALITIES: tuple[str, ...] = ("radiograph", "pathology", "labs", "genes", "clinical")
TABLES: tuple[str, ...] = ("clinical", "labs", "genes", "labels", "boxes", "presence", "truth")


def check_modalities(modalities: Sequence[str] | None) -> tuple[str, ...]:
    """Validate modality names; ``None`` means all of :data:`MODALITIES`."""
    if modalities is None:
        return MODALITIES
    if isinstance(modalities, str):
        modalities = (modalities,)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown modality {unknown[0]!r}; expected some of {list(MODALITIES)}")
    if not modalities:
        raise ValueError(f"at least one modality is needed; expected some of {list(MODALITIES)}")
    return tuple(m for m in MODALITIES if m in modalities)


def resolve_patient(ids: pd.Index, key: int | str) -> str:
    """The patient id for ``key``: a position (int, negative allowed) or an id (str) in ``ids``."""
    if isinstance(key, str):
        if key not in ids:
            raise KeyError(f"no patient {key!r} in this cohort")
        return key
    if isinstance(key, int | np.integer):
        if not -len(ids) <= int(key) < len(ids):
            raise IndexError(f"patient index {key} out of range for a cohort of {len(ids)}")
        return str(ids[int(key)])
    raise TypeError(f"a patient is named by its position (int) or id (str), got {type(key).__name__}")


def select_ids(ids: pd.Index, index: Sequence[int] | np.ndarray | pd.Index) -> pd.Index:
    """The ids picked by positions, a boolean mask, or ids themselves (checked to exist)."""
    index = np.asarray(index)
    if index.dtype == bool:
        if len(index) != len(ids):
            raise ValueError(f"boolean mask has length {len(index)}, cohort has {len(ids)}")
        return ids[index]
    if index.dtype.kind in "iu" or len(index) == 0:
        return ids[index.astype(int)]
    missing = [i for i in index if i not in ids]
    if missing:
        raise KeyError(f"no patient {missing[0]!r} in this cohort")
    return pd.Index(index, name=ids.name)


def survival_array(labels: pd.DataFrame) -> np.ndarray:
    """scikit-survival's structured (event, time) array from a table with those columns."""
    out = np.empty(len(labels), dtype=[("event", bool), ("time", float)])
    out["event"] = labels["event"].to_numpy(bool)
    out["time"] = labels["time"].to_numpy(float)
    return out


@dataclass
class Patient:
    """One patient: every modality that was acquired, the labels, and (synthetic) the truth."""

    patient_id: str
    clinical: dict[str, Any]
    labs: dict[str, float]
    genes: pd.Series | None
    diagnosis: str
    y: int
    time: float
    event: bool
    box: tuple[float, float, float, float] | None
    radiograph: np.ndarray | None = field(repr=False, default=None)
    slide: np.ndarray | None = field(repr=False, default=None)
    presence: dict[str, bool] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)


class Cohort:
    """Tables indexed by ``patient_id`` and a lazy image source.

    Build one with :func:`oncolab.data.synthetic_cohort`, :func:`oncolab.data.load_cohort` or
    by hand: ``Cohort(tables={...}, images=source, meta={...})`` where ``source`` has
    ``radiograph(pid)``, ``slide(pid)`` and ``lesion_mask(pid)`` methods (or is ``None``).
    """

    def __init__(self, tables: dict[str, pd.DataFrame], images: Any = None, meta: dict | None = None):
        if "labels" not in tables:
            raise ValueError("a cohort needs at least a 'labels' table")
        ids = tables["labels"].index
        if ids.name != "patient_id":
            raise ValueError(f"tables must be indexed by 'patient_id', got index name {ids.name!r}")
        if not ids.is_unique:
            dup = ids[ids.duplicated()][0]
            raise ValueError(f"patient ids must be unique; {dup!r} appears twice")
        for name, df in tables.items():
            if name not in TABLES:
                raise ValueError(f"unknown table {name!r}; expected some of {list(TABLES)}")
            if not df.index.equals(ids):
                raise ValueError(f"table {name!r} is not indexed by the same patients as 'labels'")
        self.tables = dict(tables)
        self.images = images
        self.meta = dict(meta or {})

    # --- tables ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        counts = self.labels["diagnosis"].value_counts().reindex(DIAGNOSES, fill_value=0)
        return (f"Cohort(n={len(self)}, modalities={list(self.modalities)}, "
                f"diagnoses={ {k: int(v) for k, v in counts.items()} }, "
                f"events={int(self.labels['event'].sum())})")

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            raise AttributeError(f"this cohort has no {name!r} table; it has {sorted(self.tables)}")
        return self.tables[name]

    clinical = property(lambda self: self._table("clinical"))
    labs = property(lambda self: self._table("labs"))
    genes = property(lambda self: self._table("genes"))
    labels = property(lambda self: self._table("labels"))
    boxes = property(lambda self: self._table("boxes"))
    truth = property(lambda self: self._table("truth"))

    @property
    def presence(self) -> pd.DataFrame:
        """Which modality was acquired for which patient (all True where not recorded)."""
        if "presence" in self.tables:
            return self.tables["presence"]
        return pd.DataFrame(True, index=self.ids, columns=list(self.modalities))

    @property
    def ids(self) -> pd.Index:
        return self.labels.index

    @property
    def y(self) -> np.ndarray:
        """Diagnosis as integers 0 (benign), 1 (intermediate), 2 (malignant)."""
        return self.labels["y"].to_numpy()

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.meta.get("modalities", MODALITIES))

    def survival_y(self) -> np.ndarray:
        """Survival outcome as scikit-survival's structured array of (event, time)."""
        return survival_array(self.labels)

    # --- images ---------------------------------------------------------------------------
    def _pid(self, key: int | str) -> str:
        return resolve_patient(self.ids, key)

    def _image(self, kind: str, key: int | str) -> np.ndarray:
        pid = self._pid(key)
        modality = "radiograph" if kind in ("radiograph", "lesion_mask") else "pathology"
        if self.images is None or modality not in self.modalities:
            raise ValueError(f"this cohort has no {modality} images")
        if "presence" in self.tables and not bool(self.tables["presence"].at[pid, modality]):
            raise ValueError(f"patient {pid} has no {modality} (presence is False)")
        return getattr(self.images, kind)(pid)

    def radiograph(self, key: int | str) -> np.ndarray:
        """The patient's radiograph, uint8 (H, W)."""
        return self._image("radiograph", key)

    def slide(self, key: int | str) -> np.ndarray:
        """The patient's H&E slide region, uint8 (H, W, 3)."""
        return self._image("slide", key)

    def lesion_mask(self, key: int | str) -> np.ndarray:
        """The true lesion mask on the radiograph, bool (H, W) (used to check explanations)."""
        return self._image("lesion_mask", key)

    def patient(self, key: int | str, images: bool = True) -> Patient:
        """Everything about one patient, images included unless ``images=False``."""
        pid = self._pid(key)
        lab = self.labels.loc[pid]
        pres = self.presence.loc[pid].to_dict() if pid in self.presence.index else {}
        box = None
        if "boxes" in self.tables and pres.get("radiograph", True):
            b = self.boxes.loc[pid]
            box = (float(b.x0), float(b.y0), float(b.x1), float(b.y1))
        return Patient(
            patient_id=pid,
            clinical=self.clinical.loc[pid].to_dict() if "clinical" in self.tables else {},
            labs=self.labs.loc[pid].to_dict() if "labs" in self.tables else {},
            genes=self.genes.loc[pid] if "genes" in self.tables else None,
            diagnosis=str(lab.diagnosis), y=int(lab.y), time=float(lab.time), event=bool(lab.event),
            box=box,
            radiograph=self.radiograph(pid) if images and pres.get("radiograph", "radiograph" in self.modalities) and "radiograph" in self.modalities else None,
            slide=self.slide(pid) if images and pres.get("pathology", "pathology" in self.modalities) and "pathology" in self.modalities else None,
            presence={k: bool(v) for k, v in pres.items()},
            truth=self.truth.loc[pid].to_dict() if "truth" in self.tables else {},
        )

    # --- subsets and comparison -----------------------------------------------------------
    def subset(self, index: Sequence[int] | np.ndarray | pd.Index) -> Cohort:
        """A cohort of some patients (positions, a boolean mask, or ids); images are shared."""
        ids = select_ids(self.ids, index)
        tables = {k: v.loc[ids] for k, v in self.tables.items()}
        return Cohort(tables, images=self.images, meta=self.meta)

    def oracle(self, n_sim: int = 200_000) -> dict[str, Any]:
        """The best any model could reach on this cohort (see :mod:`oncolab.data.synthetic`)."""
        if "truth" not in self.tables:
            raise ValueError("this cohort has no 'truth' table (a real dataset has no oracle)")
        from .synthetic import oracle

        return oracle(self, n_sim=n_sim)

    def fingerprint(self, images: int = 3) -> str:
        """SHA-256 of every table (as CSV bytes) and the first ``images`` patients' images."""
        h = hashlib.sha256()
        for name in sorted(self.tables):
            h.update(name.encode())
            h.update(self.tables[name].to_csv().encode())
        if self.images is not None:
            for pid in self.ids[:images]:
                pres = self.presence.loc[pid]
                if "radiograph" in self.modalities and pres.get("radiograph", True):
                    h.update(self.radiograph(pid).tobytes())
                if "pathology" in self.modalities and pres.get("pathology", True):
                    h.update(self.slide(pid).tobytes())
        return h.hexdigest()

    def equals(self, other: Cohort, images: bool = True) -> bool:
        """Same patients, same table values, same images (checked for every patient)."""
        if sorted(self.tables) != sorted(other.tables) or not self.ids.equals(other.ids):
            return False
        for name, df in self.tables.items():
            o = other.tables[name]
            if list(df.columns) != list(o.columns):
                return False
            try:
                pd.testing.assert_frame_equal(df, o, check_dtype=False, check_exact=True)
            except AssertionError:
                return False
        if images and self.images is not None:
            for pid in self.ids:
                pres = self.presence.loc[pid]
                for mod, fn in (("radiograph", "radiograph"), ("pathology", "slide")):
                    if mod in self.modalities and pres.get(mod, True):
                        if not np.array_equal(getattr(self, fn)(pid), getattr(other, fn)(pid)):
                            return False
        return True
