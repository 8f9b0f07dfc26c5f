"""Tests of the baselines: SCOT (Gromov-Wasserstein), the cross-modal VAE and scGLUE."""
import sys
import warnings

import numpy as np
import pytest
import torch

from propalign_lite.baselines import (CrossModalVAE, SCOTConvergenceError, build_guidance_graph,
                                      default_k, fit_scglue, scot_graph_distances, scot_match,
                                      scot_match_groups, split_citeseq)
from propalign_lite.baselines.glue import import_scglue
from propalign_lite.baselines.scot import subsample_groups


# ============================================================================================
# SCOT
def _permuted_copy(n=40, d=10, seed=0):
    """x and a copy with shuffled rows *and* features: every within-modality distance kept."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    rows, cols = rng.permutation(n), rng.permutation(d)
    partner = np.argsort(rows)          # x[i] is x2[partner[i]]
    return x, x[rows][:, cols], partner


def test_scot_recovers_isometric_copy():
    x, x2, partner = _permuted_copy()
    M, log = scot_match(x, x2, return_log=True)
    assert M.shape == (40, 40)
    np.testing.assert_allclose(M.sum(axis=1), 1)
    assert (M >= 0).all()
    assert M[np.arange(40), partner].mean() > 0.9          # "trace" under the true pairing
    assert (M.argmax(axis=1) == partner).all()
    assert log["epsilon"] == 0.01 and log["tried"] == [0.01] and log["k"] == default_k(40)
    # the graph distances are identical for the two copies (correlation ignores feature order)
    np.testing.assert_allclose(scot_graph_distances(x, 8)[np.ix_(np.argsort(partner),
                                                                 np.argsort(partner))],
                               scot_graph_distances(x2, 8), atol=1e-12)


def test_scot_torch_backend_gives_the_same_plan():
    x, x2, _ = _permuted_copy(n=30)
    np.testing.assert_allclose(scot_match(x, x2, device="cpu"), scot_match(x, x2), atol=1e-10)


def test_scot_large_epsilon_blurs_towards_uniform():
    x, x2, partner = _permuted_copy()
    M = scot_match(x, x2, epsilon=0.05, max_epsilon=0.05)
    assert M[np.arange(40), partner].mean() < 0.2


def test_scot_different_dimensions_and_sizes():
    rng = np.random.default_rng(1)
    M = scot_match(rng.normal(size=(30, 5)), rng.normal(size=(45, 12)), k=6)
    assert M.shape == (30, 45)
    np.testing.assert_allclose(M.sum(axis=1), 1)


def test_scot_epsilon_schedule_and_failure():
    x, x2, partner = _permuted_copy()
    M, log = scot_match(x, x2, epsilon=1e-4, return_log=True)   # underflows, then retried
    assert log["tried"][0] == 1e-4 and len(log["tried"]) >= 2
    assert log["epsilon"] == pytest.approx(1e-4 + 0.01)
    assert np.isfinite(M).all()
    with pytest.raises(SCOTConvergenceError, match="no usable plan"):
        scot_match(x, x2, epsilon=1e-4, max_epsilon=1e-4)


def test_scot_bad_inputs():
    x, x2, _ = _permuted_copy()
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        scot_match(bad, x2)
    # 8 samples -> default k = 1 -> the graph has no edges
    with pytest.raises(ValueError, match="isolated"):
        scot_match(x[:8], x2[:8])
    with pytest.raises(ValueError, match="at least 2"):
        scot_match(x[:1], x2)
    with pytest.raises(ValueError, match="more than"):
        scot_match(x[:12], x2[:12], k=20)
    flat = x.copy()
    flat[0] = 1.0
    with pytest.raises(ValueError, match="constant"):
        scot_match(flat, x2)
    with pytest.raises(ValueError, match="epsilon"):
        scot_match(x, x2, epsilon=-1)
    with pytest.raises(ValueError, match="mode"):
        scot_match(x, x2, mode="nope")
    with pytest.raises(ValueError, match="2-dimensional"):
        scot_match(x[0], x2)


def test_scot_match_groups():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6))
    t = np.repeat(["a", "b"], 25)
    out = scot_match_groups(x, t, x[:, ::-1], t)
    assert sorted(out) == ["a", "b"]
    for M in out.values():
        assert M.shape == (25, 25)
        assert np.trace(M) / 25 > 0.9       # within each group: an isometric copy
    # a group present in one modality only
    t2 = t.copy()
    t2[25:30] = "c"
    with pytest.raises(ValueError, match="'c' is present in modality 2 only"):
        scot_match_groups(x, t, x, t2)
    with pytest.warns(UserWarning, match="present in modality 2 only"):
        out = scot_match_groups(x, t, x, t2, on_missing="skip", max_iter=50)
    assert sorted(out) == ["a", "b"] and out["b"].shape == (25, 20)
    # a group too small for SCOT's default k (5 samples -> k = 1)
    t3 = np.r_[np.repeat("a", 45), np.repeat("b", 5)]
    with pytest.raises(ValueError, match="group 'b'"):
        scot_match_groups(x, t3, x, t3)
    with pytest.warns(UserWarning, match="skipped 1 group"):
        out = scot_match_groups(x, t3, x, t3, on_failure="skip")
    assert list(out) == ["a"]
    with pytest.raises(ValueError, match="t2 has 49 entries"):
        scot_match_groups(x, t, x, t[:-1])
    with pytest.raises(ValueError, match="on_failure"):
        scot_match_groups(x, t, x, t, on_failure="ignore")


def test_subsample_groups():
    t = np.repeat([2, 0, 1], [50, 7, 20])
    idx = subsample_groups(t, 10, random_state=0)
    assert np.all(np.diff(idx) > 0)                       # sorted, no duplicates
    groups, counts = np.unique(t[idx], return_counts=True)
    assert groups.tolist() == [0, 1, 2] and counts.tolist() == [7, 10, 10]
    assert set(np.flatnonzero(t == 0)) <= set(idx)          # small groups kept whole
    np.testing.assert_array_equal(idx, subsample_groups(t, 10, random_state=0))
    assert not np.array_equal(idx, subsample_groups(t, 10, random_state=1))
    np.testing.assert_array_equal(subsample_groups(t, None), np.arange(len(t)))
    np.testing.assert_array_equal(subsample_groups(t, 100), np.arange(len(t)))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="max_per_group"):
            subsample_groups(t, bad)
    with pytest.raises(ValueError, match="empty"):
        subsample_groups([], 3)
    with pytest.raises(ValueError, match="1-dimensional"):
        subsample_groups(t.reshape(-1, 1), 3)


# ============================================================================================
# VAE
def _toy(n=240, seed=0, n_classes=3):
    """Two unpaired views of three well-separated treatment groups."""
    rng = np.random.default_rng(seed)
    w1 = np.random.default_rng(100).normal(size=(n_classes, 10)) * 2
    w2 = np.random.default_rng(200).normal(size=(n_classes, 7)) * 2
    t1, t2 = rng.integers(0, n_classes, n), rng.integers(0, n_classes, n)
    x1 = np.eye(n_classes)[t1] @ w1 + 0.3 * rng.normal(size=(n, 10))
    x2 = np.eye(n_classes)[t2] @ w2 + 0.3 * rng.normal(size=(n, 7))
    return x1, t1, x2, t2


SMALL = dict(latent_dim=6, width=32, batch_size=64, lr=3e-3)


def test_vae_learns_toy_and_latent_separates_treatments():
    x1, t1, x2, t2 = _toy()
    v1, vt1, v2, vt2 = _toy(90, seed=1)
    vae = CrossModalVAE("mlp", epochs=12, random_state=0, **SMALL)
    vae.fit(x1, t1, x2[:200], t2[:200], x1_val=v1, t1_val=vt1, x2_val=v2, t2_val=vt2)
    h = vae.history_
    assert h["epoch"] == list(range(1, 13))
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["val_loss"][-1] < h["val_loss"][0]
    # in each modality the latent separates the treatments: validation samples are
    # classified by the nearest class centroid of the training latents
    for m, (x, t, v, vt) in enumerate([(x1, t1, v1, vt1), (x2[:200], t2[:200], v2, vt2)], 1):
        z, zv = vae.transform(x, m, sample=False), vae.transform(v, m, sample=False)
        centroids = np.stack([z[t == c].mean(0) for c in range(3)])
        pred = np.argmin(((zv[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        assert (pred == vt).mean() > 0.95


def test_vae_keeps_best_validation_epoch():
    x1, t1, x2, t2 = _toy(120)
    v1, vt1, v2, vt2 = _toy(60, seed=3)
    vae = CrossModalVAE("mlp", epochs=8, random_state=1, **SMALL)
    vae.fit(x1, t1, x2, t2, x1_val=v1, t1_val=vt1, x2_val=v2, t2_val=vt2)
    val = vae.history_["val_loss"]
    assert vae.best_epoch_ == int(np.argmin(val)) + 1
    assert vae.best_val_loss_ == min(val)
    # the restored weights reproduce the best validation loss (same validation noise)
    again = vae.evaluate(v1, vt1, v2, vt2, random_state=vae.val_seed_)
    assert again["loss"] == pytest.approx(min(val), rel=1e-5)
    # without validation data the last epoch is kept
    vae2 = CrossModalVAE("mlp", epochs=2, random_state=1, **SMALL).fit(x1, t1, x2, t2)
    assert vae2.best_epoch_ == 2 and vae2.best_val_loss_ is None
    assert "val_loss" not in vae2.history_


def test_vae_transform_same_int_seed_gives_independent_noise_per_modality():
    # regression: transform(x1, 1, random_state=s) and transform(x2, 2, random_state=s) used to
    # draw the same epsilon for row i of both modalities, leaking the pairing of paired data
    x1, t1, x2, t2 = _toy(100)
    vae = CrossModalVAE("mlp", epochs=2, random_state=0, **SMALL).fit(x1, t1, x2, t2)
    eps = []
    for m, x in ((1, x1), (2, x2)):
        mu = vae.transform(x, m, sample=False)
        eps.append(vae.transform(x, m, random_state=7) - mu)
    corr = np.corrcoef(eps[0].ravel(), eps[1].ravel())[0, 1]
    assert abs(corr) < 0.2, f"noise of the two modalities is correlated ({corr:.2f})"


def test_vae_transform_shapes_sampling_and_reproducibility():
    x1, t1, x2, t2 = _toy(100)
    vae = CrossModalVAE("mlp", epochs=2, random_state=0, **SMALL).fit(x1, t1, x2[:70], t2[:70])
    a = vae.transform(x1, 1)
    assert a.shape == (100, 6) and a.dtype == np.float32
    assert vae.transform(x2, modality=2, sample=False).shape == (100, 6)
    # sampled latents are random, the mean is not; random_state fixes the draw
    assert not np.allclose(vae.transform(x1, 1), vae.transform(x1, 1))
    np.testing.assert_array_equal(vae.transform(x1, 1, random_state=5),
                                  vae.transform(x1, 1, random_state=5))
    # batches of another size may differ in the last bit (BLAS kernels depend on the shape)
    np.testing.assert_allclose(vae.transform(x1, 1, sample=False),
                                  vae.transform(x1, 1, sample=False, batch_size=7), rtol=1e-5, atol=1e-6)
    assert vae.reconstruct(x2[:5], 2).shape == (5, 7)
    # same seed, same model
    vae_b = CrossModalVAE("mlp", epochs=2, random_state=0, **SMALL).fit(x1, t1, x2[:70], t2[:70])
    np.testing.assert_allclose(vae.history_["train_loss"], vae_b.history_["train_loss"])
    np.testing.assert_array_equal(vae.transform(x1, 1, sample=False),
                                  vae_b.transform(x1, 1, sample=False))


def test_vae_adversarial_alternates_encoder_and_discriminator(monkeypatch):
    x1, t1, x2, t2 = _toy(128)
    calls = []
    original = torch.optim.Adam.step

    def logged_step(self, *args, **kwargs):
        calls.append(id(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", logged_step)
    vae = CrossModalVAE("mlp", epochs=3, adversarial=True, random_state=0, **SMALL)
    vae.fit(x1, t1, x2, t2)
    monkeypatch.undo()
    h = vae.history_
    assert h["n_ae_steps"] == h["n_disc_steps"] == [2, 2, 2]
    assert len(h["train_disc_ce"]) == 3
    # two optimisers, stepping alternately: autoencoder, discriminator, autoencoder, ...
    assert len(set(calls)) == 2 and len(calls) == 12
    assert calls[0::2] == [calls[0]] * 6 and calls[1::2] == [calls[1]] * 6
    assert calls[0] != calls[1]


def test_vae_adversarial_keeps_modalities_mixed():
    x1, t1, x2, t2 = _toy(192)
    kw = dict(SMALL, epochs=20, beta=1.0, random_state=0)
    coop = CrossModalVAE("mlp", **kw).fit(x1, t1, x2, t2)
    adv = CrossModalVAE("mlp", adversarial=True, **kw).fit(x1, t1, x2, t2)
    # co-operative: the modality classifier learns to tell the modalities apart (chance is
    # log 2 = 0.69); adversarial: the encoders keep the discriminator uncertain
    assert coop.history_["train_modality_ce"][-1] < 0.25
    assert adv.history_["train_disc_ce"][-1] > 0.4


def test_cnn_vae_on_small_images():
    rng = np.random.default_rng(0)
    n = 16
    t = np.repeat([0, 1], n // 2)
    x1 = rng.uniform(size=(n, 3, 32, 32)).astype(np.float32)
    x2 = (rng.uniform(size=(n, 3, 32, 32)) * 255).astype(np.uint8)     # uint8: divided by 255
    vae = CrossModalVAE("cnn", latent_dim=8, width=16, channels=(4, 8, 8, 16, 16), epochs=2,
                        batch_size=8, lr=1e-3, random_state=0)
    vae.fit(x1, t, x2, t, x1_val=x1[:4], t1_val=t[:4], x2_val=x2[:4], t2_val=t[:4])
    assert vae.transform(x2, 2).shape == (n, 8)
    rec = vae.reconstruct(x1[:3], 1)
    assert rec.shape == (3, 3, 32, 32) and rec.min() >= 0 and rec.max() <= 1
    assert len(vae.history_["val_loss"]) == 2
    with pytest.raises(ValueError, match="image shape"):
        vae.transform(x1[:, :, :32, :32].repeat(2, axis=2).repeat(2, axis=3), 1)


def test_vae_bad_inputs():
    x1, t1, x2, t2 = _toy(40)
    with pytest.raises(ValueError, match="unknown kind"):
        CrossModalVAE("transformer")
    bad = x1.copy()
    bad[0, 0] = np.nan
    vae = CrossModalVAE("mlp", epochs=1, **SMALL)
    with pytest.raises(ValueError, match="NaN"):
        vae.fit(bad, t1, x2, t2)
    with pytest.raises(ValueError, match="t1 has 39 entries"):
        vae.fit(x1, t1[:-1], x2, t2)
    with pytest.raises(ValueError, match="all of x1_val"):
        vae.fit(x1, t1, x2, t2, x1_val=x1)
    with pytest.raises(ValueError, match="not seen in training"):
        vae.fit(x1, t1, x2, t2, x1_val=x1, t1_val=t1 + 10, x2_val=x2, t2_val=t2)
    with pytest.raises(ValueError, match="2-dimensional"):
        vae.fit(x1[:, :, None], t1, x2, t2)
    with pytest.raises(ValueError, match="batch_size"):
        CrossModalVAE("mlp", batch_size=1).fit(x1, t1, x2, t2)
    with pytest.raises(RuntimeError, match="not fitted"):
        vae.transform(x1, 1)
    vae.fit(x1, t1, x2, t2)
    with pytest.raises(ValueError, match="modality must be 1 or 2"):
        vae.transform(x1, 3)
    with pytest.raises(ValueError, match="10 features but modality 2"):
        vae.transform(x1, 2)
    images = np.random.default_rng(0).normal(size=(4, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CrossModalVAE("cnn", epochs=1).fit(images, [0, 1, 0, 1], images, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="multiple of 32"):
        CrossModalVAE("cnn", epochs=1).fit(np.zeros((4, 3, 20, 20)), [0, 1, 0, 1],
                                           np.zeros((4, 3, 20, 20)), [0, 1, 0, 1])


# ============================================================================================
# scGLUE
def test_guidance_graph():
    g = build_guidance_graph(["CD4", "CD8A", "ACTB"], ["CD4", "CD8", "CD19"],
                             protein_to_gene={"CD8": "CD8A"})
    assert g.number_of_nodes() == 6
    links = sorted(tuple(sorted(e)) for e in g.edges if e[0] != e[1])
    assert links == [("CD4_prot", "CD4_rna"), ("CD8A_rna", "CD8_prot")]
    assert all(g.has_edge(v, v) for v in g.nodes)
    assert all(d == {"weight": 1.0, "sign": 1} for _, _, d in g.edges(data=True))
    with pytest.raises(ValueError, match="not ADT features"):
        build_guidance_graph(["A"], ["B"], protein_to_gene={"X": "A"})


def _tiny_citeseq():
    from propalign_lite.datasets.citeseq import simulate_cite_seq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_cite_seq(200, n_cell_types=3, n_genes=120, n_proteins=20, batches=2,
                                 random_state=0)


def test_split_citeseq_checks_layout():
    adata = _tiny_citeseq()
    rna, adt = split_citeseq(adata)
    assert rna.n_vars + adt.n_vars == adata.n_vars and adt.n_vars == 20
    with pytest.raises(KeyError, match="feature_types"):
        split_citeseq(adata, feature_types_key="kind")
    with pytest.raises(KeyError, match="raw"):
        split_citeseq(adata, counts_layer="raw")
    with pytest.raises(ValueError, match="'Peaks'"):
        split_citeseq(adata, adt="Peaks")


def test_import_scglue_error_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "scglue", None)      # behaves as "not installed"
    with pytest.raises(ImportError, match="pip install scglue"):
        import_scglue()


def test_fit_scglue_end_to_end():
    pytest.importorskip("scglue", reason="optional package scglue not installed "
                                         "(pip install scglue==0.4.1 pynvml==11.5.3)")
    adata = _tiny_citeseq()
    with pytest.raises(ValueError, match="n_pcs >= latent_dim"):
        fit_scglue(adata, n_pcs=10, latent_dim=16)
    res = fit_scglue(adata, n_pcs=20, latent_dim=8, h_dim=32, max_epochs=3, random_state=0)
    assert res.rna.shape == (200, 8) and res.adt.shape == (200, 8)
    assert np.isfinite(res.rna).all() and np.isfinite(res.adt).all()
    assert list(res.obs.index) == list(adata.obs.index)
    assert "__scglue__" not in adata.uns              # the input is left alone
