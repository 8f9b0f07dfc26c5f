r"""Baselines of Tables 1 and 2 (SCOT, the cross-modal VAE, scGLUE) as experiment units.

Units (all take the settings of :func:`baselines_settings`: the baselines chapter's
settings plus the data settings of the synthetic and CITE-seq chapters, so that every row of
a table is computed on the same test data):

``"baselines.scot_images"`` / ``"baselines.scot_cite"``
    SCOT within every group of the test split (one deterministic run; the seed is the
    subsample seed when groups are capped);
``"baselines.vae_images"`` / ``"baselines.vae_cite"``
    one cross-modal VAE per seed, its sampled test latents matched with OT and SNN;
``"baselines.glue"``
    scGLUE on the CITE-seq counts (one run; the seed is scGLUE's).
"""
from __future__ import annotations

import warnings

import numpy as np

from propalign_lite.matchers import PAPER_OT

from ._data import balls_data, cite_data, cite_fingerprint, default_device
from ._registry import unit

IMAGE_KEYS = ("image_size", "n_train", "n_val", "n_test", "data_seed")
CITE_KEYS = ("data", "n_cells", "n_pcs", "data_seed", "simulator")


def baselines_settings(settings: dict, image_settings: dict, cite_settings: dict) -> dict:
    """The units' settings: the baselines chapter's ``settings`` (seed lists removed: they
    are the units' seeds) with ``images`` and ``cite``, the data settings of the synthetic
    and CITE-seq chapters."""
    s = {k: v for k, v in settings.items() if k not in ("image_vae_seeds", "cite_vae_seeds")}
    s["images"] = {k: image_settings[k] for k in IMAGE_KEYS}
    s["cite"] = {k: cite_settings.get(k) for k in CITE_KEYS}
    return s


def image_settings(settings: dict, profile: str) -> dict:
    """The synthetic data (and PS classifier) settings of the baselines' image rows: the
    synthetic chapter's profile, updated with the baselines profile's ``images`` (if any)."""
    from ..profiles import get_profile

    images = get_profile("synthetic", profile)
    images.update(settings.get("images") or {})
    return images


def _derive(settings: dict) -> dict:
    """The units' settings from the baselines chapter's: the CITE-seq data are those of the
    CITE-seq chapter under the same profile (its records are read back from the store)."""
    from ..profiles import get_profile

    profile = settings["profile"]
    return baselines_settings(settings, image_settings(settings, profile),
                              get_profile("citeseq", profile))


def channels_first(x):
    """(n, S, S, 3) uint8 images -> (n, 3, S, S), the layout of the image VAE."""
    return x.transpose(0, 3, 1, 2)


def pixels(x):
    """(n, S, S, 3) uint8 images -> (n, 3 S^2) floats in [0, 1] for SCOT."""
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


def scot_groups(x1, x2, t, *, epsilon: float, device: str = "cpu", **kwargs):
    """SCOT in every group; returns ``(couplings, notes)`` where ``notes`` lists the groups
    SCOT could not solve (skipped, never hidden: callers print them)."""
    from propalign_lite.baselines import scot_match_groups

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        couplings = scot_match_groups(x1, t, x2, t, on_failure="skip", epsilon=epsilon,
                                      device=None if device == "cpu" else device, **kwargs)
    return couplings, [str(w.message) for w in caught]


def vae_seed_scores(vae, x1, t1, x2, t2, vals: dict, tests: dict, seed: int, *, z=None):
    """Train ``vae`` (an unfitted :class:`~propalign_lite.baselines.CrossModalVAE`), match
    its sampled test latents with OT and SNN within every group and score them.

    The latent noise of the two modalities comes from one generator seeded with ``seed``,
    drawn one after the other (independent draws: one seed for both would leak the pairing).
    Returns ``{"VAE+OT": scores, "VAE+SNN": scores, "best_epoch", "epochs",
    "val_label_ce"}`` (scores without the per-group values).
    """
    from propalign_lite import metrics
    from propalign_lite.matchers import match_groups

    vae = vae.fit(x1, t1, x2, t2, **vals)
    rng = np.random.default_rng(seed)
    e1 = vae.transform(tests["x1"], modality=1, random_state=rng)
    e2 = vae.transform(tests["x2"], modality=2, random_state=rng)
    out = {}
    for name, kw in (("VAE+OT", PAPER_OT),
                     ("VAE+SNN", dict(method="snn", k=1))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # groups with < 2 samples
            c = match_groups(e1, tests["t"], e2, tests["t"], on_missing="skip",
                             random_state=seed, **kw)
        scores = metrics.evaluate_couplings(c, tests["t"], z=z,
                                            x2=None if z is not None else e2,
                                            random_state=seed)
        out[name] = {k: float(v) for k, v in scores.items() if k != "per_group"}
    out.update(best_epoch=int(vae.best_epoch_), epochs=int(vae.epochs),
               val_label_ce=float(vae.history_["val_label_ce"][vae.best_epoch_ - 1]))
    return out


@unit("baselines.scot_images", derive=_derive)
def scot_images(settings: dict, seed: int) -> dict:
    """SCOT on the synthetic test images (pixels in [0, 1]), at most
    ``image_scot_max_per_group`` scenes per group (subsample seed ``seed``); also the
    uniform coupling's scores on all test scenes (a reference row)."""
    from propalign_lite import metrics
    from propalign_lite.baselines.scot import subsample_groups
    from propalign_lite.matchers import match_groups

    _, _, test = balls_data(settings["images"])
    idx = subsample_groups(test.t, settings["image_scot_max_per_group"], random_state=seed)
    couplings, notes = scot_groups(pixels(test.x1[idx]), pixels(test.x2[idx]), test.t[idx],
                                   epsilon=settings["scot_epsilon"], device=default_device())
    scores = metrics.evaluate_couplings(couplings, test.t[idx], z=test.z[idx])
    uniform = metrics.evaluate_couplings(
        match_groups(test.z, test.t, test.z, test.t, method="uniform"), test.t, z=test.z)
    return {"MSE": float(scores["MSE"]), "Trace": float(scores["Trace"]),
            "chance": metrics.chance_trace(couplings), "n_used": int(len(idx)),
            "n_test": int(len(test)), "n_groups": len(couplings), "notes": notes,
            "group_sizes": np.bincount(test.t).tolist(),
            "uniform": {"MSE": float(uniform["MSE"]), "Trace": float(uniform["Trace"])}}


@unit("baselines.vae_images", derive=_derive)
def vae_images(settings: dict, seed: int) -> dict:
    """One image VAE (CNN encoders) trained on the synthetic training split; its test
    latents matched within each treatment (latent MSE and trace)."""
    from propalign_lite.baselines import CrossModalVAE

    train, val, test = balls_data(settings["images"])
    vae = CrossModalVAE(
        "cnn", channels=tuple(settings["image_vae_channels"]),
        epochs=settings["image_vae_epochs"], lr=settings["image_vae_lr"],
        batch_size=settings["vae_batch_size"], alpha=settings["vae_alpha"],
        beta=settings["vae_beta"], lam=settings["vae_lam"], random_state=seed,
        device=default_device())
    return vae_seed_scores(
        vae, channels_first(train.x1), train.t, channels_first(train.x2), train.t,
        dict(x1_val=channels_first(val.x1), t1_val=val.t, x2_val=channels_first(val.x2),
             t2_val=val.t),
        dict(x1=channels_first(test.x1), x2=channels_first(test.x2), t=test.t), seed,
        z=test.z)


def _cite_fp(settings: dict) -> str:
    return cite_fingerprint(settings["cite"])


@unit("baselines.scot_cite", derive=_derive, fingerprint=_cite_fp)
def scot_cite(settings: dict, seed: int) -> dict:
    """SCOT between the proteins and the RNA PCs of the CITE-seq test cells, within each
    cell type (at most ``cite_scot_max_per_group`` cells, subsample seed ``seed``)."""
    import pandas as pd

    from propalign_lite import metrics
    from propalign_lite.baselines.scot import subsample_groups

    test = cite_data(settings["cite"]).split_view("test")
    sizes = pd.Series(test.cell_type).value_counts()
    idx = subsample_groups(test.cell_type, settings["cite_scot_max_per_group"],
                           random_state=seed)
    couplings, notes = scot_groups(test.adt[idx], test.gex_pca[idx], test.cell_type[idx],
                                   epsilon=settings["scot_epsilon"], device=default_device())
    scores = metrics.evaluate_couplings(couplings, test.cell_type[idx],
                                        x2=test.gex_pca[idx], random_state=0)
    return {**{k: float(scores[k]) for k in ("FOSCTTM", "FOSCTTM (barycentric)", "Trace")},
            "chance": metrics.chance_trace(couplings), "n_used": int(len(idx)),
            "n_test": int(len(test)), "n_groups": len(couplings), "notes": notes,
            "type_sizes": {str(k): int(v) for k, v in sizes.items()}}


@unit("baselines.vae_cite", derive=_derive, fingerprint=_cite_fp)
def vae_cite(settings: dict, seed: int) -> dict:
    """One MLP cross-modal VAE on the CITE-seq training split; test latents matched within
    each cell type (FOSCTTM in the RNA latent space, trace)."""
    from propalign_lite.baselines import CrossModalVAE

    cite = cite_data(settings["cite"])
    train, val, test = (cite.split_view(s) for s in ("train", "val", "test"))
    vae = CrossModalVAE(
        "mlp", width=settings["cite_vae_width"], epochs=settings["cite_vae_epochs"],
        lr=settings["cite_vae_lr"], batch_size=settings["vae_batch_size"],
        alpha=settings["vae_alpha"], beta=settings["vae_beta"], lam=settings["vae_lam"],
        random_state=seed, device=default_device())
    return vae_seed_scores(
        vae, train.adt, train.cell_type, train.gex_pca, train.cell_type,
        dict(x1_val=val.adt, t1_val=val.cell_type, x2_val=val.gex_pca, t2_val=val.cell_type),
        dict(x1=test.adt, x2=test.gex_pca, t=test.cell_type), seed)


@unit("baselines.glue", derive=_derive, fingerprint=_cite_fp)
def glue_cite(settings: dict, seed: int) -> dict:
    """scGLUE on the CITE-seq counts (the test-split cells with ``glue_cells="test"``, all
    cells otherwise), scGLUE seed ``seed``; its test latents matched with SNN and OT (RNA
    rows, ADT columns, FOSCTTM in the ADT latent space, as the official code)."""
    import math

    from propalign_lite import metrics
    from propalign_lite.datasets import read_cite_seq, simulate_cite_seq
    from propalign_lite.matchers import match_groups

    with warnings.catch_warnings():
        # importing scglue warns about torch.jit / ignite deprecations (not ours to fix), and
        # its tqdm.auto import warns that ipywidgets is missing (we show no progress bars)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="IProgress not found")
        import scglue
    from propalign_lite.baselines import fit_scglue

    cset = settings["cite"]
    cite = cite_data(cset)
    with warnings.catch_warnings():
        # anndata's repeated gene names, scanpy densifying sparse counts, torch's pin_memory
        # without a GPU, scanpy's leiden backend notice and a pandas deprecation in scglue:
        # none changes the result
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        warnings.filterwarnings("ignore", message="zero-centering a sparse array")
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        warnings.filterwarnings("ignore", message="In the future, the default backend for leiden")
        warnings.filterwarnings("ignore", message="is_categorical_dtype is deprecated")
        if cset["data"] == "geo":
            counts = read_cite_seq()
        else:
            counts = simulate_cite_seq(cset["n_cells"], random_state=cset["data_seed"],
                                       **cset["simulator"])
        if not np.array_equal(counts.obs_names.to_numpy(dtype=str),
                              cite.obs_names.astype(str)):
            raise ValueError("the count matrix and the preprocessed data list other cells")
        in_test = (counts.obs["is_train"].astype(str) == "iid_holdout").to_numpy()
        if settings["glue_cells"] == "test":
            counts = counts[in_test].copy()
            in_test = np.ones(counts.n_obs, dtype=bool)
        epochs = settings["glue_max_epochs"]
        res = fit_scglue(counts, n_pcs=settings["glue_n_pcs"], max_epochs=epochs,
                         fit_kws=None if epochs is None else {
                             "align_burnin": max(1, math.ceil(epochs / 6))},
                         random_state=seed)
    g_rna, g_adt = res.rna[in_test], res.adt[in_test]
    g_t = res.obs["cell_type"].astype(str).to_numpy()[in_test]
    rows = {}
    for name, kw in (("GLUE+SNN", dict(method="snn", k=1)),
                     ("GLUE+OT", PAPER_OT)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # types with < 2 test cells
            c = match_groups(g_rna, g_t, g_adt, g_t, on_missing="skip", **kw)
        scores = metrics.evaluate_couplings(c, g_t, x2=g_adt, random_state=0)
        rows[name] = {k: float(v) for k, v in scores.items() if k != "per_group"}
    return {"rows": rows, "n_cells": int(counts.n_obs), "version": scglue.__version__}


def paper_claims_1(r: dict, chance_scot: float) -> dict:
    """The qualitative statements Table 1 supports, evaluated on one set of medians
    ``r[method] = {"MSE", "Trace"}`` (methods of Table 1; ``chance_scot`` = SCOT's chance
    trace)."""
    return {
        "PS+OT has the lowest latent MSE": min(r, key=lambda m: r[m]["MSE"]) == "PS+OT",
        "PS+OT has the highest trace": max(
            (m for m in r if m != "Rand"), key=lambda m: r[m]["Trace"]) == "PS+OT",
        "OT beats SNN on both embeddings (MSE)": all(
            r[f"{e}+OT"]["MSE"] < r[f"{e}+SNN"]["MSE"] for e in ("PS", "VAE")),
        "PS beats the VAE with either matcher (MSE)": all(
            r[f"PS+{m}"]["MSE"] < r[f"VAE+{m}"]["MSE"] for m in ("OT", "SNN")),
        "SCOT's MSE is below both SNN rows": r["SCOT"]["MSE"] < min(
            r["PS+SNN"]["MSE"], r["VAE+SNN"]["MSE"]),
        "PS+OT's MSE is below the uniform coupling's (half of Rand's)":
            r["PS+OT"]["MSE"] < r["Rand"]["MSE"] / 2,
        "SCOT's trace is within 2x of chance": r["SCOT"]["Trace"] < 2 * chance_scot,
        "every method beats Rand on MSE": all(
            r[m]["MSE"] < r["Rand"]["MSE"] for m in r if m != "Rand"),
    }


def paper_claims_2(r: dict) -> dict:
    """The qualitative statements Table 2 supports, evaluated on one set of medians
    ``r[method] = {"FOSCTTM", "Trace"}``."""
    free = [m for m in r if m == "SCOT" or m.startswith("GLUE")]
    out = {
        "PS+OT has the lowest FOSCTTM": min(r, key=lambda m: r[m]["FOSCTTM"]) == "PS+OT",
        "PS+OT has the highest trace": max(r, key=lambda m: r[m]["Trace"]) == "PS+OT",
        "PS beats the VAE with either matcher (FOSCTTM and trace)": all(
            r[f"PS+{m}"]["FOSCTTM"] < r[f"VAE+{m}"]["FOSCTTM"]
            and r[f"PS+{m}"]["Trace"] > r[f"VAE+{m}"]["Trace"] for m in ("OT", "SNN")),
        "the label-aware methods (PS, VAE) beat the label-free ones on trace": min(
            r[m]["Trace"] for m in r if m not in free) > max(r[m]["Trace"] for m in free),
        "the label-free methods stay near chance (FOSCTTM > 0.4)": all(
            r[m]["FOSCTTM"] > 0.4 for m in free),
    }
    if "GLUE+SNN" in r:
        out["GLUE+SNN has a lower FOSCTTM than GLUE+OT"] = (
            r["GLUE+SNN"]["FOSCTTM"] < r["GLUE+OT"]["FOSCTTM"])
    return out


def per_seed_rows(records: list[dict], names=("VAE+SNN", "VAE+OT")) -> dict:
    """``{name: {score: [per seed]}}`` from VAE unit records."""
    return {n: {k: [r[n][k] for r in records] for k in records[0][n]} for n in names}
