"""Text: lab panels -> flags -> narratives; WordPiece; a tiny BERT; BioBERT; baselines; symptom findings.

Taught in chapter 6 ("From blood tests to sentences"). The biomarkers and the flag rule live
in :mod:`oncolab.data.labs`; this subpackage turns them into text and vectors, and reads
structured findings out of free-text symptom notes with negation handled
(:mod:`oncolab.text.symptoms`).
The text lab stages of the complete system (chapter 12) narrate and encode a whole cohort. The
panel's numbers, as numbers, are featurised by :class:`oncolab.features.LabFeatures`.
"""

from .baselines import embedding_model, numeric_panel_model, tfidf_model
from .bert import (
    embed_texts,
    evaluate_mlm,
    mask_tokens,
    mlm_loss,
    pretrain_mlm,
    tiny_bert,
    tiny_bert_config,
)
from .encoders import (
    BIOBERT,
    BioBertEncoder,
    TextEncoder,
    TfidfEncoder,
    TinyBertEncoder,
)
from .narrator import (
    DEFAULT_LLM,
    LLMNarrator,
    narrate,
    narrate_cohort,
    narrate_results,
    patient_seed,
)
from .panel import (
    LabResult,
    check_panel,
    flag_panel,
    flag_table,
    format_value,
    is_missing,
    to_canonical,
)
from .symptoms import (
    FINDING_TERMS,
    FINDINGS,
    STATUSES,
    TRIGGERS,
    FindingExtractor,
    Mention,
    extract_findings,
    find_mentions,
    finding_status,
)
from .tokenizer import (
    SPECIAL_TOKENS,
    learn_wordpiece,
    pre_tokenize,
    train_wordpiece,
    word_counts,
    wordpiece_tokenize,
)

__all__ = [
    "BIOBERT", "DEFAULT_LLM", "FINDINGS", "FINDING_TERMS", "SPECIAL_TOKENS", "STATUSES", "TRIGGERS",
    "BioBertEncoder", "FindingExtractor", "LLMNarrator", "LabResult", "Mention",
    "TextEncoder", "TfidfEncoder", "TinyBertEncoder", "check_panel",
    "embed_texts", "embedding_model", "evaluate_mlm", "extract_findings", "find_mentions", "finding_status",
    "flag_panel", "flag_table", "format_value",
    "is_missing", "learn_wordpiece", "mask_tokens",
    "mlm_loss", "narrate", "narrate_cohort", "narrate_results", "numeric_panel_model",
    "patient_seed", "pre_tokenize", "pretrain_mlm", "tfidf_model", "tiny_bert", "tiny_bert_config",
    "to_canonical", "train_wordpiece", "word_counts", "wordpiece_tokenize",
]
