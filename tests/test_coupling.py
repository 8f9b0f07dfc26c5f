"""ImplicitCoupling: every operation equals the one on the dense coupling."""
import numpy as np
import pytest
from scipy import sparse

from propalign_lite import block_coupling, match, match_groups, metrics
from propalign_lite import coupling as cp
from propalign_lite.coupling import ImplicitCoupling, as_dense, foscttm_blocked
from propalign_lite.trainer import CouplingSampler


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    z = 3.0 * rng.normal(size=(250, 5))
    x, y = z + 1.0 * rng.normal(size=z.shape), z + 1.0 * rng.normal(size=z.shape)
    M = match(x, y, online=True)
    D = match(x, y, online=False)
    return x, y, z, M, D


def test_match_switches_by_size(pair):
    x, y, _, M, D = pair
    assert isinstance(M, ImplicitCoupling) and isinstance(D, np.ndarray)
    assert isinstance(match(x, y, dense_max=100), ImplicitCoupling)
    assert isinstance(match(x, y), np.ndarray)                 # small: dense as before
    assert M.shape == D.shape == (250, 250) and M.ndim == 2
    assert M.result.converged and M.result.n_iter >= 1


def test_entries_rows_blocks_and_dense(pair):
    _, _, _, M, D = pair
    np.testing.assert_allclose(as_dense(M), D, atol=1e-9)
    np.testing.assert_allclose(np.asarray(M), D, atol=1e-9)
    np.testing.assert_allclose(M.row(7), D[7], atol=1e-9)
    r, c = [3, 0, 99], [5, 249, 1, 2]
    np.testing.assert_allclose(M.block(r, c), D[np.ix_(r, c)], atol=1e-9)
    np.testing.assert_allclose(M.diagonal(), np.diag(D), atol=1e-9)
    np.testing.assert_allclose(M.to_sparse().toarray(), D, atol=1e-9)
    np.testing.assert_allclose(M.to_sparse().sum(1), 1.0, atol=1e-12)
    assert M.to_sparse().nnz < 0.2 * D.size


def test_matmul_support_and_exact(pair):
    _, _, z, M, D = pair
    np.testing.assert_allclose(M @ z, D @ z, atol=1e-8)
    np.testing.assert_allclose(M.matmul(z, exact=True), D @ z, atol=1e-10)
    with pytest.raises(ValueError, match="rows"):
        M @ z[:10]


def test_metrics_accept_implicit(pair):
    x, y, z, M, D = pair
    assert metrics.trace(M) == pytest.approx(metrics.trace(D), abs=1e-10)
    assert metrics.latent_mse(M, z) == pytest.approx(metrics.latent_mse(D, z), rel=1e-8)
    for how in ("sample", "barycentric"):
        assert metrics.foscttm_coupling(M, y, how=how, random_state=3) == pytest.approx(
            metrics.foscttm_coupling(D, y, how=how, random_state=3), abs=1e-12)
    np.testing.assert_array_equal(metrics.sample_partners(M, random_state=5),
                                  metrics.sample_partners(D, random_state=5))
    t = np.zeros(250, dtype=int)
    ev_m = metrics.evaluate_couplings({0: M}, t, z=z, x2=y, random_state=0)
    ev_d = metrics.evaluate_couplings({0: D}, t, z=z, x2=y, random_state=0)
    for k in ("Trace", "MSE", "FOSCTTM", "FOSCTTM (barycentric)"):
        assert ev_m[k] == pytest.approx(ev_d[k], rel=1e-8, abs=1e-12)


def test_sampling_follows_the_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 2))
    M = match(x, x + 0.3 * rng.normal(size=x.shape), reg=0.5, online=True)
    D = as_dense(M)
    draws = np.stack([M.sample_partners(random_state=s) for s in range(4000)])
    freq = np.stack([np.bincount(draws[:, i], minlength=6) / 4000 for i in range(6)])
    np.testing.assert_allclose(freq, D, atol=0.03)


def test_topk(pair):
    _, _, _, M, D = pair
    idx, w = M.topk(3)
    ref = np.argsort(-D, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(w, np.take_along_axis(D, ref, 1), atol=1e-10)
    with pytest.raises(ValueError, match="k must"):
        M.topk(0)


def test_foscttm_blocked_equals_dense():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 4))
    b = a + 0.7 * rng.normal(size=a.shape)
    assert foscttm_blocked(a, b, block_size=1000) == pytest.approx(metrics.foscttm(a, b),
                                                                   abs=1e-12)


def test_trainer_and_block_coupling_accept_implicit(pair):
    x, y, _, M, D = pair
    s = CouplingSampler(M, n_targets=250, n_inputs=250)
    assert s.sample(random_state=0).shape == (250,)
    s2 = CouplingSampler([(np.arange(250), np.arange(250), M)])
    assert s2.shape == (250, 250)
    t = np.repeat([0, 1], 125)
    groups = match_groups(x, t, y, t, dense_max=100)
    assert all(isinstance(G, ImplicitCoupling) for G in groups.values())
    B = block_coupling(groups, t, t)
    assert sparse.issparse(B) and B.shape == (250, 250)
    np.testing.assert_allclose(np.asarray(B.sum(1)).ravel(), 1.0, atol=1e-12)


def test_dense_guard_and_as_dense_forms(pair, monkeypatch):
    _, _, _, M, D = pair
    monkeypatch.setattr(cp, "MAX_DENSE", 1000)
    with pytest.raises(MemoryError, match="too large"):
        M.to_dense()
    assert as_dense(sparse.csr_matrix(D)).shape == D.shape
    np.testing.assert_array_equal(as_dense(D), D)


def test_bad_inputs():
    with pytest.raises(ValueError, match="alpha and beta"):
        ImplicitCoupling(np.zeros((3, 2)), np.zeros((4, 2)), np.zeros(2), np.zeros(4), 0.05)
    with pytest.raises(ValueError, match="backend"):
        cp.BlockedCost(np.eye(3), np.eye(3), backend="jax")
    with pytest.raises(ValueError, match="CPU only"):
        cp.BlockedCost(np.eye(3), np.eye(3), backend="numpy", device="cuda")


def test_array_and_implicit_couplings_meet_one_protocol(pair):
    """The dense wrapper and the implicit coupling answer the protocol alike, and every
    sampler of the package draws the same partners for the same seed."""
    from propalign_lite._sampling import RowSampler
    from propalign_lite.coupling import ArrayCoupling, as_coupling, is_coupling
    from propalign_lite.trainer import CouplingSampler

    M = pair[3]
    D = as_dense(M)
    A = as_coupling(D)
    assert isinstance(A, ArrayCoupling) and is_coupling(A) and is_coupling(M)
    assert as_coupling(M) is M and as_coupling(A) is A
    S = as_coupling(sparse.csr_matrix(D))
    Z = np.arange(2.0 * D.shape[1]).reshape(-1, 2)
    for C in (A, S):
        assert C.shape == M.shape
        np.testing.assert_allclose(C @ Z, D @ Z)
        np.testing.assert_allclose(C.diagonal(), np.diag(D))
        np.testing.assert_allclose(C.column_block([0, 3]), D[:, [0, 3]])
        np.testing.assert_allclose(C.to_sparse().toarray(), D)
    np.testing.assert_allclose(M.diagonal(), np.diag(D), atol=1e-12)
    draws = [metrics.sample_partners(D, random_state=7), A.sample_partners(random_state=7),
             RowSampler(sparse.csr_matrix(D)).sample(7), CouplingSampler(D).sample(7)]
    for d in draws[1:]:
        np.testing.assert_array_equal(d, draws[0])


def test_as_coupling_refuses_what_is_not_a_coupling():
    from propalign_lite.coupling import as_coupling

    with pytest.raises(ValueError, match="rows of M must sum to 1"):
        as_coupling(np.ones((2, 2)))
    with pytest.raises(ValueError, match="negative"):
        as_coupling(sparse.csr_matrix(np.array([[1.5, -0.5], [0.0, 1.0]])))
    with pytest.raises(ValueError, match="must be square"):
        as_coupling(np.full((2, 3), 1 / 3), square=True)
    with pytest.raises(ValueError, match="must be an array"):
        as_coupling("M")
    assert as_coupling(np.ones((2, 2)), row_stochastic=False).shape == (2, 2)


def test_the_support_is_held_as_one_csr_built_without_copying_its_pairs(pair):
    """``@`` and sampling share one CSR built when the coupling is made: its columns are the
    support's own array, and an unsorted support gives the same matrix as a COO build."""
    x, y, _, M, _ = pair
    rows, cols, logp = M.result.support
    assert M.to_sparse() is M.to_sparse()
    assert np.shares_memory(M.to_sparse().indices, cols)
    perm = np.random.default_rng(1).permutation(len(rows))
    shuffled = ImplicitCoupling(x, y, M.alpha, M.beta, M.reg,
                                support=(rows[perm], cols[perm], logp[perm]))
    vals = np.exp(logp - M.log_row_sum[rows])
    coo = sparse.csr_matrix((vals, (rows, cols)), shape=M.shape)
    for C in (M, shuffled):
        S = C.to_sparse()
        assert S.has_sorted_indices and np.array_equal(S.indptr, coo.indptr)
        assert np.array_equal(S.indices, coo.indices) and np.allclose(S.data, coo.data)
        Z = np.random.default_rng(2).normal(size=(M.shape[1], 3))
        assert np.allclose(C @ Z, coo @ Z)
