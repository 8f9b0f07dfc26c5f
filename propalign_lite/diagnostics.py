r"""Diagnostics of an alignment that need no true pairs.

A user of :func:`propalign_lite.align` has no ground truth. These quantities can be computed
from what the alignment itself holds; the book measures how well each one predicts the true
quality (chapter *Judging an alignment*), so a user knows which to believe.

* :func:`effective_partners` -- per cell, :math:`\exp(H(M_{i\cdot}))`, the exponential of the
  entropy of its row: 1 for a one-to-one coupling, :math:`n_2` for the uniform one. It says
  how sharp the matching is, not whether it is right.
* :func:`coupling_agreement` -- the overlap :math:`\frac1n\sum_i\sum_j \min(M_{ij}, M'_{ij})`
  of two couplings of the same cells (e.g. from classifiers trained with two seeds): 1 when
  identical, :math:`\approx` the chance overlap when unrelated. A matching that changes with
  the seed is matching on the classifier's noise.
* :func:`cycle_consistency` -- :math:`\operatorname{mean}_i (M^{12} M^{21})_{ii}\cdot n_1`: the
  mass that goes from cell :math:`i` to the other modality and back to :math:`i`, as a multiple
  of chance (1 for uniform couplings).
* :func:`expected_calibration_error` and :func:`reliability_curve` -- whether a classifier's
  predicted probabilities match its accuracy (Guo et al. 2017), on held-out cells;
  :func:`fit_temperature` -- the temperature :math:`T` that minimises the held-out
  cross-entropy of ``softmax(logits / T)``.

Example
-------
>>> import numpy as np
>>> effective_partners(np.eye(3)).tolist(), effective_partners(np.full((2, 4), 0.25)).tolist()
([1.0, 1.0, 1.0], [4.0, 4.0])
>>> coupling_agreement(np.eye(3), np.eye(3)), round(coupling_agreement(np.eye(2), np.eye(2)[::-1]), 3)
(1.0, 0.0)
>>> cycle_consistency(np.eye(3), np.eye(3))
3.0
"""
from __future__ import annotations

import numpy as np

from ._validation import check_array, check_int, check_labels
from .coupling import as_coupling

__all__ = ["effective_partners", "coupling_agreement", "cycle_consistency", "softmax",
           "reliability_curve", "expected_calibration_error", "fit_temperature"]


def _dense(M, name: str = "M") -> np.ndarray:
    """A coupling as a dense row-stochastic array (implicit ones are evaluated)."""
    return as_coupling(M, name).to_dense()


def effective_partners(M) -> np.ndarray:
    r"""Per row, :math:`\exp\big(-\sum_j M_{ij}\log M_{ij}\big)` (the perplexity of the row)."""
    M = _dense(M)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(M > 0, M * np.log(M), 0.0).sum(1)
    return np.exp(h)


def coupling_agreement(M, M2) -> float:
    r"""Overlap :math:`\frac1{n_1}\sum_{ij}\min(M_{ij}, M'_{ij})` of two row-normalised
    couplings of the same cells, in [0, 1]."""
    M, M2 = _dense(M), _dense(M2, "M2")
    if M.shape != M2.shape:
        raise ValueError(f"M and M2 must couple the same cells, got shapes {M.shape} and "
                         f"{M2.shape}")
    return float(np.minimum(M, M2).sum() / M.shape[0])


def cycle_consistency(M12, M21) -> float:
    r"""Mass returned to its own cell after a round trip, :math:`n_1 \cdot \frac1{n_1}
    \operatorname{tr}(M^{12}M^{21})`, as a multiple of chance (``M12``: rows = cells of
    modality 1; ``M21``: rows = cells of modality 2, same cells)."""
    M12, M21 = _dense(M12, "M12"), _dense(M21, "M21")
    if M12.shape != M21.shape[::-1]:
        raise ValueError(f"M21 must have the transposed shape of M12, got {M12.shape} and "
                         f"{M21.shape}")
    return float(np.einsum("ij,ji->", M12, M21))


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (stable)."""
    z = check_array(logits, "logits") / float(temperature)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _probs_labels(logits, labels, classes):
    p = softmax(logits)
    classes = np.asarray(classes)
    t = check_labels(labels, "labels", len(p))
    if len(classes) != p.shape[1]:
        raise ValueError(f"classes has {len(classes)} entries but logits {p.shape[1]} columns")
    unknown = sorted(set(np.unique(t).tolist()) - set(classes.tolist()), key=str)
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the classifier's classes")
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    return p, np.array([lookup[v] for v in t.tolist()])


def reliability_curve(logits, labels, classes, *, n_bins: int = 10):
    """``(confidence, accuracy, count)`` per bin of the top-class probability (equal-width
    bins on [0, 1]; empty bins are left out)."""
    n_bins = check_int(n_bins, "n_bins", min_value=1)
    p, y = _probs_labels(logits, labels, classes)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    out = [(conf[bins == b].mean(), correct[bins == b].mean(), int((bins == b).sum()))
           for b in range(n_bins) if (bins == b).any()]
    c, a, n = (np.array(v) for v in zip(*out))
    return c, a, n


def expected_calibration_error(logits, labels, classes, *, n_bins: int = 10) -> float:
    r"""ECE :math:`= \sum_b \frac{n_b}{n}\,|\mathrm{acc}_b - \mathrm{conf}_b|` over equal-width
    bins of the top-class probability (0 for a calibrated classifier)."""
    c, a, n = reliability_curve(logits, labels, classes, n_bins=n_bins)
    return float((n * np.abs(a - c)).sum() / n.sum())


def fit_temperature(logits, labels, classes, *, grid=None) -> float:
    """The temperature minimising the cross-entropy of ``softmax(logits / T)`` on held-out
    cells (a log-spaced grid search from 0.05 to 20, then a finer one around the best)."""
    p_idx = _probs_labels(logits, labels, classes)[1]
    z = check_array(logits, "logits")

    def nll(T):
        q = softmax(z, T)
        return -np.log(np.clip(q[np.arange(len(q)), p_idx], 1e-300, None)).mean()

    grid = np.geomspace(0.05, 20, 61) if grid is None else np.asarray(grid, float)
    best = grid[np.argmin([nll(T) for T in grid])]
    fine = np.geomspace(best / 1.1, best * 1.1, 21)
    return float(fine[np.argmin([nll(T) for T in fine])])
