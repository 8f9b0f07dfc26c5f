r"""CITE-seq bone-marrow data: the real GSE194122 file, an offline simulator, one preprocessing.

The paper's single-cell experiment pairs two measurements of the same bone-marrow cell:
RNA (gene expression, "GEX") and surface proteins read out by antibody-derived tags ("ADT").
The data are the NeurIPS 2021 multimodal-competition CITE-seq release on GEO (series
GSE194122): 90,261 cells, 13,953 genes and 134 proteins, 45 annotated cell types.

This sub-package gives three ways to the *same* analysis-ready arrays:

* :func:`load_cite_seq` reads the real file (from a path you give, an environment variable,
  the cache, or -- only when you ask -- a checked download), validates its layout and
  preprocesses it;
* :func:`simulate_cite_seq` writes an :class:`anndata.AnnData` in exactly the layout of the
  real file from a small generative model with a *known* pairing and a tunable difficulty;
* :func:`preprocess_cite_seq` is the one preprocessing path both go through: RNA is scaled
  and reduced to principal components, proteins are taken as stored, the cell type is the
  "treatment" and the split comes from ``obs["is_train"]``.

Layout of the file (and of the simulator's output)
--------------------------------------------------
====================================  ===========================================================
``var["feature_types"]``              ``"GEX"`` for the gene columns (first), ``"ADT"`` after them
``var["gene_id"]``                    Ensembl-style id for genes, the marker name for proteins
``layers["counts"]``                  raw counts (CSR, integer-valued float32)
``X``                                 GEX: counts / ``obs["GEX_size_factors"]`` (not logged);
                                      ADT: per-cell centred log-ratio (CLR) of the counts
``obs["cell_type"]``                  categorical, 45 BMMC labels in the real file
``obs["batch"]``                      ``s<site>d<donor>``, e.g. ``s1d1`` ... ``s4d9``
``obs["is_train"]``                   ``train`` / ``test`` (held-out site) / ``iid_holdout``
``obsm["ADT_isotype_controls"]``      6 isotype-control channels (normalised like the ADT)
====================================  ===========================================================

Splits follow the paper's code: ``train -> "train"``, ``test -> "val"``,
``iid_holdout -> "test"``. Reported test metrics are therefore on the i.i.d. hold-out cells,
while the held-out site serves for model selection.

Modules
-------
``geo``         the real file: layout checks, finding, downloading (pooch + SHA-256), reading
``simulator``   :func:`simulate_cite_seq` (helpers in ``_sim_parts``)
``preprocess``  :class:`CiteSeqData` and :func:`preprocess_cite_seq`
``load``        one-call loaders (:func:`load_cite_seq`, :func:`load_cite_seq_simulated`,
                :func:`load_cite_seq_for`)
``_layout``     names, sizes and vocabulary of the file, shared by the others
"""
from __future__ import annotations

from . import geo, preprocess, simulator
from ._layout import (BMMC_BATCHES, BMMC_CELL_TYPES, CITESEQ_FULL_SHAPE, CITESEQ_GZ_NAME,
                      CITESEQ_H5AD_NAME, CITESEQ_SHA256, CITESEQ_URL, ENV_CACHE_DIR,
                      ENV_CITESEQ_PATH, ISOTYPE_NAMES, SPLIT_FROM_IS_TRAIN, SPLIT_NAMES)
from .geo import (_read_validated, _retrieve, fetch_cite_seq, read_cite_seq,
                  validate_cite_seq_layout)
from .load import load_cite_seq, load_cite_seq_for, load_cite_seq_simulated
from .preprocess import CiteSeqData, preprocess_cite_seq
from .simulator import simulate_cite_seq

__all__ = [
    "BMMC_BATCHES",
    "BMMC_CELL_TYPES",
    "CITESEQ_SHA256",
    "CITESEQ_URL",
    "CiteSeqData",
    "fetch_cite_seq",
    "load_cite_seq",
    "load_cite_seq_simulated",
    "preprocess_cite_seq",
    "read_cite_seq",
    "simulate_cite_seq",
    "validate_cite_seq_layout",
]
