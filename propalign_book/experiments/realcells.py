r"""Real cells: the paper's own CITE-seq cells and SNARE-seq nuclei (chapter ``realcells``).

Two real data sets whose cells were measured *paired*
(:func:`~propalign_lite.datasets.load_bmmc_cite`, 600 bone-marrow cells, RNA + 134 proteins;
:func:`~propalign_lite.datasets.load_mop_snare`, 10,309 motor-cortex nuclei, RNA +
chromatin accessibility). The pairing is hidden from every method and used only to score.
Modality 1 is RNA (its PCs); modality 2 is protein (CLR) or accessibility (LSI).

Units (``unit(settings, seed) -> record``; ``settings["dataset"]`` is ``"bmmc"`` or ``"mop"``):

``"realcells.matching"``
    All cells, as a user with these two objects would run it: :func:`propalign_lite.align`
    (its default MLP classifiers, trained in-sample with a stratified 20 % validation split;
    groups = cell type; types with fewer than ``min_cells`` cells are skipped and reported),
    then, within cell type, PS+OT (``reg``), PS+SNN (k = ``snn_k``) on the same logits,
    VAE+OT (:class:`~propalign_lite.baselines.CrossModalVAE` on all cells; only for the seeds
    in ``vae_seeds``, if given, as in the other units), random one-to-one
    partners and the uniform coupling; for MOp also within cell type x sample (``batch``).
``"realcells.scot"``
    SCOT within cell type, on at most ``scot_max_per_group`` cells per type (``seed`` draws
    the subsample); deterministic otherwise.
``"realcells.transfer"``
    The unpaired use: cells dealt into two halves A and B within every type (seeded); RNA of
    A is aligned with modality 2 of B (no true partner exists) and modality 2 is transferred
    onto A's cells; scored against A's own measurement. References: the per-type mean of B
    (= the uniform coupling), one random B partner of the same type, and a paired
    reference, k-nearest-neighbour regression (``knn_k``) trained on B's *true* pairs.
``"realcells.prediction"`` (BMMC)
    Table 3's analogue: couplings of the ``is_train`` cells (uniform within type = "Rand",
    VAE+OT, PS+OT, true pairs), a probe MLP from proteins to RNA PCs trained with the naive
    MSE and the unbiased loss, :math:`R^2` on the other cells' true pairs.

Scores (unweighted means over the matched groups): ``trace`` and its chance level
:math:`\operatorname{mean}_g 1/n_g`; ``foscttm_paper`` -- one partner sampled per cell and the
FOSCTTM measured in the method's own modality-2 space (logits, VAE latents, the data for
methods without an embedding), as the official code does; ``foscttm_textbook`` -- the
barycentric projection :math:`M x^{(2)}` against :math:`x^{(2)}` in one fixed space for every
method (modality 2's data), ties counted half; ``rank`` -- the partner rank (0.5 chance).
"""
from __future__ import annotations

import time

import numpy as np

from propalign_lite.metrics import (chance_trace, foscttm, foscttm_coupling, mean_over_groups, partner_rank,
                       per_group, trace)
from ._data import default_device
from ._registry import unit
from .realdata import recording_warnings

MATCH_METHODS = ("PS+OT", "PS+SNN", "VAE+OT", "Random", "Uniform")
REP2 = {"bmmc": "X", "mop": "X_lsi"}


def paired_cells(settings: dict):
    """``(rna, mod2)`` AnnData of ``settings["dataset"]`` (cached per process), read from
    ``settings["data_dir"]`` or the default places of
    :func:`~propalign_lite.datasets._fetch.fetch_files`."""
    from ._data import paired_cells_cached

    return paired_cells_cached(settings["dataset"], settings.get("data_dir"),
                               settings["n_pcs"])


def realcells_fingerprint(settings: dict) -> str:
    """The published SHA-256 sums of the data set's files (part of the store key)."""
    import hashlib

    from propalign_lite.datasets.paired_cells import PAIRED_SETS

    name = {"bmmc": "bmmc_cite_subset", "mop": "mop_snare"}[settings["dataset"]]
    joined = "".join(f.sha256 for f in PAIRED_SETS[name])
    return f"{name}-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


def rep(a, key) -> np.ndarray:
    """``a.X`` (``key="X"``, densified) or ``a.obsm[key]`` as float32."""
    x = a.X if key == "X" else a.obsm[key]
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)


def _align(r, m, settings: dict, seed: int):
    from propalign_lite import align

    return align(r, m, groupby="cell_type", use_rep1="X_pca", use_rep2=REP2[settings["dataset"]],
                 reg=settings["reg"], classifier=settings["classifier"],
                 min_group_size=settings["min_cells"], small_groups="skip", random_state=seed,
                 device=default_device())


def _runs_vae(settings: dict, seed: int) -> bool:
    """Whether this seed trains the VAE baseline (``settings["vae_seeds"]``; all if absent)."""
    seeds = settings.get("vae_seeds")
    return seeds is None or int(seed) in {int(s) for s in seeds}


def _vae_latents(x1, t1, x2, t2, settings: dict, seed: int):
    from propalign_lite.baselines import CrossModalVAE

    v = settings["vae"]
    vae = CrossModalVAE("mlp", width=v["width"], latent_dim=v["latent_dim"], epochs=v["epochs"],
                        lr=v["lr"], batch_size=v["batch_size"], alpha=0.1, beta=1.0, lam=1e-10,
                        random_state=seed, device=default_device())
    vae.fit(x1, t1, x2, t2)
    rng = np.random.default_rng(seed)
    return vae.transform(x1, modality=1, random_state=rng), vae.transform(x2, modality=2,
                                                                          random_state=rng)


def coupling_scores(couplings: dict, t, *, own2, data2, seed: int) -> dict:
    """Trace, its chance level, both FOSCTTMs and the partner rank of paired couplings (see
    the module docstring); ``own2`` is the method's modality-2 space, ``data2`` the fixed one."""
    rng = np.random.default_rng(seed)
    fos_p = per_group(foscttm_coupling, couplings, t, own2, how="sample", random_state=rng)
    fos_t = per_group(lambda M, x: foscttm(x, M @ x, ties="half"), couplings, t, data2)
    return {"trace": mean_over_groups(per_group(trace, couplings, t)),
            "chance": chance_trace(couplings),
            "foscttm_paper": mean_over_groups(fos_p), "foscttm_textbook": mean_over_groups(fos_t),
            "rank": mean_over_groups(per_group(partner_rank, couplings, t))}


def _match(e1, e2, t, groups, **kw):
    from propalign_lite.matchers import match_groups

    keep = np.isin(t, groups)
    out = match_groups(e1[keep], t[keep], e2[keep], t[keep], **kw)
    return out, keep


def dataset_settings(chapter_settings: dict, dataset: str) -> dict:
    """A unit's settings: the chapter's shared settings, the data set's own block merged in,
    ``dataset`` set and the list of seeds removed."""
    from ._registry import unit_settings

    if dataset not in ("bmmc", "mop"):
        raise ValueError(f"dataset must be 'bmmc' or 'mop', got {dataset!r}")
    shared = {k: v for k, v in unit_settings(chapter_settings).items()
              if k not in ("bmmc", "mop")}
    return {**shared, **chapter_settings[dataset], "dataset": dataset}


def _both_datasets(chapter_settings: dict) -> list[dict]:
    return [{"dataset": d} for d in ("bmmc", "mop")]


@unit("realcells.matching", derive=dataset_settings, variants=_both_datasets,
      fingerprint=realcells_fingerprint)
@recording_warnings
def realcells_matching(settings: dict, seed: int) -> dict:
    """All cells matched within type by every method (see the module docstring)."""
    r, m = (a.copy() for a in paired_cells(settings))
    seconds = {}
    start = time.perf_counter()
    aln = _align(r, m, settings, seed)
    seconds["align (classifiers + PS+OT)"] = time.perf_counter() - start
    groups = sorted(aln.couplings_)
    t = r.obs["cell_type"].astype(str).to_numpy()
    x1, x2 = rep(r, "X_pca"), rep(m, REP2[settings["dataset"]])
    e1, e2 = aln.logits1_, aln.logits2_
    keep = np.isin(t, groups)
    tk = t[keep]
    rng = np.random.default_rng(seed)
    ot = dict(method="ot", reg=settings["reg"])
    couplings = {"PS+OT": dict(aln.couplings_),
                 "PS+SNN": _match(e1, e2, t, groups, method="snn", k=settings["snn_k"])[0],
                 "Random": _match(x1, x2, t, groups, method="random", random_state=rng)[0],
                 "Uniform": _match(x1, x2, t, groups, method="uniform")[0]}
    own = {"PS+OT": e2[keep], "PS+SNN": e2[keep]}
    if _runs_vae(settings, seed):
        start = time.perf_counter()
        z1, own["VAE+OT"] = _vae_latents(x1[keep], tk, x2[keep], tk, settings, seed)
        couplings["VAE+OT"] = _match(z1, own["VAE+OT"], tk, groups, **ot)[0]
        seconds["VAE"] = time.perf_counter() - start
    out = {name: coupling_scores(couplings[name], tk, own2=own.get(name, x2[keep]),
                                 data2=x2[keep], seed=seed)
           for name in MATCH_METHODS if name in couplings}
    record = {"scores": out, "groups": groups, "n_cells": int(keep.sum()),
              "unmatched": {str(g): why for g, why in aln.unmatched_.items()},
              "accuracy": {k: float((c.classes_[e.argmax(1)] == t)[keep].mean())
                           for k, c, e in (("rna", aln.classifier1_, e1),
                                           ("mod2", aln.classifier2_, e2))},
              "type_sizes": {g: int((t == g).sum()) for g in np.unique(t)}}
    if "batch" in settings.get("also_within", ()):
        tb = np.char.add(np.char.add(t, " | "), r.obs["batch"].astype(str).to_numpy())
        sub = {}
        for name, kw in (("PS+OT", ot), ("PS+SNN", dict(method="snn", k=settings["snn_k"])),
                         ("Random", dict(method="random", random_state=rng)),
                         ("Uniform", dict(method="uniform"))):
            u1, u2 = (e1, e2) if name.startswith("PS") else (x1, x2)
            c, k2 = _match(u1, u2, tb, np.unique(tb[keep]), min_group_size=2,
                           on_missing="skip", **kw)
            sub[name] = coupling_scores(c, tb[k2], own2=u2[k2], data2=x2[k2], seed=seed)
            sub[name]["n_groups"] = len(c)
        record["within_batch"] = sub
    record["seconds"] = seconds
    return record


@unit("realcells.scot", derive=dataset_settings, variants=_both_datasets,
      fingerprint=realcells_fingerprint)
@recording_warnings
def realcells_scot(settings: dict, seed: int) -> dict:
    """SCOT within cell type on a per-type subsample (``seed`` draws it)."""
    from propalign_lite.baselines.scot import scot_match_groups, subsample_groups
    from propalign_lite.groups import resolve_groups

    r, m = paired_cells(settings)
    t = r.obs["cell_type"].astype(str).to_numpy()
    shared = resolve_groups(t, t, min_group_size=settings["min_cells"])[2]   # align's rule
    ok = np.isin(t, list(shared))
    idx = np.flatnonzero(ok)[subsample_groups(t[ok], settings["scot_max_per_group"],
                                              random_state=seed)]
    x1, x2 = rep(r, "X_pca")[idx], rep(m, REP2[settings["dataset"]])[idx]
    start = time.perf_counter()
    c = scot_match_groups(x1, t[idx], x2, t[idx], on_failure="skip", on_missing="skip",
                          epsilon=settings["scot_epsilon"])
    kept = np.isin(t[idx], list(c))
    scores = coupling_scores(c, t[idx][kept], own2=x2[kept], data2=x2[kept], seed=seed)
    return {"scores": scores, "n_groups": len(c), "n_cells": int(kept.sum()),
            "seconds": time.perf_counter() - start}


def halves(t, rng) -> np.ndarray:
    """Boolean mask of half A: every type's cells dealt alternately into A and B in random
    order (A gets the extra cell of an odd type)."""
    t = np.asarray(t)
    a = np.zeros(len(t), dtype=bool)
    for g in np.unique(t):
        rows = rng.permutation(np.flatnonzero(t == g))
        a[rows[::2]] = True
    return a


def feature_correlations(pred, truth, t) -> dict:
    """Per-feature Pearson r of ``pred`` with ``truth`` over cells: ``"overall"`` and
    ``"within"`` (both centred on their per-type means first). A constant prediction has
    r = 0 (it says nothing about the feature's variation)."""
    def cors(p, y):
        p, y = p - p.mean(0), y - y.mean(0)
        den = np.sqrt((p ** 2).sum(0) * (y ** 2).sum(0))
        return np.divide((p * y).sum(0), den, out=np.zeros(p.shape[1]), where=den > 1e-12)

    def centred(x):
        x = np.array(x, dtype=float)
        for g in np.unique(t):
            x[t == g] -= x[t == g].mean(0)
        return x

    return {"overall": cors(np.asarray(pred, float), np.asarray(truth, float)),
            "within": cors(centred(pred), centred(truth))}


@unit("realcells.transfer", derive=dataset_settings, variants=_both_datasets,
      fingerprint=realcells_fingerprint)
@recording_warnings
def realcells_transfer(settings: dict, seed: int) -> dict:
    """Modality 2 transferred onto RNA cells that were never measured in it (see the module
    docstring). Record: per method the median over features of r overall / within type."""
    from sklearn.neighbors import KNeighborsRegressor

    from propalign_lite.matchers import match_groups

    r, m = paired_cells(settings)
    rng = np.random.default_rng(seed)
    t = r.obs["cell_type"].astype(str).to_numpy()
    a = halves(t, rng)
    ra, mb = r[a].copy(), m[~a].copy()
    key2 = REP2[settings["dataset"]]
    aln = _align(ra, mb, settings, seed)
    groups = sorted(aln.couplings_)
    ta, tb = t[a], t[~a]
    ia, ib = np.isin(ta, groups), np.isin(tb, groups)
    x1a, x1b = rep(ra, "X_pca"), rep(r[~a], "X_pca")
    ya, yb = rep(m[a], key2), rep(mb, key2)
    if settings.get("transfer_features"):          # e.g. the leading LSI components only
        ya, yb = ya[:, :settings["transfer_features"]], yb[:, :settings["transfer_features"]]

    def within(e1, e2, **kw):
        c = match_groups(e1[ia], ta[ia], e2[ib], tb[ib], **kw)
        return _scatter(c, ta, yb, tb, ya.shape)

    ot = dict(method="ot", reg=settings["reg"])
    preds = {"PS+OT": _scatter(aln.couplings_, ta, yb, tb, ya.shape),
             "PS+SNN": within(aln.logits1_, aln.logits2_, method="snn", k=settings["snn_k"])}
    if _runs_vae(settings, seed):
        z1, z2 = _vae_latents(x1a[ia], ta[ia], yb[ib], tb[ib], settings, seed)
        z1f, z2f = np.zeros((len(ta), z1.shape[1])), np.zeros((len(tb), z2.shape[1]))
        z1f[ia], z2f[ib] = z1, z2
        preds["VAE+OT"] = within(z1f, z2f, **ot)
    preds["per-type mean"] = within(x1a, yb, method="uniform")
    preds["random partner"] = within(x1a, yb, method="random", random_state=rng)
    preds["paired kNN"] = KNeighborsRegressor(n_neighbors=settings["knn_k"]).fit(
        x1b, yb).predict(x1a)
    for reg in settings.get("extra_regs", []):
        preds[f"PS+OT (reg {reg:g})"] = within(aln.logits1_, aln.logits2_, method="ot", reg=reg)
    out = {}
    for name, p in preds.items():
        cor = feature_correlations(p[ia], ya[ia], ta[ia])
        out[name] = {k: float(np.median(v)) for k, v in cor.items()}
    return {"transfer": out, "n_target": int(ia.sum()), "n_source": int(ib.sum()),
            "n_features": int(ya.shape[1]), "groups": groups,
            "unmatched": {str(g): why for g, why in aln.unmatched_.items()}}


def _scatter(couplings, ta, yb, tb, shape) -> np.ndarray:
    """Barycentric projections ``M_g @ y_B[g]`` placed at the A cells of every group."""
    out = np.full(shape, np.nan)
    for g, M in couplings.items():
        out[ta == g] = M @ yb[tb == g]
    return out


@unit("realcells.prediction", derive=dataset_settings,
      variants=lambda s: [{"dataset": "bmmc"}], fingerprint=realcells_fingerprint)
@recording_warnings
def realcells_prediction(settings: dict, seed: int) -> dict:
    """Table 3's analogue on the BMMC cells (see the module docstring): ``r2[coupling][loss]``
    on the held-out cells' true pairs (``is_train`` False), proteins -> RNA PCs."""
    from types import SimpleNamespace

    from propalign_lite.matchers import block_coupling, match_groups
    from .prediction import COUPLINGS, R2_COLUMNS, fit_probe

    if settings["dataset"] != "bmmc":
        raise ValueError("realcells.prediction runs on the BMMC cells (dataset='bmmc')")
    r, m = paired_cells(settings)
    is_train = r.obs["is_train"].astype(bool).to_numpy()
    rt, mt = r[is_train].copy(), m[is_train].copy()
    aln = _align(rt, mt, settings, seed)
    groups = sorted(aln.couplings_)
    t = rt.obs["cell_type"].astype(str).to_numpy()
    keep = np.isin(t, groups)
    tk = t[keep]
    x_rna, x_adt = rep(rt, "X_pca")[keep], rep(mt, "X")[keep]

    def blocks(e_adt, e_rna, **kw):          # rows: protein cells, columns: RNA cells
        return block_coupling(match_groups(e_adt, tk, e_rna, tk, **kw), tk, tk)

    couplings = {"PS+OT": blocks(aln.logits2_[keep], aln.logits1_[keep], method="ot",
                                 reg=settings["reg"]),
                 "Rand": blocks(x_adt, x_rna, method="uniform"),
                 "True Pairs": blocks(x_adt, x_rna, method="identity")}
    if _runs_vae(settings, seed):
        z_rna, z_adt = _vae_latents(x_rna, tk, x_adt, tk, settings, seed)
        couplings["VAE+OT"] = blocks(z_adt, z_rna, method="ot", reg=settings["reg"])
    train = SimpleNamespace(adt=x_adt, gex_pca=x_rna)
    val = SimpleNamespace(adt=rep(m[~is_train], "X"), gex_pca=rep(r[~is_train], "X_pca"))
    r2 = {c: {col: None for col in R2_COLUMNS} for c in COUPLINGS}
    for name in (c for c in COUPLINGS if c in couplings):
        for unbiased, col in ((False, "R2 (MSE)"), (True, "R2 (Unbiased)")):
            if name == "True Pairs" and unbiased:
                continue                       # one partner per row: the losses coincide
            fit = fit_probe(train, val, couplings[name], settings, seed, unbiased=unbiased,
                            direction="protein_to_rna", device=default_device())
            r2[name][col] = float(fit.history_[-1]["eval_r2"])
    return {"r2": r2, "n_train": int(keep.sum()), "n_eval": int((~is_train).sum()),
            "groups": groups}
