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
# # Ablations: what the matching quality depends on
#
# The method has few moving parts: the classifiers that estimate the propensity scores, the
# embedding handed to the matcher, and the matcher itself with its one or two settings. Then
# there are the data: how many perturbations, how many samples, and whether assumption A1
# holds. This chapter changes one of these at a time and measures what happens. It uses the
# tabular simulator of the {doc}`theory chapter <theory>`, where the true pairs and latents
# are known and a classifier trains in seconds.
#
# Every ablation starts from the same base setting, listed in the profile box below: a 4-d
# latent, 4-d modality noise, $T = 7$ perturbations (8 treatment groups), both views
# injective and A1 satisfied. The classifiers are small MLPs, one per view, and matching is
# entropic OT with regularisation 0.05 on raw logits (the paper's choice, {cite:alp}`xi2024propensity`) unless stated
# otherwise. The scores are the group-averaged **trace** (mass on the true partner, higher is
# better; chance is 1 / group size) and **latent MSE** (error of the matched latent $Mz$,
# lower is better; a random matching scores about 2). Each number is the median over the
# training seeds, and every seed is also shown as a dot.

# %% tags=["parameters"]
profile = "ci"      # "ci" (CPU, a few minutes) or "paper" (larger samples, longer training)

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

# (propensity_embedding and evaluate are also what the exercises below use)
from propalign_lite.embeddings import EMBEDDINGS, propensity_embedding  # noqa: F401
from propalign_book.experiments.ablations import (base_setting, evaluate,  # noqa: F401
                                                  section_frame)
from propalign_book.plots import sweep_plot
from propalign_book.profiles import get_profile
from propalign_book.report import Findings, profile_banner, records_note

S = get_profile("ablations", profile)
display(Markdown(profile_banner(
    S, data="tabular data simulated by `make_views` (two injective non-linear views of a "
    "Gaussian latent)")))
chapter_start = time.perf_counter()
finding = Findings()          # shown as made, summarised at the end


# %% [markdown]
# ## The base setting
#
# We draw one training, validation and test set from the base simulator and train one pair of
# classifiers per seed. Sections 2 to 4 reuse these classifiers, and only the matcher or the
# embedding changes. The validation cross-entropy of the exact scores is the lowest any
# classifier can reach.

# %%
# every section's work for one seed is one experiment unit (propalign_book.experiments.ablations)
B = base_setting(S)
train, val, test, records, base, random_mse = (B.train, B.val, B.test, B.records, B.base,
                                               B.random_mse)
display(Markdown(records_note(records)))
print(B.summary)

# %% [markdown]
# ## 1. The number of perturbations $T$
#
# Proposition 2 says that a score built from $T < d$ perturbations cannot be one-to-one in
# the $d$-dimensional latent. The {doc}`theory_matching` page showed this with exact scores
# plus synthetic noise. Here the scores come from trained classifiers. Each treatment group keeps the same
# number of units, so only $T$ changes.

# %% mystnb={"figure": {"caption": "Trace and latent MSE against the number of perturbations $T$: one dot per seed, the line joins the medians.", "name": "fig-ablations-T"}, "image": {"alt": "Two line charts against the number of perturbations T, trace on the left and latent MSE on the right, with one dot per seed and a line through the medians."}}
abl_T = section_frame(records, "T")
fig, med = sweep_plot(abl_T, "T", xlabel=f"perturbations T (latent dimension d = "
                      f"{S['latent_dim']})", title="Number of perturbations")
plt.show()

# %%
display(med.round(4).T)

# %%
lo, hi = med.index.min(), med.index.max()
finding("T", f"More perturbations give better matchings: the trace grows from "
        f"{med.loc[lo, 'Trace']:.3f} (T = {lo}) to {med.loc[hi, 'Trace']:.3f} (T = {hi}) and the "
        f"latent MSE falls from {med.loc[lo, 'MSE']:.3f} to {med.loc[hi, 'MSE']:.3f} "
        f"(latent dimension d = {S['latent_dim']}).")
assert med.loc[hi, "Trace"] > 2 * med.loc[lo, "Trace"] and med.loc[hi, "MSE"] < med.loc[lo, "MSE"]

# %% [markdown]
# ## 2. OT regularisation, and exact OT
#
# Entropic OT spreads each unit's mass over the units whose scores are nearly as close. The
# regularisation $\lambda$ sets how far, in units of the cost (here, distance between logits).
# Small $\lambda$ approaches exact OT, a one-to-one matching. Large $\lambda$ approaches the
# uniform coupling. The paper uses $\lambda = 0.05$.

# %% mystnb={"figure": {"caption": "Trace and latent MSE against the entropic regularisation $\\lambda$ (log axis); the dotted horizontal line is exact (unregularised) OT.", "name": "fig-ablations-reg"}, "image": {"alt": "Two line charts against the regularisation strength on a log axis, trace left and latent MSE right, with a dotted horizontal line for exact optimal transport."}}
abl_reg = section_frame(records, "reg")
exact_ot = pd.DataFrame([{"seed": r["_run"]["seed"], **r["exact_ot"]} for r in records])
fig, med = sweep_plot(abl_reg, "reg", xlabel="entropic regularisation $\\lambda$", logx=True,
                      title="OT regularisation (horizontal line: exact OT)")
for a, metric in zip(fig.axes, ("Trace", "MSE")):
    a.axhline(exact_ot[metric].median(), color="C2", ls=":", label="exact OT")
fig.axes[0].legend(fontsize=8)
plt.show()

# %%
table = med.copy()
table.loc["exact OT"] = exact_ot[["Trace", "MSE"]].median()
display(table.round(4).T)

# %%
best_trace, best_mse = med["Trace"].idxmax(), med["MSE"].idxmin()
finding("reg", f"Small regularisation maximises the trace (best {med['Trace'].max():.3f} at "
        f"lambda = {best_trace}; exact OT {exact_ot['Trace'].median():.3f}), while a moderate one "
        f"minimises the latent MSE (best {med['MSE'].min():.3f} at lambda = {best_mse}, against "
        f"{exact_ot['MSE'].median():.3f} for exact OT and {med.loc[max(S['regs']), 'MSE']:.3f} at "
        f"lambda = {max(S['regs'])}); the paper's 0.05 gives trace "
        f"{med.loc[0.05, 'Trace']:.3f} and MSE {med.loc[0.05, 'MSE']:.3f}.")
assert med["MSE"].min() < exact_ot["MSE"].median()
assert med.loc[max(S["regs"]), "Trace"] < med.loc[min(S["regs"]), "Trace"]

# %% [markdown]
# The two metrics ask different questions. Trace rewards committing to one partner, which
# pays off only when the scores are good enough to pick the right one. Latent MSE rewards
# averaging over plausible partners, which cancels part of the estimation error. So soft
# matchings win on MSE and near-hard ones on trace, and too much blur loses on both.
#
# ## 3. SNN: the number of neighbours $k$
#
# Shared nearest neighbours links unit $i$ of one modality to unit $j$ of the other when their
# $k$-neighbourhoods overlap (the paper's appendix). The paper uses $k = 1$, and noted that
# it worked best.

# %% mystnb={"figure": {"caption": "Shared nearest neighbours: trace and latent MSE against the number of neighbours $k$; the dotted line is entropic OT at $\\lambda = 0.05$.", "name": "fig-ablations-snn-k"}, "image": {"alt": "Two line charts against the number of SNN neighbours k on a log axis, trace left and latent MSE right, with a dotted line for entropic OT."}}
abl_k = section_frame(records, "snn")
fig, med = sweep_plot(abl_k, "k", xlabel="SNN neighbours k", logx=True,
                      title="SNN's k (dotted: entropic OT, reg 0.05)")
ot_ref = abl_reg[abl_reg.reg == 0.05][["Trace", "MSE"]].median()
for a, metric in zip(fig.axes, ("Trace", "MSE")):
    a.axhline(ot_ref[metric], color="C1", ls=":")
plt.show()

# %%
display(med.round(4).T)

# %%
best_k_mse = med["MSE"].idxmin()
finding("snn", f"SNN's trace is highest at k = 1 ({med.loc[1, 'Trace']:.3f}) and falls with k "
        f"({med.loc[max(S['snn_k']), 'Trace']:.3f} at k = {max(S['snn_k'])}); its latent MSE is "
        f"lowest at k = {best_k_mse} ({med['MSE'].min():.3f}); entropic OT beats every k on "
        f"both (trace {ot_ref['Trace']:.3f}, MSE {ot_ref['MSE']:.3f}).")
assert med["Trace"].idxmax() == 1
assert ot_ref["Trace"] > med["Trace"].max() and ot_ref["MSE"] < med["MSE"].min()

# %% [markdown]
# With one neighbour, SNN keeps only near-mutual nearest neighbours: sharp but brittle. Larger
# $k$ spreads the mass over a neighbourhood, like entropic OT. But SNN ignores the marginal
# constraints that stop OT from sending many units to the same few partners.
#
# ## 4. Which embedding to match on
#
# A classifier's logits are defined only up to a constant per unit (softmax ignores it). The
# paper matches on raw logits. The alternatives are probabilities, log-probabilities and
# centred logits ({py:mod}`propalign_lite.embeddings`). The last three are functions of the estimated
# score alone. Everything else stays fixed: entropic OT with $\lambda = 0.05$.

# %% mystnb={"figure": {"caption": "Trace and latent MSE of entropic OT on each embedding of the propensity scores (logits, probabilities and their transforms).", "name": "fig-ablations-embedding"}, "image": {"alt": "Two dot charts, one point per seed and embedding kind, trace left and latent MSE right."}}
abl_emb = section_frame(records, "embedding")
fig, med = sweep_plot(abl_emb, "embedding", xlabel="embedding given to OT",
                      title="Embedding (entropic OT, reg 0.05)")
plt.show()

# %%
display(med.round(4).T)
spread = {kind: np.median([r["spread"][kind] for r in records]) for kind in EMBEDDINGS}
print("typical coordinate difference between units (sets the scale that reg is compared "
      "with):", {k: round(float(v), 3) for k, v in spread.items()})

# %%
ranked = med.sort_values("Trace", ascending=False)
finding("embedding", "Ranked by trace (latent MSE in brackets): " + ", ".join(
    f"{kind} {row.Trace:.3f} ({row.MSE:.3f})" for kind, row in ranked.iterrows())
    + "; probabilities lose most, because their differences are small compared with reg = 0.05 "
    "and they saturate near 0 and 1.")
assert med.loc["proba", "Trace"] < med.loc["logits", "Trace"]

# %% [markdown]
# Two effects are mixed here. Probabilities live in $[0, 1]$, so the same $\lambda$ blurs them
# far more (see the printed scales, and {ref}`ablations-cost-scale`). They also compress everything near 0 and
# 1, where a classifier's confident scores all look alike. The raw logits' arbitrary per-unit
# constant does no visible harm in this setting. Centring removes it at no cost, which makes
# centred logits a safe default.
#
# ## 5. Classifier quality: validation cross-entropy as a model-selection monitor
#
# In real data the matching metrics cannot be computed, because there are no true pairs. The
# paper proposes the classifiers' validation cross-entropy as a proxy: a better estimate of
# $P(t \mid x)$ should give a better matching. We train each classifier with settings that
# overfit late (a smaller learning rate and more epochs, see `monitor_lr` and
# `monitor_epochs` in the profile box). A callback
# (`PropensityClassifier.fit(..., callback=...)`) stores the test logits after every epoch,
# and for every epoch we match the two views' logits of that epoch.

# %%
monitor = section_frame(records, "monitor")
rho = {m: monitor[["val CE", m]].corr(method="spearman").iloc[0, 1] for m in ("Trace", "MSE")}
print(f"Spearman correlation over all epochs and seeds: val CE vs trace {rho['Trace']:.2f}, "
      f"val CE vs latent MSE {rho['MSE']:.2f}")

# %% [markdown]
# The paper makes the same comparison for its VAE baseline (`propalign_lite.baselines.
# CrossModalVAE`): two autoencoders with a shared latent, a treatment classifier on the
# latent, and a modality classifier. Its model-selection monitor is its validation loss:
# reconstruction + KL + treatment and modality cross-entropies. The VAE has no per-epoch
# callback. We therefore train it with several training lengths, keep each run's best
# validation epoch as it does by default, and match on the latent means within groups.

# %%
vae_runs = section_frame(records, "vae")[["seed", "epochs", "val loss", "val treatment CE",
                                          "Trace", "MSE"]]
print(f"{len(vae_runs)} VAE runs")
display(vae_runs.round(4))
rho_vae = {m: vae_runs[["val loss", m]].corr(method="spearman").iloc[0, 1]
           for m in ("Trace", "MSE")}
print(f"VAE, Spearman correlation over runs: val loss vs trace {rho_vae['Trace']:.2f}, "
      f"vs latent MSE {rho_vae['MSE']:.2f}")

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Model selection without pairs. Top: each epoch of each seed's propensity classifiers, trace and MSE against the mean validation cross-entropy. Bottom: the VAE baseline's runs against its validation loss.", "name": "fig-ablations-monitor"}, "image": {"alt": "Four scatter plots: top row, trace and latent MSE of the propensity classifiers against validation cross-entropy, coloured by epoch; bottom row, the same for VAE runs against VAE validation loss, coloured by training length."}}
fig, ax = plt.subplots(2, 2, figsize=(10, 6.6))
for a, metric in zip(ax[0], ("Trace", "MSE")):
    sc = a.scatter(monitor["val CE"], monitor[metric], c=monitor["epoch"], cmap="viridis", s=14)
    a.set(xlabel="mean validation cross-entropy of the two classifiers", ylabel=metric,
          title=f"propensity classifiers: {metric} per epoch and seed")
fig.colorbar(sc, ax=ax[0, 1], label="epoch")
for a, metric in zip(ax[1], ("Trace", "MSE")):
    sc = a.scatter(vae_runs["val loss"], vae_runs[metric], c=np.log2(vae_runs["epochs"]),
                   cmap="plasma", marker="^", s=40)
    a.set(xlabel="VAE validation loss (best epoch of the run)", ylabel=metric,
          title=f"VAE: {metric} per run")
cb = fig.colorbar(sc, ax=ax[1, 1], label="training epochs")
cb.set_ticks(np.log2(S["vae_epochs"]), labels=[str(e) for e in S["vae_epochs"]])
for a in ax.ravel():
    a.title.set_fontsize(9)
fig.tight_layout()
plt.show()

# %%
best = monitor.loc[monitor.groupby("seed")["val CE"].idxmin()]
oracle = monitor.loc[monitor.groupby("seed")["Trace"].idxmax()]
last = monitor[monitor.epoch == S["monitor_epochs"]]
text = (f"Validation cross-entropy tracks matching quality across epochs (Spearman "
        f"{rho['Trace']:.2f} with the trace, {rho['MSE']:.2f} with the latent MSE): the "
        f"lowest-CE epoch gives trace {best['Trace'].median():.3f} and MSE "
        f"{best['MSE'].median():.3f}, against a trace of {oracle['Trace'].median():.3f} for the "
        f"best epoch in hindsight and {last['Trace'].median():.3f} (MSE "
        f"{last['MSE'].median():.3f}) for the overfitted last epoch")
text += (f"; for the VAE runs the validation loss correlates {rho_vae['Trace']:.2f} with the "
         f"trace and {rho_vae['MSE']:.2f} with the MSE (best VAE trace "
         f"{vae_runs['Trace'].max():.3f})")
finding("monitor", text + ".")
assert rho["Trace"] < -0.5 and rho["MSE"] > 0.5
assert best["Trace"].median() > last["Trace"].median()

# %% [markdown]
# Across epochs the two move together. As the classifiers overfit, the validation
# cross-entropy rises and the matching degrades. Keeping the epoch with the lowest validation
# loss, which {py:class}`~propalign_lite.PropensityClassifier` does by default, recovers most of what a ground-truth
# oracle would pick. Read the VAE numbers with care. In this small tabular problem the VAE's
# validation loss also follows its matching quality, and its latent comes fairly close to the
# propensity logits. A handful of runs is also a weak basis for a correlation. The paper
# observed a poor VAE monitor on real CITE-seq data and attributes it to the reconstruction
# term in the VAE's loss. Our simulator's views are simple enough to reconstruct well, so that
# term does not compete with the treatment classifier here.
#
# The {doc}`next page <ablations_data>` changes the *data* instead: treatments that break A1,
# the number of samples per group, and variation in one modality only.
#
# ## Summary of this page

# %%
summary = pd.DataFrame({"ablation": list(finding), "finding": list(finding.values())})
with pd.option_context("display.max_colwidth", None):
    display(summary.set_index("ablation"))
print(f"chapter executed in {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: ablations-cost-scale
#
# **The scale of the cost.** Show numerically that entropic OT on embeddings
# $c\,E$ with regularisation $\lambda$ gives the same coupling as on $E$ with $\lambda / c$.
# Use this to choose a regularisation for *probabilities* that blurs about as much as 0.05
# does for logits, and rerun the embedding comparison with it.
# :::
#
# :::{solution} ablations-cost-scale
# :class: dropdown
#
# The objective $\langle C, M\rangle - \lambda H(M)$ with $C$ scaled by $c$ is $c$ times the
# objective with $C$ and $\lambda / c$, so both have the same minimiser. To give
# probabilities a comparable blur, scale $\lambda$ by the ratio of the typical distances
# (`spread` above). The trace of the probability embedding then improves, but it stays
# behind the logits on both metrics (compare with the table of section 4): rescaling
# cannot undo the saturation near 0 and 1.
#
# ```python
# from propalign_lite import match
# e1, e2 = base[S["seeds"][0]]
# g = np.flatnonzero(test.t == 0)
# A = match(3 * e1[g], 3 * e2[g], method="ot", reg=0.15)
# B = match(e1[g], e2[g], method="ot", reg=0.05)
# print(np.abs(A - B).max())                           # ~1e-12
# reg_p = 0.05 * spread["proba"] / spread["logits"]
# print(reg_p, evaluate(propensity_embedding(e1, "proba"),
#                       propensity_embedding(e2, "proba"), test, reg=reg_p))
# ```
# :::
#
# :::{exercise}
# :label: ablations-early-stopping
#
# **Early stopping in hindsight.** From the table `monitor` of section 5, find
# for each seed the epoch that the validation cross-entropy selects and the epoch a
# ground-truth oracle would select for latent MSE. How much MSE does the practical rule
# lose? How many epochs apart are the two choices?
# :::
#
# :::{solution} ablations-early-stopping
# :class: dropdown
#
# Group by seed and take the row of the smallest validation cross-entropy and the row of the
# smallest MSE. In the `ci` run the two choices are usually only a few epochs apart, and the
# practical rule loses little MSE compared with the gap to the overfitted last epoch.
#
# ```python
# by_ce = monitor.loc[monitor.groupby("seed")["val CE"].idxmin()].set_index("seed")
# by_mse = monitor.loc[monitor.groupby("seed")["MSE"].idxmin()].set_index("seed")
# print(pd.DataFrame({"epoch (CE)": by_ce.epoch, "epoch (oracle)": by_mse.epoch,
#                     "MSE (CE)": by_ce.MSE, "MSE (oracle)": by_mse.MSE}))
# ```
# :::

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
