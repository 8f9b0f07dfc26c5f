r"""How much memory an online entropic OT match needs, before running it.

:func:`~propalign_lite.match` with ``online=True`` (and so :func:`~propalign_lite.align` on
large groups) holds, besides the input embeddings, only :math:`O(n)` vectors and the truncated
kernel with its :math:`s = n \times` (entries per row) pairs. Its peak memory is modelled as

.. math:: M \approx \underbrace{20\,(n_1 + n_2)\,d}_{\text{inputs and copies}}
          + F + c_{\mathrm{row}} \max(n_1, n_2) + c_{\mathrm{pair}}\, s,

with the inputs (float64, 8 bytes a coordinate) and the solver's copies of them (float64
padded and float32 tiles, 12 bytes), a fixed working set :math:`F` (the passes' blocks and
thread buffers), a cost per row :math:`c_{\mathrm{row}}` (the candidate pairs kept below the
truncation level, at most 64 a row at 16 bytes each, the pass's buffers and the
:math:`O(n)` vectors) and a cost per kept pair :math:`c_{\mathrm{pair}}` (the kernel in CSR,
its log-entries, the returned support and the coupling's row-normalised values, not all
alive at once). :math:`F`, :math:`c_{\mathrm{row}}` and :math:`c_{\mathrm{pair}}` are fitted
by least squares to the rise of the peak resident memory over the state before the solve,
coupling included, in eight runs of ``benchmarks/ot_bench.py`` on 2026-12-05 (one process
each; 12-d and 45-d benchmark points):

=========  ====  ============  ===========  =============
n          d     pairs a row   measured GB  model GB
=========  ====  ============  ===========  =============
100,000    12    5.2           0.36         0.29
200,000    12    9.7           0.59         0.52
300,000    12    14.6          0.91         0.78
1,000,000  12    45.5          3.17         3.21
100,000    12    180.9         0.65         0.74
200,000    12    375.2         2.43         2.42
100,000    45    1.0           0.28         0.35
200,000    45    1.0           0.51         0.62
=========  ====  ============  ===========  =============

(``reg`` 0.05, and 0.1 for the rows with 181 and 375 pairs a row; the inputs, which the
measured rise leaves out, are left out of the model's column too.) The model is within
-20 % to +25 % of each run: an estimate to about a quarter, not a bound. It replaced a sum
of every buffer the solver may hold, which said 6.4 GB for the 3.2 GB run at
:math:`10^6` and 0.47 GB for the 0.36 GB one at :math:`10^5`.

The number of entries per row is not known before the solve: it grows as ``reg`` grows
relative to the distances between neighbours (1-50 at the paper's ``reg`` on 12-d
logit-like data; pass what a smaller run showed, ``result.nnz / n``). A support of more
than ``max_nnz`` pairs (default :math:`10^8`) is never gathered: the solver counts it and
goes on with passes over all pairs, which hold none. A dense one (over 30 % of all pairs)
is held as the whole kernel instead, which
``estimate_groups_memory(..., dense_plans=True)`` counts at ``BYTES_PER_HELD_ENTRY`` bytes
an entry of :math:`n_1 n_2`.

Example
-------
>>> round(estimate_memory(10 ** 6, 10 ** 6, 12, nnz_per_row=45.5) / 2 ** 30, 1)
3.4
"""
from __future__ import annotations

from ._validation import check_int, check_labels, check_number

__all__ = ["estimate_memory", "estimate_groups_memory", "BYTES_PER_PAIR", "BYTES_PER_ROW",
           "FIXED_BYTES", "BYTES_PER_DENSE_ENTRY", "BYTES_PER_HELD_ENTRY"]

#: Bytes per kept pair, per row (of the larger side) and fixed, of an online match's peak
#: (fitted, see the module doc)
BYTES_PER_PAIR = 28
BYTES_PER_ROW = 1800
FIXED_BYTES = 80 * 2 ** 20
#: bytes per coordinate of every point, for the input (float64) and for the solver's copies
#: (float64 padded and float32 tiles)
_INPUT_BYTES, _COPY_BYTES = 8, 12
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
    rows = max(n1, n2)
    return int((_INPUT_BYTES + _COPY_BYTES) * (n1 + n2) * d + FIXED_BYTES + BYTES_PER_ROW * rows
               + BYTES_PER_PAIR * nnz_per_row * rows)


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
