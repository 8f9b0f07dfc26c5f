"""k-d tree support search (propalign_lite._tree_support) against exact dense references."""
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from propalign_lite._blocked import BlockedCost
from propalign_lite._tree_support import TreeCost, tree_pays
from propalign_lite.matchers import euclidean_cost
from propalign_lite.sinkhorn import sinkhorn, sinkhorn_online

REG = 0.05


def _problem(d, n1, n2, seed, duplicates=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n1, d))
    y = rng.normal(size=(n2, d))
    if duplicates:                     # repeated points and exact copies across the sides
        x[n1 // 2:] = x[: n1 - n1 // 2]
        y[: n2 // 3] = x[: n2 // 3]
    alpha = 2.0 * rng.normal(size=n1)
    beta = 2.0 * rng.normal(size=n2)
    return x, y, alpha, beta


def _exact_logp(cost, alpha, beta):
    """Dense float64 log-plan with the solvers' own exact distance arithmetic."""
    i, j = np.meshgrid(np.arange(cost.n1), np.arange(cost.n2), indexing="ij")
    C = cost.exact_cost(i.ravel(), j.ravel()).reshape(cost.n1, cost.n2)
    return alpha[:, None] + beta[None, :] - C / REG


CASES = [(1, 150, 90, False), (12, 120, 160, False), (3, 140, 140, True), (12, 80, 60, True)]


@pytest.mark.parametrize("d,n1,n2,dup", CASES)
def test_support_is_exactly_the_pairs_above_level(d, n1, n2, dup):
    x, y, alpha, beta = _problem(d, n1, n2, seed=d + n1, duplicates=dup)
    tree = TreeCost(x, y)
    L = _exact_logp(tree, alpha, beta)
    level = float(np.quantile(L, 0.97))          # some rows and columns end up empty
    want = L >= level
    lonely_r = np.flatnonzero(~want.any(1))
    lonely_c = np.flatnonzero(~want.any(0))
    assert lonely_r.size and lonely_c.size
    want[lonely_r, L[lonely_r].argmax(1)] = True
    want[L[:, lonely_c].argmax(0), lonely_c] = True
    rows, cols, logp = tree.support(alpha, beta, REG, level)
    wr, wc = np.nonzero(want)                       # row-major, as the tree returns them
    np.testing.assert_array_equal(rows, wr)
    np.testing.assert_array_equal(cols, wc)
    np.testing.assert_allclose(logp, L[wr, wc], rtol=0, atol=1e-12)
    # the blocked pass keeps the same pairs (plus some within its float32 margin below level)
    br, bc, blp = BlockedCost(x, y).support(alpha, beta, REG, level)
    common = np.isin(br * n2 + bc, rows * n2 + cols)
    assert common.sum() == rows.size
    assert (blp[~common] < level).all()
    np.testing.assert_allclose(blp[common], logp, rtol=0, atol=1e-12)


@pytest.mark.parametrize("d,n1,n2,dup", CASES)
def test_lse_equals_dense_logsumexp(d, n1, n2, dup):
    x, y, alpha, beta = _problem(d, n1, n2, seed=7 * d + n2, duplicates=dup)
    tree = TreeCost(x, y)
    L = _exact_logp(tree, alpha, beta)
    for axis in (0, 1):
        want = logsumexp(L, axis=axis)
        got = tree.lse(alpha, beta, REG, axis=axis)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-11)


def test_solve_matches_dense_sinkhorn_with_nonuniform_marginals():
    rng = np.random.default_rng(3)
    z = 3.0 * rng.normal(size=(360, 12))
    x = z[:300] + 0.5 * rng.normal(size=(300, 12))
    y = z[60:] + 0.5 * rng.normal(size=(300, 12))
    a = rng.uniform(0.5, 1.5, 300)
    b = rng.uniform(0.5, 1.5, 300)
    a, b = a / a.sum(), b / b.sum()
    C = euclidean_cost(x, y)
    dense = sinkhorn(C, REG, a=a, b=b, tol=1e-11)
    res = sinkhorn_online(x, y, REG, a=a, b=b, tol=1e-11, support="tree")
    assert res.support_search == "tree" and res.converged
    plan = np.exp(res.alpha[:, None] + res.beta[None, :] - C / REG)
    np.testing.assert_allclose(plan, dense.plan, rtol=0, atol=1e-9 / 300)


def test_solve_matches_pot_sinkhorn_log():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(120, 2)), rng.normal(size=(90, 2))
    a, b = np.full(120, 1 / 120), np.full(90, 1 / 90)
    pot = ot.sinkhorn(a, b, ot.dist(x, y, metric="euclidean"), 0.5, method="sinkhorn_log",
                      stopThr=1e-12, numItermax=10000)
    res = sinkhorn_online(x, y, 0.5, tol=1e-12, max_iter=10000, support="tree")
    plan = np.exp(res.alpha[:, None] + res.beta[None, :] - euclidean_cost(x, y) / 0.5)
    np.testing.assert_allclose(plan, pot, rtol=0, atol=1e-10)


@pytest.mark.parametrize("tol,max_iter", [(1e-3, 1000), (1e-12, 5)])
def test_reported_error_bounds_the_true_error(tol, max_iter):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(300, 3))
    x, y = z + 0.3 * rng.normal(size=z.shape), z + 0.3 * rng.normal(size=z.shape)
    kw = dict(tol=tol, max_iter=max_iter, support="tree", warn=False)
    res = sinkhorn_online(x, y, REG, **kw)
    true = sinkhorn_online(x, y, REG, verify=True, **kw)
    np.testing.assert_array_equal(res.alpha, true.alpha)
    plan = np.exp(res.alpha[:, None] + res.beta[None, :] - euclidean_cost(x, y) / REG)
    exact = np.linalg.norm(plan.sum(0) - 1 / 300)
    assert exact == pytest.approx(true.err, rel=1e-6)
    assert true.err <= res.err


def test_support_choice_and_fallback():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2))
    assert sinkhorn_online(x, y, support="auto").support_search == "blocked"
    assert not tree_pays(x, y, REG, 40.0)                 # too small to pay
    with pytest.raises(ValueError, match="support must be"):
        sinkhorn_online(x, y, support="kd")
    with pytest.raises(ValueError, match="CPU"):
        sinkhorn_online(x, y, support="tree", device="cuda")
    with warnings.catch_warnings(record=True) as caught:   # trees would exceed max_nnz
        warnings.simplefilter("always")
        res = sinkhorn_online(x, y, 5.0, support="tree", max_nnz=100, warn=False)
    assert res.support_search == "tree->blocked"
    assert any("candidate pairs" in str(w.message) for w in caught)
    ref = sinkhorn_online(x, y, 5.0, support="blocked", max_nnz=100, warn=False)
    np.testing.assert_array_equal(res.alpha, ref.alpha)
