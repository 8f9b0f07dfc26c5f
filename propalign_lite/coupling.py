r"""The coupling protocol, and couplings that are never materialised.

Everything the package does with a coupling -- metrics, the trainer, ``Alignment`` -- goes
through one protocol, met by three classes:

* :class:`ArrayCoupling` wraps a dense ``ndarray`` or a scipy sparse matrix (what
  :func:`~propalign_lite.match` returns for groups that fit in memory);
* :class:`ImplicitCoupling` holds potentials + embeddings and evaluates entries on demand
  (what the online solver returns);
* :class:`OperatorCoupling` adapts any object with ``shape`` and ``@`` (a user's operator).

:func:`as_coupling` turns any accepted coupling into one of them, checking it once (finite,
non-negative, rows summing to 1). The protocol is the table below; partners are drawn by the
package's one sampler (``RowSampler``) on the coupling's sparse
rows.

**Implicit couplings.**

An entropic OT plan between embeddings :math:`x \in \mathbb R^{n_1\times d}` and
:math:`y \in \mathbb R^{n_2\times d}` is determined by its log-potentials:
:math:`P_{ij} = \exp(\alpha_i + \beta_j - \lVert x_i - y_j\rVert/\varepsilon)`. The row-normalised
coupling of the package is :math:`M_{ij} = P_{ij} / \sum_{j'} P_{ij'}`. :class:`ImplicitCoupling`
keeps :math:`x, y, \alpha, \beta` (:math:`O((n_1+n_2)d)` memory) plus the truncated support of
the solver (the entries above :math:`e^{-40}` or so of their row, typically a few per row at the
paper's :math:`\varepsilon`) and implements what the package does with a coupling:

=====================================  ===========================================================
``M.shape``, ``M.ndim``                ``(n1, n2)``, 2
``M @ Z``                              barycentric projection (on the support; ``M.matmul(Z,
                                       exact=True)`` runs a block pass over all pairs)
``M.row(i)``, ``M.block(r,c)``         exact entries on demand
``M.diagonal()``                       :math:`M_{ii}` (the trace metric)
``M.column_block(cols)``               ``M[:, cols]`` as a dense block (the partner rank)
``M.sample_partners(...)``             one :math:`j \sim M_{i\cdot}` per row (the trainer)
``M.topk(k)``                          the ``k`` largest entries of every row (exact block pass)
``M.foscttm(x2, ...)``                 the paper's FOSCTTM, without an :math:`n \times n` matrix
``M.to_sparse()``                      the support as a row-normalised CSR matrix
``M.to_dense()``, ``np.asarray(M)``    the dense matrix (refused above ``max_dense`` entries)
=====================================  ===========================================================

The entries outside the support carry a total mass bounded by the solver's tolerance/100 (see
:mod:`propalign_lite.sinkhorn`), so support-based results agree with the dense ones to that
accuracy. :func:`as_dense` turns any coupling (dense, scipy sparse, implicit) into an ndarray.

Example
-------
>>> import numpy as np
>>> from propalign_lite import match
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(300, 4)); y = x + 0.1 * rng.normal(size=x.shape)
>>> M = match(x, y, online=True)
>>> type(M).__name__, M.shape, bool(np.allclose(M @ np.ones((300, 1)), 1))
('ImplicitCoupling', (300, 300), True)
>>> bool(np.allclose(as_dense(M), match(x, y, online=False), atol=1e-8))
True
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from ._blocked import DEFAULT_BLOCK, BlockedCost, euclidean_cost  # same arithmetic as the dense metrics
from ._fused import pairs_sorted, row_normalised
from ._sampling import RowSampler
from ._validation import check_array, check_coupling, check_random_state

__all__ = ["MAX_DENSE", "ImplicitCoupling", "foscttm_blocked", "ArrayCoupling",
           "OperatorCoupling", "as_coupling", "is_coupling", "is_implicit", "as_dense"]

MAX_DENSE = 10 ** 8          # entries; to_dense() refuses more (0.8 GB in float64)


class ImplicitCoupling:
    """Row-normalised entropic OT coupling held as potentials + embeddings (see module doc).

    Parameters
    ----------
    x, y : arrays (n1, d), (n2, d)
        The embeddings that were matched (plain Euclidean cost).
    alpha, beta : arrays (n1,), (n2,)
        Log-potentials of the plan.
    reg : float
        The entropic regularisation :math:`\\varepsilon`.
    support : tuple (rows, cols, logp), optional
        Kept pairs and their log plan values; without it, row sums are computed by a block
        pass and sampling / ``@`` use block passes.
    result : SinkhornResult, optional
        Diagnostics of the solve, kept as ``M.result`` (``converged``, ``n_iter``, ``err``).
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, x, y, alpha, beta, reg: float, *, support=None, result=None,
                 device: str = "cpu", block_size: int = DEFAULT_BLOCK):
        self.x = check_array(x, "x")
        self.y = check_array(y, "y")
        self.alpha = check_array(alpha, "alpha", ndim=1)
        self.beta = check_array(beta, "beta", ndim=1)
        if len(self.alpha) != len(self.x) or len(self.beta) != len(self.y):
            raise ValueError("alpha and beta must have one entry per row of x and y")
        self.reg = float(reg)
        self.result = result
        self.device = device
        self.block_size = block_size
        self.shape = (len(self.x), len(self.y))
        self._cost = BlockedCost(self.x, self.y, dtype=np.float64, device=device,
                                 block_size=block_size)
        self._csr = None
        if support is not None:
            rows, cols, logp = (np.asarray(v) for v in support)
            if not pairs_sorted(rows, cols):                  # the solvers return it sorted
                order = np.lexsort((cols, rows))
                rows, cols, logp = rows[order], cols[order], logp[order]
            # row-normalised entries and log row sums from the support, in compiled passes
            # (the dropped tail is below the solver's tolerance)
            vals, self.log_row_sum = row_normalised(logp, rows, self.shape[0])
            self._csr = _sorted_pairs_as_csr(rows, cols, vals, self.shape)
        else:
            self.log_row_sum = self._cost.lse(self.alpha, self.beta, self.reg, axis=1)

    @classmethod
    def from_result(cls, x, y, result, **kwargs) -> "ImplicitCoupling":
        """Wrap the :class:`~propalign_lite.sinkhorn.SinkhornResult` of ``sinkhorn_online``."""
        return cls(x, y, result.alpha, result.beta, result.reg, support=result.support,
                   result=result, **kwargs)

    def __repr__(self) -> str:
        nnz = "no support" if self._csr is None else f"support {self._csr.nnz} entries"
        return f"ImplicitCoupling(shape={self.shape}, reg={self.reg}, {nnz})"

    # -- entries ---------------------------------------------------------------------------
    def block(self, rows=None, cols=None) -> np.ndarray:
        """Exact dense block ``M[rows][:, cols]`` (``None`` = all), computed from the embeddings."""
        r = np.arange(self.shape[0]) if rows is None else np.atleast_1d(np.asarray(rows))
        c = np.arange(self.shape[1]) if cols is None else np.atleast_1d(np.asarray(cols))
        if r.size * c.size > MAX_DENSE:
            raise MemoryError(f"a block of {r.size} x {c.size} entries is too large to hold; "
                              "use the implicit operations (M @ Z, sample_partners, ...)")
        xr, yc = self.x[r], self.y[c]
        sq = (xr * xr).sum(1)[:, None] + (yc * yc).sum(1)[None, :] - 2.0 * (xr @ yc.T)
        lp = -np.sqrt(np.maximum(sq, 0.0)) / self.reg
        lp += (self.alpha[r] - self.log_row_sum[r])[:, None]
        lp += self.beta[c][None, :]
        return np.exp(lp)

    def row(self, i: int) -> np.ndarray:
        """Row ``i`` of the coupling (a distribution over the ``n2`` partners)."""
        return self.block([int(i)]).ravel()

    def diagonal(self) -> np.ndarray:
        """:math:`M_{ii}`, ``i < min(n1, n2)``, computed pair by pair."""
        k = np.arange(min(self.shape))
        lp = (self.alpha[k] + self.beta[k] - self._cost.exact_cost(k, k) / self.reg
              - self.log_row_sum[k])
        return np.exp(lp)

    # -- support-based operations ----------------------------------------------------------
    def to_sparse(self) -> sparse.csr_matrix:
        """The kept support as a row-normalised CSR matrix (rows sum to 1), built once when
        the coupling is made and shared by ``@`` and sampling (do not modify it in place)."""
        if self._csr is None:
            raise ValueError("this coupling has no truncated support; use M.block or "
                             "M.matmul(Z, exact=True)")
        return self._csr

    def matmul(self, Z, *, exact: bool = False) -> np.ndarray:
        """:math:`M Z` for ``Z`` of shape ``(n2, ...)``: on the support, or over all pairs."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.shape[0] != self.shape[1]:
            raise ValueError(f"cannot multiply a coupling of shape {self.shape} with an "
                             f"array of {Z.shape[0]} rows")
        if not exact and self._csr is not None:
            return self._csr @ Z
        flat = Z.reshape(Z.shape[0], -1)
        out = np.empty((self.shape[0], flat.shape[1]))
        for s, e, C in BlockedCost(self.x, self.y, dtype=np.float64,
                                   block_size=self.block_size).blocks():
            lp = C * (-1.0 / self.reg)
            lp += self.beta[None, :]
            lp += (self.alpha[s:e] - self.log_row_sum[s:e])[:, None]
            out[s:e] = np.exp(lp, out=lp) @ flat
        return out.reshape((self.shape[0],) + Z.shape[1:])

    def __matmul__(self, Z):
        return self.matmul(Z)

    def column_block(self, cols) -> np.ndarray:
        """``M[:, cols]`` on the support (``M @ E``, ``E`` those columns of the identity)."""
        return _columns_by_matmul(self, cols)

    def sample_partners(self, *, random_state=None) -> np.ndarray:
        """One partner :math:`j_i \\sim M_{i\\cdot}` per row (inverse CDF on the support)."""
        rng = check_random_state(random_state)
        if self._csr is None:                # Gumbel-max over all pairs, block by block
            out = np.empty(self.shape[0], dtype=np.int64)
            for s, e, C in BlockedCost(self.x, self.y, dtype=np.float64,
                                       block_size=self.block_size).blocks():
                lp = self.beta[None, :] - C / self.reg
                lp += rng.gumbel(size=lp.shape)
                out[s:e] = lp.argmax(1)
            return out
        return RowSampler(self.to_sparse()).sample(rng)

    # -- exact block passes ----------------------------------------------------------------
    def topk(self, k: int = 1):
        """Indices and weights of the ``k`` largest entries of every row, largest first."""
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= self.shape[1]):
            raise ValueError(f"k must be an integer in [1, {self.shape[1]}], got {k!r}")
        idx = np.empty((self.shape[0], k), dtype=np.int64)
        for s, e, C in BlockedCost(self.x, self.y, dtype=np.float64,
                                   block_size=self.block_size).blocks():
            lp = self.beta[None, :] - C / self.reg
            part = np.argpartition(-lp, k - 1, axis=1)[:, :k] if k < lp.shape[1] else \
                np.tile(np.arange(lp.shape[1]), (e - s, 1))
            order = np.argsort(-np.take_along_axis(lp, part, 1), axis=1, kind="stable")
            idx[s:e] = np.take_along_axis(part, order, 1)
        r = np.repeat(np.arange(self.shape[0]), k)
        w = np.exp(self.alpha[r] + self.beta[idx.ravel()]
                   - self._cost.exact_cost(r, idx.ravel()) / self.reg - self.log_row_sum[r])
        return idx, w.reshape(idx.shape)

    def foscttm(self, x2, *, how: str = "sample", random_state=None) -> float:
        """The paper's FOSCTTM (see :func:`propalign_lite.metrics.foscttm_coupling`)."""
        x2 = check_array(x2, "x2")
        if self.shape[0] != self.shape[1] or len(x2) != self.shape[0]:
            raise ValueError(f"FOSCTTM needs a square coupling and one row of x2 per sample, "
                             f"got {self.shape} and {len(x2)} rows")
        if how == "sample":
            x_hat = x2[self.sample_partners(random_state=random_state)]
        elif how == "barycentric":
            x_hat = self @ x2
        else:
            raise ValueError(f"how must be 'sample' or 'barycentric', got {how!r}")
        return foscttm_blocked(x2, x_hat, block_size=self.block_size)

    # -- dense -----------------------------------------------------------------------------
    def to_dense(self) -> np.ndarray:
        """The full ``(n1, n2)`` matrix (refused above ``MAX_DENSE`` entries)."""
        return self.block()

    def __array__(self, dtype=None, copy=None):
        M = self.to_dense()
        return M if dtype is None else M.astype(dtype)


def _sorted_pairs_as_csr(rows, cols, vals, shape) -> sparse.csr_matrix:
    """A CSR matrix over pairs sorted by row, holding ``cols`` and ``vals`` themselves (no
    copy, no COO conversion): only the row pointers are new.

    >>> M = _sorted_pairs_as_csr(np.array([0, 0, 2]), np.array([1, 2, 0]), np.ones(3), (3, 3))
    >>> M.toarray().astype(int).tolist(), M.indptr.tolist()
    ([[0, 1, 1], [0, 0, 0], [1, 0, 0]], [0, 2, 2, 3])
    """
    index = np.int32 if max(shape[1], len(cols)) < 2 ** 31 - 1 else np.int64
    # by binary search in the sorted rows (np.bincount would copy int32 rows to int64)
    rows = np.asarray(rows)
    indptr = np.searchsorted(rows, np.arange(shape[0] + 1, dtype=rows.dtype)).astype(index)
    return sparse.csr_matrix((vals, np.asarray(cols, dtype=index), indptr), shape=shape,
                             copy=False)


def _columns_by_matmul(M, cols) -> np.ndarray:
    """``M[:, cols]`` of any operator with ``shape`` and ``@``: ``M @ E``, ``E`` those columns
    of the identity."""
    cols = np.atleast_1d(np.asarray(cols))
    E = np.zeros((M.shape[1], len(cols)))
    E[cols, np.arange(len(cols))] = 1.0
    return M @ E


def foscttm_blocked(a, b, *, block_size: int = DEFAULT_BLOCK) -> float:
    """Textbook FOSCTTM (:func:`propalign_lite.metrics.foscttm`) counted block by block.

    Same value without the ``n x n`` distance matrix: memory ``O(block_size)``.
    """
    a = check_array(a, "a")
    b = check_array(b, "b")
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"a and b must have the same shape with at least 2 rows, got "
                         f"{a.shape} and {b.shape}")

    n = len(a)
    rows = max(1, int(block_size) // n)
    true = np.concatenate([np.diag(euclidean_cost(a[s:s + rows], b[s:s + rows]))
                           for s in range(0, n, rows)])
    from_a, from_b = 0, np.zeros(n, dtype=np.int64)
    for s in range(0, n, rows):
        e = min(s + rows, n)
        C = euclidean_cost(a[s:e], b)
        C[np.arange(e - s), np.arange(s, e)] = true[s:e]
        from_a += int((C < true[s:e, None]).sum())
        from_b += (C < true[None, :]).sum(0)
    return float((from_a + from_b.sum()) / (2 * n * (n - 1)))


class ArrayCoupling:
    """A row-normalised coupling held as a dense array or a scipy sparse matrix, behind the
    protocol of :class:`ImplicitCoupling` (``shape``, ``@``, ``diagonal``, ``block``,
    ``sample_partners``, ``to_sparse``, ``to_dense``). Checked once on construction.

    >>> M = ArrayCoupling(np.array([[0.5, 0.5], [0.0, 1.0]]))
    >>> M.diagonal().tolist(), (M @ np.array([1.0, 3.0])).tolist()
    ([0.5, 1.0], [2.0, 3.0])
    """

    ndim = 2

    def __init__(self, M, name: str = "M", *, row_stochastic: bool = True):
        if sparse.issparse(M):
            csr = sparse.csr_matrix(M, dtype=np.float64)
            check_array(csr.data, name, ndim=1, allow_empty=True, max_abs=None)
            if csr.nnz and csr.data.min() < 0:
                raise ValueError(f"{name} has negative entries (min {csr.data.min():.3g})")
            if row_stochastic:
                rs = np.asarray(csr.sum(axis=1)).ravel()
                if rs.size and np.abs(rs - 1).max() > 1e-6:
                    raise ValueError(f"rows of {name} must sum to 1 (worst row sums to "
                                     f"{rs[np.argmax(np.abs(rs - 1))]:.6g}); row-normalise it")
            self._dense, self._csr = None, csr
        else:
            self._dense = check_coupling(M, name, row_stochastic=row_stochastic)
            self._csr = None
        self.shape = (self._dense if self._dense is not None else self._csr).shape

    def __repr__(self) -> str:
        kind = "dense" if self._dense is not None else f"sparse, {self._csr.nnz} entries"
        return f"ArrayCoupling(shape={self.shape}, {kind})"

    def __matmul__(self, Z):
        return (self._dense if self._dense is not None else self._csr) @ Z

    def diagonal(self) -> np.ndarray:
        """:math:`M_{ii}`, ``i < min(n1, n2)``."""
        return np.asarray((self._dense if self._dense is not None else self._csr).diagonal())

    def block(self, rows=None, cols=None) -> np.ndarray:
        """Dense block ``M[rows][:, cols]`` (``None`` = all)."""
        M = self.to_dense()
        r = slice(None) if rows is None else np.atleast_1d(np.asarray(rows))
        c = slice(None) if cols is None else np.atleast_1d(np.asarray(cols))
        return M[r][:, c]

    def column_block(self, cols) -> np.ndarray:
        """Dense ``M[:, cols]``."""
        if self._dense is not None:
            return self._dense[:, cols]
        return self._csr[:, cols].toarray()

    def to_sparse(self) -> sparse.csr_matrix:
        return self._csr if self._csr is not None else sparse.csr_matrix(self._dense)

    def to_dense(self) -> np.ndarray:
        return self._dense if self._dense is not None else self._csr.toarray()

    def __array__(self, dtype=None, copy=None):
        M = self.to_dense()
        return M if dtype is None else M.astype(dtype)

    def sample_partners(self, *, random_state=None) -> np.ndarray:
        """One partner :math:`j_i \\sim M_{i\\cdot}` per row (the package's one sampler)."""
        return RowSampler(self.to_sparse()).sample(random_state)


class OperatorCoupling:
    """Any object with ``shape`` and ``M @ Z`` (a user's linear operator) behind the protocol:
    columns are read as ``M @ E`` with ``E`` columns of the identity."""

    ndim = 2

    def __init__(self, op):
        self._op = op
        self.shape = tuple(op.shape)

    def __matmul__(self, Z):
        return self._op @ Z

    def column_block(self, cols) -> np.ndarray:
        return np.asarray(_columns_by_matmul(self._op, cols), dtype=float)

    def to_dense(self) -> np.ndarray:
        return self.column_block(np.arange(self.shape[1]))

    def diagonal(self) -> np.ndarray:
        return np.diag(self.to_dense())

    def to_sparse(self) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.to_dense())

    def sample_partners(self, *, random_state=None) -> np.ndarray:
        return RowSampler(self.to_sparse()).sample(random_state)


def as_coupling(M, name: str = "M", *, square: bool = False, row_stochastic: bool = True):
    """Any accepted coupling -- ndarray (or nested list), scipy sparse matrix,
    :class:`ArrayCoupling` or :class:`ImplicitCoupling`, or any object with ``shape`` and
    ``@`` (:class:`OperatorCoupling`) -- behind the coupling protocol,
    checked (finite, non-negative, rows summing to 1 unless ``row_stochastic=False``;
    ``square=True``: row ``i`` and column ``i`` are true partners)."""
    if isinstance(M, (ImplicitCoupling, ArrayCoupling, OperatorCoupling)):
        C = M
    elif isinstance(M, (np.ndarray, list, tuple)) or sparse.issparse(M):
        C = ArrayCoupling(M, name, row_stochastic=row_stochastic)
    elif hasattr(M, "shape") and hasattr(M, "__matmul__") and len(M.shape) == 2:
        C = OperatorCoupling(M)                 # checked where its entries are read
    else:
        raise ValueError(f"{name} must be an array, a sparse matrix or an ImplicitCoupling, "
                         f"got {type(M).__name__}")
    if square and C.shape[0] != C.shape[1]:
        raise ValueError(f"{name} must be square (row i and column i are true partners), got "
                         f"shape {C.shape}")
    return C


def is_coupling(obj) -> bool:
    """Whether ``obj`` already meets the coupling protocol (an :class:`ArrayCoupling` or an
    :class:`ImplicitCoupling`), as opposed to an array to wrap with :func:`as_coupling`."""
    return isinstance(obj, (ArrayCoupling, ImplicitCoupling, OperatorCoupling))


def is_implicit(M) -> bool:
    """Whether ``M`` is an :class:`ImplicitCoupling` (evaluated on demand)."""
    return isinstance(M, ImplicitCoupling)


def as_dense(M) -> np.ndarray:
    """Any coupling (ndarray, scipy sparse, :class:`ImplicitCoupling`) as a dense ndarray."""
    return np.asarray(as_coupling(M, row_stochastic=False).to_dense(), dtype=np.float64)
