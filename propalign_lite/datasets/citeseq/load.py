"""One-call loaders: the real file or the simulator, preprocessed."""
from __future__ import annotations

import numpy as np

from ._layout import CITESEQ_SHA256, CITESEQ_URL
from .geo import _read_validated, fetch_cite_seq
from .preprocess import CiteSeqData, preprocess_cite_seq
from .simulator import simulate_cite_seq

__all__ = ["load_cite_seq", "load_cite_seq_simulated", "load_cite_seq_for"]


def load_cite_seq(path=None, *, n_pcs: int = 200, download: bool = False, cache_dir=None,
                  svd_solver: str = "auto", random_state=0, url: str = CITESEQ_URL,
                  known_hash: str | None = CITESEQ_SHA256, progressbar: bool | None = None,
                  full_size: bool | None = None) -> CiteSeqData:
    """Load the real GSE194122 CITE-seq data, analysis-ready.

    Finds the file (``path`` > ``PROPALIGN_CITESEQ_PATH`` > cache > ``download=True``, see
    :func:`fetch_cite_seq`), validates its layout (:func:`validate_cite_seq_layout`) and
    runs :func:`preprocess_cite_seq` (scale + ``n_pcs`` PCs for RNA, stored CLR for
    proteins, splits from ``is_train``).

    Examples
    --------
    >>> data = load_cite_seq("GSE194122_..._cite_BMMC_processed.h5ad")  # doctest: +SKIP
    >>> train = data.split_view("train")                                 # doctest: +SKIP
    """
    file = fetch_cite_seq(path, download=download, cache_dir=cache_dir, url=url,
                          known_hash=known_hash, progressbar=progressbar)
    adata = _read_validated(file, full_size=full_size)
    del adata.layers["counts"]            # not needed here; frees ~1.3 GB on the real file
    data = preprocess_cite_seq(adata, n_pcs=n_pcs, svd_solver=svd_solver,
                               random_state=random_state)
    data.info["path"] = str(file)
    return data


def load_cite_seq_simulated(n_cells: int = 5000, *, n_pcs: int = 50,
                            svd_solver: str = "auto", random_state=None,
                            **simulate_kwargs) -> CiteSeqData:
    """Simulate (:func:`simulate_cite_seq`) and preprocess (:func:`preprocess_cite_seq`)
    in one call -- the offline stand-in for :func:`load_cite_seq`.

    Examples
    --------
    >>> from propalign_lite.datasets.citeseq import load_cite_seq_simulated
    >>> data = load_cite_seq_simulated(500, n_pcs=20, n_cell_types=6, n_genes=300,
    ...                                n_proteins=30, batches=3, random_state=0)
    >>> data.gex_pca.shape
    (500, 20)
    """
    adata = simulate_cite_seq(n_cells, random_state=random_state, **simulate_kwargs)
    rs = random_state if random_state is not None else 0
    if isinstance(rs, np.random.Generator):
        rs = int(rs.integers(2 ** 31 - 1))
    return preprocess_cite_seq(adata, n_pcs=n_pcs, svd_solver=svd_solver, random_state=rs)


def load_cite_seq_for(settings: dict) -> tuple[CiteSeqData, str]:
    """The CITE-seq data a chapter's profile asks for, and a one-line description of it.

    ``settings["data"] == "geo"`` loads the real file (:func:`load_cite_seq`, ``n_pcs``);
    ``"simulated"`` calls :func:`load_cite_seq_simulated` with ``n_cells``, ``n_pcs``,
    ``data_seed`` and the ``simulator`` keyword arguments. Chapters that use the same settings
    therefore see the same cells.
    """
    if settings["data"] == "geo":
        return load_cite_seq(n_pcs=settings["n_pcs"]), "the real GSE194122 CITE-seq file"
    if settings["data"] != "simulated":
        raise ValueError(f"data must be 'geo' or 'simulated', got {settings['data']!r}")
    sim = dict(settings.get("simulator", {}))
    data = load_cite_seq_simulated(settings["n_cells"], n_pcs=settings["n_pcs"],
                                   random_state=settings["data_seed"], **sim)
    n_types = sim.get("n_cell_types", "default")
    return data, (f"**simulated** CITE-seq data ({settings['n_cells']:,} cells, {n_types} cell "
                  "types) in the GEO file's layout")
