"""Scale: sparse features train the classifiers without being densified whole; groups are matched
on threads or a Dask cluster with the same couplings."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from propalign_lite import PropensityClassifier, align


def _counts(n, d, seed, shift=3.0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    lam = np.exp(0.3 * rng.normal(size=(n, d)) + shift * np.eye(3, d)[t] - 1.0)
    x = rng.poisson(lam).astype(np.float32)
    return sparse.csr_matrix(x), t


def test_sparse_and_dense_inputs_train_the_same_classifier():
    x, t = _counts(240, 12, 0)
    kw = dict(width=16, epochs=3, lr=1e-2, batch_size=32, random_state=0, standardize=True)
    a = PropensityClassifier("mlp", **kw).fit(x[:180], t[:180], x_val=x[180:], t_val=t[180:])
    b = PropensityClassifier("mlp", **kw).fit(x[:180].toarray(), t[:180],
                                              x_val=x[180:].toarray(), t_val=t[180:])
    assert np.array_equal(a.logits(x), b.logits(x.toarray()))
    assert a.history_["val_loss"] == b.history_["val_loss"]


def test_align_keeps_a_sparse_X_sparse_and_gives_the_dense_result(monkeypatch):
    x1, t1 = _counts(300, 10, 1)
    x2, t2 = _counts(260, 8, 2)
    obs = lambda t, p: pd.DataFrame({"kind": pd.Categorical(np.array(list("abc"))[t])},  # noqa: E731
                                    index=[f"{p}{i}" for i in range(len(t))])
    seen = []
    fit = PropensityClassifier.fit

    def spy(self, x, t, **kw):
        seen.append(sparse.issparse(x))
        return fit(self, x, t, **kw)

    monkeypatch.setattr(PropensityClassifier, "fit", spy)
    cls = dict(width=16, epochs=3, lr=1e-2)
    s1, s2 = ad.AnnData(x1, obs=obs(t1, "r")), ad.AnnData(x2, obs=obs(t2, "p"))
    d1, d2 = ad.AnnData(x1.toarray(), obs=obs(t1, "r")), ad.AnnData(x2.toarray(), obs=obs(t2, "p"))
    a_sparse = align(s1, s2, groupby="kind", classifier=cls, random_state=0)
    assert seen == [True, True]
    a_dense = align(d1, d2, groupby="kind", classifier=cls, random_state=0)
    assert np.array_equal(s1.obsm["propalign_logits"], d1.obsm["propalign_logits"])
    assert np.allclose(a_sparse.transfer("adata2"), a_dense.transfer("adata2"))
    assert set(a_sparse.timings_) == {"classifiers", "matching"}
    assert all(v > 0 for v in a_sparse.timings_.values())


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")])
def test_sparse_input_with_non_finite_values_is_refused(bad, match):
    x, t = _counts(40, 5, 3)
    x = x.tolil()
    x[0, 0] = bad
    with pytest.raises(ValueError, match=match):
        PropensityClassifier("mlp", epochs=1).fit(x.tocsr(), t)


def test_groups_matched_on_threads_or_dask_give_the_same_couplings():
    from propalign_lite import match_groups

    rng = np.random.default_rng(0)
    t = np.repeat(np.arange(5), 40)
    t2 = rng.permutation(t)                 # the groups sit at other rows in modality 2
    x, y = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    seq = match_groups(x, t, y, t2)
    par = match_groups(x, t, y, t2, n_jobs=3, progress=True)
    assert list(par) == list(seq) and all(np.array_equal(par[g], seq[g]) for g in seq)
    rnd = [match_groups(x, t, y, t2, method="random", random_state=4, n_jobs=n) for n in (1, 2)]
    assert all(np.array_equal(rnd[0][g], rnd[1][g]) for g in rnd[0])
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dist = match_groups(x, t, y, t2, client=client)
    assert list(dist) == list(seq) and all(np.allclose(dist[g], seq[g]) for g in seq)
    with pytest.raises(ValueError, match="n_jobs"):
        match_groups(x, t, y, t, n_jobs=0)
