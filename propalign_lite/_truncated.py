r"""The truncated-kernel Sinkhorn loop behind :mod:`propalign_lite.sinkhorn` (its module doc
describes the method: the start, the truncated kernel and its candidates, the Newton steps).

:func:`solve_truncated` runs it on any cost that offers ``lse``, ``support``, ``exact_cost``,
``as_float64`` and ``max_cost`` (:class:`~propalign_lite._blocked.BlockedCost`,
:class:`~propalign_lite._blocked.DenseCost`, :class:`~propalign_lite._tree_support.TreeCost`)
and returns ``(alpha, beta, n_iter, err, converged, n_builds, support)``.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import sparse

from ._column_start import column_pass_start
from ._fused import index_dtype
from ._held import iterate_held, rounding_slack
from ._relaxation import relaxed_scaling
from ._kernel_support import Candidates
from ._support_pass import TooManyPairs
from ._newton import newton_step as _newton_step

#: B: the scalings live in [1e-4, 1e4] between support rebuilds
LOG_BOUND = np.log(1e4)
#: The start's log-sum-exps leave out the terms more than ``log n + START_DEPTH`` below each
#: largest one: they change the start by less than e^-5 (0.7 %), which the next iterations
#: correct, and the passes of the start run 2x faster on a sparse plan (the compiled passes
#: do exact float64 work only for the terms they keep)
START_DEPTH = 5.0
#: The largest cost / reg the float64 log-domain can resolve (log-plan entries are differences of
#: numbers of this size, so their rounding error is about 1e-16 * this (here 0.01 log units))
MAX_COST_OVER_REG = 1e14


def check_cost_scale(max_cost: float, reg: float) -> None:
    r"""Refuse costs so large against ``reg`` that float64 cannot resolve the plan.

    The plan's log-entries :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon` are differences
    of numbers as large as :math:`\max C/\varepsilon`; beyond ``MAX_COST_OVER_REG`` their
    rounding error exceeds 0.01 in log units and the scalings overflow.
    """
    ratio = float(max_cost) / float(reg)
    if not ratio <= MAX_COST_OVER_REG:
        raise ValueError(
            f"cost / reg reaches {ratio:.3g} (largest cost {float(max_cost):.3g}, reg {reg:g}), "
            f"beyond the {MAX_COST_OVER_REG:.0e} that float64 can resolve in the entropic plan; "
            "rescale the embeddings (e.g. standardise them) or raise reg")


def support_level(tol, nmax):
    """The truncation level: kept pairs have log P >= it (dropped mass <= tol / 100)."""
    return max(np.log(0.01 * tol) - 1.5 * np.log(nmax) - 2 * LOG_BOUND, -700.0)


class StageClock:
    """Wall seconds by stage: :meth:`lap` adds the time since the last lap to ``name``.

    >>> clock = StageClock({})
    >>> clock.lap("start"); sorted(clock.seconds)
    ['start']
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def solve_truncated(cost, a, b, reg, *, max_iter, tol, omega, max_nnz, newton=True,
                    n_plain=10, timings=None):
    """Truncated Sinkhorn with Newton steps (over-relaxed only with a given ``omega``);
    returns (alpha, beta, n_iter, err, converged, n_builds, support). A ``timings`` dict
    receives the wall seconds of each stage: ``start`` (the first iteration's two passes),
    ``passes`` (support passes over all pairs), ``repairs`` (checks and rescans of the
    candidates), ``support`` (filtering the kept pairs), ``iterations`` (Sinkhorn and Newton
    steps on them), ``held`` (a dense plan's whole kernel), ``fallback``."""
    clock = StageClock({} if timings is None else timings)
    n1, n2 = cost.n1, cost.n2
    check_cost_scale(cost.max_cost, reg)
    log_a, log_b = np.log(a), np.log(b)
    nmax = max(n1, n2)
    B = LOG_BOUND
    level = support_level(tol, nmax)
    tail = nmax ** 1.5 * np.exp(level + 2 * B)        # bound on the dropped mass (L2 norm)
    tail += rounding_slack(cost.max_cost, reg, a, b, B)    # and the rounding of the sums
    it, err, converged, n_builds, support = 1, np.inf, False, 0, None
    logp = None                       # the last support's log-entries (in K's order)
    w = 1.0 if omega is None else float(omega)
    steps = 0                     # Sinkhorn/Newton steps so far (Newton after n_plain)
    deeper = 3 * B                # how far below the level the candidates reach (when few)
    # iteration 1 in the log domain (POT's first iteration from zero potentials), with the
    # terms more than START_DEPTH below each largest one left out (a start needs no more):
    # with the compiled passes, from one pass that also finds the first candidates
    # (propalign_lite._column_start), else from two log-sum-exp passes
    started = column_pass_start(cost, a, b, reg, level, deeper, start_depth=START_DEPTH,
                                max_pairs=max_nnz)
    if started is not None:
        alpha, beta, cand = started   # cand: the pairs of the last pass over all pairs
        if cand is None:
            deeper /= 2               # too many pairs even in the narrowest band (as below)
        else:
            n_builds = 1
    else:
        alpha = np.zeros(n1)
        beta = log_b - cost.lse(alpha, np.zeros(n2), reg, axis=0, depth=START_DEPTH)
        alpha = log_a - cost.lse(alpha, beta, reg, axis=1, depth=START_DEPTH)
        cand = None
    clock.lap("start")
    while it < max_iter and not converged:
        # free the last round's kernel before the next (at 10^6, 45 pairs a row, K and the
        # log-entries are 0.9 GB; they were once held during the passes, whose own buffers
        # came on top)
        K = KT = rows = cols = logp = None
        if cand is None or not (cand.holds(alpha, beta)
                                or cand.repair(cost, alpha, beta, reg, level)):
            clock.lap("repairs")
            cand = None               # free the old candidates before the pass
            try:
                cand = Candidates(cost, alpha, beta, reg, level, deeper=deeper,
                                  max_pairs=max_nnz)
            except TooManyPairs as exc:
                return _fall_back(cost, alpha, beta, log_a, log_b, b, reg, it, max_iter, tol,
                                  f"{exc} (max_nnz)", clock)
            n_builds += 1
            if cand.depth == 0.0 and deeper > B / 2:
                deeper /= 2           # too many pairs in every band: half as deep next time
            clock.lap("passes")
        clock.lap("repairs")
        rows, cols, logp = cand.support(alpha, beta, level)
        if rows.size > max_nnz:
            return _fall_back(cost, alpha, beta, log_a, log_b, b, reg, it, max_iter, tol,
                              f"the truncated kernel holds {rows.size} entries (more than "
                              f"max_nnz={max_nnz})", clock)
        # a dense support is replaced by the whole kernel, in float32 (less memory than the
        # dense support's own kernel): no more support passes, the scalings are absorbed in
        # place, and the result is checked by exact passes (propalign_lite._held)
        if rows.size > 0.3 * n1 * n2:
            rows = cols = logp = cand = None        # free the support before the kernel
            out = iterate_held(cost.as_float64(), alpha, beta, a, b, reg, level=level, it=it,
                               max_iter=max_iter, tol=tol, omega=omega, log_bound=B)
            clock.lap("held")
            return (out.alpha, out.beta, out.it, out.err, out.converged,
                    n_builds + out.kernels - 1, out.support)
        K, logp = csr_kernel(rows, cols, logp, n1, n2)
        rows = cols = None            # K holds the columns, and the rows as its indptr
        # K^T as a CSC view of K's own arrays, not a CSR copy (0.55 GB at 10^6, 45.5 pairs
        # a row): there the support builds took 29 s instead of 43 s, the iterations, whose
        # transposed products are slower, 92 s instead of 77 s
        KT = K.T
        # Newton steps pay off on a sparse support; on a dense one their linear solves cost
        # O(n^3), so plain Sinkhorn iterations are used there, as POT does
        use_newton = newton and K.nnz <= 16 * (n1 + n2)
        clock.lap("support")
        u, v = np.ones(n1), np.ones(n2)
        Kv = K @ v
        rows_exact = False
        while it < max_iter:
            Ktu = KT @ u
            col_err = float(np.linalg.norm(v * Ktu - b))
            row_err = 0.0 if rows_exact else float(np.linalg.norm(u * Kv - a))
            err = max(col_err, row_err) + tail
            if err < tol:
                converged = True
                break
            it += 1
            steps += 1
            step = (_newton_step(K, u, v, a, b, max_log_step=B, KT=KT)
                    if use_newton and steps > n_plain else None)
            if step is not None:
                u, v = step
                Kv = K @ v
                rows_exact = False
            else:
                v_new = b / Ktu
                v = relaxed_scaling(v, v_new, w, B)
                Kv = K @ v
                u_new = a / Kv
                u = relaxed_scaling(u, u_new, w, B)
                rows_exact = u is u_new
            if not (np.isfinite(u).all() and np.isfinite(v).all()):
                raise FloatingPointError("Sinkhorn produced non-finite scalings; increase reg")
            if np.abs(np.log(u)).max() > B or np.abs(np.log(v)).max() > B:
                break                                      # absorb and rebuild the support
        alpha = alpha + np.log(u)
        beta = beta + np.log(v)
        clock.lap("iterations")
    if logp is not None:              # the last support, at the returned potentials
        indptr, cols = K.indptr, K.indices
        K = KT = cand = None          # the kernel's values and the candidates, freed first
        support = _support_of(indptr, cols, logp, np.log(u), np.log(v))
    return alpha, beta, it, err, converged, n_builds, support


def _support_of(indptr, cols, logp, log_u, log_v, chunk=1 << 20):
    """The CSR kernel's pairs (``indptr``, ``cols``: its own arrays) as the returned support
    ``(rows, cols, logp)`` at the potentials that absorb ``u, v``: ``rows`` is each entry's
    row in the columns' index type, and ``logp`` is updated in place, a chunk at a time. At
    n = 10^6 (45 pairs a row) int64 copies of the indices and two whole temporaries of the
    update had made this the solve's peak.

    >>> rows, cols, logp = _support_of(np.array([0, 2, 3]), np.array([0, 1, 1], dtype=np.int32),
    ...                                np.zeros(3), np.log([1.0, 2.0]), np.log([3.0, 5.0]),
    ...                                chunk=2)
    >>> rows, np.exp(logp)                 # u_i v_j of each pair: 1*3, 1*5, 2*5
    (array([0, 0, 1], dtype=int32), array([ 3.,  5., 10.]))
    """
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=cols.dtype), np.diff(indptr))
    for s in range(0, logp.size, chunk):
        e = min(s + chunk, logp.size)
        logp[s:e] += log_u[rows[s:e]]
        logp[s:e] += log_v[cols[s:e]]
    return rows, cols, logp


def _fall_back(cost, alpha, beta, log_a, log_b, b, reg, it, max_iter, tol, why, clock):
    """Go on with :func:`_solve_lse`, which holds no pair (a support above ``max_nnz``:
    found by a pass's count before it gathered the pairs, or by filtering), and warn after
    its first iteration, with that iteration's time and what ``max_iter`` allows: on a dense
    plan at atlas size an iteration is two passes over all pairs, and the rest may take
    hours."""
    cost = cost.as_float64()
    t0 = time.perf_counter()
    out = _solve_lse(cost, alpha, beta, log_a, log_b, b, reg, it, min(it + 1, max_iter), tol)
    took = time.perf_counter() - t0
    left = max_iter - out[2]
    if not out[4] and left > 0:
        warnings.warn(f"{why}; continuing with exact block log-sum-exp iterations, which hold "
                      f"no pair but are much slower: the first took {took:.1f} s, and the "
                      f"{left} that max_iter allows may take up to {left * took / 3600:.1f} h "
                      "(raise max_nnz if the memory allows, about 28 bytes a pair, or lower "
                      "reg for a sparser plan)", RuntimeWarning, stacklevel=4)
        out = _solve_lse(cost, out[0], out[1], log_a, log_b, b, reg, out[2], max_iter, tol)
    clock.lap("fallback")
    return out


def _solve_lse(cost, alpha, beta, log_a, log_b, b, reg, it, max_iter, tol):
    """Plain log-domain Sinkhorn with block log-sum-exp passes (no truncation): the fallback."""
    err, converged = np.inf, False
    while it < max_iter:
        lse_col = cost.lse(alpha, beta, reg, axis=0)          # log column sums now
        err = float(np.linalg.norm(np.exp(lse_col) - b))
        if err < tol:
            converged = True
            break
        it += 1
        beta = beta + log_b - lse_col
        alpha = alpha + log_a - cost.lse(alpha, beta, reg, axis=1)
    return alpha, beta, it, err, converged, 0, None


def csr_kernel(rows, cols, logp, n1, n2):
    r"""The truncated kernel :math:`K_{ij} = e^{\log P_{ij}}` on the pairs ``rows, cols`` as a
    canonical CSR matrix laid out directly (no COO copies of the indices), and ``logp`` in
    its order: the pairs sorted by row, then column (where they were not: the candidates'
    pairs already are). The pairs must be distinct.

    >>> K, logp = csr_kernel(np.array([1, 0, 0]), np.array([1, 1, 0]), np.log([3.0, 1, 2]), 2, 2)
    >>> K.toarray()
    array([[2., 1.],
           [0., 3.]])
    >>> np.exp(logp)                  # the entries of K.data
    array([2., 1., 3.])
    """
    r, c = rows, cols
    if r.size and not ((r[1:] > r[:-1]) | ((r[1:] == r[:-1]) & (c[1:] > c[:-1]))).all():
        order = np.lexsort((cols, rows))
        rows, cols, logp = rows[order], cols[order], logp[order]
    indptr = np.zeros(n1 + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n1), out=indptr[1:])
    index = index_dtype(n1, n2, rows.size)
    K = sparse.csr_matrix((np.exp(logp), cols.astype(index, copy=False), indptr.astype(index)),
                          shape=(n1, n2))
    K.has_sorted_indices = True       # and no duplicates: nothing may reorder K.data later
    return K, logp
