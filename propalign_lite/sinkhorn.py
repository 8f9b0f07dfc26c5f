r"""Entropic optimal transport by Sinkhorn iterations and Newton steps on a truncated kernel.

Problem (uniform marginals by default, :math:`\varepsilon` = ``reg``)

.. math:: \min_{P \mathbf 1 = a,\; P^\top \mathbf 1 = b} \langle C, P\rangle - \varepsilon H(P),
          \qquad P_{ij} = \exp(\alpha_i + \beta_j - C_{ij}/\varepsilon),

where :math:`\alpha, \beta` are the dual potentials in log units (POT's
``log_u``, ``log_v``; :math:`f = \varepsilon\alpha`, :math:`g = \varepsilon\beta`). The fixed
point is the one of ``ot.sinkhorn(a, b, C, reg, method="sinkhorn_log")``; the stopping rule is
POT's, :math:`\lVert P^\top \mathbf 1 - b\rVert_2 <` ``tol``. Three things make it fast:

1. **Log-stable start.** The first iteration is the log-domain one
   (:math:`\beta = \log b - \mathrm{LSE}_i(-C_{ij}/\varepsilon)`, then :math:`\alpha`), so the
   remaining scalings are bounded whatever :math:`C/\varepsilon`. Its log-sum-exps leave out
   the terms more than :math:`\log n +` ``START_DEPTH`` (5) below each largest one: a start
   needs no more, and on a sparse plan the compiled passes then do exact work for far fewer
   pairs (at n = 100,000 on 2 cores, the start took 10.3 s instead of 18.3 s). With the
   compiled passes, one pass over all pairs (columns against rows, from a k-d tree's near
   row of each column) gives both the start and the first candidates
   (``propalign_lite._column_start``), where the plain start makes two passes and the
   first support build a third.
2. **Truncated kernel** (Schmitzer 2019). At the paper's :math:`\varepsilon = 0.05` almost all
   of :math:`P` is below :math:`e^{-40}` of its largest entries. Only the pairs with
   :math:`\log P_{ij} \ge \ell` are kept (a sparse kernel :math:`K`); the scalings :math:`u, v`
   are updated on :math:`K`, and while :math:`|\log u|, |\log v| \le B` every dropped entry
   stays below :math:`e^{\ell + 2B}`, so the dropped mass is bounded and added to the reported
   error. :math:`\ell` is set from ``tol`` so that this bound is :math:`\le` ``tol``/100. When a
   scaling leaves :math:`[e^{-B}, e^B]` it is absorbed into the potentials and the support is
   rebuilt: from the candidate pairs of the last pass over all pairs when the potentials have
   risen by less than the candidates' extra depth (``propalign_lite._kernel_support``: pairs
   down to :math:`\ell - 3B`, or to :math:`\ell - 3B/2^k` for the smallest :math:`k \le 3`
   whose pairs are at most 64 a row, all counted in the one pass), after rescanning only the
   few rows and columns that rose further (a repair), else by a new pass over the cost (on
   the CPU, the compiled loops of ``propalign_lite._support_pass``: float32 screens, float64
   decisions).
3. **Newton steps on the support.** After ten plain iterations on a sparse support (at most
   16 entries a row), each step is a damped Newton step on the dual restricted to the kept
   pairs (``propalign_lite._newton``: sparse LU, or inexact conjugate gradients on large
   supports, with a line search); on a dense support, plain Sinkhorn iterations are used, as
   POT does.
   A dense support (over 30 % of the pairs, and at most ``max_nnz``) is replaced by the whole
   kernel in float32, computed once; its scalings are then absorbed into it in place, with no
   further support pass, and the result is checked by exact float64 passes
   (``propalign_lite._held``).

Over-relaxation (Thibault et al. 2017; Lehmann et al. 2022),
:math:`v \leftarrow v^{1-\omega}(b / K^\top u)^\omega` and the same for :math:`u`, is applied
only with a fixed ``omega`` given by the caller; the default (``omega=None``) is plain
scaling (:math:`\omega = 1`). No rate is measured and no :math:`\omega` is chosen
automatically. A step whose over-relaxed scaling would leave :math:`[e^{-B}, e^B]` is taken
plain (``propalign_lite._relaxation.relaxed_scaling``, whose module doc says why no factor
is chosen automatically): near :math:`\omega = 2` one step could
otherwise overflow the float32 held kernel's products.

:func:`sinkhorn` works on a cost matrix in memory and returns the plan;
:func:`sinkhorn_online` works on the embeddings and never forms the :math:`n_1 \times n_2`
cost (block passes in numpy, or torch with ``device="cuda"``), returning potentials from which
:class:`~propalign_lite.coupling.ImplicitCoupling` evaluates the plan on demand.

Example
-------
>>> import numpy as np
>>> from propalign_lite.matchers import euclidean_cost
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(100, 3)), rng.normal(size=(80, 3))
>>> res = sinkhorn(euclidean_cost(x, y), 0.05)
>>> res.converged, bool(abs(res.plan.sum() - 1) < 1e-9), res.n_iter < 1000
(True, True, True)

Near-permutation problems converge slowly at small ``reg``: with ``y = x + 0.1 * noise`` (100
points) neither this solver nor POT's ``sinkhorn_log`` reaches ``tol=1e-10`` in 1,000
iterations (both stop near ``err = 3e-5``; after 20,000 both are at ``1.4e-6``). Such a run
ends with a :class:`ConvergenceWarning` and ``converged=False``, never silently.

References
----------
Cuturi (2013), *Sinkhorn distances*. Schmitzer (2019), *Stabilized sparse scaling algorithms
for entropy regularized transport problems*, SIAM J. Sci. Comput. Thibault, Chizat, Dossal,
Papadakis (2017), *Overrelaxed Sinkhorn-Knopp algorithm for regularized optimal transport*.
Lehmann, von Renesse, Sambale, Uschmajew (2022), *A note on overrelaxation in the Sinkhorn
algorithm*, Optim. Lett.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

#: The paper's entropic regularisation :math:`\varepsilon` (Xi et al. 2024; the official code's
#: ``reg``): the default of every solver and matcher of the package.
PAPER_REG = 0.05

from ._blocked import DEFAULT_BLOCK, BlockedCost, DenseCost
from ._truncated import (LOG_BOUND, MAX_COST_OVER_REG, START_DEPTH,  # noqa: F401
                         check_cost_scale, solve_truncated, support_level)
from ._tree_support import TooManyCandidates, TreeCost, tree_pays
from ._relaxation import check_omega
from ._validation import check_array

__all__ = ["PAPER_REG", "LOG_BOUND", "MAX_COST_OVER_REG", "ConvergenceWarning",
           "SinkhornResult", "check_solver_params", "check_cost_scale", "WARN_ERR",
           "needs_warning", "sinkhorn", "sinkhorn_online"]


class ConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` before the marginal error reached ``tol``."""


@dataclass
class SinkhornResult:
    """Plan (dense path only), potentials and diagnostics of a Sinkhorn solve.

    ``alpha``, ``beta`` are the log-potentials: :math:`P_{ij} = \\exp(\\alpha_i + \\beta_j -
    C_{ij}/\\varepsilon)`; ``err`` the marginal error :math:`\\lVert P^\\top\\mathbf 1 -
    b\\rVert_2` (exact on the dense path; on the online path the error on the kept support plus
    the bound on the dropped mass); ``n_iter`` the number of Sinkhorn iterations; ``nnz`` the
    size of the last truncated support and ``n_builds`` how often it was built;
    ``support_search`` how the online path found the support (``"blocked"`` passes, k-d
    ``"tree"`` queries, or ``"tree->blocked"`` when the trees found too many candidates);
    ``timings`` the wall seconds of each stage of the solve (``start``, ``passes``,
    ``repairs``, ``support``, ``iterations``, and ``held`` or ``fallback`` where they ran; see
    ``propalign_lite._truncated.solve_truncated``).
    """

    plan: np.ndarray | None
    n_iter: int
    err: float
    converged: bool
    alpha: np.ndarray = field(default=None, repr=False)
    beta: np.ndarray = field(default=None, repr=False)
    reg: float = PAPER_REG
    nnz: int = 0
    n_builds: int = 0
    support: tuple | None = field(default=None, repr=False)
    support_search: str | None = None
    timings: dict | None = field(default=None, repr=False)


def check_solver_params(reg, max_iter, tol) -> None:
    """Clear errors for a bad ``reg``, ``max_iter`` or ``tol`` (the package's one rule for
    numbers: no bools, strings or complex; finite; in range)."""
    from ._validation import check_int, check_number

    check_number(reg, "reg", low=0.0, low_open=True)
    check_int(max_iter, "max_iter", min_value=1)
    check_number(tol, "tol", low=0.0, low_open=True)


def _marginals(a, b, n1, n2):
    a = np.full(n1, 1.0 / n1) if a is None else check_array(a, "a", ndim=1)
    b = np.full(n2, 1.0 / n2) if b is None else check_array(b, "b", ndim=1)
    if a.shape[0] != n1 or b.shape[0] != n2:
        raise ValueError(f"marginals of length {a.shape[0]}, {b.shape[0]} do not fit a "
                         f"problem of shape {(n1, n2)}")
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError("marginals a and b must be positive")
    if abs(a.sum() - b.sum()) > 1e-8 * a.sum():
        raise ValueError(f"marginals must have the same mass, got {a.sum():.6g} and "
                         f"{b.sum():.6g}")
    return a, b


#: an unconverged plan is reported when its marginal error is above this (or above ``tol``):
#: the default ``tol`` of 1e-10 (POT's) is far below what any use of the plan can see
WARN_ERR = 1e-4


def needs_warning(res) -> bool:
    """Whether an unconverged result is far enough from its marginals to be reported."""
    return (not res.converged) and res.err > WARN_ERR


def _warn_unconverged(res, where: str = "sinkhorn"):
    warnings.warn(f"{where}: Sinkhorn stopped after max_iter={res.n_iter} iterations with "
                  f"marginal error {res.err:.3g} (tolerance not reached); the plan is not the "
                  "entropic OT solution yet -- increase max_iter or reg, or loosen tol",
                  ConvergenceWarning, stacklevel=3)


def sinkhorn(cost, reg: float = PAPER_REG, *, a=None, b=None, max_iter: int = 1000,
             tol: float = 1e-10, omega: float | None = None, max_nnz: int = 10 ** 8,
             warn: bool = True) -> SinkhornResult:
    r"""Entropic OT plan of a cost matrix in memory (see the module docstring).

    Parameters
    ----------
    cost : (n1, n2) array
    reg : float
        :math:`\varepsilon > 0` (0.05 in the paper).
    a, b : arrays, optional
        Marginals (default uniform).
    max_iter : int
        Maximal number of Sinkhorn iterations (>= 1).
    tol : float
        Stop when :math:`\lVert P^\top\mathbf 1 - b\rVert_2 <` ``tol`` (POT's ``stopThr``).
    omega : float, optional
        A fixed over-relaxation factor in (0, 2) for the plain scaling steps; ``None``
        (default) means no over-relaxation (:math:`\omega = 1`).
    warn : bool
        Emit a :class:`ConvergenceWarning` when ``tol`` is not reached.

    Returns
    -------
    SinkhornResult
        ``plan`` (marginals ``a``, ``b``; not row-normalised), ``n_iter``, ``err`` (exact, of
        the returned plan), ``converged``, potentials ``alpha``, ``beta``.
    """
    C = check_array(cost, "cost")
    check_solver_params(reg, max_iter, tol)
    check_omega(omega)
    a, b = _marginals(a, b, *C.shape)
    timings = {}
    alpha, beta, it, err, conv, nb, _ = solve_truncated(
        DenseCost(C), a, b, reg, max_iter=max_iter, tol=tol, omega=omega, max_nnz=max_nnz,
        timings=timings)
    with np.errstate(under="ignore"):
        plan = C * (-1.0 / reg)
        plan += alpha[:, None]
        plan += beta[None, :]
        np.exp(plan, out=plan)
    if not np.isfinite(plan).all():
        raise FloatingPointError("Sinkhorn produced non-finite values; increase reg")
    err = float(np.linalg.norm(plan.sum(0) - b))
    conv = conv or err < tol
    res = SinkhornResult(plan=plan, n_iter=it, err=err, converged=conv, alpha=alpha,
                         beta=beta, reg=reg, n_builds=nb, timings=timings)
    if warn and needs_warning(res):
        _warn_unconverged(res)
    return res


def sinkhorn_online(x, y, reg: float = PAPER_REG, *, a=None, b=None, max_iter: int = 1000,
                    tol: float = 1e-10, omega: float | None = None, device: str = "cpu",
                    block_size: int = DEFAULT_BLOCK, max_nnz: int = 10 ** 8,
                    verify: bool = False, warn: bool = True,
                    backend: str | None = None, support: str = "auto") -> SinkhornResult:
    r"""Entropic OT between point clouds without ever holding the :math:`n_1\times n_2` cost.

    Same problem and stopping rule as :func:`sinkhorn` on ``euclidean_cost(x, y)``; the cost
    is computed ``block_size`` entries at a time (float32 with a rounding margin for the
    support search, float64 for every kept entry), in numpy or, with ``device="cuda"`` (or
    ``backend="torch"``), torch.
    ``support="tree"`` finds the truncated kernel (and the start's log-sum-exps) by k-d tree
    radius queries instead (``propalign_lite._tree_support.TreeCost``: the same pairs,
    no pass over all :math:`n_1 n_2` pairs; CPU only); ``"blocked"`` always uses block passes;
    ``"auto"`` (default) takes the trees on the CPU when
    ``_tree_support.tree_pays`` (a timed pilot on large problems). Should the trees find more
    than ``max_nnz`` candidate pairs, the solve
    restarts with block passes, with a warning, and ``support_search`` says ``"tree->blocked"``.
    A support of more than ``max_nnz`` pairs is counted by the passes and never gathered:
    the solve goes on with exact block log-sum-exp iterations, which hold no pair (much
    slower; a warning after the first gives its time).
    ``verify=True`` adds one exact block log-sum-exp pass that measures the true marginal
    error of the returned potentials (otherwise ``err`` is the kept-support error plus the
    bound on the dropped mass, an upper bound). Returns a :class:`SinkhornResult` with
    ``plan=None``; wrap it with :class:`~propalign_lite.coupling.ImplicitCoupling`.
    """
    x = check_array(x, "x")
    y = check_array(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and "
                         f"{y.shape[1]}")
    check_solver_params(reg, max_iter, tol)
    check_omega(omega)
    a, b = _marginals(a, b, len(x), len(y))
    if support not in ("auto", "tree", "blocked"):
        raise ValueError(f"support must be 'auto', 'tree' or 'blocked', got {support!r}")
    on_cpu = device == "cpu" and backend in (None, "numpy")
    if support == "tree" and not on_cpu:
        raise ValueError("support='tree' runs on the CPU (numpy) only; use support='blocked' "
                         f"with device={device!r}")
    depth = -support_level(tol, max(len(x), len(y))) - np.log(max(len(x), len(y)))
    use_tree = support == "tree" or (support == "auto" and on_cpu
                                     and tree_pays(x, y, reg, depth, max_pairs=max_nnz))
    search, out = "blocked", None
    timings = {}
    kwargs = dict(max_iter=max_iter, tol=tol, omega=omega, max_nnz=max_nnz, timings=timings)
    if use_tree:
        try:
            out = solve_truncated(TreeCost(x, y, max_pairs=max_nnz), a, b, reg, **kwargs)
            search = "tree"
        except TooManyCandidates as exc:
            warnings.warn(f"{exc}; solving with block passes over all pairs instead",
                          RuntimeWarning, stacklevel=2)
            search = "tree->blocked"
    if out is None:
        cost = BlockedCost(x, y, device=device, block_size=block_size, backend=backend)
        out = solve_truncated(cost, a, b, reg, **kwargs)
    alpha, beta, it, err, conv, nb, kept = out
    if verify:
        exact = BlockedCost(x, y, dtype=np.float64, device=device, block_size=block_size,
                            backend=backend)
        err = float(np.linalg.norm(np.exp(exact.lse(alpha, beta, reg, axis=0)) - b))
        conv = err < tol
    res = SinkhornResult(plan=None, n_iter=it, err=err, converged=conv, alpha=alpha,
                         beta=beta, reg=reg, nnz=0 if kept is None else kept[0].size,
                         n_builds=nb, support=kept, support_search=search, timings=timings)
    if warn and needs_warning(res):
        _warn_unconverged(res, "sinkhorn_online")
    return res
