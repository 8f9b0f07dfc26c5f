"""Small helpers of the CITE-seq simulator (argument resolution, barcodes, counts)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._layout import _BATCH_ORDER, _BATCH_RE, _TYPE_ORDER


def _resolve_cell_types(n_cell_types, cell_types) -> list[str]:
    if cell_types is not None:
        names = [str(c) for c in cell_types]
        if len(names) < 2:
            raise ValueError(f"cell_types must name at least 2 types, got {names}")
        if len(set(names)) != len(names):
            raise ValueError("cell_types contains duplicate names")
        return names
    if not isinstance(n_cell_types, (int, np.integer)) or isinstance(n_cell_types, bool):
        raise ValueError(f"n_cell_types must be an int, got {n_cell_types!r}")
    if not 2 <= n_cell_types <= len(_TYPE_ORDER):
        raise ValueError(f"n_cell_types must be between 2 and {len(_TYPE_ORDER)} (the BMMC "
                         f"labels), got {n_cell_types}; pass cell_types=[...] for others")
    return list(_TYPE_ORDER[:n_cell_types])


def _resolve_batches(batches) -> list[str]:
    if isinstance(batches, (int, np.integer)) and not isinstance(batches, bool):
        if not 1 <= batches <= len(_BATCH_ORDER):
            raise ValueError(f"batches must be between 1 and {len(_BATCH_ORDER)} when an "
                             f"int, got {batches}; pass a list of 's<site>d<donor>' names "
                             "for other designs")
        names = list(_BATCH_ORDER[:batches])
    else:
        if isinstance(batches, str):
            raise ValueError("batches must be an int or a list of names, got a string")
        names = [str(b) for b in batches]
        if not names:
            raise ValueError("batches is empty")
    bad = [b for b in names if not _BATCH_RE.match(b)]
    if bad:
        raise ValueError(f"batches must be named like 's1d2' (site 1, donor 2); "
                         f"got {bad}")
    if len(set(names)) != len(names):
        raise ValueError("batches contains duplicate names")
    return sorted(names, key=lambda b: tuple(int(v) for v in _BATCH_RE.match(b).groups()))


def _largest_remainder(n: int, p: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``n`` items in proportion to ``p`` (integers), each part at least ``minimum``."""
    k = p.size
    base = np.full(k, minimum, dtype=np.int64)
    rest = n - base.sum()
    share = p * rest
    counts = np.floor(share).astype(np.int64)
    short = rest - counts.sum()
    if short > 0:
        counts[np.argsort(share - counts)[::-1][:short]] += 1
    return base + counts


def _barcodes(rng: np.random.Generator, batch_of_cell: np.ndarray) -> np.ndarray:
    """Random 16-nt barcodes, suffixed like the real file (``<barcode>-1-<batch>``)."""
    letters = np.frombuffer(b"ACGT", dtype="S1")
    n = batch_of_cell.size
    names = np.empty(n, dtype=object)
    todo = np.arange(n)
    while todo.size:
        seq = letters[rng.integers(0, 4, size=(todo.size, 16))].view("S16").ravel()
        names[todo] = [f"{s.decode()}-1-{b}" for s, b in zip(seq, batch_of_cell[todo])]
        dup = pd.Index(names).duplicated()
        todo = np.flatnonzero(dup)
    return names.astype(str)


def _dense_counts_to_csr(counts: np.ndarray) -> sp.csr_matrix:
    """Dense integer counts -> CSR float32 (faster than ``csr_matrix(dense)``)."""
    n_rows, n_cols = counts.shape
    flat = counts.ravel()
    nz = np.flatnonzero(flat)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(nz // n_cols, minlength=n_rows), out=indptr[1:])
    return sp.csr_matrix((flat[nz].astype(np.float32), (nz % n_cols).astype(np.int32),
                          indptr), shape=(n_rows, n_cols))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _clr_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell CLR that keeps zeros at zero: ``log1p(c / g)``, ``g`` = geometric mean of
    ``1 + c`` over the cell's proteins. Returns the values and ``g``."""
    g = np.exp(np.log1p(counts).mean(axis=1))
    return np.log1p(counts / g[:, None]), g



def _assign_is_train(rng, type_idx, batch_idx, site_of_batch, holdout_fraction):
    """``test`` = batches of the last site (if there are >= 2 sites); ``iid_holdout`` = a
    per-type random fraction of the remaining cells; ``train`` = the rest."""
    n = type_idx.size
    label = np.full(n, "train", dtype=object)
    sites = np.unique(site_of_batch)
    if sites.size >= 2:
        label[site_of_batch[batch_idx] == sites.max()] = "test"
    if holdout_fraction > 0:
        for k in np.unique(type_idx):
            pool = np.flatnonzero((type_idx == k) & (label == "train"))
            m = pool.size
            take = int(round(holdout_fraction * m))
            if m >= 4:
                take = min(max(take, 2), m - 2)
            if take > 0:
                label[rng.choice(pool, size=take, replace=False)] = "iid_holdout"
    return label.astype(str)
