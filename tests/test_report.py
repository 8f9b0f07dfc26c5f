"""Tests of the report and plot helpers the chapters use to show records."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from propalign_book import paper# noqa: E402
from propalign_book.plots import embeddings_2d, plot_embeddings, sweep_plot  # noqa: E402
from propalign_book.report import (add_recorded_columns, comparison_table,  # noqa: E402
                                   records_note)


def _run(seed, source="computed", **kw):
    return {"_run": dict(unit="u.x", seed=seed, source=source, hardware="box (4 CPUs)",
                         date=f"2026-01-0{seed} 10:00:00 UTC", duration_s=2.0 * seed,
                         commit="abc123", **kw)}


def test_records_note_counts_sources_dates_and_durations():
    note = records_note([_run(1), _run(2, "store"), _run(3, "recorded")])
    assert note.startswith("This page shows 3 record(s) of `u.x` (seeds 1, 2, 3; 1 computed in "
                           "this build, 1 read from the results store, 1 from a recorded run)")
    assert "between 2026-01-01 10:00:00 UTC and 2026-01-03 10:00:00 UTC" in note
    assert "4.0 s per unit (median)" in note and "code abc123" in note
    assert records_note([]) == "This page shows No records."
    stale = [{"differs": ["epochs"]}]
    assert "1 recorded record(s) were made with other settings" in records_note([], stale=stale)


def test_add_recorded_columns_places_them_after_the_paper():
    ours = {"PS+OT": {"R2 (MSE)": [0.5, 0.6]}}
    table = comparison_table(ours, paper.TABLE3, ["R2 (MSE)"])
    out = add_recorded_columns(table, {"PS+OT": {"R2 (MSE)": [0.2, 0.3, 0.4]}}, ["R2 (MSE)"])
    assert list(out.columns) == ["R2 (MSE) (ours)", "R2 (MSE) (paper)", "R2 (MSE) (recorded)"]
    assert out.loc["PS+OT", "R2 (MSE) (recorded)"] == "0.3000 (0.2500, 0.3500)"
    assert out.loc["Rand", "R2 (MSE) (recorded)"] == "-"
    assert "R2 (MSE) (recorded)" not in table            # the input is not modified


def test_embeddings_2d_is_what_plot_embeddings_draws():
    rng = np.random.default_rng(0)
    emb = {"a": rng.normal(size=(50, 5)), "b": rng.normal(size=(50, 3))}
    labels = np.repeat(["x", "y"], 25)
    proj = embeddings_2d(emb, labels, max_points=30)
    assert proj["xy"]["a"].shape == (30, 2) and len(proj["labels"]) == 30
    assert list(proj["classes"]) == ["x", "y"]
    f1 = plot_embeddings(emb, labels, max_points=30)
    f2 = plot_embeddings(proj, None, projected=True)
    for a1, a2 in zip(f1.axes, f2.axes):
        for c1, c2 in zip(a1.collections, a2.collections):
            assert np.array_equal(c1.get_offsets(), c2.get_offsets())


def test_sweep_plot_medians_in_order_of_appearance():
    df = pd.DataFrame({"k": [5, 5, 1, 1], "seed": [0, 1, 0, 1], "Trace": [0.1, 0.3, 0.5, 0.7],
                       "MSE": [1.0, 2.0, 3.0, 4.0]})
    fig, med = sweep_plot(df, "k", xlabel="k", ref=df.groupby("k").mean().reset_index())
    assert list(med.index) == [5, 1] and med.loc[5, "Trace"] == 0.2
    assert len(fig.axes) == 2 and fig.axes[1].get_legend() is not None


def test_findings_show_each_finding_at_once_and_keep_them_in_order(monkeypatch):
    import IPython.display

    from propalign_book.report import Findings

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    finding = Findings()
    finding("T", "more is better")
    finding("reg", "small is sharp")
    assert list(finding) == ["T", "reg"] and finding["reg"] == "small is sharp"
    assert shown == ["**Finding.** more is better", "**Finding.** small is sharp"]


# --- the records each page showed (status page) ------------------------------------------------
from propalign_book.report import (RECORDS_LOG_ENV, log_records,  # noqa: E402
                                   records_summary, records_table)


def _rec(unit="u", seed=0, source="computed", hardware="box (2 CPUs)", key=None):
    return {"x": 1.0, "_run": {"unit": unit, "seed": seed, "key": key or f"{unit}-{seed}",
                               "source": source, "hardware": hardware, "date": "2026-12-02"}}


def test_records_note_logs_what_it_shows_only_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "records.jsonl"
    monkeypatch.delenv(RECORDS_LOG_ENV, raising=False)
    records_note([_rec()])
    assert not log.exists()
    monkeypatch.setenv(RECORDS_LOG_ENV, str(log))
    records_note([_rec(seed=0), _rec(seed=1, source="store")])
    records_note([_rec(seed=0)])          # shown twice on the page: counted once
    records_note([_rec(unit="v", source="recorded", hardware="gpu1 (8 CPUs, GPU NVIDIA H200)")])
    assert records_summary(log) == {"shown": 3, "computed": 1, "store": 1, "recorded": 1,
                                    "hardware": ["box (2 CPUs)",
                                                 "gpu1 (8 CPUs, GPU NVIDIA H200)"]}


def test_records_summary_counts_each_source():
    import tempfile
    from pathlib import Path

    log = Path(tempfile.mkdtemp()) / "r.jsonl"
    log_records([_rec(seed=0), _rec(seed=1, source="store"), _rec(seed=0),
                 _rec(unit="v", source="recorded", hardware="gpu1 (8 CPUs, GPU NVIDIA H200)")], log)
    s = records_summary(log)
    assert (s["shown"], s["computed"], s["store"], s["recorded"]) == (3, 1, 1, 1)
    assert s["hardware"] == ["box (2 CPUs)", "gpu1 (8 CPUs, GPU NVIDIA H200)"]
    assert records_summary(log.with_name("none.jsonl"))["shown"] == 0


def test_records_table_names_this_machine_and_skips_chapters_without_records():
    timings = {"book/a": {"seconds": 1.0, "records": {"shown": 3, "computed": 1, "store": 2,
                                                      "recorded": 0,
                                                      "hardware": ["box (2 CPUs)"]}},
               "book/b": {"seconds": 2.0, "records": {"shown": 1, "computed": 0, "store": 0,
                                                      "recorded": 1,
                                                      "hardware": ["gpu1 (8 CPUs, GPU H200)"]}},
               "book/old": {"seconds": 3.0}}
    df = records_table(timings, this_host="box")
    assert list(df.index) == ["a", "b"]
    assert df.loc["a", "where computed"] == "this machine (2 CPUs)"
    assert df.loc["b", "where computed"] == "gpu1 (8 CPUs, GPU H200)"
    assert df.loc["a", "read from the store"] == 2 and df.loc["b", "recorded runs"] == 1
    # a host whose name only starts like this one is another machine
    assert records_table(timings, this_host="bo").loc["a", "where computed"] == "box (2 CPUs)"
    assert records_table({"book/old": {"seconds": 3.0}}) is None
