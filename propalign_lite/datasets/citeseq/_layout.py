"""Names, sizes and vocabulary of the GSE194122 CITE-seq file (shared by the GEO reader,
the simulator and preprocessing)."""
from __future__ import annotations

import re

# --------------------------------------------------------------------------------------
# Where the real data lives
# --------------------------------------------------------------------------------------
CITESEQ_GZ_NAME = "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad.gz"
CITESEQ_H5AD_NAME = CITESEQ_GZ_NAME[: -len(".gz")]
CITESEQ_URL = ("https://ftp.ncbi.nlm.nih.gov/geo/series/GSE194nnn/GSE194122/suppl/"
               + CITESEQ_GZ_NAME)
#: SHA-256 of the gzipped file, as published with the scvi-hub "neurips_cite" workflow.
CITESEQ_SHA256 = "sha256:b9b50fade9349719cba23c97c6515d3501a32ee3735fe95fe51221d2e8a5f361"
#: Shape of the real file: cells, GEX columns, ADT columns, cell types.
CITESEQ_FULL_SHAPE = {"n_cells": 90_261, "n_gex": 13_953, "n_adt": 134, "n_cell_types": 45}

ENV_CITESEQ_PATH = "PROPALIGN_CITESEQ_PATH"
ENV_CACHE_DIR = "PROPALIGN_CACHE_DIR"

#: ``obs["is_train"]`` value -> split name used throughout the package (the paper's mapping).
SPLIT_FROM_IS_TRAIN = {"train": "train", "test": "val", "iid_holdout": "test"}
SPLIT_NAMES = ("train", "val", "test")

# --------------------------------------------------------------------------------------
# Vocabulary of the real file, reused by the simulator
# --------------------------------------------------------------------------------------
# The 45 cell-type labels of the real file, with the lineage each belongs to and a rough,
# long-tailed abundance (cells per ~90k). The abundances are an approximation that keeps the
# shape of the real distribution (one dominant monocyte class, many rare types); they are
# not the file's exact counts.
_BMMC_TYPES_TABLE: tuple[tuple[str, str, int], ...] = (
    ("CD14+ Mono", "monocyte", 21693),
    ("CD4+ T activated", "cd4_t", 6000),
    ("CD4+ T naive", "cd4_t", 5500),
    ("NK", "nk_ilc", 4200),
    ("Erythroblast", "erythroid", 3500),
    ("CD8+ T naive", "cd8_t", 2500),
    ("Naive CD20+ B IGKC+", "b", 2000),
    ("CD16+ Mono", "monocyte", 2000),
    ("Reticulocyte", "erythroid", 2000),
    ("Naive CD20+ B IGKC-", "b", 1500),
    ("CD8+ T CD57+ CD45RO+", "cd8_t", 1500),
    ("Normoblast", "erythroid", 1500),
    ("CD8+ T CD57+ CD45RA+", "cd8_t", 1200),
    ("HSC", "progenitor", 1100),
    ("CD4+ T activated integrinB7+", "cd4_t", 1000),
    ("CD8+ T TIGIT+ CD45RO+", "cd8_t", 1000),
    ("cDC2", "dc", 1000),
    ("pDC", "dc", 1000),
    ("G/M prog", "progenitor", 1000),
    ("Proerythroblast", "erythroid", 1000),
    ("CD8+ T CD69+ CD45RO+", "cd8_t", 900),
    ("MAIT", "other_t", 900),
    ("B1 B IGKC+", "b", 900),
    ("T reg", "cd4_t", 800),
    ("Lymph prog", "progenitor", 800),
    ("CD8+ T TIGIT+ CD45RA+", "cd8_t", 700),
    ("gdT TCRVD2+", "other_t", 700),
    ("NK CD158e1+", "nk_ilc", 700),
    ("B1 B IGKC-", "b", 700),
    ("MK/E prog", "progenitor", 700),
    ("CD4+ T CD314+ CD45RA+", "cd4_t", 600),
    ("Transitional B", "b", 600),
    ("CD8+ T CD69+ CD45RA+", "cd8_t", 500),
    ("CD8+ T naive CD127+ CD26- CD101-", "cd8_t", 400),
    ("CD8+ T CD49f+", "cd8_t", 300),
    ("gdT CD158b+", "other_t", 300),
    ("dnT", "other_t", 200),
    ("ILC", "nk_ilc", 200),
    ("ILC1", "nk_ilc", 150),
    ("Plasma cell IGKC+", "b", 150),
    ("cDC1", "dc", 150),
    ("T prog cycling", "other_t", 100),
    ("Plasma cell IGKC-", "b", 100),
    ("Plasmablast IGKC+", "b", 80),
    ("Plasmablast IGKC-", "b", 60),
)
#: The 45 cell-type labels of the real file, sorted as its categories are.
BMMC_CELL_TYPES: tuple[str, ...] = tuple(sorted(name for name, _, _ in _BMMC_TYPES_TABLE))
_LINEAGE = {name: lineage for name, lineage, _ in _BMMC_TYPES_TABLE}
_ABUNDANCE = {name: float(count) for name, _, count in _BMMC_TYPES_TABLE}
# Presets for ``n_cell_types``: the first k names of this order are used. The 6- and
# 12-type presets cover the main lineages; larger k adds the remaining types by abundance.
_PRESET_6 = ("CD14+ Mono", "CD4+ T naive", "CD8+ T naive", "NK", "Naive CD20+ B IGKC+",
             "Erythroblast")
_PRESET_12 = _PRESET_6 + ("CD16+ Mono", "CD4+ T activated", "cDC2", "pDC", "HSC",
                          "Plasma cell IGKC+")
_TYPE_ORDER = _PRESET_12 + tuple(n for n, _, _ in _BMMC_TYPES_TABLE if n not in _PRESET_12)

#: The 12 site x donor batches of the real file.
BMMC_BATCHES: tuple[str, ...] = ("s1d1", "s1d2", "s1d3", "s2d1", "s2d4", "s2d5",
                                 "s3d1", "s3d6", "s3d7", "s4d1", "s4d8", "s4d9")
# Order used when ``batches`` is an int: interleaved so that 3 batches already span two
# sites (s1d1, s1d2 for training and s4d1 held out, like the competition's site 4).
_BATCH_ORDER = ("s1d1", "s1d2", "s4d1", "s2d1", "s3d1", "s1d3", "s4d8", "s2d4", "s3d6",
                "s4d9", "s2d5", "s3d7")
_BATCH_RE = re.compile(r"^s(\d+)d(\d+)$")

# Surface markers used to name simulated proteins (TotalSeq-style panel names).
_MARKER_NAMES: tuple[str, ...] = (
    "CD86", "CD274", "CD270", "CD155", "CD112", "CD47", "CD48", "CD40", "CD154", "CD52",
    "CD3", "CD8", "CD56", "CD19", "CD33", "CD11c", "HLA-A-B-C", "CD45RA", "CD123", "CD7",
    "CD105", "CD49f", "CD194", "CD4", "CD44", "CD14", "CD16", "CD25", "CD45RO", "CD279",
    "TIGIT", "CD20", "CD335", "CD31", "Podoplanin", "CD146", "IgM", "CD5", "CD195", "CD32",
    "CD196", "CD185", "CD103", "CD69", "CD62L", "CD161", "CD152", "CD223", "KLRG1", "CD27",
    "CD107a", "CD95", "CD134", "HLA-DR", "CD1c", "CD11b", "CD64", "CD141", "CD1d", "CD314",
    "CD35", "CD57", "CD272", "CD278", "CD58", "CD39", "CX3CR1", "CD24", "CD21", "CD11a",
    "CD79b", "CD244", "CD169", "integrinB7", "CD268", "CD42b", "CD54", "CD62P", "CD119",
    "TCR", "CD192", "CD122", "FceRIa", "CD41", "CD137", "CD163", "CD83", "CD124", "CD13",
    "CD2", "CD226", "CD29", "CD303", "CD49b", "CD81", "IgD", "CD18", "CD28", "CD38",
    "CD127", "CD45", "CD22", "CD71", "CD26", "CD115", "CD63", "CD304", "CD36", "CD172a",
    "CD72", "CD158", "CD93", "CD49a", "CD49d", "CD73", "CD9", "TCRVa7.2", "TCRVd2", "LOX-1",
    "CD158b", "CD158e1", "CD142", "CD319", "CD352", "CD94", "CD162", "CD85j", "CD23",
    "CD328", "HLA-E", "CD82", "CD101", "CD88", "CD224", "CD34", "CD117", "CD10", "CD15",
)
#: Names of the six isotype-control antibodies (background-only channels).
ISOTYPE_NAMES = ("Mouse-IgG1", "Mouse-IgG2a", "Mouse-IgG2b", "Rat-IgG1", "Rat-IgG2a",
                 "Rat-IgG2b")

_DUPLICATE_NAMES_MSG = r"Variable names are not unique"
# Per-cell ADT totals kept by the organisers' QC (cells outside were removed).
_ADT_QC_WINDOW = (1100.0, 24000.0)
