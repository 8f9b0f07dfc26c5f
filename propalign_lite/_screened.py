r"""The solver's passes over all pairs, screened in float32 and decided in float64.

A pass over the cost :math:`C_{ij} = \lVert x_i - y_j\rVert_2` asks, for every pair, one
question of the form :math:`\beta_j - C_{ij}/\varepsilon \ge \theta_i`, that is

.. math:: C_{ij} \le r_{ij} := \varepsilon(\beta_j - \theta_i),

(a pair of the truncated kernel; a term of a log-sum-exp within ``depth`` of the row's running
maximum; a term that may beat the row's running argmax). Almost every pair of a sparse plan
answers no, and by a wide margin. So each tile of 8 rows by ``TILE`` columns is first
*screened*: its squared distances are computed in float32 (16 lanes a vector with AVX-512,
no square root) and compared with :math:`r_{ij}\lvert r_{ij}\rvert`, with :math:`r` widened
by a slack :math:`E` that bounds every rounding of the float32 arithmetic,

.. math:: E = 2^{-20}\big((d+3) R + W + T\big), \qquad R = \max_i\lVert x_i\rVert
          + \max_j\lVert y_j\rVert,\; W = \max_j \lvert\varepsilon\beta_j\rvert,\;
          T = \max_i \lvert\varepsilon\theta_i\rvert

(rounding the coordinates to float32 moves a distance by at most :math:`2^{-24} R`, the sum
of :math:`d` squares by a relative :math:`(d+2)2^{-24}`, the thresholds by :math:`2^{-24}(W
+ T)`, and both sides are scaled by :math:`1 \pm 2^{-20}` against the rounding of the
squares; :math:`E` is at least 4 times their sum). Pairs the screen rejects answer no for
certain; pairs within the narrower radius :math:`r - E` answer yes for certain; only the
pairs in between, and the terms a log-sum-exp must add, are computed again exactly from the
float64 embeddings (the arithmetic of :func:`~propalign_lite._fused.pair_distances`). So the
results are those of a float64 pass, at the cost of a float32 one.

* :func:`lse_rows`: :math:`\mathrm{LSE}_j(\beta_j - C_{ij}/\varepsilon)` for every row, with
  a running maximum; terms more than ``depth`` below the row's running maximum are skipped
  (with ``depth = log n2 + 37`` their total is below :math:`2^{-53}` of the sum). When more
  than a quarter of a group of rows' screened pairs pass (a dense plan), that group goes on
  with whole float64 tiles, as without a screen.
* :func:`argmax_rows`: the largest term of every row.
* :func:`support_rows`: the columns :math:`j` with :math:`\beta_j - C_{ij}/\varepsilon \ge
  \theta_i` of every row, into a buffer of ``cap`` columns a row (the counts are exact; rows
  with more are run again with a larger buffer), and the pairs down to :math:`\theta_i - D`
  (the solver's candidate set, see :mod:`propalign_lite.sinkhorn`).

Measured on this project's 2-core machine (AVX-512), 12-d points, :math:`n_1 = n_2 =
20{,}000`, the solver's converged potentials, against the float64 passes these replaced
(run one after the other): a support pass 0.24 s against 0.96 s, a log-sum-exp pass 0.36 s
against 1.04 s, an argmax pass 0.38 s against 0.70 s, with the same pairs and argmaxes and
log-sum-exps equal to 1.4e-14. On a dense plan, whose rows go on with whole float64 tiles,
a log-sum-exp pass took 0.65 s against 0.68 s (4,000 x 20,000).

Example
-------
>>> import numpy as np
>>> from propalign_lite._fused import Tiles
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
>>> beta = rng.normal(size=40)
>>> C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
>>> ref = np.log(np.exp(beta[None] - C / 0.5).sum(1))
>>> bool(np.allclose(lse_rows(x, Tiles(y), beta, 1 / 0.5, 40.0), ref))
True
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._fused import (TILE, Tiles, _squared_tile, merge_pairs, pad_rows,
                     start_threads_keeping_torch)

#: rows screened together (each float32 column vector of a tile is used by all of them)
ROWS = 8
#: the most pairs a row, on average, that a support pass keeps below its level for later
#: rebuilds (``support_rows``'s ``max_per_row``; the torch blocks of ``_blocked`` use it too)
DEEP_PAIRS_PER_ROW = 64
#: the depths, as shares of ``deeper``, at which one support pass counts the deeper pairs:
#: it keeps the deepest set that fits (at n = 300,000 on the 12-d benchmark the pairs 27.6
#: below the level were more than 64 a row, and the whole set was dropped)
DEPTH_BANDS = np.array([1.0, 0.5, 0.25, 0.125])
_UP, _DOWN = 1.0 + 2.0 ** -20, 1.0 - 2.0 ** -20
#: columns of a tile row whose screen is counted together (the exact work visits only the
#: chunks with a passing column)
CHUNK = 32
#: a group of rows whose screened pairs pass more often than this goes on without a screen
DENSE_SHARE = 0.25
#: tiles (of TILE columns) that a support pass takes in turn against several groups of rows:
#: 32 tiles of 12-d points are 400 kB of float32, which stay in cache; going through all the
#: tiles for every 8 rows instead read them from memory each time, and at 10^6 columns
#: (48 MB) the screen ran at 0.46 ns a pair against 0.32 ns (timed on 4,096 rows, 2 cores)
TILES_A_BLOCK = 32
#: groups of ROWS rows that meet each block of tiles together (fewer when the rows are few,
#: so that every thread still has groups to work on)
GROUPS_A_BLOCK = 16


@njit(fastmath=True, cache=True)
def _squared_tile32(x8, yt, acc):
    """``acc[r, j] = ||x8[r] - yt[:, j]||^2`` in float32 for 8 rows and one tile.

    Four coordinates are added to the accumulator at a time: it then goes through memory a
    quarter as often (measured 22-25 % faster on 12-d and 45-d points, 2 cores, AVX-512); any
    order of adding the squares keeps the rounding within the screen's bound."""
    d = x8.shape[1]
    for r in range(ROWS):
        a = acc[r]
        for j in range(TILE):
            a[j] = 0.0
    k = 0
    while k + 4 <= d:
        y0, y1, y2, y3 = yt[k], yt[k + 1], yt[k + 2], yt[k + 3]
        for r in range(ROWS):
            x0, x1, x2, x3 = x8[r, k], x8[r, k + 1], x8[r, k + 2], x8[r, k + 3]
            a = acc[r]
            for j in range(TILE):
                t0, t1, t2, t3 = x0 - y0[j], x1 - y1[j], x2 - y2[j], x3 - y3[j]
                a[j] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
        k += 4
    while k < d:
        yk = yt[k]
        for r in range(ROWS):
            xr = x8[r, k]
            a = acc[r]
            for j in range(TILE):
                t = xr - yk[j]
                a[j] += t * t
        k += 1


@njit(fastmath=True, cache=True)
def _passing(d2, radius, e, hits):
    """How many columns of a tile row have ``d2 <= r |r|`` with ``r = radius - e``: in all
    (returned) and in each chunk of ``CHUNK`` columns (``hits``), so that the exact work
    that follows visits only the chunks with any."""
    total = 0
    for c in range(TILE // CHUNK):
        count = 0
        for j in range(c * CHUNK, c * CHUNK + CHUNK):
            r = radius[j] - e
            if d2[j] <= r * abs(r):
                count += 1
        hits[c] = count
        total += count
    return total


@njit(cache=True)
def _exact(x, i, y, j):
    """The float64 distance of one pair, as ``pair_distances`` computes it."""
    s = 0.0
    for k in range(x.shape[1]):
        diff = x[i, k] - y[j, k]
        s += diff * diff
    return np.sqrt(s)


# Each kernel below repeats the loop over tiles and does its own work on the tile in place: a
# shared helper that returned a tile's log-plan values measured about 45 % slower (float64
# passes, n = 20,000: a log-sum-exp pass 1.61 s against 1.08 s).
@njit(parallel=True, cache=True)
def _lse_screened(x32, x64, t32, t64, y64, n2, beta, b_out, inv_reg, reg, depth, slack):
    n1 = x64.shape[0]
    out = np.empty(n1)
    for g in prange(n1 // ROWS):
        acc = np.empty((ROWS, TILE), dtype=np.float32)
        hits = np.empty(TILE // CHUNK, dtype=np.int64)
        acc64 = np.empty((ROWS, TILE))
        m = np.full(ROWS, -np.inf)
        s = np.zeros(ROWS)
        lo, hi = ROWS * g, ROWS * g + ROWS
        screen, passed, seen = False, 0, 0      # the first tile sets the running maxima
        for t in range(t32.shape[0]):
            c0 = t * TILE
            width = min(TILE, n2 - c0)
            if screen:
                _squared_tile32(x32[lo:hi], t32[t], acc)
                for r in range(ROWS):
                    e = np.float32(_UP * (reg * (m[r] - depth) - slack))
                    if _passing(acc[r], b_out[c0:c0 + TILE], e, hits) == 0:
                        continue
                    for c in range(TILE // CHUNK):
                        if hits[c] == 0:
                            continue
                        for j in range(c * CHUNK, min(c * CHUNK + CHUNK, width)):
                            q = b_out[c0 + j] - e
                            if acc[r, j] > q * abs(q):
                                continue
                            passed += 1
                            v = beta[c0 + j] - _exact(x64, lo + r, y64, c0 + j) * inv_reg
                            if v > m[r]:
                                s[r] *= np.exp(m[r] - v)
                                m[r] = v
                            if v > m[r] - depth:
                                s[r] += np.exp(v - m[r])
                seen += ROWS * width
                screen = not (seen >= 4 * ROWS * TILE and passed > DENSE_SHARE * seen)
                continue
            for h in range(lo, hi, 4):
                _squared_tile(x64[h:h + 4], t64[t], acc64[h - lo:h - lo + 4])
            for r in range(ROWS):
                row = acc64[r]
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
            screen = t == 0
        for r in range(ROWS):
            out[lo + r] = m[r] + np.log(s[r])
    return out


@njit(parallel=True, cache=True)
def _argmax_screened(x32, x64, t32, y64, n2, beta, b_out, inv_reg, reg, slack):
    n1 = x64.shape[0]
    best = np.zeros(n1, dtype=np.int64)
    for g in prange(n1 // ROWS):
        acc = np.empty((ROWS, TILE), dtype=np.float32)
        hits = np.empty(TILE // CHUNK, dtype=np.int64)
        top = np.full(ROWS, -np.inf)
        lo = ROWS * g
        for t in range(t32.shape[0]):
            c0 = t * TILE
            _squared_tile32(x32[lo:lo + ROWS], t32[t], acc)
            for r in range(ROWS):
                e = np.float32(_UP * (reg * top[r] - slack))
                if _passing(acc[r], b_out[c0:c0 + TILE], e, hits) == 0:
                    continue
                for c in range(TILE // CHUNK):
                    if hits[c] == 0:
                        continue
                    for j in range(c * CHUNK, min(c * CHUNK + CHUNK, min(TILE, n2 - c0))):
                        q = b_out[c0 + j] - e
                        if acc[r, j] > q * abs(q):
                            continue
                        v = beta[c0 + j] - _exact(x64, lo + r, y64, c0 + j) * inv_reg
                        if v > top[r]:
                            top[r] = v
                            best[lo + r] = c0 + j
    return best


@njit(cache=True)
def _heap_push(keys, cols, size, key, col):
    """Keep the ``len(keys)`` largest keys seen in a min-heap (``size`` held so far): a new
    key enters while there is room, or replaces the smallest when it is strictly larger."""
    if size < keys.shape[0]:
        k = size                                    # sift up from the new leaf
        while k > 0:
            parent = (k - 1) // 2
            if keys[parent] <= key:
                break
            keys[k], cols[k] = keys[parent], cols[parent]
            k = parent
    elif key > keys[0]:
        k, n = 0, keys.shape[0]                     # sift down from the root
        while True:
            child = 2 * k + 1
            if child >= n:
                break
            if child + 1 < n and keys[child + 1] < keys[child]:
                child += 1
            if keys[child] >= key:
                break
            keys[k], cols[k] = keys[child], cols[child]
            k = child
    else:
        return
    keys[k], cols[k] = key, col


@njit(cache=True)
def _support_row(d2s, hits, i, c0, n2, x64, y64, b_out, b_in, th_out, th_in, deep_out, deep_in,
                 beta, inv_reg, theta, theta_deep, cap, cap_deep, band_keys, counts, cols,
                 counts_deep, cols_deep, keys_deep, counts_band):
    """The support pass's work for row ``i`` and the tile at column ``c0``, whose screened
    squared distances ``d2s`` passed in the chunks ``hits`` (see ``_support_screened``)."""
    for c in range(TILE // CHUNK):
        if hits[c] == 0:
            continue
        for j in range(c * CHUNK, min(c * CHUNK + CHUNK, min(TILE, n2 - c0))):
            d2, col = d2s[j], c0 + j
            q = b_out[col] - deep_out[i]
            if d2 > q * abs(q):
                continue                        # below theta_deep, for certain
            q_in, q_out = b_in[col] - th_in[i], b_out[col] - th_out[i]
            q_deep = b_in[col] - deep_in[i]
            if d2 <= q_in * abs(q_in):
                above, deep = True, False       # above theta, for certain
                v = 0.0
            elif d2 > q_out * abs(q_out) and d2 <= q_deep * abs(q_deep):
                above, deep = False, True       # in [theta_deep, theta), for certain
                v = beta[col] - np.sqrt(np.float64(d2)) * inv_reg   # for its key
            else:                               # near a threshold: decide exactly
                v = beta[col] - _exact(x64, i, y64, col) * inv_reg
                above, deep = v >= theta[i], v >= theta_deep[i]
            if above:
                if counts[i] < cap:
                    cols[i, counts[i]] = col
                counts[i] += 1
            elif deep:
                key = np.float32(v - theta[i])
                if cap_deep > 0:
                    _heap_push(keys_deep[i], cols_deep[i], counts_deep[i], key, col)
                counts_deep[i] += 1
                for k in range(band_keys.shape[0]):
                    if key >= band_keys[k]:
                        counts_band[i, k] += 1


@njit(parallel=True, cache=True)
def _support_screened(x32, x64, t32, y64, n2, b_out, b_in, th_out, th_in, deep_out, deep_in,
                      beta, inv_reg, theta, theta_deep, cap, cap_deep, band_keys, groups):
    r"""For every row: the columns above ``theta`` (count, and the first ``cap`` of them) and
    those in ``[theta_deep, theta)`` (count, and the ``cap_deep`` of them with the largest
    keys :math:`\approx \beta_j - C_{ij}/\varepsilon - \theta_i`, in a heap, with their
    keys), and how many of those have a key at least each of ``band_keys``; ``*_out`` are
    the screen's widened radii, ``*_in`` its narrowed ones (see the module doc)."""
    n1 = x64.shape[0]
    n_bands = band_keys.shape[0]
    counts = np.zeros(n1, dtype=np.int64)
    counts_deep = np.zeros(n1, dtype=np.int64)
    counts_band = np.zeros((n1, n_bands), dtype=np.int64)
    cols = np.empty((n1, cap), dtype=np.int32)
    cols_deep = np.empty((n1, cap_deep), dtype=np.int32)
    keys_deep = np.empty((n1, cap_deep), dtype=np.float32)
    n_groups, n_tiles = n1 // ROWS, t32.shape[0]
    # ``groups`` groups of rows meet a block of TILES_A_BLOCK tiles before the next block:
    # the block is read from memory once for all of them (see TILES_A_BLOCK)
    for sg in prange(-(-n_groups // groups)):
        acc = np.empty((ROWS, TILE), dtype=np.float32)
        hits = np.empty(TILE // CHUNK, dtype=np.int64)
        for tb in range(0, n_tiles, TILES_A_BLOCK):
            for g in range(sg * groups, min(sg * groups + groups, n_groups)):
                lo = ROWS * g
                for t in range(tb, min(tb + TILES_A_BLOCK, n_tiles)):
                    c0 = t * TILE
                    _squared_tile32(x32[lo:lo + ROWS], t32[t], acc)
                    for r in range(ROWS):
                        i = lo + r
                        if _passing(acc[r], b_out[c0:c0 + TILE], deep_out[i], hits) == 0:
                            continue
                        _support_row(acc[r], hits, i, c0, n2, x64, y64, b_out, b_in, th_out,
                                     th_in, deep_out, deep_in, beta, inv_reg, theta,
                                     theta_deep, cap, cap_deep, band_keys, counts, cols,
                                     counts_deep, cols_deep, keys_deep, counts_band)
    return counts, counts_deep, counts_band, cols, cols_deep, keys_deep


# -- the screen's inputs ------------------------------------------------------------------
def _finite_max(v) -> float:
    v = np.abs(np.asarray(v, dtype=np.float64))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


class _Screen:
    """Float32 rows, widened / narrowed float32 column radii and the slack :math:`E`; the
    rows and the per-row vectors ``per_row`` are padded to a multiple of ``ROWS`` once."""

    def __init__(self, x, tiles: Tiles, beta, inv_reg, thresholds_bound, *per_row):
        self.reg = 1.0 / float(inv_reg)
        self.x64, *self.per_row = pad_rows(x, ROWS, *per_row)
        self.x32 = self.x64.astype(np.float32)
        R = (float(np.sqrt((self.x64 ** 2).sum(1).max())) if len(self.x64) else 0.0) + tiles.norm
        W = self.reg * _finite_max(beta)
        self.slack = 2.0 ** -20 * ((tiles.d + 3) * R + W + thresholds_bound(W, R))
        if not np.isfinite(self.slack) or max(R, W, self.slack) > 1e15:
            self.slack = np.inf                 # float32 would overflow: screen nothing out
        scaled = np.full(tiles.data32.shape[0] * TILE, -np.inf)
        scaled[:tiles.n] = self.reg * np.asarray(beta, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            self.b_out = (_UP * scaled).astype(np.float32)
            self.b_in = (_DOWN * scaled).astype(np.float32)

    def radii(self, theta):
        """Per-row float32 offsets: widened (``out``) and narrowed (``in``) by the slack."""
        et = self.reg * np.asarray(theta, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return ((_UP * (et - self.slack)).astype(np.float32),
                    (_DOWN * (et + self.slack)).astype(np.float32))


def argmax_rows(x, tiles: Tiles, beta, inv_reg: float) -> np.ndarray:
    r""":math:`\arg\max_j (\beta_j - \lVert x_i - y_j\rVert/\varepsilon)` for every row of
    ``x`` (the first index among ties, as ``np.argmax``)."""
    beta = np.asarray(beta, dtype=np.float64)
    sc = _Screen(x, tiles, beta, inv_reg, lambda W, R: W + R)
    start_threads_keeping_torch()
    return _argmax_screened(sc.x32, sc.x64, tiles.data32, tiles.points, tiles.n, beta,
                            sc.b_out, float(inv_reg), sc.reg, sc.slack)[:len(x)]


def lse_rows(x, tiles: Tiles, beta, inv_reg: float, depth: float) -> np.ndarray:
    r""":math:`\mathrm{LSE}_j(\beta_j - \lVert x_i - y_j\rVert/\varepsilon)` for every row
    ``i`` of ``x`` (``tiles = Tiles(y)``, ``inv_reg`` :math:`= 1/\varepsilon`)."""
    beta = np.asarray(beta, dtype=np.float64)
    depth = float(depth)
    sc = _Screen(x, tiles, beta, inv_reg, lambda W, R: W + R + depth / inv_reg)
    start_threads_keeping_torch()
    return _lse_screened(sc.x32, sc.x64, tiles.data32, tiles.data, tiles.points, tiles.n,
                         beta, sc.b_out, float(inv_reg), sc.reg, depth, sc.slack)[:len(x)]


@njit(parallel=True, cache=True)
def _gather(counts, cols, held, cols_deep, keys_deep, floor, skip):
    """``(rows, cols)`` sorted by row, then column: every row not in ``skip`` with its
    ``counts`` stored columns and its first ``held`` heap entries with a key at least
    ``floor``."""
    n1 = counts.shape[0]
    sizes = np.zeros(n1, dtype=np.int64)
    for i in prange(n1):
        if not skip[i]:
            m = counts[i]
            for k in range(held[i]):
                if keys_deep[i, k] >= floor:
                    m += 1
            sizes[i] = m
    starts = np.zeros(n1 + 1, dtype=np.int64)
    starts[1:] = np.cumsum(sizes)
    rows_out = np.empty(starts[n1], dtype=np.int64)
    cols_out = np.empty(starts[n1], dtype=np.int64)
    for i in prange(n1):
        if skip[i]:
            continue
        s = starts[i]
        for k in range(counts[i]):
            cols_out[s + k] = cols[i, k]
        m = s + counts[i]
        for k in range(held[i]):
            if keys_deep[i, k] >= floor:
                cols_out[m] = cols_deep[i, k]
                m += 1
        cols_out[s:m] = np.sort(cols_out[s:m])
        rows_out[s:m] = i
    return rows_out, cols_out


def _stored(counts, cols, held=None, cols_deep=None, keys_deep=None, floor=-np.inf,
            skip=None):
    """(rows, cols) of the stored columns (and of the heap entries with a key at least
    ``floor``) of the rows not in ``skip`` (by default: the rows whose columns all fit)."""
    if skip is None:
        skip = counts > cols.shape[1]
    if held is None:
        held = np.zeros_like(counts)
        cols_deep, keys_deep = np.zeros((len(counts), 0), np.int32), np.zeros((len(counts), 0),
                                                                              np.float32)
    return _gather(counts, cols, held, cols_deep, keys_deep, np.float32(floor), skip)


def _groups_a_block(n_groups: int) -> int:
    """Groups of rows a thread takes together: GROUPS_A_BLOCK, or fewer so that each thread
    gets at least 4 such blocks of groups."""
    return int(min(GROUPS_A_BLOCK, max(1, n_groups // (4 * numba.get_num_threads()))))


def _support_pass(x, tiles, theta, theta_deep, beta, inv_reg, cap, cap_deep, bands=()):
    """One compiled support pass; ``bands`` are depths below ``theta`` (each less than
    ``theta - theta_deep``) at which the pairs in the deeper range are counted as well.
    Returns the counts, the band counts and the band keys (float32, relative to ``theta``),
    the buffers and the heap's keys."""
    bound = max(_finite_max(theta), _finite_max(theta_deep)) / inv_reg
    sc = _Screen(x, tiles, beta, inv_reg, lambda W, R: bound, theta, theta_deep)
    th, thd = sc.per_row
    th_out, th_in = sc.radii(th)
    deep_out, deep_in = sc.radii(thd)
    # a pair's key comes from its float32 distance, within the screen's slack E of the exact
    # one: a band counts every key above -depth - sigma, which holds every pair within depth
    sigma = 2.0 * sc.slack * float(inv_reg) + 1e-3
    band_keys = np.array([-d - sigma for d in bands], dtype=np.float32)
    start_threads_keeping_torch()
    counts, counts_deep, counts_band, cols, cols_deep, keys_deep = _support_screened(
        sc.x32, sc.x64, tiles.data32, tiles.points, tiles.n, sc.b_out, sc.b_in, th_out, th_in,
        deep_out, deep_in, beta, float(inv_reg), th, thd, int(cap), int(cap_deep), band_keys,
        _groups_a_block(len(sc.x64) // ROWS))
    n1 = len(x)
    return (counts[:n1], counts_deep[:n1], counts_band[:n1], band_keys, cols[:n1],
            cols_deep[:n1], keys_deep[:n1])


def support_rows(x, tiles: Tiles, theta, beta, inv_reg: float, cap: int = 16, *,
                 deeper: float = 0.0, max_per_row: float = DEEP_PAIRS_PER_ROW):
    r"""The pairs :math:`(i, j)` with :math:`\beta_j - \lVert x_i - y_j\rVert/\varepsilon \ge
    \theta_i - D`, as ``(rows, cols, D)``: int64 arrays sorted by row, then column, and the
    depth :math:`D` they were taken at.

    :math:`D` is the deepest of ``deeper`` :math:`\times (1, \tfrac12, \tfrac14,
    \tfrac18)` whose set holds at most ``max_per_row`` pairs a row on average (all four
    counted in the one pass, with the set at :math:`\theta`), else 0: the deeper set is for
    sparse plans, where it costs little memory. The pass keeps up to ``cap`` columns a row
    above :math:`\theta` and the ``2 * max_per_row`` largest of the pairs between
    :math:`\theta - ` ``deeper`` and :math:`\theta` (by their float32 values, within the
    screen's slack; the bands count by the same values, widened by twice the slack, so a row
    whose band fits the buffer holds all of its pairs); rows with more than that are computed
    again with room for all of theirs. With :math:`D` below ``deeper``, a few pairs just
    below :math:`\theta_i - D` (within the slack) may be returned too.
    """
    n1 = len(x)
    x = np.ascontiguousarray(x, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    deeper = float(deeper)
    cap_deep = int(2 * max_per_row) if deeper > 0 else 0
    bands = DEPTH_BANDS[1:] * deeper if deeper > 0 else np.zeros(0)
    counts, counts_deep, counts_band, band_keys, cols, cols_deep, keys_deep = _support_pass(
        x, tiles, theta, theta - deeper, beta, inv_reg, cap, cap_deep, bands)
    # the deepest band that fits: the whole deeper range, then the narrower bands
    ranges = [(deeper, counts_deep, -np.inf)] + [
        (float(d), counts_band[:, k], band_keys[k]) for k, d in enumerate(bands)]
    depth, below, floor = 0.0, None, None
    if deeper > 0:
        for d, in_range, key_floor in ranges:
            if (counts + in_range).sum() <= max_per_row * n1:
                depth, below, floor = d, in_range, key_floor
                break
    over = counts > cap
    if depth:
        over |= below > cap_deep
        rows_out, cols_out = _stored(counts, cols, np.minimum(counts_deep, cap_deep), cols_deep,
                                     keys_deep, floor, over)
    else:
        rows_out, cols_out = _stored(counts, cols)
    over = np.flatnonzero(over)
    if over.size:                  # rows that did not fit: once more, with room for all
        need = (counts + below if depth else counts)[over]
        low = theta[over] - depth
        c_over, _, _, _, cols_over, _, _ = _support_pass(x[over], tiles, low, low, beta,
                                                         inv_reg, int(need.max()), 0)
        r3, c3 = _stored(c_over, cols_over)
        rows_out, cols_out = merge_pairs(rows_out, cols_out, over[r3], c3)
    return rows_out, cols_out, depth
