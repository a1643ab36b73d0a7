"""Stages of the tabular modalities: lab panel (as numbers or as text), genes, clinical data.

Taught in chapter 12 ("The complete system"); the transformers are built in chapter 6 (lab
panels, narratives, text encoders), chapter 7 (gene expression) and chapter 10 (the
hand-made features, :mod:`oncolab.features`).

* labs ``numeric``: :class:`oncolab.features.LabFeatures` (the documented lab transform,
  standardised, one "not measured" flag per analyte);
* labs ``tfidf`` | ``bert`` | ``biobert``: the panel narrated as text (seeded by patient id,
  so that a patient gets the same words alone or inside a cohort) -> a text encoder (TF-IDF;
  a tiny BERT whose vocabulary and masked-language-model pretraining are fitted on the
  training narratives; BioBERT from the hub) -> PCA, each component scaled to unit variance.
  No label is read, so no cross-fitting is needed;
* genes ``pca`` | ``scaled``: :class:`oncolab.features.GeneFeatures` (log-CPM, per-gene
  standardisation, then PCA or not);
* clinical ``onehot``: :class:`oncolab.features.ClinicalFeatures`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import Stage, prefixed, present

__all__ = ["ClinicalOneHot", "GenesPCA", "GenesScaled", "LabsBioBert", "LabsNumeric", "LabsText", "LabsTinyBert",
           "TransformerStage", "read_table"]


def read_table(cohort, table: str):
    """The cohort's ``table`` (a DataFrame), the usable mask (a row not all missing) and no notes."""
    n = len(cohort)
    if table not in cohort.tables:
        return None, np.zeros(n, bool), []
    df = cohort.tables[table]
    usable = ~df.isna().all(1).to_numpy()
    pres = cohort.presence
    if table in pres.columns:
        usable &= pres[table].to_numpy(bool)
    return df, usable, []


class TransformerStage(Stage):
    """A stage made of one :mod:`oncolab.features` transformer fitted on the training rows.

    A subclass names its table (``table``) and the transformer class of :mod:`oncolab.features`
    (``transformer_name``); :meth:`new_transformer` builds it with :meth:`transformer_options`.
    """

    table: ClassVar[str] = ""
    transformer_name: ClassVar[str] = ""

    def __init__(self, transformer=None):
        self.transformer = transformer

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        return read_table(cohort, cls.table)

    @classmethod
    def transformer_class(cls):
        """The :mod:`oncolab.features` class named by ``transformer_name``."""
        from ... import features

        return getattr(features, cls.transformer_name)

    def transformer_options(self) -> dict:
        """Keyword arguments of a new transformer."""
        return {}

    def new_transformer(self):
        """A new, unfitted transformer."""
        return self.transformer_class()(**self.transformer_options())

    def fit_transform(self, raw, rows, targets):
        self.transformer = self.new_transformer().fit(raw.iloc[rows])
        return self.transform(raw)

    def transform(self, raw):
        if self.transformer is None:
            raise RuntimeError(f"the {self.modality} {self.name!r} stage is not fitted")
        return np.asarray(self.transformer.transform(raw), float)

    def feature_names(self) -> list[str]:
        return [str(n) for n in self.transformer.get_feature_names_out()]

    def extra_state(self) -> dict:
        return {"transformer": self.transformer.state()[0]}

    def arrays(self):
        return self.transformer.state()[1]

    def restore(self, config, arrays):
        self.transformer = self.transformer_class().from_state(config["transformer"], arrays)


class LabsNumeric(TransformerStage):
    """Lab values through :class:`oncolab.features.LabFeatures`."""

    modality: ClassVar[str] = "labs"
    name: ClassVar[str] = "numeric"
    table: ClassVar[str] = "labs"
    transformer_name: ClassVar[str] = "LabFeatures"


class GenesPCA(TransformerStage):
    """Gene counts -> log-CPM -> per-gene standardisation -> PCA (``gene_components``).

    A cohort whose ``meta["gene_values"]`` is ``"log_expression"`` (microarray-like values,
    already on a log scale) skips the log-CPM step (:class:`oncolab.features.GeneFeatures`).
    """

    modality: ClassVar[str] = "genes"
    name: ClassVar[str] = "pca"
    table: ClassVar[str] = "genes"
    transformer_name: ClassVar[str] = "GeneFeatures"

    def __init__(self, components: int = 16, transformer=None):
        super().__init__(transformer)
        self.components = int(components)

    @classmethod
    def from_config(cls, config):
        return cls(config.gene_components)

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """The genes table and what its values are (``{"table": DataFrame, "values": str or None}``).

        ``values`` is the cohort's ``meta["gene_values"]``; None where the cohort does not say
        (a cohort made from one patient): counts when fitting, the fitted kind when predicting.
        """
        table, usable, notes = read_table(cohort, "genes")
        if table is None:
            return None, usable, notes
        return {"table": table, "values": cohort.meta.get("gene_values")}, usable, notes

    def transformer_options(self) -> dict:
        return {"n_components": self.components, "whiten": True}

    def fit_transform(self, raw, rows, targets):
        transformer = self.new_transformer().set_params(values=raw["values"] or "counts")
        table = raw["table"]
        if transformer.n_components is not None:   # no more components than patients or genes
            transformer.set_params(n_components=min(transformer.n_components, len(rows), table.shape[1]))
        self.transformer = transformer.fit(table.iloc[rows])
        return self.transform(raw)

    def transform(self, raw):
        if self.transformer is None:
            raise RuntimeError(f"the genes {self.name!r} stage is not fitted")
        if raw["values"] not in (None, self.transformer.values):
            raise ValueError(f"this cohort's gene values are {raw['values']!r}, but the genes stage was fitted on "
                             f"{self.transformer.values!r} (cohort.json 'gene_values')")
        return np.asarray(self.transformer.transform(raw["table"]), float)

    def settings(self) -> dict:
        return {"components": self.components}


class GenesScaled(GenesPCA):
    """Gene counts -> log-CPM -> per-gene standardisation (every gene kept)."""

    name: ClassVar[str] = "scaled"

    def transformer_options(self) -> dict:
        return {"n_components": None}


class ClinicalOneHot(TransformerStage):
    """Clinical variables through :class:`oncolab.features.ClinicalFeatures`."""

    modality: ClassVar[str] = "clinical"
    name: ClassVar[str] = "onehot"
    table: ClassVar[str] = "clinical"
    transformer_name: ClassVar[str] = "ClinicalFeatures"


class LabsText(Stage):
    """Lab narrative -> text encoder -> PCA to ``components`` values, each of unit variance."""

    modality: ClassVar[str] = "labs"
    name: ClassVar[str] = "tfidf"

    def __init__(self, components: int = 16, bert_epochs: int = 10, seed: int = 0):
        self.components, self.bert_epochs, self.seed = int(components), int(bert_epochs), int(seed)
        self.encoder = None

    @classmethod
    def from_config(cls, config):
        return cls(config.text_components, config.bert_epochs, config.seed)

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """Every patient's lab narrative (object array of str; None where no lab was measured).

        ``config.lab_narration`` says which values the narrative names: all, or only the
        abnormal ones (as the bone-tumour paper narrates).
        """
        from ...text import narrate_cohort

        labs, usable, notes = read_table(cohort, "labs")
        texts = np.empty(len(cohort), dtype=object)
        if labs is not None:
            texts[:] = narrate_cohort(cohort, seed=config.seed, by="id", narration=config.lab_narration)
            texts[~usable] = None
        return texts, usable, notes

    @classmethod
    def encoder_class(cls):
        from ...text import TfidfEncoder

        return TfidfEncoder

    def new_encoder(self):
        return self.encoder_class()()

    def _embed(self, texts) -> np.ndarray:
        Z = np.zeros((len(texts), self.pca.n_components))
        idx = np.flatnonzero(present(texts))
        if len(idx):
            T = self.encoder.encode([texts[i] for i in idx]).astype(np.float64)
            Z[idx] = self.pca.transform(T) / self.scale_
        return Z

    def fit_transform(self, raw, rows, targets):
        from ...omics import PCA

        fit_texts = [raw[i] for i in rows]
        self.encoder = self.new_encoder()
        if not self.encoder.fitted:
            self.encoder.fit(fit_texts, seed=self.seed)
        T = self.encoder.encode(fit_texts).astype(np.float64)
        self.pca = PCA(min(self.components, *T.shape)).fit(T)
        self.scale_ = np.sqrt(np.maximum(self.pca.explained_variance_, 1e-12))
        return self._embed(raw)

    def transform(self, raw):
        if self.encoder is None:
            raise RuntimeError(f"the labs {self.name!r} stage is not fitted")
        return self._embed(raw)

    def feature_names(self) -> list[str]:
        return [f"{self.name} PC{k + 1}" for k in range(self.pca.n_components)]

    def settings(self) -> dict:
        return {"components": self.components, "bert_epochs": self.bert_epochs, "seed": self.seed}

    def extra_state(self) -> dict:
        return {"encoder": self.encoder.state()[0], "pca": self.pca.state()[0]}

    def arrays(self):
        ea, pa = self.encoder.state()[1], self.pca.state()[1]
        return {**{f"enc.{k}": v for k, v in ea.items()}, **{f"pca.{k}": v for k, v in pa.items()},
                "scale": self.scale_}

    def restore(self, config, arrays):
        from ...omics import PCA

        self.encoder = self.encoder_class().from_state(config["encoder"], prefixed(arrays, "enc."))
        self.pca = PCA.from_state(config["pca"], prefixed(arrays, "pca."))
        self.scale_ = arrays["scale"]


class LabsTinyBert(LabsText):
    """Lab narrative -> a tiny BERT pretrained (masked language model) on the training narratives -> PCA."""

    name: ClassVar[str] = "bert"

    @classmethod
    def encoder_class(cls):
        from ...text import TinyBertEncoder

        return TinyBertEncoder

    def new_encoder(self):
        return self.encoder_class()(epochs=self.bert_epochs)


class LabsBioBert(LabsText):
    """Lab narrative -> BioBERT from the hub (needs a network; the saved model stores its name) -> PCA."""

    name: ClassVar[str] = "biobert"

    @classmethod
    def encoder_class(cls):
        from ...text import BioBertEncoder

        return BioBertEncoder
