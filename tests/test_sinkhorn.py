"""The Sinkhorn solver: POT's converged plan, online == dense, warnings, bad input."""
import warnings

import numpy as np
import ot
import pytest

from propalign_lite import match, match_groups
from propalign_lite.coupling import ImplicitCoupling, as_dense
from propalign_lite.matchers import euclidean_cost
from propalign_lite.sinkhorn import ConvergenceWarning, sinkhorn, sinkhorn_online


def _logits_like(n, d=12, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.normal(size=(n, d))
    return z + noise * rng.normal(size=(n, d)), z + noise * rng.normal(size=(n, d))


def _pot_converged(x, y, reg):
    n1, n2 = len(x), len(y)
    C = ot.dist(x, y, metric="euclidean")
    G, log = ot.sinkhorn(np.full(n1, 1 / n1), np.full(n2, 1 / n2), C, reg,
                         method="sinkhorn_log", numItermax=20000, stopThr=1e-12, log=True)
    assert log["err"][-1] < 1e-12            # the reference itself converged
    return G


@pytest.mark.parametrize("n1,n2,d,scale,reg", [(40, 70, 5, 3.0, 0.05), (50, 30, 3, 1.0, 0.2),
                                                (35, 35, 2, 0.5, 0.05)])
def test_converged_plan_equals_pot(n1, n2, d, scale, reg):
    rng = np.random.default_rng(n1 + n2)
    x, y = rng.normal(size=(n1, d)) * scale, rng.normal(size=(n2, d)) * scale
    G = _pot_converged(x, y, reg)
    res = sinkhorn(euclidean_cost(x, y), reg, tol=1e-12, max_iter=5000)
    assert res.converged and res.err < 1e-12
    np.testing.assert_allclose(res.plan, G, atol=1e-10)
    M = match(x, y, reg=reg, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(M, G / G.sum(1, keepdims=True), atol=1e-8)


def test_far_fewer_iterations_than_plain_sinkhorn():
    x, y = _logits_like(300, noise=1.0)
    C = euclidean_cost(x, y)
    res = sinkhorn(C, 0.05, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, log = ot.sinkhorn(np.full(300, 1 / 300), np.full(300, 1 / 300), C, 0.05,
                             numItermax=2000, stopThr=1e-10, log=True)
    assert res.converged and res.n_iter < 200
    assert log["err"][-1] > 1e-10          # POT's default iteration is still far away


def test_large_costs_stay_finite_and_meet_marginals():
    rng = np.random.default_rng(1)
    # costs ~ 100 with reg 0.05: exp(-C/reg) underflows everywhere without stabilisation
    x, y = rng.normal(size=(30, 3)) * 40, rng.normal(size=(30, 3)) * 40
    res = sinkhorn(euclidean_cost(x, y), 0.05, max_iter=5000)
    assert res.converged and np.isfinite(res.plan).all()
    np.testing.assert_allclose(res.plan.sum(0), 1 / 30, atol=1e-10)
    np.testing.assert_allclose(res.plan.sum(1), 1 / 30, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_online_equals_dense(backend):
    x, y = _logits_like(400, d=6, seed=2, noise=1.0)
    y = y[:350]
    dense = sinkhorn(euclidean_cost(x, y), 0.05, tol=1e-11)
    on = sinkhorn_online(x, y, 0.05, tol=1e-11, backend=backend, block_size=40000,
                         verify=True)
    assert on.converged and on.err < 1e-11 and on.nnz < 0.2 * 400 * 350
    M = ImplicitCoupling.from_result(x, y, on)
    np.testing.assert_allclose(as_dense(M), dense.plan / dense.plan.sum(1, keepdims=True),
                               atol=1e-9)


def test_lse_fallback_when_support_too_large():
    x, y = _logits_like(120, d=3, seed=3)
    dense = sinkhorn(euclidean_cost(x, y), 3.0, tol=1e-10)
    with pytest.warns(RuntimeWarning, match="max_nnz"):
        on = sinkhorn_online(x, y, 3.0, tol=1e-10, max_nnz=10, max_iter=2000)
    assert on.converged and on.support is None
    M = ImplicitCoupling.from_result(x, y, on)
    np.testing.assert_allclose(as_dense(M), dense.plan * 120, atol=1e-8)


def test_a_support_above_max_nnz_is_refused_before_its_pairs_are_gathered(monkeypatch):
    """A dense plan (reg 0.2 on the 12-d benchmark at n = 10^5 keeps about 10 % of the pairs,
    10^9) once gathered every pair in the start's pass and the support pass before the
    max_nnz check, and ran past 19 GB: no pass may gather more than max_nnz pairs now, and
    the solve falls back to passes that hold none, with the same plan."""
    import propalign_lite._support_pass as SP

    x, y = _logits_like(300, d=3, seed=3)
    ref = sinkhorn_online(x, y, 3.0, tol=1e-10, max_iter=2000)
    assert ref.nnz > 0.3 * 300 ** 2                  # dense: without max_nnz, held whole
    stored, rows_with_room = SP._stored, SP._rows_with_room
    gathered = []

    def count_stored(counts, *args, **kw):
        out = stored(counts, *args, **kw)
        gathered.append(out[0].size)
        return out

    def count_room(*args, **kw):
        out = rows_with_room(*args, **kw)
        gathered.append(out[0].size)
        return out

    monkeypatch.setattr(SP, "_stored", count_stored)
    monkeypatch.setattr(SP, "_rows_with_room", count_room)
    with pytest.warns(RuntimeWarning, match=r"max_nnz.* the first took [0-9.]+ s, and the "
                                            r"\d+ that max_iter allows may take up to"):
        res = sinkhorn_online(x, y, 3.0, tol=1e-10, max_iter=2000, max_nnz=5000)
    assert max(gathered, default=0) <= 5000, gathered
    assert res.converged and res.support is None and "fallback" in res.timings
    P, Q = ImplicitCoupling.from_result(x, y, ref), ImplicitCoupling.from_result(x, y, res)
    np.testing.assert_allclose(as_dense(P), as_dense(Q), atol=1e-8)


def test_unconverged_warns_once_and_reports():
    x, y = _logits_like(200, seed=4, noise=2.0)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = sinkhorn(euclidean_cost(x, y), 0.05, max_iter=3, tol=1e-14)
    assert not res.converged and res.n_iter == 3 and res.err > 1e-14
    t = np.repeat([0, 1, 2], [70, 70, 60])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        match_groups(x, t, y, t, max_iter=2, tol=1e-14)
    conv = [w for w in rec if issubclass(w.category, ConvergenceWarning)]
    assert len(conv) == 1 and "3 group(s)" in str(conv[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        match_groups(x, t, y, t, max_iter=2, tol=1e-14, warn=False)
        M, info = match(x[:60], y[:60], return_result=True)   # the defaults converge here
    assert info.converged and info.n_iter < 1000


@pytest.mark.parametrize("kw,msg", [({"max_iter": 0}, "max_iter"), ({"max_iter": -5}, "max_iter"),
                                    ({"reg": 0.0}, "reg"), ({"tol": 0}, "tol"),
                                    ({"omega": 2.5}, "omega"), ({"omega": "auto"}, "omega"),
                                    ({"omega": True}, "omega")])
def test_bad_parameters(kw, msg):
    x, y = _logits_like(20)
    with pytest.raises(ValueError, match=msg):
        sinkhorn(euclidean_cost(x, y), **{"reg": 0.05, **kw})
    if "omega" not in kw:
        with pytest.raises(ValueError, match=msg):
            match(x, y, **kw)


def test_overrelaxation_option_converges_to_same_plan():
    x, y = _logits_like(150, seed=5, noise=1.5)
    C = euclidean_cost(x, y)
    ref = sinkhorn(C, 0.05, tol=1e-11)
    sor = sinkhorn(C, 0.05, tol=1e-11, omega=1.5)
    assert sor.converged
    np.testing.assert_allclose(sor.plan, ref.plan, atol=1e-10)


@pytest.mark.parametrize("online", [False, True])
def test_costs_beyond_float64_resolution_are_refused_clearly(online):
    """Embeddings of magnitude 1e50 made the scalings overflow (FloatingPointError); the
    solver now refuses them up front with a ValueError that says what to do."""
    rng = np.random.default_rng(0)
    x, y = 1e50 * rng.normal(size=(6, 3)), 1e50 * rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="rescale the embeddings"):
        if online:
            sinkhorn_online(x, y, 0.05)
        else:
            sinkhorn(euclidean_cost(x, y), 0.05)
    # large but resolvable magnitudes (cost / reg ~ 1e13) still give a finite plan (which
    # may need more than max_iter iterations: then it warns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        M = sinkhorn(euclidean_cost(x * 1e-38, y * 1e-38), 0.05).plan
    assert np.isfinite(M).all()


def test_inexact_newton_for_large_groups_reaches_the_same_plan(monkeypatch):
    """Above ``direct_max`` unknowns the Newton step uses conjugate gradients instead of
    sparse LU (whose fill-in took minutes and gigabytes at n = 100,000); forcing that path on
    a small group must give the same converged plan."""
    import propalign_lite._truncated as S

    x, y = _logits_like(300, seed=4, noise=1.5)      # needs Newton steps (40 iterations)
    ref = sinkhorn_online(x, y, 0.05, tol=1e-9, max_iter=5000)
    exact_step, calls = S._newton_step, []

    def cg_only(*args, **kw):
        calls.append(1)
        return exact_step(*args, **dict(kw, direct_max=0))

    monkeypatch.setattr(S, "_newton_step", cg_only)
    res = sinkhorn_online(x, y, 0.05, tol=1e-9, max_iter=5000)
    assert calls and res.converged
    P, Q = ImplicitCoupling.from_result(x, y, ref), ImplicitCoupling.from_result(x, y, res)
    np.testing.assert_allclose(as_dense(P), as_dense(Q), atol=1e-5)   # row-normalised


def test_candidates_keep_the_deepest_band_that_fits_when_the_whole_depth_is_too_large(
        monkeypatch):
    """When the pairs down to the candidates' depth are too many a row (at n = 300,000 on
    the 12-d benchmark, every build then passed over all pairs: 7 builds; later the start's
    candidates were dropped and one more pass made), the pass keeps the deepest of its bands
    that fits, so the candidates are kept and spare the passes."""
    import propalign_lite._blocked as BL
    import propalign_lite._column_start as CS

    x, y = _logits_like(1500, seed=4, noise=1.5)
    ref = sinkhorn_online(x, y, 0.05, tol=1e-9, max_iter=1000)
    support_rows, kept = BL.support_rows, []

    def small_buffer(*args, **kw):          # the solver's builds only (rescans set their own)
        if "max_per_row" not in kw:
            kw["max_per_row"] = 16.0
            out = support_rows(*args, **kw)
            kept.append((kw["deeper"], out[2]))
            return out
        return support_rows(*args, **kw)

    monkeypatch.setattr(BL, "support_rows", small_buffer)
    monkeypatch.setattr(CS, "support_rows", small_buffer)      # the start's pass is a build
    res = sinkhorn_online(x, y, 0.05, tol=1e-6, max_iter=1000)
    B = np.log(1e4)
    assert kept[0][0] == 3 * B and 0 < kept[0][1] < 3 * B    # the start's: a narrower band
    assert all(depth > 0 for _, depth in kept)
    # 5 passes; 6 when a too-large set fell back to depth 0 and the next build went half as
    # deep (depths 0, 0, then 0.75 B), and 17 builds, all at 3B, before that
    assert res.converged and len(kept) <= 5
    P, Q = ImplicitCoupling.from_result(x, y, ref), ImplicitCoupling.from_result(x, y, res)
    np.testing.assert_allclose(as_dense(P), as_dense(Q), atol=2e-3)   # rows sum to 1 (tol 1e-6)


def test_a_rebuild_holds_neither_the_old_candidates_nor_the_old_kernels(monkeypatch):
    """A pass over all pairs needs memory of its own: at 10^6 the run peaked at 10.8 GB
    while the old candidates, support and sparse kernels (about 4 GB) were still held
    during it. When a new pass starts, none of them may be alive."""
    import gc
    import weakref

    from scipy import sparse

    import propalign_lite._truncated as TR

    x, y = _logits_like(800, seed=5, noise=1.5)
    made, seen = [], []
    real = TR.Candidates.__init__

    def watched(self, cost, *args, **kw):
        gc.collect()
        seen.append((sum(c() is not None for c in made),
                     sum(isinstance(o, sparse.csr_matrix) and o.shape == (800, 800)
                         for o in gc.get_objects())))
        real(self, cost, *args, **kw)
        made.append(weakref.ref(self))

    monkeypatch.setattr(TR.Candidates, "__init__", watched)
    # force rebuilds: candidates with no depth (every rebuild is a pass)
    monkeypatch.setattr(TR.Candidates, "repair", lambda *a, **k: False)
    res = sinkhorn_online(x, y, 0.05, tol=1e-8, max_iter=1000, support="blocked")
    assert res.converged and len(seen) >= 2
    assert seen == [(0, 0)] * len(seen)


def test_the_conjugate_gradient_newton_step_solves_the_same_system_as_lu():
    """Above ``direct_max`` the step is solved by Jacobi-preconditioned CG (without the
    last potential, which is held fixed). Solved tightly, its step must be LU's."""
    import propalign_lite._newton as N
    from scipy import sparse

    rng = np.random.default_rng(3)
    n1, n2 = 40, 30
    rows = np.r_[np.arange(n1), rng.integers(0, n1, 150)]
    cols = np.r_[np.arange(n1) % n2, rng.integers(0, n2, 150)]
    K = sparse.csr_matrix((np.exp(-rng.random(rows.size)), (rows, cols)), shape=(n1, n2))
    u, v = np.exp(rng.normal(size=n1)), np.exp(rng.normal(size=n2))
    a, b = np.full(n1, 1 / n1), np.full(n2, 1 / n2)
    lu = N.newton_step(K, u, v, a, b, max_log_step=50.0)
    by_cg = N.newton_step(K, u, v, a, b, max_log_step=50.0, direct_max=0, cg_rtol=1e-13,
                          cg_iter=10_000)
    for p, q in zip(lu, by_cg):
        np.testing.assert_allclose(q, p, rtol=1e-6)


def test_newton_step_takes_conjugate_gradients_above_30000_unknowns(monkeypatch):
    """Sparse LU's fill-in on the support's giant component grows fast: at n = 30,000 a
    step took 4-5 s by LU against 0.4 s by CG (same iteration count), so a support of
    2 x 16,000 unknowns must not reach ``spsolve``."""
    import propalign_lite._newton as N
    from scipy import sparse

    rng = np.random.default_rng(0)
    n = 16_000
    rows = np.r_[np.arange(n), rng.integers(0, n, 2 * n)]
    cols = np.r_[np.arange(n), rng.integers(0, n, 2 * n)]
    K = sparse.csr_matrix((np.exp(-rng.random(rows.size)), (rows, cols)), shape=(n, n))
    a = np.full(n, 1.0 / n)

    def no_lu(*args, **kw):
        raise AssertionError("sparse LU called on 32,000 unknowns")

    monkeypatch.setattr(N, "spsolve", no_lu)
    u, v = N.newton_step(K, np.full(n, 1e-2), np.full(n, 1e-2), a, a, max_log_step=9.0)
    assert np.isfinite(u).all() and np.isfinite(v).all()


def test_omega_none_is_plain_scaling():
    """The default does no over-relaxation (the docs once claimed an automatic omega): the
    result is the one of omega = 1 exactly, and another omega changes the iterates."""
    from propalign_lite.matchers import euclidean_cost
    from propalign_lite.sinkhorn import sinkhorn

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(50, 3))
    C = euclidean_cost(x, y)
    plain, one = sinkhorn(C, 0.5), sinkhorn(C, 0.5, omega=1.0)
    assert plain.n_iter == one.n_iter and np.array_equal(plain.plan, one.plan)
    fast = sinkhorn(C, 0.5, omega=1.5)
    assert fast.n_iter != plain.n_iter


def test_a_dense_plan_is_held_whole_and_absorbs_its_scalings_without_new_passes():
    """A plan with almost every pair above the level (a real-logit group at a large reg) is
    computed once in full and absorbs its scalings in place. It once took a new pass over all
    pairs at every absorption, with its support sorted and recomputed each time: minutes for
    one 11,504-cell group of the atlas benchmark."""
    rng = np.random.default_rng(0)
    x, y = 0.5 * rng.normal(size=(200, 4)), 0.5 * rng.normal(size=(200, 4))
    x[:180, 0] += 2.0                     # 90 % of x but 10 % of y in the shifted cluster:
    y[:20, 0] += 2.0                      # the potentials move far from the first iteration
    res = sinkhorn_online(x, y, 0.1, tol=1e-11, support="blocked", verify=True)
    assert res.converged and res.err < 1e-11
    assert res.n_builds == 1 and res.nnz > 0.9 * 200 * 200
    G = _pot_converged(x, y, 0.1)
    M = ImplicitCoupling.from_result(x, y, res)
    np.testing.assert_allclose(as_dense(M), G * 200, atol=1e-9)


@pytest.mark.parametrize("kind", ["blocked", "tree"])
def test_the_shallow_start_leaves_out_exactly_the_terms_below_its_depth(kind):
    """The start's log-sum-exps (depth START_DEPTH) keep every term within log n + depth of
    the largest and drop those below: one term at 0, the others just inside or just beyond."""
    from propalign_lite._blocked import BlockedCost
    from propalign_lite._tree_support import TreeCost
    from propalign_lite.sinkhorn import START_DEPTH
    n, reg = 200, 0.05
    x = np.zeros((3, 1))
    for beyond, expected in ((-0.01, 0.0), (0.01, np.exp(-START_DEPTH - 0.01) * (n - 1) / n)):
        y = np.full((n, 1), reg * (np.log(n) + START_DEPTH + beyond))
        y[0] = 0.0
        cost = BlockedCost(x, y) if kind == "blocked" else TreeCost(x, y)
        exact = cost.lse(np.zeros(3), np.zeros(n), reg, axis=1)
        shallow = cost.lse(np.zeros(3), np.zeros(n), reg, axis=1, depth=START_DEPTH)
        np.testing.assert_allclose(exact - shallow, np.log1p(expected), rtol=1e-6, atol=1e-12)


def test_the_result_says_where_the_time_went():
    import time
    rng = np.random.default_rng(4)
    z = 3.0 * rng.normal(size=(1500, 6))
    x, y = z + 0.5 * rng.normal(size=z.shape), z + 0.5 * rng.normal(size=z.shape)
    t0 = time.perf_counter()
    res = sinkhorn_online(x, y, 0.05, tol=1e-6, support="blocked")
    wall = time.perf_counter() - t0
    assert res.converged
    assert {"start", "support", "iterations"} <= set(res.timings)   # one pass, in the start
    assert all(v >= 0 for v in res.timings.values())
    assert 0.5 * wall < sum(res.timings.values()) <= wall
    dense = sinkhorn(euclidean_cost(x[:300], y[:300]), 0.05, tol=1e-6)
    assert {"start", "passes", "iterations"} <= set(dense.timings)


@pytest.mark.parametrize("online", [False, True])
def test_a_strong_over_relaxation_does_not_overflow_the_held_kernel(online):
    """At omega = 1.9 on a dense 45-d plan (as align's groups are), one over-relaxed step
    carried a scaling past float32's range before its bound was checked, and the solve
    stopped with 'non-finite scalings; increase reg'. The step that would leave the bound is
    now a plain one: the solve converges to the plain solve's potentials."""
    rng = np.random.default_rng(0)
    x = 0.8 * rng.normal(size=(400, 45))
    y = 0.8 * rng.normal(size=(400, 45)) + 0.3
    if online:
        fast = sinkhorn_online(x, y, 0.05, tol=1e-6, omega=1.9, max_iter=3000)
        plain = sinkhorn_online(x, y, 0.05, tol=1e-6, max_iter=3000)
    else:
        C = euclidean_cost(x, y)
        fast = sinkhorn(C, 0.05, tol=1e-6, omega=1.9, max_iter=3000)
        plain = sinkhorn(C, 0.05, tol=1e-6, max_iter=3000)
    assert fast.converged and plain.converged
    # the dual is ill-conditioned here (potentials differ by O(1) along flat directions at
    # tol 1e-6), so the plans are compared: both solve the same problem
    C = euclidean_cost(x, y)
    plans = [np.exp(r.alpha[:, None] + r.beta[None, :] - C / 0.05) for r in (fast, plain)]
    assert np.abs(plans[0] - plans[1]).sum() < 1e-3
    assert np.abs(plans[0] - plans[1]).max() < 1e-5
