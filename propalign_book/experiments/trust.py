r"""Judging an alignment without true pairs (chapter ``trust``).

Units (``unit(settings, seed) -> record``, settings from ``get_profile("trust", profile)``):

``"trust.unbalanced"``
    Simulated CITE-seq cells (the own-data chapter's simulator settings), all measured in both
    modalities, so the truth is known. The labels are coarse: the type nearest to the largest
    type (``hidden_type``, by RNA centroid) carries the largest type's label (``host_type``),
    as a subtype a coarse annotation does not name. The protein object then loses the hidden
    subtype and one whole type (``drop_type``, the smallest). The RNA cells of the hidden
    subtype are *orphans*: nothing of their state is left in the protein object. Both objects
    are aligned by :func:`propalign_lite.align`, balanced and unbalanced (each ``reg_m``), with
    the same classifiers. Record, for the host label: the share of its row mass an orphan /
    a partnered cell keeps (1 under balanced OT) and how well it flags orphans (AUC), the mass
    partnered cells put on their true partner (trace), and the correlation of their
    transferred protein with the truth (``runs[name]["host"]``, the orphans being the
    flagged cells); ``align``'s report of the dropped type; and the same measures for the
    halved type (``runs[name]["halved"]``: its RNA cells whose partner was removed are the
    flagged ones). :func:`label_table` makes the chapter's tables.
``"trust.diagnostics"``
    For each data set (``"bmmc"``, ``"mop"`` subsampled to ``mop_cells`` nuclei, ``"sim"``) and
    each ``reg`` of ``regs``: align with classifier seed ``seed`` and again with
    ``seed + 1000``; per matched group, the label-free diagnostics
    (:mod:`propalign_lite.diagnostics`: effective partners, cycle consistency, agreement of the
    two seeds' couplings) beside the truth (trace x chance, partner rank); per run, the
    classifiers' expected calibration error on their held-out cells.
"""
from __future__ import annotations

import numpy as np

from ._registry import unit
from .realdata import recording_warnings


def _simulated_pair(settings: dict):
    """``(rna, prot)`` AnnData of the same simulated cells (RNA PCs in ``obsm["X_pca"]``,
    protein CLR in ``X``), from the own-data chapter's simulator settings."""
    import anndata as ad
    import pandas as pd

    from propalign_lite.datasets import load_cite_seq_simulated

    d = load_cite_seq_simulated(settings["n_cells"], n_pcs=settings["n_pcs"],
                                n_cell_types=settings["n_cell_types"],
                                n_genes=settings["n_genes"], n_proteins=settings["n_proteins"],
                                batches=settings["batches"], random_state=settings["data_seed"])
    obs = pd.DataFrame({"cell_type": pd.Categorical(d.cell_type)},
                       index=[f"c{i}" for i in range(len(d.cell_type))])
    rna = ad.AnnData(np.zeros((len(obs), 0), dtype=np.float32), obs=obs.copy())
    rna.obsm["X_pca"] = d.gex_pca.astype(np.float32)
    prot = ad.AnnData(d.adt.astype(np.float32), obs=obs.copy())
    return rna, prot


@unit("trust.unbalanced")
@recording_warnings
def trust_unbalanced(settings: dict, seed: int) -> dict:
    """Balanced vs unbalanced OT when the protein object lost a type and a hidden subtype."""
    import pandas as pd

    from propalign_lite import align

    rna, prot = _simulated_pair(settings)
    t = rna.obs["cell_type"].astype(str).to_numpy()
    sizes = pd.Series(t).value_counts()
    host = sizes.index[0]                                 # the largest type
    drop = sizes.index[-1]                                # gone from the protein object
    x = rna.obsm["X_pca"]
    centre = {g: x[t == g].mean(0) for g in sizes.index}
    hidden = min((g for g in sizes.index if g not in (host, drop)),
                 key=lambda g: np.linalg.norm(centre[g] - centre[host]))
    halved = next(g for g in sizes.index if g not in (host, drop, hidden))
    labels = np.where(t == hidden, host, t)               # coarse labels: hidden merged in host
    for a in (rna, prot):
        a.obs["label"] = labels
    in_halved = np.flatnonzero(t == halved)
    gone = np.random.default_rng(seed).choice(in_halved, len(in_halved) // 2, replace=False)
    keep = (t != hidden) & (t != drop)
    keep[gone] = False                                    # half of one type's protein cells
    p = prot[keep].copy()
    orphan = t == hidden                                  # RNA cells whose state is gone
    lost = np.zeros(len(t), dtype=bool)
    lost[gone] = True                                     # RNA cells whose partner is gone
    cls = dict(width=settings["width"], epochs=settings["epochs"], lr=settings["lr"])
    base = align(rna, p, groupby="label", use_rep1="X_pca", classifier=cls,
                 reg=settings["reg"], random_state=seed)
    fitted = (base.classifier1_, base.classifier2_)
    out = {"drop_type": drop, "host_type": host, "hidden_type": hidden, "halved_type": halved,
           "n_orphans": int(orphan.sum()), "n_host_rna": int((labels == host).sum()),
           "n_halved": [int(len(in_halved)), int(len(in_halved) - len(gone))],
           "unmatched": {str(k): v for k, v in base.unmatched_.items()}}
    runs = {"balanced": base}
    for rm in settings["reg_ms"]:
        runs[f"unbalanced (reg_m={rm:g})"] = align(
            rna, p, groupby="label", use_rep1="X_pca", classifier=fitted,
            reg=settings["reg"], reg_m=rm, key_added=f"ub{rm:g}", random_state=seed)
    kept_pos = np.flatnonzero(keep)                       # protein row j -> original cell
    res = {}
    for name, aln in runs.items():
        host_s = _label_scores(aln, host, orphan, kept_pos, prot.X, rna)
        half_s = _label_scores(aln, halved, lost, kept_pos, prot.X, rna)
        host_s["unmatched_fraction"] = float(aln.to_df().loc[host, "unmatched mass adata1"])
        res[name] = {"host": host_s, "halved": half_s}
    out["runs"] = res
    return out


def _label_scores(aln, label, flagged, kept_pos, truth, rna) -> dict:
    """For one label's RNA cells: the mass kept by the ``flagged`` cells (no partner of
    their own left in the protein object) and by the others, how well the kept mass flags
    them (AUC), the mass partnered cells put on their true partner (and chance), and the
    transferred protein's median r with the truth, over the partnered and the flagged
    cells."""
    from .realcells import feature_correlations

    M = aln.couplings_[label]
    r_idx, c_idx = aln.index1_[label], aln.index2_[label]
    mass = rna.obs[f"{aln.key_added}_mass"].to_numpy()[r_idx]
    flag = flagged[r_idx]
    col_cell = kept_pos[c_idx]                            # original cell of every column
    partner = {c: j for j, c in enumerate(col_cell)}
    on_true = [M[i, partner[r_idx[i]]] for i in np.flatnonzero(~flag)]
    pred = M @ truth[col_cell]

    def r(rows):
        return float(np.median(feature_correlations(
            pred[rows], truth[r_idx][rows], np.zeros(int(rows.sum())))["overall"]))

    return {"mass_flagged": float(np.mean(mass[flag])),
            "mass_partnered": float(np.mean(mass[~flag])), "auc": _auc(-mass, flag),
            "trace_partnered": float(np.mean(on_true)), "chance": 1.0 / M.shape[1],
            "r_partnered": r(~flag), "r_flagged": r(flag)}


def label_table(records: list[dict], which: str, flagged: str, partnered: str):
    """Medians over seeds of :func:`_label_scores` for ``which`` label (``"host"`` or
    ``"halved"``), one row per run (balanced, each ``reg_m``), the flagged and partnered cells
    named ``flagged`` / ``partnered`` in the column titles."""
    import pandas as pd

    rows = {}
    for name in records[0]["runs"]:
        v = {k: [r["runs"][name][which][k] for r in records]
             for k in records[0]["runs"][name][which]}
        rows[name] = {f"mass kept by {flagged}": np.median(v["mass_flagged"]),
                      f"mass kept by {partnered}": np.median(v["mass_partnered"]),
                      f"{flagged} flagged (AUC)": np.median(v["auc"]),
                      f"trace × chance ({partnered})": np.median(
                          np.divide(v["trace_partnered"], v["chance"])),
                      f"transfer r ({partnered})": np.median(v["r_partnered"]),
                      f"transfer r ({flagged})": np.median(v["r_flagged"])}
        if "unmatched_fraction" in v:
            rows[name]["mass unmatched"] = np.median(v["unmatched_fraction"])
    return pd.DataFrame(rows).T


def _auc(score, positive) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (ties counted half): how well
    a cell's kept mass flags it as an orphan (0.5 = not at all)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _dataset(settings: dict, name: str):
    """``(rna, other, rep2)`` of one data set of the diagnostics unit."""
    if name == "sim":
        rna, prot = _simulated_pair(dict(settings, n_cells=settings["diag_cells"]))
        return rna, prot, None
    from ._data import paired_cells_cached

    r, m = paired_cells_cached(name, None, settings["n_pcs"])
    if name == "mop":
        pick = np.sort(np.random.default_rng(settings["data_seed"]).choice(
            r.n_obs, size=settings["mop_cells"], replace=False))
        return r[pick].copy(), m[pick].copy(), "X_lsi"
    return r.copy(), m.copy(), None


@unit("trust.diagnostics")
@recording_warnings
def trust_diagnostics(settings: dict, seed: int) -> dict:
    """Label-free diagnostics beside the truth, per group, for every data set and reg."""
    from propalign_lite import align
    from propalign_lite.diagnostics import coupling_agreement, cycle_consistency, effective_partners
    from propalign_lite.matchers import match_groups
    from propalign_lite.metrics import partner_rank, trace

    rows, runs = [], []
    cls = dict(width=settings["width"], epochs=settings["epochs"], lr=settings["lr"])
    for name in settings["datasets"]:
        r, m, rep2 = _dataset(settings, name)
        alns = [align(r, m, groupby="cell_type", use_rep1="X_pca", use_rep2=rep2, classifier=cls,
                      reg=settings["regs"][0], key_added=f"k{s}", random_state=s)
                for s in (seed, seed + 1000)]
        cal = alns[0].calibration()
        runs.append({"dataset": name, "ece_rna": float(cal["ECE"].iloc[0]),
                     "ece_mod2": float(cal["ECE"].iloc[1]),
                     "temperature_mod2": float(cal["temperature"].iloc[1])})
        t = r.obs["cell_type"].astype(str).to_numpy()
        groups = sorted(set(alns[0].couplings_) & set(alns[1].couplings_))
        keep = np.isin(t, groups)
        for reg in settings["regs"]:
            # align already matched at regs[0]: its couplings are those of the same groups
            c = [{g: a.couplings_[g] for g in groups} if reg == settings["regs"][0] else
                 match_groups(a.logits1_[keep], t[keep], a.logits2_[keep], t[keep], reg=reg)
                 for a in alns]
            back = match_groups(alns[0].logits2_[keep], t[keep], alns[0].logits1_[keep],
                                t[keep], reg=reg)
            for g in groups:
                M = c[0][g]
                n = M.shape[0]
                eff = float(np.median(effective_partners(M)))
                rows.append({"dataset": name, "reg": reg, "group": g, "n": n,
                             "trace_x": trace(M) * n, "rank": partner_rank(M),
                             "effective_partners": eff, "effective_share": eff / n,
                             "cycle": cycle_consistency(M, back[g]),
                             "agreement": coupling_agreement(M, c[1][g])})
    return {"groups": rows, "runs": runs}
