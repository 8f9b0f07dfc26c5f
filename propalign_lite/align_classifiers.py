r"""The propensity classifiers of :func:`propalign_lite.align`: settings, validation splits,
training one pair, and the second (check) pair of ``reg="auto"``.

Example
-------
>>> import numpy as np
>>> int(stratified_validation(np.array([0, 0, 0, 0, 1, 1]), 0.5, np.random.default_rng(0)).sum())
3
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from .classifiers import PropensityClassifier

__all__ = ["DEFAULT_CLASSIFIER", "stratified_validation", "train_pair", "auto_reg"]

#: Settings of the default classifier, smaller and faster than the paper's (width 1024,
#: 100 epochs, lr 1e-4), which suits a CPU and a few thousand cells per object.
DEFAULT_CLASSIFIER = dict(width=256, epochs=30, lr=1e-3, batch_size=256)


def stratified_validation(labels, fraction: float, rng) -> np.ndarray:
    """Boolean validation mask: ``round(fraction * n_g)`` cells of every group ``g``, at most
    ``n_g - 1`` (so every group keeps a training cell). Seeded by ``rng``."""
    labels = np.asarray(labels)
    val = np.zeros(len(labels), dtype=bool)
    for g in pd.unique(labels):
        idx = np.flatnonzero(labels == g)
        k = min(int(round(fraction * len(idx))), len(idx) - 1)
        if k > 0:
            val[rng.choice(idx, size=k, replace=False)] = True
    return val


def _validation_mask(a, validation, labels, name, rng):
    if validation is None:
        return np.zeros(len(labels), dtype=bool)
    if isinstance(validation, str):
        if validation not in a.obs.columns:
            raise KeyError(f"validation={validation!r} is not a column of {name}.obs")
        mask = a.obs[validation].to_numpy()
        if mask.dtype != bool:
            raise ValueError(f"validation={validation!r}: {name}.obs column must be boolean "
                             f"(True = validation cell), got dtype {mask.dtype}")
        return mask
    if not (isinstance(validation, (float, int)) and 0 <= validation < 1):
        raise ValueError(f"validation must be a fraction in [0, 1), the name of a boolean .obs "
                         f"column, or None; got {validation!r}")
    return stratified_validation(labels, float(validation), rng)


def _make_classifier(classifier, seed, device) -> PropensityClassifier:
    if classifier is None or isinstance(classifier, dict):
        params = {**DEFAULT_CLASSIFIER, **(classifier or {})}
        params.setdefault("random_state", seed)
        params.setdefault("device", device)
        try:
            return PropensityClassifier("mlp", **params)
        except TypeError as err:
            raise ValueError(f"classifier: {err}") from None
    if isinstance(classifier, PropensityClassifier):
        if classifier.encoder != "mlp":
            raise ValueError("classifier must use the 'mlp' encoder for AnnData features, got "
                             f"{classifier.encoder!r}")
        clf = copy.deepcopy(classifier)
        for attr in ("model_", "classes_", "history_"):
            clf.__dict__.pop(attr, None)
        if clf.random_state is None:
            clf.random_state = seed
        return clf
    raise TypeError("classifier must be None, a dict of PropensityClassifier settings, an "
                    "(unfitted) PropensityClassifier, or a pair of fitted ones; got "
                    f"{type(classifier).__name__}")



def train_pair(classifier, seeds, device, objs, xs, ts, names, shared, validation):
    """Two propensity classifiers (seeds ``seeds[0]``, ``seeds[1]``; validation split seeded
    by ``seeds[2]``) trained on the cells of the shared groups; returns them and the
    validation masks."""
    split_rng = np.random.default_rng(seeds[2])
    clfs, held_out = [], []
    for k, (a, x, t, name) in enumerate(zip(objs, xs, ts, names)):
        clf = _make_classifier(classifier, int(seeds[k]), device)
        keep = np.isin(t, list(shared))
        val = _validation_mask(a, validation, t, name, split_rng) & keep
        mask = keep & ~val
        if len(pd.unique(t[mask])) < len(shared):
            raise ValueError(f"validation leaves some group of {name} without training "
                             "cells; use a smaller fraction")
        _fit_subset(clf, x, t, mask, val)
        clfs.append(clf)
        held_out.append(val)
    return clfs, held_out


def auto_reg(rng, classifier, device, objs, xs, ts, names, shared, validation, logits, ins,
              reg_grid, mkw, min_group_size, reg_m):
    """``reg="auto"``: train the check pair (fresh seeds) and run
    :func:`~propalign_lite.regselect.select_reg` on the matched cells."""
    from .regselect import REG_GRID, select_reg

    seeds = rng.integers(0, 2 ** 31 - 1, size=3)
    check, _ = train_pair(classifier, seeds, device, objs, xs, ts, names, shared, validation)
    f = [c.logits(x) for c, x in zip(check, xs)]
    (e1, e2), (in1, in2), (t1, t2) = logits, ins, ts
    kw = {k: v for k, v in mkw.items() if k not in ("method", "reg", "random_state")}
    if reg_m is not None:
        kw.setdefault("reg_m", reg_m)
    return select_reg(e1[in1], t1[in1], e2[in2], t2[in2], f[0][in1], f[1][in2],
                      regs=REG_GRID if reg_grid is None else reg_grid,
                      min_group_size=min_group_size, **kw)


def _fit_subset(clf, x, t, train, val):
    if val.any():
        clf.fit(x[train], t[train], x_val=x[val], t_val=t[val])
    else:
        clf.fit(x[train], t[train])
