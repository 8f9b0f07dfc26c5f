r"""Choosing the entropic regularisation without true pairs: cross-fitted propensity scores.

The coupling of a group is made from one pair of propensity classifiers (logits
:math:`e^{(1)}_i`, :math:`e^{(2)}_j`). Those logits are noisy estimates of the cells' true
propensity scores; a small ``reg`` matches that noise as faithfully as the signal, a large one
forgets both (the uniform coupling: every cell gets its group's mean). The best trade-off
depends on how good the classifiers are, so no fixed value suits every data set.

:func:`select_reg` judges each ``reg`` on scores the coupling has *not* seen: those of a second,
independently trained pair of classifiers (other seeds, other validation cells), the
*check* logits :math:`f^{(1)}, f^{(2)}`, each row centred (logits are defined up to a per-cell
constant). The coupling :math:`M(\lambda)` made from the first pair predicts the check
scores of every ``adata1`` cell from its partners',

.. math::
    \mathrm{CV}(\lambda) = \frac{1}{n_1} \sum_g \sum_{i \in g}
        \Big\lVert f^{(1)}_i - \sum_j M_{ij}(\lambda)\, f^{(2)}_j \Big\rVert^2 ,

and the ``reg`` with the smallest :math:`\mathrm{CV}` is chosen. Because the check pair's
errors are independent of the first pair's, a coupling that follows the first pair's noise gains
nothing here, while averaging over many partners costs the bias of matching cells whose true
scores differ -- the same bias-variance trade-off as transferring a modality, played out in the
propensity space, where both objects are observed. ``CV`` of the uniform coupling (the limit
:math:`\lambda \to \infty`) is reported beside the grid as a reference.

The book measures the choice against the oracle (the ``reg`` with the best true transfer or
latent error) on every data set it has (chapter *Judging an alignment*).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t = np.repeat([0, 1], 100)
>>> z = rng.normal(size=(200, 2)) + 3 * t[:, None]                 # true scores
>>> noisy = lambda: z + 0.5 * rng.normal(size=z.shape)             # one classifier's estimate
>>> sel = select_reg(noisy(), t, noisy(), t, noisy(), noisy(), regs=(0.01, 0.3, 10.0))
>>> sel.reg, list(sel.table.columns)
(0.3, ['cv', 'cv / uniform'])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._validation import check_array, check_labels

__all__ = ["REG_GRID", "RegSelection", "select_reg"]

#: The default grid of ``reg`` values (log-spaced, the paper's 0.05 included).
REG_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class RegSelection:
    """The outcome of :func:`select_reg`.

    Attributes
    ----------
    reg : float
        The chosen value (smallest ``cv``; the larger ``reg`` on a tie).
    table : DataFrame
        Index ``reg``; ``cv`` (the criterion) and ``cv / uniform`` (below 1: better than
        giving every cell its group's mean).
    uniform : float
        ``cv`` of the uniform coupling.
    couplings : dict or None
        ``{reg: {group: coupling}}`` with ``keep_couplings=True``.
    """

    reg: float
    table: pd.DataFrame
    uniform: float
    couplings: dict | None = None

    def to_dict(self) -> dict:
        """Plain values (for ``.uns`` and saved alignments)."""
        return {"reg": float(self.reg), "regs": [float(r) for r in self.table.index],
                "cv": [float(v) for v in self.table["cv"]], "uniform": float(self.uniform)}

    @classmethod
    def from_dict(cls, d: dict) -> "RegSelection":
        """The inverse of :meth:`to_dict`."""
        table = pd.DataFrame({"cv": d["cv"]}, index=pd.Index(d["regs"], name="reg"))
        table["cv / uniform"] = table["cv"] / d["uniform"]
        return cls(reg=float(d["reg"]), table=table, uniform=float(d["uniform"]))


def _centred(e, name):
    e = check_array(e, name, dtype=np.float64)
    return e - e.mean(1, keepdims=True)


def select_reg(emb1, t1, emb2, t2, check1, check2, *, regs=REG_GRID, min_group_size: int = 2,
               keep_couplings: bool = False, **match_kwargs) -> RegSelection:
    r"""Choose ``reg`` by cross-fitting in the propensity space (see the module docstring).

    Parameters
    ----------
    emb1, t1, emb2, t2 :
        The logits the coupling is made from and the group labels, as for
        :func:`~propalign_lite.match_groups`.
    check1, check2 : arrays, the shapes of ``emb1`` and ``emb2``
        Logits of the same cells from a second, independently trained pair of classifiers.
    regs : sequence of float
        The grid (default :data:`REG_GRID`).
    min_group_size, **match_kwargs :
        Passed to :func:`~propalign_lite.match_groups` (e.g. ``reg_m``, ``max_iter``);
        ``method`` is ``"ot"``.
    keep_couplings : bool
        Keep the coupling of every ``reg`` in :attr:`RegSelection.couplings`.

    Returns
    -------
    RegSelection
    """
    from .matchers import match_groups

    x, y = check_array(emb1, "emb1"), check_array(emb2, "emb2")
    t1, t2 = check_labels(t1, "t1", len(x)), check_labels(t2, "t2", len(y))
    f1, f2 = _centred(check1, "check1"), _centred(check2, "check2")
    if f1.shape[0] != len(x) or f2.shape[0] != len(y) or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"check1 / check2 must hold the same cells as emb1 / emb2 in one "
                         f"space; got shapes {f1.shape}, {f2.shape} for {x.shape}, {y.shape}")
    regs = [float(r) for r in np.atleast_1d(np.asarray(regs, dtype=float))]
    if not regs or min(regs) <= 0 or not np.all(np.isfinite(regs)):
        raise ValueError(f"regs must be positive finite numbers, got {regs!r}")
    if match_kwargs.pop("method", "ot") != "ot":
        raise ValueError("select_reg chooses the reg of entropic OT (method='ot')")
    match_kwargs.setdefault("warn", False)

    def cv(couplings) -> float:
        err, n = 0.0, 0
        for g, M in couplings.items():
            i1, i2 = np.flatnonzero(t1 == g), np.flatnonzero(t2 == g)
            err += float(((f1[i1] - (M @ f2[i2])) ** 2).sum())
            n += len(i1)
        return err / n

    kw = dict(min_group_size=min_group_size, on_missing="skip")
    kept, scores = {}, []
    for r in sorted(regs):
        c = match_groups(x, t1, y, t2, method="ot", reg=r, **kw, **match_kwargs)
        scores.append(cv(c))
        if keep_couplings:
            kept[r] = c
    uniform = cv(match_groups(x, t1, y, t2, method="uniform", **kw))
    table = pd.DataFrame({"cv": scores}, index=pd.Index(sorted(regs), name="reg"))
    table["cv / uniform"] = table["cv"] / uniform
    best = table.index[len(scores) - 1 - int(np.argmin(scores[::-1]))]   # ties: larger reg
    return RegSelection(reg=float(best), table=table, uniform=uniform,
                        couplings=kept if keep_couplings else None)
