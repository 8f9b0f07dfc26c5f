r"""SCOT: matching by Gromov-Wasserstein optimal transport on the raw data.

SCOT (Demetci et al., 2022) needs no shared space and no labels. It compares the two modalities
only through the *shape* of each one: two samples should be matched if they sit at similar
positions relative to the other samples of their own modality.

The recipe, as the paper's official code runs it (vendored SCOT v1, ``align(metric=
"correlation")``), for samples :math:`x^{(1)}_1..x^{(1)}_{n_1}` and
:math:`x^{(2)}_1..x^{(2)}_{n_2}`:

1. **Normalise** every sample (row) to unit L2 norm.
2. **kNN graph** per modality, with the correlation distance
   :math:`d(u, v) = 1 - \operatorname{corr}(u, v)` and
   :math:`k = \max(1, \min(\lfloor 0.2 n_1\rfloor, \lfloor 0.2 n_2\rfloor, 50))` neighbours, the
   sample itself counted as its first neighbour. In ``"connectivity"`` mode (the default) every
   edge has length 1.
3. **Geodesic distances** :math:`C^{(m)}_{ij}` = shortest-path length between :math:`i` and
   :math:`j` in the (undirected) graph (Dijkstra); pairs in different connected components get
   the largest finite distance; the matrix is divided by its maximum so :math:`C^{(m)} \in [0, 1]`.
4. **Entropic Gromov-Wasserstein** with uniform marginals :math:`p = \mathbf 1/n_1`,
   :math:`q = \mathbf 1/n_2`:

   .. math:: T^\star = \arg\min_{T \in U(p, q)}
             \sum_{i,j,k,l} \big(C^{(1)}_{ik} - C^{(2)}_{jl}\big)^2 T_{ij} T_{kl}
             \;-\; \varepsilon H(T),

   solved by POT's :func:`ot.gromov.entropic_gromov_wasserstein` (projected mirror descent: a
   Sinkhorn problem per outer iteration, on the linearised cost).
5. **Row-normalise** :math:`T^\star` so that row :math:`i` is a distribution over partners.

Because the cost only involves within-modality distances, the feature spaces may differ in
dimension and meaning. The flip side: any symmetry of the point clouds is invisible to GW, and a
large :math:`\varepsilon` blurs the plan towards the independent coupling :math:`pq^\top` (on
generic data :math:`\varepsilon = 0.05` already gives an almost uniform plan, while
:math:`\varepsilon = 0.01` can recover an exact isometry).

Cost: each outer GW iteration costs two :math:`n^3` matrix products and a Sinkhorn solve. On
real (non-isometric) data the solver often runs several hundred outer iterations before POT's
tolerance is met, e.g. roughly 5-50 s for 200 x 200 samples on a busy 2-core CPU; an exact
isometry converges in a few iterations. ``device="cuda"`` runs the same solve on a GPU.

Epsilon schedule
----------------
The solve is tried with ``epsilon``, then ``epsilon + epsilon_step``, ... while the value is
``<= max_epsilon``, and the first plan that passes SCOT's own convergence check is kept: all
entries finite, every row and every column carries mass, and the total mass is at least 0.95.
The official code starts at 0.01 and adds 0.01 while the plan contains NaN and ``e < 0.1``
(so it tries 0.01, 0.02, ..., 0.10); the defaults here reproduce that. If no value works a
:class:`SCOTConvergenceError` is raised (the official code instead kept the NaN plan, which
made its group-averaging skip the group).

Differences from the official run, all documented choices: the paper's text says SCOT used the
regularisation 0.05, but the code that produced the numbers starts at 0.01 (the default here;
pass ``epsilon=0.05`` for the text's value); the solve runs with numpy on the CPU (the official
one on CUDA tensors, same algorithm); groups with fewer than 10 samples make the default ``k``
equal to 1, i.e. a graph with no edges and an all-zero distance matrix. The official code then
produced a NaN plan and silently dropped the group (41 of 44 CITE-seq test groups remain); here
it is an explicit error, which :func:`scot_match_groups` can turn into a reported skip.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x1 = rng.normal(size=(40, 10))
>>> x2 = x1[:, rng.permutation(10)]          # same samples, features shuffled
>>> M = scot_match(x1, x2)
>>> M.shape, bool(np.allclose(M.sum(axis=1), 1)), bool(np.trace(M) / 40 > 0.9)
((40, 40), True, True)

References
----------
Demetci, Santorella, Sandstede, Noble, Singh (2022). *SCOT: single-cell multi-omics alignment with
optimal transport.* Journal of Computational Biology 29(1).
Peyré, Cuturi, Solomon (2016). *Gromov-Wasserstein averaging of kernel and distance
matrices.* ICML.
Xi, Osea, Xu, Hartford (2024). *Propensity score alignment of unpaired multimodal data.* NeurIPS.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._validation import (check_array, check_int, check_labels, check_number,
                           check_random_state)

__all__ = ["scot_match", "scot_match_groups", "scot_graph_distances", "default_k",
           "SCOTConvergenceError", "subsample_groups", "MODES"]

MODES = ("connectivity", "distance")


class SCOTConvergenceError(RuntimeError):
    """Raised when no epsilon of the schedule gives a usable Gromov-Wasserstein plan."""


def default_k(n1: int, n2: int | None = None) -> int:
    r"""SCOT's default neighbour count :math:`\max(1, \min(\lfloor 0.2 n_1\rfloor,
    \lfloor 0.2 n_2\rfloor, 50))` (the sample itself included).

    >>> default_k(100, 40), default_k(1000), default_k(7)
    (8, 50, 1)
    """
    n2 = n1 if n2 is None else n2
    return max(1, min(int(0.2 * n1), int(0.2 * n2), 50))


def _check_k(k, n: int, name: str) -> int:
    k = check_int(k, "k")
    if k > n:
        raise ValueError(f"k={k} neighbours is more than the {n} samples of {name}")
    return int(k)


def scot_graph_distances(x, k: int, *, metric: str = "correlation",
                         mode: str = "connectivity", normalize: bool = True,
                         name: str = "x") -> np.ndarray:
    r"""Normalised geodesic distances on a kNN graph (steps 1-3 of SCOT).

    Parameters
    ----------
    x : array (n, d)
        Samples of one modality.
    k : int
        Neighbours per sample. In ``"connectivity"`` mode the sample itself is its first
        neighbour, so ``k = 1`` gives no edges at all (an error here).
    metric : str
        Any metric of :func:`sklearn.neighbors.kneighbors_graph`; SCOT uses ``"correlation"``.
    mode : {"connectivity", "distance"}
        Edge length 1 (hop counts, SCOT's default) or the metric's distance (then the sample
        itself is not counted among the ``k``, as in SCOT).
    normalize : bool
        Scale every row to unit L2 norm first (SCOT's default; no effect on the correlation
        distance, which ignores the scale of a row).

    Returns
    -------
    (n, n) array
        Symmetric, zero diagonal, values in ``[0, 1]`` (divided by the maximum); pairs in
        different connected components get the largest finite distance (i.e. 1).

    Example
    -------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 5))
    >>> C = scot_graph_distances(x, k=4)
    >>> C.shape, float(C.max()), bool(np.allclose(C, C.T))
    ((20, 20), 1.0, True)
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    from sklearn.neighbors import kneighbors_graph
    from sklearn.preprocessing import normalize as l2_normalize

    x = check_array(x, name)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"{name} has {n} sample(s); a kNN graph needs at least 2")
    k = _check_k(k, n, name)
    if metric == "correlation":
        flat = np.ptp(x, axis=1) == 0
        if flat.any():
            raise ValueError(f"{name} has {int(flat.sum())} constant row(s) (e.g. row "
                             f"{int(np.flatnonzero(flat)[0])}); the correlation distance is "
                             "undefined for them")
    if normalize:
        x = l2_normalize(x, norm="l2", axis=1)
    include_self = mode == "connectivity"
    if include_self and k == 1:
        raise ValueError(f"k=1 with the sample itself counted as a neighbour leaves every sample "
                         f"of {name} isolated (no edges). Use k >= 2; SCOT's default "
                         "k = min(0.2 n, 50) needs at least 10 samples per modality")
    if not include_self and k >= n:
        raise ValueError(f"k={k} neighbours (the sample itself excluded) need more than "
                         f"{n} samples in {name}")
    graph = kneighbors_graph(x, k, mode=mode, metric=metric, include_self=include_self)
    dist = dijkstra(csr_matrix(graph), directed=False, return_predecessors=False)
    finite = np.isfinite(dist)
    top = dist[finite].max()
    if not top > 0:
        raise ValueError(f"all graph distances of {name} are zero (duplicate samples?); "
                         "GW needs a non-constant distance matrix")
    dist[~finite] = top
    return dist / top


def _plan_ok(T: np.ndarray) -> bool:
    """SCOT's convergence check: finite, no empty row/column, total mass >= 0.95."""
    return bool(np.isfinite(T).all() and (T.sum(axis=1) > 0).all()
                and (T.sum(axis=0) > 0).all() and T.sum() >= 0.95)


def scot_match(x1, x2, *, k: int | None = None, metric: str = "correlation",
               mode: str = "connectivity", normalize: bool = True, epsilon: float = 0.01,
               epsilon_step: float = 0.01, max_epsilon: float = 0.1, max_iter: int = 1000,
               tol: float = 1e-9, device: str | None = None, return_log: bool = False,
               random_state=None):
    r"""Row-normalised SCOT (Gromov-Wasserstein) coupling between two modalities.

    See the module docstring for the five steps and the epsilon schedule.

    Parameters
    ----------
    x1 : array (n1, d1)
        Modality-1 samples (rows of the coupling).
    x2 : array (n2, d2)
        Modality-2 samples (columns); ``d2`` may differ from ``d1``.
    k : int, optional
        kNN neighbours for *both* graphs; default :func:`default_k` ``(n1, n2)``.
    metric, mode, normalize
        Graph construction, see :func:`scot_graph_distances`.
    epsilon : float
        First entropic regularisation tried (official code: 0.01; the paper text: 0.05).
    epsilon_step, max_epsilon : float
        The schedule ``epsilon, epsilon + epsilon_step, ... <= max_epsilon`` used when a plan
        fails the convergence check.
    max_iter, tol : int, float
        Outer iterations and stopping tolerance of POT's solver (POT's defaults 1000 and
        1e-9; on data that are not an exact isometry it often needs several hundred outer
        iterations, each a Sinkhorn solve).
    device : str, optional
        ``None`` (default): numpy. A torch device such as ``"cuda"``: the solve runs on torch
        tensors there through POT's torch backend (as the official code did on a GPU).
    return_log : bool
        Also return a dict with ``epsilon`` (the value used), ``tried`` (all values tried),
        ``k`` and ``gw_dist`` (the GW objective of the plan).
    random_state : ignored
        SCOT is deterministic; accepted so every matcher has the same call signature.

    Returns
    -------
    coupling : (n1, n2) array
        Non-negative, each row sums to 1.
    log : dict
        Only with ``return_log=True``.

    Raises
    ------
    ValueError
        Bad input: NaN/inf, fewer than 2 samples, ``k`` out of range or giving an edgeless
        graph, constant rows with the correlation metric, bad schedule values.
    SCOTConvergenceError
        When no epsilon of the schedule yields a usable plan.
    """
    import ot

    del random_state  # deterministic
    x1 = check_array(x1, "x1")
    x2 = check_array(x2, "x2")
    n1, n2 = x1.shape[0], x2.shape[0]
    if min(n1, n2) < 2:
        raise ValueError(f"SCOT needs at least 2 samples per modality, got {n1} and {n2}")
    check_number(epsilon, "epsilon", low=0, low_open=True)
    check_number(epsilon_step, "epsilon_step", low=0, low_open=True)
    check_number(max_epsilon, "max_epsilon", low=0, low_open=True)
    check_int(max_iter, "max_iter")
    check_number(tol, "tol", low=0, low_open=True)
    if k is None:
        k = default_k(n1, n2)
    C1 = scot_graph_distances(x1, k, metric=metric, mode=mode, normalize=normalize, name="x1")
    C2 = scot_graph_distances(x2, k, metric=metric, mode=mode, normalize=normalize, name="x2")
    p, q = np.full(n1, 1.0 / n1), np.full(n2, 1.0 / n2)
    if device is not None:
        import torch

        C1, C2, p, q = (torch.as_tensor(a, dtype=torch.float64, device=device)
                        for a in (C1, C2, p, q))

    schedule = [float(epsilon)]
    while schedule[-1] + epsilon_step <= max_epsilon + 1e-12:
        schedule.append(round(schedule[-1] + epsilon_step, 12))
    tried = []
    for eps in schedule:
        tried.append(eps)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # POT warns about numerical errors; the check below decides instead
            warnings.simplefilter("ignore")
            T, log = ot.gromov.entropic_gromov_wasserstein(
                C1, C2, p, q, loss_fun="square_loss", epsilon=eps, max_iter=max_iter,
                tol=tol, log=True)
        if device is not None:
            T, log["gw_dist"] = T.cpu().numpy(), log["gw_dist"].item()
        T = np.asarray(T, dtype=np.float64)
        if _plan_ok(T):
            M = T / T.sum(axis=1, keepdims=True)
            if return_log:
                return M, {"epsilon": eps, "tried": tried, "k": int(k),
                           "gw_dist": float(log["gw_dist"])}
            return M
    raise SCOTConvergenceError(
        f"Gromov-Wasserstein gave no usable plan (NaN, an empty row/column or total mass "
        f"< 0.95) for epsilon in {tried}; try a larger epsilon or max_epsilon")


def scot_match_groups(x1, t1, x2, t2, *, min_group_size: int = 2, on_missing: str = "raise",
                      on_failure: str = "raise", **scot_kwargs) -> dict:
    """Apply :func:`scot_match` within every treatment group.

    Same conventions as :func:`propalign_lite.matchers.match_groups`: groups in sorted order,
    rows of a group's coupling are ``np.flatnonzero(t1 == g)``, columns
    ``np.flatnonzero(t2 == g)``.

    Parameters
    ----------
    x1, x2 : arrays (n1, d1), (n2, d2)
        Raw data of the two modalities (dimensions may differ).
    t1, t2 : arrays (n1,), (n2,)
        Group label of every sample.
    min_group_size : int
        Groups with fewer samples in either modality are problems (see ``on_missing``).
    on_missing : {"raise", "skip"}
        A group present in one modality only or smaller than ``min_group_size``: raise, or
        leave it out and name it in a :class:`UserWarning`.
    on_failure : {"raise", "skip"}
        A group on which SCOT itself fails (too small for the default ``k``, or no epsilon of
        the schedule converges): raise, or leave it out and name it in a warning. ``"skip"``
        is what the official code did implicitly (it dropped groups whose plan was NaN).
    **scot_kwargs
        Passed to :func:`scot_match` (``k``, ``epsilon``, ``metric``, ...).

    Returns
    -------
    dict
        ``{label: coupling}``.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(60, 6)); t = np.repeat([0, 1], 30)
    >>> out = scot_match_groups(x, t, x[:, ::-1], t)
    >>> sorted(out), out[1].shape
    ([0, 1], (30, 30))
    """
    for name, val in (("on_missing", on_missing), ("on_failure", on_failure)):
        if val not in ("raise", "skip"):
            raise ValueError(f"{name} must be 'raise' or 'skip', got {val!r}")
    if scot_kwargs.pop("return_log", False):
        raise ValueError("return_log is not supported per group; call scot_match on a group")
    x1 = check_array(x1, "x1")
    x2 = check_array(x2, "x2")
    t1 = check_labels(t1, "t1", len(x1))
    t2 = check_labels(t2, "t2", len(x2))
    g1, g2 = set(np.unique(t1).tolist()), set(np.unique(t2).tolist())
    missing, failed = [], []
    for g in sorted(g1 ^ g2, key=str):
        missing.append(f"group {g!r} is present in modality {1 if g in g1 else 2} only")
    todo = []
    for g in sorted(g1 & g2):
        i1, i2 = np.flatnonzero(t1 == g), np.flatnonzero(t2 == g)
        if min(len(i1), len(i2)) < min_group_size:
            missing.append(f"group {g!r} has {len(i1)} / {len(i2)} samples, fewer than "
                           f"min_group_size={min_group_size}")
        else:
            todo.append((g, i1, i2))
    if missing and on_missing == "raise":
        raise ValueError("cannot match within groups: " + "; ".join(missing)
                         + " (pass on_missing='skip' to leave them out)")
    out = {}
    for g, i1, i2 in todo:
        try:
            out[g] = scot_match(x1[i1], x2[i2], **scot_kwargs)
        except (ValueError, SCOTConvergenceError) as err:
            if on_failure == "raise":
                raise type(err)(f"SCOT failed on group {g!r}: {err}") from err
            failed.append(f"group {g!r}: {err}")
    skipped = missing + failed
    if skipped:
        warnings.warn(f"scot_match_groups skipped {len(skipped)} group(s): "
                      + "; ".join(skipped), stacklevel=2)
    if not out:
        raise ValueError("no group could be matched")
    return out


def subsample_groups(t, max_per_group: int | None, *, random_state=None) -> np.ndarray:
    r"""Indices of a random subsample with at most ``max_per_group`` samples of every group.

    Entropic Gromov-Wasserstein costs :math:`O(n^3)` per outer iteration, so SCOT on large
    groups is slow on a CPU. Running it on a random subsample of each group keeps the
    problem honest (the pairing inside the subsample is still hidden) but changes the chance
    level of the trace from :math:`1/n_g` to :math:`1/\min(n_g, \text{max\_per\_group})`;
    report it next to the results.

    Parameters
    ----------
    t : array (n,)
        Group label of every sample (paired data: one label array for both modalities, so the
        same indices select partners in both).
    max_per_group : int or None
        Largest number of samples kept per group; ``None`` keeps everything.
    random_state : None, int or numpy Generator
        Seeds the draw (each group without replacement).

    Returns
    -------
    array of int
        Sorted indices into ``t``; groups no larger than ``max_per_group`` are kept whole.

    Example
    -------
    >>> import numpy as np
    >>> t = np.repeat(["a", "b"], [5, 30])
    >>> idx = subsample_groups(t, 10, random_state=0)
    >>> np.unique(t[idx], return_counts=True)[1].tolist()
    [5, 10]
    """
    t = check_labels(t, "t")
    if len(t) == 0:
        raise ValueError("t is empty")
    if max_per_group is None:
        return np.arange(len(t))
    if (isinstance(max_per_group, bool) or not isinstance(max_per_group, (int, np.integer))
            or max_per_group < 1):
        raise ValueError(f"max_per_group must be a positive integer or None, got "
                         f"{max_per_group!r}")
    rng = check_random_state(random_state)
    keep = []
    for g in np.unique(t):
        rows = np.flatnonzero(t == g)
        if len(rows) > max_per_group:
            rows = rng.choice(rows, size=int(max_per_group), replace=False)
        keep.append(rows)
    return np.sort(np.concatenate(keep))
