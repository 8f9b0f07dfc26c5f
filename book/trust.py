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
# # Judging an alignment without true pairs
#
# A user of {py:func}`~propalign_lite.align.align` has two objects and no true pairs. This page answers three questions,
# each with measurements from this build:
#
# 1. **What can I look at?** `Alignment.diagnostics()`, `Alignment.calibration()`, carried
#    labels (`transfer_labels`, `transition_table`), and saving the result (`save` /
#    `align.load`).
# 2. **Which of those signals can I believe?** On data where the truth is known (the real
#    cells of the {doc}`Real cells <realcells>` page and the simulator), we check how well each
#    label-free diagnostic predicts the true quality of a matching.
# 3. **Which ε should I use?** `align(reg="auto")` chooses the entropic regularisation
#    without true pairs; we compare its choice with the best value in hindsight on every data
#    set of this book.
# 4. **What if a group is not the same in both objects?** We compare balanced and unbalanced
#    OT (`reg_m`) when one object lacks a cell state.
#
# The page ends with the settings we recommend, drawn from these measurements.

# %% tags=["parameters"]
profile = "ci"      # "ci" (CPU, minutes) or "paper" (10 seeds, larger sweeps)

# %% tags=["hide-input"]
import os
import tempfile
import time
import warnings

chapter_start = time.perf_counter()

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

with warnings.catch_warnings():     # the runner imports tqdm.auto, which warns without ipywidgets
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from propalign_lite import align
from propalign_lite.diagnostics import reliability_curve
from propalign_book.experiments import realcells as rc
from propalign_book.experiments import settings_for
from propalign_book.experiments import realcells_tables as rt
from propalign_book.experiments import trust
from propalign_book.experiments.trust_reg import autoreg_table
from propalign_book.paper import TABLE1
from propalign_book.profiles import get_profile
from propalign_book.report import profile_banner, records_note
from propalign_book.runner import run_units

torch.set_num_threads(1)
sns.set_theme(style="whitegrid", palette="colorblind")
settings = get_profile("trust", profile)
cells = {d: settings_for("realcells.transfer", profile, dataset=d) for d in ("bmmc", "mop")}
display(Markdown(profile_banner(settings, data=(
    "the real paired cells of the Real cells page (BMMC CITE-seq, MOp SNARE-seq) and "
    "simulated CITE-seq cells"))))

# %% [markdown]
# ## 1. What an alignment tells you about itself
#
# We align 3,000 of the MOp nuclei as a user with coarse labels would. Matching is within the 15
# coarse types (`cell_type_coarse`). Then we carry the *fine* annotation (23 types) of the
# accessibility object onto the RNA nuclei through the coupling. The nuclei are paired, so
# the RNA side's own fine labels tell us whether the carried labels are right. A user would
# not have that check.

# %%
rna, atac = rc.paired_cells(cells["mop"])
pick = np.sort(np.random.default_rng(0).choice(rna.n_obs, 3000, replace=False))
rna, atac = rna[pick].copy(), atac[pick].copy()      # 3,000 nuclei keep the page quick
with warnings.catch_warnings(record=True) as caught:   # reported below, not on stderr
    warnings.simplefilter("always")
    aln = align(rna, atac, groupby="cell_type_coarse", use_rep1="X_pca", use_rep2="X_lsi",
                classifier=cells["mop"]["classifier"], random_state=0)
    table = aln.diagnostics()
for w in sorted({f"{w.category.__name__}: {w.message}" for w in caught}):
    print(w)
table.round(3)

# %% [markdown]
# Per coarse group, the table gives:
#
# - the median **effective number of partners** of an RNA nucleus, $\exp$ of its row's
#   entropy (1 means one-to-one);
# - the **cycle consistency**: how much mass returns to a nucleus after a trip to the other
#   modality and back, as a multiple of chance;
# - the share of each object's mass the plan left **unmatched** (0 for balanced OT).
#
# `calibration()` shows each classifier's accuracy, expected calibration error (ECE) and
# fitted temperature {cite:p}`guo2017calibration`. These are measured on the nuclei the classifier held out for early
# stopping.

# %%
cal = aln.calibration()
display(cal.round(3))
# %% mystnb={"figure": {"caption": "Reliability of the RNA and accessibility classifiers on held-out MOp nuclei: accuracy against predicted probability of the top class; the dotted diagonal is perfect calibration.", "name": "fig-trust-reliability"}, "image": {"alt": "Line chart of accuracy against predicted probability for two classifiers, with a dotted diagonal for perfect calibration."}}
fig, ax = plt.subplots(figsize=(4.6, 4))
for name, clf, logits, val, t in zip(aln.names, (aln.classifier1_, aln.classifier2_),
                                     (aln.logits1_, aln.logits2_),
                                     (aln.validation1_, aln.validation2_), aln.labels_):
    c, a, n = reliability_curve(logits[val], t[val], clf.classes_, n_bins=10)
    ax.plot(c, a, "o-", label=f"{'RNA' if name == 'adata1' else 'accessibility'} classifier")
ax.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated")
ax.set_xlabel("predicted probability of the top class")
ax.set_ylabel("accuracy on held-out nuclei")
ax.legend(fontsize=8)
ax.set_title("Reliability of the two classifiers (MOp)")
plt.show()

# %%
probs = aln.transfer_labels("cell_type", source="adata2")
carried = rna.obs["cell_type_transferred"].astype(str)
own = rna.obs["cell_type"].astype(str)
acc = float((carried == own).mean())
share = rna.obs["cell_type_coarse"].astype(str).map(
    own.groupby(rna.obs["cell_type_coarse"].astype(str)).agg(lambda s: s.value_counts(normalize=True).iloc[0]))
display(Markdown(
    f"The carried fine label agrees with the RNA nucleus's own label for **{acc:.1%}** of "
    f"the nuclei. A rule that knows only the coarse group, and always answers its most "
    f"common fine type, would score {share.mean():.1%}."
    + (" The coupling carries fine-type information that the coarse labels do not."
       if acc > share.mean() + 0.02 else
       " The coupling adds little beyond the coarse labels here.")))
# %% mystnb={"figure": {"caption": "Transition table: for RNA nuclei of each fine type (rows), the share of their coupling mass on accessibility nuclei of each fine type (columns).", "name": "fig-trust-transitions"}, "image": {"alt": "A heat map with fine cell types on both axes; most mass lies on the diagonal blocks."}}
tab = aln.transition_table("cell_type", "cell_type")
fig, ax = plt.subplots(figsize=(8, 6.5))
sns.heatmap(tab, cmap="viridis", ax=ax, cbar_kws={"label": "share of the row's coupling mass"})
ax.set_xlabel("fine type of the accessibility partners")
ax.set_ylabel("fine type of the RNA nucleus")
ax.set_title("Transition table: where each fine type's mass goes")
plt.show()

# %% [markdown]
# The result can be stored apart from the objects. `Alignment.save` writes the couplings,
# the logits, the labels and the settings to one `.npz` file, with a checksum of each
# object's cell names. `align.load` refuses objects whose cells have changed.

# %%
path = os.path.join(tempfile.mkdtemp(), "mop_alignment.npz")
aln.save(path)
again = align.load(path, rna, atac)
print(f"saved {os.path.getsize(path) / 1e6:.1f} MB; reloaded: {again!r}")
try:
    align.load(path, rna[::-1].copy(), atac)
except ValueError as err:
    print("reordered cells are refused:", str(err).split(":")[0])

# %% [markdown]
# ## 2. Which diagnostics can you believe?
#
# On five data sets with known pairs (BMMC, 2,000 MOp nuclei, 2,000 simulated cells, and the
# digits and synthetic images of section 3), each run aligns the data twice, with two
# classifier seeds, at two values of $\varepsilon$. For
# every matched group we record the label-free diagnostics and the truth: the trace as a
# multiple of chance and the partner rank. The table gives Spearman's rank correlation
# between each diagnostic and each truth, over all groups of all runs at one $\varepsilon$.
# A useful diagnostic has a large positive correlation with the trace and a large negative
# one with the rank (a lower rank is better).

# %%
diag = run_units("trust.diagnostics", settings, settings["diag_seeds"], progress=False)
display(Markdown(records_note(diag)))
ar = run_units("trust.autoreg", settings, settings["autoreg_seeds"], progress=False)
groups = pd.DataFrame([g for r in diag for g in r["groups"]]
                      + [dict(g, dataset=name) for r in ar for name, d in r["datasets"].items()
                         for g in d.get("groups", [])])
display(groups.groupby(["dataset", "reg"]).size().unstack().rename_axis(
    columns="groups per ε"))
names = {"effective_share": "effective partners / group size", "cycle": "cycle consistency",
         "agreement": "agreement of two seeds' couplings"}
corr = {}
for reg, sub in groups.groupby("reg"):
    for k, label in names.items():
        corr[(f"ε = {reg:g}", label)] = {
            "vs trace × chance": sub[k].corr(sub["trace_x"], method="spearman"),
            "vs partner rank": sub[k].corr(sub["rank"], method="spearman")}
corr = pd.DataFrame(corr).T
display(corr.round(2))
# pooled over data sets, a correlation also ranks the data sets; within each one it does not
within = pd.DataFrame({
    (f"ε = {reg:g}", label): sub.groupby("dataset").apply(
        lambda d, k=k: d[k].corr(d["trace_x"], method="spearman"), include_groups=False)
    for reg, sub in groups.groupby("reg") for k, label in names.items()})
display(Markdown("Within each data set (Spearman's ρ with the true trace × chance, over its "
                 "groups):"))
display(within.round(2))
runs = pd.DataFrame([x for r in diag for x in r["runs"]])
display(runs.groupby("dataset")[["ece_rna", "ece_mod2", "temperature_mod2"]].median().round(3))

# %% mystnb={"figure": {"caption": "Label-free diagnostics against the truth, one dot per matched group: cycle consistency (left, log axis) and two-seed agreement (right) against the true trace as a multiple of chance, by data set and $\\varepsilon$.", "name": "fig-trust-diagnostics"}, "image": {"alt": "Two scatter plots of the true trace over chance against cycle consistency and against seed agreement, coloured by data set and shaped by regularisation."}}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, (k, label) in zip(axes, (("cycle", "cycle consistency (× chance)"),
                                  ("agreement", "agreement of two seeds"))):
    sns.scatterplot(data=groups, x=k, y="trace_x", hue="dataset", style="reg", ax=ax, s=25)
    ax.set_xscale("log" if k == "cycle" else "linear")
    ax.set_xlabel(label)
    ax.set_ylabel("true trace × chance")
fig.tight_layout()
plt.show()

# %%
best = corr["vs trace × chance"].groupby(level=1).mean().idxmax()
rank_max = corr["vs partner rank"].abs().max()
agree = corr["vs trace × chance"].xs(names["agreement"], level=1)
display(Markdown(
    f"**Reading it.** The diagnostic that best tracks the true trace is **{best}** (mean "
    f"rank correlation {corr['vs trace × chance'].groupby(level=1).mean().max():.2f} over the "
    "two ε). Part of that is group size: a large group has both a low chance level and, at a "
    "fixed ε, sharper rows. "
    + (f"The agreement of two classifier seeds correlates *negatively* with the true trace "
       f"({agree.min():.2f} to {agree.max():.2f}): small groups agree more by chance, and they "
       "are the groups whose trace is lowest as a multiple of chance. So seed agreement, "
       "taken alone, is not a quality score. "
       if agree.max() < 0 else
       f"The agreement of two classifier seeds correlates {agree.min():.2f} to "
       f"{agree.max():.2f} with the true trace. ")
    + (f"None of the diagnostics predicts the partner rank well (largest |ρ| {rank_max:.2f}). "
       if rank_max < 0.4 else
       f"The partner rank is predicted less well (largest |ρ| {rank_max:.2f}, pooled over "
       "data sets). ")
    + "Within a single data set, which is how a user reads it (the groups of one alignment), "
    "the cycle consistency's ρ with the trace is "
    + "; ".join(f"{lvl}: {col.min():.2f} to {col.max():.2f}"
                for lvl, col in within.xs(names["cycle"], axis=1, level=1).items())
    + " over the data sets (table above), so it is a weaker guide inside one data set than "
    "the pooled number suggests, and "
    + ("not a guide at all at some ε. " if within.xs(names["cycle"], axis=1, level=1).min().min() < 0
       else "a consistent one. ")
    + "A coupling can be sharp, "
    "stable and cycle-consistent while it ranks partners little better than chance. These "
    "diagnostics describe the coupling. They do not certify that individual pairs are "
    "right."))

# %% [markdown]
# ## 3. Choosing ε without true pairs
#
# The paper {cite:p}`xi2024propensity` matches at ε = 0.05 everywhere. Its classifiers' logits are noisy estimates of
# the true propensity scores, and a small ε follows that noise as faithfully as the signal; a
# large ε forgets both and gives every cell its group's mean (the uniform coupling). Which
# trade-off is best depends on how good the classifiers are, so we let the data choose.
#
# **The criterion** ({py:func}`propalign_lite.regselect.select_reg`). `align(reg="auto")`
# trains a *second* pair of classifiers with other seeds and other validation cells, the
# check pair, with logits $f^{(1)}, f^{(2)}$ (each row centred). The coupling $M(\varepsilon)$
# is made from the first pair, as always. It predicts each RNA cell's check scores from its
# partners' check scores, and ε is chosen to minimise the error
#
# $$\mathrm{CV}(\varepsilon) = \frac{1}{n_1}\sum_g\sum_{i\in g}
#   \Big\lVert f^{(1)}_i - \sum_j M_{ij}(\varepsilon)\, f^{(2)}_j\Big\rVert^2 .$$
#
# Why this works: the check pair's errors are independent of the first pair's, so following
# the first pair's noise gains nothing, while averaging over many partners pays for matching
# cells whose true scores differ. This is the bias-variance trade-off of transferring a
# modality, played out in the propensity space, where both objects are observed. Why not
# cheaper options: the first pair's own logits cannot judge ε, since they always prefer the
# sharpest coupling (it matches their noise too); a rule on the cost scale cannot know how
# noisy the classifiers are. The price is a second round of classifier training.
#
# **The test.** On five data sets with known pairs we compute the criterion and the truth at
# every ε of the grid, from the same couplings. The truth is the latent MSE for the synthetic
# images (Table 1's measure; the baselines chapter's 32 px scenes, 6,000 test scenes) and the
# Pearson r of the other modality's features carried onto the first, median over features,
# for the digits (pix → kar), simulated cells, BMMC and 2,000 MOp nuclei. The *oracle* ε is
# the best one in hindsight. The cells go through `align(reg="auto")` itself; for the images
# and digits the check pair differs from the first in its seeds only, since those chapters
# use fixed training and validation splits.

# %%
display(Markdown(records_note(ar)))
art = autoreg_table(ar)
summary = art.groupby("data set", sort=False).agg(
    measure=("measure", "first"),
    chosen=("chosen reg", lambda v: ", ".join(f"{x:g}" for x in v)),
    oracle=("oracle reg", lambda v: ", ".join(f"{x:g}" for x in v)),
    **{"at ε = 0.05": ("at 0.05", "median"), "at chosen ε": ("at chosen", "median"),
       "at oracle ε": ("at oracle", "median"), "uniform coupling": ("uniform", "median")})
summary.columns = ["measure", "chosen ε (per seed)", "oracle ε (per seed)", "at ε = 0.05",
                   "at chosen ε", "at oracle ε", "uniform coupling"]
display(summary.round(3))

# %% mystnb={"figure": {"caption": "Choosing $\\varepsilon$ without pairs: the criterion relative to the uniform coupling's (blue, left axis) and the truth (orange, right axis) against $\\varepsilon$ for each data set, first seed; the solid line is the chosen $\\varepsilon$, the dotted one the paper's 0.05.", "name": "fig-trust-autoreg"}, "image": {"alt": "A row of line charts, one per data set, of the selection criterion and the true quality against the regularisation on a log axis, with vertical lines at the chosen value and at 0.05."}}
names_ar = list(ar[0]["datasets"])
fig, axes = plt.subplots(1, len(names_ar), figsize=(3.1 * len(names_ar), 3.2), sharey=False)
for ax, name in zip(np.atleast_1d(axes), names_ar):
    d = ar[0]["datasets"][name]
    key = "mse" if name == "images" else "r"
    ax.plot(d["regs"], np.divide(d["cv"], d["cv_uniform"]), "o-", color="C0",
            label="criterion / uniform")
    ax.set_xscale("log")
    ax.set_title(name)
    ax.set_xlabel("ε")
    ax2 = ax.twinx()
    ax2.plot(d["regs"], d["truth"][key], "s--", color="C1",
             label="latent MSE (truth)" if key == "mse" else "transfer r (truth)")
    ax2.axhline(d["truth_uniform"][key], color="C1", lw=0.8, ls=":")
    ax.axvline(d["chosen"], color="C0", lw=1)
    ax.axvline(0.05, color="grey", lw=1, ls=":")
    ax2.grid(False)
    if name == names_ar[0]:
        ax.set_ylabel("criterion / uniform coupling's")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center")
fig.suptitle(f"Seed {ar[0]['seed']}: the criterion (blue, chosen ε = solid line) and the truth "
             "(orange; dotted = uniform coupling; grey = 0.05)", fontsize=9)
fig.tight_layout()
plt.show()

# %%
larger = {"mse": False, "r": True}
better = [(r["at chosen"] >= r["at 0.05"]) if larger[r["measure"]] else
          (r["at chosen"] <= r["at 0.05"]) for _, r in art.iterrows()]
beats_uniform = [(r["at chosen"] >= r["uniform"]) if larger[r["measure"]] else
                 (r["at chosen"] <= r["uniform"]) for _, r in art.iterrows()]
gap = np.array([abs(r["at oracle"] - r["at chosen"]) / max(abs(r["at oracle"]), 1e-12)
                for _, r in art.iterrows()])
img = art[art["data set"] == "images"]
display(Markdown(
    f"**Reading it.** Over {len(art)} runs ({len(names_ar)} data sets × {len(ar)} seeds), the "
    f"chosen ε is at least as good as the paper's 0.05 in **{sum(better)}** and at least as "
    f"good as the uniform coupling in **{sum(beats_uniform)}**; its truth is within "
    f"{np.median(gap):.1%} of the oracle's in the median run (worst {gap.max():.1%}). "
    + (f"The chosen ε is larger than 0.05 in all {len(art)} runs: the classifiers are noisy "
       "enough that averaging over partners pays."
       if (art["chosen reg"] > 0.05).all() else
       f"The chosen ε is larger than 0.05 in {int((art['chosen reg'] > 0.05).sum())} of "
       f"{len(art)} runs.")
    + (f" On the synthetic images, PS+OT at 0.05 has a latent MSE of "
       f"{img['at 0.05'].median():.4f}, above the uniform coupling's "
       f"{img['uniform'].median():.4f}: the sharp coupling is worse than knowing nothing "
       f"within the group. At the chosen ε it is {img['at chosen'].median():.4f}. The paper "
       f"reports {TABLE1['PS+OT']['MSE'][0]:.4f} for PS+OT at 0.05 with classifiers trained "
       "100 epochs on 128 px scenes, which are more accurate than ours; see the table below."
       if len(img) else "")))

# %% [markdown]
# As an extra row of Table 1 (this page's 32 px scenes, median over seeds; the paper's rows
# are at 128 px and ε = 0.05):

# %%
if len(img):
    t1x = pd.DataFrame({
        "latent MSE": [img["at 0.05"].median(), img["at chosen"].median(),
                       img["at oracle"].median(), img["uniform"].median()],
        "paper's MSE": [TABLE1["PS+OT"]["MSE"][0], np.nan, np.nan, np.nan]},
        index=["PS+OT, ε = 0.05 (the paper's)", 'PS+OT, ε = "auto"', "PS+OT, oracle ε",
               "uniform coupling (group mean)"])
    display(t1x.round(4))

# %% [markdown]
# ## 4. Balanced or unbalanced OT when a cell state is missing
#
# Balanced OT makes every cell send its whole share of mass. Suppose one object lacks a cell
# state that the other has. The cells of that state then still send their mass, necessarily
# to wrong partners. Unbalanced OT (`align(..., reg_m=τ)`) relaxes the marginals, so such
# cells may keep their mass. It can only do this if the propensity scores place them apart.
#
# The test uses simulated cells, all measured in both modalities. The labels are coarse: the
# type closest to the largest type (by RNA centroid) carries the largest type's label, like a
# subtype that a coarse annotation does not name. The protein object then loses that subtype,
# one whole small type, and a random half of the cells of a third type (the *halved* type). The
# RNA cells of the hidden subtype are **orphans**: nothing like them is left. Half of the
# halved type's RNA cells have lost their own partner, but cells in the same state remain.

# %%
ub = run_units("trust.unbalanced", settings, settings["seeds"], progress=False)
display(Markdown(records_note(ub)))
r0 = ub[0]
display(Markdown(
    f"Hidden subtype **{r0['hidden_type']}** inside **{r0['host_type']}** "
    f"({r0['n_orphans']} orphan RNA cells of {r0['n_host_rna']} in the label). The dropped "
    f"type **{r0['drop_type']}** is reported by `align` and left out: "
    + "; ".join(f"{k}: {v}" for k, v in r0["unmatched"].items()) + "."))
ubt = trust.label_table(ub, "host", "orphans", "partnered cells")
display(ubt.round(3))
removed, present = "cells whose partner was removed", "cells whose partner is present"
half = trust.label_table(ub, "halved", removed, present)
hub = half.drop("balanced")


def span(col, digits=2):
    """'lo to hi' of a column over the unbalanced runs."""
    return f"{col.min():.{digits}f} to {col.max():.{digits}f}"


display(Markdown(f"The halved type **{r0['halved_type']}**: {r0['n_halved'][0]} RNA cells, "
                 f"{r0['n_halved'][1]} protein cells left."))
display(half.round(3))

# %%
auc = ubt["orphans flagged (AUC)"].drop("balanced")
trace_col = "trace × chance (partnered cells)"
gain = ubt[trace_col].drop("balanced") - ubt.loc["balanced", trace_col]
display(Markdown(
    f"Over {len(ub)} seeds, the mass a cell keeps flags the orphans with an AUC between "
    f"{auc.min():.2f} and {auc.max():.2f} (0.5 = not at all), and the partnered cells' "
    f"trace changes by {gain.min():+.2f} to {gain.max():+.2f} × chance. "
    + ("**Unbalanced OT finds the missing state here.** The hidden subtype's cells have "
       "logits unlike the rest of their label: the classifiers see that they resemble another "
       "type. So the plan has no cheap partner for them, and the relaxed marginal lets them "
       "keep less mass. The kept mass (`.obs['propalign_mass']`) is then a usable flag. The "
       "price is mass taken from the partnered cells too: the smaller `reg_m`, the more. "
       if auc.min() > 0.7 else
       "**Unbalanced OT does not reliably find the missing state here.** "
       "The classifiers learned the coarse labels, so the hidden subtype's cells get logits "
       "like the rest of their label, and little in the propensity space tells the plan that "
       "their partners are gone. ")
    + f"For the halved type, the cells whose own partner was removed keep "
    f"{span(hub[f'mass kept by {removed}'])} of their mass, like the others (AUC "
    f"{span(hub[f'{removed} flagged (AUC)'])}): cells in their state remain, so nothing is "
    "missing and nothing should be flagged. Balanced OT already handles a group whose sizes "
    "differ, since the marginals are uniform *within* the group; its transfer r is "
    f"{half.loc['balanced', f'transfer r ({present})']:.3f} for the cells with a partner and "
    f"{half.loc['balanced', f'transfer r ({removed})']:.3f} for those without, against "
    f"{span(hub[f'transfer r ({present})'], 3)} and {span(hub[f'transfer r ({removed})'], 3)} "
    "under unbalanced OT. "
    + "This only works as far as the propensity scores separate the missing state. A subtype "
      "that the classifiers cannot tell from its label's other cells keeps its mass like "
      "everyone else. A state known to be missing is best caught by the *labels*: annotate "
      "it, and `align` reports it as a group present in one object only."))

# %% [markdown]
# ## 5. Recommended settings, from this book's measurements

# %%
tr = {d: run_units("realcells.transfer", s, get_profile("realcells", profile)["seeds"],
                   progress=False) for d, s in cells.items()}
tmed = {d: rt.medians(rt.transfer_values(tr[d])) for d in tr}
regs = [k for k in tmed["bmmc"] if k.startswith("PS+OT (reg")]
smooth = regs[0] if regs else None
trace_by_reg = groups.groupby("reg")["trace_x"].median()
rec = [
    ("`reg` for pseudo-pairs / matching", "0.05 (the paper's)",
     "median true trace per group (section 2): " + ", ".join(
         f"{v:.2f} × chance at ε = {k:g}" for k, v in trace_by_reg.items())),
    ("`reg` for transferring a modality", '`reg="auto"` (or ' + (smooth.split("reg ")[1].rstrip(")") if smooth else "0.5") + ")",
     "section 3: chosen ε " + "; ".join(f"{k} {v}" for k, v in summary["chosen ε (per seed)"].items())
     + f"; at least as good as 0.05 in {sum(better)} of {len(art)} runs"
     + (f". Real cells page: overall r of the transfer, BMMC {tmed['bmmc']['PS+OT']['overall']:.3f} → "
        f"{tmed['bmmc'][smooth]['overall']:.3f}, MOp {tmed['mop']['PS+OT']['overall']:.3f} → "
        f"{tmed['mop'][smooth]['overall']:.3f} at ε = {smooth.split('reg ')[1].rstrip(')')}"
        if smooth else "")),
    ("`reg_m`", "None (balanced); 1-3 to flag cells without partners",
     f"above, reg_m = 1-3 flagged a missing subtype at AUC {auc.min():.2f}-{auc.max():.2f} "
     f"while keeping the partnered cells' trace within "
     f"{abs(gain.iloc[-1]):.2f} × chance of balanced OT at reg_m = {settings['reg_ms'][-1]:g}; "
     "reg_m = 0.3 removes almost all mass"),
    ("classifier", "`align`'s default MLP",
     f"check `calibration()`: accuracy and ECE on held-out cells (MOp: ECE "
     f"{cal['ECE'].max():.3f} at most)"),
    ("small groups", "`small_groups='skip'` (default)",
     "groups below `min_group_size` are reported in `unmatched_`, or merged with a mapping"),
    ("before trusting pairs", "cycle consistency and calibration",
     f"cycle consistency tracks the true trace (ρ up to {corr['vs trace × chance'].max():.2f} "
     f"above); no label-free diagnostic predicted the partner rank (|ρ| ≤ {rank_max:.2f})"),
]
display(pd.DataFrame(rec, columns=["setting", "recommended", "measured evidence"]
                     ).set_index("setting"))
print(f"chapter time: {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
