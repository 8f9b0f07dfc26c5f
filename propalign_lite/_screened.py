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
* the support pass, :func:`propalign_lite._support_pass.support_rows`, with the same screen:
  the columns :math:`j` with :math:`\beta_j - C_{ij}/\varepsilon \ge \theta_i` of every row,
  and the deeper candidate pairs.

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

import numpy as np
from numba import njit, prange

from ._fused import TILE, Tiles, _squared_tile, pad_rows, start_threads_keeping_torch

#: rows screened together (each float32 column vector of a tile is used by all of them)
ROWS = 8
_UP, _DOWN = 1.0 + 2.0 ** -20, 1.0 - 2.0 ** -20
#: columns of a tile row whose screen is counted together (the exact work visits only the
#: chunks with a passing column)
CHUNK = 32
#: a group of rows whose screened pairs pass more often than this goes on without a screen
DENSE_SHARE = 0.25


@njit(fastmath=True, cache=True, inline="always")
def _squares4(x0, x1, x2, x3, w0, w1, w2, w3):
    """The sum of the squared differences of four coordinates (two pairs, then their sum)."""
    t0, t1, t2, t3 = x0 - w0, x1 - w1, x2 - w2, x3 - w3
    return (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)


@njit(fastmath=True, cache=True)
def _squared_tile32(x8, yt, acc):
    """``acc[r, j] = ||x8[r] - yt[:, j]||^2`` in float32 for 8 rows and one tile.

    Four coordinates are added at a time, to all 8 rows in the same pass over the columns:
    each column vector of four coordinates is loaded once for the 8 rows, and each row's
    accumulator goes through memory once every four coordinates. Any order of adding the
    squares keeps the rounding within the screen's bound."""
    d = x8.shape[1]
    a0, a1, a2, a3, a4, a5, a6, a7 = (acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6],
                                      acc[7])
    for j in range(TILE):
        a0[j] = a1[j] = a2[j] = a3[j] = a4[j] = a5[j] = a6[j] = a7[j] = 0.0
    k = 0
    while k + 4 <= d:
        y0, y1, y2, y3 = yt[k], yt[k + 1], yt[k + 2], yt[k + 3]
        x = x8[:, k:k + 4]
        p0, p1, p2, p3 = x[0, 0], x[0, 1], x[0, 2], x[0, 3]
        q0, q1, q2, q3 = x[1, 0], x[1, 1], x[1, 2], x[1, 3]
        r0, r1, r2, r3 = x[2, 0], x[2, 1], x[2, 2], x[2, 3]
        s0, s1, s2, s3 = x[3, 0], x[3, 1], x[3, 2], x[3, 3]
        t0, t1, t2, t3 = x[4, 0], x[4, 1], x[4, 2], x[4, 3]
        u0, u1, u2, u3 = x[5, 0], x[5, 1], x[5, 2], x[5, 3]
        v0, v1, v2, v3 = x[6, 0], x[6, 1], x[6, 2], x[6, 3]
        w0, w1, w2, w3 = x[7, 0], x[7, 1], x[7, 2], x[7, 3]
        for j in range(TILE):
            c0, c1, c2, c3 = y0[j], y1[j], y2[j], y3[j]
            a0[j] += _squares4(p0, p1, p2, p3, c0, c1, c2, c3)
            a1[j] += _squares4(q0, q1, q2, q3, c0, c1, c2, c3)
            a2[j] += _squares4(r0, r1, r2, r3, c0, c1, c2, c3)
            a3[j] += _squares4(s0, s1, s2, s3, c0, c1, c2, c3)
            a4[j] += _squares4(t0, t1, t2, t3, c0, c1, c2, c3)
            a5[j] += _squares4(u0, u1, u2, u3, c0, c1, c2, c3)
            a6[j] += _squares4(v0, v1, v2, v3, c0, c1, c2, c3)
            a7[j] += _squares4(w0, w1, w2, w3, c0, c1, c2, c3)
        k += 4
    while k < d:
        yk = yt[k]
        for r in range(ROWS):
            xr = x8[r, k]
            a = acc[r]
            for j in range(TILE):
                e = xr - yk[j]
                a[j] += e * e
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
