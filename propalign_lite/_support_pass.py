r"""The support pass: for every row, the pairs of the truncated kernel and the deeper candidates.

For every row :math:`i`, :func:`support_rows` returns the columns :math:`j` with
:math:`\beta_j - C_{ij}/\varepsilon \ge \theta_i` (into a buffer of ``cap`` columns a row; the
counts are exact, and rows with more are run again with a larger buffer), and, with
``deeper`` :math:`= D > 0`, the pairs down to :math:`\theta_i - D'`, where :math:`D'` is the
deepest of :math:`D, D/2, D/4, D/8` whose pairs are at most ``max_per_row`` a row on average
(the solver's candidates, see :mod:`propalign_lite._kernel_support`). Each pair is screened
in float32 and decided in float64 as in :mod:`propalign_lite._screened`, whose screen this
module uses. Each row keeps the ``2 * max_per_row`` largest of its deeper pairs in a heap,
so a row whose band fits holds all of it.

The pass takes 16 groups of 8 rows against a block of 32 tiles of columns before the next
block, so that the columns are read from memory once a block (``TILES_A_BLOCK``).

Example
-------
>>> import numpy as np
>>> from propalign_lite._fused import Tiles
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
>>> beta, theta = rng.normal(size=40), np.full(50, -8.0)
>>> C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
>>> rows, cols, depth = support_rows(x, Tiles(y), theta, beta, 1 / 0.5)
>>> want = np.nonzero(beta[None] - C / 0.5 >= theta[:, None])
>>> bool(np.array_equal(rows, want[0]) and np.array_equal(cols, want[1])), depth
(True, 0.0)
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._fused import TILE, Tiles, merge_pairs, start_threads_keeping_torch
from ._screened import CHUNK, ROWS, _exact, _passing, _Screen, _finite_max, _squared_tile32

#: the most pairs a row, on average, that a support pass keeps below its level for later
#: rebuilds (``support_rows``'s ``max_per_row``; the torch blocks of ``_blocked`` use it too)
DEEP_PAIRS_PER_ROW = 64
#: the depths, as shares of ``deeper``, at which one support pass counts the deeper pairs:
#: it keeps the deepest set that fits (at n = 300,000 on the 12-d benchmark the pairs 27.6
#: below the level were more than 64 a row, and the whole set was dropped)
DEPTH_BANDS = np.array([1.0, 0.5, 0.25, 0.125])
#: tiles (of TILE columns) that a support pass takes in turn against several groups of rows:
#: 32 tiles of 12-d points are 400 kB of float32, which stay in cache; going through all the
#: tiles for every 8 rows instead read them from memory each time, and at 10^6 columns
#: (48 MB) the screen ran at 0.46 ns a pair against 0.32 ns (timed on 4,096 rows, 2 cores)
TILES_A_BLOCK = 32
#: groups of ROWS rows that meet each block of tiles together (fewer when the rows are few,
#: so that every thread still has groups to work on)
GROUPS_A_BLOCK = 16


class TooManyPairs(RuntimeError):
    """A pass counted more pairs above its level than the caller allows (``max_pairs``):
    raised after the counting pass, before any pair is gathered, so a dense plan costs
    the count, not the memory of its pairs."""


def refuse_above(count: int, max_pairs: int | None) -> None:
    """Raise :class:`TooManyPairs` when a pass's ``count`` of pairs exceeds ``max_pairs``."""
    if max_pairs is not None and count > max_pairs:
        raise TooManyPairs(f"the support pass counted {int(count)} pairs above the level, "
                           f"more than {int(max_pairs)}")


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
    rows_out = np.empty(starts[n1], dtype=np.int32)     # as the buffers: below 2^31
    cols_out = np.empty(starts[n1], dtype=np.int32)
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
                 deeper: float = 0.0, max_per_row: float = DEEP_PAIRS_PER_ROW,
                 max_pairs: int | None = None):
    r"""The pairs :math:`(i, j)` with :math:`\beta_j - \lVert x_i - y_j\rVert/\varepsilon \ge
    \theta_i - D`, as ``(rows, cols, D)``: int32 arrays sorted by row, then column, and the
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
    below :math:`\theta_i - D` (within the slack) may be returned too. With ``max_pairs``,
    more than that many pairs at :math:`\theta` raise :class:`TooManyPairs` before any
    row runs again (a dense plan at :math:`n = 10^5` would otherwise gather :math:`10^9`
    pairs, over 16 GB).
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
    refuse_above(counts.sum(), max_pairs)
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
        r3, c3 = _rows_with_room(x, tiles, theta - depth, beta, inv_reg, over, need)
        rows_out, cols_out = merge_pairs(rows_out, cols_out, r3, c3)
    return rows_out, cols_out, depth


#: entries (4 bytes each) of the buffer with which rows that overflowed theirs run again
ROOM_ENTRIES = 2 ** 24


def _rows_with_room(x, tiles, low, beta, inv_reg, rows, need):
    """``(rows, cols)``, sorted, of the pairs at or above ``low`` of the given ``rows``, whose
    counts ``need`` are known: one pass for each batch of rows, with a buffer of the batch's
    largest count a row and at most ``ROOM_ENTRIES`` entries (or one row) a batch, so that
    one row with many pairs does not size the buffer of all."""
    order = np.argsort(need, kind="stable")[::-1]
    found_r, found_c = [], []
    start = 0
    while start < order.size:
        width = max(int(need[order[start]]), 1)
        stop = min(order.size, start + max(1, ROOM_ENTRIES // width))
        batch = np.sort(rows[order[start:stop]])
        got, _, _, _, cols, _, _ = _support_pass(x[batch], tiles, low[batch], low[batch], beta,
                                                 inv_reg, width, 0)
        r, c = _stored(got, cols)
        found_r.append(batch[r].astype(np.int32))     # as _stored's
        found_c.append(c)
        start = stop
    rows_out, cols_out = found_r[0], found_c[0]
    for r, c in zip(found_r[1:], found_c[1:]):
        rows_out, cols_out = merge_pairs(rows_out, cols_out, r, c)
    return rows_out, cols_out


def pairs_above(x, tiles: Tiles, low, beta, inv_reg: float, *, cap: int = 256,
                max_pairs: int | None = None):
    r"""Every pair with :math:`\beta_j - \lVert x_i - y_j\rVert/\varepsilon \ge` ``low``
    :math:`_i`, as ``(rows, cols)`` sorted by row, then column, or ``None`` when they are more
    than ``max_pairs`` (counted in the first pass, before anything is gathered).

    One pass keeps up to ``cap`` columns a row; the rows with more run again in batches, with
    room for all of theirs. Unlike :func:`support_rows` there is no band to fall back to:
    the solver's repairs (``BlockedCost.rescan``) need every pair down to the candidates'
    depth, however many a rescanned row holds at the moment (at n = 10^6 on the 12-d
    benchmark, rows whose potentials had risen held more than 256 a row on average, and
    the repairs, which asked for a band, gave way to whole passes).

    >>> rng = np.random.default_rng(1)
    >>> x, y = rng.normal(size=(30, 2)), rng.normal(size=(500, 2))
    >>> low = np.full(30, -3.0)
    >>> rows, cols = pairs_above(x, Tiles(y), low, np.zeros(500), 1.0, cap=2)
    >>> C = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
    >>> bool(np.array_equal(rows * 500 + cols, np.flatnonzero(-C >= low[:, None])))
    True
    >>> pairs_above(x, Tiles(y), low, np.zeros(500), 1.0, max_pairs=10) is None
    True
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    counts, _, _, _, cols, _, _ = _support_pass(x, tiles, low, low, beta, inv_reg, int(cap), 0)
    if max_pairs is not None and counts.sum() > max_pairs:
        return None
    rows_out, cols_out = _stored(counts, cols)
    over = np.flatnonzero(counts > cap)
    if over.size:
        r, c = _rows_with_room(x, tiles, low, beta, inv_reg, over, counts[over])
        rows_out, cols_out = merge_pairs(rows_out, cols_out, r, c)
    return rows_out, cols_out
