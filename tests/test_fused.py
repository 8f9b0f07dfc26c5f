"""The compiled CPU passes (propalign_lite._fused) against dense float64 references."""
import numpy as np
import pytest
from scipy.special import logsumexp

from propalign_lite._blocked import BlockedCost, DenseCost, euclidean_cost, pair_distances
from propalign_lite._fused import TILE, Tiles, distance_matrix, merge_pairs
from propalign_lite._screened import argmax_rows, lse_rows
from propalign_lite._support_pass import support_rows

REG = 0.05


def _points(d, n1, n2, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n1, d)), rng.normal(size=(n2, d)), 2.0 * rng.normal(size=n2)


def _dense_values(x, y, beta):
    C = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))     # numpy, independent
    return beta[None, :] - C / REG


def test_pair_distances_match_numpy():
    x, y, _ = _points(45, 300, 200, seed=12)
    rng = np.random.default_rng(13)
    i, j = rng.integers(0, 300, 5000), rng.integers(0, 200, 5000)
    want = np.sqrt(((x[i] - y[j]) ** 2).sum(1))
    np.testing.assert_allclose(pair_distances(x, y, i, j), want, rtol=1e-14, atol=0)
    assert pair_distances(x, y, i[:0], j[:0]).shape == (0,)


# sizes that are not multiples of four rows or of a tile, one row, one column, 1-d and 12-d
SHAPES = [(1, 1, 1), (3, 7, 5), (12, 37, TILE + 3), (2, 4 * 33 + 2, 2 * TILE), (12, 1, 300)]


@pytest.mark.parametrize("d,n1,n2", SHAPES)
def test_lse_rows_matches_dense_logsumexp(d, n1, n2):
    x, y, beta = _points(d, n1, n2, seed=d * n1 + n2)
    want = logsumexp(_dense_values(x, y, beta), axis=1)
    got = lse_rows(x, Tiles(y), beta, 1 / REG, np.log(n2) + 37.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11)


@pytest.mark.parametrize("spread", [0.02, 1.0])
def test_lse_rows_of_dense_and_sparse_plans_over_many_tiles_match_dense_logsumexp(spread):
    """Over many tiles a group of rows whose screen passes most pairs (a dense plan, small
    ``spread``) goes on with whole float64 tiles; a sparse one stays screened. Both exact."""
    rng = np.random.default_rng(18)
    x, y = spread * rng.normal(size=(37, 3)), spread * rng.normal(size=(7 * TILE + 5, 3))
    beta = rng.normal(size=len(y))
    want = logsumexp(_dense_values(x, y, beta), axis=1)
    got = lse_rows(x, Tiles(y), beta, 1 / REG, np.log(len(y)) + 37.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11)


def _between(V, q):
    """Per-row thresholds halfway between two neighbouring values near quantile ``q`` (no
    value within rounding of a threshold)."""
    S = np.sort(V, axis=1)
    k = min(int(q * V.shape[1]), V.shape[1] - 1)
    return 0.5 * (S[:, k] + S[:, max(k - 1, 0)]) if V.shape[1] > 1 else S[:, 0] - 1.0


@pytest.mark.parametrize("d,n1,n2", SHAPES)
@pytest.mark.parametrize("cap", [1, 16])
def test_support_rows_returns_exactly_the_pairs_above_threshold(d, n1, n2, cap):
    x, y, beta = _points(d, n1, n2, seed=d + n1 * n2)
    V = _dense_values(x, y, beta)
    theta = _between(V, 0.9)                         # about a tenth of each row, some > cap
    rows, cols, depth = support_rows(x, Tiles(y), theta, beta, 1 / REG, cap=cap)
    wr, wc = np.nonzero(V >= theta[:, None])
    np.testing.assert_array_equal(rows, wr)
    np.testing.assert_array_equal(cols, wc)
    assert depth == 0.0


def test_support_rows_is_exact_across_blocks_of_tiles_and_groups_of_rows():
    """The pass takes several groups of rows against each block of TILES_A_BLOCK tiles (to
    read the columns from memory once for all of them): with more columns than a block and
    more rows than a group, partial ones at both ends, every pair must still be found once."""
    import numba
    from propalign_lite._support_pass import TILES_A_BLOCK, _groups_a_block

    n1, n2 = 8 * 41 + 3, (TILES_A_BLOCK + 1) * TILE + 5
    assert _groups_a_block(n1 // 8) > 1 or numba.get_num_threads() > 4
    x, y, beta = _points(3, n1, n2, seed=21)
    V = _dense_values(x, y, beta)
    theta = _between(V, 0.999)
    rows, cols, depth = support_rows(x, Tiles(y), theta, beta, 1 / REG, cap=8,
                                     deeper=float(np.median(theta - _between(V, 0.995))),
                                     max_per_row=1000.0)
    wr, wc = np.nonzero(V >= (theta - depth)[:, None])
    assert depth > 0
    np.testing.assert_array_equal(rows, wr)
    np.testing.assert_array_equal(cols, wc)


@pytest.mark.parametrize("cap", [1, 64])
@pytest.mark.parametrize("max_per_row", [80.0, 40.0, 12.0, 3.0, 0.5])
def test_support_rows_returns_the_deepest_band_that_is_small(cap, max_per_row, monkeypatch):
    """The pass counts the pairs at theta and in bands down to theta - D (D, D/2, D/4, D/8);
    it returns the deepest band's set that holds at most ``max_per_row`` pairs a row, else
    exactly the set at theta (rows that overflowed ``cap`` or the deeper buffer computed
    again). Before the bands, a deeper set over the limit fell back to depth 0."""
    x, y, beta = _points(5, 61, 300, seed=11)
    V = _dense_values(x, y, beta)
    theta = _between(V, 0.95)
    D = float(np.median(theta - _between(V, 0.8)))   # the deeper set: about 60 a row
    # no distances beyond the pass's own: recomputing the stored pairs' values once made the
    # pass over a dense plan (thousands of pairs a row) several times slower
    import propalign_lite._fused as F
    import propalign_lite._support_pass as S

    def no_recompute(*args, **kw):
        raise AssertionError("pair values recomputed outside the pass")
    monkeypatch.setattr(F, "pair_distances", no_recompute)
    monkeypatch.setattr(S, "pair_distances", no_recompute, raising=False)
    rows, cols, depth = support_rows(x, Tiles(y), theta, beta, 1 / REG, cap=cap, deeper=D,
                                     max_per_row=max_per_row)
    fits = [d for d in D * S.DEPTH_BANDS if (V >= (theta - d)[:, None]).sum() <= max_per_row * 61]
    assert depth == (fits[0] if fits else 0.0)
    want = set(zip(*np.nonzero(V >= (theta - depth)[:, None])))
    got = set(zip(rows.tolist(), cols.tolist()))
    assert want <= got                                  # every pair down to the depth
    assert all(V[i, j] >= theta[i] - depth - 1e-2 for i, j in got - want)   # and the slack's
    assert np.all(np.diff(rows * 300 + cols) > 0)       # sorted by row, then column


def test_a_band_is_served_from_the_largest_deeper_pairs_not_the_first():
    """Rows whose whole deeper range overflows the buffer (2 * max_per_row) but whose chosen
    band fits it are taken from the buffer: it must hold the largest pairs of the range (a
    heap by value), not the first ones met, or the band's pairs would be missing."""
    x, y, beta = _points(5, 61, 300, seed=12)
    V = _dense_values(x, y, beta)
    theta = _between(V, 0.97)
    D = float(np.median(theta - _between(V, 0.5)))   # about 150 a row in the whole range
    rows, cols, depth = support_rows(x, Tiles(y), theta, beta, 1 / REG, cap=64, deeper=D,
                                     max_per_row=28.0)        # a buffer of 56 a row
    assert depth == D / 4                  # 26 a row on average (the whole range 149, D/2 56)
    in_range = (V >= (theta - D)[:, None]).sum(1)
    band = (V >= (theta - depth)[:, None]).sum(1)
    assert ((in_range > 56) & (band <= 56)).sum() > 40     # most rows: served from the heap
    want = set(zip(*np.nonzero(V >= (theta - depth)[:, None])))
    assert want <= set(zip(rows.tolist(), cols.tolist()))


def test_pairs_above_returns_every_pair_however_many_a_row_in_batches(monkeypatch):
    """``pairs_above`` (the repairs' rescans) returns every pair at or above each row's
    threshold, whatever a row holds: rows over the first buffer run again in batches of at
    most ``ROOM_ENTRIES`` entries (here several batches, one row with most of the columns);
    beyond ``max_pairs`` it returns None."""
    import propalign_lite._support_pass as S

    x, y, beta = _points(4, 90, 700, seed=21)
    V = _dense_values(x, y, beta)
    low = np.quantile(V, 0.9, axis=1)
    low[[3, 50]] = np.quantile(V[[3, 50]], [0.2, 0.5], axis=1).diagonal()   # 560 and 350
    want = np.flatnonzero(V >= low[:, None])
    monkeypatch.setattr(S, "ROOM_ENTRIES", 1000)
    calls = []
    pass_once = S._support_pass
    monkeypatch.setattr(S, "_support_pass", lambda *a: calls.append(len(a[0])) or pass_once(*a))
    rows, cols = S.pairs_above(x, Tiles(y), low, beta, 1 / REG, cap=20)
    np.testing.assert_array_equal(rows * 700 + cols, want)
    assert calls[0] == 90 and len(calls) >= 3                    # the first pass, then batches
    assert S.pairs_above(x, Tiles(y), low, beta, 1 / REG, max_pairs=want.size) is not None
    assert S.pairs_above(x, Tiles(y), low, beta, 1 / REG, max_pairs=want.size - 1) is None


@pytest.mark.parametrize("d", [1, 3, 4, 5, 12, 45])
def test_the_float32_tile_gives_each_row_its_own_squared_distances(d):
    """The screen's float32 tile (8 rows, four coordinates at a time for all 8 rows, the
    rest one at a time) against float64 squares: every row and column within the float32
    rounding that the screen's slack assumes, relative (d + 2) 2^-24."""
    from propalign_lite._screened import ROWS, _squared_tile32

    rng = np.random.default_rng(d)
    x8 = (3 * rng.normal(size=(ROWS, d))).astype(np.float32)
    yt = (3 * rng.normal(size=(d, TILE))).astype(np.float32)
    acc = np.full((ROWS, TILE), np.nan, dtype=np.float32)
    _squared_tile32(x8, yt, acc)
    want = ((x8[:, :, None].astype(np.float64) - yt[None].astype(np.float64)) ** 2).sum(1)
    assert np.all(np.abs(acc - want) <= (d + 2) * 2.0 ** -24 * want)


def test_the_deeper_buffer_is_a_heap_of_the_largest_keys():
    from propalign_lite._support_pass import _heap_push

    rng = np.random.default_rng(0)
    keys, cols = np.empty(16, dtype=np.float32), np.empty(16, dtype=np.int32)
    stream = rng.normal(size=500).astype(np.float32)
    stream[100:110] = stream[5]                         # ties with a held key
    for n, k in enumerate(stream):
        _heap_push(keys, cols, n, k, n)
    np.testing.assert_array_equal(np.sort(keys), np.sort(stream)[-16:])
    np.testing.assert_array_equal(stream[cols], keys)   # each key with its own column


def test_blocked_cost_uses_the_fused_passes_and_agrees_with_the_dense_cost():
    x, y, beta = _points(12, 203, 517, seed=3)
    alpha = np.random.default_rng(4).normal(size=203)
    online, dense = BlockedCost(x, y), DenseCost(_dense_values(x, y, 0 * beta) * -REG)
    assert online.fused and not dense.fused
    for axis in (0, 1):
        np.testing.assert_allclose(online.lse(alpha, beta, REG, axis=axis),
                                   dense.lse(alpha, beta, REG, axis=axis), rtol=0, atol=1e-10)
    level = -60.0
    r, c, lp = online.support(alpha, beta, REG, level)
    rd, cd, lpd = dense.support(alpha, beta, REG, level)
    above = lp >= level
    np.testing.assert_array_equal(r[above], rd[lpd >= level])
    np.testing.assert_array_equal(c[above], cd[lpd >= level])
    # below level: within the margin, or the largest entry of a row or column with none above
    L = dense.C * (-1 / REG) + alpha[:, None] + beta[None, :]
    low = lp < level - 1e-6
    assert low.any()
    is_top = (L[r, c] == L.max(1)[r]) | (L[r, c] == L.max(0)[c])
    assert is_top[low].all()


def test_solver_candidates_give_a_fresh_passs_support_while_potentials_rise_less_than_depth():
    """The solver's support is rebuilt from the candidates of its last pass (no new pass)
    while the potentials rose by at most the candidates' depth: the pairs at or above the
    level are then exactly those a fresh pass finds; a larger rise asks for a pass."""
    from propalign_lite._kernel_support import Candidates

    x, y, _ = _points(3, 150, 170, seed=5)
    rng = np.random.default_rng(6)
    alpha, beta = rng.normal(size=150), rng.normal(size=170)
    L = alpha[:, None] + _dense_values(x, y, beta)
    level, D = float(np.quantile(L, 0.98)), 4.0
    cand = Candidates(BlockedCost(x, y), alpha, beta, REG, level, deeper=D)
    assert cand.depth == D and cand.rows.size > (L >= level).sum()
    a2 = alpha + rng.uniform(-D, D / 2, size=alpha.size)
    b2 = beta + rng.uniform(-D, D / 2, size=beta.size)
    assert cand.holds(a2, b2)
    r, c, lp = cand.support(a2, b2, level)
    rf, cf, lpf = BlockedCost(x, y).support(a2, b2, REG, level)
    np.testing.assert_array_equal(r[lp >= level], rf[lpf >= level])
    np.testing.assert_array_equal(c[lp >= level], cf[lpf >= level])
    assert np.isin(np.arange(150), r).all() and np.isin(np.arange(170), c).all()
    assert not cand.holds(alpha + 0.6 * D, beta + 0.6 * D)
    assert not cand.holds(alpha, beta + 1.1 * D)


def _candidates(n1, n2, seed):
    """3-d points, random potentials, a level keeping 2 % of the pairs, and the candidates
    of one pass down to D = 4 below it."""
    from propalign_lite._kernel_support import Candidates

    x, y, _ = _points(3, n1, n2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    alpha, beta = rng.normal(size=n1), rng.normal(size=n2)
    L = alpha[:, None] + _dense_values(x, y, beta)
    level, D = float(np.quantile(L, 0.98)), 4.0
    cost = BlockedCost(x, y)
    return x, y, alpha, beta, L, level, D, cost, Candidates(cost, alpha, beta, REG, level,
                                                             deeper=D)


def test_a_repair_rescans_rows_that_rose_into_hundreds_of_pairs(monkeypatch):
    """Rows whose potentials rose far hold, at the moment, hundreds of pairs down to the
    candidates' depth; the repair must keep all of them rather than give way to a whole
    pass. At n = 10^6 the rescans asked for 256 pairs a row at most and returned None, and
    both repairs of that run became passes over all 10^12 pairs (RESCAN_PAIRS is made
    small here as the rows' share of it was there)."""
    import propalign_lite._blocked as BL
    import propalign_lite._kernel_support as KS

    monkeypatch.setattr(KS, "RESCAN_PAIRS", 64, raising=False)
    monkeypatch.setattr(BL, "RESCAN_PAIRS", 64, raising=False)      # where it once lived
    x, y, alpha, beta, L, level, D, cost, cand = _candidates(150, 600, seed=8)
    risen = np.array([7, 70, 140])
    # each risen row now has 400 pairs above level - D / 2
    alpha[risen] += level - D / 2 - np.sort(L[risen], axis=1)[:, -400]
    L = alpha[:, None] + _dense_values(x, y, beta)
    assert ((L[risen] >= level - D).sum(1) > 400).all() and not cand.holds(alpha, beta)
    assert cand.repair(cost, alpha, beta, REG, level) and cand.holds(alpha, beta)
    r, c, lp = cand.support(alpha, beta, level)
    rf, cf, lpf = cost.support(alpha, beta, REG, level)
    np.testing.assert_array_equal(r[lp >= level], rf[lpf >= level])
    np.testing.assert_array_equal(c[lp >= level], cf[lpf >= level])
    # a rescan that would return more than it may: None (the solver makes a whole pass)
    empty = np.zeros(0, dtype=np.int64)
    held = cost.rescan(alpha, beta, REG, level, D, risen, empty, max_pairs=10 ** 6)[0].size
    assert held == (L[risen] >= level - D).sum() > 1200
    assert cost.rescan(alpha, beta, REG, level, D, risen, empty, max_pairs=held) is not None
    assert cost.rescan(alpha, beta, REG, level, D, risen, empty, max_pairs=held - 1) is None


def test_the_compiled_filter_keeps_the_level_and_the_largest_of_lonely_rows_and_columns():
    """``_filter_support`` against numpy: pairs at or above the level, plus every pair equal
    to its row's (column's) largest in rows (columns) with none, ties included, in order."""
    from propalign_lite._kernel_support import _filter_support

    rng = np.random.default_rng(3)
    n1, n2 = 40, 30
    keys = np.sort(rng.choice(n1 * n2, 500, replace=False))
    r, c = keys // n2, keys % n2
    logp0 = np.round(rng.normal(size=500), 1)            # ties within rows and columns
    da, db = np.round(rng.normal(size=n1), 1), np.round(rng.normal(size=n2), 1)
    for level in (1.5, 3.0, -10.0):
        got = _filter_support(r, c, logp0, da, db, level, n1, n2)
        v = logp0 + da[r] + db[c]
        keep = v >= level
        row_max, col_max = np.full(n1, -np.inf), np.full(n2, -np.inf)
        np.maximum.at(row_max, r, v)
        np.maximum.at(col_max, c, v)
        lonely_r = np.bincount(r[keep], minlength=n1) == 0
        lonely_c = np.bincount(c[keep], minlength=n2) == 0
        keep |= lonely_r[r] & (v == row_max[r])
        keep |= lonely_c[c] & (v == col_max[c])
        for a, b in zip(got, (r[keep], c[keep], v[keep])):
            np.testing.assert_array_equal(a, b)
        assert level > 0 or keep.all()


@pytest.mark.parametrize("owned", [True, False])
def test_the_repair_merge_moves_the_kept_values_and_takes_the_fresh_pairs_in_place(owned):
    """``merge_repaired`` against numpy: the kept candidates, their values moved by the
    potentials' changes, and the fresh pairs, sorted by row then column; a fresh pair
    replaces a kept one at the same place. Arrays that own their data are grown and merged
    in place (the same objects come back: no second copy of the candidates, which made the
    solve's peak at 10^6); views are copied, and what they view is left as it was."""
    from propalign_lite._kernel_support import merge_repaired

    rng = np.random.default_rng(4)
    n1, n2 = 50, 60
    keys = np.sort(rng.choice(n1 * n2, 700, replace=False))
    r, c, logp0 = (keys // n2).astype(np.int32), (keys % n2).astype(np.int32), rng.normal(size=700)
    da, db = rng.normal(size=n1), rng.normal(size=n2)
    keep = rng.random(700) < 0.7
    fresh = np.sort(np.r_[rng.choice(n1 * n2, 200, replace=False), keys[keep][:5]])
    fresh = np.unique(fresh)
    fr, fc, fv = fresh // n2, fresh % n2, rng.normal(size=fresh.size)
    want = dict(zip(keys[keep], (logp0 + da[r] + db[c])[keep]))
    want.update(zip(fresh, fv))
    order = np.array(sorted(want))
    if owned:
        arrays = [r.copy(), c.copy(), logp0.copy()]
        ids = [id(a) for a in arrays]
    else:
        parents = [np.r_[r, 0], np.r_[c, 0], np.r_[logp0, 0.0]]
        arrays = [p[:-1] for p in parents]
    rows, cols, vals = merge_repaired(arrays, keep, da, db, fr, fc, fv)
    np.testing.assert_array_equal(rows.astype(np.int64) * n2 + cols, order)
    np.testing.assert_array_equal(vals, [want[k] for k in order])
    assert rows.dtype == np.int32 and cols.dtype == np.int32
    if owned:
        assert [id(a) for a in (rows, cols, vals)] == ids
    else:
        np.testing.assert_array_equal(parents[0][:-1], r)
        np.testing.assert_array_equal(parents[2][:-1], logp0)


def test_repaired_candidates_give_a_fresh_passs_support_after_a_few_rows_and_columns_rise():
    """When a few rows and columns rise past the candidates' depth, ``repair`` rescans
    those alone; the support filtered afterwards is exactly a fresh pass's, round after round
    (the slacks of the rows and columns not rescanned add up across the rounds)."""
    from propalign_lite._kernel_support import Candidates

    x, y, alpha, beta, L, level, D, cost, cand = _candidates(150, 170, seed=5)
    rng = np.random.default_rng(7)
    repairs = passes = 0
    for _ in range(10):
        alpha = alpha + rng.uniform(-D / 20, D / 8, size=alpha.size)
        beta = beta + rng.uniform(-D / 20, D / 8, size=beta.size)
        alpha[rng.choice(150, 3, replace=False)] += D
        beta[rng.choice(170, 3, replace=False)] += D
        if not cand.holds(alpha, beta):
            before = cand.rescanned
            if cand.repair(cost, alpha, beta, REG, level):
                assert 0 < cand.rescanned - before < 100 and cand.holds(alpha, beta)
                repairs += 1
            else:          # the slacks of all rows and columns grew: a whole pass
                cand = Candidates(cost, alpha, beta, REG, level, deeper=D)
                passes += 1
        r, c, lp = cand.support(alpha, beta, level)
        rf, cf, lpf = cost.support(alpha, beta, REG, level)
        np.testing.assert_array_equal(r[lp >= level], rf[lpf >= level])
        np.testing.assert_array_equal(c[lp >= level], cf[lpf >= level])
        np.testing.assert_allclose(lp[lp >= level], lpf[lpf >= level], rtol=0, atol=1e-9)
        assert np.isin(np.arange(150), r).all() and np.isin(np.arange(170), c).all()
    assert repairs + passes == 10 and repairs >= 4


def test_argmax_rows_matches_numpy():
    x, y, beta = _points(12, 37, TILE + 5, seed=8)
    V = _dense_values(x, y, beta)
    np.testing.assert_array_equal(argmax_rows(x, Tiles(y), beta, 1 / REG), V.argmax(1))


def test_rows_and_columns_without_a_pair_get_their_largest_entry_in_one_pass(monkeypatch):
    """Above every entry's level each row and column keeps its largest entry. These were
    once found one row at a time, each appended to the whole support (a copy of it every
    time): minutes for a real-logit group with many such rows. Now one compiled pass, and the
    exact costs are computed once, for the kept pairs."""
    x, y, beta = _points(4, 90, 70, seed=9)
    alpha = np.random.default_rng(10).normal(size=90)
    cost = BlockedCost(x, y)
    L = alpha[:, None] + _dense_values(x, y, beta)
    calls = []
    exact = cost.exact_cost
    monkeypatch.setattr(cost, "exact_cost", lambda i, j: calls.append(1) or exact(i, j))
    rows, cols, lp = cost.support(alpha, beta, REG, float(L.max()) + 1.0)   # all lonely
    want = set(zip(range(90), L.argmax(1))) | set(zip(L.argmax(0), range(70)))
    assert set(zip(rows.tolist(), cols.tolist())) == want
    key = rows * 70 + cols
    assert (np.diff(key) > 0).all()                  # sorted by row, then column; no repeats
    assert len(calls) == 1


@pytest.mark.parametrize("na,nb", [(0, 0), (0, 7), (9, 0), (300, 200), (1000, 1000)])
def test_merge_pairs_is_the_sorted_union(na, nb):
    """The support's pieces (pairs at the level, deeper pairs, rows run again) are merged in
    linear time; the result must be what sorting their union gives."""
    rng = np.random.default_rng(na + nb)
    n2 = 40

    def pairs(n):
        key = np.unique(rng.integers(0, 50 * n2, size=n))     # sorted, some shared with other
        return key // n2, key % n2
    ra, ca = pairs(na)
    rb, cb = pairs(nb)
    rows, cols = merge_pairs(ra, ca, rb, cb)
    want = np.union1d(ra * n2 + ca, rb * n2 + cb)
    np.testing.assert_array_equal(rows * n2 + cols, want)
    assert rows.dtype == cols.dtype == np.int64


@pytest.mark.parametrize("d,n1,n2", SHAPES)
def test_distance_matrix_and_log_kernel_hold_every_pair_exactly(d, n1, n2):
    """The held kernel of a dense plan: every entry, as exact as the kept entries' values."""
    x, y, beta = _points(d, n1, n2, seed=n1 + d)
    i, j = np.repeat(np.arange(n1), n2), np.tile(np.arange(n2), n1)
    D = distance_matrix(x, Tiles(y))
    np.testing.assert_allclose(D.ravel(), pair_distances(x, y, i, j), rtol=1e-14, atol=1e-14)
    alpha = np.random.default_rng(d).normal(size=n1)
    cost = BlockedCost(x, y)
    want = alpha[:, None] + beta[None, :] - cost.exact_cost(i, j).reshape(n1, n2) / REG
    for c in (cost, BlockedCost(x, y, backend="torch"), DenseCost(euclidean_cost(x, y))):
        np.testing.assert_allclose(c.log_kernel(alpha, beta, REG), want, rtol=0, atol=1e-9)


def _far_points(seed):
    """Points far from the origin: rounding them to float32 moves a distance by ~1e-4, i.e.
    ~2e-3 in log units at reg 0.05, far more than the gaps the tests below put at thresholds."""
    rng = np.random.default_rng(seed)
    return 500.0 + rng.normal(size=(40, 6)), 500.0 + rng.normal(size=(300, 6))


def _exact_values(x, y, beta):
    i, j = np.repeat(np.arange(len(x)), len(y)), np.tile(np.arange(len(y)), len(x))
    return beta[None, :] - pair_distances(x, y, i, j).reshape(len(x), len(y)) * (1 / REG)


@pytest.mark.parametrize("gap", [-1e-7, 1e-7])
def test_the_float32_screen_leaves_pairs_at_a_threshold_to_the_exact_distance(gap):
    """Every pass first screens a tile in float32 and computes exactly only the pairs the
    screen cannot decide. A pair 1e-7 log units from its threshold must be decided by the
    exact float64 value, on points whose float32 distances are off by 1e-4."""
    x, y = _far_points(14)
    rng = np.random.default_rng(15)
    beta = rng.normal(size=300)
    V = _exact_values(x, y, beta)
    at = rng.integers(0, 300, size=40)
    theta = V[np.arange(40), at] + gap                  # each row: one pair just above / below
    for deeper in (0.0, 3.0):
        rows, cols, depth = support_rows(x, Tiles(y), theta, beta, 1 / REG, cap=4,
                                         deeper=deeper, max_per_row=300.0)
        assert depth == deeper
        wr, wc = np.nonzero(V >= (theta - depth)[:, None])
        np.testing.assert_array_equal(rows, wr)
        np.testing.assert_array_equal(cols, wc)
    with_pair = set(zip(rows.tolist(), cols.tolist()))
    assert all(((i, at[i]) in with_pair) for i in range(40))      # deeper by 3: always in


def test_a_band_counts_a_pair_at_its_edge_although_float32_misplaces_it():
    """The bands count by float32 values (off by ~2e-3 log units on these points): widened
    by the screen's slack, a band's count includes every pair 1e-7 inside its depth, so a
    row whose band fits the buffer really holds all of its pairs."""
    from propalign_lite._support_pass import _support_pass

    x, y = _far_points(18)
    rng = np.random.default_rng(19)
    beta = rng.normal(size=300)
    V = _exact_values(x, y, beta)
    at = rng.integers(0, 300, size=40)
    d = 2.0
    theta = V[np.arange(40), at] + d - 1e-7             # each row: one pair just inside theta - d
    counts, in_range, band, *_ = _support_pass(x, Tiles(y), theta, theta - 4 * d, beta,
                                               1 / REG, 8, 64, (d,))
    exact = ((V >= (theta - d)[:, None]) & (V < theta[:, None])).sum(1)
    assert np.all(band[:, 0] >= exact) and np.all(band[:, 0] <= in_range)


@pytest.mark.parametrize("gap", [-1e-7, 1e-7])
def test_the_float32_screen_leaves_a_near_tie_for_the_largest_entry_to_the_exact_value(gap):
    """A column in a later tile whose value is 1e-7 above (below) the best so far must (must
    not) become the row's argmax, although float32 cannot tell the two apart."""
    x, y = _far_points(16)
    beta = np.random.default_rng(17).normal(size=300)
    V = _exact_values(x, y, beta)
    for i in range(0, 40, 5):
        b = beta.copy()
        first = int(np.argmax(V[i, :TILE]))             # the best of the first tile...
        b[TILE:] -= 100.0                               # ...is the best of the row,
        rival = TILE + i % (300 - TILE)                 # but for one column of tile 2
        b[rival] = beta[rival] + (V[i, first] - V[i, rival]) + gap
        Vi = _exact_values(x[i:i + 1], y, b)[0]
        want = rival if Vi[rival] > Vi[first] else first
        assert want == (rival if gap > 0 else first)
        assert argmax_rows(x[i:i + 1], Tiles(y), b, 1 / REG)[0] == want


def test_matching_leaves_torchs_thread_count_as_the_user_set_it():
    # numba's OpenMP pool and torch share one OpenMP runtime: starting the pool used to reset
    # torch's thread count (1 -> all cores), and the next classifier rounded differently.
    # A fresh process, since the pool starts once per process.
    code = ("import torch; torch.set_num_threads(1)\n"
            "import numpy as np\n"
            "from propalign_lite import PropensityClassifier, match\n"
            "rng = np.random.default_rng(0); x = rng.normal(size=(100, 4))\n"
            # torch's pool runs first (a classifier), then numba's starts (a match)
            "PropensityClassifier('mlp', epochs=1, width=8).fit(x, np.arange(100) % 2)\n"
            "match(x, x + 0.1)\n"
            "print(torch.get_num_threads())\n")
    assert _last_line_of_fresh_python(code) == "1"


def test_torch_blocks_keep_deeper_candidates_while_they_are_few_enough():
    # the GPU's passes (torch blocks) now keep the pairs down to `deeper` below the level, as
    # the compiled passes do, so that later rebuilds can be filtered from them; and only the
    # level's pairs once the deeper set passes DEEP_PAIRS_PER_ROW a row on average
    from propalign_lite import _blocked

    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(400, 3))
    alpha, beta = np.zeros(60), rng.normal(size=400)
    cost = BlockedCost(x, y, backend="torch", block_size=4000)     # 10 rows a block
    V = alpha[:, None] + beta[None, :] - cost.exact_cost(
        np.repeat(np.arange(60), 400), np.tile(np.arange(400), 60)).reshape(60, 400) / REG
    level = np.quantile(V, 0.98)
    margin = cost.cost_err / REG + 0.05
    for deeper, cap, want_depth in ((8.0, 64, 8.0), (8.0, 1, 0.0), (0.0, 64, 0.0)):
        _blocked.DEEP_PAIRS_PER_ROW, old = cap, _blocked.DEEP_PAIRS_PER_ROW
        try:
            rows, cols, logp = cost.support(alpha, beta, REG, level, deeper=deeper)
        finally:
            _blocked.DEEP_PAIRS_PER_ROW = old
        assert cost.last_depth == want_depth
        kept = set(zip(rows.tolist(), cols.tolist()))
        # every pair down to the depth is there, and nothing far below it
        assert set(zip(*np.nonzero(V >= level - want_depth))) <= kept
        assert (logp >= level - want_depth - margin - 1e-9).sum() >= len(kept) - 60 - 400
        np.testing.assert_allclose(logp, V[rows, cols], rtol=0, atol=1e-9)
    # the log-sum-exps over several blocks (the column one keeps its running max on the
    # device), from float32 distances: about 1e-6 relative, 4e-5 in log units here
    for axis in (0, 1):
        np.testing.assert_allclose(cost.lse(alpha, beta, REG, axis=axis),
                                   logsumexp(V, axis=axis), rtol=0, atol=1e-4)


def test_a_gpu_takes_larger_blocks_unless_a_size_is_given():
    from propalign_lite._blocked import DEFAULT_BLOCK, GPU_BLOCK, _block_entries

    assert _block_entries(DEFAULT_BLOCK, "cuda") == _block_entries(DEFAULT_BLOCK, "cuda:1") \
        == GPU_BLOCK > DEFAULT_BLOCK
    assert _block_entries(DEFAULT_BLOCK, "cpu") == DEFAULT_BLOCK
    assert _block_entries(5000, "cuda") == 5000


def test_importing_the_package_leaves_a_process_free_to_fork():
    # numba terminates a forked child that uses the OpenMP pool of its parent: the pool must
    # not start at import (a first fix of the thread count above started it there), so that
    # `import propalign_lite` then multiprocessing with fork still works
    code = ("import multiprocessing as mp, numpy as np\n"
            "import propalign_lite\n"
            "from propalign_lite._fused import pair_distances\n"
            "def child(q):\n"
            "    x = np.ones((300, 3)); i = np.arange(300)\n"
            "    q.put(float(pair_distances(x, x, i, i).sum()))\n"
            "ctx = mp.get_context('fork'); q = ctx.Queue()\n"
            "p = ctx.Process(target=child, args=(q,)); p.start()\n"
            "print(q.get(timeout=60)); p.join()\n")
    assert _last_line_of_fresh_python(code) == "0.0"


def _last_line_of_fresh_python(code: str) -> str:
    """The last line ``code`` prints in a new interpreter (which must exit cleanly)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_segment_logsumexp_and_row_normalised_match_scipy_on_unsorted_segments():
    """Segments in any order, empty ones, -inf values and values far below their group's
    largest: the compiled sums equal scipy's per group, and rows normalise to one."""
    from propalign_lite._fused import row_normalised, segment_logsumexp
    rng = np.random.default_rng(3)
    n, size = 40, 2000
    seg = rng.integers(0, n - 5, size=size)            # the last five groups stay empty
    values = rng.normal(scale=300.0, size=size)
    values[rng.random(size) < 0.05] = -np.inf
    values[seg == n - 6] = -np.inf                     # one group of -inf values only
    lse, top = segment_logsumexp(values, seg, n)
    for g in range(n):
        v = values[seg == g]
        want = logsumexp(v) if v.size else -np.inf
        assert np.isclose(lse[g], want, rtol=1e-12) or (lse[g] == want == -np.inf)
        assert top[g] == (v.max() if v.size else -np.inf)
    vals, log_row_sum = row_normalised(values, seg, n)
    np.testing.assert_array_equal(log_row_sum, lse)
    sums = np.bincount(seg, weights=vals, minlength=n)
    live = np.isfinite(lse)
    np.testing.assert_allclose(sums[live], 1.0, rtol=1e-12)
    assert np.all(sums[~live] == 0) and np.all(np.isfinite(vals))
