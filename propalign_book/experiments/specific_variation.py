r"""Ablation: how modality-specific variation moves propensity scores and the VAE.

The paper's model gives each modality factors :math:`U^{(e)}` of its own, and its explanation
of why the VAE loses to propensity scores on CITE-seq is that reconstruction spends capacity
on them while a classifier of the cell type can ignore them. The simulator's
``specific_strength`` scales exactly that variation (RNA programs: cell cycle, mitochondrial
and ribosomal load, dissociation stress; the ADT ambient level; see
:mod:`propalign_lite.datasets.citeseq._programs`). One unit of ``"ablations.specific"`` is one
(strength, seed): simulate the cells, then run the CITE-seq chapter's propensity-score unit
(:func:`~propalign_book.experiments.citeseq.citeseq_seed`) and the baselines chapter's VAE unit
(:func:`~propalign_book.experiments.baselines.vae_cite`) on the same cells, and record PS+OT
and VAE+OT. Settings: the CITE-seq chapter's, with ``simulator.specific_strength`` set, and
the VAE settings of the baselines chapter.
"""
from __future__ import annotations

import copy

from ._registry import unit

METHODS = ("PS+OT", "VAE+OT")
SCORES = ("FOSCTTM", "Trace")


def specific_settings(cite_settings: dict, baseline_settings: dict, strength: float) -> dict:
    """Unit settings for one strength: the CITE-seq chapter's data and classifier settings,
    the simulator's ``specific_strength`` set, and the baselines chapter's VAE settings.

    >>> s = specific_settings({"simulator": {"n_genes": 10}, "seeds": [1]},
    ...                       {"cite_vae_width": 8, "image_vae_seeds": [1]}, 2.0)
    >>> s["cite"]["simulator"]["specific_strength"], "seeds" in s["cite"]
    (2.0, False)
    """
    if not float(strength) >= 0:
        raise ValueError(f"strength must be a number >= 0, got {strength!r}")
    cite = {k: copy.deepcopy(v) for k, v in cite_settings.items() if k != "seeds"}
    cite.setdefault("simulator", {})["specific_strength"] = float(strength)
    cite["detail_seed"] = None
    vae = {k: v for k, v in baseline_settings.items() if k.startswith(("cite_vae", "vae_"))
           and k != "cite_vae_seeds"}
    return {"cite": cite, **vae, "strength": float(strength)}


def _derive(ablations_settings: dict, strength: float) -> dict:
    """One strength's unit settings from the ablations chapter's: the CITE-seq chapter's data
    (``specific_n_cells`` cells when set) and the baselines chapter's VAE, same profile."""
    from ..profiles import get_profile

    profile = ablations_settings["profile"]
    cite = get_profile("citeseq", profile)
    if ablations_settings.get("specific_n_cells"):
        cite["n_cells"] = ablations_settings["specific_n_cells"]
    return specific_settings(cite, get_profile("baselines", profile), strength)


def _variants(ablations_settings: dict) -> list[dict]:
    return [{"strength": s} for s in ablations_settings["specific_strengths"]]


@unit("ablations.specific", derive=_derive, variants=_variants)
def specific_seed(settings: dict, seed: int) -> dict:
    """PS+OT and VAE+OT (FOSCTTM, trace) on cells simulated with ``settings["strength"]``."""
    from .baselines import vae_cite
    from .citeseq import citeseq_seed

    ps = citeseq_seed(settings["cite"], seed)
    vae = vae_cite(settings, seed)
    return {"strength": settings["strength"], "seed": int(seed),
            "scores": {"PS+OT": {k: ps["scores"]["PS+OT"][k] for k in SCORES},
                       "VAE+OT": {k: vae["VAE+OT"][k] for k in SCORES}},
            "val_accuracy": ps["val_accuracy"], "vae_best_epoch": vae["best_epoch"]}


def sweep_table(records: list[dict]):
    """Median over seeds per (strength, method, score) as a tidy DataFrame."""
    import pandas as pd

    rows = [{"strength": r["strength"], "seed": r["seed"], "method": m, "score": k,
             "value": r["scores"][m][k]} for r in records for m in METHODS for k in SCORES]
    df = pd.DataFrame(rows)
    return df.groupby(["strength", "method", "score"], as_index=False)["value"].median()
