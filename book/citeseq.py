# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # CITE-seq: matching RNA and protein within cell types
#
# CITE-seq measures RNA and a panel of surface proteins (antibody-derived tags, ADT) in the
# *same* cell, so the true pairing is known. The paper {cite:p}`xi2024propensity` uses the NeurIPS 2021 bone-marrow
# CITE-seq data {cite:p}`luecken2021sandbox` (GEO GSE194122: 90,261 cells, 13,953 genes, 134 proteins, 45 annotated cell
# types). It hides the pairing and asks whether propensity scores can recover it. These data
# have no perturbation, so the **cell type** plays the role of the treatment $t$. Each
# modality gets a classifier that predicts the cell type, and cells are matched within each
# type by the distance between the classifiers' logits.
#
# Two data sources share one loader and one preprocessing:
#
# - `data="geo"`: the real file, through {py:func}`propalign_lite.datasets.load_cite_seq`. It is
#   downloaded with its SHA-256 checked (`download=True`), or read from a path, from the
#   environment variable `PROPALIGN_CITESEQ_PATH`, or from the cache.
# - `data="simulated"` (default): {py:func}`~propalign_lite.datasets.simulate_cite_seq` writes an AnnData in exactly the GEO file's
#   layout. Both modalities are read off one latent cell state, with negative-binomial RNA,
#   background/foreground protein counts {cite:p}`gayoso2021totalvi`, isotype controls {cite:p}`mule2022dsb` and batch effects specific to each
#   modality. The machines that build this book cannot download the real file, so the `ci`
#   build uses the simulator. **The numbers below are therefore not the paper's data set**; the
#   page states which data it ran on.
#
# Preprocessing follows the official code: RNA = the GEX columns of `X`, scaled per gene
# (clipped at 10) and reduced to principal components fitted on all cells; protein = the ADT
# columns of `X` as stored (CLR-normalised); splits from `obs["is_train"]`
# (train → train, test → validation, iid_holdout → test).

# %% tags=["parameters"]
profile = "ci"       # "ci" or "paper"
data = None          # "simulated" or "geo" (None: as the profile says)
seeds = None         # override the seeds of the profile

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from propalign_lite import metrics
from propalign_book import paper, plots
from propalign_book.experiments import cite_data, cite_source, settings_for
from propalign_book.experiments.citeseq import citeseq_claims, scores_table
from propalign_book.profiles import get_profile
from propalign_book.recorded import recorded_for
from propalign_book.report import (add_recorded_columns, comparison_table, profile_banner,
                                   records_note)
from propalign_book.runner import run_units

settings = get_profile("citeseq", profile, data=data, seeds=seeds)
chapter_start = time.perf_counter()
cite = cite_data(settings)
display(Markdown(profile_banner(settings, data=cite_source(settings))))
print(cite)

# %% [markdown]
# ## The data
#
# Cells per split and the size of each cell type in the test split. Matching happens only
# inside a type, so the small types give small matching problems, which are easy for the
# trace metric (chance is $1/n$).

# %%
train, val, test = (cite.split_view(s) for s in ("train", "val", "test"))
sizes = pd.Series(test.cell_type).value_counts()
print(f"train {len(train):,} / validation {len(val):,} / test {len(test):,} cells; "
      f"{cite.adt.shape[1]} proteins, {cite.gex_pca.shape[1]} RNA PCs")
print(f"test cells per type: median {int(sizes.median())}, min {sizes.min()}, max {sizes.max()}")
# types with a single test cell cannot be matched (nothing to choose from); they are reported
too_small = sizes[sizes < 2]
if len(too_small):
    print("types left out of matching (fewer than 2 test cells):", dict(too_small))

# %% [markdown]
# ## Propensity classifiers
#
# One MLP per modality: five linear layers of constant width with batch normalisation, then
# a linear head over the cell types. It is trained with cross-entropy, Adam and a one-cycle
# schedule, and we keep the epoch with the best validation loss. The validation split is also
# where we monitor matching quality *during* training. In practice the ground truth is not
# available, so the paper proposes the validation cross-entropy as the model-selection signal.
# Here we check how well the two track each other.

# %% [markdown]
# Each seed is one experiment unit, `citeseq.seed` (`propalign_book.experiments.citeseq`): it
# trains both classifiers, matches the test cells within each type with PS+OT and PS+SNN and
# scores the couplings. The first seed also keeps the per-epoch validation monitor. The runner
# reads the units already in the results store and computes the others.

# %%
records = run_units("citeseq.seed", settings_for("citeseq.seed", settings), settings["seeds"],
                    progress=False)
display(Markdown(records_note(records)))
results = scores_table(records)
textbook = [r["textbook_foscttm"] for r in records]
kept = records[0]
for rec in records:
    print(f"seed {rec['_run']['seed']}: {rec['_run']['duration_s']:.0f} s; validation accuracy "
          f"ADT {rec['val_accuracy']['adt']:.2f}, RNA {rec['val_accuracy']['rna']:.2f}; "
          f"PS+OT FOSCTTM {rec['scores']['PS+OT']['FOSCTTM']:.3f}")

# %% [markdown]
# ## The two embeddings
#
# A 2-d PCA of each classifier's test-set logits, coloured by cell type. The two classifiers
# see completely different inputs (134 protein levels vs RNA principal components), yet their
# logits organise the cells in the same way: this shared space is what makes matching possible.

# %% mystnb={"figure": {"caption": "The first seed's propensity logits of the protein and RNA test cells, projected on their first two principal components and coloured by cell type.", "name": "fig-citeseq-embeddings"}, "image": {"alt": "Two scatter plots of test cells in two dimensions, protein logits left and RNA logits right, coloured by cell type; cells of one type cluster together in both."}}
fig = plots.plot_embeddings(kept["embedding_2d"], None, projected=True,
                            legend=len(sizes) <= 20)
plt.show()

# %% [markdown]
# ## Table 2
#
# For every cell type of the test split we compute the coupling between its protein and RNA
# cells, then average the metrics over types with equal weight. Each entry is the median
# (Q1, Q3) over seeds.
#
# - **FOSCTTM (paper)** is what the official code computes, and what the paper reports: for each
#   protein cell, draw one matched RNA cell from its row of the coupling. Place that cell in
#   the RNA classifier's logit space, then compute the textbook FOSCTTM between the true and the
#   drawn RNA embeddings (0 = perfect, 0.5 = chance).
# - **FOSCTTM (barycentric)** replaces the draw by the coupling-weighted average, as the
#   paper's formula writes it.
# - **Trace** is the mean mass on the true partner (chance: $1/n$ per type).

# %%
table = comparison_table(
    {k: {"FOSCTTM": v["FOSCTTM"], "Trace": v["Trace"]} for k, v in results.items()},
    paper.TABLE2, ["FOSCTTM", "Trace"], missing="in Baselines")
recorded, stale = recorded_for("citeseq.seed", settings_for("citeseq.seed", "paper"))
if recorded:
    table = add_recorded_columns(table, scores_table(recorded), ["FOSCTTM", "Trace"])
    display(Markdown("The *recorded* columns are a committed run of the `paper` profile. "
                     + records_note(recorded, stale=stale)))
elif stale:
    display(Markdown(records_note([], stale=stale)))
table["FOSCTTM barycentric (ours)"] = [
    metrics.format_summary(results[m]["FOSCTTM (barycentric)"]) if m in results else "in Baselines"
    for m in table.index]
display(table)
chance_trace = metrics.chance_trace(sizes[sizes >= 2])
print(f"chance level: FOSCTTM 0.5, trace {chance_trace:.4f} (mean of 1/n over types)")
print(f"textbook FOSCTTM of the PS embeddings themselves (no matching): "
      f"{metrics.format_summary(textbook)}")

# %%
claims = citeseq_claims(results, chance_trace)
for claim, holds in claims.items():
    print(("holds:  " if holds else "FAILS:  ") + claim)
assert all(claims.values()), "the paper's qualitative finding does not hold in this run"

# %% [markdown]
# {numref}`fig-citeseq-table2` draws Table 2. The FOSCTTM axis is comparable with the paper's
# (chance is 0.5 for both); the trace is not quite, since its chance level, the mean of $1/n$
# over types, depends on the type sizes of the test split, and the paper's come from the real
# file.

# %% mystnb={"figure": {"caption": "Table 2 drawn: FOSCTTM (left, the paper's sampled variant, lower is better) and trace (right) per method. Blue dots: this build's seeds; black: their median and Q1-Q3; vermilion: the paper's median and Q1-Q3. Dotted: chance (FOSCTTM 0.5; this build's trace chance). Methods other than PS are computed in the Baselines chapter.", "name": "fig-citeseq-table2"}, "image": {"alt": "Two dot plots with one row per method of Table 2: FOSCTTM on the left with a dotted chance line at one half, trace on the right with a dotted chance line; this build's seeds as dots with a black median bar, the paper's values as orange diamonds."}}
fig = plots.comparison_figure(
    {k: {"FOSCTTM": v["FOSCTTM"], "Trace": v["Trace"]} for k, v in results.items()},
    paper.TABLE2_DRAWN, ["FOSCTTM", "Trace"],
    labels={"FOSCTTM": "FOSCTTM (lower is better)", "Trace": "trace (higher is better)"},
    refs={"FOSCTTM": {"chance": 0.5}, "Trace": {"chance (this build)": chance_trace}})
plt.show()

# %% [markdown]
# ## Where the trace comes from: group size
#
# The trace is an unweighted mean over cell types, and its chance level is $1/n$. Small types
# therefore dominate it. {numref}`fig-citeseq-trace-size` shows each type's PS+OT trace against its number of
# test cells, with the chance line.

# %% mystnb={"figure": {"caption": "PS+OT trace of each cell type against its number of test cells (log-log); the dotted line is chance, $1/n$.", "name": "fig-citeseq-trace-size"}, "image": {"alt": "Log-log scatter plot of trace against test cells per cell type, one dot per type, with a dotted chance line falling as one over n."}}
per = kept["per_group"]["PS+OT"]
n = np.array([per["size"][g] for g in per["Trace"]])
tr = np.array(list(per["Trace"].values()))
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.scatter(n, tr, s=14, label="PS+OT, one dot per cell type")
grid = np.geomspace(n.min(), n.max(), 50)
ax.plot(grid, 1 / grid, "k:", label="chance, 1/n")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("test cells of the type")
ax.set_ylabel("trace")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
print(f"trace / chance: median {np.median(tr * n):.1f}x over types")

# %% [markdown]
# ## Validation loss as a model-selection monitor
#
# During training of the first seed's protein classifier, we matched the validation split at
# every epoch. The ground truth is hidden in practice, so the paper suggests picking the model by
# its validation cross-entropy instead. Does a lower validation loss mean better matching?
# {numref}`fig-citeseq-monitor` answers for this run.

# %% mystnb={"figure": {"caption": "Validation loss as a monitor. Left: validation FOSCTTM of PS+OT against the protein classifier's validation cross-entropy, one dot per epoch. Right: both against the epoch; the dotted line is the epoch kept.", "name": "fig-citeseq-monitor"}, "image": {"alt": "Left, a scatter of validation FOSCTTM against validation cross-entropy coloured by epoch; right, validation loss and FOSCTTM against epoch on two axes, with a dotted line at the kept epoch."}}
h = kept["monitor"]
fos, trc = h["FOSCTTM"], h["Trace"]
fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
sc = ax[0].scatter(h["val_loss"], fos, c=h["epoch"], cmap="viridis")
ax[0].set_xlabel("validation cross-entropy (protein classifier)")
ax[0].set_ylabel("validation FOSCTTM, PS+OT")
fig.colorbar(sc, ax=ax[0], label="epoch")
ax[1].plot(h["epoch"], h["val_loss"], label="validation loss")
ax2 = ax[1].twinx()
ax2.plot(h["epoch"], fos, "C1", label="FOSCTTM")
ax[1].axvline(h["best_epoch"], color="k", ls=":", lw=0.8)
ax[1].set_xlabel("epoch")
ax[1].set_ylabel("validation loss")
ax2.set_ylabel("FOSCTTM", color="C1")
fig.tight_layout()
plt.show()
from scipy.stats import spearmanr
rho = spearmanr(h["val_loss"], fos).statistic
print(f"Spearman correlation between validation loss and FOSCTTM over epochs: {rho:.2f}; "
      f"epoch kept by validation loss: {h['best_epoch']}, FOSCTTM there "
      f"{fos[h['best_epoch'] - 1]:.3f} (best epoch by FOSCTTM: "
      f"{int(np.argmin(fos)) + 1}, {min(fos):.3f})")
print(f"chapter executed in {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown]
# **Reading the results.** On the simulated data, propensity scores with OT recover the
# within-type structure. FOSCTTM is well below the chance level of 0.5, and OT beats SNN, as in
# the paper. The absolute values depend on how much within-type signal the simulator puts into
# the latent state (`within_sd`). They are therefore *not* comparable to the paper's numbers on
# the real data. Only the ordering of the methods and the gap to chance carry over. To run the
# chapter on the real file: `load_cite_seq(download=True)` once (about 0.6 GB), then
# `python -m propalign_book.book --only citeseq --profile paper`. The baselines (SCOT, scGLUE,
# VAE) are in the {doc}`baselines chapter <baselines>`.

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: citeseq-trace-weighting
#
# Table 2's trace is an unweighted mean over cell types. Take the per-type values of the first
# seed (`kept["per_group"]["PS+OT"]`, which has a `"size"` and a `"Trace"` entry, each keyed by
# cell type). Compute the trace weighted by the number of test cells of each type, and the chance
# level of each of the two averages. Show that, for a coupling that ignores the data, the
# cell-weighted chance level is $G/N$ ($G$ types, $N$ cells) and never exceeds the
# unweighted one. Which types dominate each average?
# :::
#
# :::{solution} citeseq-trace-weighting
# :class: dropdown
#
# ```python
# per = kept["per_group"]["PS+OT"]
# size = pd.Series(per["size"])
# tr = pd.Series(per["Trace"])
# print("unweighted   ", tr.mean(), "chance", metrics.chance_trace(size))
# print("cell-weighted", (tr * size).sum() / size.sum(), "chance", len(size) / size.sum())
# print((tr * size).sort_values().round(1))       # trace / chance, per type
# ```
#
# A type with $n_g$ cells has chance level $1/n_g$. Weighting it by $n_g / N$ gives
# $\sum_g (n_g/N)(1/n_g) = G/N$. The unweighted chance level is $\frac1G \sum_g 1/n_g$, the
# reciprocal of the harmonic mean of the sizes. The harmonic mean never exceeds the arithmetic
# mean $N/G$, so $\frac1G \sum_g 1/n_g \ge G/N$, with equality only when all types have the same
# size. A type with two test cells adds $1/2$ to the unweighted chance sum, as much as a type
# of a thousand cells that is matched perfectly. So the unweighted mean is dominated by the
# small types, the cell-weighted one by the large types. Each average must be compared with its
# own chance level. The per-type ratio $n_g \cdot \mathrm{trace}_g$ (trace over chance) is
# the quantity that is comparable across types.
# :::
#
# :::{exercise}
# :label: citeseq-foscttm-chance
#
# The page gives 0.5 as the chance level of FOSCTTM. Take one cell type with $n$ test cells and
# the uniform coupling $M_{ij} = 1/n$, which knows nothing about the pairing.
#
# 1. Show that the official, sampled FOSCTTM (`metrics.foscttm_coupling(M, x2)`, one partner
#    drawn per row) has expectation $\frac12 - \frac{1}{4n}$, whatever the points (as long
#    as no two distances are equal).
# 2. Show that the barycentric FOSCTTM (`how="barycentric"`) of the same coupling is exactly
#    $\frac14$ when the distances have no ties.
#
# Check both with random points. What do the two results mean for the chance level of the
# group-averaged score, and for the "FOSCTTM (barycentric)" column?
# :::
#
# :::{solution} citeseq-foscttm-chance
# :class: dropdown
#
# `foscttm_coupling` computes `foscttm(x2, x_hat)`. The first half counts, for each $i$, the
# $k \ne i$ with $d(x_i, \hat x_k) < d(x_i, \hat x_i)$. The second half counts the $k \ne i$ with
# $d(x_k, \hat x_i) < d(x_i, \hat x_i)$. Both use strict inequalities, so ties are not counted.
#
# 1. *Sampled.* $\hat x_i = x_{j_i}$ with $j_1, \dots, j_n$ drawn independently and uniformly.
#    First half: $j_k$ and $j_i$ are independent draws from the same distribution, so
#    $d(x_i, x_{j_k}) < d(x_i, x_{j_i})$ has probability $\frac12 (1 - P(j_k = j_i))
#    = \frac12(1 - \frac1n)$. When $j_k = j_i$ the two distances are equal and the strict
#    inequality fails. Second half: for a pair $\{i, k\}$ and every $j$, exactly one of
#    $d(x_k, x_j) < d(x_i, x_j)$ and $d(x_i, x_j) < d(x_k, x_j)$ holds. So over both orders
#    and a uniform $j$ the probability is exactly $\frac12$. The mean of the two halves is
#    $\frac12 - \frac1{4n}$. For a type of 2 cells that is $3/8$. Averaged over types, the
#    uniform coupling's expected score on this page is $\frac12 - \frac14 \cdot$
#    `chance_trace`: a little below 0.5, and further below when there are many small types.
#    (A random *permutation* has no repeated partners and scores closer to $\frac12$.)
# 2. *Barycentric.* Every row is the group mean: $\hat x_i = \bar x$ for all $i$. In the first
#    half, $d(x_i, \hat x_k) = d(x_i, \hat x_i)$ for every $k$, so the strict inequality never
#    holds and that half is 0. The second half counts the points closer to $\bar x$ than $x_i$.
#    Summed over $i$ that is $0 + 1 + \dots + (n-1) = n(n-1)/2$, which gives $\frac12$. The
#    total is $\frac14$. A coupling that spreads its mass evenly therefore scores *better*
#    than chance on the barycentric variant. Read that column against the PS+OT and PS+SNN
#    rows, not against 0.5.
#
# ```python
# from propalign_lite import match
#
# rng = np.random.default_rng(0)
# for n in (5, 50):
#     x2 = rng.normal(size=(n, 3))
#     U = match(x2, x2, method="uniform")
#     sampled = [metrics.foscttm_coupling(U, x2, random_state=r) for r in range(2000)]
#     print(n, np.mean(sampled), 0.5 - 1 / (4 * n),
#           metrics.foscttm_coupling(U, x2, how="barycentric"))    # the last value is 0.25
# ```
# :::

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
