r"""A dense plan held whole: Sinkhorn on the full kernel in float32, converged in float64.

When more than 30 % of all pairs lie above the truncation level, no support is sparse, and
the solver (:mod:`propalign_lite.sinkhorn`) holds the whole kernel
:math:`K_{ij} = \exp(\alpha_i + \beta_j - C_{ij}/\varepsilon)` instead, computed once, and
absorbs the scalings into it in place (:math:`K \leftarrow \mathrm{diag}(u) K
\mathrm{diag}(v)`, :math:`\alpha \leftarrow \alpha + \log u`, ...). Each iteration is two
matrix-vector products with :math:`K`; they are bound by memory traffic, so :math:`K` is held
in **float32**: half the memory and about half the time of float64.

Float32 sums are not accurate enough to *certify* a marginal error of :math:`10^{-6}`: a column
sum over :math:`n` terms can be off by a relative :math:`n 2^{-24}` in the worst case. So the
float32 error only says when to look. Once it is below ``0.9 tol``, the scalings are absorbed
and the potentials are checked by two exact float64 log-sum-exp passes over all pairs
(:meth:`~propalign_lite._blocked.BlockedCost.lse`): the row and column sums of
:math:`\exp(\alpha_i + \beta_j - C_{ij}/\varepsilon)` with every pair, no truncation. That
error is the one reported. Should the check fail, the float32 target is divided by 4; after
three failed checks (the float32 floor), the kernel is computed again in float64 and the
iterations go on there, where the computed error is exact to rounding.

**Underflow.** An entry below the smallest normal number (:math:`e^{-87.3}` in float32,
:math:`e^{-708}` in float64) is set to 0 (denormal numbers make the products many times
slower); it may grow afterwards by at most the rise ``rise`` of
the potentials since the kernel was computed. While :math:`-87.3 + \text{rise}` stays below
the truncation level, such entries are below it too, and the exact check covers them anyway;
past that, the kernel is computed again.

Example
-------
>>> import numpy as np
>>> from propalign_lite._blocked import BlockedCost
>>> rng = np.random.default_rng(0)
>>> x, y = 0.01 * rng.normal(size=(300, 2)), 0.01 * rng.normal(size=(200, 2))
>>> a, b = np.full(300, 1 / 300), np.full(200, 1 / 200)
>>> out = iterate_held(BlockedCost(x, y), np.zeros(300), np.zeros(200), a, b, 0.05,
...                    level=-50.0, it=1, max_iter=1000, tol=1e-6)
>>> out.converged, out.err < 1e-6, out.dtype
(True, True, 'float32')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ._fused import start_threads_keeping_torch
from ._relaxation import relaxed_scaling

#: the float32 error at which the exact check runs, as a fraction of ``tol``; it is divided
#: by TIGHTEN after a failed check, at most CHECKS times
TARGET, TIGHTEN, CHECKS = 0.9, 4.0, 3
#: iterations without a 1 % gain in the float32 error after which the exact check runs
STALL = 50
#: float32 is used only when ``tol >= F32_REACH * eps32 * ||b||`` (a column sum's float32
#: error is a relative multiple of eps32)
F32_REACH = 16.0


def held_support(P, level):
    """``(rows, cols)`` of the entries of a held plan ``P`` at or above ``e^level``, plus the
    largest entry of every row and column (the support a pass would give)."""
    keep = P >= np.exp(level)
    keep[np.arange(P.shape[0]), P.argmax(1)] = True
    keep[P.argmax(0), np.arange(P.shape[1])] = True
    return np.nonzero(keep)


@dataclass
class HeldResult:
    """What :func:`iterate_held` returns: potentials, iterations, the exact marginal error,
    the final support ``(rows, cols, logp)``, the kernels computed and the last dtype."""

    alpha: np.ndarray
    beta: np.ndarray
    it: int
    err: float
    converged: bool
    support: tuple
    kernels: int
    dtype: str


@njit(parallel=True, cache=True)
def absorb(K, u, v, tiny):
    """``K <- diag(u) K diag(v)`` in place, with the entries below ``tiny`` set to 0: float32
    denormals (below :math:`e^{-87.3}`) made the products with ``K`` 9 times slower
    (measured: 0.38 s against 0.042 s an iteration at 11,504 x 11,504)."""
    for i in prange(K.shape[0]):
        row = K[i]
        ui = u[i]
        for j in range(K.shape[1]):
            value = row[j] * ui * v[j]
            row[j] = value if value >= tiny else 0.0


def _kernel(cost, alpha, beta, reg, dtype):
    r"""The whole kernel :math:`\exp(\alpha_i + \beta_j - C_{ij}/\varepsilon)` in ``dtype``,
    with the entries below its smallest normal number set to 0 (no denormals)."""
    K = cost.log_kernel(alpha, beta, reg, dtype=dtype)
    np.exp(K, out=K)
    absorb(K, np.ones(K.shape[0], K.dtype), np.ones(K.shape[1], K.dtype), np.finfo(K.dtype).tiny)
    return K


def rounding_slack(max_cost, reg, a, b, log_bound=np.log(1e4)) -> float:
    r"""How far float64 rounding may move a computed marginal error: every entry
    :math:`\exp(\alpha_i + \beta_j - C_{ij}/\varepsilon)` carries a relative error below
    about :math:`(C_{\max}/\varepsilon + \log n + 4B)\,2^{-52}`, so the sums, and the error's
    norm, move by at most 4 times that times :math:`\max(\lVert a\rVert, \lVert b\rVert)`.
    Added to every reported error, so that it bounds the error any other exact summation
    finds (about 1e-14 at n = 300, reg 0.05)."""
    n = max(len(a), len(b))
    return float(4 * np.finfo(np.float64).eps * (max_cost / reg + np.log(n) + 4 * log_bound)
                 * max(np.linalg.norm(a), np.linalg.norm(b)))


def exact_error(cost, alpha, beta, a, b, reg) -> float:
    """The marginal error of the potentials, from exact log-sum-exps over all pairs, plus
    :func:`rounding_slack`."""
    cols = np.exp(cost.lse(alpha, beta, reg, axis=0))
    rows = np.exp(cost.lse(alpha, beta, reg, axis=1))
    return (max(float(np.linalg.norm(cols - b)), float(np.linalg.norm(rows - a)))
            + rounding_slack(cost.max_cost, reg, a, b))


def iterate_held(cost, alpha, beta, a, b, reg, *, level, it, max_iter, tol, omega=None,
                 dtype=np.float32, log_bound=np.log(1e4)):
    """Sinkhorn iterations on the whole kernel from the potentials ``alpha, beta`` (see the
    module doc); ``it`` iterations are already done. ``cost`` must offer ``log_kernel``,
    ``lse`` and ``exact_cost`` in float64 (``cost.as_float64()``)."""
    start_threads_keeping_torch()                   # absorb is a parallel loop
    n1, n2 = len(a), len(b)
    w = 1.0 if omega is None else float(omega)
    if tol < F32_REACH * np.finfo(np.float32).eps * np.linalg.norm(b):
        dtype = np.float64                          # float32 sums cannot get that close
    target, checks, kernels = TARGET * tol, 0, 0
    K, err, converged = None, np.inf, False
    while it < max_iter and not converged:
        if K is None:
            K = _kernel(cost, alpha, beta, reg, dtype)
            kernels += 1
            tiny = np.finfo(K.dtype).tiny
            log_tiny = float(np.log(tiny))
            rise = 0.0          # of the potentials since K was computed (see Underflow)
        u, v = np.ones(n1), np.ones(n2)
        Kv = (K @ v.astype(K.dtype)).astype(np.float64)
        check = recompute = False
        best, since = np.inf, it
        while it < max_iter:
            Ktu = (K.T @ u.astype(K.dtype)).astype(np.float64)
            err = max(float(np.linalg.norm(v * Ktu - b)), float(np.linalg.norm(u * Kv - a)))
            if err < 0.99 * best:
                best, since = err, it
            floor = K.dtype == np.float32 and it - since >= STALL   # float32's floor?
            if err < target or floor:
                check = True
                break
            it += 1
            v_new = b / Ktu
            v = relaxed_scaling(v, v_new, w, log_bound)
            Kv = (K @ v.astype(K.dtype)).astype(np.float64)
            u_new = a / Kv
            u = relaxed_scaling(u, u_new, w, log_bound)
            if not (np.isfinite(u).all() and np.isfinite(v).all()):
                raise FloatingPointError("Sinkhorn produced non-finite scalings; increase reg")
            if np.abs(np.log(u)).max() > log_bound or np.abs(np.log(v)).max() > log_bound:
                rise += max(np.log(u).max(), 0.0) + max(np.log(v).max(), 0.0)
                recompute = rise > level - log_tiny
                break
        # absorb the scalings, rounded as K sees them, into the potentials and the kernel
        u, v = u.astype(K.dtype), v.astype(K.dtype)
        alpha, beta = alpha + np.log(u.astype(np.float64)), beta + np.log(v.astype(np.float64))
        if recompute:
            K = None
            continue
        absorb(K, u, v, tiny)
        if check:
            err = exact_error(cost, alpha, beta, a, b, reg)
            converged = err < tol
            checks += 1
            target /= TIGHTEN
            if not converged and checks >= CHECKS and dtype != np.float64:
                dtype, K, target = np.float64, None, TARGET * tol    # the float32 floor
    if K is None:
        K = _kernel(cost, alpha, beta, reg, dtype)
    rows, cols = held_support(K, level)
    K = None
    logp = alpha[rows] + beta[cols] - cost.exact_cost(rows, cols) / reg
    if not converged:
        err = exact_error(cost, alpha, beta, a, b, reg)
        converged = err < tol
    return HeldResult(alpha, beta, it, err, converged, (rows, cols, logp), kernels,
                      np.dtype(dtype).name)
