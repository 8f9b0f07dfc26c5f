"""Preprocessing of a CITE-seq AnnData (real, simulated or fixture) into
:class:`CiteSeqData`: scaled RNA reduced to principal components, proteins as stored,
splits from ``obs["is_train"]``."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..._validation import check_random_state
from ._layout import SPLIT_FROM_IS_TRAIN, SPLIT_NAMES
from .geo import validate_cite_seq_layout

__all__ = ["CiteSeqData", "preprocess_cite_seq"]


# ======================================================================================
# Analysis-ready container
# ======================================================================================
@dataclasses.dataclass(frozen=True, eq=False)
class CiteSeqData:
    """Analysis-ready CITE-seq arrays, one row per cell, rows paired across modalities.

    Row ``i`` of :attr:`adt` and row ``i`` of :attr:`gex_pca` are the same cell (the true
    pairing). Experiments that treat the modalities as unpaired must hide this themselves.

    Attributes
    ----------
    adt : ndarray of shape (n_cells, n_adt), float32
        Protein modality: the ADT columns of ``X`` as stored (per-cell CLR).
    gex_pca : ndarray of shape (n_cells, n_pcs), float32
        RNA modality: principal components of the scaled GEX columns of ``X``.
    cell_type : ndarray of shape (n_cells,), str
        The treatment / group label ``t``.
    split : ndarray of shape (n_cells,), str
        ``"train"``, ``"val"`` or ``"test"`` (from ``obs["is_train"]``).
    batch : ndarray of shape (n_cells,), str
        Site x donor batch such as ``"s1d2"``.
    adt_names : ndarray of shape (n_adt,), str
        Protein (marker) names.
    obs_names : ndarray of shape (n_cells,), str
        Cell barcodes.
    cell_types : tuple of str
        All cell-type categories in the file's order (sorted); ``cell_type_codes`` index it.
    info : dict
        Provenance: source, PCA solver, explained-variance ratios, timings.
    """

    adt: np.ndarray
    gex_pca: np.ndarray
    cell_type: np.ndarray
    split: np.ndarray
    batch: np.ndarray
    adt_names: np.ndarray
    obs_names: np.ndarray
    cell_types: tuple
    info: dict = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.adt.shape[0])

    @property
    def n_cells(self) -> int:
        """Number of cells (rows)."""
        return len(self)

    @property
    def cell_type_codes(self) -> np.ndarray:
        """Integer codes of :attr:`cell_type` in the order of :attr:`cell_types`."""
        lookup = {name: code for code, name in enumerate(self.cell_types)}
        return np.fromiter((lookup[c] for c in self.cell_type), dtype=np.int64,
                           count=len(self))

    def subset(self, rows) -> "CiteSeqData":
        """Return the cells selected by a boolean mask or an integer index array.

        The category list :attr:`cell_types` is kept whole, so codes stay comparable
        between subsets.
        """
        rows = np.asarray(rows)
        n = len(self)
        if rows.dtype == bool:
            if rows.shape != (n,):
                raise ValueError(f"rows: boolean mask must have shape ({n},), "
                                 f"got {rows.shape}")
        elif rows.dtype.kind in "iu":
            if rows.ndim != 1:
                raise ValueError(f"rows: index array must be 1-dimensional, got shape "
                                 f"{rows.shape}")
            if rows.size and (rows.min() < -n or rows.max() >= n):
                raise ValueError(f"rows: indices must lie in [-{n}, {n - 1}]")
        else:
            raise ValueError(f"rows must be a boolean mask or integer indices, got dtype "
                             f"{rows.dtype}")
        return dataclasses.replace(
            self, adt=self.adt[rows], gex_pca=self.gex_pca[rows],
            cell_type=self.cell_type[rows], split=self.split[rows], batch=self.batch[rows],
            obs_names=self.obs_names[rows], info=dict(self.info))

    def split_view(self, name: str) -> "CiteSeqData":
        """Return the cells of one split: ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"name must be one of {SPLIT_NAMES}, got {name!r}")
        mask = self.split == name
        if not mask.any():
            counts = {s: int((self.split == s).sum()) for s in SPLIT_NAMES}
            raise ValueError(f"split {name!r} has no cells (cells per split: {counts})")
        return self.subset(mask)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={int((self.split == s).sum())}" for s in SPLIT_NAMES)
        return (f"CiteSeqData(n_cells={len(self)}, n_adt={self.adt.shape[1]}, "
                f"n_pcs={self.gex_pca.shape[1]}, n_cell_types="
                f"{len(np.unique(self.cell_type))}, split: {counts})")

# ======================================================================================
# Preprocessing (shared by the real file, the simulator and the fixture)
# ======================================================================================
_SOLVERS = ("auto", "covariance_eigh", "randomized", "arpack")
# Above this many genes the randomized solver beats forming and diagonalising the
# gene x gene covariance (measured; see preprocess_cite_seq).
_AUTO_COVARIANCE_MAX_GENES = 4000
# Matrices up to this many entries are decomposed on a single BLAS thread.
_SINGLE_THREAD_MAX_ENTRIES = 20_000_000


def _rows_dense(X, start: int, stop: int, cols, out=None) -> np.ndarray:
    """Rows ``start:stop`` of ``X`` restricted to ``cols`` as a dense float32 block."""
    part = X[start:stop]
    if sp.issparse(part):
        part = part.tocsr()[:, cols].astype(np.float32, copy=False)
        if out is None:
            return part.toarray()
        part.toarray(out=out)                 # scipy zero-fills ``out`` first
        return out
    block = np.asarray(part)[:, cols].astype(np.float32, copy=False)
    if out is None:
        return block
    out[...] = block
    return out


def _as_slice(cols: np.ndarray):
    """A contiguous run of column indices as a ``slice`` (much faster to take from CSR)."""
    if cols.size and cols[-1] - cols[0] + 1 == cols.size:
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def _n_selected(cols) -> int:
    return cols.stop - cols.start if isinstance(cols, slice) else int(cols.size)


def _column_mean_var(X, cols, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased variance (ddof=1) of the selected columns, in float64."""
    n = X.shape[0]
    if sp.issparse(X) and X.format == "csr":
        sums = np.bincount(X.indices, weights=X.data, minlength=X.shape[1])[cols]
        sq = np.bincount(X.indices, weights=np.square(X.data, dtype=np.float64),
                         minlength=X.shape[1])[cols]
    else:
        sums = np.zeros(_n_selected(cols))
        sq = np.zeros(_n_selected(cols))
        for start in range(0, n, block_rows):
            b = _rows_dense(X, start, min(start + block_rows, n), cols).astype(np.float64)
            sums += b.sum(axis=0)
            sq += np.einsum("ij,ij->j", b, b)
    mean = sums / n
    var = (sq - n * mean ** 2) / max(n - 1, 1)
    return mean, np.maximum(var, 0.0)


def _scaled_dense(X, cols, *, max_value: float | None,
                  block_rows: int) -> np.ndarray:
    """``(x - mean) / std`` clipped to ``[-max_value, max_value]`` (scanpy's ``scale``), as
    one float32 array filled block by block (no float64 copy of the full matrix)."""
    n = X.shape[0]
    mean, var = _column_mean_var(X, cols, block_rows)
    std = np.sqrt(var)
    std[std == 0] = 1.0
    mean32, inv32 = mean.astype(np.float32), (1.0 / std).astype(np.float32)
    out = np.empty((n, _n_selected(cols)), dtype=np.float32)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        b = out[start:stop]
        _rows_dense(X, start, stop, cols, out=b)
        b -= mean32
        b *= inv32
        if max_value is not None:
            np.clip(b, -max_value, max_value, out=b)
    return out


def _pca_scores(x: np.ndarray, n_components: int, *, solver: str, random_state,
                block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Principal-component scores of ``x`` (float32, may be centred in place).

    Returns ``(scores, explained_variance_ratio)``. Signs follow scikit-learn's convention
    (the largest-magnitude loading of each component is positive).
    """
    n, p = x.shape
    # Small problems run much faster on one BLAS thread: on a busy 2-core machine a
    # 400 x 400 eigh took 2 s with two threads and 15 ms with one.
    with threadpool_limits(limits=1 if n * p <= _SINGLE_THREAD_MAX_ENTRIES else None):
        return _pca_scores_impl(x, n_components, solver=solver, random_state=random_state,
                                block_rows=block_rows)


def _pca_scores_impl(x, n_components, *, solver, random_state, block_rows):
    n, p = x.shape
    mean = x.mean(axis=0, dtype=np.float64)
    total_var = 0.0
    for start in range(0, n, block_rows):
        b = x[start:start + block_rows].astype(np.float64) - mean
        total_var += np.einsum("ij,ij->", b, b)
    total_var /= max(n - 1, 1)
    if solver == "covariance_eigh":
        gram = (x.T @ x).astype(np.float64)                  # p x p, float32 BLAS
        cov = (gram - n * np.outer(mean, mean)) / (n - 1)
        del gram
        with threadpool_limits(limits=1 if p <= 2048 else None):
            evals, evecs = scipy.linalg.eigh(cov, subset_by_index=[p - n_components, p - 1],
                                             overwrite_a=True, check_finite=False)
        evals, components = evals[::-1], evecs[:, ::-1].T          # (k,), (k, p)
        variance = np.maximum(evals, 0.0)
    else:
        x -= mean.astype(np.float32)                               # centre in place
        seed = int(random_state.integers(2 ** 31 - 1))
        if solver == "randomized":
            from sklearn.utils.extmath import randomized_svd
            _, s, components = randomized_svd(x, n_components, random_state=seed)
        else:  # arpack
            from scipy.sparse.linalg import svds
            v0 = np.random.default_rng(seed).uniform(-1, 1, min(n, p))
            _, s, components = svds(x, k=n_components, v0=v0, solver="arpack")
            order = np.argsort(s)[::-1]
            s, components = s[order], components[order]
        variance = s.astype(np.float64) ** 2 / (n - 1)
        mean = np.zeros(p)
    # sign convention: the largest |loading| of each component is positive
    pivot = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), pivot])
    signs[signs == 0] = 1.0
    components = components * signs[:, None]
    comp32 = np.ascontiguousarray(components.T, dtype=np.float32)   # (p, k)
    scores = x @ comp32
    scores -= (mean @ components.T).astype(np.float32)
    return scores, variance / total_var


def preprocess_cite_seq(
    adata,
    *,
    n_pcs: int = 200,
    svd_solver: str = "auto",
    max_value: float | None = 10.0,
    random_state=0,
    block_rows: int | None = None,
) -> CiteSeqData:
    r"""Turn a CITE-seq AnnData (real, simulated or fixture) into analysis-ready arrays.

    Follows the paper's preprocessing:

    * **RNA**: the GEX columns of ``X`` are scaled gene by gene,
      :math:`\tilde x_{ig} = \operatorname{clip}\big((x_{ig} - \bar x_g)/s_g,\,
      -c, c\big)` with the unbiased standard deviation :math:`s_g` (1 for constant genes)
      and :math:`c` = ``max_value`` (as ``scanpy.pp.scale(max_value=10)``), then reduced
      to ``n_pcs`` principal components fitted on **all** cells (every split), as the
      paper's code does.
    * **Protein**: the ADT columns of ``X`` as stored (per-cell CLR), densified.
    * **Treatment** :math:`t`: ``obs["cell_type"]``.
    * **Split**: ``obs["is_train"]`` mapped ``train -> "train"``, ``test -> "val"``,
      ``iid_holdout -> "test"``.

    The scaled matrix is built block by block as one float32 array (for the full file,
    90,261 x 13,953 x 4 bytes = 5.0 GB) and centred in place; no float64 copy of it is made.

    Parameters
    ----------
    adata : anndata.AnnData
        In the GSE194122 layout (see :func:`validate_cite_seq_layout`; raw counts are not
        needed here).
    n_pcs : int, default=200
        Number of principal components, at most ``min(n_cells, n_gex)`` (strictly less for
        ``"arpack"``).
    svd_solver : {"auto", "covariance_eigh", "randomized", "arpack"}, default="auto"
        ``"covariance_eigh"`` forms the gene x gene covariance and takes its top
        eigenvectors (exact; fastest for up to a few thousand genes); ``"randomized"`` is
        Halko et al.'s randomized SVD (fastest for the full 13,953 genes); ``"arpack"`` is
        the exact Lanczos solver the paper's code used through scanpy (slow at full size).
        ``"auto"`` takes ``"covariance_eigh"`` up to 4,000 genes and ``"randomized"`` above.
    max_value : float or None, default=10
        Clip of the scaled values; ``None`` disables clipping.
    random_state : None, int or numpy.random.Generator, default=0
        Seed of the randomized / arpack solvers.
    block_rows : int, optional
        Rows densified at a time (default: about 64 MB per block).

    Returns
    -------
    CiteSeqData

    Examples
    --------
    >>> from propalign_lite.datasets.citeseq import simulate_cite_seq, preprocess_cite_seq
    >>> data = preprocess_cite_seq(simulate_cite_seq(400, n_cell_types=6, n_genes=250,
    ...                            n_proteins=20, batches=3, random_state=1), n_pcs=10)
    >>> train = data.split_view("train")
    >>> train.gex_pca.shape[1], train.adt.shape[1]
    (10, 20)
    """
    summary = validate_cite_seq_layout(adata, require_counts=False)
    if svd_solver not in _SOLVERS:
        raise ValueError(f"svd_solver must be one of {_SOLVERS}, got {svd_solver!r}")
    if not isinstance(n_pcs, (int, np.integer)) or isinstance(n_pcs, bool) or n_pcs < 1:
        raise ValueError(f"n_pcs must be a positive int, got {n_pcs!r}")
    if max_value is not None and not (np.isfinite(max_value) and max_value > 0):
        raise ValueError(f"max_value must be a positive number or None, got {max_value!r}")
    n, n_gex = summary["n_cells"], summary["n_gex"]
    limit = min(n, n_gex)
    solver = svd_solver
    if solver == "auto":
        solver = "covariance_eigh" if n_gex <= _AUTO_COVARIANCE_MAX_GENES else "randomized"
    if solver == "arpack" and n_pcs >= limit:
        raise ValueError(f"n_pcs={n_pcs} must be < min(n_cells, n_gex) = {limit} for the "
                         "arpack solver")
    if n_pcs > limit:
        raise ValueError(f"n_pcs={n_pcs} exceeds min(n_cells, n_gex) = {limit}; lower "
                         "n_pcs (the paper uses 200 on 90,261 cells x 13,953 genes)")
    if block_rows is None:
        block_rows = max(1, (64 << 20) // (4 * max(n_gex, 1)))
    elif not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive int, got {block_rows!r}")
    rng = check_random_state(random_state)

    ft = adata.var["feature_types"].astype(str).to_numpy()
    gex_cols, adt_cols = _as_slice(np.flatnonzero(ft == "GEX")), _as_slice(
        np.flatnonzero(ft == "ADT"))
    X = adata.X
    if sp.issparse(X) and X.format != "csr":
        X = X.tocsr()

    t0 = time.perf_counter()
    scaled = _scaled_dense(X, gex_cols, max_value=max_value, block_rows=block_rows)
    t1 = time.perf_counter()
    scores, evr = _pca_scores(scaled, int(n_pcs), solver=solver, random_state=rng,
                              block_rows=block_rows)
    del scaled
    t2 = time.perf_counter()
    adt = _rows_dense(X, 0, n, adt_cols)

    cell_type_col = adata.obs["cell_type"]
    if isinstance(cell_type_col.dtype, pd.CategoricalDtype):
        categories = tuple(str(c) for c in cell_type_col.cat.categories)
    else:
        categories = tuple(sorted(set(cell_type_col.astype(str))))
    is_train = adata.obs["is_train"].astype(str).to_numpy()
    split = np.array([SPLIT_FROM_IS_TRAIN[v] for v in is_train], dtype="<U5")
    info = {"source": adata.uns.get("dataset_id", "anndata") if hasattr(adata, "uns")
            else "anndata",
            "n_pcs": int(n_pcs), "svd_solver": solver, "max_value": max_value,
            "explained_variance_ratio": evr.astype(np.float64),
            "seconds_scale": t1 - t0, "seconds_pca": t2 - t1,
            "n_gex": n_gex, "n_adt": summary["n_adt"]}
    return CiteSeqData(
        adt=np.ascontiguousarray(adt, dtype=np.float32),
        gex_pca=np.ascontiguousarray(scores, dtype=np.float32),
        cell_type=cell_type_col.astype(str).to_numpy().astype(str),
        split=split,
        batch=adata.obs["batch"].astype(str).to_numpy().astype(str),
        adt_names=np.asarray(adata.var_names[adt_cols]).astype(str).copy(),
        obs_names=np.asarray(adata.obs_names).astype(str),
        cell_types=categories,
        info=info,
    )
