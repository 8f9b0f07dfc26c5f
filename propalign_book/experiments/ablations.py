r"""Ablations of the matching pipeline on tabular simulated data, one unit per seed.

``"ablations.seed"`` runs every ablation of the ablations chapter for one training seed on
data from :func:`propalign_lite.datasets.views.make_views` (two injective non-linear views of
a Gaussian latent; one training, validation and test set drawn from the base setting with
``data_seed``, ``+1``, ``+2``):

1. the number of perturbations :math:`T` (classifiers retrained per :math:`T`);
2. the entropic regularisation :math:`\lambda` and exact OT, 3. SNN's :math:`k`, and 4. the
   embedding given to OT -- all on the base classifiers' test logits;
5. validation cross-entropy as a model-selection monitor (per epoch), and the VAE's
   validation loss (per training length);
6. treatments that also shift the modality noise (A1 violated), with exact view scores as a
   reference; 7. training samples per group, and units to match per group.

Each section's rows are lists of dicts (one per setting) ready for a DataFrame; a torch
computation runs on one thread (the small networks are fastest so, and the numbers do not
depend on the machine's thread count).
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np

from propalign_lite.matchers import PAPER_OT

from ._data import default_device
from ._registry import unit

SPLITS = ("train", "val", "test")


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with one torch thread, then restore the previous count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def simulate(S: dict, per_group: int, split: int, **changes):
    """One split of the base simulator (0 train, 1 validation, 2 test) with ``changes`` to
    its options (``n_treatments``, ``treatment_affects_noise``, ...)."""
    from propalign_lite.datasets.views import make_views

    options = dict(n_treatments=S["n_treatments"], latent_dim=S["latent_dim"],
                   noise_dim=S["noise_dim"], shift=S["shift"])
    options.update(changes)
    return make_views(per_group * options["n_treatments"], random_state=S["data_seed"] + split,
                      **options)


def base_splits(S: dict, **changes):
    """Training, validation and test sets of the base setting (with ``changes``)."""
    return tuple(simulate(S, S[f"{s}_per_group"], i, **changes) for i, s in enumerate(SPLITS))


def base_setting(S: dict):
    """What both ablation pages start from: the base splits, the per-seed records of
    ``ablations.seed`` (read from the results store, or computed) and a summary text.

    Returns a namespace with ``train``, ``val``, ``test``, ``records``, ``base`` (``{seed:
    (test logits of view 1, of view 2)}``), ``random_mse`` and ``summary``.
    """
    from types import SimpleNamespace

    from ..runner import run_units

    train, val, test = base_splits(S)
    exact_ce = -val.exact_log_propensity()[np.arange(len(val)), val.t].mean()
    records = run_units("ablations.seed", S, S["seeds"], progress=False)
    lines = []
    unconverged = sorted({m for r in records for m in r.get("convergence_warnings", [])})
    if unconverged:
        lines.append(f"note: {len(unconverged)} matching(s) stopped at max_iter before reaching "
                     "Sinkhorn's tolerance (marginal error > 1e-4; small regularisations or "
                     "early-epoch logits):")
        lines += ["  " + m[:300] for m in unconverged[:5]]
    lines += [f"seed {r['_run']['seed']}: validation cross-entropy {r['val_loss'][0]:.3f} "
              f"(view 1), {r['val_loss'][1]:.3f} (view 2); exact scores {exact_ce:.3f}"
              for r in records]
    lines.append(f"{len(S['seeds'])} seeds in "
                 f"{sum(r['_run']['duration_s'] for r in records):.0f} s (all ablations); test "
                 f"groups of {S['test_per_group']} units (chance trace "
                 f"{1 / S['test_per_group']:.4f})")
    random_mse = records[0]["random_mse"]
    lines.append(f"latent MSE of a random matching: {random_mse:.3f}")
    return SimpleNamespace(train=train, val=val, test=test, records=records,
                           base={r["_run"]["seed"]: tuple(r["test_logits"]) for r in records},
                           random_mse=random_mse, summary="\n".join(lines))


def train_pair(S: dict, train, val, seed: int, *, device: str = "cpu", **overrides):
    """One MLP propensity classifier per view (standardised inputs); returns both.
    ``callback`` (in ``overrides``) is a function of the view name returning the per-epoch
    callback of that view's classifier."""
    from propalign_lite.classifiers import PropensityClassifier

    options = dict(width=S["width"], epochs=S["epochs"], lr=S["lr"], batch_size=S["batch_size"],
                   random_state=seed, standardize=True, device=device)
    options.update(overrides)
    callback = options.pop("callback", None)
    out = []
    for view in ("x1", "x2"):
        cb = None if callback is None else callback(view)
        clf = PropensityClassifier("mlp", **options)
        out.append(clf.fit(getattr(train, view), train.t, x_val=getattr(val, view),
                           t_val=val.t, callback=cb))
    return out


def evaluate(e1, e2, test, **match_kwargs) -> dict:
    """Trace and latent MSE of a within-group matching of the test embeddings (entropic OT
    with reg 0.05 unless ``match_kwargs`` say otherwise)."""
    from propalign_lite import metrics
    from propalign_lite.matchers import match_groups

    options = dict(PAPER_OT)
    options.update(match_kwargs)
    res = metrics.evaluate_couplings(match_groups(e1, test.t, e2, test.t, random_state=0,
                                                  **options), test.t, z=test.z)
    return {"Trace": float(res["Trace"]), "MSE": float(res["MSE"])}


def _logits(S, train, val, test, seed, device):
    clf1, clf2 = train_pair(S, train, val, seed, device=device)
    return clf1.logits(test.x1), clf2.logits(test.x2)


def _matching_sweeps(S, base, test):
    """Sections 2-4 and 7 (units to match) on the base logits of one seed."""
    from propalign_lite.embeddings import EMBEDDINGS, propensity_embedding

    e1, e2 = base
    out = {"reg": [{"reg": reg, **evaluate(e1, e2, test, reg=reg)} for reg in S["regs"]],
           "exact_ot": evaluate(e1, e2, test, method="emd"),
           "snn": [{"k": k, **evaluate(e1, e2, test, method="snn", k=k)} for k in S["snn_k"]],
           "embedding": [{"embedding": kind,
                          **evaluate(propensity_embedding(e1, kind),
                                     propensity_embedding(e2, kind), test)}
                         for kind in EMBEDDINGS],
           "spread": {kind: float(np.median(np.abs(np.diff(propensity_embedding(e1, kind),
                                                           axis=0))))
                      for kind in EMBEDDINGS}}
    rows, rng = [], np.random.default_rng(0)
    for m in S["test_sizes"]:
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(test.t == g))[:m]
                                       for g in range(S["n_treatments"])]))
        rows.append({"test per group": m, **evaluate(e1[keep], e2[keep], test.subset(keep))})
    out["test_size"] = rows
    return out


def _monitor(S, train, val, test, seed, device):
    """Section 5: per-epoch matching of the test logits against the validation CE."""
    def store_logits(view):
        data = getattr(test, view)
        return lambda epoch, clf: clf.logits(data)

    c1, c2 = train_pair(S, train, val, seed, device=device, epochs=S["monitor_epochs"],
                        lr=S["monitor_lr"], callback=store_logits)
    rows = []
    for ep in range(S["monitor_epochs"]):
        ce = (c1.history_["val_loss"][ep] + c2.history_["val_loss"][ep]) / 2
        rows.append({"epoch": ep + 1, "val CE": float(ce),
                     **evaluate(c1.history_["callback"][ep], c2.history_["callback"][ep], test)})
    return rows


def _vae_runs(S, train, val, test, seed, device):
    """Section 5 for the VAE: one run per training length, best validation epoch kept,
    matched on the latent means."""
    from propalign_lite.baselines import CrossModalVAE

    rows = []
    for ep in S["vae_epochs"]:
        vae = CrossModalVAE("mlp", latent_dim=S["vae_latent_dim"], width=S["width"], epochs=ep,
                            lr=S["monitor_lr"], batch_size=S["batch_size"], random_state=seed,
                            device=device)
        vae.fit(train.x1, train.t, train.x2, train.t, x1_val=val.x1, t1_val=val.t,
                x2_val=val.x2, t2_val=val.t)
        b = vae.best_epoch_ - 1
        rows.append({"epochs": ep, "val loss": float(vae.history_["val_loss"][b]),
                     "val treatment CE": float(vae.history_["val_label_ce"][b]),
                     **evaluate(vae.transform(test.x1, 1, sample=False),
                                vae.transform(test.x2, 2, sample=False), test)})
    return rows


def exact_a1_rows(S: dict) -> list[dict]:
    """Section 6 reference: matching on the exact (centred) view scores for every noise
    effect ``a`` (no training: the same for every seed)."""
    from propalign_lite.embeddings import propensity_embedding

    rows = []
    for a in S["noise_effects"]:
        te_a = simulate(S, S["test_per_group"], 2, treatment_affects_noise=a)
        ex = [propensity_embedding(te_a.exact_log_propensity(view=v), "centred") for v in (1, 2)]
        rows.append({"a": a, **evaluate(*ex, te_a)})
    return rows


@unit("ablations.seed")
def ablations_seed(S: dict, seed: int) -> dict:
    """Every ablation of the chapter for one training seed (see :func:`_ablations_seed`).

    Sinkhorn convergence warnings (small regularisations, early-epoch logits) are not lost:
    the record keeps them in ``convergence_warnings`` and the chapter prints them.
    """
    from propalign_lite.sinkhorn import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        rec = _ablations_seed(S, seed)
    rec["convergence_warnings"] = sorted({str(w.message) for w in caught
                                          if issubclass(w.category, ConvergenceWarning)})
    for w in caught:                               # anything else is re-emitted
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return rec


def _ablations_seed(S: dict, seed: int) -> dict:
    """Every ablation of the chapter for one training seed (see the module docstring).

    Record: ``val_loss`` (best validation CE of the base pair's two classifiers),
    ``test_logits`` (the base pair's test logits, float32), ``random_mse``, and one list of
    rows per section: ``T``, ``reg``, ``exact_ot``, ``snn``, ``embedding``, ``spread``,
    ``monitor``, ``vae``, ``A1``, ``A1_exact`` (the same for every seed), ``train_size``,
    ``test_size``.
    """
    device = default_device()
    with one_torch_thread():
        train, val, test = base_splits(S)
        clf1, clf2 = train_pair(S, train, val, seed, device=device)
        base = (clf1.logits(test.x1), clf2.logits(test.x2))
        rec = {"val_loss": [float(min(clf1.history_["val_loss"])),
                            float(min(clf2.history_["val_loss"]))],
               "test_logits": [np.asarray(base[0], dtype=np.float32),
                               np.asarray(base[1], dtype=np.float32)],
               "random_mse": evaluate(*base, test, method="random")["MSE"]}
        rows = []
        for T in S["T_values"]:
            tr_T, va_T, te_T = base_splits(S, n_treatments=T + 1)
            logits = base if T + 1 == S["n_treatments"] else _logits(S, tr_T, va_T, te_T, seed,
                                                                      device)
            rows.append({"T": T, **evaluate(*logits, te_T)})
        rec["T"] = rows
        rec.update(_matching_sweeps(S, base, test))
        rec["monitor"] = _monitor(S, train, val, test, seed, device)
        rec["vae"] = _vae_runs(S, train, val, test, seed, device)
        rows = []
        for a in S["noise_effects"]:
            tr_a, va_a, te_a = base_splits(S, treatment_affects_noise=a)
            logits = base if a == 0 else _logits(S, tr_a, va_a, te_a, seed, device)
            rows.append({"a": a, **evaluate(*logits, te_a)})
        rec["A1"] = rows
        rec["A1_exact"] = exact_a1_rows(S)
        rows = []
        for n_g in S["train_sizes"]:
            logits = base if n_g == S["train_per_group"] else _logits(
                S, simulate(S, n_g, 0), val, test, seed, device)
            rows.append({"train per group": n_g, **evaluate(*logits, test)})
        rec["train_size"] = rows
    return rec


def section_frame(records: list[dict], section: str):
    """The rows of ``section`` of every seed's record as one DataFrame with a ``seed``
    column (seeds in the order of ``records``)."""
    import pandas as pd

    return pd.DataFrame([{**row, "seed": r["_run"]["seed"]} for r in records
                         for row in r[section]])
