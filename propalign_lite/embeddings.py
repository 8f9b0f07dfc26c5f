r"""Propensity embeddings: which function of a classifier's output the matcher sees.

A classifier's logits :math:`\ell(x) \in \mathbb R^K` define the estimated propensity score
:math:`\hat\pi(x) = \operatorname{softmax}(\ell(x))`. Softmax ignores a constant added to all
:math:`K` logits of a sample, so the raw logits carry one arbitrary degree of freedom per
sample that the classifier never had to pin down. The embeddings :func:`propensity_embedding`
offers:

``"logits"``
    :math:`\ell(x)` as it comes out of the network (the paper and the official code).
``"proba"``
    :math:`\hat\pi(x)`, points in the probability simplex.
``"log_proba"``
    :math:`\log\hat\pi(x) = \ell(x) - \log\sum_s e^{\ell_s(x)}`.
``"centred"``
    :math:`\ell(x) - \frac1K\sum_s \ell_s(x)`, the centred log-ratio transform of
    :math:`\hat\pi(x)`; it equals the centred log-probabilities.

All but ``"logits"`` are functions of :math:`\hat\pi(x)` alone, so they do not change when a
constant is added to a sample's logits. Distances differ in scale between them: OT's
regularisation (in cost units) means something different for each.

Example
-------
>>> import numpy as np
>>> ell = np.array([[2.0, 0.0, 1.0], [12.0, 10.0, 11.0]])   # same softmax, shifted logits
>>> propensity_embedding(ell, "centred").tolist()
[[1.0, -1.0, 0.0], [1.0, -1.0, 0.0]]
>>> np.allclose(*propensity_embedding(ell, "proba"))
True
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from ._validation import check_array

EMBEDDINGS = ("logits", "proba", "log_proba", "centred")

__all__ = ["propensity_embedding", "EMBEDDINGS"]


def propensity_embedding(logits, kind: str = "logits") -> np.ndarray:
    """Turn classifier logits (n, K) into the embedding ``kind`` (see the module docstring).

    Parameters
    ----------
    logits : array (n, K)
        E.g. :meth:`propalign_lite.PropensityClassifier.logits`.
    kind : {"logits", "proba", "log_proba", "centred"}

    Returns
    -------
    array (n, K)
    """
    if kind not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {kind!r}; choose one of {EMBEDDINGS}")
    ell = check_array(logits, "logits")
    if ell.shape[1] < 2:
        raise ValueError(f"logits need one column per treatment (at least 2), got {ell.shape}")
    if kind == "logits":
        return ell.copy()
    if kind == "centred":
        return ell - ell.mean(axis=1, keepdims=True)
    lp = log_softmax(ell, axis=1)
    return lp if kind == "log_proba" else np.exp(lp)
