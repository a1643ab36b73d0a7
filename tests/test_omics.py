"""oncolab.omics: normalisation, PCA against scikit-learn, encoders, clinical preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from oncolab.omics import (
    PCA,
    ClinicalEncoder,
    ClinicalPreprocessor,
    GenePreprocessor,
    SNNEncoder,
    cpm,
    fit_autoencoder,
    log_cpm,
)


def test_cpm_and_log_cpm_by_hand():
    counts = np.array([[10, 30, 60], [1, 1, 2]])
    c = cpm(counts)
    np.testing.assert_allclose(c.sum(1), 1e6)
    np.testing.assert_allclose(c[0], [1e5, 3e5, 6e5])
    np.testing.assert_allclose(log_cpm(counts), np.log2(c + 1))


@pytest.mark.parametrize("bad", [np.array([[1, -1]]), np.array([[np.nan, 1]]), np.array([1, 2])])
def test_bad_counts_raise(bad):
    with pytest.raises(ValueError):
        cpm(bad)


def test_zero_library_names_the_row():
    with pytest.raises(ValueError, match="row 1"):
        cpm(np.array([[1, 2], [0, 0]]))


def test_gene_preprocessor_fits_on_train_only(small_cohort):
    g = small_cohort.genes
    pre = GenePreprocessor().fit(g.iloc[:60])
    z_train = pre.transform(g.iloc[:60])
    np.testing.assert_allclose(z_train.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(z_train.std(0, ddof=1), 1, atol=1e-9)
    z_test = pre.transform(g.iloc[60:])
    assert abs(z_test.mean()) > 1e-6  # test statistics were not used
    with pytest.raises(ValueError, match="different order"):
        pre.transform(g.iloc[60:, ::-1])
    cfg, arrays = pre.state()
    again = GenePreprocessor.from_state(cfg, arrays)
    np.testing.assert_array_equal(again.transform(g.iloc[60:]), z_test)


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA as SkPCA

    X = np.random.default_rng(0).normal(size=(50, 8)) @ np.random.default_rng(1).normal(size=(8, 8))
    ours = PCA(4).fit(X)
    ref = SkPCA(4).fit(X)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-8)
    s_ours, s_ref = ours.transform(X), ref.transform(X)
    signs = np.sign((s_ours * s_ref).sum(0))
    np.testing.assert_allclose(s_ours, s_ref * signs, atol=1e-8)
    with pytest.raises(ValueError, match="n_components"):
        PCA(20).fit(X)


def test_snn_and_autoencoder_shapes_and_seed():
    X = np.random.default_rng(0).normal(size=(40, 12))
    enc = SNNEncoder(12, hidden=16, out_dim=4)
    assert enc(torch.zeros(3, 12)).shape == (3, 4)
    m1, l1 = fit_autoencoder(X, latent=3, epochs=30, seed=5)
    m2, l2 = fit_autoencoder(X, latent=3, epochs=30, seed=5)
    assert l1 == l2 and l1[-1] < l1[0]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_clinical_embedding_equals_linear_over_one_hot(small_cohort):
    df = small_cohort.clinical
    pre = ClinicalPreprocessor().fit(df.iloc[:60])
    enc = ClinicalEncoder.for_preprocessor(pre, out_dim=5)
    idx = torch.as_tensor(pre.indices(df))
    num = torch.as_tensor(pre.numbers(df), dtype=torch.float32)
    emb = enc(idx, num)
    # the same map as one linear layer over [numbers, one-hot columns]
    W = torch.cat([enc.numeric.weight] + [e.weight.T for e in enc.embeddings], 1)
    oh = torch.as_tensor(pre.one_hot(df), dtype=torch.float32)
    torch.testing.assert_close(oh @ W.T + enc.numeric.bias, emb)
    new = df.iloc[:2].copy()
    new["center"] = "Z"  # never seen in training: index 0 (unknown)
    assert (pre.indices(new)[:, pre.categorical.index("center")] == 0).all()
    with pytest.raises(ValueError, match="lacks column"):
        pre.indices(df.drop(columns="age"))
    assert isinstance(pre.feature_names(), list) and len(pre.feature_names()) == oh.shape[1]
    assert isinstance(df, pd.DataFrame)
