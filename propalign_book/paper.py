"""The numbers printed in the paper's Tables 1-3 (NeurIPS 2024), for side-by-side comparison.

Each entry is ``(median, q1, q3)`` over the paper's 10 seeds, or ``(value, None, None)`` for a
single run. These are quoted from the paper, never computed here; the chapters compute their
own numbers and show them next to these.
"""
from __future__ import annotations

import math

# Table 1: synthetic images, latent MSE and trace (trace printed x 1e-3 in the paper; stored as is)
TABLE1 = {
    "SCOT": {"MSE": (0.0354, None, None), "Trace": (0.5964e-3, None, None)},
    "VAE+SNN": {"MSE": (0.0622, 0.0571, 0.0676), "Trace": (3.116e-3, 2.818e-3, 3.213e-3)},
    "VAE+OT": {"MSE": (0.0324, 0.0316, 0.0350), "Trace": (7.733e-3, 7.473e-3, 7.794e-3)},
    "PS+SNN": {"MSE": (0.0552, 0.0530, 0.0558), "Trace": (7.924e-3, 7.569e-3, 9.504e-3)},
    "PS+OT": {"MSE": (0.0316, 0.0300, 0.0330), "Trace": (18.329e-3, 17.068e-3, 18.987e-3)},
    "Rand": {"MSE": (0.0709, 0.0707, 0.0714), "Trace": (math.nan, None, None)},
}

# Table 2: CITE-seq, FOSCTTM (the official code's sampled variant) and trace
TABLE2 = {
    "SCOT": {"FOSCTTM": (0.4596, None, None), "Trace": (0.0200, None, None)},
    "GLUE+SNN": {"FOSCTTM": (0.4412, None, None), "Trace": (0.0362, None, None)},
    "GLUE+OT": {"FOSCTTM": (0.5309, None, None), "Trace": (0.0323, None, None)},
    "VAE+SNN": {"FOSCTTM": (0.3816, 0.3760, 0.3822), "Trace": (0.0612, 0.0588, 0.0634)},
    # the paper prints Q3 = 0.8895 for the VAE+OT trace, a typo for 0.0890 (per-seed values)
    "VAE+OT": {"FOSCTTM": (0.3953, 0.3912, 0.4045), "Trace": (0.0814, 0.0777, 0.8895)},
    "PS+SNN": {"FOSCTTM": (0.3126, 0.3121, 0.3160), "Trace": (0.0941, 0.0880, 0.0989)},
    "PS+OT": {"FOSCTTM": (0.3049, 0.3008, 0.3078), "Trace": (0.1163, 0.1093, 0.1250)},
}

#: Table 2 as the figures draw it: the printed numbers, except the VAE+OT trace's Q3 misprint
#: (0.8895) read as 0.0890, so that one typo does not set the axis of a figure
TABLE2_DRAWN = {method: dict(entry) for method, entry in TABLE2.items()}
TABLE2_DRAWN["VAE+OT"]["Trace"] = (0.0814, 0.0777, 0.0890)

# Table 3: cross-modal prediction R^2 with the naive MSE loss and with the unbiased estimator
TABLE3 = {
    "Rand": {"R2 (MSE)": (0.1383, 0.1372, 0.1402), "R2 (Unbiased)": (0.1727, 0.1701, 0.1731)},
    "VAE+OT": {"R2 (MSE)": (0.1493, 0.1179, 0.1724), "R2 (Unbiased)": (0.1142, 0.0786, 0.1594)},
    "PS+OT": {"R2 (MSE)": (0.2174, 0.2062, 0.2228), "R2 (Unbiased)": (0.2331, 0.2069, 0.2504)},
    "True Pairs": {"R2 (MSE)": (0.2243, 0.2234, 0.2257), "R2 (Unbiased)": (math.nan, None, None)},
}


def format_paper(entry, fmt: str = ".4f", scale: float = 1.0) -> str:
    """``"median (Q1, Q3)"`` for a paper entry; ``"N/A"`` when the paper reports none."""
    med, q1, q3 = entry
    if med is None or (isinstance(med, float) and math.isnan(med)):
        return "N/A"
    if q1 is None:
        return format(med * scale, fmt)
    return f"{med * scale:{fmt}} ({q1 * scale:{fmt}}, {q3 * scale:{fmt}})"
