"""Tables and checked statements of the ``realcells`` chapter, from the units' records
(:mod:`propalign_book.experiments.realcells`)."""
from __future__ import annotations

import numpy as np

from propalign_lite.metrics import format_summary

#: score key -> column name (the chance level of each: trace x chance 1, the others 0.5)
SCORE_COLUMNS = {"trace_x": "trace × chance", "foscttm_paper": "FOSCTTM (paper's: sampled)",
                 "foscttm_textbook": "FOSCTTM (textbook: barycentric)",
                 "rank": "partner rank"}
METHOD_ORDER = ("PS+OT", "PS+SNN", "VAE+OT", "SCOT", "Random", "Uniform")


def score_values(records: list[dict], method: str, key: str, *, part: str = "scores") -> list:
    """Per-seed values of one score of one method (``trace_x`` = trace / chance)."""
    out = []
    for r in records:
        if part != "scot" and method not in r[part]:
            continue                       # a baseline run on some seeds only
        s = r[part][method] if part != "scot" else r["scores"]
        out.append(s["trace"] / s["chance"] if key == "trace_x" else s[key])
    return out


def matching_values(records: list[dict], scot: list[dict] | None = None,
                    part: str = "scores") -> dict:
    """``{method: {score key: [per seed]}}`` for the methods in ``records[0][part]`` and SCOT."""
    methods = [m for m in METHOD_ORDER if any(m in r[part] for r in records)]
    out = {m: {k: score_values(records, m, k, part=part) for k in SCORE_COLUMNS}
           for m in methods}
    if scot:
        out["SCOT"] = {k: score_values(scot, "SCOT", k, part="scot") for k in SCORE_COLUMNS}
    return {m: out[m] for m in METHOD_ORDER if m in out}


def matching_table(values: dict, *, paper: dict | None = None):
    """Methods x scores, median (Q1, Q3) over seeds; ``paper`` adds the paper's Table 2
    FOSCTTM (``{method: (median, q1, q3)}``) as a last column."""
    import pandas as pd

    from ..paper import format_paper

    rows = {}
    for m, v in values.items():
        row = {SCORE_COLUMNS[k]: format_summary(v[k], ".2f" if k == "trace_x" else ".3f")
               for k in SCORE_COLUMNS}
        if paper is not None:
            row["paper's FOSCTTM (Table 2, 90k cells)"] = (
                format_paper(paper[m], ".4f") if m in paper else "-")
        rows[m] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def transfer_values(records: list[dict]) -> dict:
    """``{method: {"overall": [per seed], "within": [per seed]}}`` (median r over features)."""
    methods = list(dict.fromkeys(m for r in records for m in r["transfer"]))
    return {m: {k: [r["transfer"][m][k] for r in records if m in r["transfer"]]
                for k in ("overall", "within")} for m in methods}


def transfer_table(values: dict):
    """Methods x (r overall, r within type), median (Q1, Q3) over seeds."""
    import pandas as pd

    return pd.DataFrame.from_dict(
        {m: {"r overall": format_summary(v["overall"], ".3f"),
             "r within type": format_summary(v["within"], ".3f")} for m, v in values.items()},
        orient="index").rename_axis("prediction")


def medians(values: dict) -> dict:
    """The same nested dict with each per-seed list replaced by its median."""
    return {m: {k: float(np.median(v)) for k, v in d.items()} for m, d in values.items()}


def matching_claims(med: dict, name: str) -> list[dict]:
    """What the paper claims about matching (Table 2), checked on one data set's medians."""
    def claim(text, a, b, key, lower=True):
        va, vb = med[a][key], med[b][key]
        return {"claim": f"{name}: {text}", "ours": f"{va:.3f} vs {vb:.3f}",
                "paper": "holds (Table 2, CITE-seq, 90k cells)",
                "holds": va < vb if lower else va > vb}

    out = [claim("PS+OT matches better than chance (paper's FOSCTTM below Random's)",
                 "PS+OT", "Random", "foscttm_paper"),
           claim("PS+OT beats PS+SNN (paper's FOSCTTM)", "PS+OT", "PS+SNN", "foscttm_paper"),
           claim("PS+OT beats PS+SNN (partner rank)", "PS+OT", "PS+SNN", "rank"),
           claim("PS+OT beats VAE+OT (paper's FOSCTTM)", "PS+OT", "VAE+OT", "foscttm_paper"),
           claim("PS+OT beats VAE+OT (partner rank)", "PS+OT", "VAE+OT", "rank")]
    if "SCOT" in med:
        out.append(claim("PS+OT beats SCOT (paper's FOSCTTM)", "PS+OT", "SCOT", "foscttm_paper"))
    return out


def transfer_summary(med: dict) -> dict:
    """Where PS+OT's transfer lands: ``{"between_within": bool, ...}`` for the prose."""
    ps, knn, rnd = (med[k]["within"] for k in ("PS+OT", "paired kNN", "random partner"))
    mean_all, ps_all = med["per-type mean"]["overall"], med["PS+OT"]["overall"]
    return {"ps_within": ps, "knn_within": knn, "random_within": rnd,
            "between_within": rnd < ps < knn, "beats_mean_overall": ps_all > mean_all,
            "ps_overall": ps_all, "mean_overall": mean_all,
            "share_of_knn": (ps - rnd) / (knn - rnd) if knn > rnd else float("nan")}
