r"""Modality-specific variation of the CITE-seq simulator.

The paper's model gives every modality its own factors :math:`U^{(e)}` that vary from cell to
cell independently of the shared state and of the treatment (here: the cell type). A VAE that
reconstructs its input must spend capacity on them; a propensity classifier can ignore them.
This module draws that variation with the structure it has in real CITE-seq data:

RNA programs (added to the log-expression of their genes; named as in human annotations so the
usual scanpy recipes find them, e.g. ``var_names.str.startswith("MT-")``):

* **cell cycle** -- the S-phase (43 genes) and G2/M (54 genes) lists of Tirosh et al. (2016), as
  used by Seurat and ``scanpy.tl.score_genes_cell_cycle``. A cell cycles with a probability set
  by its type (progenitors, erythroid precursors, plasmablasts, cycling T progenitors: 0.4;
  normoblasts: 0.2; mature types: 0.03), then is in S or G2/M with equal odds with a score
  :math:`c \sim U(0.5, 1.5)`; its phase genes gain a log-fold of :math:`1.5\,c` (2-9 fold, the
  range of marker fold changes between cycling and resting cells).
* **mitochondrial load** -- the 13 mitochondrially encoded protein genes carry about 4 % of the
  UMIs of a median cell, with a per-cell log-fold :math:`\mathcal N(0, 0.5^2)` (per-cell
  ``pct_counts_mt`` spread over roughly 2-10 %, the range below the usual 10-20 % QC thresholds;
  Osorio & Cai 2021).
* **ribosomal load** -- 76 cytoplasmic ribosomal protein genes (RPL*/RPS*) carry about 20 % of
  the UMIs, with a per-cell log-fold :math:`\mathcal N(0, 0.3^2)`.
* **dissociation stress** -- 23 immediate-early / heat-shock genes of van den Brink et al. (2017)
  are induced in 20 % of cells, with a log-fold :math:`2\,h`, :math:`h \sim \operatorname{Exp}(1)`.

Donor effects are the simulator's per-batch gene offsets (``rna_batch_sd``).

Protein technical factors:

* **ambient background level per droplet** -- the background term of every antibody is scaled
  per cell by :math:`\exp(\mathcal N(0, 0.4^2))`, independently of the cell-wide staining factor;
  the isotype controls follow both (Mulè et al. 2022: isotype counts track the per-cell
  technical component). Per-antibody efficiency is the per-protein foreground level and the
  per-batch antibody factor already in the simulator (Buus et al. 2021 show staining and
  signal-to-noise vary widely between antibodies and titrations).

``strength`` multiplies every log-fold and standard deviation above (0 switches the per-cell
variation off, 1 is the default described here, 2 doubles it); it is the knob of the
ablation chapter's sweep. The magnitudes were set from the sources, not tuned to any result.

The number of genes of a program is proportional to ``n_genes`` (the real file has 13,953 GEX
columns), with at least two genes, so that a 2,000-gene simulation keeps the programs' share of
the genes; their baseline expression is raised so that the programs keep their share of UMIs.

References
----------
.. [1] Tirosh et al., "Dissecting the multicellular ecosystem of metastatic melanoma by
   single-cell RNA-seq", Science 352, 2016 (cell-cycle gene lists).
.. [2] van den Brink et al., "Single-cell sequencing reveals dissociation-induced gene
   expression in tissue subpopulations", Nature Methods 14, 2017.
.. [3] Osorio and Cai, "Systematic determination of the mitochondrial proportion in human and
   mice tissues for single-cell RNA-sequencing data quality control", Bioinformatics 37, 2021.
.. [4] Mulè, Martins and Tsang, "Normalizing and denoising protein expression data from
   droplet-based single cell profiling", Nature Communications 13, 2022.
.. [5] Buus et al., "Improving oligo-conjugated antibody signal in multimodal single-cell
   analysis", eLife 10, 2021.
.. [6] Luecken et al., "A sandbox for prediction and integration of DNA, RNA, and proteins in
   single cells", NeurIPS Datasets and Benchmarks 2021 (the BMMC data: nested site and donor
   batch effects; ``GEX_phase`` and ``GEX_pct_counts_mt`` in its obs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REAL_N_GENES = 13953

S_GENES = ("MCM5", "PCNA", "TYMS", "FEN1", "MCM2", "MCM4", "RRM1", "UNG", "GINS2", "MCM6",
           "CDCA7", "DTL", "PRIM1", "UHRF1", "MLF1IP", "HELLS", "RFC2", "RPA2", "NASP",
           "RAD51AP1", "GMNN", "WDR76", "SLBP", "CCNE2", "UBR7", "POLD3", "MSH2", "ATAD2",
           "RAD51", "RRM2", "CDC45", "CDC6", "EXO1", "TIPIN", "DSCC1", "BLM", "CASP8AP2",
           "USP1", "CLSPN", "POLA1", "CHAF1B", "BRIP1", "E2F8")
G2M_GENES = ("HMGB2", "CDK1", "NUSAP1", "UBE2C", "BIRC5", "TPX2", "TOP2A", "NDC80", "CKS2",
             "NUF2", "CKS1B", "MKI67", "TMPO", "CENPF", "TACC3", "FAM64A", "SMC4", "CCNB2",
             "CKAP2L", "CKAP2", "AURKB", "BUB1", "KIF11", "ANP32E", "TUBB4B", "GTSE1", "KIF20B",
             "HJURP", "CDCA3", "HN1", "CDC20", "TTK", "CDC25C", "KIF2C", "RANGAP1", "NCAPD2",
             "DLGAP5", "CDCA2", "CDCA8", "ECT2", "KIF23", "HMMR", "AURKA", "PSRC1", "ANLN",
             "LBR", "CKAP5", "CENPE", "CTCF", "NEK2", "G2E3", "GAS2L3", "CBX5", "CENPA")
MITO_GENES = ("MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3",
              "MT-ND4L", "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB")
RIBO_GENES = tuple(f"RPL{i}" for i in ("3", "4", "5", "6", "7", "7A", "8", "9", "10", "10A",
                                       "11", "12", "13", "13A", "14", "15", "17", "18", "18A",
                                       "19", "21", "22", "23", "23A", "24", "26", "27", "27A",
                                       "28", "29", "30", "31", "32", "34", "35", "35A", "36",
                                       "37", "37A", "38", "39", "41", "P0", "P1", "P2")) + \
    tuple(f"RPS{i}" for i in ("2", "3", "3A", "4X", "5", "6", "7", "8", "9", "10", "11", "12",
                              "13", "14", "15", "15A", "16", "17", "18", "19", "20", "21", "23",
                              "24", "25", "26", "27", "27A", "28", "29", "A"))
STRESS_GENES = ("FOS", "FOSB", "JUN", "JUNB", "JUND", "EGR1", "ATF3", "IER2", "IER3", "DUSP1",
                "HSPA1A", "HSPA1B", "HSPA8", "HSP90AA1", "DNAJB1", "NR4A1", "KLF2", "KLF4",
                "KLF6", "ZFP36", "PPP1R15A", "SOCS3", "CEBPD")

PROGRAM_GENES = {"S": S_GENES, "G2M": G2M_GENES, "mito": MITO_GENES, "ribo": RIBO_GENES,
                 "stress": STRESS_GENES}
#: share of a median cell's UMIs carried by a program's genes (None: baseline as drawn)
UMI_SHARE = {"mito": 0.04, "ribo": 0.20}
CYCLING_TYPES_HIGH = ("HSC", "G/M prog", "Lymph prog", "MK/E prog", "Proerythroblast",
                      "Erythroblast", "T prog cycling", "Plasmablast IGKC+", "Plasmablast IGKC-")
CYCLING_FRACTION = {"high": 0.4, "Normoblast": 0.2, "other": 0.03}
CYCLE_LOGFOLD, MITO_SD, RIBO_SD, STRESS_FRACTION, STRESS_LOGFOLD = 1.5, 0.5, 0.3, 0.2, 2.0
AMBIENT_SD = 0.4


def cycling_fraction(cell_type: str) -> float:
    """Probability that a cell of ``cell_type`` is in S or G2/M."""
    if cell_type in CYCLING_TYPES_HIGH:
        return CYCLING_FRACTION["high"]
    return CYCLING_FRACTION.get(cell_type, CYCLING_FRACTION["other"])


def choose_program_genes(rng, n_genes: int, exclude) -> dict[str, np.ndarray]:
    """Gene indices of every program: proportional to ``n_genes`` (at least 2), disjoint,
    avoiding the indices in ``exclude`` (genes linked to proteins). Empty when too few genes."""
    free = np.setdiff1d(np.arange(n_genes), np.asarray(exclude, dtype=int))
    sizes = {k: min(len(v), max(2, int(round(len(v) * n_genes / REAL_N_GENES))))
             for k, v in PROGRAM_GENES.items()}
    if sum(sizes.values()) > len(free) // 2:       # tiny simulations: no programs
        return {k: np.array([], dtype=int) for k in PROGRAM_GENES}
    picked = rng.choice(free, size=sum(sizes.values()), replace=False)
    out, start = {}, 0
    for k, size in sizes.items():
        out[k] = np.sort(picked[start:start + size])
        start += size
    return out


def set_program_baselines(gene_base: np.ndarray, genes: dict, state=None) -> None:
    r"""Set the baseline log-expression of the mito and ribo genes (in place) so that they
    carry :data:`UMI_SHARE` of the UMIs of the median cell.

    ``state`` (cells x genes) holds :math:`z_i^\top W_{\cdot g} + \gamma_{b_i g}` for a sample
    of typical cells (the cell-state part of each gene's log-expression); zeros when omitted.
    """
    state = np.zeros((1, gene_base.size)) if state is None else np.asarray(state)
    for k, share in list(UMI_SHARE.items()) * 2:        # twice: each program moves the other
        idx = genes[k]
        if idx.size == 0:
            continue
        log_expr = gene_base + state
        shift = log_expr.max(axis=1, keepdims=True)
        expr = np.exp(log_expr - shift)
        others = expr.sum(axis=1) - expr[:, idx].sum(axis=1)
        own = np.exp(state[:, idx] - shift).sum(axis=1)          # program genes at base 0
        # share_i = e^b own_i / (others_i + e^b own_i): the median cell gets ``share``
        gene_base[idx] = np.log(share / (1.0 - share) * np.median(others / own))


@dataclass
class RNAPrograms:
    """Per-cell draws of the RNA programs (strength already applied to the log-folds)."""

    genes: dict
    phase: np.ndarray          # "G1", "S" or "G2M"
    cycle_logfold: np.ndarray  # per cell, applied to the genes of its phase
    mito_logfold: np.ndarray
    ribo_logfold: np.ndarray
    stress_logfold: np.ndarray

    def add_to(self, logits: np.ndarray, rows: slice) -> None:
        """Add the programs of cells ``rows`` to their gene log-expression (in place)."""
        for key, lf in (("mito", self.mito_logfold), ("ribo", self.ribo_logfold),
                        ("stress", self.stress_logfold)):
            idx = self.genes[key]
            if idx.size:
                logits[:, idx] += lf[rows, None]
        for phase in ("S", "G2M"):
            idx = self.genes[phase]
            if idx.size:
                lf = np.where(self.phase[rows] == phase, self.cycle_logfold[rows], 0.0)
                logits[:, idx] += lf[:, None]


def draw_rna_programs(rng, genes: dict, cell_types: np.ndarray,
                      strength: float) -> RNAPrograms:
    """Draw every cell's phase and program log-folds (``cell_types``: one name per cell)."""
    n = len(cell_types)
    p_cycle = np.array([cycling_fraction(t) for t in cell_types])
    cycling = rng.random(n) < p_cycle
    phase = np.where(cycling, np.where(rng.random(n) < 0.5, "S", "G2M"), "G1").astype(object)
    cycle = CYCLE_LOGFOLD * rng.uniform(0.5, 1.5, n) * cycling
    mito = rng.normal(0.0, MITO_SD, n)
    ribo = rng.normal(0.0, RIBO_SD, n)
    stress = STRESS_LOGFOLD * rng.exponential(1.0, n) * (rng.random(n) < STRESS_FRACTION)
    return RNAPrograms(genes, phase, strength * cycle, strength * mito, strength * ribo,
                       strength * stress)


def draw_ambient(rng, n: int, strength: float) -> np.ndarray:
    """Per-droplet ambient background level of the ADT counts (log-normal, median 1)."""
    return np.exp(strength * AMBIENT_SD * rng.standard_normal(n))
