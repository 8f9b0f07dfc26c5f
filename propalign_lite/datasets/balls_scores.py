r"""Exact propensity scores :math:`P(t \mid x^{(e)})` of the two-view ball images.

What a perfect classifier of one view would output. The images are drawn without
anti-aliasing, so view :math:`e` shows each ball's position only up to its pixel cell
:math:`q^{(e)}` (view 1: :math:`\lfloor S p\rfloor`; view 2: :math:`\lfloor S p'\rfloor` with
:math:`p'` the view's fixed transform of :math:`p`), and the backgrounds carry no information on
:math:`t` (assumption A1). Hence

.. math:: \pi^{(e)}_{t'}(x) = P(t' \mid q^{(e)}) \propto P(q^{(e)} \mid t'),
          \qquad t' = 3k' + \mathrm{index}(v'),

with a uniform prior over the 12 treatments. Under :math:`t' = (k', v')` the intervened
coordinate is exactly :math:`v'`, so :math:`P(q \mid t') = 0` unless the cell of coordinate
:math:`k'` contains :math:`v'`. A scene therefore has a non-zero score only for treatments whose
value happens to lie in its cells (a *coincidence*). **Scenes without a coincidence have the
one-hot score of their own treatment**, which carries no information on :math:`z` within the
treatment group. The likelihoods of coincident treatments are cell measures of the SCM of
:mod:`~propalign_lite.datasets.balls`, computed on midpoint grids (``10 grid`` points per unit
length on the lines of an intervened coordinate, ``grid`` per unit and axis over the parent
ball's square, which the SCM's region boundary cuts, and ``grid / 4`` over the child's boxes).
A cell that the region boundary cuts in a sliver thinner than the grid gets measure zero; a
scene whose every treatment has zero measure (1 of 12,000 scenes at 32 px in one check) falls
back to the one-hot score of its own treatment.

Not modelled: a ball hidden by the other ball (both drawn at nearly the same place, which is
rare); there the image shows less than :math:`q` and the exact score is flatter than the one
returned.

Example
-------
>>> import numpy as np
>>> from propalign_lite.datasets.balls import sample_latents
>>> z, t, k, v = sample_latents(2000, random_state=0)
>>> pi = exact_propensity(z, view=1, image_size=64)
>>> bool(np.allclose(pi.sum(1), 1)), bool((pi[np.arange(2000), t] > 0).all())
(True, True)
>>> float((pi.max(1) == 1).mean()) > 0.8            # most scores are one-hot
True
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._validation import check_array, check_int
from .balls import INTERVENTION_VALUES, view2_transform

__all__ = ["CHILD_BOX", "pixel_cells", "exact_likelihood", "exact_propensity"]

LOW, HIGH = 0.1, 0.9                   # parent coordinates ~ U(LOW, HIGH)
# child box of each parent region: (x2 range, y2 range)
CHILD_BOX = {True: ((0.1, 0.5), (0.5, 0.9)), False: ((0.5, 0.9), (0.1, 0.5))}


def _upper(x1, y1):
    """The SCM's parent region: ``1.25 (x1^2 + y1^2) >= 1`` puts the child upper-left."""
    return 1.25 * (x1 ** 2 + y1 ** 2) >= 1.0


def pixel_cells(p: np.ndarray, view: int, image_size: int) -> np.ndarray:
    """Integer pixel cell of ball positions ``p (..., 2)`` in a view, as the renderer places it."""
    q = view2_transform(p) if view == 2 else p
    return np.floor(image_size * q).astype(np.int64)


def _midpoints(lo, hi, per_unit):
    m = max(int(round((hi - lo) * per_unit)), 1)
    return lo + (np.arange(m) + 0.5) * (hi - lo) / m


def _cell_table(points, weights, view, S):
    """Measure per pixel cell: ``(S, S)`` array, summing ``weights`` of ``points (m, 2)``."""
    c = pixel_cells(points, view, S)
    out = np.zeros((S, S))
    np.add.at(out, (np.clip(c[:, 0], 0, S - 1), np.clip(c[:, 1], 0, S - 1)), weights)
    return out


@lru_cache(maxsize=8)
def _tables(view: int, S: int, grid: int):
    """Cell measures of every piece of the SCM, for one view and image size.

    Returns ``child[upper]`` (child ball free in its box), ``ball1[upper]`` (parent ball free
    in the square, split by region), ``line1[k, vi][upper]`` (parent ball on the line of an
    intervened parent coordinate) and ``line2[k, vi][upper]`` (child ball on the line of an
    intervened child coordinate); each an ``(S, S)`` array of probabilities.
    """
    child, ball1, line1, line2 = {}, {}, {}, {}
    grid2, grid = grid // 4, grid * 10         # 2-d tables coarser, 1-d lines finer
    for up, ((xa, xb), (ya, yb)) in CHILD_BOX.items():
        gx, gy = np.meshgrid(_midpoints(xa, xb, grid2), _midpoints(ya, yb, grid2),
                             indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], 1)
        child[up] = _cell_table(pts, np.full(len(pts), 1.0 / len(pts)), view, S)
    g = _midpoints(LOW, HIGH, grid // 10)     # the region boundary cuts these cells: finer
    gx, gy = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    up = _upper(pts[:, 0], pts[:, 1])
    for u in (True, False):
        ball1[u] = _cell_table(pts, (up == u) / len(pts), view, S)
    g = _midpoints(LOW, HIGH, grid)
    for vi, v in enumerate(INTERVENTION_VALUES):
        for k in (0, 1):                                # parent coordinate set to v
            pts = np.stack([np.full_like(g, v), g], 1) if k == 0 else \
                np.stack([g, np.full_like(g, v)], 1)
            up = _upper(pts[:, 0], pts[:, 1])
            line1[k, vi] = {u: _cell_table(pts, (up == u) / len(g), view, S)
                            for u in (True, False)}
        for k in (2, 3):                                # child coordinate set to v
            line2[k, vi] = {}
            for u, ((xa, xb), (ya, yb)) in CHILD_BOX.items():
                free = _midpoints(*((ya, yb) if k == 2 else (xa, xb)), grid)
                pts = np.stack([np.full_like(free, v), free], 1) if k == 2 else \
                    np.stack([free, np.full_like(free, v)], 1)
                line2[k, vi][u] = _cell_table(pts, np.full(len(free), 1.0 / len(free)),
                                              view, S)
    return child, ball1, line1, line2


def exact_likelihood(z, *, view: int, image_size: int, grid: int = 4000) -> np.ndarray:
    r""":math:`P(q^{(e)}(z) \mid t')` for every scene and treatment: ``(n, 12)``.

    ``z`` are the latents ``(n, 4)`` = (x1, y1, x2, y2) of the scenes (their images fix the
    cells :math:`q`); ``grid`` midpoints per unit length discretise the free coordinates.
    """
    z = check_array(z, "z", ndim=2)
    if z.shape[1] != 4:
        raise ValueError(f"z must have 4 columns (x1, y1, x2, y2), got {z.shape[1]}")
    if view not in (1, 2):
        raise ValueError(f"view must be 1 or 2, got {view!r}")
    S = check_int(image_size, "image_size", min_value=2)
    grid = check_int(grid, "grid", min_value=10)
    child, ball1, line1, line2 = _tables(view, S, grid)
    c1 = np.clip(pixel_cells(z[:, :2], view, S), 0, S - 1)
    c2 = np.clip(pixel_cells(z[:, 2:], view, S), 0, S - 1)
    i1, i2 = (c1[:, 0], c1[:, 1]), (c2[:, 0], c2[:, 1])
    lik = np.zeros((len(z), 4 * len(INTERVENTION_VALUES)))      # t = 3k + index(v)
    for vi in range(len(INTERVENTION_VALUES)):
        for k in (0, 1):            # ball 1 on a line, ball 2 free in the box of its region
            lik[:, 3 * k + vi] = sum(line1[k, vi][u][i1] * child[u][i2] for u in (True, False))
        for k in (2, 3):            # ball 1 free in the square, ball 2 on a line
            lik[:, 3 * k + vi] = sum(ball1[u][i1] * line2[k, vi][u][i2] for u in (True, False))
    return lik


def exact_propensity(z, t=None, *, view: int, image_size: int,
                     grid: int = 4000) -> np.ndarray:
    r"""Exact propensity scores :math:`P(t' \mid x^{(e)})`, ``(n, 12)`` rows summing to 1.

    Bayes' rule on ``exact_likelihood`` with the simulator's uniform prior over the 12
    treatments. ``t`` (the scenes' treatments) is needed only for the rare scene whose every
    treatment has measure zero on the grid: it then gets the one-hot score of its own
    treatment; without ``t`` such a scene raises ``ValueError``.
    """
    lik = exact_likelihood(z, view=view, image_size=image_size, grid=grid)
    tot = lik.sum(1, keepdims=True)
    empty = np.flatnonzero(tot[:, 0] <= 0)
    if empty.size:
        if t is None:
            raise ValueError(f"{empty.size} scene(s) have zero likelihood under every "
                             "treatment on this grid; pass their treatments t (they get a "
                             "one-hot score) or raise grid")
        t = check_array(t, "t", ndim=1, dtype=np.int64)
        lik[empty, t[empty]] = 1.0                      # those rows are all zero
        tot[empty] = 1.0
    return lik / tot
