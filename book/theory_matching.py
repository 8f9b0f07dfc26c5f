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
# # Matching on scores: what it can and cannot recover
#
# The {doc}`previous page <theory>` showed that both views know the same propensity score. This
# page asks what matching on that score can recover, on the same simulator (where the latent,
# the exact scores and the true pairs are known): how many perturbations the score needs to
# pin down the latent (Proposition 2 of {cite:t}`xi2024propensity`), what exact OT does with scores in one dimension
# (sorting) and in several (cyclic monotonicity). As before, every claim comes with a
# computation that runs when the page is built, and an `assert` stops the build if it fails.

# %% tags=["parameters"]
profile = "ci"      # "ci" (CPU, seconds) or "paper" (larger samples, longer training)

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import ot
import pandas as pd
import torch
from IPython.display import Markdown, display

from propalign_lite import match, match_groups
from propalign_lite import metrics
from propalign_lite.datasets.views import make_views
from propalign_lite.embeddings import propensity_embedding
from propalign_lite.matchers import PAPER_OT, euclidean_cost
from propalign_book.experiments.theory import fit_view, scores, views_splits
from propalign_book.profiles import get_profile
from propalign_book.report import profile_banner
from propalign_lite.theory import (discordant_fraction, find_cost_reducing_cycle,
                                   gaussian_log_propensity, logit_map, score_null_space,
                                   sorting_coupling)

torch.set_num_threads(1)          # small networks: one thread is fastest on a shared CPU
device = "cuda" if torch.cuda.is_available() else "cpu"
settings = get_profile("theory", profile)
display(Markdown(profile_banner(
    settings, data="tabular data simulated by `make_views` (two injective non-linear views "
    "of a Gaussian latent), as on the previous page")))
chapter_start = time.perf_counter()
S = settings

# the previous page's data and trained classifiers (same settings and seeds)
kw, train, val, test = views_splits(S)
clf1, clf2 = (fit_view(S, v, train, val, device=device) for v in ("x1", "x2"))
logit1, logit2 = clf1.logits(test.x1), clf2.logits(test.x2)

# %% [markdown]
# ## 1. Proposition 2: too few perturbations cannot pin down $z$
#
# With $T + 1$ treatments, the score lives in a $T$-dimensional simplex. Its log-odds against
# the base, $h(z) = (\log \pi_t(z)/\pi_0(z))_{t=1}^T$, are an invertible transform of it (the
# paper's equation (2)). If $T < d$, a smooth map from $\mathbb R^d$ to $\mathbb R^T$ cannot be
# one-to-one, so distinct latents share a score. In our Gaussian model this is plain linear
# algebra: $h(z) = Bz + c$ with $B$ of size $T \times d$. The score is constant along the
# null space of $B$ (`score_null_space`), which has dimension at least $d - T$.

# %%
means_T1 = np.array([[0.0, 0.0], [S["shift"], 0.0]])                # T = 1 < d = 2
means_T2 = test.model.means                                          # T = 2 = d
for name, means in (("T = 1", means_T1), ("T = 2", means_T2)):
    B, c = logit_map(means)
    print(f"{name}: B has rank {np.linalg.matrix_rank(B)}, null space of dimension "
          f"{score_null_space(means).shape[1]}")
v = score_null_space(means_T1)[:, 0]
z_a = np.array([[0.7, -1.0]])
z_b = z_a + 3.0 * v
pi_a, pi_b = np.exp(gaussian_log_propensity(np.vstack([z_a, z_b]), means_T1))
print(f"T = 1: z_a = {z_a.ravel()}, z_b = {z_b.ravel().round(2)} are "
      f"{np.linalg.norm(z_b - z_a):.1f} apart but have the same score {pi_a.round(4)} = "
      f"{pi_b.round(4)}")
assert np.allclose(pi_a, pi_b)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Why $T$ matters. Left ($T = 1$): level sets of the propensity are lines, so two different latents $z_a$, $z_b$ share a score. Right ($T = 2$): the level sets of the two log-odds cross once.", "name": "fig-theory-level-sets"}, "image": {"alt": "Two contour plots over a two-dimensional latent: parallel contour lines with two marked points on the same line on the left, two families of crossing contour lines on the right."}}
grid = np.linspace(-3.5, 5, 200)
gx, gy = np.meshgrid(grid, grid)
pts = np.column_stack([gx.ravel(), gy.ravel()])
fig, ax = plt.subplots(1, 2, figsize=(10, 4.2))
lp = gaussian_log_propensity(pts, means_T1)
cs = ax[0].contour(gx, gy, np.exp(lp[:, 1]).reshape(gx.shape), levels=9, cmap="viridis")
ax[0].clabel(cs, fontsize=7)
ax[0].plot(*np.vstack([z_a, z_b]).T, "ro-", ms=5)
for name, point in (("$z_a$", z_a), ("$z_b$", z_b)):
    ax[0].annotate(name, point.ravel(), xytext=(-24, -4), textcoords="offset points", color="r")
ax[0].set_title("T = 1: level sets of $\\pi_1(z)$ are lines", fontsize=10)
lp = gaussian_log_propensity(pts, means_T2)
h = lp[:, 1:] - lp[:, :1]
for k, cmap in ((0, "viridis"), (1, "plasma")):
    ax[1].contour(gx, gy, h[:, k].reshape(gx.shape), levels=12, cmap=cmap, linewidths=0.9)
ax[1].set_title("T = 2: level sets of $h_1$ and $h_2$ cross once", fontsize=10)
for a, means in zip(ax, (means_T1, means_T2)):
    a.plot(means[:, 0], means[:, 1], "k*", ms=10, label="treatment means $\\mu_t$")
    a.set(xlabel="$z_1$", ylabel="$z_2$", aspect="equal")
ax[1].legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# On the left (one perturbation in a 2-d latent), every vertical line is a level set. The two
# red points are far apart but indistinguishable through their scores (the stars mark the
# treatment means). On the right (two perturbations), each score coordinate has its own
# family of level lines. A pair of values fixes a point, so the score is one-to-one.
#
# **What this does to matching.** There is a subtlety. Exact scores are distinct for distinct
# units anyway, because level sets have zero volume. With perfect scores the true partner is
# at distance zero, and OT finds many partners even when $T < d$. Non-injectivity bites once
# the scores are blurred, by *estimation error* (always present in practice) or by OT's own
# entropic regularisation. Then the units that a noisy score cannot tell apart include units
# that are far away in $z$, along the null directions. Below, a 4-d latent gets $T = 1, \dots$ perturbations (random, orthogonal directions while $T \le d$).
# We match on the exact centred log-scores, after adding independent Gaussian noise of
# standard deviation $\varepsilon$ in each modality to mimic estimation error. The
# {doc}`ablations <ablations>` chapter repeats this with trained classifiers.

# %%
d4 = S["prop2_latent_dim"]
rows = []
for T in S["prop2_T"]:
    data = make_views(S["prop2_group_size"] * (T + 1), n_treatments=T + 1, latent_dim=d4,
                      noise_dim=S["noise_dim"], shift=S["shift"],
                      random_state=S["data_seed"] + 10 + T)
    exact = propensity_embedding(data.exact_log_propensity(), "centred")
    rng = np.random.default_rng(T)
    for eps in S["prop2_noise"]:
        e1 = exact + eps * rng.standard_normal(exact.shape)
        e2 = exact + eps * rng.standard_normal(exact.shape)
        res = scores(match_groups(e1, data.t, e2, data.t, **PAPER_OT), data.t, data.z)
        rows.append({"T": T, "noise": eps, **res})
prop2 = pd.DataFrame(rows)
display(prop2.pivot(index="T", columns="noise", values=["Trace", "MSE"]).round(4))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Matching on exact and noisy scores against the number of perturbations $T$: trace (left) and latent MSE (right); the dotted line marks $T = d$.", "name": "fig-theory-T"}, "image": {"alt": "Two line charts against the number of perturbations, trace left and latent MSE right, one line per noise level, with a dotted vertical line at T equals d."}}
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
for eps, part in prop2.groupby("noise"):
    label = "exact scores" if eps == 0 else f"noise sd {eps}"
    ax[0].plot(part["T"], part["Trace"], "o-", label=label)
    ax[1].plot(part["T"], part["MSE"], "o-", label=label)
for a, name in zip(ax, ("trace (higher is better)", "latent MSE (lower is better)")):
    a.axvline(d4, color="grey", ls=":", lw=1)
    a.set(xlabel="number of perturbations T", ylabel=name)
ax[0].text(d4 + 0.1, 0.05, "T = d", color="grey")
ax[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
noisy = prop2[prop2.noise == max(S["prop2_noise"])].set_index("T")
below, at = noisy.loc[min(S["prop2_T"]), "MSE"], noisy.loc[d4, "MSE"]
print(f"noise sd {max(S['prop2_noise'])}: latent MSE {below:.3f} with T = {min(S['prop2_T'])}, "
      f"{at:.3f} with T = d = {d4}")
assert below > 3 * at

# %% [markdown]
# With exact scores, only the smallest $T$ are clearly worse. At $T = 1$ the group's units
# crowd onto a line, and the blur of entropic OT alone already mixes units that differ along
# the $d - 1$ null directions. With noisy scores and $T < d$, the latent MSE stays large.
# What is lost is the $d - T$ null directions, where each unit is matched to units with
# unrelated coordinates. Once $T \ge d$ the error drops sharply. Beyond $d$, extra
# perturbations still help a little overall, because each new coordinate of the score
# averages out some of the noise. This is the paper's point that more perturbations (weakly)
# help.
#
# ## 2. Exact OT in one dimension is sorting, and the monotonicity relaxation
#
# With two treatments the score is a single number per unit, here the log-odds
# $h = \log \pi_1/\pi_0$. Exact OT between two equally large sets of numbers is then
# *sorting*: the $r$-th smallest of one set is matched with the $r$-th smallest of the other.
# We check this on the simulator with a 1-d latent. Under A1 the exact scores of the two
# views coincide, so sorting and exact OT (`match(..., method="emd")`) both return the true
# pairing.

# %%
kw1 = dict(n_treatments=2, latent_dim=1, noise_dim=1, shift=S["shift"])
tr1 = make_views(S["n_train"], random_state=S["data_seed"] + 20, **kw1)
va1 = make_views(S["n_val"], random_state=S["data_seed"] + 21, **kw1)
te1 = make_views(S["n_test"], random_state=S["data_seed"] + 22, **kw1)
grp = np.flatnonzero(te1.t == 1)                       # the treated group
n1 = len(grp)


def log_odds(log_scores):
    return (log_scores[:, 1] - log_scores[:, 0])[grp]


h1, h2 = log_odds(te1.exact_log_propensity(view=1)), log_odds(te1.exact_log_propensity(view=2))
M_emd = match(h1[:, None], h2[:, None], method="emd")
M_sort = sorting_coupling(h1, h2)
print(f"exact scores, {n1} treated units: emd equals sorting: {np.array_equal(M_emd, M_sort)}; "
      f"fraction of true pairs recovered: {metrics.trace(M_emd):.3f}")
assert np.array_equal(M_emd, M_sort) and metrics.trace(M_emd) == 1.0

# %% [markdown]
# With *trained* scores there is a catch that the paper's text skips. The paper's cost is the
# plain distance $|h_i - h_j|$, and with that cost sorting is optimal but usually not the only
# optimum. If $a_1 < a_2 < b_1 < b_2$, then matching $a_1 \to b_1, a_2 \to b_2$ costs exactly as
# much as $a_1 \to b_2, a_2 \to b_1$. The solver returns one of the many optimal plans. With a
# strictly convex cost such as $(h_i - h_j)^2$, the sorted plan is the only optimum.

# %%
clf_a = fit_view(S, "x1", tr1, va1, device=device, width=32, epochs=S["epochs_1d"])
clf_b = fit_view(S, "x2", tr1, va1, device=device, width=32, epochs=S["epochs_1d"])
g1, g2 = log_odds(clf_a.logits(te1.x1)), log_odds(clf_b.logits(te1.x2))
C_plain = euclidean_cost(g1[:, None], g2[:, None])
M_emd = match(g1[:, None], g2[:, None], method="emd")
M_sort = sorting_coupling(g1, g2)
uniform = np.full(n1, 1.0 / n1)
M_sq = ot.emd(uniform, uniform, C_plain ** 2) * n1
cost = {name: (M * C_plain).sum() / n1 for name, M in (("emd", M_emd), ("sort", M_sort))}
agree = np.mean(M_emd.argmax(1) == M_sort.argmax(1))
print(f"trained scores: plain-cost emd and sorting agree on {agree:.1%} of the units, yet have "
      f"the same mean cost ({cost['emd']:.6f} vs {cost['sort']:.6f})")
print(f"squared-cost emd equals sorting: {np.allclose(M_sq, M_sort)}")
print(f"the true pairing is not monotone: {discordant_fraction(g1, g2):.1%} of unit pairs are "
      f"ordered differently by the two classifiers; latent MSE after sorting "
      f"{metrics.latent_mse(M_sort, te1.z[grp]):.4f} (random matching: "
      f"{metrics.latent_mse(np.full((n1, n1), 1 / n1), te1.z[grp]):.4f})")
assert np.isclose(cost["emd"], cost["sort"]) and np.allclose(M_sq, M_sort)

# %% [markdown]
# **Relaxing A1 with a monotone effect.** Sorting only uses the *order* of the scores. So the
# scores of the two modalities need not be equal, as long as both put the units in the same
# order. This is the paper's condition (3):
# $(\pi^{(1)}_{i_1} - \pi^{(1)}_{i_2})(\pi^{(2)}_{i_1} - \pi^{(2)}_{i_2}) \ge 0$ for all pairs of
# units. Here is a mechanism that satisfies it. Modality 2's instrument reads the latent with
# an extra offset $\delta$ in treated samples (think of a drug that also fluoresces), so
# $x^{(2)} = z + \delta t$, while modality 1 reads $z$ itself. Both exact scores are
# increasing in $z$ but differ in value, since modality 2 sees the treatment more clearly.
# For contrast, a *non-monotone* distortion: A1 broken by a treatment that moves each
# modality's own noise (`treatment_affects_noise`). The two noises are independent, so the
# orders get scrambled.

# %%
delta = S["monotone_offset"]
z1, t1 = te1.z[:, 0], te1.t
x_offset = (z1 + delta * t1)[:, None]
lp_offset = gaussian_log_propensity(x_offset, np.array([[0.0], [S["shift"] + delta]]))
scenarios = {"A1 holds": (h1, h2),
             f"monotone: offset {delta} in modality 2": (h1, log_odds(lp_offset))}
for a in S["a1_violations"]:
    bad = make_views(S["n_test"], random_state=S["data_seed"] + 22, treatment_affects_noise=a,
                     **kw1)
    scenarios[f"A1 broken, noise shift {a} sd"] = (log_odds(bad.exact_log_propensity(view=1)),
                                                   log_odds(bad.exact_log_propensity(view=2)))
rows = {}
for name, (s1, s2) in scenarios.items():
    rows[name] = {
        "mean |pi1 - pi2|": np.abs(1 / (1 + np.exp(-s1)) - 1 / (1 + np.exp(-s2))).mean(),
        "discordant pairs": discordant_fraction(s1, s2),
        "recovered by sorting": metrics.trace(sorting_coupling(s1, s2)),
        "recovered by plain-cost emd": metrics.trace(match(s1[:, None], s2[:, None], method="emd")),
        "latent MSE after sorting": metrics.latent_mse(sorting_coupling(s1, s2), te1.z[grp]),
    }
mono = pd.DataFrame(rows).T
display(mono.round(3))
assert mono.iloc[1]["recovered by sorting"] == 1.0 and mono.iloc[1]["mean |pi1 - pi2|"] > 0.05
assert mono.iloc[-1]["recovered by sorting"] < 0.1

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The two modalities' log-odds of the same units under each scenario; a monotone relation lets sorting recover the pairing.", "name": "fig-theory-monotone"}, "image": {"alt": "A row of scatter plots of modality-1 log-odds against modality-2 log-odds, one per scenario, with a dotted identity line."}}
fig, ax = plt.subplots(1, len(scenarios), figsize=(3.2 * len(scenarios), 3.2))
for a, (name, (s1, s2)) in zip(ax, scenarios.items()):
    a.scatter(s1, s2, s=3, alpha=0.5)
    lim = [min(s1.min(), s2.min()), max(s1.max(), s2.max())]
    a.plot(lim, lim, "k:", lw=0.8)
    a.set(xlabel="log-odds $h^{(1)}_i$ (modality 1)", ylabel="log-odds $h^{(2)}_i$ (modality 2)")
    a.set_title(f"{name}\nsorting recovers {rows[name]['recovered by sorting']:.0%}", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Each panel plots the two modalities' exact log-odds $h = \log \pi_1 / \pi_0$ for the same
# treated unit (the dotted line is equality). With the monotone offset the points leave the
# diagonal but stay on an increasing line. Sorting still pairs
# every unit correctly, although the scores differ (first column). When the treatment also
# moves the modality noise, the curve becomes a cloud and the recovered fraction collapses.
# This happens even at 0.5 sd, where the scores differ *less* than in the monotone case: the
# size of the disagreement does not matter, the order does. The latent MSE shows that the
# matching degrades gracefully. Units are still paired with units of similar latent, just
# rarely with the exact partner. Note the last column: exact OT with the paper's plain cost fails on
# the monotone case. The offset puts every modality-2 score above the matching modality-1
# score, which is the tie situation described above. So to use the relaxation, match on a
# strictly convex cost, or sort directly.
#
# ## 3. Cyclic monotonicity: the same idea in several dimensions
#
# With more than two treatments there is no order to sort by. The general fact behind
# sorting is that an optimal plan is **cyclically monotone** (the paper's appendix,
# Definition 1). Take any units $k_1, \dots, k_m$ and hand each one the partner of the next
# in the cycle. This never lowers the total cost. `find_cost_reducing_cycle` searches for a
# cycle that does lower it, over all cycle lengths at once (Bellman-Ford on the "swap"
# graph). For a one-to-one matching, finding none proves optimality. We check three matchings
# of one treatment group of the previous page (its section 2), all with the plain Euclidean cost between the
# trained logits: the exact OT plan, the true pairing and a random matching.

# %%
members = np.flatnonzero(test.t == 1)[:S["cycle_group"]]
E1, E2 = logit1[members], logit2[members]
C = euclidean_cost(E1, E2)
M_exact = match(E1, E2, method="emd")
rng = np.random.default_rng(0)
checks = {"exact OT plan": M_exact.argmax(1), "true pairing": np.arange(len(members)),
          "random matching": rng.permutation(len(members))}
for name, assignment in checks.items():
    res = find_cost_reducing_cycle(C, assignment)
    verdict = ("cyclically monotone" if res.is_cyclically_monotone else
               f"NOT monotone: shifting partners along the {len(res.cycle)}-cycle "
               f"{res.cycle[:6]}{'...' if len(res.cycle) > 6 else ''} saves {res.gain:.3f}")
    print(f"{name:16s} mean cost {C[np.arange(len(members)), assignment].mean():.4f}: {verdict}")
print(f"the exact OT plan recovers {metrics.trace(M_exact):.1%} of the true pairs "
      f"(chance {1 / len(members):.1%})")
assert find_cost_reducing_cycle(C, checks["exact OT plan"]).is_cyclically_monotone
assert not find_cost_reducing_cycle(C, checks["true pairing"]).is_cyclically_monotone

# %% [markdown]
# The OT plan passes, as optimality theory says it must. The true pairing fails, and that
# failure explains why even exact OT cannot recover every pair. OT returns the cheapest
# cyclically monotone matching, and with estimated scores the truth is not one of those.
# Some cycles of units have their estimation errors lined up so that swapping partners looks
# cheaper. With the exact scores (previous page, section 2), the true pairing costs zero and is trivially
# cyclically monotone: this is the multi-dimensional version of "sorting recovers the
# truth". Better classifiers shrink the estimation errors and with them the gains of such
# cycles. Entropic OT is the soft version of the same trade-off: it spreads each unit's mass
# over the partners that are nearly as cheap.

# %%
print(f"chapter executed in {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: theory-collinear-shifts
#
# **More perturbations are not always enough.** Proposition 2 only says that
# $T < d$ is too few. Build a 2-d latent with three perturbations whose means all lie on one
# line, e.g. `make_views(..., n_treatments=4, latent_dim=2, design=means)` with
# `means = [[0, 0], [1, 0], [2, 0], [3, 0]]`. Is the propensity score injective? Check it
# with `score_null_space` and with two latents that share a score.
# :::
#
# :::{solution} theory-collinear-shifts
# :class: dropdown
#
# The log-odds are $h(z) = Bz + c$ with rows $(\mu_t - \mu_0)^\top$ of $B$. All three rows are
# multiples of $(1, 0)$, so $B$ has rank 1 and the null space is the $z_2$ axis. Having
# $T \ge d$ perturbations is necessary but not sufficient: their shifts must span the latent
# space.
#
# ```python
# means = np.array([[0, 0], [1, 0], [2, 0], [3, 0]], dtype=float)
# print(score_null_space(means))                      # one column: (0, 1) up to sign
# lp = gaussian_log_propensity(np.array([[0.5, -2.0], [0.5, 4.0]]), means)
# print(np.allclose(lp[0], lp[1]))                   # True: same score, 6 apart in z_2
# ```
# :::
#
# :::{exercise}
# :label: theory-cost-power
#
# **Which costs sort?** In section 2, match the trained 1-d scores `g1`, `g2`
# with exact OT under the costs $|a - b|^p$ for $p = 0.5, 1, 2, 3$ (use `ot.emd` with your own
# cost matrix). For which $p$ is the plan the sorted one? Why does $p < 1$ behave differently?
# :::
#
# :::{solution} theory-cost-power
# :class: dropdown
#
# For $p > 1$ the cost is strictly convex in $a - b$. Then any crossing pair
# $a_1 < a_2$, $b_1 > b_2$ can be uncrossed at a strictly lower cost, so the optimum is the
# sorted plan ($p = 2, 3$ agree with `sorting_coupling` exactly). For $p = 1$ sorting is
# optimal but tied with other plans. For $p < 1$ the cost is concave and favours leaving
# already-close pairs in place while sending the rest far. The optimal plan is then not
# monotone: it agrees with sorting on only a few percent of the units, and under this cost
# the sorted plan is clearly more expensive than the optimum.
#
# ```python
# M_sort = sorting_coupling(g1, g2)
# for p in (0.5, 1, 2, 3):
#     plan = ot.emd(uniform, uniform, np.abs(g1[:, None] - g2[None, :]) ** p)
#     print(p, np.mean(plan.argmax(1) == M_sort.argmax(1)))
# ```
# :::
#
# :::{exercise}
# :label: theory-cycle-cancelling
#
# **Cycle cancelling.** Start from a random matching of the group in section 3 and
# repeatedly apply the cycle found by `find_cost_reducing_cycle`: row `cycle[j]` takes the
# partner of row `cycle[j + 1]`. Stop when none is left. Compare the final cost with the cost
# of the exact OT plan `M_exact`.
# :::
#
# :::{solution} theory-cycle-cancelling
# :class: dropdown
#
# Each step lowers the total cost by `res.gain > 0`, and there are finitely many
# permutations, so the loop stops. When it stops the matching is cyclically monotone. For a
# one-to-one matching with uniform weights that means it is optimal, so its cost equals the
# exact OT cost (the plan itself may differ when there are ties). This is the classical
# cycle-cancelling algorithm for the assignment problem.
#
# ```python
# sigma = np.random.default_rng(1).permutation(len(members))
# steps = 0
# while not (res := find_cost_reducing_cycle(C, sigma)).is_cyclically_monotone:
#     cyc = res.cycle
#     sigma[cyc] = sigma[cyc[1:] + cyc[:1]]
#     steps += 1
# print(steps, C[np.arange(len(sigma)), sigma].mean(), (M_exact * C).sum() / len(sigma))
# ```
# :::

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
