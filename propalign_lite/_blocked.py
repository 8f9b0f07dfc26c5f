r"""Blocked passes over the cost :math:`C_{ij} = \lVert x_i - y_j\rVert_2` that never hold it whole.

Every function here walks over blocks of rows of ``x`` (``block_size`` cost entries at a time),
computes that block of the cost from the embeddings (one BLAS product) and reduces it at once,
so memory stays :math:`O(\text{block} + n_1 + n_2)` whatever :math:`n_1 n_2`. The passes run in
torch when ``device`` is not ``"cpu"`` (e.g. ``"cuda"``); on the CPU the solver's two passes
(:meth:`BlockedCost.lse`, :meth:`BlockedCost.support`) run as the compiled loops of
``propalign_lite._screened`` (each tile screened in float32, every undecided pair and every
kept term decided with float64 distances; nothing but the result written; about 15 times
faster than the numpy blocks), and the numpy blocks remain for :meth:`BlockedCost.blocks` and
for a cost already in memory (:class:`DenseCost`). Results come back as float64 numpy arrays.
Potentials are in *log units*: the plan is
:math:`P_{ij} = \exp(\alpha_i + \beta_j - C_{ij}/\varepsilon)`.
"""
from __future__ import annotations

import numpy as np

from ._fused import LSE_DEPTH, Tiles, distance_matrix, merge_pairs, pair_distances
from ._kernel_support import RESCAN_PAIRS
from ._screened import argmax_rows, lse_rows
from ._support_pass import DEEP_PAIRS_PER_ROW, pairs_above, refuse_above, support_rows

DEFAULT_BLOCK = 2 ** 20          # cost entries per block (4 MiB in float32)
#: cost entries per block on a GPU when the default is asked for (256 MiB in float32): with
#: 2^20, a pass at n = 10^5 made 10,000 blocks of a few small kernels and a synchronising
#: copy each, and one group of 10^5 took 32 s on an H200 (benchmarks/gpu_checks.sh)
GPU_BLOCK = 2 ** 26


def _block_entries(block_size: int, device: str) -> int:
    """``block_size``, or ``GPU_BLOCK`` where the default is asked for on a GPU."""
    return GPU_BLOCK if block_size == DEFAULT_BLOCK and str(device) != "cpu" else block_size


def _rows_per_block(n2: int, block_size: int) -> int:
    return max(1, int(block_size) // max(int(n2), 1))


class BlockedCost:
    """The cost between ``x`` and ``y``, computed block by block (numpy or torch)."""

    def __init__(self, x, y, *, dtype=np.float32, device: str = "cpu",
                 block_size: int = DEFAULT_BLOCK, backend: str | None = None):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        center = 0.5 * (x.mean(0) + y.mean(0))       # smaller norms: less cancellation
        self.x64, self.y64 = x - center, y - center
        self.n1, self.n2 = len(x), len(y)
        self.device = str(device)
        self.rows = _rows_per_block(self.n2, _block_entries(block_size, self.device))
        if backend not in (None, "numpy", "torch"):
            raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
        self.torch = backend == "torch" or (backend is None and self.device != "cpu")
        if self.torch is False and self.device != "cpu":
            raise ValueError(f"the numpy backend runs on the CPU only, got device={device!r}")
        r = float(np.sqrt((self.x64 ** 2).sum(1).max()) + np.sqrt((self.y64 ** 2).sum(1).max()))
        # bound on the rounding error of one computed distance (expansion, then sqrt)
        eps = float(np.finfo(dtype).eps)
        self.cost_err = 4.0 * np.sqrt(eps) * r + 1e-12
        self.max_cost = r                               # triangle inequality: C_ij <= r
        if self.torch:
            import torch

            tdt = torch.float32 if dtype == np.float32 else torch.float64
            self._t = torch
            self.x = torch.as_tensor(self.x64, dtype=tdt, device=self.device)
            self.y = torch.as_tensor(self.y64, dtype=tdt, device=self.device)
        else:
            self.x, self.y = self.x64.astype(dtype), self.y64.astype(dtype)
        self.xn = (self.x * self.x).sum(1)
        self.yn = (self.y * self.y).sum(1)
        self.fused = not self.torch             # the compiled CPU passes of _fused
        self._tiles = {}
        self._cap = 128                         # support columns a row, learnt from the last pass

    def as_float64(self) -> "BlockedCost":
        """The same cost with float64 blocks (for passes that must be exact)."""
        return BlockedCost(self.x64, self.y64, dtype=np.float64, device=self.device,
                           block_size=self.rows * self.n2,
                           backend="torch" if self.torch else "numpy")

    # -- helpers --------------------------------------------------------------------------
    def blocks(self):
        """Yield ``(start, stop, C_block)`` over row blocks."""
        for s in range(0, self.n1, self.rows):
            e = min(s + self.rows, self.n1)
            sq = self.x[s:e] @ self.y.T
            sq *= -2.0
            sq += self.xn[s:e, None]
            sq += self.yn[None, :]
            if self.torch:
                yield s, e, sq.clamp_(min=0.0).sqrt_()
            else:
                np.maximum(sq, 0.0, out=sq)
                yield s, e, np.sqrt(sq, out=sq)

    def vec(self, v):
        """A float64 numpy vector on this backend."""
        if self.torch:
            return self._t.as_tensor(np.asarray(v, dtype=np.float64), device=self.device)
        return np.asarray(v, dtype=np.float64)

    def np(self, v) -> np.ndarray:
        if self.torch:
            return v.detach().cpu().numpy().astype(np.float64)
        return np.asarray(v, dtype=np.float64)

    def exact_cost(self, i, j) -> np.ndarray:
        """Float64 distances of the pairs ``(i[k], j[k])``, computed directly (no expansion)."""
        return pair_distances(self.x64, self.y64, i, j)

    # -- reductions -----------------------------------------------------------------------
    def _logp(self, s, e, C, alpha, beta, reg):
        lp = C * (-1.0 / reg)
        if self.torch:
            lp = lp.double() if alpha.dtype != lp.dtype else lp
        lp += beta[None, :]
        lp += alpha[s:e, None]
        return lp

    def _fused_side(self, axis):
        """(query points, tiles of the other side) for rows (axis=1) or columns (axis=0)."""
        if axis not in self._tiles:
            self._tiles[axis] = Tiles(self.y64 if axis == 1 else self.x64)
        return (self.x64 if axis == 1 else self.y64), self._tiles[axis]

    def lse(self, alpha, beta, reg, *, axis: int, depth: float = LSE_DEPTH):
        r"""Log-sum-exp of :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon` over ``axis``
        (0: over rows, one value per column; 1: over columns, one value per row).

        The compiled pass sums the terms within :math:`\log n + ` ``depth`` of each largest
        one: the neglected ones add less than :math:`e^{-\text{depth}}` of the sum (below
        float64 rounding with the default 37); the other paths sum every term."""
        if self.fused:
            own, other = (alpha, beta) if axis == 1 else (beta, alpha)
            pts, tiles = self._fused_side(axis)
            other = np.asarray(other, dtype=np.float64)
            return np.asarray(own, dtype=np.float64) + lse_rows(
                pts, tiles, other, 1.0 / reg, np.log(len(other)) + depth)
        alpha, beta = self.vec(alpha), self.vec(beta)
        if axis == 1:
            out = []
            for s, e, C in self.blocks():
                lp = self._logp(s, e, C, alpha, beta, reg)
                m = lp.max(1)[0] if self.torch else lp.max(1)
                lp -= m[:, None]
                sm = (lp.exp_() if self.torch else np.exp(lp, out=lp)).sum(1)
                out.append(self.np(m) + np.log(self.np(sm)))
            return np.concatenate(out)
        if self.torch:                # running max and sum stay on the device
            t = self._t
            run_m = t.full((self.n2,), -np.inf, dtype=t.float64, device=self.device)
            run_s = t.zeros(self.n2, dtype=t.float64, device=self.device)
            for s, e, C in self.blocks():
                lp = self._logp(s, e, C, alpha, beta, reg)
                new_m = t.maximum(run_m, lp.max(0)[0])
                lp -= new_m[None, :]
                run_s = run_s * t.exp(run_m - new_m) + lp.exp_().sum(0)
                run_m = new_m
            return self.np(run_m + t.log(run_s))
        run_m = np.full(self.n2, -np.inf)
        run_s = np.zeros(self.n2)
        for s, e, C in self.blocks():
            lp = self._logp(s, e, C, alpha, beta, reg)
            m = self.np(lp.max(0)[0] if self.torch else lp.max(0))
            new_m = np.maximum(run_m, m)
            lp -= self.vec(new_m)[None, :] if self.torch else new_m[None, :]
            sm = self.np((lp.exp_() if self.torch else np.exp(lp, out=lp)).sum(0))
            run_s = run_s * np.exp(run_m - new_m) + sm
            run_m = new_m
        return run_m + np.log(run_s)

    def log_kernel(self, alpha, beta, reg, *, dtype="float64") -> np.ndarray:
        r"""Every entry of :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon`, an ``(n1, n2)``
        array of ``dtype`` (the solver's path for a dense plan that fits in memory): the
        values are computed in float64, rows block by block, from distances as exact as
        :meth:`exact_cost`'s, and rounded once to ``dtype``."""
        out = np.empty((self.n1, self.n2), dtype=dtype)
        alpha = np.asarray(alpha, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        cols = np.arange(self.n2)
        step = max(1, 2 ** 22 // max(self.n2, 1))
        for s in range(0, self.n1, step):
            e = min(s + step, self.n1)
            if self.fused:
                block = distance_matrix(self.x64[s:e], self._fused_side(1)[1])
            else:
                i = np.repeat(np.arange(s, e), self.n2)
                block = self.exact_cost(i, np.tile(cols, e - s)).reshape(e - s, self.n2)
            block *= -1.0 / reg
            block += alpha[s:e, None]
            block += beta[None, :]
            out[s:e] = block
        return out

    def support(self, alpha, beta, reg, level: float, *, deeper: float = 0.0,
                max_pairs: int | None = None):
        r"""Pairs with :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon \ge` ``level`` (plus the
        largest entry of every row and column), with their float64 log-values.

        Returns ``(rows, cols, logp)``, sorted by row, then column; the computed cost's
        rounding error is covered by a margin, and the kept values are recomputed exactly from
        the embeddings. With ``deeper`` :math:`= D > 0` the compiled pass may return the pairs
        down to ``level - D``, or to the deepest of ``level - D/2, D/4, D/8`` instead (the
        deepest whose pairs are at most 64 a row on average; see
        ``propalign_lite._support_pass.support_rows``), and so may the torch blocks (``D`` or 0,
        :meth:`_blocked_support`); ``last_depth`` says which depth the last call used
        (always 0 for the numpy blocks of a dense cost). More than ``max_pairs`` pairs at
        the level raise :class:`~propalign_lite._support_pass.TooManyPairs` (the compiled
        pass before it gathers them; the blocks after).
        """
        self.last_depth = 0.0
        if self.fused:
            rows, cols = self._fused_support(alpha, beta, reg, level, deeper, max_pairs)
        else:
            rows, cols = self._blocked_support(alpha, beta, reg, level,
                                               deeper if self.torch else 0.0)
            refuse_above(rows.size, max_pairs)
        # every row and column keeps at least its largest entry (found in a second, small pass)
        lonely_r = np.flatnonzero(np.bincount(rows, minlength=self.n1) == 0)
        lonely_c = np.flatnonzero(np.bincount(cols, minlength=self.n2) == 0)
        if lonely_r.size:
            rows, cols = merge_pairs(rows, cols, lonely_r,
                                     self._largest(lonely_r, beta, reg, axis=1))
        if lonely_c.size:
            by_col = self._largest(lonely_c, alpha, reg, axis=0)
            order = np.lexsort((lonely_c, by_col))
            rows, cols = merge_pairs(rows, cols, by_col[order], lonely_c[order])
        logp = alpha[rows] + beta[cols] - self.exact_cost(rows, cols) / reg
        return rows, cols, logp

    def rescan(self, alpha, beta, reg, level: float, deeper: float, rows, cols, *,
               max_pairs: int = RESCAN_PAIRS):
        r"""The pairs with :math:`\alpha_i + \beta_j - C_{ij}/\varepsilon \ge` ``level -
        deeper`` of the given ``rows`` (against every column) and ``cols`` (against every
        row), plus the largest entry of each of them that has none, as ``(rows, cols, logp)``
        sorted by row, then column (the compiled passes over those rows and columns only).

        Returns ``None`` where this cost has no compiled pass, or where the rows, or the
        columns, hold more than ``max_pairs`` such pairs (the solver then makes a whole
        pass); they are counted before anything is gathered.
        """
        if not self.fused:
            return None
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        alpha = np.asarray(alpha, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        margin = self._margin(reg)
        limit = int(max_pairs)
        found = []
        for sel, own, other, axis in ((rows, alpha, beta, 1), (cols, beta, alpha, 0)):
            if sel.size == 0:
                found.append((np.zeros(0, dtype=np.int64),) * 2)
                continue
            pts, tiles = self._fused_side(axis)
            pairs = pairs_above(pts[sel], tiles, level - margin - deeper - own[sel], other,
                                1.0 / reg, max_pairs=limit)
            if pairs is None:
                return None
            local, partner = pairs
            lonely = np.flatnonzero(np.bincount(local, minlength=sel.size) == 0)
            if lonely.size:
                local, partner = merge_pairs(local, partner, lonely,
                                             self._largest(sel[lonely], other, reg, axis=axis))
            pair = (sel[local], partner) if axis == 1 else (partner, sel[local])
            order = np.lexsort(pair[::-1])
            found.append((pair[0][order], pair[1][order]))
        r, c = merge_pairs(*found[0], *found[1])
        return r, c, alpha[r] + beta[c] - self.exact_cost(r, c) / reg

    def _largest(self, sel, w, reg, *, axis):
        """The partner of the largest entry of every row (axis=1) or column (axis=0) in
        ``sel``: ``argmax`` of ``w - C / reg`` over the other side (one compiled pass over
        ``sel``'s pairs; in numpy, one row or column at a time)."""
        w = np.asarray(w, dtype=np.float64)
        if sel.size == 0:
            return np.zeros(0, dtype=np.int64)
        if self.fused:
            pts, tiles = self._fused_side(axis)
            return argmax_rows(pts[sel], tiles, w, 1.0 / reg)
        other = np.arange(self.n2 if axis == 1 else self.n1)
        out = np.empty(sel.size, dtype=np.int64)
        for k, i in enumerate(sel):
            one = np.full(other.size, i)
            pair = (one, other) if axis == 1 else (other, one)
            out[k] = np.argmax(w - self.exact_cost(*pair) / reg)
        return out

    def _blocked_support(self, alpha, beta, reg, level, deeper=0.0):
        """The pairs at or above ``level`` minus the rounding margin, block by block; with
        ``deeper > 0``, down to ``deeper`` below that while they number at most
        ``DEEP_PAIRS_PER_ROW`` a row on average (``last_depth`` says which)."""
        a_t, b_t = self.vec(alpha), self.vec(beta)
        floor = level - (self.cost_err / reg + 0.05)
        deep, cap = deeper > 0, DEEP_PAIRS_PER_ROW * self.n1
        rows, cols, vals, count = [], [], [], 0
        for s, e, C in self.blocks():
            lp = self._logp(s, e, C, a_t, b_t, reg)
            if self.torch:
                keep = (lp >= floor - (deeper if deep else 0.0)).nonzero()
                v = self.np(lp[keep[:, 0], keep[:, 1]])
                keep = keep.cpu().numpy()
                r, c = keep[:, 0], keep[:, 1]
            else:
                r, c = np.nonzero(lp >= floor - (deeper if deep else 0.0))
                v = lp[r, c]
            rows.append(r + s)
            cols.append(c)
            vals.append(v)
            count += r.size
            if deep and count > cap:        # too many that deep: keep the level's pairs only
                deep = False
                sel = [w >= floor for w in vals]
                rows = [a[m] for a, m in zip(rows, sel)]
                cols = [a[m] for a, m in zip(cols, sel)]
                vals = [a[m] for a, m in zip(vals, sel)]
        self.last_depth = float(deeper) if deep else 0.0
        return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64))

    def _margin(self, reg):
        """How far below a level the compiled passes keep pairs (see ``_fused_support``)."""
        return 4.0 * np.sqrt(np.finfo(np.float64).eps) * self.max_cost / reg + 1e-9

    def _fused_support(self, alpha, beta, reg, level, deeper, max_pairs=None):
        r"""The compiled pass (it decides every pair it cannot screen out with the float64
        distance of :meth:`exact_cost`); pairs within a margin of
        :math:`4\sqrt{\text{eps}}\,r/\varepsilon` below the level are kept too (a
        superset costs nothing to the bound: their values are recomputed exactly)."""
        pts, tiles = self._fused_side(1)
        theta = level - self._margin(reg) - np.asarray(alpha, dtype=np.float64)
        rows, cols, self.last_depth = support_rows(
            pts, tiles, theta, np.asarray(beta, dtype=np.float64), 1.0 / reg, cap=self._cap,
            deeper=deeper, max_pairs=max_pairs)
        self._cap = int(min(max(16, 2 * rows.size // max(self.n1, 1) + 8), self.n2))
        return rows, cols


class DenseCost(BlockedCost):
    """The same passes over a cost matrix that is already in memory (the dense path)."""

    def __init__(self, C, *, block_size: int = DEFAULT_BLOCK):
        self.C = np.asarray(C, dtype=np.float64)
        self.n1, self.n2 = self.C.shape
        self.rows = _rows_per_block(self.n2, block_size)
        self.torch, self.device, self.cost_err, self.fused = False, "cpu", 0.0, False
        self.max_cost = float(np.abs(self.C).max()) if self.C.size else 0.0

    def blocks(self):
        for s in range(0, self.n1, self.rows):
            e = min(s + self.rows, self.n1)
            yield s, e, self.C[s:e]

    def exact_cost(self, i, j) -> np.ndarray:
        return self.C[i, j]

    def as_float64(self) -> "DenseCost":
        return self

    def log_kernel(self, alpha, beta, reg, *, dtype="float64") -> np.ndarray:
        out = self.C * (-1.0 / reg)
        out += np.asarray(alpha, dtype=np.float64)[:, None]
        out += np.asarray(beta, dtype=np.float64)[None, :]
        return out.astype(dtype, copy=False)


def euclidean_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Plain (not squared) Euclidean distances :math:`C_{ij} = \lVert x_i - y_j \rVert_2`.

    Same values as ``ot.dist(x, y, metric="euclidean")``; computed through the expansion
    :math:`\lVert x\rVert^2 + \lVert y\rVert^2 - 2 x^\top y` (a BLAS matrix product), clipped at 0.
    """
    from ._validation import check_array

    x, y = check_array(x, "x"), check_array(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of columns, got {x.shape[1]} and "
                         f"{y.shape[1]}")
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    np.maximum(sq, 0.0, out=sq)
    return np.sqrt(sq, out=sq)
