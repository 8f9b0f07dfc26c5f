r"""Unbalanced entropic OT: marginals relaxed by a KL penalty, for groups of unequal make-up.

Balanced OT makes every cell send and receive exactly its share of mass. When a group holds
cells in one modality that have no counterpart in the other (a cell state sampled in one
experiment only, or a group halved by a filter), those cells must still send their mass
somewhere: to wrong partners. The unbalanced problem (Chizat, Peyré, Schmitzer and Vialard
2018; Séjourné et al. 2023) replaces the hard marginal constraints by penalties,

.. math:: \min_{P \ge 0}\; \langle C, P\rangle + \varepsilon\,\mathrm{KL}(P \,\|\, a b^\top)
          + \tau_1\,\mathrm{KL}(P\mathbf 1 \,\|\, a) + \tau_2\,\mathrm{KL}(P^\top\mathbf 1 \,\|\, b),

with :math:`\tau_1, \tau_2` = ``reg_m`` (:math:`\tau \to \infty` is balanced OT; a small
:math:`\tau` lets cells without a good partner keep their mass). It is solved by the scaling
iterations of POT's ``ot.unbalanced.sinkhorn_unbalanced`` (its default ``reg_type="kl"``),
written in the log domain: with :math:`P_{ij} = a_i b_j \exp(f_i + g_j - C_{ij}/\varepsilon)`,

.. math:: f_i \leftarrow -\tfrac{\tau_1}{\tau_1+\varepsilon}\,
          \mathrm{LSE}_j\big(g_j + \log b_j - C_{ij}/\varepsilon\big), \qquad
          g_j \leftarrow -\tfrac{\tau_2}{\tau_2+\varepsilon}\,
          \mathrm{LSE}_i\big(f_i + \log a_i - C_{ij}/\varepsilon\big),

until no potential moves by more than ``tol`` (log units). Every pass is a block pass over
the cost (the private ``BlockedCost``), so :func:`sinkhorn_unbalanced_online`
never holds the :math:`n_1 \times n_2` matrix.

Example
-------
>>> import numpy as np, ot
>>> from propalign_lite.matchers import euclidean_cost
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2))
>>> C = euclidean_cost(x, y)
>>> res = sinkhorn_unbalanced(C, 0.5, reg_m=1.0)
>>> ref = ot.unbalanced.sinkhorn_unbalanced(np.full(30, 1 / 30), np.full(20, 1 / 20), C, 0.5, 1.0,
...                                         numItermax=5000, stopThr=1e-12)
>>> bool(np.allclose(res.plan, ref, atol=1e-9))
True

References
----------
Chizat, Peyré, Schmitzer, Vialard (2018), *Scaling algorithms for unbalanced optimal transport
problems*, Math. Comp.; Séjourné, Peyré, Vialard (2023), *Unbalanced optimal transport, from
theory to numerics*; Flamary et al. (2021), *POT: Python Optimal Transport*, JMLR.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ._blocked import BlockedCost, DenseCost
from ._validation import check_array, check_number
from .sinkhorn import PAPER_REG, ConvergenceWarning, SinkhornResult, check_solver_params

__all__ = ["UnbalancedResult", "check_reg_m", "sinkhorn_unbalanced",
           "sinkhorn_unbalanced_online"]


@dataclass
class UnbalancedResult(SinkhornResult):
    """A :class:`~propalign_lite.sinkhorn.SinkhornResult` with the plan's marginals.

    ``alpha``, ``beta`` are such that :math:`P_{ij} = \\exp(\\alpha_i + \\beta_j -
    C_{ij}/\\varepsilon)` (``alpha = f + log a``); ``a``, ``b`` the weights;
    ``row_mass`` / ``col_mass`` are :math:`P\\mathbf 1` and :math:`P^\\top \\mathbf 1`;
    ``err`` is the last change of the potentials (log units)."""

    row_mass: np.ndarray = None
    col_mass: np.ndarray = None
    a: np.ndarray = field(default=None, repr=False)
    b: np.ndarray = field(default=None, repr=False)

    def unmatched_fraction(self, side: int = 1) -> float:
        """Share of a side's mass the plan leaves behind: :math:`\\sum_i (a_i - (P1)_i)_+`
        over :math:`\\sum_i a_i` (side 1: rows, 2: columns)."""
        mass = self.row_mass if side == 1 else self.col_mass
        ref = self.a if side == 1 else self.b
        return float(np.clip(ref - mass, 0, None).sum() / ref.sum())


def check_reg_m(reg_m) -> tuple[float, float]:
    """``reg_m`` as a pair ``(tau1, tau2)`` of positive numbers (``np.inf`` = that side
    balanced); one number is used for both sides."""
    pair = reg_m if isinstance(reg_m, (tuple, list)) else (reg_m, reg_m)
    if len(pair) != 2:
        raise ValueError(f"reg_m must be a number or a pair (tau1, tau2), got {reg_m!r}")
    out = []
    for k, v in zip(("reg_m[0]", "reg_m[1]"), pair):
        if isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and v == np.inf:
            out.append(np.inf)
        else:
            check_number(v, k, low=0.0, low_open=True)
            out.append(float(v))
    return out[0], out[1]


def _weights(w, n: int, name: str) -> np.ndarray:
    """Uniform weights summing to one, or the given positive weights (any total: the
    unbalanced problem does not need equal masses)."""
    if w is None:
        return np.full(n, 1.0 / n)
    w = check_array(w, name, ndim=1)
    if len(w) != n or (w <= 0).any():
        raise ValueError(f"{name} must hold {n} positive weights, got {len(w)} values "
                         f"(min {w.min() if len(w) else 'n/a'})")
    return w


def _solve(cost: BlockedCost, a, b, reg, reg_m, *, max_iter, tol, warn):
    tau1, tau2 = check_reg_m(reg_m)
    k1 = 1.0 if tau1 == np.inf else tau1 / (tau1 + reg)
    k2 = 1.0 if tau2 == np.inf else tau2 / (tau2 + reg)
    log_a, log_b = np.log(a), np.log(b)
    f, g = np.zeros(cost.n1), np.zeros(cost.n2)
    zeros1, zeros2 = np.zeros(cost.n1), np.zeros(cost.n2)
    err, converged, it = np.inf, False, 0
    while it < max_iter:
        it += 1
        f_new = -k1 * cost.lse(zeros1, g + log_b, reg, axis=1)
        g_new = -k2 * cost.lse(f_new + log_a, zeros2, reg, axis=0)
        err = max(float(np.abs(f_new - f).max()), float(np.abs(g_new - g).max()))
        f, g = f_new, g_new
        if not (np.isfinite(f).all() and np.isfinite(g).all()):
            raise FloatingPointError("unbalanced Sinkhorn produced non-finite potentials; "
                                     "increase reg")
        if err < tol:
            converged = True
            break
    alpha, beta = f + log_a, g + log_b
    row = np.exp(cost.lse(alpha, beta, reg, axis=1))
    col = np.exp(cost.lse(alpha, beta, reg, axis=0))
    res = UnbalancedResult(plan=None, n_iter=it, err=err, converged=converged, alpha=alpha,
                           beta=beta, reg=reg, row_mass=row, col_mass=col, a=a, b=b)
    if warn and not converged:
        warnings.warn(f"unbalanced Sinkhorn stopped after max_iter={it} iterations with a "
                      f"potential change of {err:.3g} (> tol={tol:g})", ConvergenceWarning,
                      stacklevel=3)
    return res


def sinkhorn_unbalanced(cost, reg: float = PAPER_REG, *, reg_m=1.0, a=None, b=None,
                        max_iter: int = 1000, tol: float = 1e-9,
                        warn: bool = True) -> UnbalancedResult:
    """Unbalanced entropic OT on a cost matrix in memory; ``res.plan`` is the plan
    :math:`P` (not row-normalised). See the module docstring for the problem and
    ``reg_m``; ``a``, ``b`` default to uniform weights summing to one."""
    check_solver_params(reg, max_iter, tol)
    C = check_array(cost, "cost")
    a, b = _weights(a, C.shape[0], "a"), _weights(b, C.shape[1], "b")
    res = _solve(DenseCost(C), a, b, float(reg), reg_m, max_iter=max_iter, tol=tol,
                 warn=warn)
    res.plan = np.exp(res.alpha[:, None] + res.beta[None, :] - C / reg)
    return res


def sinkhorn_unbalanced_online(x, y, reg: float = PAPER_REG, *, reg_m=1.0, max_iter: int = 1000,
                               tol: float = 1e-9, device: str = "cpu",
                               warn: bool = True) -> UnbalancedResult:
    """:func:`sinkhorn_unbalanced` on embeddings, with the plain Euclidean cost computed
    block by block (memory :math:`O((n_1 + n_2) d)`); uniform weights. The result feeds
    :class:`~propalign_lite.coupling.ImplicitCoupling` like a balanced one."""
    check_solver_params(reg, max_iter, tol)
    x, y = check_array(x, "x"), check_array(y, "y")
    a, b = _weights(None, len(x), "a"), _weights(None, len(y), "b")
    return _solve(BlockedCost(x, y, dtype=np.float64, device=device), a, b, float(reg), reg_m,
                  max_iter=max_iter, tol=tol, warn=warn)
