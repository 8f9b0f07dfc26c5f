import itertools

import numpy as np
import ot
import pytest
from scipy.stats import kendalltau, multivariate_normal

from propalign_lite import match
from propalign_lite.matchers import euclidean_cost
from propalign_lite.theory import (discordant_fraction, find_cost_reducing_cycle,
                                   gaussian_log_propensity, logit_map, score_null_space,
                                   sorting_coupling)


def test_gaussian_log_propensity_is_bayes_rule():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(4, 3)) * 2
    priors = np.array([0.1, 0.2, 0.3, 0.4])
    z = rng.normal(size=(50, 3))
    lp = gaussian_log_propensity(z, means, scale=1.7, priors=priors)
    joint = np.column_stack([priors[t] * multivariate_normal(means[t], 1.7 ** 2).pdf(z)
                             for t in range(4)])
    np.testing.assert_allclose(np.exp(lp), joint / joint.sum(1, keepdims=True), atol=1e-12)


def test_logit_map_is_affine_and_consistent():
    rng = np.random.default_rng(1)
    means, priors = rng.normal(size=(3, 2)), np.array([0.5, 0.3, 0.2])
    B, c = logit_map(means, scale=0.8, priors=priors)
    assert B.shape == (2, 2) and c.shape == (2,)
    z = rng.normal(size=(20, 2)) * 3
    lp = gaussian_log_propensity(z, means, scale=0.8, priors=priors)
    np.testing.assert_allclose(z @ B.T + c, lp[:, 1:] - lp[:, :1], atol=1e-10)


def test_null_space_and_level_sets():
    rng = np.random.default_rng(2)
    for T, d in [(1, 2), (2, 4), (3, 3), (5, 3)]:
        means = np.vstack([np.zeros(d), rng.normal(size=(T, d))])
        N = score_null_space(means)
        assert N.shape == (d, max(d - T, 0))
        if N.shape[1]:
            z = rng.normal(size=(5, d))
            moved = z + 4.0 * (N @ rng.normal(size=(N.shape[1], 5))).T
            assert np.linalg.norm(moved - z, axis=1).min() > 0.1
            np.testing.assert_allclose(gaussian_log_propensity(moved, means),
                                       gaussian_log_propensity(z, means), atol=1e-10)


def test_sorting_coupling_is_squared_cost_ot():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=60), rng.normal(size=60) * 3 + 1
    S = sorting_coupling(a, b)
    assert set(np.unique(S)) == {0.0, 1.0}
    np.testing.assert_allclose(S.sum(0), 1)
    np.testing.assert_allclose(S.sum(1), 1)
    u = np.full(60, 1 / 60)
    G = ot.emd(u, u, (a[:, None] - b[None, :]) ** 2) * 60
    np.testing.assert_allclose(S, G)
    # with |a - b| sorting is optimal too (same cost as the network simplex's plan)
    C = euclidean_cost(a[:, None], b[:, None])
    E = match(a[:, None], b[:, None], method="emd")
    assert (S * C).sum() == pytest.approx((E * C).sum())
    # (n, 1) inputs are accepted
    np.testing.assert_array_equal(sorting_coupling(a[:, None], b[:, None]), S)


def test_sorting_recovers_monotone_pairing():
    rng = np.random.default_rng(4)
    z = rng.normal(size=80)
    S = sorting_coupling(z, np.exp(z) + 5)         # increasing transform: order kept
    np.testing.assert_array_equal(S, np.eye(80))


def test_discordant_fraction_matches_kendall_tau():
    rng = np.random.default_rng(5)
    a = rng.normal(size=40)
    b = a + rng.normal(size=40)
    tau = kendalltau(a, b).statistic
    assert discordant_fraction(a, b) == pytest.approx((1 - tau) / 2)
    assert discordant_fraction(a, 2 * a + 1) == 0.0
    assert discordant_fraction(a, -a) == 1.0


def _brute_force_gain(C, sigma):
    n, best = len(C), 0.0
    for m in range(2, n + 1):
        for cyc in itertools.permutations(range(n), m):
            if cyc[0] != min(cyc):
                continue
            nxt = cyc[1:] + cyc[:1]
            gain = sum(C[k, sigma[k]] for k in cyc) - sum(C[k, sigma[l]] for k, l in zip(cyc, nxt))
            best = max(best, gain)
    return best


def test_cycle_search_agrees_with_brute_force():
    rng = np.random.default_rng(6)
    for _ in range(80):
        n = int(rng.integers(2, 7))
        C = euclidean_cost(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)))
        sigma = rng.permutation(n)
        res = find_cost_reducing_cycle(C, sigma)
        brute = _brute_force_gain(C, sigma)
        assert res.is_cyclically_monotone == (brute < 1e-9)
        if not res.is_cyclically_monotone:
            cyc = res.cycle
            assert len(set(cyc)) == len(cyc) >= 2
            nxt = cyc[1:] + cyc[:1]
            gain = C[cyc, sigma[cyc]].sum() - C[cyc, sigma[nxt]].sum()
            assert gain == pytest.approx(res.gain) and gain > 0


def test_exact_ot_plan_is_cyclically_monotone_and_cancelling_reaches_optimum():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    C = euclidean_cost(x, y)
    plan = match(x, y, method="emd")
    assert find_cost_reducing_cycle(C, plan.argmax(1)).is_cyclically_monotone
    sigma = rng.permutation(40)
    while not (res := find_cost_reducing_cycle(C, sigma)).is_cyclically_monotone:
        sigma[res.cycle] = sigma[res.cycle[1:] + res.cycle[:1]]
    assert C[np.arange(40), sigma].sum() == pytest.approx((plan * C).sum())


def test_bad_inputs():
    means = np.zeros((3, 2))
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_log_propensity(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="z has 3 columns"):
        gaussian_log_propensity(np.zeros((1, 3)), means)
    with pytest.raises(ValueError, match="scale must be a positive"):
        gaussian_log_propensity(np.zeros((1, 2)), means, scale=0)
    with pytest.raises(ValueError, match="priors has 2 entries"):
        logit_map(means, priors=[0.5, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        logit_map(means, priors=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="NaN or infinite"):
        gaussian_log_propensity(np.array([[np.nan, 0.0]]), means)
    with pytest.raises(ValueError, match="1-d scores"):
        sorting_coupling(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="equally many"):
        sorting_coupling(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same units"):
        discordant_fraction(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least two units"):
        discordant_fraction(np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="must be square"):
        find_cost_reducing_cycle(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="permutation"):
        find_cost_reducing_cycle(np.zeros((3, 3)), [0, 0, 1])
    with pytest.raises(ValueError, match="integer column indices"):
        find_cost_reducing_cycle(np.zeros((3, 3)), [0.0, 1.0, 2.0])
