"""A dense plan held whole in float32 (propalign_lite._held): the exact check decides."""
import numpy as np
import ot
import pytest

import propalign_lite._held as H
from propalign_lite._blocked import BlockedCost, euclidean_cost
from propalign_lite.coupling import ImplicitCoupling, as_dense
from propalign_lite.sinkhorn import sinkhorn_online


def _dense_problem(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x, y = 0.02 * rng.normal(size=(n, 3)), 0.02 * rng.normal(size=(n, 3))
    x[: n // 2, 0] += 0.1                 # two clusters of unequal mass: potentials must move
    y[: n // 5, 0] += 0.1
    return x, y, np.full(n, 1 / n)


def _exact_marginal_error(x, y, res, a):
    P = np.exp(res.alpha[:, None] + res.beta[None, :] - euclidean_cost(x, y) / res.reg)
    return max(np.linalg.norm(P.sum(0) - a), np.linalg.norm(P.sum(1) - a))


def test_a_float32_held_kernel_reports_the_exact_error_and_matches_pot(monkeypatch):
    """The iterations run on a float32 kernel, but the reported error is that of the float64
    plan (exact passes), below tol, and the plan is POT's to float32's resolution."""
    x, y, a = _dense_problem()
    seen = []
    real = H.iterate_held
    monkeypatch.setattr("propalign_lite._truncated.iterate_held",
                        lambda *args, **kw: seen.append(real(*args, **kw)) or seen[-1])
    res = sinkhorn_online(x, y, 0.05, tol=1e-6, support="blocked")
    assert len(seen) == 1 and seen[0].dtype == "float32"
    exact = _exact_marginal_error(x, y, res, a)
    assert res.converged and exact < 1e-6
    np.testing.assert_allclose(res.err, exact, rtol=1e-6)         # the exact error, reported
    G = ot.sinkhorn(a, a, euclidean_cost(x, y), 0.05, method="sinkhorn_log", stopThr=1e-12,
                    numItermax=20000)
    M = ImplicitCoupling.from_result(x, y, res)
    np.testing.assert_allclose(as_dense(M), G * len(x), atol=2e-4 * G.max() * len(x))


def test_float32_that_cannot_reach_tol_hands_over_to_float64(monkeypatch):
    """Past float32's floor the computed error stalls: after the exact checks fail, the
    kernel is computed again in float64 and the solve converges there."""
    x, y, a = _dense_problem(seed=1)
    monkeypatch.setattr(H, "F32_REACH", 0.0)               # let float32 try a 1e-12 target
    cost = BlockedCost(x, y, dtype=np.float64)
    checks = []
    real = H.exact_error
    monkeypatch.setattr(H, "exact_error", lambda *args: checks.append(real(*args)) or checks[-1])
    out = H.iterate_held(cost, np.zeros(len(x)), np.zeros(len(y)), a, a, 0.05, level=-60.0,
                         it=1, max_iter=5000, tol=1e-12)
    assert out.converged and out.err < 1e-12 and out.dtype == "float64"
    assert out.kernels == 2 and len(checks) >= H.CHECKS + 1
    assert all(c >= 1e-12 for c in checks[:H.CHECKS])    # float32 checks: not there


@pytest.mark.parametrize("tol,dtype", [(1e-6, "float32"), (1e-11, "float64")])
def test_float32_is_used_only_where_its_sums_can_reach_tol(tol, dtype):
    x, y, a = _dense_problem(seed=2)
    out = H.iterate_held(BlockedCost(x, y, dtype=np.float64), np.zeros(len(x)),
                         np.zeros(len(y)), a, a, 0.05, level=-60.0, it=1, max_iter=5000,
                         tol=tol)
    assert out.converged and out.err < tol and out.dtype == dtype and out.kernels == 1
