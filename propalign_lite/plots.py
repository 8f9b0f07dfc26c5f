"""Figures shown by the chapters (matplotlib / seaborn). Each function returns the figure."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def show_views(x1, x2, t, *, labels=None, per_class: int = 1, names=None):
    """A grid with one column per treatment: ``per_class`` examples of view 1 above view 2."""
    plt = _plt()
    t = np.asarray(t)
    classes = np.unique(t) if labels is None else np.asarray(labels)
    fig, axes = plt.subplots(2 * per_class, len(classes),
                             figsize=(1.5 * len(classes), 3.2 * per_class), squeeze=False)
    for c, cls in enumerate(classes):
        idx = np.flatnonzero(t == cls)[:per_class]
        for r, i in enumerate(idx):
            axes[2 * r, c].imshow(x1[i])
            axes[2 * r + 1, c].imshow(x2[i])
        axes[0, c].set_title(names(cls) if names else str(cls), fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for r in range(per_class):
        axes[2 * r, 0].set_ylabel("view 1", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel("view 2", fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(histories: dict, *, title: str = ""):
    """Train and validation cross-entropy per epoch for several classifiers, best epoch marked.

    ``histories`` maps a name to a classifier (with ``history_`` and ``best_epoch_``).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k, (name, clf) in enumerate(histories.items()):
        h = clf.history_
        colour = f"C{k}"
        ax.plot(h["epoch"], h["train_loss"], "--", color=colour, label=f"{name} train")
        if h["val_loss"]:
            ax.plot(h["epoch"], h["val_loss"], "-", color=colour, label=f"{name} validation")
            ax.plot(clf.best_epoch_, h["val_loss"][clf.best_epoch_ - 1], "o", color=colour)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_title(title or "Propensity classifiers (dot: kept epoch)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_couplings(couplings: dict, *, order=None, vmax=None):
    """Heat-maps of couplings side by side (rows/columns optionally reordered by ``order``)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(couplings), figsize=(3.1 * len(couplings), 3.1),
                             squeeze=False)
    for ax, (name, M) in zip(axes[0], couplings.items()):
        M = np.asarray(M)
        if order is not None:
            M = M[np.ix_(order, order)]
        ax.imshow(M, cmap="magma_r", vmin=0, vmax=vmax or np.quantile(M, 0.999) or 1,
                  interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("view-2 sample")
        ax.set_ylabel("view-1 sample")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_matched_latents(z, matched: dict, *, coords=(0, 1, 2, 3), names=None, max_points=400,
                         random_state=0):
    """True latent coordinate (x axis) against its matched estimate ``M z`` (y axis)."""
    plt = _plt()
    rng = np.random.default_rng(random_state)
    z = np.asarray(z)
    pick = rng.permutation(len(z))[:max_points]
    fig, axes = plt.subplots(len(matched), len(coords),
                             figsize=(2.2 * len(coords), 2.2 * len(matched)), squeeze=False)
    for r, (name, zhat) in enumerate(matched.items()):
        for c, k in enumerate(coords):
            ax = axes[r, c]
            ax.scatter(z[pick, k], np.asarray(zhat)[pick, k], s=4, alpha=0.5)
            lo, hi = z[:, k].min(), z[:, k].max()
            ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
            ax.set_xlim(lo - 0.05, hi + 0.05)
            ax.set_ylim(lo - 0.05, hi + 0.05)
            if r == len(matched) - 1:
                ax.set_xlabel(f"true {names[k] if names else k}")
            if c == 0:
                ax.set_ylabel(f"{name}\nmatched", fontsize=8)
    fig.tight_layout()
    return fig


def plot_embeddings(emb: dict, labels, *, max_points=3000, random_state=0, legend=True):
    """2-d PCA of each embedding, coloured by label (one panel per embedding)."""
    plt = _plt()
    from sklearn.decomposition import PCA

    labels = np.asarray(labels)
    rng = np.random.default_rng(random_state)
    pick = rng.permutation(len(labels))[:max_points]
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    fig, axes = plt.subplots(1, len(emb), figsize=(4 * len(emb), 3.6), squeeze=False)
    for ax, (name, e) in zip(axes[0], emb.items()):
        xy = PCA(2, random_state=0).fit_transform(np.asarray(e)[pick])
        for k, cls in enumerate(classes):
            m = labels[pick] == cls
            ax.scatter(xy[m, 0], xy[m, 1], s=3, color=cmap(k % cmap.N), label=str(cls))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if legend and len(classes) <= 20:
        axes[0, -1].legend(fontsize=6, markerscale=3, bbox_to_anchor=(1, 1), loc="upper left")
    fig.tight_layout()
    return fig
