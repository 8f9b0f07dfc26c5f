"""The one-pass start (propalign_lite._column_start): the plain start's potentials, a valid
certificate for its candidates, and the same plan."""
import numpy as np
import pytest

import propalign_lite._column_start as CS
import propalign_lite._truncated as T
from propalign_lite._blocked import BlockedCost
from propalign_lite.matchers import euclidean_cost
from propalign_lite.sinkhorn import sinkhorn, sinkhorn_online

REG, LEVEL, DEEPER = 0.05, -30.0, 10.0


def _problem(n=300, d=3, seed=0, outliers=0):
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.normal(size=(n, d))
    x, y = z + 0.5 * rng.normal(size=z.shape), z + 0.5 * rng.normal(size=z.shape)
    x[:outliers] += 40.0                 # rows far from every column
    return x, y, np.full(n, 1.0 / n)


def _plain_start(x, y, a):
    cost = BlockedCost(x, y)
    beta = np.log(a) - cost.lse(np.zeros(len(x)), np.zeros(len(y)), REG, axis=0)
    alpha = np.log(a) - cost.lse(np.zeros(len(x)), beta, REG, axis=1)
    return alpha, beta


def _check(x, y, a):
    alpha, beta, cand = CS.column_pass_start(BlockedCost(x, y), a, a, REG, LEVEL, DEEPER)
    alpha0, beta0 = _plain_start(x, y, a)
    # the start's log-sum-exps leave out less than e^-5 of each sum
    assert np.abs(beta - beta0).max() < np.exp(-5) and np.abs(alpha - alpha0).max() < np.exp(-5)
    # the certificate: every pair outside the candidates is below level - depth at (0, beta)
    logp = beta[None, :] - euclidean_cost(x, y) / REG
    inside = np.zeros(logp.shape, bool)
    inside[cand.rows, cand.cols] = True
    assert cand.depth == DEEPER and logp[~inside].max() < LEVEL - cand.depth
    np.testing.assert_allclose(cand.logp0, logp[cand.rows, cand.cols], rtol=0, atol=1e-9)
    assert np.all(np.diff(cand.rows * len(y) + cand.cols) > 0)          # sorted, no repeats
    assert (np.bincount(cand.rows, minlength=len(x)) > 0).all()
    assert (np.bincount(cand.cols, minlength=len(y)) > 0).all()
    return alpha, beta, cand


def test_the_start_is_the_plain_one_and_its_candidates_are_certified():
    _check(*_problem())


def test_rows_far_from_every_column_get_their_own_exact_sums(monkeypatch):
    calls = []
    real = CS.lse_rows
    monkeypatch.setattr(CS, "lse_rows", lambda pts, *a: calls.append(len(pts)) or real(pts, *a))
    _check(*_problem(outliers=3))
    assert calls == [3]                  # the three far rows, and no column


def test_columns_whose_near_row_is_poor_widen_the_window_and_stay_exact(monkeypatch):
    # a k-d tree that returns the farthest row for five columns: their windows start far
    # below their largest terms, so they collect more pairs, and the result stays exact
    x, y, a = _problem()
    real = CS.cKDTree

    class PoorTree:
        def __init__(self, pts):
            self.tree, self.pts = real(pts), pts

        def query(self, q, **kw):
            d, near = self.tree.query(q, **kw)
            near = near.copy()
            near[:5] = np.argmax(((q[:5, None] - self.pts[None]) ** 2).sum(-1), axis=1)
            return d, near
    _, _, good = _check(x, y, a)
    monkeypatch.setattr(CS, "cKDTree", PoorTree)
    _, _, poor = _check(x, y, a)
    assert np.bincount(poor.cols)[:5].sum() > 2 * np.bincount(good.cols)[:5].sum()


def test_a_level_too_shallow_for_the_start_sums_columns_and_rows_exactly(monkeypatch):
    x, y, a = _problem()
    calls = []
    real = CS.lse_rows
    monkeypatch.setattr(CS, "lse_rows", lambda pts, *r: calls.append(len(pts)) or real(pts, *r))
    alpha, beta, cand = CS.column_pass_start(BlockedCost(x, y), a, a, REG, -8.0, 1.0)
    alpha0, beta0 = _plain_start(x, y, a)
    assert calls[0] > 0.9 * len(y)       # (almost) every column: its window is too narrow
    assert np.abs(beta - beta0).max() < np.exp(-5) and np.abs(alpha - alpha0).max() < np.exp(-5)


def test_too_many_deep_pairs_leave_the_candidates_to_the_solver():
    x, y, a = _problem()
    alpha, beta, cand = CS.column_pass_start(BlockedCost(x, y), a, a, REG, LEVEL, 400.0)
    alpha0, beta0 = _plain_start(x, y, a)
    assert cand is None and np.abs(beta - beta0).max() < np.exp(-5)


@pytest.mark.parametrize("outliers", [0, 3])
def test_the_plan_is_the_one_of_the_plain_start_and_of_the_dense_solver(monkeypatch, outliers):
    x, y, a = _problem(n=400, d=12, outliers=outliers)
    res = sinkhorn_online(x, y, REG, tol=1e-9, support="blocked")
    monkeypatch.setattr(T, "column_pass_start", lambda *args, **kw: None)
    plain = sinkhorn_online(x, y, REG, tol=1e-9, support="blocked")
    dense = sinkhorn(euclidean_cost(x, y), REG, tol=1e-9)      # checked against POT elsewhere
    for r in (res, plain):
        assert r.converged
        plan = np.exp(r.alpha[:, None] + r.beta[None, :] - euclidean_cost(x, y) / REG)
        np.testing.assert_allclose(plan, dense.plan, rtol=0, atol=1e-9)
    assert "passes" not in res.timings and "passes" in plain.timings


def test_above_the_trees_dimension_the_near_rows_come_from_a_compiled_pass(monkeypatch):
    x, y, a = _problem(n=200, d=20)

    def no_tree(*args):
        raise AssertionError("k-d trees do not prune in 20 dimensions")
    monkeypatch.setattr(CS, "cKDTree", no_tree)
    _check(x, y, a)
