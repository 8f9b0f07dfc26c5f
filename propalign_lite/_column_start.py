r"""The solver's start and its first candidates from one pass over all pairs instead of three.

The plain start (:func:`propalign_lite._truncated.solve_truncated`) makes two log-sum-exp
passes (:math:`\beta = \log b - \mathrm{LSE}_i(-C_{ij}/\varepsilon)`, then :math:`\alpha =
\log a - \mathrm{LSE}_j(\beta_j - C_{ij}/\varepsilon)`) and then a support pass for the
candidates (:class:`~propalign_lite._kernel_support.Candidates`). On a sparse plan all
three visit every pair to keep a few per row. Here one pass does the work of the three:

1. **A lower bound of every column's largest term.** A k-d tree on the rows gives each
   column :math:`j` a near row :math:`i_0(j)` (approximate, ``NN_EPS``; above
   ``AUTO_MAX_DIM`` dimensions, where trees stop pruning, the nearest row by one compiled
   argmax pass, so the start makes two passes there); the term :math:`m_j =
   -C_{i_0 j}/\varepsilon` is at most the column's largest.
2. **One pass, columns against rows** (``support_rows`` with the roles swapped): the pairs
   with :math:`-C_{ij}/\varepsilon \ge \theta_j - D`, :math:`\theta_j = m_j + \ell - \log b_j`
   (:math:`\ell` the truncation level less the passes' rounding margin, :math:`D` the
   candidates' extra depth, or the deepest of its bands :math:`D/2, D/4, D/8` whose pairs
   are at most 64 a row, or 0 when none is).
3. **The start's potentials from those pairs.** :math:`\beta_j = \log b_j -
   \mathrm{LSE}_i` over the column's pairs, exact to the start's depth wherever the pass
   reached :math:`\log n_1 +` ``START_DEPTH`` below the column's largest term (which it
   collected itself, since :math:`\theta_j - D \le m_j`); the other columns get an exact
   log-sum-exp pass of their own. Then :math:`\alpha_i = \log a_i - \mathrm{LSE}_j(\beta_j
   - C_{ij}/\varepsilon)` over the row's pairs: a pair the pass left out has
   :math:`-C_{ij}/\varepsilon < \theta_j - D`, so :math:`\beta_j - C_{ij}/\varepsilon <
   m_j - \mathrm{LSE}_j + \ell - D \le \ell - D`; a row whose largest collected term is at
   least :math:`\log n_2 +` ``START_DEPTH`` above that bound is exact to the start's depth,
   the others (rows far from every column) get an exact pass of their own.
4. **The candidates**, at the reference potentials :math:`(0, \beta)`: every pair left out
   has :math:`0 + \beta_j - C_{ij}/\varepsilon < \ell - D` (step 3), which is the
   certificate :class:`~propalign_lite._kernel_support.Candidates` needs, with depth
   :math:`D`. Moving to :math:`(\alpha, \beta)` raises the rows by :math:`\alpha_i^+`; the
   solver's check and repairs handle that as after any other step.

The start equals the plain one to within the start's depth (both leave out terms below
:math:`e^{-5}` of a sum). Runs where the bound of step 1 is far from the largest term
collect more pairs (the pass keeps room for all of them) and cost memory, not correctness.

Example
-------
>>> import numpy as np
>>> from propalign_lite._blocked import BlockedCost
>>> rng = np.random.default_rng(0)
>>> z = 3.0 * rng.normal(size=(400, 3))
>>> x, y = z + 0.5 * rng.normal(size=z.shape), z + 0.5 * rng.normal(size=z.shape)
>>> a = np.full(400, 1 / 400)
>>> alpha, beta, cand = column_pass_start(BlockedCost(x, y), a, a, 0.05, -60.0, 27.6)
>>> plain = BlockedCost(x, y)
>>> beta0 = np.log(a) - plain.lse(np.zeros(400), np.zeros(400), 0.05, axis=0)
>>> bool(np.abs(beta - beta0).max() < np.exp(-5))
True
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ._fused import pair_distances, segment_logsumexp, sort_pairs_by_row
from ._kernel_support import Candidates
from ._screened import argmax_rows, lse_rows
from ._support_pass import TooManyPairs, support_rows
from ._tree_support import AUTO_MAX_DIM

#: the k-d tree's approximation: the row it returns is at most (1 + NN_EPS) times as far as
#: the nearest (scipy's ``eps``); only the width of the pass's window depends on it
NN_EPS = 1.0


def column_pass_start(cost, a, b, reg, level, deeper, *, start_depth=5.0, max_pairs=None):
    """``(alpha, beta, candidates)`` from one pass (see the module doc; ``candidates`` is
    ``None`` when the pairs down to ``deeper`` below the level were too many to keep), or
    ``None`` where ``cost`` has no compiled pass (numpy or torch blocks, trees) or where the
    pass counts more than ``max_pairs`` pairs at its level (a dense plan: the solver's plain
    start, two log-sum-exp passes, holds none)."""
    if not getattr(cost, "fused", False):
        return None
    x, y = cost.x64, cost.y64
    n1, n2 = len(x), len(y)
    log_a, log_b = np.log(a), np.log(b)
    inv_reg = 1.0 / reg
    pts, tiles = cost._fused_side(0)                  # the columns, and the rows as tiles
    # 1. a near row of every column: its term bounds the column's largest from below (a
    #    k-d tree in low dimension; above AUTO_MAX_DIM, where trees stop pruning, the
    #    nearest row by one compiled pass)
    if x.shape[1] <= AUTO_MAX_DIM:
        near = cKDTree(x).query(y, k=1, eps=NN_EPS, workers=-1)[1]
    else:
        near = argmax_rows(pts, tiles, np.zeros(n1), inv_reg)
    near = np.asarray(near, dtype=np.int64)
    m = -pair_distances(x, y, near, np.arange(n2)) * inv_reg
    # 2. one pass, columns against rows, at alpha = 0
    theta = m + (level - cost._margin(reg)) - log_b
    try:
        j, i, depth = support_rows(pts, tiles, theta, np.zeros(n1), inv_reg, cap=cost._cap,
                                   deeper=deeper, max_pairs=max_pairs)
    except TooManyPairs:
        return None
    term = -pair_distances(x, y, i, j) * inv_reg                 # -C_ij / reg, exact
    # 3. the start's potentials: columns (the pass returns them sorted by column), then rows
    lse_col, top_col = segment_logsumexp(term, j, n2)
    short = np.flatnonzero(theta - depth > top_col - (np.log(n1) + start_depth))
    if short.size:
        lse_col[short] = lse_rows(pts[short], tiles, np.zeros(n1), inv_reg,
                                  np.log(n1) + start_depth)
    beta = log_b - lse_col
    logp0 = beta[j] + term                                        # log P at (0, beta)
    term = None
    lse_row, top_row = segment_logsumexp(logp0, i, n1)
    outside = float(np.max(theta - depth + beta))                 # bound of the pairs left out
    short = np.flatnonzero(top_row < outside + np.log(n2) + start_depth)
    if short.size:
        rows_pts, row_tiles = cost._fused_side(1)
        lse_row[short] = lse_rows(rows_pts[short], row_tiles, beta, inv_reg,
                                  np.log(n2) + start_depth)
    alpha = log_a - lse_row
    if depth == 0.0:      # no candidates below the level: the solver makes its own pass
        return alpha, beta, None
    # 4. the candidates at (0, beta), sorted by row, then column (the pass gave them sorted
    #    by column: a counting sort); a row without a pair takes its largest entry (every
    #    row and column must hold one; that row's only pair, so the order stays right)
    lonely = np.flatnonzero(np.bincount(i, minlength=n1) == 0)
    if lonely.size:
        partner = cost._largest(lonely, beta, reg, axis=1)
        i, j = np.r_[i, lonely.astype(i.dtype)], np.r_[j, partner.astype(j.dtype)]
        logp0 = np.r_[logp0, beta[partner] - pair_distances(x, y, lonely, partner) * inv_reg]
    i, j, logp0 = sort_pairs_by_row(i, j, logp0, n1)
    return alpha, beta, Candidates.from_pairs(i, j, logp0, np.zeros(n1), beta, depth=depth)
