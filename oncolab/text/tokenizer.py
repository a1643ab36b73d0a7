"""Tokenisation: words -> subword pieces, by hand and with the ``tokenizers`` library.

Taught in chapter 6 ("From blood tests to sentences").

WordPiece starts from single characters (a word's first character as is, later ones with the
continuation prefix ``##``) and repeatedly merges a pair of adjacent pieces into a new piece,
until the vocabulary has the size asked for. Two rules for choosing the pair are in use:

* ``score="frequency"``: the pair seen most often in the corpus (counting each word as often
  as it occurs). This is what the ``tokenizers`` library's ``WordPieceTrainer`` does (it
  trains with its byte-pair-encoding trainer and stores the result as a WordPiece
  vocabulary); :func:`learn_wordpiece` reproduces its merges, checked in the unit tests;
* ``score="likelihood"``: ``count(ab) / (count(a) * count(b))``, the rule of the original
  WordPiece, which prefers pairs whose parts rarely occur apart.

Encoding a word with a finished vocabulary is greedy longest-match-first
(:func:`wordpiece_tokenize`); a word with no match becomes ``[UNK]``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "SPECIAL_TOKENS",
    "learn_wordpiece",
    "pre_tokenize",
    "train_wordpiece",
    "word_counts",
    "wordpiece_tokenize",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORD_RE = re.compile(r"\w+|[^\w\s]")


def pre_tokenize(text: str) -> list[str]:
    """Lower-case and split into words and single punctuation marks (BERT's basic split).

    Taught in chapter 6. Words are runs of letters, digits and underscores (``\\w+``); every
    other non-space character is a word of its own.

    Parameters
    ----------
    text : str
        The text.

    Returns
    -------
    list of str
        The words, in order.

    Raises
    ------
    TypeError
        When ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower())


def word_counts(texts: Iterable[str]) -> Counter:
    """How often each word occurs in the corpus.

    Taught in chapter 6 (the counts WordPiece learns from).

    Parameters
    ----------
    texts : iterable of str
        The corpus, split with :func:`pre_tokenize`.

    Returns
    -------
    collections.Counter
        ``{word: count}``.

    Raises
    ------
    TypeError
        When an item of ``texts`` is not a string.
    """
    counts: Counter = Counter()
    for t in texts:
        counts.update(pre_tokenize(t))
    return counts


def _split(word: str, prefix: str) -> tuple[str, ...]:
    return (word[0],) + tuple(prefix + ch for ch in word[1:])


def _merge_symbol(a: str, b: str, prefix: str) -> str:
    return a + (b[len(prefix):] if b.startswith(prefix) else b)


def _pairs(sp: tuple[str, ...]) -> Counter:
    return Counter(zip(sp[:-1], sp[1:]))


def learn_wordpiece(counts: Counter | dict[str, int], n_merges: int, score: str = "frequency",
                    prefix: str = "##", min_frequency: int = 1) -> tuple[list[str], list[dict]]:
    """Learn WordPiece merges from word counts, by hand.

    Returns ``(alphabet, merges)``: the initial pieces (every character, then the
    continuation pieces) and, for each merge in order,
    ``{"pair": (a, b), "token": ab, "count": n, "score": s, "tie": bool}``; ``tie`` is True
    when another pair had the same score: we then take the alphabetically first pair (the
    library's choice among tied pairs depends on the order of a hash map).
    Stops early when no pair is left or the chosen pair occurs fewer than ``min_frequency``
    times. Taught in chapter 6.

    Parameters
    ----------
    counts : collections.Counter or dict of str to int
        How often each word occurs (:func:`word_counts`); empty words are ignored.
    n_merges : int
        Most merges to learn, >= 0.
    score : {"frequency", "likelihood"}, default "frequency"
        The rule for choosing the pair (see the module docstring).
    prefix : str, default "##"
        The continuation prefix.
    min_frequency : int, default 1
        Stop when the chosen pair occurs fewer times than this.

    Returns
    -------
    alphabet : list of str
        The initial pieces, sorted: every character that starts a word or occurs inside one,
        then the continuation pieces.
    merges : list of dict
        One record per merge, in order, as described above.

    Raises
    ------
    ValueError
        When ``score`` is unknown or ``n_merges`` is not a non-negative integer.
    """
    if score not in ("frequency", "likelihood"):
        raise ValueError(f"score must be 'frequency' or 'likelihood', got {score!r}")
    if not isinstance(n_merges, int) or n_merges < 0:
        raise ValueError(f"n_merges must be a non-negative integer, got {n_merges!r}")
    words = {w: _split(w, prefix) for w in sorted(counts) if w}
    # as the library does: every character may start a word, plus the continuation pieces seen
    alphabet = sorted({ch for w in words for ch in w}) + sorted(
        {s for sp in words.values() for s in sp[1:]})
    pair_counts: Counter = Counter()
    piece_counts: Counter = Counter()
    where: dict[tuple[str, str], set[str]] = {}
    for w, sp in words.items():
        for s in sp:
            piece_counts[s] += counts[w]
        for p, k in _pairs(sp).items():
            pair_counts[p] += k * counts[w]
            where.setdefault(p, set()).add(w)
    merges: list[dict] = []
    for _ in range(n_merges):
        pair_counts += Counter()  # drop zero counts
        if not pair_counts:
            break
        if score == "frequency":
            scores = {p: float(c) for p, c in pair_counts.items()}
        else:
            scores = {p: c / (piece_counts[p[0]] * piece_counts[p[1]]) for p, c in pair_counts.items()}
        best_score = max(scores.values())
        best = sorted(p for p, v in scores.items() if v == best_score)
        pair = best[0]
        if pair_counts[pair] < min_frequency:
            break
        new = _merge_symbol(*pair, prefix)
        merges.append({"pair": pair, "token": new, "count": int(pair_counts[pair]),
                       "score": best_score, "tie": len(best) > 1})
        for w in sorted(where.pop(pair, ())):
            sp, c = words[w], counts[w]
            out, i = [], 0
            while i < len(sp):
                if i + 1 < len(sp) and (sp[i], sp[i + 1]) == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(sp[i])
                    i += 1
            out = tuple(out)
            for p, k in _pairs(sp).items():
                pair_counts[p] -= k * c
            for s in sp:
                piece_counts[s] -= c
            for p, k in _pairs(out).items():
                pair_counts[p] += k * c
                where.setdefault(p, set()).add(w)
            for s in out:
                piece_counts[s] += c
            words[w] = out
    return alphabet, merges


def wordpiece_tokenize(word: str, vocab: Iterable[str], unk: str = "[UNK]", prefix: str = "##",
                       max_chars: int = 100) -> list[str]:
    """Split one word into the longest pieces of ``vocab``, left to right; ``[UNK]`` if stuck.

    Taught in chapter 6 (checked against the library's encoding).

    Parameters
    ----------
    word : str
        One word, already lower-cased and split (:func:`pre_tokenize`).
    vocab : iterable of str
        The vocabulary; continuation pieces carry ``prefix``.
    unk : str, default "[UNK]"
        What a word that cannot be split becomes.
    prefix : str, default "##"
        The continuation prefix.
    max_chars : int, default 100
        A longer word becomes ``[unk]`` at once (as in BERT).

    Returns
    -------
    list of str
        The pieces, or ``[unk]``.
    """
    vocab = set(vocab)
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        found = None
        while end > start:
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return [unk]
        pieces.append(found)
        start = end
    return pieces


def train_wordpiece(texts: Sequence[str], vocab_size: int = 800, min_frequency: int = 2,
                    trainer: str = "exact"):
    """Train a BERT-style WordPiece tokenizer on ``texts``.

    Lower-cases, splits on whitespace and punctuation, adds ``[CLS] ... [SEP]`` around each
    text, and returns a ``transformers.PreTrainedTokenizerFast`` ready for a BERT model (its
    ``backend_tokenizer`` is a ``tokenizers.Tokenizer`` with a ``WordPiece`` model).

    ``trainer="tokenizers"`` learns the vocabulary with the library's ``WordPieceTrainer``.
    Where two pairs are equally frequent, the library's choice depends on the order of a hash
    map, so two runs on the same texts can give different vocabularies. ``trainer="exact"``
    (the default) learns the same merges with :func:`learn_wordpiece`, breaking ties
    alphabetically: same texts, same vocabulary, same token ids. Either way, encoding is done
    by the library. Taught in chapter 6.

    Parameters
    ----------
    texts : sequence of str
        The training corpus, at least one text.
    vocab_size : int, default 800
        Vocabulary size wanted, >= 50 (special tokens included). With ``"exact"`` the
        vocabulary is at least the special tokens plus the alphabet, and smaller than
        ``vocab_size`` when the merges run out.
    min_frequency : int, default 2
        A pair must occur at least this often to be merged.
    trainer : {"exact", "tokenizers"}, default "exact"
        Who learns the vocabulary, as above.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        With the special tokens :data:`SPECIAL_TOKENS` (``[PAD]`` first, id 0).

    Raises
    ------
    TypeError
        When ``texts`` is one string.
    ValueError
        When ``texts`` is empty or holds a non-string, ``vocab_size`` is not an integer
        >= 50, or ``trainer`` is unknown.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty sequence of strings")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 50:
        raise ValueError(f"vocab_size must be an integer >= 50, got {vocab_size!r}")
    if trainer not in ("exact", "tokenizers"):
        raise ValueError(f"trainer must be 'exact' or 'tokenizers', got {trainer!r}")
    if trainer == "exact":
        alphabet, merges = learn_wordpiece(word_counts(texts), n_merges=vocab_size,
                                           min_frequency=min_frequency)
        pieces = list(SPECIAL_TOKENS) + alphabet + [m["token"] for m in merges]
        vocab: dict[str, int] = {}
        for piece in pieces:
            if len(vocab) >= max(vocab_size, len(SPECIAL_TOKENS) + len(alphabet)):
                break
            vocab.setdefault(piece, len(vocab))
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if trainer == "tokenizers":
        wp_trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                               special_tokens=list(SPECIAL_TOKENS), show_progress=False)
        tok.train_from_iterator(texts, wp_trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece(prefix="##")
    return _bert_tokenizer(tok)


def _bert_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def tokenizer_from_json(text: str):
    """A tokenizer of :func:`train_wordpiece` back from ``tokenizer.backend_tokenizer.to_str()``.

    The JSON holds the vocabulary and the normalising, splitting and template rules: data only,
    so a saved model (chapter 12) keeps its tokenizer without pickle.

    Parameters
    ----------
    text : str
        The JSON text.

    Returns
    -------
    transformers.PreTrainedTokenizerFast

    Raises
    ------
    ValueError
        When ``text`` is not a saved tokenizer.
    """
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:  # the library raises its own exception type for malformed JSON
        raise ValueError(f"not a saved tokenizer: {e}") from e
    return _bert_tokenizer(tok)
