r"""Compiled float64 pieces of the CPU passes over the cost :math:`\lVert x_i - y_j\rVert_2`.

The passes the solver makes over all pairs (:mod:`propalign_lite._blocked`) are compiled
loops (numba, all cores) over tiles: a few rows of ``x`` against ``TILE`` columns of ``y``
(the columns stored tile by tile, transposed, so that the inner loop runs over contiguous
memory and vectorises), so a pass reads the embeddings and writes only its result. This
module holds what they share:

* :class:`Tiles`: the columns, tile by tile, in float64 and float32;
* ``_squared_tile``: float64 squared distances of four rows and one tile,
  :math:`\sum_k (x_{ik} - y_{jk})^2` summed over :math:`k` in order;
* :func:`pair_distances`: float64 distances of given pairs (the solver recomputes every kept
  entry with it; the "exact" arithmetic of the package);
* :func:`distance_matrix`: every distance, for a dense plan that is held whole;
* :func:`merge_pairs`: the linear-time union of two sorted pair lists.

The passes themselves (log-sum-exps, argmaxes, supports) screen each tile in float32 first
and decide in float64: ``propalign_lite._screened``. Before the screen, the float64 passes
took 2.2-2.4 ns a pair on this project's 2 cores (12-d points, :math:`n = 20{,}000`), and
24-31 s a pass at :math:`n = 10^5`.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(5, 3)), rng.normal(size=(300, 3))
>>> C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
>>> bool(np.allclose(distance_matrix(x, Tiles(y)), C, rtol=1e-14, atol=0))
True
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit, prange


_THREADS_STARTED = False


def start_threads_keeping_torch() -> None:
    """Start numba's thread pool (once), and leave torch's thread count as it was.

    numba's OpenMP threading layer and torch's CPU build share one OpenMP runtime. Once torch
    has run in parallel, starting numba's pool (on numba's first parallel call) set that
    runtime's thread count to numba's, which silently changed ``torch.get_num_threads()``: a
    user's ``torch.set_num_threads(1)`` became 2 on a 2-core machine after the first match,
    and torch's convolutions then rounded differently (1.5e-8 in a classifier's logits).
    Every wrapper of a compiled parallel loop calls this before the loop. It is not called at
    import: a process whose OpenMP pool runs cannot fork safely (numba terminates a forked
    child that uses the pool), so the pool still starts only when a pass needs it.
    """
    global _THREADS_STARTED
    if _THREADS_STARTED:
        return
    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else None
    try:
        from numba.np.ufunc.parallel import _launch_threads
    except ImportError:                            # pragma: no cover - other numba versions
        _THREADS_STARTED = True
        return
    _launch_threads()
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _THREADS_STARTED = True


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


def as_index(v) -> np.ndarray:
    """``v`` as a contiguous int32 or int64 array, copied only when it is neither (the
    solver keeps its pairs' indices in int32, half the memory, below 2^31 points a side).

    >>> as_index(np.array([1, 2], dtype=np.int32)).dtype, as_index([1, 2]).dtype
    (dtype('int32'), dtype('int64'))
    """
    v = np.asarray(v)
    if v.dtype not in (np.int32, np.int64):
        v = v.astype(np.int64)
    return np.ascontiguousarray(v)


def index_dtype(*sizes):
    """int32 where every index fits (below 2^31), else int64."""
    return np.int32 if max(sizes, default=0) < 2 ** 31 else np.int64


def pair_distances(x, y, i, j) -> np.ndarray:
    r"""Float64 distances :math:`\lVert x_{i_k} - y_{j_k}\rVert_2` of the given pairs, summed
    over the coordinates in order (compiled, all threads; memory: the output only)."""
    start_threads_keeping_torch()
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    i, j = as_index(i), as_index(j)
    out = np.empty(i.shape[0])
    if i.shape[0]:
        _pair_distances(x, y, i, j, out)
    return out


class Tiles:
    """The points ``y`` (n, d) stored as ``(n_tiles, d, TILE)`` float64 (``data``) and float32
    (``data32``, for the screens of ``propalign_lite._screened``), zero-padded; ``points`` is
    ``y`` itself (float64, for exact distances) and ``norm`` its largest row norm."""

    def __init__(self, y):
        y = np.ascontiguousarray(y, dtype=np.float64)
        self.n, self.d = y.shape
        self.points = y
        self.norm = float(np.sqrt((y ** 2).sum(1).max())) if self.n else 0.0
        n_tiles = -(-self.n // TILE)
        padded = np.zeros((n_tiles * TILE, self.d))
        padded[:self.n] = y
        self.data = np.ascontiguousarray(padded.reshape(n_tiles, TILE, self.d)
                                         .transpose(0, 2, 1))
        self.data32 = self.data.astype(np.float32)


def pad_rows(x, rows, *per_row):
    """``x`` (and per-row vectors) padded to a multiple of ``rows`` rows (copies of the
    last), as float64."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    pad = -len(x) % rows
    if pad and len(x):
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        per_row = [np.concatenate([v, np.repeat(v[-1:], pad)]) for v in per_row]
    return (x, *per_row)


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
        start_threads_keeping_torch()
        _distance_quads(pad_rows(x, 4)[0], tiles.data, tiles.n, out)
    return out


@njit(cache=True)
def _merge_pairs(ra, ca, rb, cb):
    """Merge two lists of pairs, each sorted by row then column, into one (pairs in both
    are kept once): linear time, where a sort of the concatenation costs n log n."""
    na, nb = ra.size, rb.size
    rows = np.empty(na + nb, dtype=ra.dtype)
    cols = np.empty(na + nb, dtype=ca.dtype)
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


def sort_pairs_by_row(rows, cols, values, n1):
    """``(rows, cols, values)`` reordered by row, stably (pairs given sorted by column come
    out sorted by row, then column): a compiled counting sort, linear time, the outputs in
    the inputs' index types and no permutation array (a lexsort of the 60 million pairs of
    the start at n = 10^6 took an int64 order and a copy of every array on top).

    >>> sort_pairs_by_row(np.array([2, 0, 2]), np.array([0, 1, 1]), np.array([1.0, 2, 3]), 3)
    (array([0, 2, 2]), array([1, 0, 1]), array([2., 1., 3.]))
    """
    rows, cols = as_index(rows), as_index(cols)
    values = np.ascontiguousarray(values, dtype=np.float64)
    # the outputs are numpy's own arrays (not the compiled code's), so that the candidates
    # made of them can be grown in place by a repair (``_kernel_support.merge_repaired``)
    out = np.empty_like(rows), np.empty_like(cols), np.empty_like(values)
    _sort_pairs_by_row(rows, cols, values, int(n1), *out)
    return out


@njit(cache=True)
def _sort_pairs_by_row(rows, cols, values, n1, r_out, c_out, v_out):
    starts = np.zeros(n1 + 1, dtype=np.int64)
    for k in range(rows.size):
        starts[rows[k] + 1] += 1
    for i in range(n1):
        starts[i + 1] += starts[i]
    for k in range(rows.size):
        at = starts[rows[k]]
        r_out[at], c_out[at], v_out[at] = rows[k], cols[k], values[k]
        starts[rows[k]] = at + 1


@njit(cache=True)
def _segment_logsumexp(values, seg, lse, top):
    for k in range(values.size):                     # each segment's largest value
        if values[k] > top[seg[k]]:
            top[seg[k]] = values[k]
    for k in range(values.size):                     # sum of exp(value - largest), in lse
        lse[seg[k]] += np.exp(values[k] - top[seg[k]])
    for s in range(top.size):                        # (NaN for a group of -inf: replaced)
        lse[s] = top[s] + np.log(lse[s]) if top[s] > -np.inf else -np.inf


def segment_logsumexp(values, seg, n):
    r"""Log-sum-exp of ``values`` grouped by the segment ids ``seg`` (in ``[0, n)``, any
    order), and the largest value of each group; both -inf for an empty group (or one of
    -inf values). Compiled, two passes over the values and no temporaries as long as them
    (``np.maximum.at`` and ``np.add.at`` made two, 1 GB at the start of a 10^6 solve).

    >>> lse, top = segment_logsumexp(np.log([1.0, 2.0, 3.0]), np.array([2, 0, 2]), 3)
    >>> np.exp(lse), top
    (array([2., 0., 4.]), array([0.69314718,       -inf, 1.09861229]))
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    lse, top = np.zeros(int(n)), np.full(int(n), -np.inf)
    _segment_logsumexp(values, np.asarray(seg), lse, top)
    return lse, top


def merge_pairs(ra, ca, rb, cb):
    """``(rows, cols)`` of the union of two pair lists sorted by row, then column (the
    result sorted the same way, duplicates dropped); compiled, linear time.

    >>> merge_pairs(np.array([0, 2]), np.array([1, 0]), np.array([0, 0, 2]), np.array([0, 1, 3]))
    (array([0, 0, 2, 2]), array([0, 1, 0, 3]))
    """
    ra, ca, rb, cb = (as_index(v) for v in (ra, ca, rb, cb))
    if rb.dtype != ra.dtype or cb.dtype != ca.dtype:        # the wider type for both lists
        wide = np.promote_types(ra.dtype, rb.dtype)
        ra, ca, rb, cb = (v.astype(wide, copy=False) for v in (ra, ca, rb, cb))
    return _merge_pairs(ra, ca, rb, cb)


@njit(cache=True)
def _pairs_sorted(rows, cols):
    for k in range(1, rows.size):
        if rows[k] < rows[k - 1] or (rows[k] == rows[k - 1] and cols[k] < cols[k - 1]):
            return False
    return True


def pairs_sorted(rows, cols) -> bool:
    """Whether the pairs are sorted by row, then column (repeats allowed): one compiled
    pass, where the numpy comparison of shifted arrays made five temporaries as long as the
    pairs (45 million pairs at n = 10^6: about 0.2 GB).

    >>> pairs_sorted(np.array([0, 0, 1]), np.array([2, 3, 0]))
    True
    >>> pairs_sorted(np.array([1, 0]), np.array([0, 0]))
    False
    """
    return bool(_pairs_sorted(np.asarray(rows), np.asarray(cols)))


@njit(cache=True)
def _normalised(logp, rows, log_row_sum, vals):
    for k in range(logp.size):
        lse = log_row_sum[rows[k]]
        vals[k] = np.exp(logp[k] - lse) if lse > -np.inf else 0.0


def row_normalised(logp, rows, n1):
    r"""``(vals, log_row_sum)`` of the entries :math:`e^{\log p}` of pairs (by row):
    :math:`\log s_i = \mathrm{LSE}_{k \in \text{row } i} \log p_k` (``-inf`` for a row
    without pairs) and :math:`v_k = e^{\log p_k - \log s_i}`, so each row sums to 1. One
    :func:`segment_logsumexp`, then one compiled pass; no temporaries as long as the pairs
    (the numpy form made four). The rows need not be sorted.

    >>> vals, lrs = row_normalised(np.log([1.0, 3.0, 2.0]), np.array([0, 0, 2]), 3)
    >>> vals, np.exp(lrs)
    (array([0.25, 0.75, 1.  ]), array([4., 0., 2.]))
    """
    logp, rows = np.ascontiguousarray(logp, dtype=np.float64), np.asarray(rows)
    log_row_sum, _ = segment_logsumexp(logp, rows, n1)
    vals = np.empty_like(logp)
    _normalised(logp, rows, log_row_sum, vals)
    return vals, log_row_sum
