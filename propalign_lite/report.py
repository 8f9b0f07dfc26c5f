"""Small helpers the chapters use to report: profile banners and paper-vs-ours tables."""
from __future__ import annotations

import platform
from importlib.metadata import version

import numpy as np

from .metrics import format_summary
from .paper import format_paper


def profile_banner(settings: dict, *, data: str) -> str:
    """Markdown note stating which profile and which data rendered the page."""
    items = ", ".join(f"`{k}={v}`" for k, v in settings.items() if k != "profile")
    import torch

    return (f"```{{note}}\nThis page was executed with the **`{settings['profile']}`** profile "
            f"on **{data}**.\n\nSettings: {items}.\n\nSoftware: Python "
            f"{platform.python_version()}, torch {torch.__version__}, POT {version('pot')}, "
            f"numpy {np.__version__}; device: CPU ({torch.get_num_threads()} threads).\n```")


def comparison_table(ours: dict, paper: dict, metrics: list[str], *, fmt=".4f",
                     scales: dict | None = None, missing: str = "not run"):
    """A table with, for every method (row) and metric, our median (Q1, Q3) and the paper's.

    ``ours[method][metric]`` is a list of per-seed values (or a single value);
    ``paper[method][metric]`` a ``(median, q1, q3)`` tuple from :mod:`propalign_lite.paper`.
    ``scales[metric]`` multiplies both (e.g. ``1e3`` for the paper's trace x 1e-3 column);
    ``fmt`` is one format spec or a dict ``{metric: spec}``; ``missing`` fills our cells for
    methods not run on the page.
    """
    import pandas as pd

    scales = scales or {}
    rows = []
    for method in dict.fromkeys(list(ours) + list(paper)):
        row = {"method": method}
        for m in metrics:
            s = scales.get(m, 1.0)
            f = fmt.get(m, ".4f") if isinstance(fmt, dict) else fmt
            vals = ours.get(method, {}).get(m)
            row[f"{m} (ours)"] = (missing if vals is None or np.size(vals) == 0
                                  else format_summary(vals, f, s))
            p = paper.get(method, {}).get(m)
            row[f"{m} (paper)"] = "-" if p is None else format_paper(p, f, s)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def save_results(chapter: str, results: dict, settings: dict, directory="_results") -> str:
    """Write a chapter's per-seed results (JSON) so that later chapters can reuse them.

    The baselines chapter reads them to put its rows next to the propensity-score rows
    computed on the same data. Returns the path written.
    """
    import json
    from pathlib import Path

    path = Path(directory) / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"settings": settings, "results": results}
    path.write_text(json.dumps(payload, indent=1, default=float))
    return str(path)


def load_results(chapter: str, directory="_results") -> dict:
    """Read what :func:`save_results` wrote; a clear error if the chapter has not run."""
    import json
    from pathlib import Path

    path = Path(directory) / f"{chapter}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: execute the {chapter!r} chapter first "
                                f"(python -m propalign_lite.book --only {chapter})")
    return json.loads(path.read_text())
