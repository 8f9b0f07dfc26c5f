"""Exact propensity scores of the ball images: Monte Carlo agreement, structure, the unit."""
import numpy as np
import pytest

from propalign_lite.datasets.balls import INTERVENTION_VALUES, make_balls, sample_latents
from propalign_lite.datasets.balls_scores import (exact_likelihood, exact_propensity,
                                                  pixel_cells)


@pytest.mark.parametrize("view", [1, 2])
def test_exact_scores_match_monte_carlo_frequencies(view):
    """On 8-px images (big cells, many scenes per cell), P(t | cells) estimated by counting
    400,000 simulated scenes agrees with the exact score within sampling error."""
    S = 8
    z, t, _, _ = sample_latents(400_000, random_state=1)
    c = np.concatenate([pixel_cells(z[:, :2], view, S), pixel_cells(z[:, 2:], view, S)], 1)
    key = ((c[:, 0] * S + c[:, 1]) * S + c[:, 2]) * S + c[:, 3]
    cells, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    pi = exact_propensity(z, t, view=view, image_size=S)
    zscores = []
    for j in np.flatnonzero(counts >= 500):
        rows = np.flatnonzero(inverse == j)
        freq = np.bincount(t[rows], minlength=12) / rows.size
        if (freq > 0).sum() >= 2:                       # a cell shared by treatments
            assert np.allclose(pi[rows], pi[rows[0]])  # the score is a function of the cells
            p = pi[rows[0]]
            se = np.sqrt(np.maximum(p * (1 - p), 1e-4) / rows.size)
            zscores.append((np.abs(freq - p) / se).max())
    assert len(zscores) >= 20
    # sampling error only: no cell is off by more than 4.5 standard errors (of ~12 x cells)
    assert max(zscores) < 4.5, sorted(zscores)[-5:]


def test_scores_are_one_hot_without_coincidence():
    z, t, k, v = sample_latents(3000, random_state=0)
    pi = exact_propensity(z, t, view=1, image_size=64)
    np.testing.assert_allclose(pi.sum(1), 1.0)
    assert (pi[np.arange(len(t)), t] > 0).all()
    # a scene whose non-intervened coordinates sit in no cell of an intervention value
    cells = np.floor(64 * z).astype(int)
    value_cells = np.floor(64 * np.asarray(INTERVENTION_VALUES)).astype(int)
    free = np.ones_like(cells, dtype=bool)
    free[np.arange(len(k)), k] = False
    coincident = (np.isin(cells, value_cells) & free).any(1)
    assert (pi[~coincident].max(1) == 1.0).all()
    assert (pi[coincident].max(1) < 1.0).any()
    assert 0.7 < (~coincident).mean() < 0.95


def test_unit_uses_the_test_scenes_latents():
    """``synthetic.exact`` rebuilds the test latents with ``sample_latents``: they must be the
    ones ``make_balls`` renders from the same seed."""
    data = make_balls(20, image_size=16, random_state=12)
    z, t, _, _ = sample_latents(20, random_state=12)
    np.testing.assert_array_equal(data.z, z)
    np.testing.assert_array_equal(data.t, t)


def test_synthetic_exact_unit_record():
    from propalign_book.experiments.synthetic import synthetic_exact

    rec = synthetic_exact({"image_size": 32, "n_test": 1200, "data_seed": 3}, 0)
    assert set(rec["scores"]) == {"Exact PS+OT", "Uniform"}
    assert rec["scores"]["Uniform"]["Trace"] == pytest.approx(rec["chance_trace"])
    assert rec["scores"]["Exact PS+OT"]["Trace"] > rec["chance_trace"]
    assert 0 < rec["one_hot"]["view 1"] < 1 and 0 < rec["one_hot"]["view 2"] < 1


@pytest.mark.parametrize("kw, msg", [(dict(z=np.zeros((3, 3)), view=1), "4 columns"),
                                     (dict(z=np.full((3, 4), 0.5), view=3), "view"),
                                     (dict(z=np.full((3, 4), 0.5), view=1, image_size=1),
                                      "image_size")])
def test_bad_input(kw, msg):
    kw.setdefault("image_size", 16)
    with pytest.raises(ValueError, match=msg):
        exact_likelihood(**kw)


def test_impossible_scene_needs_t():
    z = np.array([[0.3, 0.3, 0.3, 0.3]])           # no coordinate at an intervention value
    with pytest.raises(ValueError, match="pass their treatments"):
        exact_propensity(z, view=1, image_size=64)
    np.testing.assert_array_equal(exact_propensity(z, [4], view=1, image_size=64)[0],
                                  np.eye(12)[4])
