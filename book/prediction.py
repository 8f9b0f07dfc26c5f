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
# # Cross-modal prediction from a coupling
#
# A coupling is useful beyond scoring: it can stand in for the missing pairs when we train a
# model that predicts one modality from the other. Let $M$ be a coupling whose row $i$ is a
# distribution over the input samples $j$ that may be target sample $i$'s partner. The paper
# fits a predictor $f_\theta$ by minimising
#
# $$\mathcal L(\theta) = \sum_i \Big\lVert y_i - \sum_j M_{ij} f_\theta(x_j)\Big\rVert^2 ,
# \qquad (4)$$
#
# i.e. the target is compared with the *average* prediction over its possible partners.
# Evaluating the inner sum for every $i$ is expensive, so stochastic gradient descent samples
# partners instead. With **one** sampled partner $j \sim M_{i\cdot}$ the expected loss is
# $\sum_i \mathbb E_j \lVert y_i - f_\theta(x_j)\rVert^2 = \mathcal L(\theta) + \sum_i
# \operatorname{Var}_{j \sim M_{i\cdot}} f_\theta(x_j)$. That is an upper bound, and
# minimising it also shrinks the predictions towards each other. With **two** independent
# partners $\dot x, \ddot x$ the product
#
# $$-2\,\big(y_i - f_\theta(\dot x_j)\big)\,\nabla_\theta f_\theta(\ddot x_j) \qquad (5)$$
#
# is an unbiased estimate of $\nabla_\theta \mathcal L$, because the two draws are independent
# given $i$. `propalign_lite.CrossModalTrainer` implements both (`unbiased=False` / `True`),
# drawing fresh partners every epoch.
#
# **Direction.** The paper's text speaks of predicting protein from RNA. The official code
# (`probing.py`) predicts the 200 RNA principal components from the 134 proteins, and Table 3
# comes from that code. We reproduce the code's direction for the table (`direction =
# "protein_to_rna"`) and show the other direction too.

# %% tags=["parameters"]
profile = "ci"
data = None          # "simulated" or "geo" (None: as the profile says)
seeds = None

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from propalign_lite import CrossModalTrainer, PropensityClassifier, block_coupling, match_groups
from propalign_lite import paper
from propalign_lite.baselines import CrossModalVAE
from propalign_lite.datasets import load_cite_seq_for
from propalign_lite.profiles import get_profile
from propalign_lite.report import comparison_table, profile_banner
from propalign_lite.trainer import make_probe_mlp

settings = get_profile("prediction", profile, data=data, seeds=seeds)
device = "cuda" if torch.cuda.is_available() else "cpu"
chapter_start = time.perf_counter()
cite, source = load_cite_seq_for(settings)
display(Markdown(profile_banner(settings, data=source)))
train, val = cite.split_view("train"), cite.split_view("val")
print(cite)

# %% [markdown]
# ## Couplings of the training cells
#
# As in the official code, the couplings are computed on the **training** split, within each
# cell type, from embedding models trained on that split. We compare four:
#
# - **PS+OT**: entropic OT on the logits of the two propensity classifiers;
# - **VAE+OT**: entropic OT on the latents of the cross-modal VAE baseline;
# - **Rand**: the uniform coupling within each type ($M_{ij} = 1/n$), i.e. random partners;
# - **True Pairs**: the identity, the hidden ground truth (an oracle).
#
# The predictor is then evaluated on the validation split with its *true* pairs, by $R^2$ pooled
# over all outputs against the validation mean (as the official code does).

# %%
def within_types(e_adt, e_rna, **kw):
    """Row-normalised protein x RNA coupling over all training cells, zero across types.
    (A type with a single training cell is matched to itself.)"""
    couplings = match_groups(e_adt, train.cell_type, e_rna, train.cell_type,
                             min_group_size=1, **kw)
    return block_coupling(couplings, train.cell_type, train.cell_type)


def couplings_for_seed(seed):
    out = {}
    clf = {}
    for name, x, x_val in (("adt", train.adt, val.adt), ("rna", train.gex_pca, val.gex_pca)):
        clf[name] = PropensityClassifier(
            "mlp", epochs=settings["clf_epochs"], width=settings["width"], lr=settings["clf_lr"],
            random_state=seed, device=device).fit(x, train.cell_type, x_val=x_val,
                                                  t_val=val.cell_type)
    out["PS+OT"] = within_types(clf["adt"].logits(train.adt), clf["rna"].logits(train.gex_pca),
                                method="ot", reg=0.05)
    # the official run's loss weights, as in the baselines chapter (see the reproduction notes)
    vae = CrossModalVAE("mlp", width=settings["width"], epochs=settings["vae_epochs"],
                        lr=settings["clf_lr"], alpha=0.1, beta=1.0, lam=1e-10,
                        random_state=seed, device=device)
    vae.fit(train.adt, train.cell_type, train.gex_pca, train.cell_type,
            x1_val=val.adt, t1_val=val.cell_type, x2_val=val.gex_pca, t2_val=val.cell_type)
    out["VAE+OT"] = within_types(vae.transform(train.adt, modality=1, random_state=seed),
                                 vae.transform(train.gex_pca, modality=2, random_state=seed),
                                 method="ot", reg=0.05)
    out["Rand"] = within_types(train.adt, train.gex_pca, method="uniform")
    out["True Pairs"] = within_types(train.adt, train.gex_pca, method="identity")
    return out


def fit_probe(coupling, seed, *, unbiased, direction):
    """Train the paper's probe MLP from ``coupling`` (rows: protein cells, cols: RNA cells)."""
    if direction == "protein_to_rna":          # official code: RNA PCs from proteins
        inputs, targets, ev_in, ev_out = train.adt, train.gex_pca, val.adt, val.gex_pca
        # rows must index the targets (RNA cells): transpose and renormalise the columns of
        # the protein x RNA coupling (OT plans have uniform marginals: columns sum to ~1)
        M = coupling.T.tocsr()
        M = M.multiply(1 / M.sum(axis=1)).tocsr()
    else:
        inputs, targets, ev_in, ev_out = train.gex_pca, train.adt, val.gex_pca, val.adt
        M = coupling
    torch.manual_seed(seed)
    model = make_probe_mlp(inputs.shape[1], targets.shape[1])
    trainer = CrossModalTrainer(model, unbiased=unbiased, epochs=settings["probe_epochs"],
                                batch_size=500, lr=settings["probe_lr"], weight_decay=5e-4,
                                random_state=seed, device=device)
    return trainer.fit(inputs, targets, M, eval_inputs=ev_in, eval_targets=ev_out)


COUPLINGS = ["Rand", "VAE+OT", "PS+OT", "True Pairs"]
r2 = {c: {"R2 (MSE)": [], "R2 (Unbiased)": []} for c in COUPLINGS}
curves, reverse = {}, {}
for seed in settings["seeds"]:
    start = time.perf_counter()
    couplings = couplings_for_seed(seed)
    t_coupling = time.perf_counter() - start
    for name in COUPLINGS:
        for unbiased, col in ((False, "R2 (MSE)"), (True, "R2 (Unbiased)")):
            if name == "True Pairs" and unbiased:
                continue        # identical partners: the two estimators coincide
            fit = fit_probe(couplings[name], seed, unbiased=unbiased, direction="protein_to_rna")
            r2[name][col].append(fit.history_[-1]["eval_r2"])
            if seed == settings["seeds"][0]:
                curves[(name, col)] = [h["eval_r2"] for h in fit.history_]
                if settings["reverse"]:
                    rev = fit_probe(couplings[name], seed, unbiased=unbiased,
                                    direction="rna_to_protein")
                    reverse[(name, col)] = rev.history_[-1]["eval_r2"]
    print(f"seed {seed}: couplings {t_coupling:.0f} s, total {time.perf_counter() - start:.0f} s; "
          + ", ".join(f"{n} {r2[n]['R2 (MSE)'][-1]:.3f}" for n in COUPLINGS))

# %% [markdown]
# ## Table 3
#
# $R^2$ on the validation split (true pairs) after the last epoch: the median (Q1, Q3) over seeds
# of the probe, trained with the naive single-partner MSE and with the unbiased two-sample
# gradient. For true pairs the two estimators are the same thing: both draws are the true
# partner.

# %%
table = comparison_table(r2, paper.TABLE3, ["R2 (MSE)", "R2 (Unbiased)"])
table.loc["True Pairs", "R2 (Unbiased) (ours)"] = "= MSE (identity coupling)"
display(table)

# %%
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for k, col in enumerate(("R2 (MSE)", "R2 (Unbiased)")):
    for i, name in enumerate(COUPLINGS):
        if (name, col) in curves:
            ax[k].plot(np.arange(1, len(curves[(name, col)]) + 1), curves[(name, col)],
                       color=f"C{i}", label=name)
    ax[k].set_title(f"probe trained with {'the unbiased estimator' if k else 'naive MSE'}")
    ax[k].set_xlabel("epoch")
ax[0].set_ylabel("validation $R^2$ (true pairs)")
ax[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The other direction: proteins from RNA
#
# The paper's text describes predicting protein levels from RNA. Here is that direction for
# the first seed, with the same couplings.

# %%
if reverse:
    import pandas as pd
    display(pd.DataFrame({col: {n: reverse.get((n, col), np.nan) for n in COUPLINGS}
                          for col in ("R2 (MSE)", "R2 (Unbiased)")}).round(4))

# %%
med = {n: {c: np.median(v) for c, v in r2[n].items() if v} for n in COUPLINGS}
claims = {
    "PS+OT gives a better predictor than random pairs (naive MSE)":
        med["PS+OT"]["R2 (MSE)"] > med["Rand"]["R2 (MSE)"],
    "PS+OT gives a better predictor than random pairs (unbiased)":
        med["PS+OT"]["R2 (Unbiased)"] > med["Rand"]["R2 (Unbiased)"],
}
for claim, holds in claims.items():
    print(("holds:  " if holds else "FAILS:  ") + claim)
order = sorted(COUPLINGS, key=lambda n: -med[n]["R2 (MSE)"])
print("ranking by R2 (naive MSE): " + " > ".join(order))
print("unbiased minus naive R2, median over seeds: " + ", ".join(
    f"{n} {med[n]['R2 (Unbiased)'] - med[n]['R2 (MSE)']:+.3f}" for n in ("Rand", "VAE+OT", "PS+OT")))
assert all(claims.values()), "the paper's qualitative finding does not hold in this run"
print(f"chapter executed in {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown]
# **Reading the results.** A coupling from propensity scores gives a clearly better predictor
# than random partners within the cell type. That is the paper's main point, and it holds
# here. Two findings of the paper do not automatically carry over to simulated data, and the
# printed lines above say what happened in this run:
#
# - *VAE+OT vs PS+OT.* In the simulator, both modalities are noisy read-outs of one
#   low-dimensional latent state. A VAE that reconstructs its inputs keeps exactly the
#   within-type variation the probe must predict, so its couplings can be as useful as the
#   propensity scores', or more. The paper found the opposite on the real bone-marrow data.
# - *Unbiased vs naive loss.* Loss (4) only asks the **average** prediction over a target's
#   possible partners to match the target. For a diffuse coupling (random partners within a
#   type), this constrains $f$ far less than the naive loss does. The effect on held-out $R^2$
#   therefore depends on the coupling, and the paper's gain (e.g. 0.138 → 0.173 for random
#   pairs) is not a law. The test `test_modes_converge_to_their_closed_form_minimisers` shows that the
#   estimator does minimise loss (4).
#
# With `profile="paper"` and `data="geo"` the same code runs on the real file with the paper's
# settings.
