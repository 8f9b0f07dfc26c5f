r"""Fused CPU passes over the cost :math:`C_{ij} = \lVert x_i - y_j\rVert_2` (numba, all cores).

The two passes the solver makes over all pairs (:mod:`propalign_lite._blocked`), written as
one compiled loop each instead of a chain of numpy operations on blocks of the cost: the
distance, the log-plan value and the reduction happen while a tile is in the L1 cache, so a
pass reads the embeddings and writes only its result. Distances are computed directly in
float64, :math:`\sqrt{\sum_k (x_{ik} - y_{jk})^2}` summed over :math:`k` in order (the
arithmetic of :func:`pair_distances`, up to fused multiply-adds), four rows against
``TILE`` columns at a time (the columns stored tile by tile, transposed, so that the inner loop
runs over contiguous memory and vectorises); groups of four rows are shared among the threads
(``NUMBA_NUM_THREADS``).

* :func:`lse_rows`: :math:`\mathrm{LSE}_j(\beta_j - C_{ij}/\varepsilon)` for every row, with
  a running maximum; terms more than ``depth`` below the row's running maximum are skipped
  (with ``depth = log n2 + 37`` their total is below :math:`2^{-53}` of the sum, as in
  :mod:`~propalign_lite._tree_support`).
* :func:`argmax_rows`: the largest term of every row (for rows and columns left without a
  pair in the support).
* :func:`support_rows`: the columns :math:`j` with :math:`\beta_j - C_{ij}/\varepsilon \ge
  \theta_i` of every row, into a buffer of ``cap`` columns a row; the counts are exact, so
  the rows with more than ``cap`` are run again with a larger buffer. The same pass counts
  the pairs down to a deeper threshold :math:`\theta_i - D` and returns those instead when
  they are not too many: the solver's candidate set, from which it rebuilds its support
  without another pass while its potentials have risen by less than :math:`D`.

:func:`pair_distances` computes the same distances for given pairs (also compiled); the
solver recomputes every kept entry with it.

Measured on this project's 2-core machine (12-d points, n1 = n2 = 20,000, same process): a
log-sum-exp pass took 0.95 s against 5.1 s for the float64 numpy blocks (2.4 against 12.7 ns a
pair), and a support pass 0.76 s; at n = 10^5 a pass takes 24-31 s (2.4-3.1 ns a pair).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
>>> beta = rng.normal(size=40)
>>> C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
>>> ref = np.log(np.exp(beta[None] - C / 0.5).sum(1))
>>> bool(np.allclose(lse_rows(x, Tiles(y), beta, 1 / 0.5, 40.0), ref))
True
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

#: columns per tile (the inner loop's length)
TILE = 256
#: neglected log-range of the log-sum-exps: :math:`L = \log n + 37` (relative error < 2^-53)
LSE_DEPTH = 37.0


@njit(parallel=True, cache=True)
def _pair_distances(x, y, i, j, out):
    d = x.shape[1]
    for k in prange(i.shape[0]):
        s = 0.0
        for t in range(d):
            diff = x[i[k], t] - y[j[k], t]
            s += diff * diff
        out[k] = np.sqrt(s)


def pair_distances(x, y, i, j) -> np.ndarray:
    r"""Float64 distances :math:`\lVert x_{i_k} - y_{j_k}\rVert_2` of the given pairs, summed
    over the coordinates in order (compiled, all threads; memory: the output only)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    i = np.ascontiguousarray(i, dtype=np.int64)
    j = np.ascontiguousarray(j, dtype=np.int64)
    out = np.empty(i.shape[0])
    if i.shape[0]:
        _pair_distances(x, y, i, j, out)
    return out


class Tiles:
    """The points ``y`` (n, d) stored as ``(n_tiles, d, TILE)`` float64, zero-padded."""

    def __init__(self, y):
        y = np.asarray(y, dtype=np.float64)
        self.n, d = y.shape
        n_tiles = -(-self.n // TILE)
        padded = np.zeros((n_tiles * TILE, d))
        padded[:self.n] = y
        self.data = np.ascontiguousarray(padded.reshape(n_tiles, TILE, d).transpose(0, 2, 1))


def _quads(x, *per_row):
    """``x`` (and per-row vectors) padded to a multiple of four rows (copies of the last)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    pad = -len(x) % 4
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        per_row = [np.concatenate([v, np.repeat(v[-1:], pad)]) for v in per_row]
    return (x, *per_row)


# Each kernel below repeats the loop over tiles around _squared_tile and does its own work on
# the tile in place: a shared helper that returned the tile's log-plan values measured about
# 45 % slower (n = 20,000: a log-sum-exp pass 1.61 s against 1.08 s).
@njit(fastmath=True, cache=True)
def _squared_tile(x4, yt, acc):
    """``acc[r, j] = ||x4[r] - yt[:, j]||^2`` for four rows and one tile."""
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    for j in range(TILE):
        a0[j] = 0.0
        a1[j] = 0.0
        a2[j] = 0.0
        a3[j] = 0.0
    for k in range(x4.shape[1]):
        x0, x1, x2, x3 = x4[0, k], x4[1, k], x4[2, k], x4[3, k]
        yk = yt[k]
        for j in range(TILE):
            v = yk[j]
            t0, t1, t2, t3 = x0 - v, x1 - v, x2 - v, x3 - v
            a0[j] += t0 * t0
            a1[j] += t1 * t1
            a2[j] += t2 * t2
            a3[j] += t3 * t3


@njit(parallel=True, cache=True)
def _lse_quads(x, tiles, n2, beta, inv_reg, depth):
    n1 = x.shape[0]
    out = np.empty(n1)
    for q in prange(n1 // 4):
        acc = np.empty((4, TILE))
        m = np.full(4, -np.inf)
        s = np.zeros(4)
        x4 = x[4 * q:4 * q + 4]
        for t in range(tiles.shape[0]):
            _squared_tile(x4, tiles[t], acc)
            c0 = t * TILE
            width = min(TILE, n2 - c0)
            for r in range(4):
                row = acc[r]
                top = -np.inf
                for j in range(width):
                    v = beta[c0 + j] - np.sqrt(row[j]) * inv_reg
                    row[j] = v
                    top = max(top, v)
                if top > m[r]:
                    s[r] *= np.exp(m[r] - top)
                    m[r] = top
                low = m[r] - depth
                for j in range(width):
                    if row[j] > low:
                        s[r] += np.exp(row[j] - m[r])
        for r in range(4):
            out[4 * q + r] = m[r] + np.log(s[r])
    return out


@njit(parallel=True, cache=True)
def _distance_quads(x, tiles, n2, out):
    n1 = out.shape[0]
    for q in prange(x.shape[0] // 4):
        acc = np.empty((4, TILE))
        x4 = x[4 * q:4 * q + 4]
        for t in range(tiles.shape[0]):
            _squared_tile(x4, tiles[t], acc)
            c0 = t * TILE
            width = min(TILE, n2 - c0)
            for r in range(min(4, n1 - 4 * q)):
                row = out[4 * q + r]
                for j in range(width):
                    row[c0 + j] = np.sqrt(acc[r, j])


def distance_matrix(x, tiles: Tiles) -> np.ndarray:
    r"""All distances :math:`\lVert x_i - y_j\rVert_2` as an ``(n1, n2)`` float64 array, with
    the arithmetic of the passes (for a plan dense enough to be held whole)."""
    out = np.empty((len(x), tiles.n))
    if out.size:
        _distance_quads(_quads(x)[0], tiles.data, tiles.n, out)
    return out


@njit(parallel=True, cache=True)
def _support_quads(x, tiles, n2, theta, theta_deep, beta, inv_reg, cap, cap_deep):
    """For every row: the columns above ``theta`` (count, and the first ``cap`` of them) and
    those in ``[theta_deep, theta)`` (count, and the first ``cap_deep``)."""
    n1 = x.shape[0]
    counts = np.zeros(n1, dtype=np.int64)
    counts_deep = np.zeros(n1, dtype=np.int64)
    cols = np.empty((n1, cap), dtype=np.int32)
    cols_deep = np.empty((n1, cap_deep), dtype=np.int32)
    for q in prange(n1 // 4):
        acc = np.empty((4, TILE))
        x4 = x[4 * q:4 * q + 4]
        for t in range(tiles.shape[0]):
            _squared_tile(x4, tiles[t], acc)
            c0 = t * TILE
            width = min(TILE, n2 - c0)
            for r in range(4):
                i = 4 * q + r
                row = acc[r]
                low, high = theta_deep[i], theta[i]
                for j in range(width):
                    v = beta[c0 + j] - np.sqrt(row[j]) * inv_reg
                    if v >= high:
                        if counts[i] < cap:
                            cols[i, counts[i]] = c0 + j
                        counts[i] += 1
                    elif v >= low:
                        if counts_deep[i] < cap_deep:
                            cols_deep[i, counts_deep[i]] = c0 + j
                        counts_deep[i] += 1
    return counts, counts_deep, cols, cols_deep


@njit(parallel=True, cache=True)
def _argmax_quads(x, tiles, n2, beta, inv_reg):
    n1 = x.shape[0]
    best = np.zeros(n1, dtype=np.int64)
    for q in prange(n1 // 4):
        acc = np.empty((4, TILE))
        top = np.full(4, -np.inf)
        x4 = x[4 * q:4 * q + 4]
        for t in range(tiles.shape[0]):
            _squared_tile(x4, tiles[t], acc)
            c0 = t * TILE
            width = min(TILE, n2 - c0)
            for r in range(4):
                row = acc[r]
                for j in range(width):
                    v = beta[c0 + j] - np.sqrt(row[j]) * inv_reg
                    if v > top[r]:
                        top[r] = v
                        best[4 * q + r] = c0 + j
    return best


def argmax_rows(x, tiles: Tiles, beta, inv_reg: float) -> np.ndarray:
    r""":math:`\arg\max_j (\beta_j - \lVert x_i - y_j\rVert/\varepsilon)` for every row of
    ``x`` (the first index among ties, as ``np.argmax``)."""
    n1 = len(x)
    (xq,) = _quads(x)
    return _argmax_quads(xq, tiles.data, tiles.n, np.asarray(beta, dtype=np.float64),
                         float(inv_reg))[:n1]


def lse_rows(x, tiles: Tiles, beta, inv_reg: float, depth: float) -> np.ndarray:
    r""":math:`\mathrm{LSE}_j(\beta_j - \lVert x_i - y_j\rVert/\varepsilon)` for every row
    ``i`` of ``x`` (``tiles = Tiles(y)``, ``inv_reg`` :math:`= 1/\varepsilon`)."""
    n1 = len(x)
    (xq,) = _quads(x)
    out = _lse_quads(xq, tiles.data, tiles.n, np.asarray(beta, dtype=np.float64),
                     float(inv_reg), float(depth))
    return out[:n1]


@njit(cache=True)
def _merge_pairs(ra, ca, rb, cb):
    """Merge two lists of pairs, each sorted by row then column, into one (pairs in both
    are kept once): linear time, where a sort of the concatenation costs n log n."""
    na, nb = ra.size, rb.size
    rows = np.empty(na + nb, dtype=np.int64)
    cols = np.empty(na + nb, dtype=np.int64)
    i = j = k = 0
    while i < na or j < nb:
        if j == nb or (i < na and (ra[i] < rb[j] or (ra[i] == rb[j] and ca[i] < cb[j]))):
            rows[k], cols[k] = ra[i], ca[i]
            i += 1
        elif i == na or ra[i] != rb[j] or ca[i] != cb[j]:
            rows[k], cols[k] = rb[j], cb[j]
            j += 1
        else:                                  # the same pair in both: keep it once
            rows[k], cols[k] = ra[i], ca[i]
            i += 1
            j += 1
        k += 1
    return rows[:k], cols[:k]


def merge_pairs(ra, ca, rb, cb):
    """``(rows, cols)`` of the union of two pair lists sorted by row, then column (the
    result sorted the same way, duplicates dropped); compiled, linear time.

    >>> merge_pairs(np.array([0, 2]), np.array([1, 0]), np.array([0, 0, 2]), np.array([0, 1, 3]))
    (array([0, 0, 2, 2]), array([0, 1, 0, 3]))
    """
    as64 = [np.ascontiguousarray(v, dtype=np.int64) for v in (ra, ca, rb, cb)]
    return _merge_pairs(*as64)


def _stored(counts, cols):
    """(rows, cols) of the stored columns of the rows whose columns all fit (count <= cap)."""
    counts = np.where(counts <= cols.shape[1], counts, 0)
    keep = np.arange(cols.shape[1])[None, :] < counts[:, None]
    return np.nonzero(keep)[0], cols[keep].astype(np.int64)


def support_rows(x, tiles: Tiles, theta, beta, inv_reg: float, cap: int = 16, *,
                 deeper: float = 0.0, max_per_row: float = 64.0):
    r"""The pairs :math:`(i, j)` with :math:`\beta_j - \lVert x_i - y_j\rVert/\varepsilon \ge
    \theta_i - D`, as ``(rows, cols, D)``: int64 arrays sorted by row, then column, and the
    depth :math:`D` they were taken at.

    :math:`D` is ``deeper`` when that deeper set holds at most ``max_per_row`` pairs a row on
    average (counted in the same pass as the set at :math:`\theta`), else 0: the deeper set
    is for sparse plans, where it costs little memory. The pass keeps up to ``cap`` columns a
    row above :math:`\theta` and up to ``2 * max_per_row`` more between the two thresholds;
    rows with more than that are computed again with room for all of theirs.
    """
    n1 = len(x)
    x = np.ascontiguousarray(x, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    deeper = float(deeper)
    cap_deep = int(2 * max_per_row) if deeper > 0 else 0
    xq, th, thd = _quads(x, theta, theta - deeper)
    counts, counts_deep, cols, cols_deep = _support_quads(
        xq, tiles.data, tiles.n, th, thd, beta, float(inv_reg), int(cap), cap_deep)
    counts, counts_deep = counts[:n1], counts_deep[:n1]
    total = counts + counts_deep
    depth = deeper if deeper > 0 and total.sum() <= max_per_row * n1 else 0.0
    rows_out, cols_out = _stored(counts, cols[:n1])
    over = counts > cap
    if depth:
        over |= counts_deep > cap_deep
        rows_out, cols_out = rows_out[~over[rows_out]], cols_out[~over[rows_out]]
        r2, c2 = _stored(np.where(over, 0, counts_deep), cols_deep[:n1])
        rows_out, cols_out = merge_pairs(rows_out, cols_out, r2, c2)
    over = np.flatnonzero(over)
    if over.size:                  # rows that did not fit: once more, with room for all
        need = (total if depth else counts)[over]
        low = theta[over] - depth
        xo, lo = _quads(x[over], low)
        c_over, _, cols_over, _ = _support_quads(xo, tiles.data, tiles.n, lo, lo, beta,
                                                 float(inv_reg), int(need.max()), 0)
        r3, c3 = _stored(c_over[:over.size], cols_over[:over.size])
        rows_out, cols_out = merge_pairs(rows_out, cols_out, over[r3], c3)
    return rows_out, cols_out, depth
