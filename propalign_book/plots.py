"""Figures shown by the chapters (seaborn on matplotlib). Each function returns the figure.

Importing this module sets the book's one look (:func:`use_book_style`): seaborn's
``whitegrid`` theme and its colour-blind-safe ``colorblind`` palette, so every chapter that
plots (they all import this module) draws in the same style, set once.
"""
from __future__ import annotations

import numpy as np

#: seaborn's colour-blind-safe palette, the book's one palette
PALETTE = "colorblind"
#: colour of the paper's values on every figure (the palette's vermilion)
PAPER_COLOUR = "#d55e00"


def use_book_style() -> None:
    """Set the book's theme: seaborn ``whitegrid``, the ``colorblind`` palette, small fonts."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.85,
                  rc={"figure.dpi": 100, "savefig.bbox": "tight", "axes.titlesize": 10})


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

    ``histories`` maps a name to a classifier (with ``history_`` and ``best_epoch_``) or to
    a record's summary of one (a dict with ``history`` and ``best_epoch``).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k, (name, clf) in enumerate(histories.items()):
        if isinstance(clf, dict):
            h, best = clf["history"], int(clf["best_epoch"])
        else:
            h, best = clf.history_, clf.best_epoch_
        epochs = list(range(1, len(h["train_loss"]) + 1))
        colour = f"C{k}"
        ax.plot(epochs, h["train_loss"], "--", color=colour, label=f"{name} train")
        if h["val_loss"]:
            ax.plot(epochs, h["val_loss"], "-", color=colour, label=f"{name} validation")
            ax.plot(best, h["val_loss"][best - 1], "o", color=colour)
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


def embeddings_2d(emb: dict, labels, *, max_points=3000, random_state=0) -> dict:
    """What :func:`plot_embeddings` draws: the 2-d PCA of each embedding on a random
    subsample of at most ``max_points`` rows. Returns ``{"xy": {name: (m, 2) array},
    "labels": labels of the m rows, "classes": all classes}`` -- small enough to keep in an
    experiment record; draw it with ``plot_embeddings(proj, None, projected=True)``."""
    from sklearn.decomposition import PCA

    labels = np.asarray(labels)
    rng = np.random.default_rng(random_state)
    pick = rng.permutation(len(labels))[:max_points]
    return {"xy": {name: PCA(2, random_state=0).fit_transform(np.asarray(e)[pick])
                   for name, e in emb.items()},
            "labels": labels[pick], "classes": np.unique(labels)}


def plot_embeddings(emb: dict, labels, *, max_points=3000, random_state=0, legend=True,
                    projected=False):
    """2-d PCA of each embedding, coloured by label (one panel per embedding).

    With ``projected=True``, ``emb`` is the output of :func:`embeddings_2d` (``labels`` is
    ignored) and is drawn as it is.
    """
    plt = _plt()
    proj = emb if projected else embeddings_2d(emb, labels, max_points=max_points,
                                               random_state=random_state)
    emb, labels, classes = proj["xy"], np.asarray(proj["labels"]), np.asarray(proj["classes"])
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    fig, axes = plt.subplots(1, len(emb), figsize=(4 * len(emb), 3.6), squeeze=False)
    for ax, (name, xy) in zip(axes[0], emb.items()):
        xy = np.asarray(xy)
        for k, cls in enumerate(classes):
            m = labels == cls
            ax.scatter(xy[m, 0], xy[m, 1], s=3, color=cmap(k % cmap.N), label=str(cls))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if legend and len(classes) <= 20:
        axes[0, -1].legend(fontsize=6, markerscale=3, bbox_to_anchor=(1, 1), loc="upper left")
    fig.tight_layout()
    return fig


def sweep_plot(df, x, *, xlabel, logx=False, ref=None, title=""):
    """Trace and latent MSE against the setting ``x`` of an ablation sweep.

    ``df`` has one row per (setting, seed) with columns ``x``, ``"Trace"`` and ``"MSE"``:
    each seed is drawn as a dot and the median over seeds as a line; ``ref`` (a DataFrame
    with the same columns) is drawn dashed, e.g. the exact scores. Returns ``(fig, med)``,
    ``med`` the medians per setting (in order of first appearance).
    """
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.3))
    med = df.groupby(x, sort=False)[["Trace", "MSE"]].median()
    for a, metric in zip(ax, ("Trace", "MSE")):
        a.plot(df[x], df[metric], ".", color="C0", alpha=0.4)
        a.plot(med.index, med[metric], "o-", color="C0", label="trained classifiers")
        if ref is not None:
            a.plot(ref[x], ref[metric], "s--", color="C3", label="exact scores")
        a.set(xlabel=xlabel, ylabel=f"{metric} ({'higher' if metric == 'Trace' else 'lower'}"
              " is better)")
        if logx:
            a.set_xscale("log")
    if ref is not None:
        ax[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, med


def plot_learning_curve(curve, *, ci, uniform_mse: float, paper: dict, xlabel: str = ""):
    """PS+OT against training budget: trace (in multiples of chance) and latent MSE.

    ``curve`` is a DataFrame with one row per unit: ``budget`` (scenes x epochs per view),
    ``trace_x_chance`` and ``mse``; ``ci`` a dict with the chapter's point (``budget`` and
    per-seed lists ``trace_x_chance`` and ``mse``, drawn as median with Q1-Q3 bars);
    ``paper`` a dict with the paper's ``budget``, ``trace_x_chance`` and ``mse``. Chance
    (trace 1x) and the uniform coupling's MSE are drawn as reference lines.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "trace_x_chance", "PS+OT trace / chance"),
                           (axes[1], "mse", "PS+OT latent MSE")):
        ax.plot(curve["budget"], curve[key], "o-", color="C0", label="this build (1 seed each)")
        vals = np.asarray(ci[key], dtype=float)
        med, q1, q3 = np.median(vals), np.quantile(vals, 0.25), np.quantile(vals, 0.75)
        ax.errorbar([ci["budget"]], [med], yerr=[[med - q1], [q3 - med]], fmt="s", color="C3",
                    ms=7, capsize=3, label="ci profile (median, Q1-Q3)")
        ax.plot([paper["budget"]], [paper[key]], "*", color="k", ms=12,
                label="paper (128 px, 100 epochs)")
        if key == "trace_x_chance":
            ax.axhline(1.0, color="grey", ls=":", label="chance")
            ax.axhline(10.0, color="grey", ls="--", lw=0.8, label="10 x chance")
            ax.set_yscale("log")
        else:
            ax.axhline(uniform_mse, color="C2", ls="--", label="uniform coupling")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel or "training budget: scenes x epochs (per view)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7, loc="upper left")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def plot_seeds(values: dict, key: str, *, ax, label: str, ref: float | None = None,
               paper: dict | None = None, paper_label: str = "paper"):
    """One row per method: every seed's value of ``values[method][key]`` as a dot and the
    median as a bar (seaborn strip + point plots); ``ref`` draws a dotted reference line
    (chance), ``paper`` = ``{method: (median, q1, q3)}`` marks the paper's values."""
    import numpy as np
    import pandas as pd
    import seaborn as sns

    long = pd.DataFrame([{"method": m, label: v} for m, vs in values.items() for v in vs[key]])
    sns.stripplot(data=long, y="method", x=label, ax=ax, alpha=0.6, size=5)
    sns.pointplot(data=long, y="method", x=label, ax=ax, estimator=np.median, errorbar=None,
                  linestyle="none", marker="|", markersize=18, color="k")
    if paper:
        shown = [m for m in values if m in paper]
        ax.scatter([paper[m][0] for m in shown], [list(values).index(m) for m in shown],
                   marker="x", color="tab:red", s=60, zorder=5, label=paper_label)
        ax.legend(loc="lower right", fontsize=8)
    if ref is not None:
        ax.axvline(ref, ls=":", color="grey")
    return ax


def _long_seeds(ours: dict, metric: str, order: list, scale: float):
    import pandas as pd

    return pd.DataFrame([{"method": m, "value": scale * float(v)} for m in order
                         for v in np.atleast_1d(ours.get(m, {}).get(metric, []))
                         if np.isfinite(v)], columns=["method", "value"])


def _paper_mark(entry, scale: float):
    """``(median, q1, q3)`` of a paper entry scaled, q1/q3 = median for a single run; ``None``
    when the paper reports no value."""
    if entry is None or entry[0] is None or not np.isfinite(entry[0]):
        return None
    med = scale * float(entry[0])
    q1, q3 = ((med, med) if entry[1] is None else (scale * float(entry[1]),
                                                   scale * float(entry[2])))
    return med, q1, q3


def comparison_figure(ours: dict, paper: dict, metrics: list[str], *, labels=None,
                      refs=None, order=None, scales=None, paper_label: str = "paper",
                      ours_label=None, width: float = 4.6):
    """The picture of a :func:`~propalign_book.report.comparison_table`: one panel per metric,
    one row per method; each seed of this build is a dot, its median a black bar with the
    (Q1, Q3) range as a line, and the paper's median and (Q1, Q3) a vermilion diamond and
    line just below, on the same axis.

    ``ours[method][metric]`` is a list of per-seed values, ``paper[method][metric]`` a
    ``(median, q1, q3)`` tuple (methods only in ``paper`` get a row with the paper's mark
    alone, so the reader sees what was not run here); ``labels[metric]`` names an axis;
    ``refs[metric]`` maps a reference's name to its value, drawn as a labelled vertical line
    (chance, the uniform coupling), in the drawn units. ``order`` fixes the rows (default:
    ``ours`` then ``paper``'s other methods). ``scales[metric]`` multiplies the values before
    drawing: one number for both, or ``(ours_scale, paper_scale)`` (e.g. a trace divided by
    each run's own chance level). Returns the figure.

    Example
    -------
    >>> fig = comparison_figure({"PS+OT": {"Trace": [0.2, 0.3, 0.25]}},
    ...                         {"PS+OT": {"Trace": (0.3, 0.28, 0.31)}}, ["Trace"],
    ...                         refs={"Trace": {"chance": 0.01}})
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['PS+OT']
    """
    import seaborn as sns

    plt = _plt()
    labels, refs, scales = labels or {}, refs or {}, scales or {}
    order = list(order or dict.fromkeys([*ours, *paper]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(width * len(metrics),
                                                       0.55 * len(order) + 1.3),
                             squeeze=False, sharey=True)
    styles = [":", "--", "-."]
    for ax, metric in zip(axes[0], metrics):
        scale = scales.get(metric, 1.0)
        scale_ours, scale_paper = scale if isinstance(scale, (tuple, list)) else (scale, scale)
        long = _long_seeds(ours, metric, order, scale_ours)
        y = {m: i for i, m in enumerate(order)}
        if len(long):
            sns.stripplot(data=long, x="value", y="method", order=order, ax=ax, size=5,
                          alpha=0.55, jitter=0.12, color="C0", zorder=2)
            for m, vals in long.groupby("method")["value"]:
                q1, med, q3 = np.quantile(vals, [0.25, 0.5, 0.75])
                ax.plot([q1, q3], [y[m]] * 2, color="k", lw=1.5, zorder=3)
                ax.plot([med], [y[m]], marker="|", color="k", ms=16, mew=2.2, zorder=4,
                        label=ours_label or "this build: median, Q1-Q3")
        for m in order:
            p = _paper_mark(paper.get(m, {}).get(metric), scale_paper)
            if p is None:
                continue
            med, q1, q3 = p
            ax.plot([q1, q3], [y[m] + 0.3] * 2, color=PAPER_COLOUR, lw=1.5, zorder=3)
            ax.plot([med], [y[m] + 0.3], marker="D", color=PAPER_COLOUR, ms=6, zorder=4,
                    label=paper_label)
        for k, (name, value) in enumerate(refs.get(metric, {}).items()):
            ax.axvline(value, color="grey", ls=styles[k % len(styles)], lw=1, label=name,
                       zorder=1)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set(xlabel=labels.get(metric, metric), ylabel="")
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best", framealpha=0.9)
    fig.tight_layout()
    return fig


use_book_style()
