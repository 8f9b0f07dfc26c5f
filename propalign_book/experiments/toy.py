r"""A tiny, fast experiment unit: entropic OT matching of two noisy views within groups.

Used by the runner's tests and as a demonstration of the CLI (a sweep of it takes seconds).
Each group :math:`g` has latent points :math:`z_i \sim \mathcal N(\mu_g, I_2)`; the two
views observe them with independent noise, :math:`x^{(m)}_i = z_i + \sigma\varepsilon^{(m)}_i`.
Entropic OT within each group (:func:`propalign_lite.matchers.match_groups`) couples the
views; the record holds the trace (mass on the true partner, mean over groups), the chance
level and the latent MSE of the barycentric projection.
"""
from __future__ import annotations

import time

import numpy as np

from propalign_lite.matchers import PAPER_REG, match_groups
from propalign_lite.metrics import chance_trace, latent_mse, mean_over_groups, per_group, trace
from ._registry import unit

TOY_DEFAULTS = dict(n_groups=3, n_per_group=60, noise=0.3, reg=PAPER_REG, sleep_s=0.0)


def _toy_settings(chapter_settings: dict) -> dict:
    """The toy has no chapter: its size follows the profile's name."""
    profile = chapter_settings["profile"]
    sizes = {"ci": 60, "paper": 300}
    return dict(TOY_DEFAULTS, n_per_group=sizes[profile], profile=profile)


@unit("toy.matching", derive=_toy_settings)
def toy_matching(settings: dict, seed: int) -> dict:
    """One seed of the toy matching experiment.

    ``settings``: ``n_groups``, ``n_per_group``, ``noise`` (:math:`\\sigma`), ``reg`` (the
    entropic regularisation) and optionally ``sleep_s`` (extra seconds of simulated work per
    unit, for demonstrations of the runner).
    """
    s = dict(TOY_DEFAULTS, **settings)
    rng = np.random.default_rng(int(seed))
    n, k = int(s["n_per_group"]), int(s["n_groups"])
    t = np.repeat(np.arange(k), n)
    z = rng.normal(size=(k * n, 2)) + 3.0 * rng.normal(size=(k, 2))[t]
    x1 = z + s["noise"] * rng.normal(size=z.shape)
    x2 = z + s["noise"] * rng.normal(size=z.shape)
    couplings = match_groups(x1, t, x2, t, method="ot", reg=float(s["reg"]))
    if s["sleep_s"]:
        time.sleep(float(s["sleep_s"]))
    traces = per_group(trace, couplings, t)
    return {"trace": mean_over_groups(traces), "chance_trace": chance_trace(couplings),
            "latent_mse": mean_over_groups(per_group(latent_mse, couplings, t, z)),
            "trace_per_group": np.array([traces[g] for g in sorted(traces)])}
