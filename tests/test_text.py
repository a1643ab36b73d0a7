"""oncolab.text: panels, narratives, WordPiece, tiny BERT, encoders, baselines (chapter 6)."""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncolab.data import synthetic_cohort
from oncolab.data.labs import BIOMARKERS, biomarker, flag_value
from oncolab.env import HubUnavailableError
from oncolab.text import (
    BioBertEncoder,
    LLMNarrator,
    TfidfEncoder,
    check_panel,
    embed_texts,
    evaluate_mlm,
    flag_panel,
    learn_wordpiece,
    mask_tokens,
    mlm_loss,
    narrate,
    narrate_cohort,
    pre_tokenize,
    pretrain_mlm,
    tiny_bert,
    to_canonical,
    train_wordpiece,
    word_counts,
    wordpiece_tokenize,
)
from oncolab.text.narrator import _short


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models train fastest on one thread (more threads mostly wait for each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cohort():
    return synthetic_cohort(60, seed=5, modalities=["labs", "clinical"])


@pytest.fixture(scope="module")
def texts(cohort):
    return narrate_cohort(cohort, seed=0)


# --- panel: units, bad input, flags -----------------------------------------------------------
def test_unit_conversion_uses_the_biomarker_table():
    assert to_canonical("calcium", 9.6, "mg/dL") == pytest.approx(9.6 * dict(biomarker("calcium").conversions)["mg/dL"], abs=1e-3)
    assert to_canonical("haemoglobin", 13.5, "g/dL") == pytest.approx(135.0)
    assert to_canonical("alp", 120, "U/L") == 120.0
    assert math.isnan(to_canonical("alp", None))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'mg/L'.*mmol/L"):
        to_canonical("calcium", 2.4, "mg/L")
    with pytest.raises(ValueError, match="mg/dL"):  # calcium given in mg/dL without saying so
        to_canonical("calcium", 9.6)
    with pytest.raises(ValueError, match="negative.*-3"):
        to_canonical("crp", -3.0)
    with pytest.raises(KeyError, match="'sodium'"):
        check_panel({"sodium": 140})
    with pytest.raises(TypeError, match="'high'"):
        to_canonical("alp", "high")
    with pytest.raises(ValueError, match="age"):
        flag_panel({"alp": 100}, sex="F", age=-4)


def test_flags_follow_the_rule_in_oncolab_data_labs():
    panel = {"alp": 1200, "ldh": 300, "calcium": 2.1, "haemoglobin": 125, "esr": 22}
    for sex in ("F", "M"):
        for r in flag_panel(panel, sex=sex, age=60):
            assert r.flag == flag_value(r.name, panel.get(r.name), sex, 60)
    by = {r.name: r for r in flag_panel(panel, sex="F", age=60)}
    assert by["alp"].flag == "critical" and by["alp"].direction == "high"
    assert by["haemoglobin"].flag == "normal"  # 120-155 for women
    assert {r.name: r for r in flag_panel(panel, sex="M", age=60)}["haemoglobin"].flag == "low"
    assert by["crp"].flag == "not measured" and math.isnan(by["crp"].value)


# --- the narrator ------------------------------------------------------------------------------
def _value_strategy(b):
    """Missing, or a plausible value from far below to far above the range (criticals included).

    Biomarkers with other known units stay below 3x their upper limit: beyond it a value is
    taken for one given in the wrong unit and refused (tested above).
    """
    lo = 0.3 * (b.low if b.low > 0 else b.high / 10)
    hi = b.high * (2.9 if b.conversions else 50)
    return st.one_of(st.none(), st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, b.decimals)))


panels = st.fixed_dictionaries({b.name: _value_strategy(b) for b in BIOMARKERS})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panel=panels, sex=st.sampled_from(["F", "M", None]), age=st.one_of(st.none(), st.integers(5, 95)),
       seed=st.integers(0, 2**32 - 1))
def test_narrator_property(panel, sex, age, seed):
    text = narrate(panel, sex, age, seed=seed)
    assert text == narrate(panel, sex, age, seed=seed)  # deterministic for a seed
    results = flag_panel(panel, sex, age)
    abnormal = [r for r in results if r.abnormal]
    for r in abnormal:  # every abnormal value appears with its value, unit and range
        assert f"{r.value_text} {r.unit}" in text, (r, text)
        assert r.range_text in text
    measured_normal = [r for r in results if r.flag == "normal"]
    for r in measured_normal:
        assert f"{r.value_text} {r.unit}" in text
    missing = [r for r in results if r.flag == "not measured"]
    if len(missing) == len(results):
        assert "No blood test results were recorded" in text
    elif missing:
        tail = text.rsplit(". ", 1)[-1]  # the last sentence lists what was not measured
        assert "not measured" in tail.lower()
        for r in missing:  # named as not measured, never given a number
            assert _short(r.name).lower() in tail.lower()
    if abnormal and measured_normal:  # abnormal first
        low = text.lower()
        normal_part = min(low.index(p) for p in ("within range:", "normal results:", "other results are normal:")
                          if p in low)
        assert all(low.index(biomarker(r.name).label.lower()) < normal_part for r in abnormal)


def test_narrator_varies_with_seed_and_cohort_is_reproducible(cohort, texts):
    panel = {"alp": 250, "crp": 30, "calcium": 2.4}
    assert len({narrate(panel, "F", 50, seed=s) for s in range(20)}) > 3
    assert texts == narrate_cohort(cohort, seed=0)
    assert texts != narrate_cohort(cohort, seed=1)
    # a patient's text does not depend on the other patients in the cohort
    assert narrate_cohort(cohort.subset(np.arange(10)), seed=0) == texts[:10]


def test_nothing_measured_is_said_not_invented():
    text = narrate({}, "M", 30, seed=0)
    assert "No blood test results" in text and not any(ch.isdigit() for ch in text.replace("30-year", ""))


def test_llm_narrator_falls_back_offline_fast_and_checks_values():
    panel = {"alp": 250, "crp": 30}
    t0 = time.perf_counter()
    with pytest.warns(UserWarning, match="fell back"):
        text = LLMNarrator().narrate(panel, "F", 40, seed=3)
    assert time.perf_counter() - t0 < 2.0
    assert text == narrate(panel, "F", 40, seed=3)
    good = LLMNarrator(generator=lambda p: "Raised ALP at 250 U/L and CRP 30.0 mg/L; nothing else measured.")
    assert good.narrate(panel).startswith("Raised ALP") and good.last_source == "llm"
    liar = LLMNarrator(generator=lambda p: "ALP was 205 U/L.")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert liar.narrate(panel, seed=1) == narrate(panel, seed=1)
    assert liar.last_source == "template" and "250 U/L" in liar.last_message


# --- tokenisation -------------------------------------------------------------------------------
TOY = Counter({"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5})


def test_wordpiece_merges_match_the_tokenizers_library():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    alphabet, merges = learn_wordpiece(TOY, 10)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator([" ".join([w] * c) for w, c in TOY.items()],
                            trainers.WordPieceTrainer(vocab_size=100, special_tokens=["[UNK]"], min_frequency=1))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    lib_alphabet = [t for t, _ in vocab[1:1 + len(alphabet)]]
    lib_merges = [t for t, _ in vocab[1 + len(alphabet):]]
    assert sorted(lib_alphabet) == sorted(alphabet)
    n_sure = next(i for i, m in enumerate(merges) if m["tie"])
    assert n_sure >= 3
    assert lib_merges[:n_sure] == [m["token"] for m in merges[:n_sure]]
    assert set(lib_merges) == {m["token"] for m in merges}
    # the likelihood rule picks differently: it prefers '##g' + '##s' (rare apart)
    _, lik = learn_wordpiece(TOY, 1, score="likelihood")
    assert lik[0]["token"] == "##gs" and merges[0]["token"] == "##ug"


def test_greedy_longest_match_matches_the_library(texts):
    tk = train_wordpiece(texts, 120)
    vocab = tk.get_vocab()
    for t in texts[:20] + ["unseen zebra 12345"]:
        mine = [p for w in pre_tokenize(t) for p in wordpiece_tokenize(w, vocab)]
        assert mine == tk.tokenize(t)


def test_train_wordpiece_is_reproducible_and_checks_input(texts):
    a, b = train_wordpiece(texts, 150), train_wordpiece(texts, 150)
    assert a.get_vocab() == b.get_vocab() and len(a) == 150
    assert a(texts[0])["input_ids"][0] == a.cls_token_id
    assert len(word_counts(texts)) > 50
    with pytest.raises(ValueError, match="vocab_size"):
        train_wordpiece(texts, 10)
    with pytest.raises(ValueError, match="trainer"):
        train_wordpiece(texts, 100, trainer="bpe")


# --- tiny BERT -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(texts):
    tk = train_wordpiece(texts, 120)
    return tk, tiny_bert(tk, seed=0, hidden_size=16, num_layers=1, num_heads=2)


def test_masking_follows_80_10_10_and_matches_the_library_collator():
    from transformers import DataCollatorForLanguageModeling

    ids = torch.randint(5, 100, (400, 50))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    masked, labels = mask_tokens(ids, special, mask_token_id=4, vocab_size=100, seed=0)
    again, labels2 = mask_tokens(ids, special, mask_token_id=4, vocab_size=100, seed=0)
    assert torch.equal(masked, again) and torch.equal(labels, labels2)
    chosen = labels != -100
    assert not chosen[special].any()
    assert torch.equal(labels[chosen], ids[chosen])
    frac = chosen[~special].float().mean().item()
    mask_frac = (masked[chosen] == 4).float().mean().item()
    same_frac = (masked[chosen] == ids[chosen]).float().mean().item()

    class Tok:  # the minimum DataCollatorForLanguageModeling asks of a tokenizer
        mask_token, mask_token_id, pad_token, pad_token_id = "[MASK]", 4, "[PAD]", 0

        def __len__(self):
            return 100

        def get_special_tokens_mask(self, seq, already_has_special_tokens=True):
            return [1] + [0] * (len(seq) - 2) + [1]

        def convert_tokens_to_ids(self, t):
            return 4

    torch.manual_seed(0)
    coll = DataCollatorForLanguageModeling(Tok(), mlm_probability=0.15, return_tensors="pt")
    lib_ids, lib_labels = coll.torch_mask_tokens(ids.clone())
    lib_chosen = lib_labels != -100
    assert frac == pytest.approx(lib_chosen[~special].float().mean().item(), abs=0.01)
    assert mask_frac == pytest.approx((lib_ids[lib_chosen] == 4).float().mean().item(), abs=0.03)
    assert frac == pytest.approx(0.15, abs=0.01) and mask_frac == pytest.approx(0.8, abs=0.03)
    assert same_frac == pytest.approx(0.1, abs=0.03)


def test_mlm_loss_by_hand_equals_the_models_loss(tiny, texts):
    tk, model = tiny
    enc = tk(texts[:6], padding=True, return_tensors="pt", return_special_tokens_mask=True)
    special = enc["special_tokens_mask"].bool() | (enc["attention_mask"] == 0)
    masked, labels = mask_tokens(enc["input_ids"], special, tk.mask_token_id, len(tk), seed=2)
    with torch.no_grad():
        out = model(input_ids=masked, attention_mask=enc["attention_mask"], labels=labels)
    assert mlm_loss(out.logits, labels).item() == pytest.approx(out.loss.item(), rel=1e-5)
    ref = torch.nn.functional.cross_entropy(out.logits.view(-1, out.logits.shape[-1]), labels.view(-1))
    assert mlm_loss(out.logits, labels).item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError, match="no position"):
        mlm_loss(out.logits, torch.full_like(labels, -100))


def test_pretraining_lowers_the_mlm_loss_and_embeds(texts):
    tk = train_wordpiece(texts, 120)
    model = tiny_bert(tk, seed=0, hidden_size=16, num_layers=1, num_heads=2)
    before = evaluate_mlm(model, tk, texts[:20], seed=1)
    hist = pretrain_mlm(model, tk, texts[:24], epochs=8, batch_size=8, lr=1e-2, seed=0)
    after = evaluate_mlm(model, tk, texts[:20], seed=1)
    assert after < before - 0.3, (before, after, hist["loss"])
    assert hist["loss"][-1] < hist["loss"][0] and hist["seconds"] > 0
    e_cls = embed_texts(model, tk, texts[:5], pooling="cls")
    e_mean = embed_texts(model, tk, texts[:5], pooling="mean")
    assert e_cls.shape == e_mean.shape == (5, 16) and e_mean.dtype == np.float32
    # mean pooling by hand on one unpadded text
    enc = tk(texts[0], return_tensors="pt")
    with torch.no_grad():
        h = model.bert(**enc).last_hidden_state[0]
    np.testing.assert_allclose(e_mean[0], h.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(e_cls[0], h[0].numpy(), rtol=1e-4, atol=1e-5)


# --- encoders and baselines -------------------------------------------------------------------------
def test_biobert_offline_fails_fast_with_advice():
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="biobert.*Colab"):
        BioBertEncoder()
    assert time.perf_counter() - t0 < 2.0


def test_an_unfitted_tfidf_encoder_refuses_to_encode():
    with pytest.raises(RuntimeError, match="fit"):
        TfidfEncoder().encode(["x"])


def test_numeric_panel_model_reads_the_panel_through_lab_features(cohort):
    from oncolab.features import LabFeatures
    from oncolab.text import numeric_panel_model

    labs, y = cohort.labs, cohort.y
    m = numeric_panel_model(C=0.5).fit(labs.iloc[:40], y[:40])
    ref = LabFeatures().fit(labs.iloc[:40])
    np.testing.assert_array_equal(m[0].transform(labs), ref.transform(labs))
    assert m[-1].C == 0.5 and m[-1].coef_.shape == (3, 2 * len(BIOMARKERS))  # value + missing flag per lab
    p = m.predict_proba(labs.iloc[40:])
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_array_equal(m.predict_proba(labs.iloc[40:, ::-1]), p)  # labs matched by name
    bad = labs.iloc[40:].copy()
    bad.iloc[0, 0] = -1
    with pytest.raises(ValueError, match=rf"lab '{labs.columns[0]}' of patient '{labs.index[40]}' is -1"):
        m.predict_proba(bad)


def test_tiny_bert_encoder_same_seed_same_bytes(cohort):
    from oncolab.text import TinyBertEncoder

    def run():
        enc = TinyBertEncoder(vocab_size=80, hidden_size=16, num_layers=1, num_heads=2, epochs=1, batch_size=20)
        texts = narrate_cohort(cohort, seed=3)
        enc.fit(texts[:40], seed=3)   # pretrained on the first 40 patients' narratives only
        return enc, enc.encode(texts)

    enc, a = run()
    _, b = run()
    assert a.shape == (len(cohort), 16) and len(enc.history["loss"]) == 1
    assert a.tobytes() == b.tobytes()


def test_llm_narrator_runs_a_real_pipeline_and_rejects_its_invented_text(tmp_path, texts):
    """A local (untrained, tiny) GPT-2 through transformers' text-generation pipeline."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tk = train_wordpiece(texts, 80)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tk), n_positions=512, n_embd=16, n_layer=1, n_head=2,
                     bos_token_id=tk.cls_token_id, eos_token_id=tk.sep_token_id, pad_token_id=tk.pad_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(tmp_path)
    tk.save_pretrained(tmp_path)
    llm = LLMNarrator(model=str(tmp_path), max_new_tokens=5)
    with pytest.warns(UserWarning, match="left out or changed"):
        text = llm.narrate({"alp": 250}, seed=0)
    assert llm._load_error is None and llm.last_source == "template"
    assert text == narrate({"alp": 250}, seed=0)


def test_tiny_bert_leaves_the_global_random_state_as_it_was(texts):
    tk = train_wordpiece(texts, 120)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_bert(tk, seed=7, hidden_size=16, num_layers=1, num_heads=2)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
