"""The measures of benchmarks/dense_plans.py (the Performance page's dense-plan records)."""
import importlib.util as iu
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = iu.spec_from_file_location("dense_plans", ROOT / "benchmarks" / "dense_plans.py")
    module = iu.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pairs_for_mass_counts_the_largest_entries_that_hold_all_but_the_left_out(bench):
    plan = np.array([[0.5, 0.2], [0.2, 0.1]])               # sorted: 0.5 0.2 0.2 0.1
    assert bench.pairs_for_mass(plan, 1e-6) == 4            # 0.9 of the mass is not enough
    assert bench.pairs_for_mass(plan, 0.1) == 3
    assert bench.pairs_for_mass(plan, 0.3) == 2
    assert bench.pairs_for_mass(2 * plan, 0.3) == 2          # shares, not absolute masses
    assert bench.pairs_for_mass(plan, 0.5) == 1


def test_cut_keeps_the_largest_entries_and_normalises_rows(bench):
    plan = np.array([[0.4, 0.1, 0.05], [0.2, 0.15, 0.1]])
    out = bench.cut(plan, 3)
    np.testing.assert_allclose(out, [[1.0, 0.0, 0.0], [0.2 / 0.35, 0.15 / 0.35, 0.0]])


def test_row_partners_is_the_median_count_for_a_share_of_each_row(bench):
    plan = np.array([[0.97, 0.02, 0.01], [1.2, 0.6, 0.2], [0.5, 0.4, 0.1]])   # row 2 sums to 2
    # rows need 1, 3 and 3 partners for 95 % of their mass; 1, 2, 2 for 85 %
    assert bench.row_partners(plan, 0.95) == 3
    assert bench.row_partners(plan, 0.85) == 2
    assert bench.row_partners(plan, 0.45) == 1


def test_median_r_is_the_median_over_columns_of_pearson_r(bench):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(50, 3))
    moved = np.column_stack([truth[:, 0], -truth[:, 1], truth[:, 2] + rng.normal(size=50)])
    r = [np.corrcoef(moved[:, j], truth[:, j])[0, 1] for j in range(3)]
    assert bench.median_r(moved, truth) == pytest.approx(np.median(r))
    assert bench.median_r(moved, truth) not in (1.0, -1.0)
