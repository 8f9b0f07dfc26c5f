r"""Exact objects of the paper's theory, for checking claims numerically.

Propensity scores of Gaussian latent models
-------------------------------------------
If the latent has a treatment-specific Gaussian law with a shared isotropic covariance,
:math:`z \mid t \sim \mathcal N(\mu_t, \sigma^2 I)`, and :math:`P(t) = p_t`, Bayes' rule gives
the propensity score in closed form,

.. math:: \log \pi_t(z) = \log p_t - \frac{\lVert z - \mu_t\rVert^2}{2\sigma^2}
          - \log \sum_s p_s \exp\Big(-\frac{\lVert z - \mu_s\rVert^2}{2\sigma^2}\Big)
          \qquad (:func:`gaussian_log_propensity`).

The quadratic term :math:`\lVert z\rVert^2` is the same for every :math:`t` and cancels, so the
log-odds against the base treatment :math:`t = 0` are **affine** in :math:`z`
(:func:`logit_map`):

.. math:: h_t(z) = \log\frac{\pi_t(z)}{\pi_0(z)} = \frac{(\mu_t - \mu_0)^\top z}{\sigma^2}
          + \frac{\lVert\mu_0\rVert^2 - \lVert\mu_t\rVert^2}{2\sigma^2} + \log\frac{p_t}{p_0},
          \qquad h(z) = B z + c,\ B \in \mathbb R^{(K-1) \times d}.

This is the map of the paper's equation (2) for this model. It is injective exactly when
:math:`B` has rank :math:`d`, which needs at least :math:`d` perturbations besides the base
(Proposition 2). Otherwise the score is constant along the null space of :math:`B`
(:func:`score_null_space`): distinct latents share one score.

Optimal transport facts
-----------------------
* In one dimension and with a strictly convex cost such as :math:`(a - b)^2`, the unique optimal
  one-to-one matching pairs the :math:`r`-th smallest value of one set with the :math:`r`-th
  smallest of the other (:func:`sorting_coupling`). With the plain distance :math:`|a - b|`
  sorting is still optimal, but not always the only optimum.
* The support of an optimal plan is **cyclically monotone** (the paper's Definition 1):
  no cyclic shift of partners lowers the total cost. :func:`find_cost_reducing_cycle` searches
  a one-to-one matching for a cyclic shift that lowers the cost, and returns it if one exists.
  For a permutation, finding none proves that the matching is optimal.
* :func:`discordant_fraction` measures how far a pairing of 1-d scores is from the monotonicity
  condition (3) of the paper.

Example
-------
>>> import numpy as np
>>> means = np.array([[0.0, 0.0], [2.0, 0.0]])          # two treatments, 2-d latent
>>> B, c = logit_map(means)
>>> B
array([[2., 0.]])
>>> score_null_space(means).ravel().round(6).tolist()    # moving along z_2 changes nothing
[0.0, 1.0]
>>> z = np.array([[0.3, -1.0], [0.3, 5.0]])
>>> lp = gaussian_log_propensity(z, means)
>>> bool(np.allclose(lp[0], lp[1]))
True

References
----------
Xi, Osea, Xu and Hartford (2024), *Propensity score alignment of unpaired multimodal data*,
Propositions 1-2, equation (3) and appendix (cyclic monotonicity); Rosenbaum and Rubin (1983),
*The central role of the propensity score*; Villani (2009), *Optimal transport, old and new*,
chapter 5 (cyclical monotonicity).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import null_space
from scipy.special import logsumexp

from ._validation import check_array

__all__ = ["gaussian_log_propensity", "logit_map", "score_null_space", "sorting_coupling",
           "discordant_fraction", "find_cost_reducing_cycle", "CycleCheck"]


def _check_means_priors(means, priors, scale):
    means = check_array(means, "means")
    K = means.shape[0]
    if K < 2:
        raise ValueError(f"means must have one row per treatment (at least 2), got {K}")
    if not (np.isscalar(scale) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if priors is None:
        priors = np.full(K, 1.0 / K)
    else:
        priors = check_array(priors, "priors", ndim=1)
        if priors.shape[0] != K:
            raise ValueError(f"priors has {priors.shape[0]} entries but means has {K} rows")
        if (priors <= 0).any() or not np.isclose(priors.sum(), 1.0):
            raise ValueError("priors must be positive and sum to 1")
    return means, priors


def gaussian_log_propensity(z, means, *, scale: float = 1.0, priors=None) -> np.ndarray:
    r"""Exact :math:`\log P(t \mid z)` when :math:`z \mid t \sim \mathcal N(\mu_t, \sigma^2 I)`.

    Parameters
    ----------
    z : array (n, d)
        Latent points.
    means : array (K, d)
        Row :math:`t` is :math:`\mu_t`.
    scale : float
        The shared standard deviation :math:`\sigma`.
    priors : array (K,), optional
        :math:`P(t)`; uniform by default.

    Returns
    -------
    array (n, K)
        Normalised log-probabilities (each row's ``exp`` sums to one).

    Example
    -------
    >>> lp = gaussian_log_propensity(np.zeros((1, 1)), np.array([[-1.0], [1.0]]))
    >>> np.exp(lp).round(3).tolist()
    [[0.5, 0.5]]
    """
    means, priors = _check_means_priors(means, priors, scale)
    z = check_array(z, "z")
    if z.shape[1] != means.shape[1]:
        raise ValueError(f"z has {z.shape[1]} columns but the means live in dimension "
                         f"{means.shape[1]}")
    sq = ((z[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    log_joint = np.log(priors)[None, :] - sq / (2.0 * scale ** 2)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def logit_map(means, *, scale: float = 1.0, priors=None) -> tuple[np.ndarray, np.ndarray]:
    r"""The affine map :math:`h(z) = Bz + c` of log-odds against treatment 0.

    Row :math:`t - 1` of ``B`` is :math:`(\mu_t - \mu_0)/\sigma^2` and
    :math:`c_{t-1} = (\lVert\mu_0\rVert^2 - \lVert\mu_t\rVert^2)/(2\sigma^2) + \log(p_t/p_0)`, so
    that ``z @ B.T + c`` equals ``lp[:, 1:] - lp[:, :1]`` for
    ``lp = gaussian_log_propensity(z, means, ...)``.

    Returns
    -------
    B : array (K - 1, d)
    c : array (K - 1,)
    """
    means, priors = _check_means_priors(means, priors, scale)
    diff = means[1:] - means[:1]
    B = diff / scale ** 2
    c = ((means[:1] ** 2).sum(1) - (means[1:] ** 2).sum(1)) / (2 * scale ** 2)
    c = c + np.log(priors[1:] / priors[0])
    return B, c


def score_null_space(means, *, rcond: float | None = None) -> np.ndarray:
    r"""Orthonormal directions along which the Gaussian propensity score does not change.

    The columns span the null space of :math:`B` from :func:`logit_map`: for any :math:`z` and
    any :math:`v` in it, :math:`\pi(z + v) = \pi(z)`. The matrix has
    :math:`d - \operatorname{rank}(B)` columns, at least :math:`d - (K - 1)` (Proposition 2);
    none when the score is injective. (The null space does not depend on :math:`\sigma` or the
    priors.)

    Returns
    -------
    array (d, d - rank B)
    """
    B, _ = logit_map(means)
    return null_space(B, rcond=rcond)


def _scores_1d(s, name: str) -> np.ndarray:
    arr = check_array(s, name, ndim=None)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must hold 1-d scores, shape (n,) or (n, 1); got {arr.shape}")
    return arr


def sorting_coupling(s1, s2) -> np.ndarray:
    r"""The monotone one-to-one coupling of two equally long sets of 1-d scores.

    The :math:`r`-th smallest of ``s1`` is matched to the :math:`r`-th smallest of ``s2``. For
    any strictly convex cost :math:`c(a - b)` (e.g. squared distance) this is the unique optimal
    transport plan between the two uniform empirical measures (when values are distinct);
    for :math:`|a - b|` it is one of possibly many optimal plans.

    Parameters
    ----------
    s1, s2 : arrays (n,) or (n, 1)

    Returns
    -------
    array (n, n)
        A permutation matrix (rows sum to one), the same convention as
        :func:`propalign_lite.match`.

    Example
    -------
    >>> sorting_coupling([0.1, 0.9, 0.5], [5.0, 1.0, 7.0]).argmax(1).tolist()
    [1, 2, 0]
    """
    a, b = _scores_1d(s1, "s1"), _scores_1d(s2, "s2")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a one-to-one coupling needs equally many scores, got {a.shape[0]} "
                         f"and {b.shape[0]}")
    M = np.zeros((a.shape[0], b.shape[0]))
    M[np.argsort(a, kind="stable"), np.argsort(b, kind="stable")] = 1.0
    return M


def discordant_fraction(s1, s2) -> float:
    r"""Fraction of pairs :math:`i_1 < i_2` that violate the monotonicity condition (3).

    Row :math:`i` of ``s1`` and ``s2`` are the scores of the same unit in the two modalities.
    A pair is discordant when :math:`(s^{(1)}_{i_1} - s^{(1)}_{i_2})(s^{(2)}_{i_1} -
    s^{(2)}_{i_2}) < 0`. Zero means the true pairing is monotone, so sorting recovers it
    exactly. The value is :math:`(1 - \tau)/2` for Kendall's :math:`\tau` without ties.

    Example
    -------
    >>> discordant_fraction([1, 2, 3], [10, 30, 20])
    0.3333333333333333
    """
    a = check_array(s1, "s1", ndim=1)
    b = check_array(s2, "s2", ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"s1 and s2 must describe the same units, got {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise ValueError("need at least two units to compare orderings")
    prod = np.sign(a[:, None] - a[None, :]) * np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(n, 1)
    return float((prod[iu] < 0).mean())


@dataclass
class CycleCheck:
    """Result of :func:`find_cost_reducing_cycle`.

    Attributes
    ----------
    is_cyclically_monotone : bool
        True when no cyclic shift of partners lowers the cost.
    cycle : list of int
        Rows :math:`k_1, \\dots, k_m` of a cost-reducing cycle: row :math:`k_j` would take the
        partner of row :math:`k_{j+1}` (and :math:`k_m` that of :math:`k_1`). Empty if none.
    gain : float
        The cost the shift saves, :math:`\\sum_j C_{k_j, \\sigma(k_j)} - \\sum_j C_{k_j,
        \\sigma(k_{j+1})} > 0` (0 if no cycle).
    """

    is_cyclically_monotone: bool
    cycle: list = field(default_factory=list)
    gain: float = 0.0


def find_cost_reducing_cycle(cost, assignment=None, *, rtol: float = 1e-10) -> CycleCheck:
    r"""Check that a one-to-one matching is :math:`c`-cyclically monotone (Definition 1).

    Row :math:`i` is matched to column :math:`\sigma(i)` = ``assignment[i]`` (default: the
    identity, i.e. the true pairing when row ``i`` of both modalities is the same unit). The
    matching is cyclically monotone if, for every cycle of distinct rows
    :math:`k_1, \dots, k_m`,

    .. math:: \sum_{j=1}^m C_{k_j, \sigma(k_j)} \le \sum_{j=1}^m C_{k_j, \sigma(k_{j+1})},
              \qquad k_{m+1} = k_1 .

    Writing :math:`W_{kl} = C_{k, \sigma(l)} - C_{l, \sigma(l)}`, a violating cycle is a cycle
    of negative total weight in the complete graph with weights :math:`W`, which the
    Bellman-Ford algorithm finds in :math:`O(n^3)` operations (all cycle lengths are
    covered, not only pairs). For a permutation of a square problem with uniform weights,
    cyclic monotonicity is equivalent to optimality, so this also certifies an exact OT
    solution.

    Parameters
    ----------
    cost : array (n, n)
        :math:`C_{ij}`, e.g. :func:`propalign_lite.matchers.euclidean_cost` of the embeddings.
    assignment : array of int (n,), optional
        A permutation of ``0..n-1``; a permutation coupling ``M`` gives it as ``M.argmax(1)``.
    rtol : float
        Cycles saving less than ``rtol`` times the mean absolute cost are treated as ties.

    Returns
    -------
    CycleCheck

    Example
    -------
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> C = (x[:, None] - x[None, :]) ** 2
    >>> find_cost_reducing_cycle(C).is_cyclically_monotone            # identity is optimal
    True
    >>> check = find_cost_reducing_cycle(C, [1, 0, 2])                 # swapped pair
    >>> sorted(check.cycle), check.gain
    ([0, 1], 2.0)
    """
    C = check_array(cost, "cost")
    n = C.shape[0]
    if C.shape != (n, n):
        raise ValueError(f"cost must be square for a one-to-one matching, got {C.shape}")
    if assignment is None:
        sigma = np.arange(n)
    else:
        sigma = np.asarray(assignment)
        if sigma.shape != (n,) or sigma.dtype.kind not in "iu":
            raise ValueError(f"assignment must be {n} integer column indices")
        if not np.array_equal(np.sort(sigma), np.arange(n)):
            raise ValueError("assignment must be a permutation of 0..n-1 (one-to-one)")
    matched = C[np.arange(n), sigma]
    W = C[:, sigma] - matched[None, :]          # W[k, l]: row k takes the partner of row l
    tol = rtol * max(float(np.abs(C).mean()), 1e-300)
    dist = np.zeros(n)                          # virtual source linked to all rows at cost 0
    pred = np.full(n, -1)
    last = -1
    for _ in range(n + 1):
        cand = dist[:, None] + W
        best = cand.argmin(axis=0)
        new = cand[best, np.arange(n)]
        improved = new < dist - tol
        if not improved.any():
            return CycleCheck(True)
        dist = np.where(improved, new, dist)
        pred = np.where(improved, best, pred)
        last = int(np.flatnonzero(improved)[0])
    # still improving after n rounds: a negative cycle is reachable through pred from `last`
    node = last
    for _ in range(n):
        node = int(pred[node])
        if node < 0:        # cannot happen in exact arithmetic (see Bellman-Ford's proof)
            raise RuntimeError("cycle search failed; please report this cost matrix")
    cycle_rev = [node]
    nxt = int(pred[node])
    while nxt != node:
        cycle_rev.append(nxt)
        nxt = int(pred[nxt])
    cycle = cycle_rev[::-1]                     # edges go pred[l] -> l
    nxt_rows = cycle[1:] + cycle[:1]
    gain = float(matched[cycle].sum() - C[cycle, sigma[nxt_rows]].sum())
    return CycleCheck(False, cycle, gain)
