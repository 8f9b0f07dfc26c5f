r"""Truncated-kernel support and log-sum-exps by k-d tree radius queries (no pass over all pairs).

The solver (:mod:`propalign_lite.sinkhorn`) asks its cost for two things: the pairs of the
truncated kernel and, once at the start, log-sum-exps. With :math:`C_{ij} = \lVert x_i -
y_j\rVert_2` both are *radius* conditions. A pair is kept when

.. math:: \alpha_i + \beta_j - C_{ij}/\varepsilon \ge \ell
          \iff C_{ij} \le \varepsilon(\alpha_i + \beta_j - \ell),

so, with the columns grouped into buckets of similar :math:`\beta` (largest value
:math:`\beta^{\max}_b` in bucket :math:`b`), every kept pair of row :math:`i` lies in the ball of
radius :math:`\varepsilon(\alpha_i + \beta^{\max}_b - \ell)` around :math:`x_i` in bucket
:math:`b`'s tree (a negative radius means: nothing). The balls return a superset, which is then
filtered exactly with float64 distances (the same arithmetic as
:meth:`BlockedCost.exact_cost <propalign_lite._blocked.BlockedCost.exact_cost>`), so
:meth:`TreeCost.support` returns exactly the pairs with :math:`\log P_{ij} \ge \ell`, plus the
largest entry of every row and column that has none; the solver's bound on the dropped mass
holds unchanged. Queries run ``chunk`` rows at a time (memory :math:`O(\text{chunk} \times
\text{hits per row})`), on all cores (``workers=-1``).

**Log-sum-exps.** :math:`\mathrm{LSE}_j(\alpha_i + \beta_j - C_{ij}/\varepsilon)` is summed over
the terms within :math:`L = \log n_2 + 37` of a lower bound :math:`m_i` of the row's largest term
(:math:`m_i` from the nearest neighbour of :math:`x_i`). Each neglected term is below
:math:`e^{m_i - L}`, at most :math:`n_2` of them: their total is below :math:`e^{-37} < 2^{-53}`
of the sum, under float64 rounding. Columns likewise.

k-d trees prune well in low dimension or on data of low intrinsic dimension; in 12 full
dimensions with a kernel radius near the nearest-neighbour distance they visit a large share of
the points (see :func:`tree_pays`).

Example
-------
>>> import numpy as np
>>> from propalign_lite._blocked import BlockedCost
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(200, 2)), rng.normal(size=(150, 2))
>>> alpha, beta = rng.normal(size=200), rng.normal(size=150)
>>> tree, dense = TreeCost(x, y), BlockedCost(x, y, dtype=np.float64)
>>> bool(np.allclose(tree.lse(alpha, beta, 0.05, axis=1), dense.lse(alpha, beta, 0.05, axis=1)))
True
>>> r, c, lp = tree.support(alpha, beta, 0.05, -30.0)     # the pairs with log P >= -30
>>> rb, cb, lpb = dense.support(alpha, beta, 0.05, -30.0)
>>> above = lpb >= -30.0
>>> bool(np.array_equal(r[lp >= -30.0], rb[above]) and np.allclose(lp[lp >= -30.0], lpb[above]))
True
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

from ._blocked import BlockedCost
from ._fused import LSE_DEPTH, pair_distances

#: rows per radius query: bounds the candidate lists held at once
DEFAULT_CHUNK = 2 ** 14
#: largest dimension for which ``support="auto"`` considers the trees (k-d trees lose their
#: pruning in high dimension, see :func:`tree_pays`)
AUTO_MAX_DIM = 16
#: smallest ``n1 * n2`` for which ``support="auto"`` picks the trees (below, a blocked pass
#: takes well under a second)
AUTO_MIN_PAIRS = 2 ** 26


class TooManyCandidates(RuntimeError):
    """The radius queries would return more candidate pairs than allowed (``max_pairs``)."""


def tree_pays(x, y, reg: float, depth: float, *, sample: int = 256, seed: int = 0,
              max_pairs: int = 10 ** 8) -> bool:
    r"""Whether k-d tree queries beat block passes here (the choice of ``support="auto"``).

    No for ``n1 * n2 < AUTO_MIN_PAIRS`` (a block pass takes under a second) or ``d >
    AUTO_MAX_DIM``. Otherwise a pilot on ``sample`` random rows: a ball query of radius
    (nearest-neighbour distance + ``reg * depth``), where ``depth`` is the log-range the support
    spans below each row's largest entry, is timed against the compiled support pass
    (``propalign_lite._support_pass.support_rows``) of the same rows over all columns; trees are
    chosen when they are 4 times faster per row (the tree path queries per bucket of
    potentials, and twice more deeply at the start) and their hits stay below
    ``max_pairs / 2``. A timing, so the choice can differ between runs near the break-even.

    >>> rng = np.random.default_rng(0)
    >>> tree_pays(rng.normal(size=(100, 2)), rng.normal(size=(100, 2)), 0.05, 40.0)
    False
    """
    import time

    from ._fused import Tiles
    from ._support_pass import support_rows

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n1, n2 = len(x), len(y)
    if n1 * n2 < AUTO_MIN_PAIRS or x.shape[1] > AUTO_MAX_DIM:
        return False
    rows = np.random.default_rng(seed).choice(n1, size=min(sample, n1), replace=False)
    tree = cKDTree(y)
    t0 = time.perf_counter()
    dist, _ = tree.query(x[rows], k=1, workers=-1)
    hits = tree.query_ball_point(x[rows], dist + reg * depth, workers=-1, return_length=True)
    per_row_tree = (time.perf_counter() - t0) / len(rows)
    if hits.mean() * n1 > max_pairs / 2:
        return False
    tiles = Tiles(y)
    theta = -np.median(dist) / reg * np.ones(len(rows))
    support_rows(x[rows[:4]], Tiles(y[:8]), theta[:4], np.zeros(8), 1.0 / reg)   # compiled
    t0 = time.perf_counter()
    support_rows(x[rows], tiles, theta, np.zeros(n2), 1.0 / reg)
    per_row_pass = (time.perf_counter() - t0) / len(rows)
    return 4.0 * per_row_tree < per_row_pass


def _buckets(w, width):
    """Indices of ``w`` grouped by ``floor(w / width)`` (with each group's largest value)."""
    key = np.floor((w - w.min()) / width).astype(np.int64)
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for idx in np.split(order, bounds):
        yield idx, float(w[idx].max())


def _flatten(lists, count):
    return np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=count)


class TreeCost:
    """The cost :math:`\\lVert x_i - y_j\\rVert_2`, searched by k-d trees (see module doc).

    Same interface as :class:`~propalign_lite._blocked.BlockedCost` for the solver: ``n1``,
    ``n2``, ``max_cost``, ``lse``, ``support``, ``exact_cost``, ``as_float64``.
    ``max_pairs`` caps the candidate pairs of one query (:class:`TooManyCandidates` above).
    """

    def __init__(self, x, y, *, chunk: int = DEFAULT_CHUNK, max_pairs: int = 10 ** 8,
                 bucket_width: float = 1.0, max_buckets: int = 24):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        center = 0.5 * (x.mean(0) + y.mean(0))       # the same centring as BlockedCost
        self.x64, self.y64 = x - center, y - center
        self.n1, self.n2 = len(x), len(y)
        self.max_cost = float(np.sqrt((self.x64 ** 2).sum(1).max())
                              + np.sqrt((self.y64 ** 2).sum(1).max()))
        self.chunk, self.max_pairs = int(chunk), int(max_pairs)
        self.bucket_width, self.max_buckets = float(bucket_width), int(max_buckets)
        self._whole = {}                             # one tree over all of x / all of y

    def as_float64(self) -> BlockedCost:
        """A blocked float64 pass over the same cost (the solver's last-resort fallback)."""
        return BlockedCost(self.x64, self.y64, dtype=np.float64)

    def exact_cost(self, i, j) -> np.ndarray:
        """Float64 distances of the pairs ``(i[k], j[k])``, as ``BlockedCost.exact_cost``
        (elementwise the same arithmetic), ``2**18`` pairs at a time."""
        return pair_distances(self.x64, self.y64, i, j)

    # -- the one query ------------------------------------------------------------------
    def _side(self, axis):
        """(query points, target points) for rows (axis=1) or columns (axis=0)."""
        return (self.x64, self.y64) if axis == 1 else (self.y64, self.x64)

    def _whole_tree(self, axis):
        if axis not in self._whole:
            self._whole[axis] = cKDTree(self._side(axis)[1])
        return self._whole[axis]

    def _candidates(self, axis, w, thr, reg, sel=None, keep=None):
        """Pairs (query q, target t) with ``w_t - C_qt / reg >= thr_q`` up to a margin: a
        superset of them (ball queries per bucket of ``w``), as two int64 arrays; ``keep(q,
        t)`` (a boolean mask) filters each chunk's pairs at once."""
        qpts, tpts = self._side(axis)
        sel = np.arange(len(qpts)) if sel is None else np.asarray(sel)
        span = float(w.max() - w.min())
        width = max(self.bucket_width, span / self.max_buckets)
        out_q, out_t, total = [], [], 0
        for idx, w_hi in _buckets(w, width):
            radius = reg * (w_hi - thr[sel])
            radius = radius * (1 + 1e-9) + 1e-12 * (1 + self.max_cost)   # rounding margin
            act = np.flatnonzero(radius >= 0)
            if act.size == 0:
                continue
            tree = cKDTree(tpts[idx])
            for s in range(0, act.size, self.chunk):
                rows = act[s:s + self.chunk]
                hits = tree.query_ball_point(qpts[sel[rows]], radius[rows], workers=-1,
                                             return_sorted=False)
                counts = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits))
                total += int(counts.sum())
                if total > self.max_pairs:
                    raise TooManyCandidates(
                        f"the radius queries return more than {self.max_pairs} candidate pairs")
                qi = np.repeat(sel[rows], counts)
                ti = idx[_flatten(hits, int(counts.sum()))]
                if keep is not None:
                    mask = keep(qi, ti)
                    qi, ti = qi[mask], ti[mask]
                out_q.append(qi)
                out_t.append(ti)
        if not out_q:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(out_q), np.concatenate(out_t)

    def _nearest_bound(self, axis, w, reg, sel=None):
        """A lower bound on ``max_t (w_t - C_qt / reg)`` per query: its value at the nearest
        target."""
        qpts = self._side(axis)[0]
        q = qpts if sel is None else qpts[sel]
        dist, t = self._whole_tree(axis).query(q, k=1, workers=-1)
        return w[t] - dist / reg

    def _pairs(self, axis, qi, ti):
        """(row, column) arrays of query/target pairs."""
        return (qi, ti) if axis == 1 else (ti, qi)

    def _largest(self, axis, sel, w, reg):
        """The largest entry ``argmax_t (w_t - C_qt / reg)`` of each query in ``sel``
        (ties to the smallest index, as ``np.argmax``)."""
        thr = np.full(len(self._side(axis)[0]), np.inf)
        thr[sel] = self._nearest_bound(axis, w, reg, sel)
        qi, ti = self._candidates(axis, w, thr, reg, sel)
        r, c = self._pairs(axis, qi, ti)
        val = w[ti] - self.exact_cost(r, c) / reg
        order = np.lexsort((ti, -val, qi))             # per query: largest value, then index
        qi, ti = qi[order], ti[order]
        first = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]])
        return qi[first], ti[first]

    # -- what the solver asks -------------------------------------------------------------
    def lse(self, alpha, beta, reg, *, axis: int, depth: float = LSE_DEPTH):
        r"""Log-sum-exp of :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon` over ``axis``
        (0: over rows, one value per column; 1: over columns, one value per row), summed over
        the terms within ``log n + depth`` of each largest term (see module doc)."""
        alpha = np.asarray(alpha, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        own, w = (alpha, beta) if axis == 1 else (beta, alpha)
        thr = self._nearest_bound(axis, w, reg) - (np.log(len(w)) + depth)

        def near(qi, ti):
            return w[ti] - self.exact_cost(*self._pairs(axis, qi, ti)) / reg >= thr[qi]
        qi, ti = self._candidates(axis, w, thr, reg, keep=near)
        r, c = self._pairs(axis, qi, ti)
        val = alpha[r] + beta[c] - self.exact_cost(r, c) / reg
        order = np.argsort(qi, kind="stable")
        qi, val = qi[order], val[order]
        starts = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]])
        m = np.maximum.reduceat(val, starts)
        s = np.add.reduceat(np.exp(val - np.repeat(m, np.diff(np.r_[starts, len(val)]))),
                            starts)
        out = np.full(len(own), -np.inf)
        out[qi[starts]] = m + np.log(s)
        return out

    def support(self, alpha, beta, reg, level: float, *, deeper: float = 0.0,
                max_pairs: int | None = None):
        r"""Pairs with :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon \ge` ``level`` (exactly,
        in float64), plus the largest entry of every row and column without one; returns
        ``(rows, cols, logp)`` sorted by row, then column. ``deeper`` is accepted for the
        solver's sake and not used (``last_depth`` is 0: deeper balls would cost more queries
        than they save), and so is ``max_pairs``: the tree's own ``max_pairs`` bounds its
        queries (:class:`TooManyCandidates`)."""
        self.last_depth = 0.0
        alpha = np.asarray(alpha, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        def above(r, c):
            return alpha[r] + beta[c] - self.exact_cost(r, c) / reg >= level
        rows, cols = self._candidates(1, beta, level - alpha, reg, keep=above)
        lonely_r = np.flatnonzero(np.bincount(rows, minlength=self.n1) == 0)
        lonely_c = np.flatnonzero(np.bincount(cols, minlength=self.n2) == 0)
        if lonely_r.size:
            qi, ti = self._largest(1, lonely_r, beta, reg)
            rows, cols = np.r_[rows, qi], np.r_[cols, ti]
        if lonely_c.size:
            qi, ti = self._largest(0, lonely_c, alpha, reg)
            rows, cols = np.r_[rows, ti], np.r_[cols, qi]
        key = np.unique(rows * self.n2 + cols)          # sorted, duplicates dropped
        rows, cols = key // self.n2, key % self.n2
        logp = alpha[rows] + beta[cols] - self.exact_cost(rows, cols) / reg
        return rows, cols, logp
