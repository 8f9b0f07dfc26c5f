r"""Units of work of the synthetic-images chapter (Table 1 of the paper).

One unit, :func:`synthetic_seed`, is one training seed: generate the data (a deterministic
function of the settings), train one propensity classifier per view (each view with its own
seed, derived from the unit's seed), compute the logits of the test scenes, match within each
treatment group with every method of Table 1 and score the couplings with the hidden pairing.
It returns a plain *record* (numbers, lists and a few small arrays), so the chapter, a results
store or a Dask worker can handle it without pickling models.

The learning curve of the chapter (PS+OT against the training budget, scenes x epochs) is the
same unit run with other ``n_train`` / ``epochs`` settings; :func:`learning_curve_settings`
builds those settings.

Example
-------
>>> from propalign_book.profiles import get_profile
>>> s = get_profile("synthetic", "ci", n_train=120, n_val=60, n_test=240, epochs=1)
>>> rec = synthetic_seed(s, 1)                                   # doctest: +SKIP
>>> sorted(rec["scores"])                                        # doctest: +SKIP
['PS+OT', 'PS+SNN', 'Rand', 'Uniform']
"""
from __future__ import annotations

import time

import numpy as np

from propalign_lite import metrics
from propalign_lite.classifiers import PropensityClassifier
from propalign_lite.matchers import PAPER_OT, match_groups
from ._data import balls_data, default_device
from ._registry import unit, with_first_seed

#: The matchers of Table 1's propensity-score rows, plus the information-free uniform coupling
#: (every scene matched to its whole group with equal weight: the group-mean prediction).
METHODS = {"PS+OT": PAPER_OT, "PS+SNN": dict(method="snn", k=1),
           "Rand": dict(method="random"), "Uniform": dict(method="uniform")}

DATA_KEYS = ("image_size", "n_train", "n_val", "n_test", "data_seed")


def modality_seeds(seed: int) -> tuple[int, int]:
    """Two independent seeds, one per view's classifier, derived from a unit's ``seed``.

    Distinct seeds give the two classifiers different initial weights *and* different
    mini-batch orders (with one shared seed, the paired rows of both views would be visited in
    the same order, a faint use of the pairing).

    >>> modality_seeds(1) != modality_seeds(2), len(set(modality_seeds(1)))
    (True, 2)
    """
    children = np.random.SeedSequence(int(seed)).spawn(2)
    return tuple(int(c.generate_state(1)[0]) for c in children)


def synthetic_data(settings: dict):
    """``(train, val, test)`` :class:`~propalign_lite.datasets.BallsData` of the settings:
    independent draws seeded by ``data_seed``, ``+1`` and ``+2`` (cached in the process, so
    the units of one worker share them)."""
    missing = [k for k in DATA_KEYS if k not in settings]
    if missing:
        raise KeyError(f"settings lack the key(s) {missing} needed to generate the data")
    return balls_data(settings)


def fit_view(train, val, view: str, settings: dict, seed: int,
             device: str = "cpu") -> PropensityClassifier:
    """The paper's CNN propensity classifier for one view (``"x1"`` or ``"x2"``), in float32
    on every device: bf16 autocast was slower for this small network on an H200 (6.1 against
    4.8 ms a step at 128 px, batch 256; ``benchmarks/gpu_checks.sh``, 2026-12-04)."""
    clf = PropensityClassifier(
        "cnn", epochs=int(settings["epochs"]), batch_size=int(settings["batch_size"]),
        lr=float(settings["lr"]), random_state=seed, device=device)
    return clf.fit(getattr(train, view), train.t, x_val=getattr(val, view), t_val=val.t)


def _summary(clf: PropensityClassifier) -> dict:
    h = clf.history_
    best = clf.best_epoch_ - 1
    return {"best_epoch": int(clf.best_epoch_), "val_accuracy": float(h["val_accuracy"][best]),
            "val_loss": float(h["val_loss"][best]),
            "history": {k: [float(v) for v in h[k]]
                        for k in ("train_loss", "val_loss", "val_accuracy")},
            "train_seconds": float(sum(h["seconds"])), "device": str(clf.device),
            "precision": clf.precision}


def chapter_unit_settings(settings: dict) -> dict:
    """The unit's settings from a chapter's: the seed list and the learning-curve fractions
    removed, ``display_seed`` = the first seed (its record keeps the figures' data)."""
    return with_first_seed(settings, "display_seed", drop=("curve_fractions",))


def _derive(chapter_settings: dict, fraction: float | None = None) -> dict:
    """The unit's settings; with ``fraction``, those of one point of the learning curve."""
    s = chapter_unit_settings(chapter_settings)
    if fraction is None:
        return s
    (curve,) = learning_curve_settings(s, [fraction])
    curve["display_seed"] = None
    return curve


def _variants(chapter_settings: dict) -> list[dict]:
    return [{}] + [{"fraction": f} for f in chapter_settings.get("curve_fractions") or []]


@unit("synthetic.seed", derive=_derive, variants=_variants)
def synthetic_seed(settings: dict, seed: int, *, device: str | None = None) -> dict:
    r"""One seed of Table 1: train both classifiers, match, score.

    Returns a record with ``scores[method] = {"MSE", "Trace"}`` (unweighted means over the 12
    treatment groups), ``chance_trace`` (mean of 1/n over groups), per-view classifier
    summaries (best epoch, validation accuracy and loss, training curves, seconds) and
    timings. For ``seed == settings.get("display_seed")`` it also keeps ``display``, what
    the chapter's figures need (:func:`display_rows`): the logits of 150 test scenes of one
    group and every method's barycentric projection :math:`\hat z = M z` of 2,000 scenes.
    """
    start = time.perf_counter()
    device = device or default_device()
    keep_display = seed == settings.get("display_seed")
    train, val, test = synthetic_data(settings)
    seed1, seed2 = modality_seeds(seed)
    clf1 = fit_view(train, val, "x1", settings, seed1, device)
    clf2 = fit_view(train, val, "x2", settings, seed2, device)
    emb1, emb2 = clf1.logits(test.x1), clf2.logits(test.x2)
    fitted = time.perf_counter()
    record = {"seed": int(seed), "modality_seeds": [seed1, seed2], "scores": {},
              "per_group": {}, "views": {"x1": _summary(clf1), "x2": _summary(clf2)}}
    shown = display_rows(test.t) if keep_display else None
    for name, kw in METHODS.items():
        couplings = match_groups(emb1, test.t, emb2, test.t, random_state=seed, **kw)
        sc = metrics.evaluate_couplings(couplings, test.t, z=test.z)
        record["scores"][name] = {"MSE": float(sc["MSE"]), "Trace": float(sc["Trace"])}
        record["per_group"][name] = {k: {str(g): float(v) for g, v in sc["per_group"][k].items()}
                                     for k in ("MSE", "Trace")}
        if name == "Rand":
            record["chance_trace"] = metrics.chance_trace(couplings)
        if keep_display:
            zh = np.empty_like(test.z)
            for g, M in couplings.items():
                rows = np.flatnonzero(test.t == g)
                zh[rows] = M @ test.z[rows]
            shown.setdefault("zhat", {})[name] = zh[shown["scatter_rows"]].astype(np.float32)
    record["seconds"] = {"fit": fitted - start, "match": time.perf_counter() - fitted}
    if keep_display:
        rows = shown["group_rows"]
        shown.update(emb1=emb1[rows].astype(np.float32), emb2=emb2[rows].astype(np.float32),
                     z_group=test.z[rows], z_scatter=test.z[shown["scatter_rows"]])
        record["display"] = shown
    return record


def exact_unit_settings(settings: dict) -> dict:
    """The settings :func:`synthetic_exact` needs from the chapter's: the test scenes only."""
    return {k: settings[k] for k in ("image_size", "n_test", "data_seed")}


@unit("synthetic.exact", derive=exact_unit_settings)
def synthetic_exact(settings: dict, seed: int = 0) -> dict:
    r"""PS+OT with the *exact* propensity scores of the test scenes: perfect classifiers.

    The scores :math:`P(t \mid x^{(e)})` of both views come from the simulator's model
    (:func:`~propalign_lite.datasets.balls_scores.exact_propensity`: pixel cells of the balls,
    Bayes' rule), not from a trained network, so the unit needs no training and ``seed`` is
    unused (the test scenes are fixed by ``data_seed``, as in :func:`synthetic_seed`). The
    scores (probability vectors) are matched by OT at the paper's ``reg`` 0.05 within each
    treatment group and scored like Table 1. Returns ``scores`` ("Exact PS+OT", "Uniform"),
    ``chance_trace``, ``one_hot`` (fraction of test scenes whose exact score is one-hot, per
    view), ``convergence_warnings`` and ``seconds``.
    """
    import warnings

    from propalign_lite.datasets.balls import sample_latents
    from propalign_lite.datasets.balls_scores import exact_propensity
    from propalign_lite.sinkhorn import ConvergenceWarning

    start = time.perf_counter()
    # the test scenes' latents: make_balls draws them first from the same seed
    z, t, _, _ = sample_latents(int(settings["n_test"]),
                                random_state=int(settings["data_seed"]) + 2)
    size = int(settings["image_size"])
    pi = {v: exact_propensity(z, t, view=v, image_size=size) for v in (1, 2)}
    record = {"seed": int(seed), "scores": {},
              "one_hot": {f"view {v}": float((p.max(1) == 1.0).mean()) for v, p in pi.items()}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for name, kw in (("Exact PS+OT", METHODS["PS+OT"]), ("Uniform", METHODS["Uniform"])):
            couplings = match_groups(pi[1], t, pi[2], t, random_state=0, **kw)
            sc = metrics.evaluate_couplings(couplings, t, z=z)
            record["scores"][name] = {"MSE": float(sc["MSE"]), "Trace": float(sc["Trace"])}
    record["chance_trace"] = metrics.chance_trace(couplings)
    record["convergence_warnings"] = sorted({str(w.message) for w in caught
                                             if issubclass(w.category, ConvergenceWarning)})
    record["seconds"] = time.perf_counter() - start
    return record


def scores_table(records: list[dict]) -> dict:
    """``{method: {"MSE": [per seed], "Trace": [per seed]}}`` from the unit's records (as
    :func:`propalign_book.experiments.citeseq.scores_table` does for Table 2)."""
    return {m: {k: [r["scores"][m][k] for r in records] for k in ("MSE", "Trace")}
            for m in METHODS}


def display_rows(t, *, group: int = 0, n_group: int = 150, n_scatter: int = 2000) -> dict:
    """Which test scenes the chapter's figures show: the first ``n_group`` scenes of treatment
    ``group`` (a coupling figure) and the first ``n_scatter`` scenes (matched latents)."""
    t = np.asarray(t)
    return {"group": int(group), "group_rows": np.flatnonzero(t == group)[:n_group],
            "scatter_rows": np.arange(min(n_scatter, len(t)))}


def learning_curve_settings(settings: dict, fractions) -> list[dict]:
    """Settings for the learning curve: the training scenes scaled by each fraction of
    ``settings["n_train"]`` (rounded to whole scenes, at least one batch), all else equal.

    >>> s = {"n_train": 1000, "batch_size": 100, "epochs": 4}
    >>> [x["n_train"] for x in learning_curve_settings(s, [0.25, 1.0])]
    [250, 1000]
    """
    out = []
    for f in fractions:
        if not 0 < float(f):
            raise ValueError(f"fractions must be positive, got {f!r}")
        s = dict(settings)
        s["n_train"] = max(int(settings["batch_size"]), int(round(float(f) * settings["n_train"])))
        out.append(s)
    return out


def budget(settings: dict) -> int:
    """Training budget of a unit in image passes per view: scenes x epochs."""
    return int(settings["n_train"]) * int(settings["epochs"])


def table1_claims(results: dict, chance: float, exact: dict | None = None) -> list[dict]:
    """The paper's Table-1 findings for the propensity-score rows, each checked on this run.

    ``results[method][metric]`` are per-seed values (methods of :data:`METHODS`), ``chance``
    the mean of 1/n over groups. Each claim is a dict with ``claim``, ``paper`` (the paper's
    numbers), ``ours`` (this run's medians) and ``holds`` (bool), for
    :func:`propalign_book.report.claims_table`. With ``exact`` (a :func:`synthetic_exact`
    record) a last row checks the MSE finding with the exact propensity scores.
    """
    from ..paper import TABLE1

    med = {m: {k: float(np.median(v)) for k, v in r.items()} for m, r in results.items()}
    p_chance = 12 / 20000                      # the paper: 20,000 test scenes in 12 groups
    ot, snn, rand, uni = (med[m] for m in ("PS+OT", "PS+SNN", "Rand", "Uniform"))
    p = {m: {k: TABLE1[m][k][0] for k in ("MSE", "Trace")} for m in ("PS+OT", "PS+SNN", "Rand")}
    return [
        {"claim": "PS+OT has a lower latent MSE than the uniform coupling (it predicts more "
                  "than the group mean)",
         "paper": f"{p['PS+OT']['MSE']:.4f} vs 0.0354 (SCOT, = uniform)",
         "ours": f"{ot['MSE']:.4f} vs {uni['MSE']:.4f}", "holds": ot["MSE"] < uni["MSE"]},
        {"claim": "PS+OT has the lowest latent MSE of PS+OT, PS+SNN, Rand",
         "paper": f"{p['PS+OT']['MSE']:.4f} / {p['PS+SNN']['MSE']:.4f} / {p['Rand']['MSE']:.4f}",
         "ours": f"{ot['MSE']:.4f} / {snn['MSE']:.4f} / {rand['MSE']:.4f}",
         "holds": ot["MSE"] < min(snn["MSE"], rand["MSE"])},
        {"claim": "PS+OT's trace is at least 10 times chance",
         "paper": f"{p['PS+OT']['Trace'] / p_chance:.1f} x chance",
         "ours": f"{ot['Trace'] / chance:.1f} x chance", "holds": ot["Trace"] >= 10 * chance},
        {"claim": "PS+OT has a higher trace than PS+SNN",
         "paper": f"{1e3 * p['PS+OT']['Trace']:.2f} vs {1e3 * p['PS+SNN']['Trace']:.2f} (x 1e-3)",
         "ours": f"{1e3 * ot['Trace']:.2f} vs {1e3 * snn['Trace']:.2f} (x 1e-3)",
         "holds": ot["Trace"] > snn["Trace"]},
        {"claim": "PS+SNN (k = 1) beats a random matching on the trace but not the uniform "
                  "coupling on MSE",
         "paper": f"MSE {p['PS+SNN']['MSE']:.4f} > 0.0354",
         "ours": f"trace {snn['Trace'] / chance:.1f} x chance, MSE {snn['MSE']:.4f} vs "
                 f"{uni['MSE']:.4f}",
         "holds": snn["Trace"] > rand["Trace"] and snn["MSE"] > uni["MSE"]},
    ] + ([] if exact is None else [
        {"claim": "With exact propensity scores (perfect classifiers), PS+OT has a lower "
                  "latent MSE than the uniform coupling",
         "paper": "not tested (the paper's argument for its MSE)",
         "ours": f"{exact['scores']['Exact PS+OT']['MSE']:.4f} vs "
                 f"{exact['scores']['Uniform']['MSE']:.4f}",
         "holds": exact["scores"]["Exact PS+OT"]["MSE"] < exact["scores"]["Uniform"]["MSE"]}])
