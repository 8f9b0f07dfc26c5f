r"""The one partner sampler of the package: :math:`j \sim M_{i\cdot}` for every row of a coupling.

Every coupling (dense, scipy sparse, the support of an implicit one) reaches it as compressed
sparse rows. One running cumulative sum over all stored weights, each row normalised by its
sum, turns a draw for row :math:`i` into inverse-CDF sampling: pick :math:`t` uniformly in row
:math:`i`'s stretch of the running sum and look up the entry whose stretch contains it
(``np.searchsorted``). Cost per draw :math:`O(\log \mathrm{nnz})`; rows with a single non-zero
(one-to-one couplings) need no random numbers.

>>> import numpy as np
>>> from scipy import sparse
>>> s = RowSampler(sparse.csr_matrix([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
>>> s.sample(random_state=0, n_draws=2).shape
(2, 2)
>>> int(s.sample(random_state=0)[1])
2
"""
from __future__ import annotations

import numpy as np

from ._validation import check_random_state


class RowSampler:
    """Inverse-CDF sampler over the rows of a non-negative CSR matrix (rows with weight)."""

    def __init__(self, csr):
        csr = csr.tocsr()
        counts = np.diff(csr.indptr)
        sums = np.asarray(csr.sum(axis=1), dtype=np.float64).ravel()
        if (sums <= 0).any():
            raise ValueError("every row of a coupling needs some weight to sample a partner")
        self.shape = csr.shape
        self.indices = csr.indices
        self._one_hot = bool((counts == 1).all())
        cum = np.empty(csr.nnz + 1)
        cum[0] = 0.0
        np.cumsum(csr.data / np.repeat(sums, counts), out=cum[1:])
        self._cum = cum[1:]
        self._start = cum[csr.indptr[:-1]]
        self._width = cum[csr.indptr[1:]] - self._start
        self._lo = csr.indptr[:-1]
        self._hi = csr.indptr[1:] - 1

    def sample(self, random_state=None, n_draws: int | None = None) -> np.ndarray:
        """Column indices: shape ``(n_rows,)``, or ``(n_draws, n_rows)`` when given."""
        shape = (self.shape[0],) if n_draws is None else (int(n_draws), self.shape[0])
        if self._one_hot:
            return np.broadcast_to(self.indices.astype(np.int64), shape).copy()
        rng = check_random_state(random_state)
        t = self._start + rng.random(shape) * self._width
        k = np.searchsorted(self._cum, t, side="right")
        np.clip(k, self._lo, self._hi, out=k)
        return self.indices[k].astype(np.int64)
