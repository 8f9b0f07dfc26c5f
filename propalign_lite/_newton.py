r"""Damped Newton steps on the entropic OT dual, restricted to the truncated kernel's support
(used by :mod:`propalign_lite.sinkhorn` after ten plain Sinkhorn iterations on a sparse
support)."""
from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, cg, spsolve


def newton_step(K, u, v, a, b, *, max_log_step: float, KT=None, direct_max: int = 30_000,
                cg_iter: int = 300, cg_rtol: float = 0.1):
    r"""One damped Newton step on the dual, restricted to the kept support.

    Returns new ``(u, v)``, or ``None`` when no ascent step was found. The dual of entropic OT
    in log scalings :math:`(f, g) = (\log u, \log v)`,

    .. math:: D(f, g) = a^\top f + b^\top g - \sum_{ij} e^{f_i} K_{ij} e^{g_j},

    has gradient :math:`(a - r, b - c)` with :math:`r = P1, c = P^\top 1` of the current plan
    :math:`P = \mathrm{diag}(u) K \mathrm{diag}(v)`, and its negated Hessian is
    :math:`H = [[\mathrm{diag}(r), P], [P^\top, \mathrm{diag}(c)]]`, sparse like the support.
    The step solves :math:`H d = \nabla D` with one potential held fixed (the dual is
    invariant to :math:`f + s, g - s`). While ``n1 + n2 <= direct_max`` it is solved by
    sparse LU. Above that, LU's fill-in on the support's giant connected component grows
    faster than the support (measured on the 12-d benchmark: 0.05 s a step at n1 = n2 =
    12,000, 4-5 s at 30,000, minutes and gigabytes at 100,000), so the step is an inexact one
    (inexact Newton, Dembo, Eisenstat & Steihaug 1982): Jacobi-preconditioned conjugate
    gradients, stopped at a relative residual of ``cg_rtol`` (the forcing term) or after
    ``cg_iter`` iterations, made safe by the line search below. No potential moves by more
    than ``max_log_step`` (log units) in one step.

    The conjugate gradients never form :math:`P` or :math:`H`: a product with :math:`H` is
    :math:`(r \odot d_f + u \odot K(v \odot d_g),\; c \odot d_g + v \odot K^\top(u \odot
    d_f))`, two products with the kernel (``KT``, :math:`K^\top`, when given), and the
    line search's :math:`\sum_{ij} P_{ij} e^{t(d_{f,i} + d_{g,j})} = (u e^{t d_f})^\top K
    (v e^{t d_g})` is one more. At n = 3x10^5 on the 12-d benchmark (14.6 pairs a row),
    where the formed plan, Hessian and their COO copies came on top of the kernels, the
    iterations' peak fell from 1.2 to 0.9 GB above the process's start, and their time from
    51 to 45 s.

    Measured on the 12-d benchmark (from the solver's state at its first Newton step, Newton
    steps to a marginal error of 5e-7), a forcing term of 0.1 against a near-exact solve
    (rtol 1e-10), both capped at 300 iterations: 8 steps and 5.8 s against 8 steps and
    16.3 s at n = 100,000; 6 and 0.73 s against 6 and 3.8 s at 50,000; 6 and 0.17 s against
    5 and 1.6 s at 30,000. A cap of 60 was faster still at 100,000 (2.1 s), but then an
    ill-conditioned group (the test's 300 noisy points forced onto this path) stalled near
    1e-7.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> K = sparse.csr_matrix(np.array([[1.0, 0.2], [0.2, 1.0]]))
    >>> a = b = np.array([0.5, 0.5])
    >>> u = v = np.full(2, 0.6)
    >>> float(np.abs(u * (K @ v) - a).max())                 # row marginal error
    0.068
    >>> for _ in range(3):
    ...     u, v = newton_step(K, u, v, a, b, max_log_step=10.0)
    >>> bool(np.abs(u * (K @ v) - a).max() < 1e-8)           # quadratic convergence
    True
    """
    n1, n2 = K.shape
    m = n1 + n2 - 1
    if m <= direct_max:
        P = K.multiply(u[:, None]).multiply(v[None, :]).tocsr() if sparse.issparse(K) \
            else sparse.csr_matrix(K * u[:, None] * v[None, :])
        r = np.asarray(P.sum(1)).ravel()
        c = np.asarray(P.sum(0)).ravel()
    else:
        if not sparse.issparse(K):
            K = sparse.csr_matrix(K)
        KT = K.T if KT is None else KT
        r = u * (K @ v)
        c = v * (KT @ u)
    grad = np.concatenate([a - r, b - c])
    # tiny ridge: the support graph may fall apart into components (singular Hessian)
    ridge = 1e-12 * float(max(r.max(), c.max()))
    d = np.zeros(n1 + n2)
    # sparse LU only while the support is sparse: on a dense support its fill-in makes one
    # step cost O(n^3) (seconds to minutes for groups of a few thousand)
    if m <= direct_max:
        H = sparse.bmat([[sparse.diags(r), P], [P.T, sparse.diags(c)]], format="csc")
        Hm = H[:m, :m] + ridge * sparse.identity(m, format="csc")
        d[:m] = spsolve(Hm, grad[:m], permc_spec="MMD_AT_PLUS_A")
    else:                                           # inexact Newton: Jacobi-preconditioned CG
        diag = np.concatenate([r, c])[:m] + ridge

        def hessian_times(x):
            full = np.zeros(n1 + n2)
            full[:m] = x.ravel()
            fa, fb = full[:n1], full[n1:]
            out = np.concatenate([r * fa + u * (K @ (v * fb)), c * fb + v * (KT @ (u * fa))])
            return out[:m] + ridge * x.ravel()

        Hm = LinearOperator((m, m), matvec=hessian_times, dtype=np.float64)
        pre = LinearOperator((m, m), matvec=lambda x: x.ravel() / diag, dtype=np.float64)
        d[:m], _ = cg(Hm, grad[:m], M=pre, rtol=cg_rtol, maxiter=cg_iter)
    if not np.isfinite(d).all():
        return None
    big = np.abs(d).max()
    if big > max_log_step:                          # trust region, in log units
        d *= max_log_step / big
    da, db = d[:n1], d[n1:]
    slope = float(grad @ d)
    base = float(u @ (K @ v))                       # sum of P: the line search's t = 0
    t = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(30):
            u_t, v_t = u * np.exp(t * da), v * np.exp(t * db)
            gain = t * (a @ da + b @ db) - float(u_t @ (K @ v_t)) + base
            if np.isfinite(gain) and gain >= 1e-4 * t * slope:
                return u_t, v_t
            t *= 0.5
    return None                                      # no ascent: take a Sinkhorn step
