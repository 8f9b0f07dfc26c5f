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
# # Using propalign on your own data
#
# Say you have RNA for one set of cells and surface proteins for *other* cells of the same
# tissue, and both sets are annotated with cell types. No cell was measured twice, so nothing
# pairs the two objects. What you want from alignment is concrete:
#
# - **for every RNA cell, an estimate of the proteins it would have shown**, and
# - **pseudo-pairs** (an RNA cell and a protein cell that could be its partner) to train
#   cross-modal models downstream.
#
# {py:func}`propalign_lite.align <propalign_lite.align.align>` does this for `AnnData` (or `MuData`) objects, with scanpy's
# conventions {cite:p}`wolf2018scanpy`. It trains one propensity classifier per object to predict the cell type,
# writes their logits to `.obsm`, and matches cells within each type by optimal transport on
# those logits. It returns an {py:class}`~propalign_lite.Alignment`, which can transfer features from one object onto
# the cells of the other.
#
# This page runs the whole workflow on simulated CITE-seq data. CITE-seq measures both
# modalities in the same cell, so we can hide one modality, impute it, and score the estimate
# against the hidden measurement. The code cells are meant to be copied; only the cells that
# score and plot the result need the hidden truth.

# %% tags=["parameters"]
profile = "ci"       # "ci" or "paper"

# %% tags=["hide-input"]
import time
import warnings

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsRegressor

from propalign_book.profiles import get_profile
from propalign_book.report import profile_banner

with warnings.catch_warnings():   # muon's import warns (scanpy.__version__, no ipywidgets)
    warnings.simplefilter("ignore")
    import muon as mu
torch.set_num_threads(1)          # small MLPs: one thread is fastest on a shared CPU

settings = get_profile("own_data", profile)
chapter_start = time.perf_counter()
display(Markdown(profile_banner(settings, data=(
    f"simulated CITE-seq data ({settings['n_cells']:,} cells, {settings['n_cell_types']} "
    "cell types) in the GEO file's layout"))))

# %% [markdown]
# ## 1. Two objects, different cells
#
# `simulate_cite_seq` writes one AnnData in the layout of the real GEO file: gene and
# protein features side by side (`var["feature_types"]` is `"GEX"` or `"ADT"`), raw counts in
# `layers["counts"]` and the cell type in `obs["cell_type"]`. We give half of the cells to an
# RNA-only object and the other half to a protein-only object. The protein of the RNA cells is
# set aside as `hidden`: a real experiment would not have it, and we use it only for scoring.

# %%
import numpy as np
import scanpy as sc

from propalign_lite import align
from propalign_lite.datasets import simulate_cite_seq

adata = simulate_cite_seq(settings["n_cells"], n_cell_types=settings["n_cell_types"],
                          n_genes=settings["n_genes"], n_proteins=settings["n_proteins"],
                          batches=settings["batches"], random_state=settings["data_seed"])
in_rna = np.random.default_rng(0).random(adata.n_obs) < 0.5
is_gex = (adata.var["feature_types"] == "GEX").to_numpy()

rna = adata[in_rna, is_gex].copy()         # RNA of cells A
prot = adata[~in_rna, ~is_gex].copy()      # protein of cells B
hidden = adata[in_rna, ~is_gex].copy()     # protein of cells A: for scoring only
rna, prot

# %% [markdown]
# ## 2. The usual preprocessing
#
# RNA: library-size normalisation, log, scaling (clipped at 10) and PCA, as in any scanpy
# workflow. Protein: the centred log-ratio (CLR) within each cell, as in muon (`axis=1`
# normalises each cell across its antibodies).

# %%
rna.X = rna.layers["counts"].toarray()
sc.pp.normalize_total(rna, target_sum=1e4)
sc.pp.log1p(rna)
sc.pp.scale(rna, max_value=10)
sc.tl.pca(rna, n_comps=settings["n_pcs"])

for p in (prot, hidden):
    p.X = p.layers["counts"].copy()
    mu.prot.pp.clr(p, axis=1)

# %% [markdown]
# ## 3. Align
#
# `use_rep1="X_pca"` trains the RNA classifier on the principal components (`use_rep`
# follows scanpy: `None` is `.X`). The protein classifier sees the CLR values in `.X`. Each
# classifier keeps a stratified 20 % of its own cells for validation and keeps the epoch
# with the lowest validation loss. `classifier=` sets the MLP's size and training; the
# defaults are smaller than those of {cite:t}`xi2024propensity` so that they run on a laptop.

# %%
aln = align(rna, prot, groupby="cell_type", use_rep1="X_pca",
            classifier=dict(width=settings["width"], epochs=settings["epochs"],
                            lr=settings["lr"]),
            reg=settings["reg"], random_state=settings["seed"])
aln

# %% [markdown]
# The logits are now in `rna.obsm["propalign_logits"]` and `prot.obsm["propalign_logits"]`,
# and the settings in `.uns["propalign"]`. `aln.to_df()` lists every cell type with its cells in
# each object and whether it was matched. A type that appears in one object only is left out
# with a warning, and its cells get no estimate (NaN).

# %%
aln.to_df().head()

# %% [markdown]
# ## 4. Transfer protein onto the RNA cells
#
# For RNA cell $i$ of type $g$, the estimate is the coupling-weighted average of the protein
# cells of the same type, $\hat y_i = \sum_j M^{(g)}_{ij} y_j$ (the barycentric projection).
# It is written to `rna.obsm["protein"]` as a table with the protein names as columns.

# %%
imputed = aln.transfer("adata2", key_added="protein")
imputed.iloc[:3, :6]

# %% [markdown]
# The reverse direction works the same way. For example,
# `aln.transfer("adata1", obsm="X_pca")` puts RNA principal components on every protein
# cell. For downstream training, `sample_pairs` draws pseudo-pairs: for RNA cell $i$, a
# protein partner $j$ drawn from row $i$ of its type's coupling.

# %%
pairs = aln.sample_pairs(5, random_state=0)
pairs

# %% [markdown]
# ## 5. How good is the imputed protein?
#
# We score each protein by the Pearson correlation, across the RNA cells, between its imputed
# and its hidden measured values. We then take the median over the proteins. The same
# classifiers (`classifier=(aln.classifier1_, aln.classifier2_)`, so nothing is retrained)
# give several references:
#
# - **random partner within type** (`method="random"`): each RNA cell copies the protein of
#   a random protein cell of its type. This is the floor for pseudo-pairs.
# - **type mean** (`method="uniform"`): every cell gets its type's average protein. It uses
#   only the labels, with no information from within a type.
# - **PS+OT** at the paper's $\lambda$ and at a larger, smoother $\lambda$.
# - **paired-data reference**: what you could do *with* true pairs. A k-nearest-neighbour
#   regression from RNA PCs to protein, fitted on the hidden pairs of the other folds
#   (5-fold cross-fitting). propalign never has these pairs.
#
# Most of the variation of a protein across cells is between cell types, and the type
# labels alone capture it. The second column removes it: both imputed and measured values are
# centred within each type before the correlation is computed. What remains is what matching
# adds beyond the labels.

# %%
measured = hidden.to_df()
cell_type = rna.obs["cell_type"].to_numpy()
same = dict(groupby="cell_type", use_rep1="X_pca", random_state=settings["seed"],
            classifier=(aln.classifier1_, aln.classifier2_))
# reg="auto" trains a second classifier pair to choose λ without the pairs (trust page)
auto = align(rna, prot, groupby="cell_type", use_rep1="X_pca", reg="auto", key_added="auto",
             classifier=dict(width=settings["width"], epochs=settings["epochs"],
                             lr=settings["lr"]), random_state=settings["seed"])
estimates = {
    "random partner within type": align(rna, prot, method="random", key_added="rand", **same
                                        ).transfer("adata2"),
    "type mean": align(rna, prot, method="uniform", key_added="mean", **same).transfer("adata2"),
    f"PS+OT (λ={settings['reg']})": imputed,
    f"PS+OT (λ={settings['smooth_reg']})": align(rna, prot, reg=settings["smooth_reg"],
                                                key_added="smooth", **same).transfer("adata2"),
    'PS+OT (λ="auto")': auto.transfer("adata2"),
    "paired-data reference (kNN)": pd.DataFrame(
        cross_val_predict(KNeighborsRegressor(settings["knn_k"]), rna.obsm["X_pca"],
                          measured.to_numpy(), cv=5), index=measured.index,
        columns=measured.columns),
}


def centred(df):
    return df - df.groupby(cell_type).transform("mean")


corr = {name: est.corrwith(measured) for name, est in estimates.items()}
corr_within = {name: centred(est).corrwith(centred(measured))
               for name, est in estimates.items()}
table = pd.DataFrame({"median r over proteins": {k: v.median() for k, v in corr.items()},
                      "median r within type": {k: v.median() for k, v in corr_within.items()}})
table.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Pearson $r$ between imputed and measured protein, one value per protein, for each estimate; left across all RNA cells, right within cell type (type means removed).", "name": "fig-own-data-protein-r"}, "image": {"alt": "Two horizontal box plots, one box per estimate, of the per-protein correlation between imputed and measured protein, across all cells on the left and within cell type on the right."}}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
names = list(estimates)
for ax, values, title in ((axes[0], corr, "across all RNA cells"),
                          (axes[1], corr_within, "within cell type (type means removed)")):
    ax.boxplot([values[n].dropna() for n in names], orientation="horizontal", showfliers=False)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("Pearson r per protein (imputed vs measured)")
axes[0].set_yticks(range(1, len(names) + 1), names)
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
r = table["median r over proteins"]
rw = table["median r within type"]
ot, smooth = f"PS+OT (λ={settings['reg']})", f"PS+OT (λ={settings['smooth_reg']})"
ref = "paired-data reference (kNN)"
lines = [
    f"Median per-protein correlation: PS+OT {r[ot]:.3f} at the paper's λ and {r[smooth]:.3f} "
    f"at λ={settings['smooth_reg']}, against {r['random partner within type']:.3f} for a "
    f"random partner of the same type, {r['type mean']:.3f} for the type mean and "
    f"{r[ref]:.3f} for the paired-data reference."]
if r[ot] < r["type mean"]:
    lines.append(
        f"At the paper's λ, PS+OT's estimate is **worse than the plain type mean** "
        f"({r[ot]:.3f} < {r['type mean']:.3f}). With λ={settings['reg']} the coupling is almost "
        "one-to-one, so each estimate is close to a single partner's protein, measurement noise "
        "included. The partners are better chosen than at random, but a single noisy partner "
        "loses to an average over the whole type.")
else:
    lines.append(f"At the paper's λ, PS+OT beats the type mean ({r[ot]:.3f} vs "
                 f"{r['type mean']:.3f}).")
lines.append(
    f"Within cell types, PS+OT reaches a median correlation of {rw[ot]:.3f} (λ={settings['reg']}) "
    f"and {rw[smooth]:.3f} (λ={settings['smooth_reg']}). The type mean is 0 here by "
    f"construction, and the paired-data reference reaches {rw[ref]:.3f}. "
    + ("So matching on propensity scores does recover part of the within-type variation, "
       "roughly "
       f"{rw[smooth] / rw[ref]:.0%} of what paired data give at the smoother λ."
       if rw[smooth] > 0.02 else
       "So matching recovers little within-type variation on these data."))
auto_name = 'PS+OT (λ="auto")'
lines.append(
    f'`align(reg="auto")`, which never sees the pairs, chose λ = {auto.reg_selection_.reg:g} '
    f"(its criterion at every λ is in `auto.reg_selection_.table`): median r "
    f"{r[auto_name]:.3f} over proteins and {rw[auto_name]:.3f} within type.")
lines.append(
    "For imputation, a larger λ (an average over several good partners) is the better "
    "choice. For pseudo-pairs, where a sampled partner is what you use, the paper's small λ "
    "keeps the pairs sharp.")
display(Markdown("\n\n".join(lines)))

# %% [markdown]
# ## 6. On a UMAP
#
# The RNA cells on their usual UMAP, coloured by three proteins (the most variable ones):
# the hidden measurement (top), PS+OT at the paper's λ (middle) and at the smoother λ
# (bottom). Each protein keeps one colour scale in all three rows.

# %%
sc.pp.neighbors(rna, use_rep="X_pca", random_state=0)
sc.tl.umap(rna, random_state=0)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The three most variable proteins on the RNA cells' UMAP: measured (top row) and imputed by PS+OT at two regularisations (rows below).", "name": "fig-own-data-umap"}, "image": {"alt": "A three-by-three grid of UMAP plots of RNA cells coloured by protein level: measured values in the top row and imputed values at two regularisation strengths below."}}
show = measured.var().sort_values(ascending=False).index[:3]
rows = {"measured": measured, f"PS+OT λ={settings['reg']}": estimates[ot],
        f"PS+OT λ={settings['smooth_reg']}": estimates[smooth]}
keys, vmin, vmax = [], [], []
for label, values in rows.items():
    for p in show:
        key = f"{p}: {label}"
        rna.obs[key] = values[p].to_numpy()
        keys.append(key)
        vmin.append(np.percentile(measured[p], 1))
        vmax.append(np.percentile(measured[p], 99))
sc.pl.umap(rna, color=keys, ncols=3, vmin=vmin, vmax=vmax, frameon=False, show=False,
           cmap="viridis")
plt.show()
rna.obs = rna.obs.drop(columns=keys)

# %% tags=["hide-input"]
display(Markdown(f"This page ran in {time.perf_counter() - chapter_start:.0f} s."))

# %% [markdown]
# ## What to copy
#
# ```python
# from propalign_lite import align
# aln = align(rna, prot, groupby="cell_type", use_rep1="X_pca")  # two AnnData, different cells
# protein = aln.transfer("adata2", key_added="protein")           # -> rna.obsm["protein"]
# pairs = aln.sample_pairs(10_000, random_state=0)                 # pseudo-pairs (obs names)
# ```
#
# With a `MuData`, pass it alone: `align(mdata, groupby="cell_type",
# modalities=("rna", "prot"))`, and use the modality names as `source`. Things to check on
# your own data:
#
# - `groupby` must be a label both objects share: cell types annotated the same way, a
#   perturbation, or a sample. Types that appear in one object only are reported and left out.
#   Types with fewer than `min_group_size` cells in either object (real data always have
#   some) are skipped with a warning and listed in `aln.unmatched_`. Pass
#   `small_groups={"rare type": "parent type"}` to merge them into a parent label instead, or
#   `small_groups="raise"` to stop.
# - The classifiers must actually predict the labels from each modality. Look at
#   `aln.classifier1_.history_["val_accuracy"]`. If one modality cannot tell two types apart,
#   their cells are matched on noise.
# - For imputation, try a larger `reg` than the paper's 0.05, or let `reg="auto"` choose it
#   (see above and {doc}`Judging an alignment <trust>`).
# - Without true pairs, {doc}`Judging an alignment <trust>` shows what to look at
#   (`aln.diagnostics()`, `aln.calibration()`, two classifier seeds, unbalanced OT with
#   `reg_m`), how far each signal can be trusted, and how to save an alignment
#   (`aln.save`, `align.load`).
#
# ## Exercises
#
# :::{exercise}
# :label: own-data-reg
# Reuse the trained classifiers (`classifier=(aln.classifier1_, aln.classifier2_)`) and plot
# the median per-protein correlation (overall and within type) against `reg` from 0.01 to 10.
# Where does it peak, and what does it tend to as `reg` grows?
# :::
#
# :::{solution} own-data-reg
# :class: dropdown
# ```python
# regs = [0.01, 0.05, 0.2, 0.5, 1, 2, 5, 10]
# res = {}
# for reg in regs:
#     est = align(rna, prot, reg=reg, key_added="sweep", **same).transfer("adata2")
#     res[reg] = (est.corrwith(measured).median(),
#                 centred(est).corrwith(centred(measured)).median())
# pd.DataFrame(res, index=["overall", "within type"]).T.plot(logx=True, marker="o")
# ```
# A small `reg` gives a nearly one-to-one coupling, so each estimate is one noisy partner. As
# `reg` grows the coupling spreads over the type, and the estimate tends to the type mean: the
# overall correlation tends to the type-mean value and the within-type correlation to 0. The
# best imputation lies in between, where each cell averages over several partners that are
# still close in propensity space.
# :::
#
# :::{exercise}
# :label: own-data-missing-type
# Remove one cell type from the protein object (`prot[prot.obs["cell_type"] != t]`) and align
# again. What does `align` report, what do `aln.to_df()` and the transferred protein show for
# the RNA cells of that type, and why can no method do better for them?
# :::
#
# :::{solution} own-data-missing-type
# :class: dropdown
# ```python
# t = rna.obs["cell_type"].value_counts().index[-1]
# fewer = prot[prot.obs["cell_type"] != t].copy()
# aln2 = align(rna, fewer, groupby="cell_type", use_rep1="X_pca")   # UserWarning names t
# aln2.to_df().loc[t]                         # matched: False, n_adata2: 0, "only in adata1"
# aln2.transfer("adata2")[rna.obs["cell_type"] == t].isna().all().all()   # True
# ```
# Matching happens only within a type. With no protein cell of type `t`, nothing measured
# can stand in for those RNA cells, so they get NaN rather than a silent guess borrowed from
# another type. The classifiers are trained on the shared types only, so `t` is not one of
# their classes either.
# :::

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
