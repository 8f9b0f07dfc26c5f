import numpy as np
import pytest

from propalign_lite import metrics


def test_trace_and_mse_hand_computed():
    M = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    assert metrics.trace(M) == pytest.approx((0.5 + 1 + 0.5) / 3)
    z = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0]])
    zhat = np.array([[1.0, 1.0], [2.0, 1.0], [2.5, 2.0]])
    expected = ((z - zhat) ** 2).mean()              # (1 + 0 + 0 + 0 + 2.25 + 1) / 6
    assert metrics.latent_mse(M, z) == pytest.approx(expected)
    assert expected == pytest.approx(4.25 / 6)


def test_foscttm_textbook_cases():
    a = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert metrics.foscttm(a, a) == 0.0
    # swap the partners of rows 0 and 3: b = (3, 1, 2, 0). From a_0 = 0 the "partner" b_0 = 3
    # is at distance 3 and b_1, b_2, b_3 (distances 1, 2, 0) are all closer: 3 of 3; rows 1, 2
    # keep their partner (0 closer); row 3 is symmetric to row 0.
    b = a[[3, 1, 2, 0]]
    from_a = [3, 0, 0, 3]
    from_b = [3, 0, 0, 3]
    assert metrics.foscttm(a, b) == pytest.approx((sum(from_a) + sum(from_b)) / (2 * 4 * 3))


def test_foscttm_random_is_half():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    assert metrics.foscttm(a, b) == pytest.approx(0.5, abs=0.03)


def test_foscttm_coupling_variants():
    x2 = np.arange(10.0)[:, None]
    assert metrics.foscttm_coupling(np.eye(10), x2, random_state=0) == 0.0
    assert metrics.foscttm_coupling(np.eye(10), x2, how="barycentric") == 0.0
    U = np.full((10, 10), 0.1)
    # barycentric projection of the uniform coupling puts every sample at the mean
    assert metrics.foscttm_coupling(U, x2, how="barycentric") == pytest.approx(
        metrics.foscttm(x2, np.full_like(x2, x2.mean())))
    with pytest.raises(ValueError, match="must sum to 1"):
        metrics.foscttm_coupling(U * 2, x2)


def test_sample_partners_frequencies():
    M = np.array([[0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    rows = np.repeat(M, 5000, axis=0)
    j = metrics.sample_partners(rows, random_state=0).reshape(2, 5000)
    assert np.mean(j[0] == 1) == pytest.approx(0.8, abs=0.02)
    assert (j[0] != 2).all() and (j[1] == 2).all()


def test_group_average_and_seed_summary():
    assert metrics.mean_over_groups({0: 1.0, 1: 0.0, 2: 0.5}) == pytest.approx(0.5)
    med, q1, q3 = metrics.summarize_seeds([1, 2, 3, 4, 5])
    assert (med, q1, q3) == (3, 2, 4)
    assert metrics.format_summary([1, 2, 3, 4, 5], ".1f") == "3.0 (2.0, 4.0)"
    assert metrics.format_summary([0.5], ".2f") == "0.50"


def test_chance_trace_is_unweighted_mean_of_inverse_sizes():
    assert metrics.chance_trace([2, 4]) == pytest.approx(0.375)
    assert metrics.chance_trace({0: np.eye(5), 1: np.eye(2)}) == pytest.approx(0.35)
    with pytest.raises(ValueError, match="at least 1"):
        metrics.chance_trace([3, 0])


def test_evaluate_couplings_uses_unweighted_group_mean():
    t = np.array([0, 0, 0, 0, 1, 1])
    couplings = {0: np.eye(4), 1: np.full((2, 2), 0.5)}
    out = metrics.evaluate_couplings(couplings, t, z=np.arange(6.0)[:, None])
    assert out["Trace"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["per_group"]["size"] == {0: 4, 1: 2}


@pytest.mark.parametrize("call,msg", [
    (lambda: metrics.trace(np.ones((2, 3)) / 3), "must be square"),
    (lambda: metrics.trace(np.array([[np.nan, 1.0], [0.0, 1.0]])), "NaN"),
    (lambda: metrics.latent_mse(np.eye(3), np.ones((2, 2))), "rows"),
    (lambda: metrics.foscttm(np.ones((3, 2)), np.ones((4, 2))), "same shape"),
    (lambda: metrics.trace(-np.eye(2)), "negative"),
    (lambda: metrics.mean_over_groups({}), "no group"),
])
def test_bad_inputs(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
