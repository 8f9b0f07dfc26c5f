"""How the truncated solver lays out what it holds (issue 22: 10^6 points a side in a few
GB): Newton steps that never form the plan or its Hessian, a kernel laid out directly in
CSR, candidates with int32 indices, a start sorted by a counting sort."""
import tracemalloc

import numpy as np
from scipy import sparse

from propalign_lite._fused import sort_pairs_by_row
from test_sinkhorn import _logits_like


def _random_support(n, per_row, seed):
    rng = np.random.default_rng(seed)
    rows = np.r_[np.arange(n), np.repeat(np.arange(n), per_row)]
    cols = np.r_[np.arange(n), rng.integers(0, n, n * per_row)]
    K = sparse.csr_matrix((np.exp(-rng.random(rows.size)), (rows, cols)), shape=(n, n))
    K.sum_duplicates()
    return K, rng


def test_the_conjugate_gradient_newton_step_forms_neither_the_plan_nor_the_hessian():
    """Above ``direct_max`` the step's products with the Hessian and its line search are
    products with the kernel: the step allocates vectors, not a copy of the support. At
    n = 10^6 the formed plan and Hessian (and their COO copies) took about 2.5 GB."""
    import propalign_lite._newton as N

    n = 3000
    K, rng = _random_support(n, 200, seed=0)
    KT = K.T.tocsr()
    u, v = np.exp(0.3 * rng.normal(size=n)) / n, np.exp(0.3 * rng.normal(size=n))
    a = np.full(n, 1.0 / n)
    kernel_bytes = K.data.nbytes + K.indices.nbytes
    N.newton_step(K, u, v, a, a, max_log_step=9.0, KT=KT, direct_max=0, cg_iter=2)  # compiled
    tracemalloc.start()
    try:
        step = N.newton_step(K, u, v, a, a, max_log_step=9.0, KT=KT, direct_max=0,
                             cg_rtol=1e-6, cg_iter=50)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert step is not None
    assert peak < 0.25 * kernel_bytes, (peak, kernel_bytes)
    # the same step as the one solved with the formed Hessian (sparse LU, tightly)
    by_lu = N.newton_step(K, u, v, a, a, max_log_step=9.0)
    by_cg = N.newton_step(K, u, v, a, a, max_log_step=9.0, KT=KT, direct_max=0,
                          cg_rtol=1e-13, cg_iter=10_000)
    for p, q in zip(by_lu, by_cg):
        np.testing.assert_allclose(q, p, rtol=1e-6)


def test_the_kernel_is_laid_out_in_csr_with_the_log_entries_in_its_order():
    """``csr_kernel`` builds K without COO copies; the log-entries it returns must follow
    ``K.data`` (the solver's returned support is read from K and them), for pairs given
    sorted (the candidates) or not."""
    from propalign_lite._truncated import csr_kernel

    rng = np.random.default_rng(2)
    n1, n2 = 50, 40
    flat = rng.choice(n1 * n2, 300, replace=False)
    rows, cols = flat // n2, flat % n2
    logp = rng.normal(size=flat.size)
    dense = np.zeros((n1, n2))
    dense[rows, cols] = np.exp(logp)
    for order in (np.argsort(flat), rng.permutation(flat.size)):
        K, lp = csr_kernel(rows[order].astype(np.int32), cols[order].astype(np.int32),
                           logp[order], n1, n2)
        np.testing.assert_array_equal(K.toarray(), dense)
        np.testing.assert_array_equal(np.exp(lp), K.data)
        assert K.indices.dtype == np.int32 and K.has_canonical_format
        r = np.repeat(np.arange(n1), np.diff(K.indptr))
        np.testing.assert_array_equal(dense[r, K.indices], np.exp(lp))


def test_the_candidates_hold_int32_indices_through_the_start_the_repairs_and_the_supports(
        monkeypatch):
    """At 10^6 the candidates are 60-80 million pairs: int32 rows and columns save 0.6 GB,
    and the repairs' merge (old and new candidates alive together) twice that."""
    import propalign_lite._kernel_support as KS
    from propalign_lite.sinkhorn import sinkhorn_online

    held, supports, merges = [], [], []
    hold, support, merge = KS.Candidates._hold, KS.Candidates.support, KS.merge_repaired

    def spy_hold(self, rows, cols, *args):
        hold(self, rows, cols, *args)
        held.append((self.rows.dtype, self.cols.dtype))

    def spy_support(self, *args):
        out = support(self, *args)
        supports.append((out[0].dtype, out[1].dtype))
        return out

    def spy_merge(*args):
        out = merge(*args)
        merges.append((out[0].dtype, out[1].dtype))
        return out

    monkeypatch.setattr(KS.Candidates, "_hold", spy_hold)
    monkeypatch.setattr(KS.Candidates, "support", spy_support)
    monkeypatch.setattr(KS, "merge_repaired", spy_merge)
    x, y = _logits_like(1500, seed=4, noise=1.5)
    res = sinkhorn_online(x, y, 0.05, tol=1e-8, max_iter=2000, support="blocked")
    assert res.converged and held and supports
    int32 = (np.dtype(np.int32),) * 2
    assert set(held) == {int32} and set(supports) == {int32} and set(merges) <= {int32}
    assert res.support[0].size == res.nnz


def test_the_start_sorts_its_pairs_by_row_with_a_stable_counting_sort():
    """The start's pass returns its pairs sorted by column; the candidates need them by
    row, then column. The counting sort must be stable (within a row, columns ascending)
    and carry the values along, in the indices' own type."""
    rng = np.random.default_rng(5)
    n1, n2 = 70, 90
    flat = np.sort(rng.choice(n1 * n2, 900, replace=False))     # by column, then row
    cols, rows = (flat // n1).astype(np.int32), (flat % n1).astype(np.int32)
    vals = rng.normal(size=flat.size)
    r, c, v = sort_pairs_by_row(rows, cols, vals, n1)
    order = np.lexsort((cols, rows))
    np.testing.assert_array_equal(r, rows[order])
    np.testing.assert_array_equal(c, cols[order])
    np.testing.assert_array_equal(v, vals[order])
    assert r.dtype == c.dtype == np.int32



def test_the_transposed_kernel_is_a_view_of_the_kernel_not_a_copy(monkeypatch):
    """K^T is used as a CSC view of K's arrays: at 10^6 a CSR copy took 0.55 GB and 3.9 s
    a support build, for products 14 % faster."""
    import propalign_lite._truncated as TR
    from propalign_lite.sinkhorn import sinkhorn_online

    seen, step = [], TR._newton_step

    def spy(K, *args, KT=None, **kw):
        seen.append(np.shares_memory(KT.data, K.data) and np.shares_memory(KT.indices,
                                                                            K.indices))
        return step(K, *args, KT=KT, **kw)

    monkeypatch.setattr(TR, "_newton_step", spy)
    x, y = _logits_like(300, seed=4, noise=1.5)
    assert sinkhorn_online(x, y, 0.05, tol=1e-9, max_iter=5000).converged
    assert seen and all(seen)


def test_the_returned_support_keeps_the_kernels_index_type_and_its_log_entries_are_exact():
    """The support the sparse solve returns is read from K's own arrays (int32 here, no
    int64 copies: at n = 10^6 those and the update's temporaries made the solve's peak);
    its log-entries must still be the plan's at the returned potentials."""
    from propalign_lite._blocked import euclidean_cost
    from propalign_lite.sinkhorn import sinkhorn_online

    x, y = _logits_like(1500, seed=3)
    res = sinkhorn_online(x, y, 0.05, tol=1e-8, support="blocked")
    rows, cols, logp = res.support
    assert res.converged and 0 < rows.size < 0.3 * len(x) * len(y)       # the sparse path
    assert rows.dtype == np.int32 and cols.dtype == np.int32
    C = euclidean_cost(x, y)
    exact = res.alpha[rows] + res.beta[cols] - C[rows, cols] / 0.05
    np.testing.assert_allclose(logp, exact, rtol=0, atol=1e-9)


def test_the_coupling_normalises_its_support_without_temporaries_as_long_as_it():
    """``ImplicitCoupling`` checks the order of its support and normalises its rows in
    compiled passes: its construction allocates the row-normalised values and vectors as
    long as the rows, not four more arrays as long as the support."""
    from propalign_lite.coupling import ImplicitCoupling

    rng = np.random.default_rng(4)
    n, per_row = 2000, 100
    rows = np.repeat(np.arange(n, dtype=np.int32), per_row)
    cols = np.sort(rng.permuted(np.tile(np.arange(n, dtype=np.int32), (n, 1)), axis=1)
                   [:, :per_row], axis=1).ravel()        # distinct columns, sorted in each row
    logp = -rng.random(rows.size) * 30 - 2 * np.log(n)
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    zero = np.zeros(n)
    ImplicitCoupling(x, y, zero, zero, 0.05, support=(rows[:10], cols[:10], logp[:10]))
    tracemalloc.start()
    try:
        M = ImplicitCoupling(x, y, zero, zero, 0.05, support=(rows, cols, logp))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * logp.nbytes, (peak, logp.nbytes)
    # the values: each row of the support, normalised to sum 1; the log row sums
    ref = sparse.csr_matrix((np.exp(logp), (rows, cols)), shape=(n, n))
    sums = np.asarray(ref.sum(1)).ravel()
    np.testing.assert_allclose(M.to_sparse().toarray(), (sparse.diags(1 / sums) @ ref).toarray(),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(M.log_row_sum, np.log(sums), rtol=1e-12)


def test_every_repair_merges_the_candidates_in_place(monkeypatch):
    """At 10^6 the solve's peak was at the end of every repair, where the merged candidates
    were written while the old ones were alive. The start's candidates are numpy's own
    arrays, and each repair grows them and merges in place: the same array objects before
    and after, round after round; the solve converges as before."""
    import propalign_lite._kernel_support as KS
    from propalign_lite.sinkhorn import sinkhorn_online

    merge, seen = KS.merge_repaired, []

    def spy(arrays, *args):
        before = [id(a) for a in arrays]
        out = merge(arrays, *args)
        seen.append([id(a) for a in out] == before)
        return out

    monkeypatch.setattr(KS, "merge_repaired", spy)
    x, y = _logits_like(1500, seed=4, noise=1.5)
    res = sinkhorn_online(x, y, 0.05, tol=1e-8, max_iter=2000, support="blocked")
    assert res.converged and len(seen) >= 3 and all(seen), seen
