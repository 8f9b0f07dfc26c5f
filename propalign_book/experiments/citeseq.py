r"""CITE-seq matching (Table 2, propensity-score rows): one unit per seed.

``"citeseq.seed"`` trains one MLP propensity classifier per modality (protein ADT, RNA PCs)
on the training split, keeps the epoch with the best validation loss, embeds the test cells
by their logits and matches them within every cell type with PS+OT (entropic OT, reg 0.05)
and PS+SNN (k = 1). The record holds the group-averaged FOSCTTM (the official sampled
variant and the barycentric one), the trace, the textbook FOSCTTM of the two embeddings
themselves, and the classifiers' validation accuracy. For ``settings["detail_seed"]`` it
also keeps the per-type metrics, a per-epoch monitor of PS+OT on the validation split during
the protein classifier's training, and a 2-d PCA of both embeddings (for the figures).
"""
from __future__ import annotations

import warnings

from propalign_lite.matchers import PAPER_OT

from ._data import cite_data, cite_fingerprint, default_device
from ._registry import unit, with_first_seed

METHODS = {"PS+OT": PAPER_OT, "PS+SNN": dict(method="snn", k=1)}
SCORES = ("FOSCTTM", "FOSCTTM (barycentric)", "Trace")


def citeseq_settings(chapter_settings: dict) -> dict:
    """The unit's settings from the chapter's: ``detail_seed`` = the first of its seeds."""
    return with_first_seed(chapter_settings, "detail_seed")


def fit_view(x, x_val, train, val, settings: dict, seed: int, *, callback=None,
             device: str = "cpu"):
    """One MLP propensity classifier on one modality of the training cells (labels: cell
    type), validated on the validation cells; returns the fitted classifier."""
    from propalign_lite.classifiers import PropensityClassifier

    clf = PropensityClassifier("mlp", epochs=settings["epochs"], width=settings["width"],
                               batch_size=settings["batch_size"], lr=settings["lr"],
                               random_state=seed, device=device)
    return clf.fit(x, train.cell_type, x_val=x_val, t_val=val.cell_type, callback=callback)


def match_types(e_adt, e_rna, labels, **match_kwargs) -> dict:
    """Match within every cell type; types with fewer than 2 cells are left out (skipped
    quietly: callers report them)."""
    from propalign_lite.matchers import match_groups

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return match_groups(e_adt, labels, e_rna, labels, on_missing="skip", **match_kwargs)


def validation_monitor(rna_clf, val):
    """A per-epoch classifier callback: PS+OT on the validation split, the protein
    classifier being trained against the (already trained) RNA classifier."""
    from propalign_lite import metrics

    e_rna_val = rna_clf.logits(val.gex_pca)

    def monitor(epoch, adt_clf):
        couplings = match_types(adt_clf.logits(val.adt), e_rna_val, val.cell_type, method="ot")
        return metrics.evaluate_couplings(couplings, val.cell_type, x2=e_rna_val,
                                          random_state=0)
    return monitor


@unit("citeseq.seed", derive=citeseq_settings, fingerprint=cite_fingerprint)
def citeseq_seed(settings: dict, seed: int) -> dict:
    """One seed of the propensity-score rows of Table 2 (see the module docstring)."""
    import pandas as pd

    from propalign_lite import metrics
    from ..plots import embeddings_2d

    device = default_device()
    cite = cite_data(settings)
    train, val, test = (cite.split_view(s) for s in ("train", "val", "test"))
    detail = seed == settings.get("detail_seed")
    rna_clf = fit_view(train.gex_pca, val.gex_pca, train, val, settings, seed, device=device)
    adt_clf = fit_view(train.adt, val.adt, train, val, settings, seed, device=device,
                       callback=validation_monitor(rna_clf, val) if detail else None)
    e_adt, e_rna = adt_clf.logits(test.adt), rna_clf.logits(test.gex_pca)
    record = {"scores": {}, "per_group": {}}
    for name, kw in METHODS.items():
        couplings = match_types(e_adt, e_rna, test.cell_type, **kw)
        scores = metrics.evaluate_couplings(couplings, test.cell_type, x2=e_rna,
                                            random_state=seed)
        record["scores"][name] = {k: float(scores[k]) for k in SCORES}
        if detail:
            record["per_group"][name] = scores["per_group"]
    sizes = pd.Series(test.cell_type).value_counts()
    per_type = {g: metrics.foscttm(e_adt[test.cell_type == g], e_rna[test.cell_type == g])
                for g in sizes.index[sizes >= 2]}
    record["textbook_foscttm"] = metrics.mean_over_groups(per_type)
    record["val_accuracy"] = {
        "adt": float(adt_clf.history_["val_accuracy"][adt_clf.best_epoch_ - 1]),
        "rna": float(rna_clf.history_["val_accuracy"][rna_clf.best_epoch_ - 1])}
    if detail:
        h = adt_clf.history_
        record["monitor"] = {"epoch": list(h["epoch"]), "val_loss": list(h["val_loss"]),
                             "FOSCTTM": [c["FOSCTTM"] for c in h["callback"]],
                             "Trace": [c["Trace"] for c in h["callback"]],
                             "best_epoch": int(adt_clf.best_epoch_)}
        record["embedding_2d"] = embeddings_2d({"protein (ADT) classifier logits": e_adt,
                                                "RNA classifier logits": e_rna},
                                               test.cell_type)
    return record


def scores_table(records: list[dict]) -> dict:
    """``{method: {score: [per seed]}}`` from the unit's records."""
    return {m: {k: [r["scores"][m][k] for r in records] for k in SCORES} for m in METHODS}


def citeseq_claims(results: dict, chance_trace: float) -> dict:
    """The paper's qualitative claims of Table 2 (PS rows), on medians over seeds."""
    import numpy as np

    med = {m: np.median(v["FOSCTTM"]) for m, v in results.items()}
    return {"PS+OT has a lower FOSCTTM than PS+SNN": med["PS+OT"] < med["PS+SNN"],
            "PS+OT is far better than chance (FOSCTTM 0.5)": med["PS+OT"] < 0.45,
            "PS+OT has a higher trace than chance":
                np.median(results["PS+OT"]["Trace"]) > 2 * chance_trace}
