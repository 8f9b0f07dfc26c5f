r"""The label-free choice of ``reg`` against the oracle, on every data set of the book
(chapter ``trust``).

Unit ``"trust.autoreg"`` (settings from ``get_profile("trust", profile)``): for each data set of
``autoreg_datasets`` and one training seed, two independently trained classifier pairs --
the pair the coupling is made from and the *check* pair of
:func:`propalign_lite.regselect.select_reg` -- and, at every ``reg`` of ``reg_grid``, the
label-free criterion beside the truth the pairing gives:

``"images"``
    The synthetic balls scenes at the baselines chapter's 32 px settings (``images``, with
    ``n_test`` test scenes); the paper's CNN classifiers; truth: latent MSE (Table 1's
    measure; lower is better) and trace.
``"digits"``
    UCI Multiple Features, views ``digits["pair"]`` (the real-data chapter's split and MLP);
    truth: the second view's features carried onto the first view's digits (median over
    features of Pearson r with the true ones) and trace.
``"sim"``, ``"bmmc"``, ``"mop"``
    The cells of the diagnostics unit (:func:`propalign_book.experiments.trust._dataset`),
    aligned by :func:`propalign_lite.align` with ``reg="auto"`` (which trains the check pair
    itself); truth: the protein / ATAC features carried onto the RNA cells (median r) and
    trace.

For ``"images"`` and ``"digits"`` the check pair differs from the first in its seeds only (the
chapters' fixed training and validation splits); ``align(reg="auto")`` also draws other
validation cells for it.

Traces are ``trace x chance`` (mean over groups of the mass on the true partner times the
group size). The record keeps, per data set, ``regs``, ``cv``, ``cv_uniform``, ``chosen`` and
``truth`` / ``truth_uniform`` (lists over ``regs``); for ``"images"`` and ``"digits"`` also
``groups``: the diagnostics unit's per-group rows at each ``reg`` of ``regs``
(:func:`group_diagnostics`), so the diagnostics are judged on those data sets too.
"""
from __future__ import annotations

import numpy as np

from propalign_lite.matchers import PAPER_REG

from ._registry import unit
from .realdata import recording_warnings


def _truth(couplings: dict, t, *, y=None, z=None) -> dict:
    """Trace x chance, and the transfer r (``y``) or latent MSE (``z``) of ``couplings``."""
    from propalign_lite.metrics import latent_mse, trace
    from .realcells import feature_correlations

    out = {"trace_x": float(np.mean([trace(M) * M.shape[0] for M in couplings.values()]))}
    if z is not None:
        out["mse"] = float(np.mean([latent_mse(M, z[t == g]) for g, M in couplings.items()]))
    if y is not None:
        pred = np.full(y.shape, np.nan)
        for g, M in couplings.items():
            pred[t == g] = np.asarray(M @ y[t == g])
        keep = ~np.isnan(pred[:, 0])
        out["r"] = float(np.median(feature_correlations(pred[keep], y[keep],
                                                        t[keep])["overall"]))
    return out


def _sweep(e1, e2, f1, f2, t, regs, diag_regs=(), **truth_kw) -> dict:
    """The criterion and the truth at every ``reg`` (paired cells: one label vector), and
    the label-free diagnostics per group at each of ``diag_regs``."""
    from propalign_lite.matchers import match_groups
    from propalign_lite.regselect import select_reg

    sel = select_reg(e1, t, e2, t, f1, f2, regs=sorted(set(regs) | set(diag_regs)),
                     keep_couplings=True)
    truths = [_truth(sel.couplings[r], t, **truth_kw) for r in regs]
    uniform = _truth(match_groups(e1, t, e2, t, method="uniform"), t, **truth_kw)
    diag = [row for r in diag_regs
            for row in group_diagnostics(sel.couplings[r], e1, e2, f1, f2, t, r)]
    cv = dict(zip(sel.table.index, sel.table["cv"]))
    chosen = min(regs, key=lambda r: (cv[r], -r))
    return {**_record(regs, [cv[r] for r in regs], sel.uniform, chosen, truths, uniform),
            "groups": diag}


def _record(regs, cv, cv_uniform, chosen, truths, truth_uniform) -> dict:
    """One data set's entry of a ``trust.autoreg`` record: the criterion and the truth (a
    dict per reg) over the grid, the chosen reg and the uniform coupling's values."""
    return {"regs": [float(r) for r in regs], "cv": [float(v) for v in cv],
            "cv_uniform": float(cv_uniform), "chosen": float(chosen),
            "truth": {k: [tr[k] for tr in truths] for k in truths[0]},
            "truth_uniform": truth_uniform}


def group_diagnostics(couplings: dict, e1, e2, f1, f2, t, reg: float) -> list[dict]:
    """Per group of paired data, the rows the diagnostics unit records
    (:func:`propalign_book.experiments.trust.trust_diagnostics`): the truth (trace x chance,
    partner rank) beside effective partners, cycle consistency (the reverse coupling at the
    same ``reg``) and the agreement with the check pair's coupling (``f1``, ``f2``)."""
    from propalign_lite.diagnostics import coupling_agreement, cycle_consistency, effective_partners
    from propalign_lite.matchers import match_groups
    from propalign_lite.metrics import partner_rank, trace

    back = match_groups(e2, t, e1, t, reg=reg, warn=False)
    other = match_groups(f1, t, f2, t, reg=reg, warn=False)
    rows = []
    for g, M in couplings.items():
        n = M.shape[0]
        eff = float(np.median(effective_partners(M)))
        rows.append({"reg": float(reg), "group": str(g), "n": n, "trace_x": trace(M) * n,
                     "rank": partner_rank(M), "effective_partners": eff,
                     "effective_share": eff / n, "cycle": cycle_consistency(M, back[g]),
                     "agreement": coupling_agreement(M, other[g])})
    return rows


def _images(settings: dict, seed: int) -> dict:
    from ._data import balls_data, default_device
    from .synthetic import fit_view, modality_seeds

    s = settings["images"]
    train, val, test = balls_data(s)
    logits = []
    for sd in (seed, seed + 1000):
        s1, s2 = modality_seeds(sd)
        logits += [fit_view(train, val, v, s, k, default_device()).logits(getattr(test, v))
                   for v, k in (("x1", s1), ("x2", s2))]
    e1, e2, f1, f2 = logits
    return _sweep(e1, e2, f1, f2, test.t, settings["reg_grid"], settings["regs"], z=test.z)


def _digits(settings: dict, seed: int) -> dict:
    from .realdata import _classifier, digits_split, standardize
    from .synthetic import modality_seeds

    s = settings["digits"]
    data, tr, va, te = digits_split(s)
    y = data.labels["digit"]
    a, b = s["pair"]
    x = {v: standardize(data.views[v], tr) for v in (a, b)}
    logits = []
    for sd in (seed, seed + 1000):
        for v, k in zip((a, b), modality_seeds(sd)):
            clf = _classifier(s, k).fit(x[v][tr], y[tr], x_val=x[v][va], t_val=y[va])
            logits.append(clf.logits(x[v][te]))
    e1, e2, f1, f2 = logits
    return _sweep(e1, e2, f1, f2, y[te], settings["reg_grid"], settings["regs"],
                  y=x[b][te])


def _cells(settings: dict, name: str, seed: int) -> dict:
    """align(reg="auto") on paired cells, then the truth at every reg of its grid."""
    from propalign_lite import align
    from propalign_lite.matchers import match_groups
    from .trust import _dataset

    r, m, rep2 = _dataset(settings, name)
    cls = dict(width=settings["width"], epochs=settings["epochs"], lr=settings["lr"])
    aln = align(r, m, groupby="cell_type", use_rep1="X_pca", use_rep2=rep2, classifier=cls,
                reg="auto", reg_grid=settings["reg_grid"], random_state=seed)
    y = m.obsm[rep2] if rep2 else m.X
    y = np.asarray(y.toarray() if hasattr(y, "toarray") else y, dtype=float)
    t = r.obs["cell_type"].astype(str).to_numpy()
    keep = np.isin(t, list(aln.couplings_))
    sel = aln.reg_selection_
    truths = [_truth(match_groups(aln.logits1_[keep], t[keep], aln.logits2_[keep], t[keep],
                                  reg=reg, warn=False), t[keep], y=y[keep])
              for reg in sel.table.index]
    uniform = _truth(match_groups(aln.logits1_[keep], t[keep], aln.logits2_[keep], t[keep],
                                  method="uniform"), t[keep], y=y[keep])
    return {**_record(sel.table.index, sel.table["cv"], sel.uniform, sel.reg, truths, uniform),
            "n_groups": len(aln.couplings_)}


@unit("trust.autoreg")
@recording_warnings
def trust_autoreg(settings: dict, seed: int) -> dict:
    """``reg`` chosen without pairs vs the oracle, on every data set (module docstring)."""
    import time

    out = {}
    for name in settings["autoreg_datasets"]:
        start = time.perf_counter()
        if name == "images":
            out[name] = _images(settings, seed)
        elif name == "digits":
            out[name] = _digits(settings, seed)
        else:
            out[name] = _cells(settings, name, seed)
        out[name]["seconds"] = time.perf_counter() - start
    return {"seed": int(seed), "datasets": out}


#: The truth each data set's oracle is chosen by, and whether larger is better.
ORACLE_BY = {"images": ("mse", False), "digits": ("r", True), "sim": ("r", True),
             "bmmc": ("r", True), "mop": ("r", True)}


def autoreg_table(records: list[dict], *, paper_reg: float = PAPER_REG):
    """Per data set and seed: the chosen reg, the oracle reg (best truth over the grid) and
    the truth at each, at the paper's reg and for the uniform coupling."""
    import pandas as pd

    rows = []
    for rec in records:
        for name, d in rec["datasets"].items():
            key, larger = ORACLE_BY[name]
            vals = np.asarray(d["truth"][key])
            regs = np.asarray(d["regs"])
            best = int(np.argmax(vals) if larger else np.argmin(vals))
            at = {r: v for r, v in zip(regs, vals)}
            rows.append({"data set": name, "seed": rec["seed"], "measure": key,
                         "chosen reg": d["chosen"], "oracle reg": float(regs[best]),
                         "at chosen": at[d["chosen"]], "at oracle": float(vals[best]),
                         f"at {paper_reg:g}": at.get(paper_reg, np.nan),
                         "uniform": d["truth_uniform"][key]})
    return pd.DataFrame(rows)
