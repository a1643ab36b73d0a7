"""The ``Cohort`` and ``Patient`` types every chapter passes around.

Taught in chapter 1 ("Multimodal oncology data").

A cohort is a handful of tables indexed by ``patient_id`` plus an image source that makes or
reads each patient's images on demand, so that a 2000-patient cohort never holds all its
images in memory:

============  =====================================================================
table          columns
============  =====================================================================
clinical       age (years), sex (F/M), site, center (other cohorts: their own variables)
labs           one column per biomarker of :data:`oncolab.data.labs.BIOMARKERS` (NaN = not measured)
genes          one column per gene of :data:`oncolab.data.synthetic.GENES` (raw read counts)
symptoms       note: the free-text symptom note of the visit (an optional modality, see
               :data:`OPTIONAL_MODALITIES`)
labels         diagnosis (a class name; the synthetic cohort's are benign / intermediate /
               malignant) and/or time (> 0) and event (bool): each optional
boxes          x0, y0, x1, y1: the lesion's box on the radiograph, in pixels
presence       one bool column per modality: was it acquired for this patient?
truth          the generator's latents (synthetic cohorts only): never a model input
============  =====================================================================

The diagnosis classes are :attr:`Cohort.classes` (``meta["classes"]``, which also fixes their
order; otherwise the sorted distinct diagnoses, frozen into ``meta`` when the cohort is made so
that every subset codes them alike) and :attr:`Cohort.y` codes each patient's diagnosis by its
position there. A ``y`` column in ``labels`` is not needed (the synthetic cohort keeps one, equal
to :attr:`Cohort.y`).

Models read the modality tables and images; ``labels`` are what they learn from, never an
input for a patient they predict; ``truth`` exists so that results can be set beside the oracle,
which is a function of the generator that made the cohort (:func:`oncolab.data.oracle`),
not of the container. The container knows nothing of any generator: the bone-tumour cohort
of :mod:`oncolab.data.synthetic`, the prostate cohort of :mod:`oncolab.data.prostate`, a
cohort loaded from a folder and one built by hand are all the same type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["DIAGNOSES", "MODALITIES", "OPTIONAL_MODALITIES", "TABLES", "Cohort", "Patient", "check_modalities",
           "survival_array"]

#: the diagnosis classes of the synthetic bone-tumour cohort, in order (its ``meta["classes"]``)
DIAGNOSES: tuple[str, ...] = ("benign", "intermediate", "malignant")
#: the bone-tumour cohort's modalities: made, and read by the system, unless told otherwise
MODALITIES: tuple[str, ...] = ("radiograph", "pathology", "labs", "genes", "clinical")
#: modalities made or read only when asked for by name (the free-text symptom note)
OPTIONAL_MODALITIES: tuple[str, ...] = ("symptoms",)
TABLES: tuple[str, ...] = ("clinical", "labs", "genes", "symptoms", "labels", "boxes", "presence", "truth")


def check_modalities(modalities: Sequence[str] | None) -> tuple[str, ...]:
    """Validate names of the bone-tumour cohort's modalities.

    Taught in chapter 1.

    Parameters
    ----------
    modalities : sequence of str, str or None
        Some of :data:`MODALITIES` and :data:`OPTIONAL_MODALITIES`; one name alone is
        accepted; ``None`` means :data:`MODALITIES` (the optional ones are only ever named).

    Returns
    -------
    tuple of str
        The names, in the order of :data:`MODALITIES` followed by :data:`OPTIONAL_MODALITIES`.
    """
    if modalities is None:
        return MODALITIES
    if isinstance(modalities, str):
        modalities = (modalities,)
    known = MODALITIES + OPTIONAL_MODALITIES
    unknown = [m for m in modalities if m not in known]
    if unknown:
        raise ValueError(f"unknown modality {unknown[0]!r}; expected some of {list(known)}")
    if not modalities:
        raise ValueError(f"at least one modality is needed; expected some of {list(known)}")
    return tuple(m for m in known if m in modalities)


def survival_array(event: Any, time: Any) -> np.ndarray:
    """scikit-survival's structured array of (event, time).

    Taught in chapter 1; chapter 8 fits survival models to it.

    Parameters
    ----------
    event : array-like of bool
        True where the event (death, recurrence) was observed, False where censored.
    time : array-like of float
        Time to the event or to censoring.

    Returns
    -------
    numpy.ndarray
        A structured array with fields ``event`` (bool) and ``time`` (float).
    """
    event, time = np.asarray(event), np.asarray(time)
    if event.shape != time.shape or event.ndim != 1:
        raise ValueError(f"event and time must be 1-D of the same length, got shapes {event.shape} and {time.shape}")
    out = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    out["event"] = event.astype(bool)
    out["time"] = time.astype(float)
    return out


@dataclass
class Patient:
    """One patient: every modality that was acquired, the labels, and (synthetic) the truth.

    ``diagnosis`` and ``y`` are None in a cohort without a diagnosis (the prostate cohort);
    ``time`` and ``event`` are None in a cohort without survival; ``symptoms`` (the symptom
    note) is None in a cohort without that modality.
    """

    patient_id: str
    clinical: dict[str, Any]
    labs: dict[str, float]
    genes: pd.Series | None
    diagnosis: str | None
    y: int | None
    time: float | None
    event: bool | None
    box: tuple[float, float, float, float] | None
    radiograph: np.ndarray | None = field(repr=False, default=None)
    slide: Any = field(repr=False, default=None)
    presence: dict[str, bool] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)
    symptoms: str | None = None


class Cohort:
    """Tables indexed by ``patient_id`` and a lazy image source.

    Taught in chapter 1. Build one with :func:`oncolab.data.synthetic_cohort`,
    :func:`oncolab.data.prostate_cohort`, :func:`oncolab.data.load_cohort` or by hand.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Some of :data:`TABLES`, all indexed by the same unique ``patient_id``; ``labels`` is
        required.
    images : object, optional
        The image source: for each image kind of :attr:`IMAGE_KINDS` it has a method of that
        name taking a patient id (``radiograph(pid)``, ``slide(pid)``, ``lesion_mask(pid)``).
        ``None`` for a cohort of tables only.
    meta : dict, optional
        What made the cohort: ``source``, ``seed``, ``config``, ``modalities`` (the
        modalities it has; when not given, :data:`MODALITIES` and the optional ones whose table
        is given), ``classes`` (the diagnosis
        classes in their order; by default the sorted distinct diagnoses, stored here when the
        cohort is made), ``ordered`` (whether those classes are ordered).
    """

    #: image kind (an accessor and a method of the image source) -> the modality it belongs to
    IMAGE_KINDS: ClassVar[dict[str, str]] = {"radiograph": "radiograph", "lesion_mask": "radiograph",
                                             "slide": "pathology"}

    def __init__(self, tables: dict[str, pd.DataFrame], images: Any = None, meta: dict | None = None):
        if "labels" not in tables:
            raise ValueError(f"a cohort needs at least a 'labels' table; got tables {sorted(tables)}")
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
        diagnoses = self._diagnoses()
        if diagnoses is not None:
            found = sorted(set(diagnoses.dropna().astype(str)))
            if "classes" not in self.meta:
                self.meta["classes"] = found
            classes = self.meta["classes"]
            if (not isinstance(classes, list | tuple) or not all(isinstance(c, str) and c for c in classes)
                    or len(set(classes)) != len(classes)):
                raise ValueError(f"meta['classes'] must be a list of distinct non-empty class names, got {classes!r}")
            unknown = [d for d in found if d not in classes]
            if unknown:
                raise ValueError(f"diagnosis value(s) {unknown} are not among the classes {list(classes)}; "
                                 "expected every diagnosis to be one of meta['classes']")

    # --- tables ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        parts = [f"n={len(self)}", f"modalities={list(self.modalities)}"]
        labels = self.labels
        if self.classes:
            counts = labels["diagnosis"].astype(str).value_counts().reindex(self.classes, fill_value=0)
            parts.append(f"diagnoses={ {k: int(v) for k, v in counts.items()} }")
        if self.has_survival:
            parts.append(f"events={int(labels['event'].sum())}")
        absent = {m: int((~self.presence[m].astype(bool)).sum()) for m in self.presence.columns}
        absent = {m: k for m, k in absent.items() if k}
        if absent:
            parts.append(f"absent={absent}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            raise AttributeError(f"this cohort has no {name!r} table; it has {sorted(self.tables)}")
        return self.tables[name]

    clinical = property(lambda self: self._table("clinical"), doc="The clinical table.")
    labs = property(lambda self: self._table("labs"), doc="The lab table (NaN = not measured).")
    genes = property(lambda self: self._table("genes"), doc="The gene expression table (read counts).")
    labels = property(lambda self: self._table("labels"), doc="The outcome table.")
    boxes = property(lambda self: self._table("boxes"), doc="The lesion boxes (x0, y0, x1, y1) in pixels.")
    truth = property(lambda self: self._table("truth"), doc="The generator's latents (synthetic cohorts).")
    symptoms = property(lambda self: self._table("symptoms"), doc="The symptom notes (column ``note``).")

    @property
    def presence(self) -> pd.DataFrame:
        """Which modality was acquired for which patient (all True where not recorded)."""
        if "presence" in self.tables:
            return self.tables["presence"]
        return pd.DataFrame(True, index=self.ids, columns=list(self.modalities))

    @property
    def ids(self) -> pd.Index:
        """The patient ids, in the cohort's order."""
        return self.labels.index

    def _diagnoses(self) -> pd.Series | None:
        """The diagnosis column, or None when there is none (no column, or not one value in it)."""
        labels = self.labels
        if "diagnosis" not in labels.columns or labels["diagnosis"].isna().all():
            return None
        return labels["diagnosis"]

    @property
    def classes(self) -> list[str]:
        """The diagnosis classes, in their order: ``meta['classes']`` (empty without a diagnosis).

        For the synthetic cohort: benign, intermediate, malignant. For a cohort made without
        ``meta['classes']``, the sorted distinct diagnoses found when it was made.
        """
        if self._diagnoses() is None:
            return []
        return list(self.meta["classes"])

    @property
    def y(self) -> np.ndarray:
        """Each patient's diagnosis as an integer: its position in :attr:`classes`.

        For the synthetic cohort 0 (benign), 1 (intermediate), 2 (malignant). A cohort
        without a diagnosis, or a patient without one, raises a ValueError.
        """
        diagnoses = self._diagnoses()
        if diagnoses is None:
            raise ValueError(f"this cohort has no diagnosis (no 'diagnosis' label); its labels are "
                             f"{list(self.labels.columns)}")
        missing = diagnoses.isna()
        if missing.any():
            raise ValueError(f"patient {diagnoses.index[missing][0]!r} has no diagnosis; "
                             f"expected one of {self.classes} for every patient")
        code = {c: k for k, c in enumerate(self.classes)}
        return np.fromiter((code[str(d)] for d in diagnoses), dtype=np.int64, count=len(diagnoses))

    @property
    def has_survival(self) -> bool:
        """Whether the cohort has a survival outcome: ``time`` and ``event`` labels, with a value."""
        labels = self.labels
        return {"time", "event"} <= set(labels.columns) and bool(labels["time"].notna().any())

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this cohort has: ``meta['modalities']``, else :data:`MODALITIES` and each
        optional modality whose table the cohort holds."""
        if "modalities" in self.meta:
            return tuple(self.meta["modalities"])
        return MODALITIES + tuple(m for m in OPTIONAL_MODALITIES if m in self.tables)

    def survival_y(self) -> np.ndarray:
        """The survival outcome as scikit-survival's structured array of (event, time).

        Returns
        -------
        numpy.ndarray
            :func:`survival_array` of the ``event`` and ``time`` labels.
        """
        labels = self.labels
        missing = [c for c in ("event", "time") if c not in labels.columns]
        if missing:
            raise ValueError(f"this cohort has no survival outcome: labels lack {missing}; "
                             f"they are {list(labels.columns)}")
        return survival_array(labels["event"].to_numpy(), labels["time"].to_numpy())

    # --- patients and images --------------------------------------------------------------
    def _pid(self, key: int | str) -> str:
        ids = self.ids
        if isinstance(key, str):
            if key not in ids:
                raise KeyError(f"no patient {key!r} in this cohort")
            return key
        if isinstance(key, int | np.integer) and not isinstance(key, bool):
            if not -len(ids) <= int(key) < len(ids):
                raise IndexError(f"patient index {key} out of range for a cohort of {len(ids)}")
            return str(ids[int(key)])
        raise TypeError(f"a patient is named by its position (int) or id (str), got {type(key).__name__}")

    def has(self, modality: str, key: int | str) -> bool:
        """Whether a modality was acquired for one patient.

        Parameters
        ----------
        modality : str
            A modality name (one of :attr:`modalities` for a True answer).
        key : int or str
            The patient's position (negative allowed) or id.

        Returns
        -------
        bool
            False when the cohort lacks the modality or ``presence`` says it was not acquired.
        """
        pid = self._pid(key)
        if modality not in self.modalities:
            return False
        presence = self.presence
        return bool(presence.at[pid, modality]) if modality in presence.columns else True

    def image(self, kind: str, key: int | str) -> Any:
        """One patient's image of one kind, made or read by the image source on demand.

        Parameters
        ----------
        kind : str
            One of :attr:`IMAGE_KINDS` (``"radiograph"``, ``"lesion_mask"``, ``"slide"``).
        key : int or str
            The patient's position (negative allowed) or id.

        Returns
        -------
        object
            What the image source returns (a NumPy array for the kinds of :class:`Cohort`).
        """
        if kind not in self.IMAGE_KINDS:
            raise ValueError(f"this cohort has no {kind} images; its image kinds are {list(self.IMAGE_KINDS)}")
        modality = self.IMAGE_KINDS[kind]
        pid = self._pid(key)
        if self.images is None or modality not in self.modalities:
            raise ValueError(f"this cohort has no {modality} images")
        if not self.has(modality, pid):
            raise ValueError(f"patient {pid} has no {modality} (presence is False)")
        return getattr(self.images, kind)(pid)

    def radiograph(self, key: int | str) -> np.ndarray:
        """The patient's radiograph, uint8 (H, W)."""
        return self.image("radiograph", key)

    def slide(self, key: int | str) -> Any:
        """The patient's H&E slide, as the image source gives it.

        A region, uint8 (H, W, 3), in the bone-tumour cohort and a cohort folder; a lazy
        whole-slide pyramid (:class:`oncolab.data.prostate.ProstateSlide`, read with
        ``read_region``) in the prostate cohort.
        """
        return self.image("slide", key)

    def lesion_mask(self, key: int | str) -> np.ndarray:
        """The true lesion mask on the radiograph, bool (H, W) (used to check explanations)."""
        return self.image("lesion_mask", key)

    def image_arrays(self, key: int | str) -> dict[str, np.ndarray]:
        """The arrays that stand for a patient's acquired images in :meth:`fingerprint` and :meth:`equals`.

        Parameters
        ----------
        key : int or str
            The patient's position (negative allowed) or id.

        Returns
        -------
        dict of str to numpy.ndarray
            The radiograph and the slide region, where acquired (empty without an image source).
        """
        pid = self._pid(key)
        if self.images is None:
            return {}
        return {kind: self.image(kind, pid) for kind in ("radiograph", "slide")
                if kind in self.IMAGE_KINDS and self.has(self.IMAGE_KINDS[kind], pid)}

    def patient(self, key: int | str, images: bool = True) -> Patient:
        """Everything about one patient.

        Parameters
        ----------
        key : int or str
            The patient's position (negative allowed) or id.
        images : bool
            Also make or read the radiograph and the slide (where acquired).

        Returns
        -------
        Patient
        """
        pid = self._pid(key)
        lab = self.labels.loc[pid]
        classes = self.classes
        diagnosis = str(lab["diagnosis"]) if classes and not pd.isna(lab["diagnosis"]) else None
        survival = self.has_survival and not pd.isna(lab["time"])
        pres = self.presence.loc[pid].to_dict()
        box = None
        if "boxes" in self.tables and pres.get("radiograph", True):
            b = self.boxes.loc[pid]
            box = (float(b.x0), float(b.y0), float(b.x1), float(b.y1))
        return Patient(
            patient_id=pid,
            clinical=self.clinical.loc[pid].to_dict() if "clinical" in self.tables else {},
            labs=self.labs.loc[pid].to_dict() if "labs" in self.tables else {},
            genes=self.genes.loc[pid] if "genes" in self.tables else None,
            diagnosis=diagnosis,
            y=classes.index(diagnosis) if diagnosis is not None else None,
            time=float(lab["time"]) if survival else None,
            event=bool(lab["event"]) if survival else None,
            box=box,
            radiograph=self.radiograph(pid) if images and self.images is not None and self.has("radiograph", pid)
            else None,
            slide=self.slide(pid) if images and self.images is not None and self.has("pathology", pid) else None,
            presence={k: bool(v) for k, v in pres.items()},
            truth=self.truth.loc[pid].to_dict() if "truth" in self.tables else {},
            symptoms=self._note(pid, pres),
        )

    def _note(self, pid: str, presence: dict) -> str | None:
        """The patient's symptom note, or None (no symptoms table, not acquired, or an empty cell)."""
        if "symptoms" not in self.tables or not presence.get("symptoms", True):
            return None
        note = self.symptoms.at[pid, "note"]
        return None if pd.isna(note) else str(note)

    # --- subsets and comparison -----------------------------------------------------------
    def subset(self, index: Sequence[int] | np.ndarray | pd.Index) -> Cohort:
        """Some of the patients, as a cohort of the same type sharing the image source.

        Parameters
        ----------
        index : sequence of int, boolean mask, or ids
            Positions, a boolean mask over the patients, or patient ids (checked to exist).

        Returns
        -------
        Cohort
            The chosen patients in the given order, with the same meta and images.
        """
        ids = self.ids
        index = np.asarray(index)
        if index.dtype == bool:
            if len(index) != len(ids):
                raise ValueError(f"boolean mask has length {len(index)}, cohort has {len(ids)}")
            chosen = ids[index]
        elif index.dtype.kind in "iu" or len(index) == 0:
            chosen = ids[index.astype(int)]
        else:
            missing = [i for i in index if i not in ids]
            if missing:
                raise KeyError(f"no patient {missing[0]!r} in this cohort")
            chosen = pd.Index(index, name=ids.name)
        tables = {k: v.loc[chosen] for k, v in self.tables.items()}
        return type(self)(tables, images=self.images, meta=self.meta)

    def fingerprint(self, images: int = 3) -> str:
        """A digest of the cohort: same seed, same fingerprint.

        Parameters
        ----------
        images : int
            How many patients (the first ones) have their :meth:`image_arrays` hashed too.

        Returns
        -------
        str
            SHA-256 (hex) of every table as CSV bytes and of those patients' image arrays.
        """
        h = hashlib.sha256()
        for name in sorted(self.tables):
            h.update(name.encode())
            h.update(self.tables[name].to_csv().encode())
        for pid in self.ids[:images]:
            for array in self.image_arrays(pid).values():
                h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()

    def equals(self, other: Cohort, images: bool = True) -> bool:
        """Whether two cohorts hold the same patients, table values and (optionally) images.

        Parameters
        ----------
        other : Cohort
            The cohort to compare with.
        images : bool
            Also compare every patient's :meth:`image_arrays`.

        Returns
        -------
        bool
        """
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
        if images:
            for pid in self.ids:
                mine, theirs = self.image_arrays(pid), other.image_arrays(pid)
                if mine.keys() != theirs.keys():
                    return False
                if not all(np.array_equal(mine[k], theirs[k]) for k in mine):
                    return False
        return True
