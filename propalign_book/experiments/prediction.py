r"""Cross-modal prediction (Table 3): couplings of the training cells, then probe MLPs.

One unit, ``"prediction.seed"``: for one seed, train the two propensity classifiers and the
cross-modal VAE on the training split, couple the training cells within each cell type in
four ways (PS+OT, VAE+OT, random partners, the true pairs), and train the paper's probe MLP
from each coupling with the naive single-partner MSE and with the unbiased two-sample
gradient (:class:`propalign_lite.CrossModalTrainer`). The record holds the validation
:math:`R^2` after the last epoch; for ``settings["detail_seed"]`` also the learning curves
and the other prediction direction (proteins from RNA).

Direction: the official code (``probing.py``) predicts the RNA principal components from
the proteins (``"protein_to_rna"``); Table 3 comes from that code.
"""
from __future__ import annotations

import numpy as np

from propalign_lite.matchers import PAPER_OT

from ._data import cite_data, cite_fingerprint, default_device
from ._registry import unit, with_first_seed

COUPLINGS = ("Rand", "VAE+OT", "PS+OT", "True Pairs")
R2_COLUMNS = ("R2 (MSE)", "R2 (Unbiased)")


def prediction_settings(chapter_settings: dict) -> dict:
    """The unit's settings from the chapter's: ``detail_seed`` = the first of its seeds."""
    return with_first_seed(chapter_settings, "detail_seed")


def within_types(labels, e_adt, e_rna, **match_kwargs):
    """Row-normalised protein x RNA coupling over all cells of ``labels``, zero across types
    (a type with a single cell is matched to itself): a sparse block matrix."""
    from propalign_lite.matchers import block_coupling, match_groups

    couplings = match_groups(e_adt, labels, e_rna, labels, min_group_size=1, **match_kwargs)
    return block_coupling(couplings, labels, labels)


def couplings_for_seed(train, val, settings: dict, seed: int, *, device: str = "cpu") -> dict:
    """The four couplings of the training cells for one seed: ``{"PS+OT", "VAE+OT", "Rand",
    "True Pairs"}`` -> sparse (n_train, n_train) protein x RNA coupling.

    PS+OT: entropic OT (reg 0.05) on the logits of one MLP propensity classifier per
    modality; VAE+OT: on the latents of :class:`~propalign_lite.baselines.CrossModalVAE`
    with the official run's loss weights (alpha 0.1, beta 1, lambda 1e-10).
    """
    from propalign_lite.baselines import CrossModalVAE
    from propalign_lite.classifiers import PropensityClassifier

    clf = {}
    for name, x, x_val in (("adt", train.adt, val.adt), ("rna", train.gex_pca, val.gex_pca)):
        clf[name] = PropensityClassifier(
            "mlp", epochs=settings["clf_epochs"], width=settings["width"], lr=settings["clf_lr"],
            random_state=seed, device=device).fit(x, train.cell_type, x_val=x_val,
                                                  t_val=val.cell_type)
    out = {"PS+OT": within_types(train.cell_type, clf["adt"].logits(train.adt),
                                 clf["rna"].logits(train.gex_pca), **PAPER_OT)}
    vae = CrossModalVAE("mlp", width=settings["width"], epochs=settings["vae_epochs"],
                        lr=settings["clf_lr"], alpha=0.1, beta=1.0, lam=1e-10,
                        random_state=seed, device=device)
    vae.fit(train.adt, train.cell_type, train.gex_pca, train.cell_type,
            x1_val=val.adt, t1_val=val.cell_type, x2_val=val.gex_pca, t2_val=val.cell_type)
    out["VAE+OT"] = within_types(train.cell_type,
                                 vae.transform(train.adt, modality=1, random_state=seed),
                                 vae.transform(train.gex_pca, modality=2, random_state=seed),
                                 **PAPER_OT)
    out["Rand"] = within_types(train.cell_type, train.adt, train.gex_pca, method="uniform")
    out["True Pairs"] = within_types(train.cell_type, train.adt, train.gex_pca,
                                     method="identity")
    return out


def fit_probe(train, val, coupling, settings: dict, seed: int, *, unbiased: bool,
              direction: str, device: str = "cpu"):
    """Train the paper's probe MLP from ``coupling`` (rows: protein cells, columns: RNA
    cells) and return the fitted :class:`~propalign_lite.CrossModalTrainer` (its
    ``history_`` holds the validation R^2 per epoch, on true pairs).

    ``direction="protein_to_rna"`` (the official code) predicts the RNA PCs from the
    proteins: the coupling is transposed and its rows renormalised so that rows index the
    targets; ``"rna_to_protein"`` predicts the proteins from the RNA PCs.
    """
    import torch

    from propalign_lite.trainer import CrossModalTrainer, make_probe_mlp

    if direction == "protein_to_rna":
        inputs, targets, ev_in, ev_out = train.adt, train.gex_pca, val.adt, val.gex_pca
        M = coupling.T.tocsr()
        M = M.multiply(1 / M.sum(axis=1)).tocsr()
    elif direction == "rna_to_protein":
        inputs, targets, ev_in, ev_out = train.gex_pca, train.adt, val.gex_pca, val.adt
        M = coupling
    else:
        raise ValueError(f"direction must be 'protein_to_rna' or 'rna_to_protein', got "
                         f"{direction!r}")
    with torch.random.fork_rng(devices=[]):    # the probe's initial weights; global RNG kept
        torch.manual_seed(seed)
        model = make_probe_mlp(inputs.shape[1], targets.shape[1])
    trainer = CrossModalTrainer(model, unbiased=unbiased, epochs=settings["probe_epochs"],
                                batch_size=500, lr=settings["probe_lr"], weight_decay=5e-4,
                                random_state=seed, device=device)
    return trainer.fit(inputs, targets, M, eval_inputs=ev_in, eval_targets=ev_out)


@unit("prediction.seed", derive=prediction_settings, fingerprint=cite_fingerprint)
def prediction_seed(settings: dict, seed: int) -> dict:
    """One seed of Table 3. Record: ``r2[coupling][column]`` (final validation R^2; the
    unbiased column of the true pairs is ``None``: both estimators coincide there), and for
    the detail seed ``curves["<coupling>|<column>"]`` (R^2 per epoch) and
    ``reverse["<coupling>|<column>"]`` (proteins from RNA, when ``settings["reverse"]``)."""
    device = default_device()
    cite = cite_data(settings)
    train, val = cite.split_view("train"), cite.split_view("val")
    couplings = couplings_for_seed(train, val, settings, seed, device=device)
    detail = seed == settings.get("detail_seed")
    r2 = {c: {col: None for col in R2_COLUMNS} for c in COUPLINGS}
    curves, reverse = {}, {}
    for name in COUPLINGS:
        for unbiased, col in ((False, "R2 (MSE)"), (True, "R2 (Unbiased)")):
            if name == "True Pairs" and unbiased:
                continue        # identical partners: the two estimators coincide
            fit = fit_probe(train, val, couplings[name], settings, seed, unbiased=unbiased,
                            direction="protein_to_rna", device=device)
            r2[name][col] = float(fit.history_[-1]["eval_r2"])
            if detail:
                curves[f"{name}|{col}"] = [float(h["eval_r2"]) for h in fit.history_]
                if settings["reverse"]:
                    rev = fit_probe(train, val, couplings[name], settings, seed,
                                    unbiased=unbiased, direction="rna_to_protein",
                                    device=device)
                    reverse[f"{name}|{col}"] = float(rev.history_[-1]["eval_r2"])
    return {"r2": r2, "curves": curves, "reverse": reverse}


def r2_table(records: list[dict]) -> dict:
    """Per-seed lists ``{coupling: {column: [R^2 per seed]}}`` from the unit's records
    (what :func:`propalign_book.report.comparison_table` takes)."""
    out = {c: {col: [] for col in R2_COLUMNS} for c in COUPLINGS}
    for rec in records:
        for c in COUPLINGS:
            for col in R2_COLUMNS:
                if rec["r2"][c][col] is not None:
                    out[c][col].append(rec["r2"][c][col])
    return out


def prediction_claims(r2: dict) -> dict:
    """The paper's qualitative claims of Table 3, checked on medians over seeds:
    ``{statement: bool}``."""
    med = {n: {c: float(np.median(v)) for c, v in r2[n].items() if v} for n in r2}
    return {
        "PS+OT gives a better predictor than random pairs (naive MSE)":
            med["PS+OT"]["R2 (MSE)"] > med["Rand"]["R2 (MSE)"],
        "PS+OT gives a better predictor than random pairs (unbiased)":
            med["PS+OT"]["R2 (Unbiased)"] > med["Rand"]["R2 (Unbiased)"],
    }


def table3_claims(r2: dict) -> list[dict]:
    """Every qualitative finding of the paper's Table 3, next to this run's medians.

    ``r2[coupling][column]`` are per-seed R^2 values (columns ``"R2 (MSE)"`` and
    ``"R2 (Unbiased)"``). Returns claims for :func:`propalign_book.report.claims_table`.
    """
    from ..paper import TABLE3

    med = {n: {c: float(np.median(v)) for c, v in r2[n].items() if v} for n in r2}
    p = {n: {c: TABLE3[n][c][0] for c in TABLE3[n]} for n in TABLE3}
    mse, unb = "R2 (MSE)", "R2 (Unbiased)"

    def claim(text, a, ca, b, cb):
        return {"claim": text, "paper": f"{p[a][ca]:.4f} vs {p[b][cb]:.4f}",
                "ours": f"{med[a][ca]:.4f} vs {med[b][cb]:.4f}",
                "holds": med[a][ca] > med[b][cb]}

    return [
        claim("PS+OT pairs train a better predictor than random pairs (naive MSE loss)",
              "PS+OT", mse, "Rand", mse),
        claim("PS+OT pairs train a better predictor than random pairs (unbiased loss)",
              "PS+OT", unb, "Rand", unb),
        claim("PS+OT beats VAE+OT (naive MSE loss)", "PS+OT", mse, "VAE+OT", mse),
        claim("PS+OT beats VAE+OT (unbiased loss)", "PS+OT", unb, "VAE+OT", unb),
        claim("the unbiased loss raises PS+OT's R^2 over the naive loss", "PS+OT", unb,
              "PS+OT", mse),
        claim("the unbiased loss raises random pairs' R^2 over the naive loss", "Rand", unb,
              "Rand", mse),
        claim("PS+OT with the unbiased loss beats training on the true pairs", "PS+OT", unb,
              "True Pairs", mse),
    ]
