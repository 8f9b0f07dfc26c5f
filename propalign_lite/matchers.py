r"""Matchers: from two sets of embeddings to a coupling matrix.

A *matcher* takes the embeddings of the samples of one treatment group in modality 1
(``emb1``, shape ``(n1, d)``) and in modality 2 (``emb2``, shape ``(n2, d)``) and returns a
coupling :math:`M \in \mathbb{R}_{\ge 0}^{n_1 \times n_2}` whose row :math:`i` is a probability
distribution over the modality-2 partners of sample :math:`i` (rows sum to one).
:func:`match_groups` applies one matcher inside every treatment group, as the paper does.

Methods
-------
``"ot"``
    Entropic optimal transport with uniform marginals :math:`p_1 = \mathbf 1/n_1`,
    :math:`p_2 = \mathbf 1/n_2` on the *plain* Euclidean cost :math:`C_{ij} = \lVert \pi_i - \pi_j
    \rVert_2`:

    .. math:: M^\star = \arg\min_{M \in U(p_1, p_2)} \langle C, M\rangle - \lambda H(M),
              \qquad H(M) = -\sum_{ij} M_{ij}\log M_{ij},

    solved by Sinkhorn's algorithm (:func:`sinkhorn`), then row-normalised
    (:math:`n_1 M^\star`). ``reg`` is :math:`\lambda` (0.05 in the paper). With ``reg_m``
    (a number or a pair :math:`(\tau_1, \tau_2)`) the marginals are relaxed by KL penalties
    (:mod:`propalign_lite.unbalanced`): cells without a good partner in the group may keep
    part of their mass; the plan is row-normalised all the same.
``"emd"``
    Exact (unregularised) OT through POT's network simplex; for ``n1 == n2`` a permutation.
``"snn"``
    Shared nearest neighbours (paper, appendix): with :math:`k` neighbours and every point its
    own neighbour, :math:`J_{ij} = |11_i \cap 12_j| + |21_i \cap 22_j|` and
    :math:`\tilde M_{ij} = J_{ij} / (4k - J_{ij})`, rows normalised (:func:`snn_coupling`).
``"random"``
    A uniformly random one-to-one assignment (a random permutation when ``n1 == n2``): the
    paper's "Rand" baseline.
``"uniform"``
    The independent coupling :math:`M_{ij} = 1/n_2` (what "random pairs" means for the trainer).
``"identity"``
    The true pairing when row ``i`` of both modalities is the same unit (``n1 == n2``).

Example
-------
>>> import numpy as np
>>> from propalign_lite import match
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(50, 3))
>>> M = match(x, x + 0.01 * rng.normal(size=x.shape), method="ot", reg=0.05)
>>> M.shape, bool(np.allclose(M.sum(axis=1), 1))
((50, 50), True)

References
----------
Cuturi (2013), *Sinkhorn distances*; Schmitzer (2019), *Stabilized sparse scaling algorithms
for entropy regularized transport problems*; Xi et al. (2024), *Propensity score alignment of
unpaired multimodal data*, appendix (SNN).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from ._validation import (check_array, check_int, check_labels,
                          check_random_state)
from ._blocked import euclidean_cost  # noqa: F401  (public here; defined with the blocked distances)
from ._parallel import run_groups
from ._relaxation import check_omega
from .coupling import ImplicitCoupling, as_coupling
from .sinkhorn import (PAPER_REG, ConvergenceWarning, SinkhornResult,  # noqa: F401
                       check_solver_params,
                       needs_warning,
                       sinkhorn, sinkhorn_online)

__all__ = ["PAPER_OT", "snn_coupling", "row_normalize", "DENSE_MAX", "match", "MATCHERS",
           "METHODS", "MATCH_OPTIONS", "match_groups", "block_coupling", "euclidean_cost",
           "PAPER_REG"]

#: The paper's PS+OT matcher, as ``match`` / ``match_groups`` keyword arguments.
PAPER_OT = dict(method="ot", reg=PAPER_REG)


# --------------------------------------------------------------------------------------------
# distances
# --------------------------------------------------------------------------------------------
# SNN
def _knn_indicator(query: np.ndarray, ref: np.ndarray, k: int, *, same: bool) -> sparse.csr_matrix:
    """Sparse 0/1 matrix (n_query, n_ref): row q marks the k nearest reference points of q.

    With ``same=True`` (query is ref) every point is its own first neighbour, even with ties.
    """
    from sklearn.neighbors import NearestNeighbors

    nq, nr = query.shape[0], ref.shape[0]
    if same:
        if k == 1:
            return sparse.identity(nq, format="csr")
        nn = NearestNeighbors(n_neighbors=k - 1).fit(ref)
        idx = nn.kneighbors(return_distance=False)          # excludes the point itself
        idx = np.hstack([np.arange(nq)[:, None], idx])
    else:
        nn = NearestNeighbors(n_neighbors=k).fit(ref)
        idx = nn.kneighbors(query, return_distance=False)
    rows = np.repeat(np.arange(nq), idx.shape[1])
    return sparse.csr_matrix((np.ones(rows.size), (rows, idx.ravel())), shape=(nq, nr))


def snn_coupling(emb1, emb2, *, k: int = 1, normalize: bool = True) -> np.ndarray:
    r"""Shared-nearest-neighbour coupling of the paper's appendix.

    For sample :math:`i` of modality 1 and :math:`j` of modality 2, with :math:`k`-NN sets
    :math:`11_i` (of :math:`i` among modality 1, :math:`i` included), :math:`12_j` (of :math:`j`
    among modality 1), :math:`21_i` (of :math:`i` among modality 2) and :math:`22_j` (of
    :math:`j` among modality 2, :math:`j` included):

    .. math:: J_{ij} = |11_i \cap 12_j| + |21_i \cap 22_j|,\qquad
              \tilde M_{ij} = \frac{J_{ij}}{4k - J_{ij}},\qquad
              M_{ij} = \tilde M_{ij} / \textstyle\sum_{j'} \tilde M_{ij'}.

    With indicator matrices :math:`A_{11}, A_{12}, A_{21}, A_{22}` of those sets,
    :math:`J = A_{11} A_{12}^\top + A_{21} A_{22}^\top`. Every row has a non-zero entry
    (Lemma 1 of the paper). ``normalize=True`` first scales every embedding to unit norm, as the
    official code does before its neighbour search.

    Example
    -------
    >>> import numpy as np
    >>> snn_coupling(np.array([[0.], [1.]]), np.array([[0.1], [0.9]]), k=1, normalize=False)
    array([[1., 0.],
           [0., 1.]])
    """
    x = check_array(emb1, "emb1")
    y = check_array(emb2, "emb2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"emb1 and emb2 must have the same dimension, got {x.shape[1]} and "
                         f"{y.shape[1]}")
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > min(len(x), len(y)):
        raise ValueError(f"k={k} is larger than the group ({len(x)} and {len(y)} samples)")
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    a11 = _knn_indicator(x, x, k, same=True)
    a12 = _knn_indicator(y, x, k, same=False)
    a21 = _knn_indicator(x, y, k, same=False)
    a22 = _knn_indicator(y, y, k, same=True)
    J = (a11 @ a12.T + a21 @ a22.T).toarray()
    Mt = J / (4 * k - J)
    return Mt / Mt.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
def row_normalize(M: np.ndarray) -> np.ndarray:
    """Divide each row by its sum (rows with zero mass and negative entries raise)."""
    M = check_array(M, "M", max_abs=None)
    if (M < 0).any():
        raise ValueError(f"M has negative entries (min {M.min():.3g}); a coupling is "
                         "non-negative")
    s = M.sum(axis=1, keepdims=True)
    if (s <= 0).any():
        raise ValueError(f"{int((s <= 0).sum())} row(s) of the coupling have no mass")
    return M / s


DENSE_MAX = 2 ** 24      # n1 * n2 above which method="ot" switches to the online solver


def match(emb1, emb2, *, method: str = "ot", reg: float = PAPER_REG, reg_m=None, k: int = 1,
          max_iter: int = 1000, tol: float = 1e-10, omega: float | None = None,
          snn_normalize: bool = True, online: bool | None = None,
          dense_max: int = DENSE_MAX, device: str = "cpu",
          return_result: bool = False, warn: bool = True, random_state=None):
    """Couple the samples of one group: returns the row-normalised ``(n1, n2)`` coupling.

    See the module docstring for the methods. ``reg``, ``max_iter`` and ``tol`` apply to
    ``"ot"`` (the official settings: 0.05, 1000, 1e-10); ``k`` and ``snn_normalize`` to
    ``"snn"``; ``random_state`` to ``"random"``; ``reg_m`` (``None``: balanced) makes
    ``"ot"`` unbalanced (:func:`~propalign_lite.unbalanced.sinkhorn_unbalanced`; its result
    holds the plan's row and column masses).

    For ``"ot"``, groups with ``n1 * n2 <= dense_max`` (and ``online=None``) are solved on the
    cost matrix and return a dense array; larger ones (or ``online=True``) use
    :func:`~propalign_lite.sinkhorn.sinkhorn_online`, which never forms the ``n1 x n2`` matrix
    (block passes on ``device``: ``"cpu"`` numpy, ``"cuda"`` torch) and return an
    :class:`~propalign_lite.coupling.ImplicitCoupling`. A run that stops at ``max_iter`` before
    ``tol`` emits a :class:`~propalign_lite.sinkhorn.ConvergenceWarning` (``warn=False``
    silences it); ``return_result=True`` returns ``(coupling, SinkhornResult)`` with
    ``converged``, ``n_iter`` and ``err`` (``None`` for the other methods).

    ``omega`` (balanced ``"ot"`` only) over-relaxes the Sinkhorn steps by a fixed factor in
    (0, 2) (``None``: plain steps, as POT; ``propalign_lite._relaxation``). The plan is
    the same to the tolerance; on dense plans it can take far fewer iterations: a 6,311-cell
    group of a simulated atlas's logits took 964 plain iterations to a marginal error of
    1e-6, and 490, 386 and 263 at 1.6, 1.75 and 1.95; no factor suits every problem.
    """
    M, res = _match(emb1, emb2, method=method, reg=reg, reg_m=reg_m, k=k, max_iter=max_iter,
                    tol=tol, omega=omega, snn_normalize=snn_normalize, online=online,
                    dense_max=dense_max, device=device, warn=warn, random_state=random_state)
    return (M, res) if return_result else M


def _match(emb1, emb2, *, method, random_state=None, **options):
    """Check the inputs and dispatch to the matcher of ``method`` (see :data:`MATCHERS`)."""
    if not isinstance(method, str) or method not in MATCHERS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    fn, _, same_space = MATCHERS[method]
    if method == "ot":                       # before the data: a bad setting fails fast
        check_solver_params(options["reg"], options["max_iter"], options["tol"])
        check_omega(options["omega"])
        if options["omega"] is not None and options["reg_m"] is not None:
            raise ValueError("omega over-relaxes balanced OT only; leave it None with reg_m")
    if method == "snn":
        options["k"] = check_int(options["k"], "k", min_value=1)
    x = check_array(emb1, "emb1")
    y = check_array(emb2, "emb2")
    if same_space and x.shape[1] != y.shape[1]:
        raise ValueError(f"emb1 and emb2 must live in the same space, got dimensions "
                         f"{x.shape[1]} and {y.shape[1]}")
    return fn(x, y, random_state=random_state, **options)


def _ot(x, y, *, reg, reg_m, max_iter, tol, omega, online, dense_max, device, warn, **_):
    if online is None:
        online = len(x) * len(y) > dense_max
    if reg_m is not None:
        return _match_unbalanced(x, y, reg, reg_m, online=online, max_iter=max_iter, tol=tol,
                                 device=device, warn=warn)
    if online:
        res = sinkhorn_online(x, y, reg, max_iter=max_iter, tol=tol, omega=omega,
                              device=device, warn=warn)
        return ImplicitCoupling.from_result(x, y, res, device=device), res
    res = sinkhorn(euclidean_cost(x, y), reg, max_iter=max_iter, tol=tol, omega=omega,
                   warn=warn)
    return row_normalize(res.plan), res


def _emd(x, y, **_):
    import ot

    plan = ot.emd(np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y)),
                  euclidean_cost(x, y))
    return row_normalize(plan), None


def _snn(x, y, *, k, snn_normalize, **_):
    return snn_coupling(x, y, k=k, normalize=snn_normalize), None


def _uniform(x, y, **_):
    return np.full((len(x), len(y)), 1.0 / len(y)), None


def _identity(x, y, **_):
    if len(x) != len(y):
        raise ValueError(f"the identity coupling needs equal group sizes, got {len(x)} and "
                         f"{len(y)}")
    return np.eye(len(x)), None


def _random(x, y, *, random_state, **_):
    n1, n2 = len(x), len(y)
    rng = check_random_state(random_state)
    M = np.zeros((n1, n2))
    if n1 <= n2:
        cols = rng.permutation(n2)[:n1]
    else:
        cols = np.concatenate([rng.permutation(n2) for _ in range(-(-n1 // n2))])[:n1]
        rng.shuffle(cols)
    M[np.arange(n1), cols] = 1.0
    return M, None


#: Every matcher, as ``name -> (function, its options with their defaults, whether both
#: embeddings must share a dimension)``. The function maps ``(x, y, **options)`` to
#: ``(coupling, solver result or None)``. Adding a matcher is one function and one line here
#: (plus its paragraph in the module docstring); ``match`` and ``match_groups`` take their
#: options and defaults from this table.
MATCHERS = {
    "ot": (_ot, dict(reg=PAPER_REG, reg_m=None, max_iter=1000, tol=1e-10, omega=None,
                     online=None, dense_max=DENSE_MAX, device="cpu"), True),
    "emd": (_emd, {}, True),
    "snn": (_snn, dict(k=1, snn_normalize=True), True),
    "random": (_random, {}, False),
    "uniform": (_uniform, {}, False),
    "identity": (_identity, {}, False),
}
METHODS = tuple(MATCHERS)
#: Every option of every matcher with its default (one copy, from :data:`MATCHERS`).
MATCH_OPTIONS = {k: v for _, opts, _ in MATCHERS.values() for k, v in opts.items()}


def _match_unbalanced(x, y, reg, reg_m, *, online, max_iter, tol, device, warn):
    from .unbalanced import check_reg_m, sinkhorn_unbalanced, sinkhorn_unbalanced_online

    check_reg_m(reg_m)
    tol = max(tol, 1e-6)    # the change of the potentials, in log units (propalign_lite.unbalanced)
    if online:
        res = sinkhorn_unbalanced_online(x, y, reg, reg_m=reg_m, max_iter=max_iter, tol=tol,
                                         device=device, warn=warn)
        return ImplicitCoupling.from_result(x, y, res, device=device), res
    res = sinkhorn_unbalanced(euclidean_cost(x, y), reg, reg_m=reg_m, max_iter=max_iter,
                              tol=tol, warn=warn)
    return row_normalize(res.plan), res


def match_groups(emb1, t1, emb2, t2, *, min_group_size: int = 2, on_missing: str = "raise",
                 results: dict | None = None, n_jobs: int = 1, client=None,
                 progress: bool = False, **match_kwargs) -> dict:
    """Apply :func:`match` within every treatment group.

    Parameters
    ----------
    emb1, emb2 : arrays (n1, d), (n2, d)
        Embeddings of modality 1 and 2.
    t1, t2 : arrays (n1,), (n2,)
        Treatment / group label of every sample.
    min_group_size : int
        Groups with fewer samples in either modality raise (or are skipped, see below).
    on_missing : {"raise", "skip"}
        What to do with a group present in only one modality or smaller than
        ``min_group_size``. ``"skip"`` leaves it out and reports it in a warning.
    results : dict, optional
        Filled with ``{label: SinkhornResult or None}``, the solver's result of every matched
        group (for ``"ot"``: iterations, error; unbalanced: the plan's masses).
    n_jobs : int
        Groups matched at once in this process (threads: the solvers spend their time in
        numpy, scipy and BLAS, which release the GIL); ``-1``: one per CPU. The couplings do not
        depend on it (``"random"`` always runs its groups one after the other, from one
        generator).
    client : dask.distributed.Client, optional
        Match the groups as tasks on this Dask cluster instead (groups are independent); the
        embeddings of a group travel with its task.
    progress : bool
        A tqdm progress bar over the groups (on stderr).
    **match_kwargs
        Passed to :func:`match` (``method``, ``reg``, ``reg_m``, ``k``, ``omega``, ``online``,
        ``device``, ``random_state``...). Groups whose Sinkhorn stops unconverged are reported
        together in one :class:`~propalign_lite.sinkhorn.ConvergenceWarning` (``warn=False``
        silences it).

    Returns
    -------
    dict
        ``{label: coupling}`` in sorted label order; the rows of ``coupling`` are the samples
        ``np.flatnonzero(t1 == label)`` in that order and its columns
        ``np.flatnonzero(t2 == label)``.

    Example
    -------
    >>> import numpy as np
    >>> e = np.arange(8.0).reshape(4, 2)
    >>> out = match_groups(e, [0, 0, 1, 1], e, [0, 0, 1, 1], method="emd")
    >>> sorted(out), out[0].shape
    ([0, 1], (2, 2))
    """
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing must be 'raise' or 'skip', got {on_missing!r}")
    min_group_size = check_int(min_group_size, "min_group_size", min_value=1)
    x = check_array(emb1, "emb1")
    y = check_array(emb2, "emb2")
    t1 = check_labels(t1, "t1", len(x))
    t2 = check_labels(t2, "t2", len(y))
    g1, g2 = set(np.unique(t1).tolist()), set(np.unique(t2).tolist())
    problems = {}
    for g in sorted(g1 ^ g2, key=str):
        where = "modality 1" if g in g1 else "modality 2"
        problems[g] = f"group {g!r} is present in {where} only"
    random_state = match_kwargs.pop("random_state", None)
    rng = check_random_state(random_state)
    warn = match_kwargs.pop("warn", True)
    match_kwargs.pop("return_result", None)
    opts = dict(method="ot", **MATCH_OPTIONS)
    unknown = set(match_kwargs) - set(opts)
    if unknown:
        raise TypeError(f"match_groups got unexpected option(s) {sorted(unknown)}")
    opts.update(match_kwargs)
    n_jobs = check_int(n_jobs, "n_jobs", min_value=-1)
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive number of threads or -1 (one per CPU), got 0")
    todo = {}
    for g in sorted(g1 & g2):
        i1, i2 = np.flatnonzero(t1 == g), np.flatnonzero(t2 == g)
        if min(len(i1), len(i2)) < min_group_size:
            problems[g] = (f"group {g!r} has {len(i1)} / {len(i2)} samples, fewer than "
                           f"min_group_size={min_group_size}")
            continue
        todo[g] = (i1, i2)
    solved = run_groups(_match, x, y, todo, opts, rng, n_jobs=n_jobs, client=client,
                        progress=progress)
    unconverged = []
    out = {}
    for g, (coupling, res) in solved.items():
        out[g] = coupling
        if results is not None:
            results[g] = res
        if res is not None and needs_warning(res):
            unconverged.append(f"{g!r} (error {res.err:.2g} after {res.n_iter} iterations)")
    if unconverged and warn:
        warnings.warn(f"match_groups: Sinkhorn did not reach tol={opts['tol']:g} within "
                      f"max_iter={opts['max_iter']} in {len(unconverged)} group(s): "
                      + ", ".join(unconverged) + "; increase max_iter or reg, or loosen tol",
                      ConvergenceWarning, stacklevel=2)
    if problems:
        if on_missing == "raise":
            raise ValueError("cannot match within groups: " + "; ".join(problems.values())
                             + " (pass on_missing='skip' to leave them out)")
        warnings.warn(f"match_groups skipped {len(problems)} group(s): "
                      + "; ".join(problems.values()), stacklevel=2)
    if not out:
        raise ValueError("no group could be matched")
    return out


def block_coupling(couplings: dict, t1, t2) -> sparse.csr_matrix:
    """Assemble the per-group couplings of :func:`match_groups` into one sparse ``(n1, n2)``
    coupling over all samples (zero between groups). Rows of skipped groups stay empty.
    Implicit couplings contribute their truncated support (``M.to_sparse()``)."""
    if not isinstance(couplings, dict) or not couplings:
        raise ValueError(f"couplings must be a non-empty dict {{group: coupling}} as returned "
                         f"by match_groups, got {type(couplings).__name__} "
                         f"{'(empty)' if isinstance(couplings, dict) else ''}")
    t1 = check_labels(t1, "t1")
    t2 = check_labels(t2, "t2")
    rows, cols, vals = [], [], []
    for g, M in couplings.items():
        if isinstance(M, (list, tuple)):
            raise ValueError(f"couplings[{g!r}] must be an array, a sparse matrix or an "
                             f"ImplicitCoupling, got {type(M).__name__}")
        M = as_coupling(M, f"couplings[{g!r}]")
        i1, i2 = np.flatnonzero(t1 == g), np.flatnonzero(t2 == g)
        if M.shape != (len(i1), len(i2)):
            raise ValueError(f"couplings[{g!r}] has shape {M.shape}, but t1 and t2 hold "
                             f"{(len(i1), len(i2))} samples of group {g!r}")
        Ms = M.to_sparse().tocoo()
        Ms.eliminate_zeros()
        rows.append(i1[Ms.row])
        cols.append(i2[Ms.col])
        vals.append(Ms.data)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(len(t1), len(t2)))
