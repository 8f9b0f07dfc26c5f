r"""How much memory an online entropic OT match needs, before running it.

:func:`~propalign_lite.match` with ``online=True`` (and so :func:`~propalign_lite.align` on
large groups) holds, besides the input embeddings, only :math:`O(n)` vectors and the truncated
kernel with its :math:`s = n \times` (entries per row) pairs, so its peak memory is modelled as

.. math:: M \approx \underbrace{c_{\mathrm{emb}}\,(n_1 + n_2)\,d \cdot 8}_{\text{copies of the
          embeddings}} + \underbrace{c_{\mathrm{vec}}\,(n_1 + n_2) \cdot 8}_{\text{potentials,
          scalings, Newton vectors}} + \underbrace{c_{\mathrm{pair}}\; s}_{\text{kernel, Newton
          Hessian, coupling}} + W,

with the work space :math:`W` of one block pass (``DEFAULT_BLOCK`` float32 entries and their
temporaries) or of one chunk of tree queries, plus, for the compiled passes of
``propalign_lite._support_pass``, their column buffer (4 bytes times about twice the entries of a
row, per row) and their buffer of deeper pairs (a column and a float32 value, 8 bytes, for
twice 64 pairs a row) and, on sparse plans (at most 64 entries a row), the solver's candidate pairs
(16 bytes each: int32 row and column, float64 value; at most 64 a row after a pass; the
model counts 64, although repairs add the pairs of the rows they rescan: 77 a row at the end
of the 12-d benchmark at :math:`n = 10^6`). :math:`c_{\mathrm{pair}}` is 60 bytes a kept
pair in both regimes: the kernel (CSR, 12 bytes; its transpose is a view of the same
arrays), the log-entries (8), and at the end the returned support (24) with its
temporaries (16); the Newton steps
of a sparse support (at most 16 entries per row on average) form neither the plan nor its
Hessian (``propalign_lite._newton``; when they did, the model counted 180 bytes a pair).
Plain Sinkhorn steps measured 60 bytes a pair too (peak resident memory grew by 3.1 GB for
:math:`5.5\cdot 10^7` pairs, ``n`` = 10,000, ``reg`` 0.3, the coupling and ``M @ y``
included; measured before supports with more
than 30 % of all pairs were replaced by the whole kernel, held in memory, which
``estimate_groups_memory(..., dense_plans=True)`` counts at ``BYTES_PER_HELD_ENTRY`` bytes an
entry of :math:`n_1 n_2`). The number of entries per row is
not known before the solve: it grows as ``reg`` grows relative to the distances between
neighbours (1-3 at the paper's ``reg`` on 12-d logit-like data; pass what a smaller run
showed, ``result.nnz / n``).

Measured at :math:`n = 10^6` on the 12-d benchmark (c7d208f, 45.5 kept pairs a row, 77
candidates a row at the end): the resident memory rose by 4.2 GB during the solve, at most
3.5 GB above the process's state before the cost was built in the solver's stages (the last
support build), 2.9 GB in the start and 3.1 GB in a repair (4.85 GB peak resident, the
imports and inputs included); with the returned support and the coupling built from the
kernel's own int32 arrays (a5cd9d8) it rose by 3.8 GB (4.43 GB peak), and with the repairs
merging the candidates in place (6114e5e) by 3.2 GB (3.78 GB peak). This model says 6.4 GB
(``estimate_memory(10 ** 6, 10 ** 6, 12, nnz_per_row=45.5)``): an upper bound, since it
adds the pass's buffers, the candidates and the kernels, which are not all alive at once.

Example
-------
>>> round(estimate_memory(10 ** 6, 10 ** 6, 12, nnz_per_row=16) / 2 ** 30, 1)
4.5
"""
from __future__ import annotations

from ._validation import check_int, check_labels, check_number

__all__ = ["estimate_memory", "estimate_groups_memory", "BYTES_PER_PAIR",
           "BYTES_PER_DENSE_ENTRY", "BYTES_PER_HELD_ENTRY"]

#: Bytes per kept pair at the solver's peak, with Newton steps and with plain Sinkhorn steps
#: (the same since the Newton steps form neither the plan nor its Hessian).
BYTES_PER_PAIR = {"newton": 60, "sinkhorn": 60}
_COPIES_OF_EMBEDDINGS = 5       # input, centred float64, float32 blocks, the coupling's copies
_VECTORS = 40                   # float64 vectors of length n1 + n2 alive at once
_WORK = 96 * 2 ** 20            # one block pass / one chunk of tree queries, with temporaries
_CANDIDATES_PER_ROW = 64        # the solver keeps its deeper candidate set up to this many a row
_BYTES_PER_CANDIDATE = 16       # row, column (int32) and log P at the pass (float64)
#: Peak bytes per entry of a dense (``n1 * n2 <= dense_max``) match, for the cost, kernel,
#: plan and temporaries. Measured with ``tracemalloc`` on 12-d data at ``reg`` 0.05, as 6.5
#: float64 arrays of the group's size at n = 2,000 and 5.9 at n = 4,096.
BYTES_PER_DENSE_ENTRY = 52
#: Kept pairs (a fraction of all) assumed for a dense plan.
_DENSE_FRACTION = 0.4
#: Peak bytes per entry (of all ``n1 * n2``) of an online match whose plan is dense, so that
#: the solver holds its whole kernel: 5 (the float32 kernel and a mask) + 55 per kept pair
#: (the pass's buffers, rows, columns and values of the support), here at 40 % of the pairs
#: kept. Measured: 21.6 (peak resident memory) on the largest group of a simulated
#: 10^5-cell atlas, 11,504 cells a side, 38 % of the pairs kept, coupling and transfer
#: included, with a float64 kernel; 61 (``tracemalloc``) on a plan that keeps every pair
#: (``tests/test_ot_memory.py``), where the support pass before the kernel is the peak.
_HELD_BYTES_PER_ENTRY, _HELD_BYTES_PER_KEPT = 5, 55
BYTES_PER_HELD_ENTRY = int(round(_HELD_BYTES_PER_ENTRY + _HELD_BYTES_PER_KEPT * _DENSE_FRACTION))


def estimate_memory(n1: int, n2: int, d: int, *, nnz_per_row: float = 16.0) -> int:
    """Estimated peak bytes of ``match(x, y, online=True)`` for ``x`` of shape ``(n1, d)`` and
    ``y`` of shape ``(n2, d)`` whose truncated kernel keeps ``nnz_per_row`` pairs per row of the
    larger side (the model in the module docstring), the input arrays included.

    >>> estimate_memory(1000, 1000, 12) < estimate_memory(10 ** 5, 10 ** 5, 12)
    True
    """
    n1 = check_int(n1, "n1", min_value=1)
    n2 = check_int(n2, "n2", min_value=1)
    d = check_int(d, "d", min_value=1)
    nnz_per_row = check_number(nnz_per_row, "nnz_per_row", low=1.0)
    n = n1 + n2
    pairs = nnz_per_row * max(n1, n2)
    regime = "newton" if pairs <= 16 * n else "sinkhorn"       # as the solver chooses
    rows = max(n1, n2)
    buffer = 4 * min(2 * nnz_per_row + 8, min(n1, n2) + 8) * rows   # the pass's column buffer
    buffer += 8 * 2 * _CANDIDATES_PER_ROW * rows                    # and its deeper pairs' heap
    candidates = (_BYTES_PER_CANDIDATE * _CANDIDATES_PER_ROW * rows
                  if nnz_per_row <= _CANDIDATES_PER_ROW else 0)
    return int(_COPIES_OF_EMBEDDINGS * n * d * 8 + _VECTORS * n * 8
               + BYTES_PER_PAIR[regime] * pairs + _WORK + buffer + candidates)


def estimate_groups_memory(labels1, labels2, *, n_jobs: int = 1, nnz_per_row: float = 16.0,
                           dense_max: int | None = None, dense_plans: bool = False,
                           max_nnz: int = 10 ** 8) -> int:
    """Estimated peak bytes of matching two labelled sets within groups, as
    :func:`~propalign_lite.match_groups` and :func:`~propalign_lite.align` do, before any
    classifier is trained: the propensity logits have one coordinate per shared group, each
    group is solved densely (``n1 * n2 <= dense_max``, ``BYTES_PER_DENSE_ENTRY`` bytes an
    entry) or online (:func:`estimate_memory`), and ``n_jobs`` groups are in memory at once
    (the ``n_jobs`` largest are counted; ``-1``: one per CPU). The couplings that are kept
    (dense arrays for dense groups, the sparse plans of online ones) are added.

    ``dense_plans=True`` gives the other end: every online group's plan dense (as the
    classifiers' logits of one cell type often make it at the paper's ``reg``), its kernel
    held whole (``BYTES_PER_HELD_ENTRY`` an entry) unless its kept pairs would exceed
    ``max_nnz``, where the solver falls back to passes over all pairs (little memory, much
    time). The memory a match needs lies between the two.

    Example
    -------
    >>> t1 = ["B"] * 300 + ["T"] * 5000
    >>> t2 = ["B"] * 200 + ["T"] * 6000 + ["NK"] * 50
    >>> gb = estimate_groups_memory(t1, t2) / 2 ** 30      # T: 3e7 entries, an online match
    >>> 0.01 < gb < 1
    True
    """
    import os

    import numpy as np

    from .matchers import DENSE_MAX

    dense_max = DENSE_MAX if dense_max is None else check_int(dense_max, "dense_max", min_value=1)
    max_nnz = check_int(max_nnz, "max_nnz", min_value=1)
    n_jobs = check_int(n_jobs, "n_jobs", min_value=-1)
    if n_jobs == 0:          # as match_groups: a positive number of threads or -1
        raise ValueError("n_jobs must be a positive number of threads or -1 (one per CPU), got 0")
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    g1, c1 = np.unique(check_labels(labels1, "labels1"), return_counts=True)
    g2, c2 = np.unique(check_labels(labels2, "labels2"), return_counts=True)
    sizes2 = dict(zip(g2.tolist(), c2.tolist()))
    pairs = [(int(n1), int(sizes2[g])) for g, n1 in zip(g1.tolist(), c1.tolist()) if g in sizes2]
    if not pairs:
        return 0
    d = len(pairs)
    peaks, kept = [], 0
    for n1, n2 in pairs:
        if n1 * n2 <= dense_max:
            peaks.append(BYTES_PER_DENSE_ENTRY * n1 * n2)
            kept += 8 * n1 * n2
        elif dense_plans and _DENSE_FRACTION * n1 * n2 <= max_nnz:
            peaks.append(BYTES_PER_HELD_ENTRY * n1 * n2)
            kept += int(24 * _DENSE_FRACTION * n1 * n2)
        else:
            peaks.append(estimate_memory(n1, n2, d, nnz_per_row=nnz_per_row))
            kept += 12 * nnz_per_row * max(n1, n2)
    return int(sum(sorted(peaks)[-n_jobs:]) + kept)
