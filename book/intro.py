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
# # Propensity score alignment of unpaired multimodal data
#
# A tutorial and a reproduction of Xi, Osea, Xu and Hartford, *Propensity Score Alignment of
# Unpaired Multimodal Data* (NeurIPS 2024; {cite:alp}`xi2024propensity`), with a small Python package, `propalign_lite`, that
# you can use on your own data.
#
# ## The problem
#
# Many measurements in biology destroy the cell they measure. RNA sequencing, protein assays
# and microscopy are each done on *different* cells, so multimodal data sets come unpaired: we
# have a pile of images and a pile of expression profiles, but we do not know which image goes
# with which profile. Once pairs are known, a lot becomes possible, such as cross-modal
# prediction and joint representations. The question is how to find pairs when the two
# modalities live in different spaces, with no shared distance between them.
#
# ## The idea in one paragraph
#
# Suppose every sample also carries a label $t$ that both modalities share, such as the
# experimental perturbation applied to its well or its cell type. Then the *propensity score*
# $\pi(x) = P(t \mid x)$ can be estimated separately in each modality by training a classifier
# to predict $t$. If each modality is a lossless view of a latent cell state $z$, and $t$ acts
# on $z$ and not on the measurement noise, both classifiers estimate the same function
# $\pi(z)$. The scores of the two modalities therefore live in one shared space: the
# probability simplex, or in practice the logits. Within each treatment group we can then match
# samples across modalities by their score distance, using entropic optimal transport {cite:p}`cuturi2013sinkhorn` (OT,
# the best in the paper) or shared nearest neighbours (SNN). The resulting soft coupling
# can train a cross-modal predictor, with an unbiased two-sample gradient.
#
# ## The method in one figure
#
# A small example, computed live: a 2-d latent $z$ with three treatments that shift it, seen
# through two different non-linear "modalities" with their own noise. Each modality gets a
# classifier, and the logits of both land in the same place. OT within a treatment group then
# recovers the hidden pairs far better than chance.

# %% tags=["parameters"]
profile = "ci"

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The method on a toy problem: a hidden latent (left), two modalities that see it differently (middle), and the propensity logits of both classifiers, which live in one shared space (right).", "name": "fig-intro-toy"}, "image": {"alt": "Four scatter plots coloured by treatment: the hidden two-dimensional latent, two features of modality 1, two features of modality 2, and the classifiers' logits of both modalities overlapping in one space."}}
import matplotlib.pyplot as plt
import numpy as np

from propalign_lite import PropensityClassifier, match
from propalign_lite.metrics import trace

rng = np.random.default_rng(0)
n = 1500
t = rng.integers(0, 3, n)
shifts = np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5]])
z = rng.normal(size=(n, 2)) * 0.8 + shifts[t]
# two different injective views of z, each with its own noise features u
u1, u2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
x1 = np.column_stack([np.sin(z[:, 0]) + z[:, 0], z[:, 1] ** 3 / 4 + z[:, 1], u1])
x2 = np.column_stack([np.exp(z[:, 0] / 2), z[:, 0] - z[:, 1], u2 * 2])
split = np.arange(n) < 1000
embs = []
for x in (x1, x2):
    clf = PropensityClassifier("mlp", width=64, epochs=30, lr=1e-2, batch_size=128,
                               random_state=0, standardize=True)
    clf.fit(x[split], t[split], x_val=x[~split], t_val=t[~split])
    embs.append(clf.logits(x[~split]))
tt, zt = t[~split], z[~split]
g = np.flatnonzero(tt == 1)
M_ot = match(embs[0][g], embs[1][g], method="ot", reg=0.05)

fig, ax = plt.subplots(1, 4, figsize=(14, 3.3))
colours = np.array(["C0", "C1", "C2"])
ax[0].scatter(zt[:, 0], zt[:, 1], c=colours[tt], s=4)
ax[0].set_title("latent z (hidden), colour = treatment t")
ax[1].scatter(x1[~split][:, 0], x1[~split][:, 1], c=colours[tt], s=4)
ax[1].set_title("modality 1 (2 of 5 features)")
ax[2].scatter(x2[~split][:, 0], x2[~split][:, 1], c=colours[tt], s=4)
ax[2].set_title("modality 2 (2 of 5 features)")
for e, marker in ((0, "o"), (1, "x")):
    ax[3].scatter(embs[e][:, 1] - embs[e][:, 0], embs[e][:, 2] - embs[e][:, 0], c=colours[tt],
                  s=5, marker=marker, alpha=0.5, label=f"modality {e + 1}")
ax[3].set_title("propensity logits of both classifiers")
ax[3].legend(fontsize=8)
for a in ax:
    a.set_xticks([])
    a.set_yticks([])
fig.tight_layout()
plt.show()
print(f"treatment-1 group: {len(g)} samples per modality; OT puts {trace(M_ot):.3f} of each "
      f"sample's mass on its true partner on average (chance: {1 / len(g):.3f}).")
print(f"(computed on simulated data when the book was built; profile {profile!r}, the same "
      "small example under every profile)")

# %% [markdown]
# ## Start here
#
# Three paths through the book, one per reader. The reading times below are counted from each
# page's prose; the running times are those of the last build (see
# {doc}`Execution status <status>`).
#
# **A curious reader** who wants the idea and the evidence, without running anything:
# {doc}`the idea in pictures <theory>`, then {doc}`Synthetic images <synthetic>` (the paper's
# Table 1) and {doc}`CITE-seq <citeseq>` (Table 2). Read the prose and the figures; the code is
# folded away.
#
# **A student** (or a course) who wants to run and change the notebooks on a laptop CPU:
# {doc}`Theory <theory>` and {doc}`Matching on scores <theory_matching>` (the identification
# argument, with small numerical checks),
# {doc}`Synthetic images <synthetic>`, {doc}`Cross-modal prediction <prediction>` and
# {doc}`Ablations <ablations>`. Each page ends with exercises whose worked solutions are folded;
# the links at the bottom of every page download its executed notebook and a student notebook
# with the solutions removed (`make notebooks` writes both under `_build/notebooks/`).
#
# **A researcher with their own data** (two unpaired modalities sharing a treatment or label):
# {doc}`Your own data <own_data>` (the package's front door, step by step), then
# {doc}`Real cells <realcells>` (the front door on real CITE-seq cells and SNARE-seq nuclei),
# {doc}`Real multi-view data <realdata>`, {doc}`Baselines <baselines>` to see what the method
# is compared with, {doc}`Performance <performance>` for how far it scales, and
# {doc}`Reproduction notes <reproduction_notes>` for where we follow or differ from the authors'
# code.

# %% tags=["remove-input"]
from IPython.display import Markdown, display

from propalign_book.book import page_times

paths = {
    "Curious reader": ["theory", "synthetic", "citeseq"],
    "Student": ["theory", "theory_matching", "synthetic", "prediction", "ablations"],
    "Researcher with their own data": ["own_data", "realcells", "realdata", "baselines",
                                       "performance",
                                       "reproduction_notes"],
}
times = page_times(sorted({c for cs in paths.values() for c in cs}))


def _run(chapters):
    ran = [times[c]["run_s"] for c in chapters if times[c]["run_s"] is not None]
    if not ran:
        return "not run yet"
    missing = len(chapters) - len(ran)
    text = f"about {max(1, round(sum(ran) / 60))} min"
    return text + (f" ({missing} page(s) not run yet)" if missing else "")


rows = ["| reader | pages | reading | running (last build, 2-core CPU) |", "| --- | --- | --- | --- |"]
for reader, chapters in paths.items():
    links = ", ".join(f"{{doc}}`{c.replace('_', ' ')} <{c}>`" for c in chapters)
    read = sum(times[c]["read_min"] for c in chapters)
    rows.append(f"| {reader} | {links} | about {read} min | {_run(chapters)} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# The other pages: {doc}`Execution status <status>` shows when, where and how fast each page
# was executed.
#
# Every page is executed from its source (`book/*.py`, jupytext percent format) before the book
# is rendered, and it says which **profile** produced it. The `ci` profile runs the whole
# book on a 2-core laptop CPU in minutes. It uses smaller images, fewer samples, fewer epochs and
# fewer seeds, and still shows the paper's qualitative findings. The `paper` profile uses the
# paper's settings (a GPU is recommended).
#
# ## How to run it
#
# ```bash
# make book                   # creates .venv if needed, executes every chapter (profile ci), builds the HTML
# make book PROFILE=paper     # the paper's settings
# make test                   # the package's tests
# python -m propalign_book.book --only synthetic --profile ci   # one chapter
# ```
#
# To use the method on your own data, see the package's docstrings. In short:
#
# ```python
# from propalign_lite import PropensityClassifier, match_groups
# e1 = PropensityClassifier("mlp").fit(x1, t1, x_val=x1_val, t_val=t1_val).logits(x1_test)
# e2 = PropensityClassifier("mlp").fit(x2, t2, x_val=x2_val, t_val=t2_val).logits(x2_test)
# couplings = match_groups(e1, t1_test, e2, t2_test, method="ot", reg=0.05)   # {t: n1 x n2 coupling}
# ```

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
