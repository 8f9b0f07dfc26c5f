r"""Which pairs the solver's truncated kernel keeps between passes over all pairs.

Used by :mod:`propalign_lite.sinkhorn`.

``Candidates``: the pairs one pass found down to a depth below the truncation level, from
which later supports are filtered while the potentials have risen by less than that depth
(no new pass). A dense plan is held whole instead (``propalign_lite._held``).
"""
from __future__ import annotations

import numpy as np


class Candidates:
    r"""The pairs found by one pass over all pairs, and the supports filtered from them.

    The pass (``cost.support(..., deeper=D)``) returns the pairs with :math:`\alpha^0_i +
    \beta^0_j - C_{ij}/\varepsilon \ge \ell - D'` at the potentials :math:`\alpha^0,
    \beta^0` of that moment, where :math:`D'` is ``D`` or 0 (``cost.last_depth``). Any pair
    outside them has, at later potentials, :math:`\log P_{ij} < \ell - D' + \max_i
    (\alpha_i - \alpha^0_i)^+ + \max_j (\beta_j - \beta^0_j)^+`; so while that rise is at most
    :math:`D'` (:meth:`holds`), the support at level :math:`\ell` -- the pairs with
    :math:`\log P_{ij} \ge \ell`, plus the largest entry of every row and column without one
    (taken among the candidates, which hold at least one pair of each) -- is filtered from
    the candidates (:meth:`support`), with no new pass. With :math:`D'` = 0 every rebuild is a
    new pass, as before the candidates existed.
    """

    def __init__(self, cost, alpha, beta, reg, level, *, deeper):
        rows, cols, logp = cost.support(alpha, beta, reg, level, deeper=deeper)
        self.depth = float(getattr(cost, "last_depth", 0.0))
        self.rows, self.cols = rows, cols
        self.logp0 = logp               # log P at the pass (updated by the potentials' changes)
        self.alpha0, self.beta0 = alpha.copy(), beta.copy()
        self.n1, self.n2 = cost.n1, cost.n2
        self.starts = self.segment = None   # row segments, when a filter first needs them

    def holds(self, alpha, beta) -> bool:
        """Whether the support may be filtered from the candidates (no new pass)."""
        if self.depth == 0.0:
            return False
        rise = (max(float((alpha - self.alpha0).max()), 0.0)
                + max(float((beta - self.beta0).max()), 0.0))
        return rise <= self.depth

    def support(self, alpha, beta, level):
        """``(rows, cols, logp)`` of the support at ``level`` for the current potentials."""
        r, c = self.rows, self.cols
        if self.depth == 0.0:           # the pass's own support (used right after the pass)
            return r, c, self.logp0
        logp = self.logp0 + (alpha - self.alpha0)[r] + (beta - self.beta0)[c]
        keep = logp >= level
        if keep.all():
            return r, c, logp
        if self.starts is None:
            self.starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
            self.segment = np.repeat(np.arange(self.starts.size),
                                     np.diff(np.r_[self.starts, r.size]))
        row_max = np.maximum.reduceat(logp, self.starts)
        lonely_r = np.bincount(r[keep], minlength=self.n1) == 0
        col_max = np.full(self.n2, -np.inf)
        np.maximum.at(col_max, c, logp)
        lonely_c = np.bincount(c[keep], minlength=self.n2) == 0
        keep |= lonely_r[r] & (logp == row_max[self.segment])
        keep |= lonely_c[c] & (logp == col_max[c])
        return r[keep], c[keep], logp[keep]
