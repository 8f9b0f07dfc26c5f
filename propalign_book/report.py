"""Small helpers the chapters use to report: profile banners and paper-vs-ours tables."""
from __future__ import annotations

import json
import os
import platform
from importlib.metadata import version

import numpy as np

from propalign_lite.metrics import format_summary
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
    ``paper[method][metric]`` a ``(median, q1, q3)`` tuple from :mod:`propalign_book.paper`.
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


class Findings(dict):
    """A page's findings: ``findings(key, text)`` shows "**Finding.** text" at once and keeps
    it for the page's summary table (``dict(findings)``)."""

    def __call__(self, key: str, text: str) -> None:
        from IPython.display import Markdown, display

        self[key] = text
        display(Markdown(f"**Finding.** {text}"))


def seed_count(values) -> str:
    """``"1 seed"`` / ``"3 seeds"`` for a list of per-seed values."""
    return f"{np.size(values)} seed{'s' * (np.size(values) > 1)}"


def claims_verdict(claims_ours: dict, claims_paper: dict):
    """Compare the same qualitative statements evaluated on our medians and on the paper's
    table. Returns ``(table, text)``: a DataFrame of yes/no per statement and a Markdown
    sentence counting agreements and naming the statements that differ."""
    import pandas as pd

    agree = [c for c in claims_ours if claims_ours[c] == claims_paper[c]]
    differ = [c for c in claims_ours if claims_ours[c] != claims_paper[c]]
    yes_no = {True: "yes", False: "no"}
    table = pd.DataFrame(
        {"this run": [yes_no[bool(claims_ours[c])] for c in claims_ours],
         "paper's table": [yes_no[bool(claims_paper[c])] for c in claims_ours]},
        index=pd.Index(list(claims_ours), name="statement"))
    text = (f"**Agreement with the paper:** {len(agree)} of {len(claims_ours)} statements "
            "hold (or fail) in both our run and the paper's table")
    text += "." if not differ else (
        "; they differ on: " + "; ".join(
            f"*{c}* ({'true' if claims_ours[c] else 'false'} here, "
            f"{'true' if claims_paper[c] else 'false'} in the paper)" for c in differ) + ".")
    return table, text


def add_recorded_columns(table, recorded: dict, metrics: list[str], *, fmt=".4f",
                         scales: dict | None = None):
    """Add a ``"<metric> (recorded)"`` column after each ``"<metric> (paper)"`` column of a
    :func:`comparison_table`, from ``recorded[method][metric]`` (per-seed values of a
    recorded run, see :mod:`propalign_book.recorded`); methods without values get ``"-"``."""
    scales = scales or {}
    table = table.copy()
    for m in metrics:
        f = fmt.get(m, ".4f") if isinstance(fmt, dict) else fmt
        col = [("-" if not recorded.get(method, {}).get(m)
                else format_summary(recorded[method][m], f, scales.get(m, 1.0)))
               for method in table.index]
        table.insert(list(table.columns).index(f"{m} (paper)") + 1, f"{m} (recorded)", col)
    return table


def records_note(records: list[dict], *, stale: list | None = None) -> str:
    """One sentence per unit saying which records a page shows: how many, computed in this
    build or read from a store (where), on which hardware, when, and how long a unit took.

    ``records`` are what :func:`propalign_book.runner.run_units` (or
    :func:`propalign_book.recorded.recorded_for`) returned, each with its ``"_run"`` entry;
    ``stale`` the second value of ``recorded_for`` (recorded runs that no longer match the
    settings), reported when not empty.

    When the papermill driver runs the chapter (``$PROPALIGN_RECORDS_LOG`` set, see
    :func:`log_records`), the records' provenance is also appended to that log, which the
    status page counts.
    """
    log_records(records)
    by_unit: dict[str, list[dict]] = {}
    for rec in records:
        by_unit.setdefault(rec["_run"]["unit"], []).append(rec["_run"])
    sentences = []
    for unit, runs in by_unit.items():
        seeds = ", ".join(str(r["seed"]) for r in runs)
        origin = []
        for source, label in (("computed", "computed in this build"),
                              ("store", "read from the results store"),
                              ("recorded", "from a recorded run")):
            n = sum(r["source"] == source for r in runs)
            if n:
                origin.append(f"{n} {label}")
        hardware = sorted({str(r.get("hardware", "unknown hardware")) for r in runs})
        dates = sorted(str(r.get("date", "?")) for r in runs)
        when = dates[0] if dates[0] == dates[-1] else f"between {dates[0]} and {dates[-1]}"
        durations = [float(r["duration_s"]) for r in runs if r.get("duration_s") is not None]
        commits = sorted({str(r.get("commit")) for r in runs if r.get("commit")})
        text = (f"{len(runs)} record(s) of `{unit}` (seeds {seeds}; "
                f"{', '.join(origin)}), run on {', '.join(hardware)} {when}")
        if durations:
            text += f", {float(np.median(durations)):.1f} s per unit (median)"
        if commits:
            text += f", code {', '.join(commits)}"
        sentences.append(text + ".")
    if not sentences:
        sentences.append("No records.")
    if stale:
        sentences.append(f"{len(stale)} recorded record(s) were made with other settings and "
                         "are not shown (settings changed: "
                         + "; ".join(", ".join(s["differs"]) for s in stale[:3]) + ").")
    return "This page shows " + " ".join(sentences)


#: environment variable naming the JSON-lines file :func:`records_note` appends to
RECORDS_LOG_ENV = "PROPALIGN_RECORDS_LOG"


def log_records(records: list[dict], path=None) -> int:
    """Append one JSON line per record (its unit, seed, key, source, hardware, date) to
    ``path`` (default ``$PROPALIGN_RECORDS_LOG``; nothing happens when neither is set);
    return the number of lines written. :func:`records_summary` reads the log back."""
    path = path or os.environ.get(RECORDS_LOG_ENV)
    if not path:
        return 0
    fields = ("unit", "seed", "key", "source", "hardware", "host", "date")
    with open(path, "a") as fh:
        for rec in records:
            run = rec["_run"]
            fh.write(json.dumps({k: run.get(k) for k in fields}, default=str) + "\n")
    return len(records)


def records_summary(path) -> dict:
    """Count the records a chapter showed, from the log :func:`log_records` wrote.

    A record shown twice on a page (same unit, seed and key) counts once. Returns
    ``{"shown": n, "computed": n, "store": n, "recorded": n, "hardware": [...]}``, the
    hardware being where the records were computed (each record's ``_run["hardware"]``);
    all zero and empty when the log does not exist (a page that shows no records).

    Example
    -------
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "records.jsonl"
    >>> run = dict(unit="u", key="k", source="computed", hardware="box (2 CPUs)")
    >>> n = log_records([{"_run": dict(run, seed=0)}, {"_run": dict(run, seed=0)},
    ...                  {"_run": dict(run, seed=1, source="store")}], log)
    >>> records_summary(log)
    {'shown': 2, 'computed': 1, 'store': 1, 'recorded': 0, 'hardware': ['box (2 CPUs)']}
    """
    seen = {}
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    seen.setdefault((rec["unit"], rec["seed"], rec["key"]), rec)
    out = {"shown": len(seen)}
    for source in ("computed", "store", "recorded"):
        out[source] = sum(r["source"] == source for r in seen.values())
    out["hardware"] = sorted({str(r.get("hardware") or "unknown hardware")
                              for r in seen.values()})
    return out


def records_table(timings: dict, *, this_host: str | None = None):
    """The status page's table of records per chapter, from ``_timings.json``.

    One row per executed chapter that has a ``"records"`` entry (written by the papermill
    driver from :func:`records_summary`): how many records it showed, how many were computed in
    this build, read from the results store or taken from a recorded run, and where they were
    computed, with this build's machine (``this_host``, default this machine's name) written
    as "this machine". Returns ``None`` when no chapter has records information.

    Example
    -------
    >>> t = {"book/a": {"records": {"shown": 3, "computed": 1, "store": 0, "recorded": 2,
    ...      "hardware": ["box (2 CPUs)", "gpu1 (8 CPUs, GPU NVIDIA H100)"]}}}
    >>> records_table(t, this_host="box").loc["a", "where computed"]
    'this machine (2 CPUs); gpu1 (8 CPUs, GPU NVIDIA H100)'
    """
    import pandas as pd

    host = platform.node() if this_host is None else this_host
    rows = []
    for chapter, entry in timings.items():
        rec = entry.get("records")
        if rec is None:
            continue
        where = ["this machine" + hw[len(host):] if host and hw.startswith(host + " ") else hw
                 for hw in rec["hardware"]]
        rows.append({"page": chapter.removeprefix("book/"), "records shown": rec["shown"],
                     "computed in this build": rec["computed"],
                     "read from the store": rec["store"], "recorded runs": rec["recorded"],
                     "where computed": "; ".join(where) or "-"})
    return pd.DataFrame(rows).set_index("page") if rows else None


def claims_table(claims: list[dict]):
    """The paper's claims next to this run: a DataFrame with the paper's numbers, ours, and a
    verdict, ``"holds"`` / ``"does not hold"`` (or ``"cannot be tested here"`` when a claim's
    ``holds`` is ``None``), plus an optional ``note`` column explaining why."""
    import pandas as pd

    verdict = {True: "holds", False: "does not hold", None: "cannot be tested here"}
    rows = [{"paper's claim": c["claim"], "paper": c.get("paper", "-"),
             "this build": c.get("ours", "-"),
             "verdict": verdict[None if c.get("holds") is None else bool(c["holds"])],
             **({"note": c["note"]} if "note" in c else {})} for c in claims]
    df = pd.DataFrame(rows).set_index("paper's claim")
    return df.fillna("") if "note" in df else df
