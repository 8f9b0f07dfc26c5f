r"""Matching metrics, averaged over groups and summarised over seeds as the paper does.

For one treatment group with :math:`n` samples in each modality, where row :math:`i` of both
modalities is the same unit (the hidden ground truth) and :math:`M` is a row-normalised
:math:`n \times n` coupling:

* :func:`trace` -- mean mass on the true partner, :math:`\operatorname{Tr}(M)/n`
  (random: :math:`1/n`, perfect: 1).
* :func:`latent_mse` -- :math:`\frac{1}{nd}\sum_{i,k} (z_{ik} - (Mz)_{ik})^2`: the squared error
  of the barycentric projection of the partners' latents, averaged over all :math:`n \times d`
  entries (the official code's convention; the paper writes :math:`\frac1n\lVert z -
  Mz\rVert^2`, which is :math:`d` times larger).
* :func:`foscttm` -- the textbook *fraction of samples closer than the true match* between two
  paired point sets :math:`a, b` in one space: for each :math:`i`, the fraction of
  :math:`j \ne i` with :math:`d(a_i, b_j) < d(a_i, b_i)`, and symmetrically from :math:`b_i`,
  each over :math:`n - 1`, averaged (0 perfect, 0.5 chance).
* :func:`foscttm_coupling` -- the paper's coupling-based FOSCTTM: the matched partners of modality
  1 are placed in modality 2's space, :math:`\hat x_i`, either by *sampling* one partner
  :math:`j_i \sim M_{i\cdot}` (``how="sample"``, what the official code computes) or by the
  barycentric projection :math:`\hat x = M x^{(2)}` (``how="barycentric"``, the paper's
  formula), and then :func:`foscttm`\ ``(x2, x_hat)``.

Per-group values are combined with :func:`mean_over_groups` (unweighted mean over groups) and
a table entry over seeds is :func:`summarize_seeds` -- median (Q1, Q3), numpy's linear
percentiles.

Example
-------
>>> import numpy as np
>>> M = np.eye(3)
>>> trace(M), latent_mse(M, np.arange(6.0).reshape(3, 2))
(1.0, 0.0)
>>> float(foscttm(np.eye(3), np.eye(3)))
0.0
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._validation import check_array, check_random_state
from ._blocked import euclidean_cost
from .coupling import as_coupling, foscttm_blocked

__all__ = ["BLOCKED_FOSCTTM", "trace", "latent_mse", "foscttm", "foscttm_coupling",
           "sample_partners", "mean_over_groups", "per_group", "chance_trace",
           "summarize_seeds", "format_summary", "evaluate_couplings", "partner_ranks",
           "partner_rank", "r2_score_pooled"]

#: n x n above which FOSCTTM is counted block by block (the size at which match() returns an
#: implicit coupling)
BLOCKED_FOSCTTM = 2 ** 24


def trace(M) -> float:
    r"""Mean mass on the true partner, :math:`\frac1n\sum_i M_{ii}` (square coupling).

    The rows of ``M`` must sum to 1 (within 1e-6): an unnormalised coupling raises instead of
    scoring, e.g., ``np.ones((3, 3))`` as a perfect 1.0."""
    return float(as_coupling(M, "M", square=True).diagonal().mean())


def latent_mse(M, z, z2=None) -> float:
    r"""Mean over all entries of :math:`(z - M z_2)^2` (``z2`` defaults to ``z``).

    ``z`` holds the latents of the modality-1 samples (rows of ``M``), ``z2`` those of the
    modality-2 samples (columns); with paired data both are the group's ``z``.
    """
    M = as_coupling(M, "M")
    z = check_array(z, "z")
    z2 = z if z2 is None else check_array(z2, "z2")
    if M.shape != (len(z), len(z2)):
        raise ValueError(f"M has shape {M.shape} but z and z2 have {len(z)} and {len(z2)} rows")
    return float(np.mean((z - M @ z2) ** 2))


def foscttm(a, b, *, ties: str = "strict") -> float:
    r"""Textbook FOSCTTM of two paired point sets (row ``i`` of ``a`` and ``b`` are partners).

    .. math:: \frac{1}{2n}\sum_{i}\Big[\frac{\#\{j\ne i: d(a_i,b_j) < d(a_i,b_i)\}}{n-1}
              + \frac{\#\{j \ne i: d(b_i,a_j) < d(b_i,a_i)\}}{n-1}\Big]

    ``ties="strict"`` (default, SCOT's and the official code's convention) does not count
    candidates at exactly the true distance; ``ties="half"`` counts them half, so that a
    degenerate ``b`` (every row the same point, e.g. the barycentric projection of a uniform
    coupling) scores the chance level 0.5 instead of a perfect 0.

    >>> float(foscttm(np.eye(3), np.ones((3, 3)))), float(foscttm(np.eye(3), np.ones((3, 3)), ties="half"))
    (0.0, 0.5)
    """
    if ties not in ("strict", "half"):
        raise ValueError(f"ties must be 'strict' or 'half', got {ties!r}")
    a = check_array(a, "a")
    b = check_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (row i of each is a true pair), "
                         f"got {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise ValueError("FOSCTTM needs at least 2 samples")
    D = euclidean_cost(a, b)                   # D[i, j] = d(a_i, b_j)
    true = np.diag(D)
    from_a = (D < true[:, None]).sum(1).astype(float)     # j != i automatically (strict)
    from_b = (D < true[None, :]).sum(0).astype(float)     # d(b_i, a_j) = D[j, i]
    if ties == "half":
        from_a += 0.5 * ((D == true[:, None]).sum(1) - 1)
        from_b += 0.5 * ((D == true[None, :]).sum(0) - 1)
    return float((from_a + from_b).mean() / (2 * (n - 1)))


def foscttm_coupling(M, x2, *, how: str = "sample", random_state=None) -> float:
    r"""The paper's FOSCTTM of a coupling, measured in modality 2's space ``x2``.

    ``how="sample"`` draws one partner :math:`j_i \sim M_{i\cdot}` per row (the official
    code; random, seed it with ``random_state``); ``how="barycentric"`` uses
    :math:`\hat x = M x_2` (the paper's formula). Returns ``foscttm(x2, x_hat)``, counted
    block by block (:func:`~propalign_lite.coupling.foscttm_blocked`) when the ``n x n``
    distances would exceed ``2**24`` entries.
    """
    M = as_coupling(M, "M", square=True)
    x2 = check_array(x2, "x2")
    if len(x2) != M.shape[0]:
        raise ValueError(f"x2 has {len(x2)} rows but M is {M.shape[0]} x {M.shape[1]}")
    if how == "sample":
        x_hat = x2[M.sample_partners(random_state=check_random_state(random_state))]
    elif how == "barycentric":
        x_hat = M @ x2
    else:
        raise ValueError(f"how must be 'sample' or 'barycentric', got {how!r}")
    if len(x2) ** 2 > BLOCKED_FOSCTTM:
        return foscttm_blocked(x2, x_hat)
    return foscttm(x2, x_hat)


def sample_partners(M, *, random_state=None) -> np.ndarray:
    """One partner index per row, ``j_i ~ M[i, :]`` (inverse-CDF sampling, rows sum to 1)."""
    return as_coupling(M, "M").sample_partners(random_state=random_state)


# --------------------------------------------------------------------------------------------
# groups and seeds
def mean_over_groups(values: dict) -> float:
    """Unweighted mean of per-group values (every group counts once, whatever its size)."""
    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict {{group: value}} (as per_group returns), got "
                        f"{type(values).__name__}")
    if not values:
        raise ValueError("no group values to average")
    arr = np.asarray(list(values.values()), dtype=float)
    if not np.isfinite(arr).all():
        raise ValueError("some group values are NaN or infinite")
    return float(arr.mean())


def per_group(metric: Callable, couplings: dict, t, *arrays, **kwargs) -> dict:
    """Evaluate ``metric(M_g, *[a[t == g] for a in arrays], **kwargs)`` for every group ``g``.

    ``couplings`` is the output of :func:`~propalign_lite.match_groups` on *paired* data
    (row ``i`` of both modalities is the same unit), ``t`` the shared labels.

    >>> import numpy as np
    >>> per_group(trace, {0: np.eye(2), 1: np.full((2, 2), .5)}, np.array([0, 0, 1, 1]))
    {0: 1.0, 1: 0.5}
    """
    if not isinstance(couplings, dict):
        raise TypeError(f"couplings must be a dict {{group: coupling}} (as match_groups "
                        f"returns), got {type(couplings).__name__}")
    t = np.asarray(t)
    out = {}
    for g, M in couplings.items():
        idx = np.flatnonzero(t == g)
        out[g] = metric(M, *[np.asarray(a)[idx] for a in arrays], **kwargs)
    return out


def chance_trace(groups) -> float:
    """Trace of a uniformly random coupling, averaged over groups like :func:`trace`:
    the unweighted mean of :math:`1/n_g`.

    ``groups`` is a ``{label: coupling}`` dict (as returned by
    :func:`~propalign_lite.match_groups`; ``n_g`` = its number of rows) or an iterable of
    group sizes.

    >>> chance_trace([2, 4]), chance_trace({0: np.eye(5)})
    (0.375, 0.2)
    """
    sizes = [M.shape[0] for M in groups.values()] if isinstance(groups, dict) else list(groups)
    sizes = check_array(sizes, "group sizes", ndim=1)
    if (sizes < 1).any():
        raise ValueError("group sizes must be at least 1")
    return float(np.mean(1.0 / sizes))


def summarize_seeds(values) -> tuple[float, float, float]:
    """Median, first and third quartile of per-seed values (numpy linear percentiles)."""
    v = check_array(values, "values", ndim=1)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return float(med), float(q1), float(q3)


def format_summary(values, fmt: str = ".4f", scale: float = 1.0) -> str:
    """``"median (Q1, Q3)"`` of per-seed values, e.g. ``'0.0316 (0.0303, 0.0328)'``.

    A single value is printed alone.
    """
    v = np.atleast_1d(np.asarray(values, dtype=float)) * scale
    if v.size == 1:
        return format(v[0], fmt)
    med, q1, q3 = summarize_seeds(v)
    return f"{med:{fmt}} ({q1:{fmt}}, {q3:{fmt}})"


def evaluate_couplings(couplings: dict, t, *, z=None, x2=None, random_state=None) -> dict:
    """All metrics of :func:`~propalign_lite.match_groups` output on paired data, group-averaged.

    Returns ``{"Trace": ..., "MSE": ... (if z), "FOSCTTM": ... (if x2; the official sampled
    variant), "FOSCTTM (barycentric)": ...}``, each the unweighted mean over groups, plus
    ``"per_group"`` with the per-group values and group sizes.
    """
    t = np.asarray(t)
    rng = check_random_state(random_state)
    out, per = {}, {"size": {g: M.shape[0] for g, M in couplings.items()}}
    per["Trace"] = per_group(trace, couplings, t)
    if z is not None:
        per["MSE"] = per_group(latent_mse, couplings, t, z)
    if x2 is not None:
        per["FOSCTTM"] = per_group(foscttm_coupling, couplings, t, x2, how="sample",
                                   random_state=rng)
        per["FOSCTTM (barycentric)"] = per_group(foscttm_coupling, couplings, t, x2,
                                                 how="barycentric")
    for k, v in per.items():
        if k != "size":
            out[k] = mean_over_groups(v)
    out["per_group"] = per
    return out


# --------------------------------------------------------------------------------------------
# ranks
def _coupling_column_blocks(M, block_size: int):
    """Yield ``(columns, M[:, columns])`` as dense blocks of a coupling behind the protocol
    (``M.column_block``)."""
    n1, n2 = M.shape
    for start in range(0, n2, block_size):
        cols = np.arange(start, min(start + block_size, n2))
        yield cols, np.asarray(M.column_block(cols), dtype=float)


def partner_ranks(M, *, block_size: int = 512) -> np.ndarray:
    r"""Per sample, the fraction of candidates the coupling ranks above the true partner.

    For a square coupling :math:`M` of one group (row :math:`i` and column :math:`i` are true
    partners), sample :math:`i` gets

    .. math:: r_i = \frac{\#\{j \ne i: M_{ij} > M_{ii}\} + \tfrac12\,
              \#\{j \ne i: M_{ij} = M_{ii}\}}{n - 1},

    ties counted half (exact equality). :math:`r_i = 0`: the true partner gets strictly the
    most mass of row :math:`i`; :math:`r_i = 1`: strictly the least. Any coupling that does
    not depend on the pairing has :math:`\mathbb E[r_i] = 1/2`; the uniform coupling has
    exactly :math:`1/2`.

    Works on dense arrays, scipy sparse matrices and any coupling that supports ``M.shape``
    and ``M @ Z`` (the columns are read in blocks of ``block_size``; memory
    :math:`O(n \cdot \text{block\_size})`).
    """
    M = as_coupling(M, "M", square=True, row_stochastic=False)
    n1, n2 = M.shape
    if n1 < 2:
        raise ValueError("a partner rank needs at least 2 samples")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    diag = np.empty(n1)
    for cols, block in _coupling_column_blocks(M, block_size):
        if not np.isfinite(block).all():
            raise ValueError("M contains NaN or infinite values")
        diag[cols] = block[cols, np.arange(len(cols))]
    above = np.zeros(n1)
    tied = np.zeros(n1)
    for cols, block in _coupling_column_blocks(M, block_size):
        above += (block > diag[:, None]).sum(1)
        tied += (block == diag[:, None]).sum(1)
    tied -= 1.0                                    # M_ii itself
    return (above + 0.5 * tied) / (n1 - 1)


def partner_rank(M, *, block_size: int = 512) -> float:
    r"""Mean over samples of :func:`partner_ranks`: the fraction of candidates the coupling
    ranks above the true partner (0 perfect, 0.5 chance, ties counted half).

    Unlike the trace, it uses the whole row, so it rewards a coupling that puts the true
    partner *near* the top even when most of the mass goes elsewhere, and its chance level
    does not depend on the group size. Per group and averaged over groups:
    ``mean_over_groups(per_group(partner_rank, couplings, t))``.

    >>> partner_rank(np.eye(3)), partner_rank(np.full((4, 4), 0.25))
    (0.0, 0.5)
    >>> partner_rank(np.array([[0.2, 0.8], [0.3, 0.7]]))   # row 0 wrong, row 1 right
    0.5
    """
    return float(partner_ranks(M, block_size=block_size).mean())


def r2_score_pooled(y_true, y_pred) -> float:
    r"""Coefficient of determination pooled over all samples *and* all output columns.

    .. math::

        R^2 = 1 - \frac{\sum_{i,d} (y_{id} - \hat y_{id})^2}
                       {\sum_{i,d} (y_{id} - \bar y_d)^2},

    where :math:`\bar y_d` is the mean of column :math:`d` over the evaluation set itself
    (the official code's convention). Pooling the sums makes it a *variance-weighted*
    average of the per-column R² values: high-variance columns (the leading principal
    components, say) count more. This equals scikit-learn's
    ``r2_score(y_true, y_pred, multioutput="variance_weighted")`` and differs from
    scikit-learn's default ``"uniform_average"``, which weights every column equally.

    Parameters
    ----------
    y_true, y_pred : array-like (n, D) or (n,)
        True and predicted values (numpy arrays or torch tensors).

    Returns
    -------
    float
        1 for a perfect prediction, 0 for predicting the column means, negative when worse.

    Example
    -------
    >>> r2_score_pooled([[1.0, 0.0], [3.0, 4.0]], [[2.0, 2.0], [2.0, 2.0]])
    0.0
    """
    yt = check_array(y_true, "y_true", ndim=None)
    yp = check_array(y_pred, "y_pred", ndim=None)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if yt.ndim != 2 or yp.ndim != 2:
        raise ValueError(f"y_true and y_pred must be 1- or 2-dimensional, got shapes "
                         f"{yt.shape} and {yp.shape}")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has shape {yt.shape} but y_pred has shape {yp.shape}")
    if yt.shape[0] < 2:
        raise ValueError("R² needs at least 2 samples")
    total = float(((yt - yt.mean(axis=0)) ** 2).sum())
    if total == 0.0:
        raise ValueError("y_true is constant in every column: R² is undefined")
    return 1.0 - float(((yt - yp) ** 2).sum()) / total
