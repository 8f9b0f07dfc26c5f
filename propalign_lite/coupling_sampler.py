r"""The couplings the trainer accepts, and drawing partners from them.

:class:`CouplingSampler` takes a coupling in any form the trainer accepts -- a dense array, a
scipy sparse matrix, a coupling object (:func:`propalign_lite.coupling.as_coupling`; an implicit
one contributes its support), or per-group blocks (bare 2-d blocks placed block-diagonally, or
``(target_idx, input_idx, block)`` triples) -- checks its shape and that every row is a
distribution, and draws partners with the package's one sampler
(``RowSampler``).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from ._sampling import RowSampler
from ._validation import check_array
from .coupling import is_coupling

__all__ = ["CouplingSampler"]

_ROW_ATOL = 1e-5      # tolerance on "each row sums to 1" (float32 plans carry ~1e-7 error)


def _is_triple(item) -> bool:
    return (isinstance(item, tuple) and len(item) == 3 and np.ndim(item[0]) == 1
            and np.ndim(item[1]) == 1 and np.ndim(item[2]) == 2)


def _looks_like_blocks(coupling) -> bool:
    """A list of per-group blocks, as opposed to a nested list spelling one dense matrix."""
    if not isinstance(coupling, (list, tuple)):
        return False
    if len(coupling) == 0:
        return True
    first = coupling[0]
    if _is_triple(first):
        return True
    try:
        return np.ndim(first) == 2
    except ValueError:  # ragged: not a matrix row either, let the block checks complain
        return True


def _coupling_to_csr(coupling, name: str = "coupling") -> sparse.csr_matrix:
    """Any accepted coupling format -> a float64 CSR matrix with finite, positive entries."""
    if is_coupling(coupling):                         # e.g. an implicit one: its support
        coupling = coupling.to_sparse()
    elif isinstance(coupling, (list, tuple)):
        coupling = [_densify(item) for item in coupling]
    if sparse.issparse(coupling):
        csr = sparse.csr_matrix(coupling, dtype=np.float64, copy=True)
        csr.sum_duplicates()
        check_array(csr.data, name, ndim=1, allow_empty=True)
        if csr.data.size and csr.data.min() < 0:
            raise ValueError(f"{name} has negative entries (min {csr.data.min():.3g})")
    elif _looks_like_blocks(coupling):
        if len(coupling) == 0:
            raise ValueError(f"{name} is an empty list of blocks")
        if all(_is_triple(item) for item in coupling):
            rows, cols, vals, n_rows, n_cols = [], [], [], 0, 0
            for k, (r, c, block) in enumerate(coupling):
                r = np.asarray(r)
                c = np.asarray(c)
                block = _check_block(block, f"{name} block {k}")
                if block.shape != (r.size, c.size):
                    raise ValueError(f"{name} block {k} has shape {block.shape} but comes with "
                                     f"{r.size} target and {c.size} input indices")
                if r.size and (r.dtype.kind not in "iu" or c.dtype.kind not in "iu"
                               or r.min() < 0 or c.min() < 0):
                    raise ValueError(f"the indices of {name} block {k} must be non-negative "
                                     "integers")
                rr, cc = np.nonzero(block)
                rows.append(r[rr])
                cols.append(c[cc])
                vals.append(block[rr, cc])
                n_rows = max(n_rows, int(r.max()) + 1 if r.size else 0)
                n_cols = max(n_cols, int(c.max()) + 1 if c.size else 0)
            csr = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                            np.concatenate(cols))),
                                    shape=(n_rows, n_cols))
        elif any(_is_triple(item) for item in coupling):
            raise ValueError(f"{name}: mix of (target_idx, input_idx, block) triples and bare "
                             "blocks; use one form")
        else:
            blocks = [_check_block(b, f"{name} block {k}") for k, b in enumerate(coupling)]
            csr = sparse.block_diag(blocks, format="csr", dtype=np.float64)
    else:
        dense = _check_block(coupling, name)
        csr = sparse.csr_matrix(dense)
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def _densify(item):
    """Blocks given as coupling objects (e.g. implicit ones) enter the block forms as dense
    arrays (the protocol's ``to_dense``)."""
    if is_coupling(item):
        return item.to_dense()
    if _is_triple(item) and is_coupling(item[2]):
        return (item[0], item[1], item[2].to_dense())
    return item


def _check_block(block, name: str) -> np.ndarray:
    arr = check_array(block, name, allow_empty=True)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative entries (min {arr.min():.3g})")
    return arr


class CouplingSampler:
    r"""Draw partners :math:`j \sim M_{i\cdot}` for every target row :math:`i`, vectorised.

    The coupling is checked (shape, non-negative, rows summing to 1) and stored in compressed
    sparse rows; draws are inverse-CDF sampling on one running cumulative sum
    (``RowSampler``, shared with the metrics and the implicit
    coupling). Cost per draw :math:`O(\log \mathrm{nnz})`, whatever the sparsity; rows with a
    single non-zero (hard matchings) need no random numbers at all.

    Parameters
    ----------
    coupling : array-like (n_targets, n_inputs), scipy sparse matrix, ImplicitCoupling (its support) or list of blocks
        ``coupling[i, j]`` is the weight of input ``j`` for target ``i``; every row must be
        non-negative, finite and sum to 1 (within ``1e-5``; rows are renormalised exactly).
        A list is read as per-group blocks: either bare 2-d blocks, placed block-diagonally
        in order (targets and inputs sorted by group), or ``(target_idx, input_idx, block)``
        triples placing each block at those rows and columns.
    n_targets, n_inputs : int, optional
        Expected shape; a mismatch raises (with a hint when the transpose was passed).

    Example
    -------
    >>> s = CouplingSampler([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    >>> s.sample(random_state=0, n_draws=2).shape
    (2, 2)
    >>> s.sample(random_state=0)[1]
    np.int64(2)
    """

    def __init__(self, coupling, *, n_targets: int | None = None, n_inputs: int | None = None,
                 name: str = "coupling"):
        csr = _coupling_to_csr(coupling, name)
        n_rows, n_cols = csr.shape
        if (n_targets is not None and n_rows != n_targets) or (
                n_inputs is not None and n_cols != n_inputs):
            want = (n_targets if n_targets is not None else n_rows,
                    n_inputs if n_inputs is not None else n_cols)
            hint = (" (it looks transposed: pass coupling.T)"
                    if (n_cols, n_rows) == want and want[0] != want[1] else "")
            raise ValueError(f"{name} has shape {csr.shape} but there are {want[0]} targets "
                             f"and {want[1]} inputs; coupling[i, j] is the weight of input j "
                             f"for target i, so it must have shape {want}{hint}")
        if n_rows == 0:
            raise ValueError(f"{name} has no rows")
        sums = np.asarray(csr.sum(axis=1)).ravel()
        bad = np.abs(sums - 1.0) > _ROW_ATOL
        if bad.any():
            empty = int((sums[bad] == 0).sum())
            worst = int(np.argmax(np.abs(sums - 1.0)))
            extra = (f"; {empty} of them carry no weight at all (e.g. targets of a group "
                     "that was not matched: drop them)" if empty else "")
            raise ValueError(f"rows of {name} must each sum to 1 (a distribution over inputs "
                             f"for every target), but {int(bad.sum())} row(s) do not, e.g. row "
                             f"{worst} sums to {sums[worst]:.6g}{extra}; row-normalise it "
                             "first (M / M.sum(axis=1, keepdims=True))")
        self.shape = csr.shape
        self.indices = csr.indices
        self._rows = RowSampler(csr)

    @property
    def n_targets(self) -> int:
        return self.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.shape[1]

    def sample(self, random_state=None, n_draws: int | None = None) -> np.ndarray:
        """Partner indices: shape ``(n_targets,)``, or ``(n_draws, n_targets)`` when given.

        Row ``i`` of the output holds independent draws from ``coupling[i, :]``
        (``RowSampler``, the package's one sampler).
        """
        return self._rows.sample(random_state, n_draws)
