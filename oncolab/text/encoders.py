"""One embedding interface for every text encoder: ``encoder.encode(texts) -> (n, d) array``.

Taught in chapter 6 ("From blood tests to sentences"), where :class:`TfidfEncoder` and
:class:`BioBertEncoder` embed the lab narratives; the text stages of the complete system
(chapter 12) use these classes through the same interface.

* :class:`TfidfEncoder`: word and word-pair counts weighted by inverse document frequency;
* :class:`TinyBertEncoder`: a WordPiece tokenizer and a tiny BERT, both trained on the texts
  given to :meth:`~TextEncoder.fit` (masked language modelling), then [CLS] or mean pooling;
* :class:`BioBertEncoder`: ``dmis-lab/biobert-base-cased-v1.2`` (BERT pretrained on PubMed)
  through ``AutoTokenizer`` / ``AutoModel``, downloaded when online. Offline it raises
  :class:`oncolab.env.HubUnavailableError` at once, with advice, unless given a local folder.

Every encoder has ``fit(texts, seed=0)`` (a no-op for a pretrained one) and ``encode(texts)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "BIOBERT",
    "BioBertEncoder",
    "TextEncoder",
    "TfidfEncoder",
    "TinyBertEncoder",
]

BIOBERT = "dmis-lab/biobert-base-cased-v1.2"


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"every text must be a string, got {type(bad[0]).__name__}: {bad[0]!r}")
    return texts


class TextEncoder:
    """The interface: ``fit(texts, seed) -> self`` then ``encode(texts) -> float32 (n, d)``.

    Taught in chapter 6. A subclass implements ``_fit`` and ``_encode``; ``needs_fit = False``
    marks an encoder that is ready when built (``fitted`` starts True).
    """

    name = "encoder"
    needs_fit = True

    def __init__(self):
        self.fitted = not self.needs_fit

    def fit(self, texts: Sequence[str], seed: int = 0) -> TextEncoder:
        """Learn what the encoder needs from ``texts`` (nothing, for a pretrained one).

        Parameters
        ----------
        texts : sequence of str
            The training texts, at least one.
        seed : int, default 0
            Seeds whatever the encoder draws at random (the tiny BERT's weights and masking).

        Returns
        -------
        TextEncoder
            ``self``, fitted.

        Raises
        ------
        TypeError
            When ``texts`` is one string or holds a non-string.
        ValueError
            When ``texts`` is empty.
        """
        self._fit(_texts(texts), seed)
        self.fitted = True
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text.

        Parameters
        ----------
        texts : sequence of str
            The texts, at least one.

        Returns
        -------
        numpy.ndarray of float32, shape (len(texts), d)
            ``d`` is fixed by the fitted encoder (the TF-IDF vocabulary size, BERT's hidden
            size).

        Raises
        ------
        RuntimeError
            When the encoder is not fitted.
        TypeError
            When ``texts`` is one string or holds a non-string.
        ValueError
            When ``texts`` is empty.
        """
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} must be fitted first: call .fit(texts)")
        return np.asarray(self._encode(_texts(texts)), dtype=np.float32)

    def _fit(self, texts: list[str], seed: int) -> None:  # pragma: no cover - overridden
        pass

    def _encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fitted={self.fitted})"


class TfidfEncoder(TextEncoder):
    """TF-IDF of words and word pairs (scikit-learn), as a dense array.

    The token pattern keeps numbers and single-character words ("g/L" gives "g" and "l");
    term frequencies are sublinear (``1 + log tf``) and every row has unit L2 norm (scikit-learn's
    default; a text without a known term is all zeros). Taught in chapter 6.

    Parameters
    ----------
    ngram_range : tuple of (int, int), default (1, 2)
        Words and word pairs.
    min_df : int, default 2
        A term must occur in at least this many training texts.
    max_features : int or None, default 5000
        Keep the most frequent terms only.
    """

    name = "tf-idf"

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), min_df: int = 2, max_features: int | None = 5000):
        super().__init__()
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=ngram_range, min_df=min_df, max_features=max_features,
                                          sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")

    def _fit(self, texts, seed):
        self.vectorizer.fit(texts)

    def _encode(self, texts):
        return self.vectorizer.transform(texts).toarray()

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)`` of a fitted encoder: the vocabulary (JSON-able) and the idf weights.

        With :meth:`from_state` this saves and loads the encoder without pickle (the complete
        system of chapter 12 keeps it in its safetensors file).

        Returns
        -------
        config : dict
            ``ngram_range``, ``min_df``, ``max_features`` and ``vocabulary`` (the terms in
            column order).
        arrays : dict of str to numpy.ndarray
            ``{"idf": float64 (n_terms,)}``.

        Raises
        ------
        RuntimeError
            When the encoder is not fitted.
        """
        if not self.fitted:
            raise RuntimeError("the TF-IDF encoder is not fitted: call fit(texts) first")
        v = self.vectorizer
        vocab = sorted(v.vocabulary_, key=v.vocabulary_.get)
        cfg = {"ngram_range": list(v.ngram_range), "min_df": v.min_df, "max_features": v.max_features,
               "vocabulary": vocab}
        return cfg, {"idf": np.asarray(v.idf_, np.float64)}

    @classmethod
    def from_state(cls, cfg: dict, arrays: dict[str, np.ndarray]) -> TfidfEncoder:
        """The encoder :meth:`state` described; it encodes exactly as the saved one did.

        Parameters
        ----------
        cfg : dict
            The ``config`` of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state`.

        Returns
        -------
        TfidfEncoder
            Fitted.

        Raises
        ------
        KeyError
            When a key is missing.
        ValueError
            When there is not one idf weight per term.
        """
        vocab = list(cfg["vocabulary"])
        idf = np.asarray(arrays["idf"], np.float64)
        if len(vocab) != len(idf):
            raise ValueError(f"a TF-IDF state needs one idf weight per term: {len(vocab)} terms, {len(idf)} weights")
        enc = cls(tuple(cfg["ngram_range"]), cfg["min_df"], cfg["max_features"])
        v = enc.vectorizer
        v.set_params(vocabulary={t: i for i, t in enumerate(vocab)}, min_df=1, max_features=None)
        v.fit([" ".join(vocab)])     # a fixed vocabulary: this only sets it up; the idf is replaced below
        v.idf_ = idf
        enc.fitted = True
        return enc


class TinyBertEncoder(TextEncoder):
    """WordPiece + tiny BERT trained by :meth:`fit` on the given texts; pooled embeddings.

    After fitting, ``tokenizer``, ``model`` and ``history`` (what
    :func:`~oncolab.text.pretrain_mlm` returns: the MLM loss per epoch, the pretraining time in
    seconds and the optimiser steps) are available. Taught in chapter 6 (its parts); the
    complete system's ``labs_encoder="bert"`` stage (chapter 12) uses it.

    Parameters
    ----------
    vocab_size : int, default 400
        WordPiece vocabulary size (>= 50; :func:`~oncolab.text.train_wordpiece`).
    hidden_size, num_layers, num_heads : int, default 64, 2, 2
        The BERT's size (:func:`~oncolab.text.tiny_bert_config`).
    epochs, batch_size : int, default 10, 32
        Pretraining epochs and texts per batch.
    lr : float, default 3e-3
        Peak learning rate.
    pooling : {"mean", "cls"}, default "mean"
        How token vectors become a text's vector.
    max_length : int, default 256
        Texts are truncated to this many tokens.

    Raises
    ------
    ValueError
        When ``pooling`` is unknown (the sizes are checked by ``fit``).
    """

    name = "tiny BERT"

    def __init__(self, vocab_size: int = 400, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 2,
                 epochs: int = 10, batch_size: int = 32, lr: float = 3e-3, pooling: str = "mean",
                 max_length: int = 256):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.vocab_size, self.hidden_size, self.num_layers, self.num_heads = vocab_size, hidden_size, num_layers, num_heads
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.pooling, self.max_length = pooling, max_length
        self.tokenizer = self.model = None
        self.history: dict = {}

    def _fit(self, texts, seed):
        from .bert import pretrain_mlm, tiny_bert
        from .tokenizer import train_wordpiece

        self.tokenizer = train_wordpiece(texts, self.vocab_size)
        self.model = tiny_bert(self.tokenizer, seed=seed, hidden_size=self.hidden_size,
                               num_layers=self.num_layers, num_heads=self.num_heads, max_length=self.max_length)
        self.history = pretrain_mlm(self.model, self.tokenizer, texts, epochs=self.epochs,
                                    batch_size=self.batch_size, lr=self.lr, seed=seed, max_length=self.max_length)

    def _encode(self, texts):
        from .bert import embed_texts

        return embed_texts(self.model, self.tokenizer, texts, pooling=self.pooling, max_length=self.max_length)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)``: the settings, the tokenizer and BERT configuration as JSON, the
        weights as arrays. :meth:`from_state` rebuilds the encoder without pickle (chapter 12).

        Returns
        -------
        config : dict
            The constructor's settings, ``tokenizer`` (the tokenizer as a JSON string) and
            ``bert`` (the ``BertConfig`` as a dict).
        arrays : dict of str to numpy.ndarray
            The BERT's ``state_dict``.

        Raises
        ------
        RuntimeError
            When the encoder is not fitted.
        """
        import json

        if not self.fitted:
            raise RuntimeError("the tiny BERT encoder is not fitted: call fit(texts) first")
        cfg = {"vocab_size": self.vocab_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
               "num_heads": self.num_heads, "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
               "pooling": self.pooling, "max_length": self.max_length,
               "tokenizer": self.tokenizer.backend_tokenizer.to_str(),
               "bert": json.loads(self.model.config.to_json_string())}
        return cfg, {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    @classmethod
    def from_state(cls, cfg: dict, arrays: dict[str, np.ndarray]) -> TinyBertEncoder:
        """The encoder :meth:`state` described; it encodes exactly as the saved one did.

        Parameters
        ----------
        cfg : dict
            The ``config`` of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state`.

        Returns
        -------
        TinyBertEncoder
            Fitted, its model in eval mode.

        Raises
        ------
        KeyError
            When a key is missing.
        ValueError
            When the tokenizer JSON is not a saved tokenizer or the weights do not fit the
            configuration.
        """
        import torch
        from transformers import BertConfig, BertForMaskedLM

        from .tokenizer import tokenizer_from_json

        keys = ("vocab_size", "hidden_size", "num_layers", "num_heads", "epochs", "batch_size", "lr", "pooling",
                "max_length")
        enc = cls(**{k: cfg[k] for k in keys})
        enc.tokenizer = tokenizer_from_json(cfg["tokenizer"])
        enc.model = BertForMaskedLM(BertConfig.from_dict(cfg["bert"]))
        try:
            enc.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, strict=True)
        except RuntimeError as e:
            raise ValueError(f"the saved BERT weights do not fit its configuration: {str(e).splitlines()[0]}") from e
        enc.model.eval()
        enc.fitted = True
        return enc


class BioBertEncoder(TextEncoder):
    """BioBERT (or any BERT-like hub model) through ``AutoTokenizer`` / ``AutoModel``.

    ``model`` is a hub name (default :data:`BIOBERT`) or a local folder. A hub name calls
    :func:`oncolab.env.require_hub` first: offline, the constructor raises
    ``HubUnavailableError`` within a second or two, saying what to do. Nothing is trained:
    ``fit`` is a no-op. Taught in chapter 6.

    Parameters
    ----------
    model : str, default :data:`BIOBERT`
        A hub name or a local folder holding the model and its tokenizer.
    pooling : {"cls", "mean"}, default "cls"
        ``[CLS]`` vector, or the mean over the non-padding tokens.
    max_length : int, default 256
        Texts are truncated to this many tokens.
    batch_size : int, default 16
        Texts per forward pass.
    device : str, optional
        Where the model runs; :func:`oncolab.env.get_device` picks by default.

    Raises
    ------
    ValueError
        When ``pooling`` is unknown.
    oncolab.env.HubUnavailableError
        When ``model`` is a hub name and the hub cannot be reached.
    """

    name = "BioBERT"
    needs_fit = False

    def __init__(self, model: str = BIOBERT, pooling: str = "cls", max_length: int = 256,
                 batch_size: int = 16, device: str | None = None):
        super().__init__()
        from oncolab.env import get_device, require_hub

        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        if not Path(model).exists():
            require_hub(model, local_hint="model=<a folder with the downloaded model>")
        from transformers import AutoModel, AutoTokenizer

        self.device = get_device(device)
        self.model_name = str(model)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model).to(self.device).eval()
        self.pooling, self.max_length, self.batch_size = pooling, max_length, batch_size

    def _encode(self, texts):
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                h = self.model(**enc).last_hidden_state
                if self.pooling == "cls":
                    out.append(h[:, 0].cpu())
                else:
                    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    out.append(((h * m).sum(1) / m.sum(1)).cpu())
        return torch.cat(out).numpy()

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The model's name and settings: the weights stay on the hub (or in the local folder).

        Returns
        -------
        config : dict
            ``model``, ``pooling``, ``max_length``, ``batch_size``.
        arrays : dict
            Empty.
        """
        return {"model": self.model_name, "pooling": self.pooling, "max_length": self.max_length,
                "batch_size": self.batch_size}, {}

    @classmethod
    def from_state(cls, cfg: dict, arrays: dict[str, np.ndarray]) -> BioBertEncoder:
        """Load the named model again (from the hub: needs a network, or from its local folder).

        Parameters
        ----------
        cfg : dict
            The ``config`` of :meth:`state`.
        arrays : dict
            Ignored (empty).

        Returns
        -------
        BioBertEncoder

        Raises
        ------
        oncolab.env.HubUnavailableError
            When the model is a hub name and the hub cannot be reached.
        """
        return cls(cfg["model"], cfg["pooling"], cfg["max_length"], cfg["batch_size"])
