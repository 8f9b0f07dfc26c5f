r"""Which pairs the solver's truncated kernel keeps between passes over all pairs.

Used by :mod:`propalign_lite.sinkhorn`.

``Candidates``: the pairs one pass found down to a depth below the truncation level, from
which later supports are filtered while the potentials have risen by less than that depth
(no new pass). A dense plan is held whole instead (``propalign_lite._held``).
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from ._fused import index_dtype

#: the most pairs a repair's rescan of the rows (or the columns) may return, unless the
#: candidates hold more: a repair may then add as many as they hold (see ``repair``)
RESCAN_PAIRS = 2 ** 23


class Candidates:
    r"""The pairs found by one pass over all pairs, and the supports filtered from them.

    The pass (``cost.support(..., deeper=D)``) returns the pairs with :math:`\alpha^0_i +
    \beta^0_j - C_{ij}/\varepsilon \ge \ell - D'` at the potentials :math:`\alpha^0,
    \beta^0` of that moment, where :math:`D'` is ``D``, the deepest of ``D/2, D/4, D/8``
    whose pairs are few enough, or 0 (``cost.last_depth``). With :math:`D'` = 0 every
    rebuild is a new pass.

    **What the candidates certify.** Every pair outside them has

    .. math:: \alpha^0_i + \beta^0_j - C_{ij}/\varepsilon < \ell - D' + \sigma_i + \tau_j

    with per-row and per-column slacks :math:`\sigma, \tau \ge 0` (0 after a pass). At later
    potentials the bound grows by the rises :math:`(\alpha_i - \alpha^0_i)^+` and
    :math:`(\beta_j - \beta^0_j)^+`; so while :math:`\max_i \rho_i + \max_j \kappa_j \le
    D'`, with :math:`\rho_i = \sigma_i + (\alpha_i - \alpha^0_i)^+` and :math:`\kappa_j =
    \tau_j + (\beta_j - \beta^0_j)^+` (:meth:`holds`), no pair outside the candidates
    reaches :math:`\ell`, and the support at level :math:`\ell` -- the pairs with
    :math:`\log P_{ij} \ge \ell`, plus the largest entry of every row and column without one
    (taken among the candidates, which hold at least one pair of each) -- is filtered from
    the candidates (:meth:`support`), with no new pass.

    **Repairs instead of passes.** When the bound no longer holds, the rises are usually
    those of a few rows and columns (on the 12-d benchmark at n = 100,000, when the first
    candidates stopped holding, the largest rises were 16.3 and 17.7 against D' = 27.6, but
    99.9 % of the rises were below 3.6). :meth:`repair` picks a split :math:`s` and rescans
    only the rows with :math:`\rho_i > s` and the columns with :math:`\kappa_j > \tfrac34
    D' - s` (``cost.rescan``: their pairs down to :math:`\ell - D'` at the current
    potentials, whose slacks become 0). The others keep their pairs; the current potentials
    become the reference and :math:`\rho, \kappa` their slacks, so the bound holds again with
    :math:`D'/4` to spare. A row or column whose candidates all lay in rescanned columns or
    rows is rescanned too (each keeps at least one candidate). The split minimises the pairs
    rescanned; when that is more than a quarter of all pairs, or the cost has no such rescan,
    or the rescanned rows (or columns) hold more pairs down to the depth than the candidates
    do (and ``RESCAN_PAIRS``), a whole pass is made instead.
    A rescan keeps every pair down to the depth, however many a row holds: at n = 10^6 on
    the 12-d benchmark, the rows whose potentials had risen held more than 256 pairs a row
    there, and while a rescan asked for fewer, each repair gave way to a whole pass (about
    450 s).
    """

    def __init__(self, cost, alpha, beta, reg, level, *, deeper, max_pairs=None):
        # more than max_pairs at the level: TooManyPairs, raised by the pass before it
        # gathers them (the solver then passes over all pairs without holding any)
        rows, cols, logp = cost.support(alpha, beta, reg, level, deeper=deeper,
                                        max_pairs=max_pairs)
        self._hold(rows, cols, logp, alpha, beta, getattr(cost, "last_depth", 0.0))

    @classmethod
    def from_pairs(cls, rows, cols, logp, alpha, beta, *, depth):
        """Candidates found otherwise than by ``cost.support`` (``propalign_lite._column_start``):
        ``rows, cols`` sorted by row, then column, with at least one pair in every row and
        column, their ``logp`` at the reference potentials ``alpha, beta``, and every other
        pair below ``level - depth`` there."""
        self = cls.__new__(cls)
        self._hold(rows, cols, logp, alpha, beta, depth)
        return self

    def _hold(self, rows, cols, logp, alpha, beta, depth):
        self.depth = float(depth)
        # int32 indices (copied only where they came wider): at 10^6 the candidates are
        # 60-80 million pairs, 16 bytes a pair instead of 24
        index = index_dtype(alpha.size, beta.size)
        self.rows, self.cols = rows.astype(index, copy=False), cols.astype(index, copy=False)
        self.logp0 = logp               # log P at the pass (updated by the potentials' changes)
        self.alpha0, self.beta0 = alpha.copy(), beta.copy()
        self.n1, self.n2 = alpha.size, beta.size
        self.sigma, self.tau = np.zeros(self.n1), np.zeros(self.n2)
        self.rescanned = 0                  # rows and columns rescanned by repairs so far

    def _slacks(self, alpha, beta):
        return (self.sigma + np.maximum(alpha - self.alpha0, 0.0),
                self.tau + np.maximum(beta - self.beta0, 0.0))

    def holds(self, alpha, beta) -> bool:
        """Whether the support may be filtered from the candidates (no new pass)."""
        if self.depth == 0.0:
            return False
        rho, kappa = self._slacks(alpha, beta)
        return float(rho.max()) + float(kappa.max()) <= self.depth

    def repair(self, cost, alpha, beta, reg, level) -> bool:
        """Rescan the rows and columns whose slacks grew (see the class doc), so that the
        candidates hold again at ``alpha, beta``; ``False`` when a whole pass is needed."""
        if self.depth == 0.0 or not hasattr(cost, "rescan"):
            return False
        rho, kappa = self._slacks(alpha, beta)
        budget = 0.75 * self.depth
        # rescanning the rows above s and the columns above budget - s: the split with the
        # fewest pairs among every value that changes a count
        rho_sorted, kappa_sorted = np.sort(rho), np.sort(kappa)
        s = np.clip(np.r_[0.0, budget, rho, budget - kappa], 0.0, budget)
        n_rows = self.n1 - np.searchsorted(rho_sorted, s, side="right")
        n_cols = self.n2 - np.searchsorted(kappa_sorted, budget - s, side="right")
        work = n_rows * self.n2 + n_cols * self.n1
        best = int(np.argmin(work))
        if work[best] > 0.25 * self.n1 * self.n2:
            return False
        stale_r, stale_c = rho > s[best], kappa > budget - s[best]
        r, c = self.rows, self.cols
        while True:      # a row or column left without a candidate is rescanned too
            keep = ~(stale_r[r] | stale_c[c])
            left_r = ~stale_r & (np.bincount(r[keep], minlength=self.n1) == 0)
            left_c = ~stale_c & (np.bincount(c[keep], minlength=self.n2) == 0)
            if not (left_r.any() or left_c.any()):
                break
            stale_r |= left_r
            stale_c |= left_c
        rows, cols = np.flatnonzero(stale_r), np.flatnonzero(stale_c)
        fresh = cost.rescan(alpha, beta, reg, level, self.depth, rows, cols,
                            max_pairs=max(RESCAN_PAIRS, self.rows.size))
        if fresh is None:
            return False
        fr, fc, flogp = fresh
        # every fresh pair is in a rescanned row or column, so none is a kept one; the kept
        # pairs' values move with the potentials, and the fresh pairs are merged into the
        # candidates' own arrays (at 10^6 they are 60-80 million pairs, 1.2 GB: a merge into
        # new arrays made the solve's peak)
        arrays = [self.rows, self.cols, self.logp0]
        self.rows = self.cols = self.logp0 = r = c = None    # merged in place (no copies)
        self.rows, self.cols, self.logp0 = merge_repaired(
            arrays, keep, alpha - self.alpha0, beta - self.beta0, fr, fc, flogp)
        arrays = keep = None
        self.alpha0, self.beta0 = alpha.copy(), beta.copy()
        rho[rows] = 0.0
        kappa[cols] = 0.0
        self.sigma, self.tau = rho, kappa
        self.rescanned += rows.size + cols.size
        return True

    def support(self, alpha, beta, level):
        """``(rows, cols, logp)`` of the support at ``level`` for the current potentials."""
        r, c = self.rows, self.cols
        if self.depth == 0.0:           # the pass's own support (used right after the pass)
            return r, c, self.logp0
        return _filter_support(r, c, self.logp0, alpha - self.alpha0, beta - self.beta0,
                               float(level), self.n1, self.n2)


@njit(cache=True, inline="always")
def _kept(v, i, j, level, row_kept, col_kept, row_max, col_max):
    """Whether a pair of value ``v`` in row ``i`` and column ``j`` is in the support: at or
    above the level, or the largest of a row (column) with no pair above it."""
    return (v >= level or (not row_kept[i] and v == row_max[i])
            or (not col_kept[j] and v == col_max[j]))


@njit(cache=True)
def _filter_support(r, c, logp0, d_alpha, d_beta, level, n1, n2):
    """The pairs with ``logp0 + d_alpha[r] + d_beta[c] >= level``, plus every pair equal to
    the largest of its row (column) in a row (column) with none, as ``(rows, cols, logp)``
    in the candidates' order: three compiled sweeps (the largest of each row and column, a
    count, the selection) that recompute each value instead of holding the values and a
    mask of every candidate (at n = 10^6, 77 candidates a row: 0.7 GB at the support
    build's peak)."""
    m = r.size
    row_max, col_max = np.full(n1, -np.inf), np.full(n2, -np.inf)
    row_kept, col_kept = np.zeros(n1, dtype=np.bool_), np.zeros(n2, dtype=np.bool_)
    kept = 0
    for k in range(m):
        v = logp0[k] + d_alpha[r[k]] + d_beta[c[k]]
        row_max[r[k]] = max(row_max[r[k]], v)
        col_max[c[k]] = max(col_max[c[k]], v)
        if v >= level:
            row_kept[r[k]] = col_kept[c[k]] = True
            kept += 1
    count = m
    if kept < m:
        count = 0
        for k in range(m):
            v = logp0[k] + d_alpha[r[k]] + d_beta[c[k]]
            count += _kept(v, r[k], c[k], level, row_kept, col_kept, row_max, col_max)
    if count == m:
        vals = np.empty(m)
        for k in range(m):
            vals[k] = logp0[k] + d_alpha[r[k]] + d_beta[c[k]]
        return r, c, vals
    rows, cols, vals = np.empty(count, r.dtype), np.empty(count, c.dtype), np.empty(count)
    j = 0
    for k in range(m):
        v = logp0[k] + d_alpha[r[k]] + d_beta[c[k]]
        if _kept(v, r[k], c[k], level, row_kept, col_kept, row_max, col_max):
            rows[j], cols[j], vals[j] = r[k], c[k], v
            j += 1
    return rows, cols, vals


@njit(cache=True)
def _compact_kept(r, c, v, keep, d_alpha, d_beta):
    """Move the kept candidates to the front of their own arrays, their values moved by
    ``d_alpha[r] + d_beta[c]``; returns how many were kept."""
    w = 0
    for k in range(r.size):
        if keep[k]:
            value = v[k] + d_alpha[r[k]] + d_beta[c[k]]
            r[w], c[w], v[w] = r[k], c[k], value
            w += 1
    return w


@njit(cache=True)
def _shared_pairs(r, c, n, fr, fc):
    """How many of the first ``n`` pairs ``r, c`` are among ``fr, fc`` (both sorted)."""
    i = j = same = 0
    while i < n and j < fr.size:
        if r[i] < fr[j] or (r[i] == fr[j] and c[i] < fc[j]):
            i += 1
        elif r[i] == fr[j] and c[i] == fc[j]:
            same += 1
            i += 1
            j += 1
        else:
            j += 1
    return same


@njit(cache=True)
def _merge_from_the_back(r, c, v, n, fr, fc, fv, size):
    """Merge the fresh pairs into the first ``n`` pairs of ``r, c, v`` (arrays of ``size``
    entries, both lists sorted by row, then column), writing from the back so that nothing
    unread is overwritten; a fresh pair replaces a kept one at the same place."""
    i, j, w = n - 1, fr.size - 1, size - 1
    while j >= 0:
        if i >= 0 and (r[i] > fr[j] or (r[i] == fr[j] and c[i] > fc[j])):
            r[w], c[w], v[w] = r[i], c[i], v[i]
            i -= 1
        else:
            if i >= 0 and r[i] == fr[j] and c[i] == fc[j]:
                i -= 1                               # the same pair: the fresh value wins
            r[w], c[w], v[w] = fr[j], fc[j], fv[j]
            j -= 1
        w -= 1


def merge_repaired(arrays, keep, d_alpha, d_beta, fr, fc, fv):
    """The kept candidates (``keep``; values moved by ``d_alpha[r] + d_beta[c]``) merged
    with the fresh pairs ``fr, fc, fv`` of a rescan, sorted by row, then column (a fresh
    pair replaces a kept one at the same place), **in place**: ``arrays`` is the list
    ``[rows, cols, logp]``, whose owner has dropped its own references. The kept pairs are
    moved to the front, each array is grown (``ndarray.resize``: a ``realloc``, which moves
    pages instead of copying them) and the fresh pairs are merged in from the back. An
    array that does not own its data or is referenced elsewhere (a view) is copied instead.
    At n = 10^6 the old merge wrote new arrays while the old candidates (1.2 GB) were alive:
    the solve's peak was at the end of every repair.

    >>> arrays = [np.array([0, 0, 1, 2]), np.array([1, 3, 0, 2]), np.zeros(4)]
    >>> keep = np.array([True, False, True, True])
    >>> rows, cols, vals = merge_repaired(arrays, keep, np.ones(3), np.zeros(4),
    ...                                   np.array([0, 1]), np.array([2, 1]), np.array([5.0, 6]))
    >>> rows, cols, vals
    (array([0, 0, 1, 1, 2]), array([1, 2, 0, 1, 2]), array([1., 5., 1., 6., 1.]))
    """
    for k in range(3):
        a = arrays[k]
        # references: the list, ``a`` and getrefcount's argument; a view would add one
        if not (a.flags.owndata and a.base is None and sys.getrefcount(a) <= 3):
            arrays[k] = a.copy()                     # merged in a copy of its own
    a = None
    n = _compact_kept(*arrays, keep, d_alpha, d_beta)
    size = n + fr.size - _shared_pairs(arrays[0], arrays[1], n, fr, fc)
    for a in arrays:
        a.resize(size, refcheck=False)               # owned, referenced only by the list
    a = None
    fr, fc = (np.ascontiguousarray(f, dtype=arrays[i].dtype) for i, f in ((0, fr), (1, fc)))
    _merge_from_the_back(*arrays, n, fr, fc, np.ascontiguousarray(fv, dtype=np.float64), size)
    return tuple(arrays)
