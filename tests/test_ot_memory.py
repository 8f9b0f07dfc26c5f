"""The memory model of propalign_lite.ot_memory."""
import tracemalloc

import numpy as np
import pytest

from propalign_lite import match_groups
from propalign_lite.ot_memory import (_INPUT_BYTES, BYTES_PER_DENSE_ENTRY,
                                      BYTES_PER_HELD_ENTRY, BYTES_PER_PAIR,
                                      estimate_groups_memory, estimate_memory)


def test_grows_with_size_and_support():
    small = estimate_memory(1000, 1000, 12)
    assert small < estimate_memory(10 ** 5, 10 ** 5, 12) < estimate_memory(10 ** 6, 10 ** 6, 12)
    assert estimate_memory(10 ** 5, 10 ** 5, 12, nnz_per_row=8) \
        < estimate_memory(10 ** 5, 10 ** 5, 12, nnz_per_row=16)


#: (n, d, kept pairs a row, GB of the peak resident memory's rise over the state before the
#: solve, coupling included): benchmarks/ot_bench.py on 2026-12-05 (reg 0.05; 0.1 for the
#: rows with 181 and 375 pairs a row; 10^6: 6114e5e), as in the module doc
MEASURED = [(10 ** 5, 12, 5.2, 0.358), (2 * 10 ** 5, 12, 9.7, 0.586),
            (3 * 10 ** 5, 12, 14.6, 0.907), (10 ** 6, 12, 45.5, 3.17),
            (10 ** 5, 12, 180.9, 0.654), (2 * 10 ** 5, 12, 375.2, 2.426),
            (10 ** 5, 45, 1.0, 0.279), (2 * 10 ** 5, 45, 1.0, 0.509)]


@pytest.mark.parametrize("n, d, per_row, measured", MEASURED)
def test_the_model_is_close_to_every_measured_solve(n, d, per_row, measured):
    # within -25 % to +30 % (the fit's residuals are -20 % to +25 %); the measured rise
    # leaves out the inputs (two n x d float64 arrays), which the model counts
    inputs = 2 * n * d * _INPUT_BYTES
    est = (estimate_memory(n, n, d, nnz_per_row=per_row) - inputs) / 2 ** 30
    assert 0.75 * measured <= est <= 1.3 * measured, (est, measured)


def test_the_fitted_constants_come_from_the_measured_solves():
    """Least squares of the rise on (1, rows, pairs), after the solver's copies of the
    inputs: the module's rounded constants are what the table gives."""
    from propalign_lite.ot_memory import _COPY_BYTES, BYTES_PER_ROW, FIXED_BYTES

    n, d, per_row, gb = (np.array(v, dtype=float) for v in zip(*MEASURED))
    A = np.c_[np.ones_like(n), n, n * per_row]
    coef = np.linalg.lstsq(A, gb * 2 ** 30 - _COPY_BYTES * d * 2 * n, rcond=None)[0]
    np.testing.assert_allclose(coef, [FIXED_BYTES, BYTES_PER_ROW, BYTES_PER_PAIR], rtol=0.03)


@pytest.mark.parametrize("bad", [dict(n1=0), dict(d=1.5), dict(nnz_per_row=float("nan"))])
def test_bad_input(bad):
    args = dict(n1=10, n2=10, d=2, nnz_per_row=4.0) | bad
    with pytest.raises(ValueError):
        estimate_memory(args.pop("n1"), args.pop("n2"), args.pop("d"), **args)


# ------------------------------------------------------------------ estimate_groups_memory
def test_groups_estimate_counts_the_largest_groups_at_once_and_the_kept_couplings():
    t1 = ["a"] * 30 + ["b"] * 20 + ["only1"] * 500
    t2 = ["a"] * 40 + ["b"] * 10 + ["only2"] * 500
    dense, kept = BYTES_PER_DENSE_ENTRY, 8 * (30 * 40 + 20 * 10)
    assert estimate_groups_memory(t1, t2) == dense * 30 * 40 + kept
    assert estimate_groups_memory(t1, t2, n_jobs=2) == dense * (30 * 40 + 20 * 10) + kept
    assert estimate_groups_memory(["x"], ["y"]) == 0                 # no shared group
    # a group above dense_max is solved online: the online model, d = 2 shared groups
    online = estimate_groups_memory(t1, t2, dense_max=1000)
    assert online == estimate_memory(30, 40, 2) + 12 * 16 * 40 + 8 * 200   # b: smaller peak


def test_groups_estimate_bounds_the_measured_peak_of_a_dense_match():
    rng = np.random.default_rng(0)
    t = np.repeat([0, 1], [1200, 300])
    x, y = rng.normal(size=(1500, 12)), rng.normal(size=(1500, 12))
    tracemalloc.start()
    try:
        match_groups(x, t, y, t, method="ot", reg=0.05)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est = estimate_groups_memory(t, t)
    assert peak <= est <= 2 * peak, (peak, est)


def test_align_prints_and_keeps_its_estimate(capsys):
    from test_align import make, run

    a1, a2 = make(90, 6, seed=1), make(60, 5, seed=2, prefix="p")
    aln = run(a1, a2, progress=True)
    assert aln.memory_estimate_ == estimate_groups_memory(a1.obs["kind"], a2.obs["kind"])
    dense = estimate_groups_memory(a1.obs["kind"], a2.obs["kind"], dense_plans=True)
    out = capsys.readouterr().out
    assert f"about {aln.memory_estimate_ / 2 ** 30:.2f} GB if their plans are sparse" in out
    assert f"up to {dense / 2 ** 30:.2f} GB if the largest are dense" in out


def test_dense_plans_are_modelled_as_held_kernels_until_they_exceed_max_nnz():
    """An atlas run printed 1.65 GB and peaked at 9.3 GB: its largest groups' plans were
    dense. The dense model counts their held kernels."""
    t = ["a"] * 3000 + ["b"] * 500
    sparse_gb = estimate_groups_memory(t, t, dense_max=10 ** 6)
    dense_gb = estimate_groups_memory(t, t, dense_max=10 ** 6, dense_plans=True)
    held = BYTES_PER_HELD_ENTRY * 3000 ** 2
    assert dense_gb == held + int(24 * 0.4 * 3000 ** 2) + 8 * 500 ** 2 > 2 * sparse_gb
    # above max_nnz kept pairs the solver passes over all pairs instead: the sparse model
    assert estimate_groups_memory(t, t, dense_max=10 ** 6, dense_plans=True,
                                  max_nnz=10 ** 6) == sparse_gb


def test_held_model_bounds_the_measured_peak_of_a_dense_online_match():
    from propalign_lite.sinkhorn import sinkhorn_online

    rng = np.random.default_rng(0)
    x, y = 0.3 * rng.normal(size=(1500, 4)), 0.3 * rng.normal(size=(1500, 4))
    # compile the passes first: numba's compiler allocates Python objects, which tracemalloc
    # counts (run alone, this test once measured 160 MB against a model of 135 MB)
    sinkhorn_online(x[:300], y[:300], 0.05, tol=1e-6, support="blocked")
    tracemalloc.start()
    try:
        res = sinkhorn_online(x, y, 0.05, tol=1e-6, support="blocked")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    kept = res.nnz / 1500 ** 2
    assert kept > 0.3                                  # held whole
    from propalign_lite.ot_memory import _HELD_BYTES_PER_ENTRY, _HELD_BYTES_PER_KEPT

    model = (_HELD_BYTES_PER_ENTRY + _HELD_BYTES_PER_KEPT * kept) * 1500 ** 2
    assert peak <= 1.1 * model and model <= 2 * peak, (peak, model, kept)


def test_groups_estimate_reads_labels_and_n_jobs_as_match_groups_does():
    # labels 1 and "1" are different groups for match_groups, so they share nothing here
    assert estimate_groups_memory([1, 1], ["1", "1"]) == 0
    with pytest.raises(ValueError, match="n_jobs"):
        estimate_groups_memory([0, 0], [0, 0], n_jobs=0)
    with pytest.raises(ValueError):
        match_groups(np.zeros((2, 1)), [0, 0], np.zeros((2, 1)), [0, 0], n_jobs=0)
