"""The random draws of the CITE-seq simulator (:func:`~propalign_lite.datasets.citeseq.simulate_cite_seq`):
cell composition, RNA counts and ADT counts.

Private. Each function consumes its generator in the order the simulator always did, so a
seed gives the same data set as before these parts were split out.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._layout import _ABUNDANCE, _ADT_QC_WINDOW, ISOTYPE_NAMES
from ._sim_parts import _dense_counts_to_csr, _largest_remainder, _sigmoid

#: cells per block of RNA counts (each block draws from its own spawned stream)
BLOCK = 2048


def composition(rng, types, n_batches: int, n_cells: int):
    """Cell type and batch of every cell, ordered by batch (random order inside a batch):
    type abundances as in bone marrow (``_ABUNDANCE``, rare types floored), uneven batch
    sizes and donor-specific mixes."""
    n_types = len(types)
    weights = np.array([_ABUNDANCE.get(t, np.median(list(_ABUNDANCE.values())))
                        for t in types])
    p_type = weights / weights.sum()
    floor = min(0.01, 0.2 / n_types)          # keep rare types present
    p_type = (1 - floor * n_types) * p_type + floor
    type_counts = _largest_remainder(n_cells, p_type, minimum=2)
    batch_size = np.exp(rng.normal(0.0, 0.2, n_batches))           # uneven batch sizes
    donor_mix = np.exp(rng.normal(0.0, 0.3, (n_types, n_batches)))  # donors differ
    cell_type_idx, batch_idx = [], []
    for k in range(n_types):
        w = batch_size * donor_mix[k]
        per_batch = rng.multinomial(type_counts[k], w / w.sum())
        cell_type_idx.append(np.full(type_counts[k], k))
        batch_idx.append(np.repeat(np.arange(n_batches), per_batch))
    cell_type_idx = np.concatenate(cell_type_idx)
    batch_idx = np.concatenate(batch_idx)
    # order cells by batch, random order inside a batch (like the released file)
    order = np.lexsort((rng.random(cell_type_idx.size), batch_idx))
    cell_type_idx, batch_idx = cell_type_idx[order], batch_idx[order]
    return cell_type_idx, batch_idx


def rna_counts_in_blocks(rng, z, W, gene_base, rna_batch, batch_idx, programs, library,
                         theta):
    """Negative-binomial RNA counts (CSR, float32), :data:`BLOCK` cells at a time from streams
    spawned off ``rng``; returns them with one more spawned stream, for the ADT counts.

    Per cell, the gene means are ``library * softmax(z W + gene_base + batch + programs)``
    and the counts Poisson-Gamma with shape ``theta``."""
    n = len(z)
    starts = list(range(0, n, BLOCK))
    block_rngs = rng.spawn(len(starts) + 1)
    adt_rng = block_rngs.pop()
    rna_blocks = []
    for start, block_rng in zip(starts, block_rngs):
        stop = min(start + BLOCK, n)
        logits = z[start:stop] @ W
        logits += gene_base
        logits += rna_batch[batch_idx[start:stop]]
        programs.add_to(logits, slice(start, stop))
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits *= (library[start:stop] / logits.sum(axis=1))[:, None]   # NB means
        logits /= theta                                # Gamma scale = mean / shape
        rate = block_rng.gamma(theta, logits)          # Poisson-Gamma = NB
        del logits
        rna_blocks.append(_dense_counts_to_csr(block_rng.poisson(rate)))
        del rate
    rna_counts = sp.vstack(rna_blocks, format="csr", dtype=np.float32)
    del rna_blocks
    return rna_counts, adt_rng


def adt_and_isotype_counts(adt_rng, activity, batch_idx, n_batches: int, ambient,
                           adt_batch_sd: float, median_adt_counts: float,
                           median_isotype_counts: float):
    """ADT counts (negative binomial; on/off per cell and protein from ``activity = z V``,
    ambient background, batch and technical factors, the released file's QC window) and
    isotype-control counts (Poisson, driven by the ambient and technical factors)."""
    n, P = activity.shape
    c_on = adt_rng.normal(-0.5, 1.0, P)
    on = adt_rng.random((n, P)) < _sigmoid(c_on + activity)
    fg_level = adt_rng.normal(np.log(8.0), 0.6, P)
    background = np.exp(adt_rng.normal(0.0, 0.7, P))
    background /= background.mean()
    tech = np.exp(0.35 * np.clip(adt_rng.standard_normal(n), -2.0, 2.0))
    adt_batch = np.exp(adt_rng.normal(0.0, adt_batch_sd, (n_batches, P))
                       + adt_rng.normal(0.0, 0.2, n_batches)[:, None])
    unscaled = (tech[:, None] * adt_batch[batch_idx] * background
                * (ambient[:, None] + on * np.exp(fg_level + 0.5 * activity)))
    kappa = median_adt_counts / np.median(unscaled.sum(axis=1))
    # The released cells passed an ADT QC window (totals ~1,100-24,000): mimic that
    # selection by pulling each cell's technical factor so its *expected* total lies
    # safely inside the window (counts are still drawn with their full noise).
    expected_total = kappa * unscaled.sum(axis=1)
    lo, hi = _ADT_QC_WINDOW
    qc_pull = np.clip(expected_total, 1.2 * lo, 0.8 * hi) / expected_total
    unscaled *= qc_pull[:, None]
    tech = tech * qc_pull
    phi = np.exp(adt_rng.normal(np.log(10.0), 0.3, P))
    adt_mean = kappa * unscaled
    adt_counts = adt_rng.negative_binomial(phi, phi / (phi + adt_mean)).astype(np.float32)
    iso_share = adt_rng.dirichlet(np.full(len(ISOTYPE_NAMES), 5.0))
    iso_drive = tech * ambient * adt_batch[batch_idx].mean(axis=1)
    iso_mean = (median_isotype_counts / np.median(iso_drive)) * iso_drive[:, None] * iso_share
    iso_counts = adt_rng.poisson(iso_mean).astype(np.float32)
    return adt_counts, iso_counts
