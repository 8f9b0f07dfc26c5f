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
