"""The book's figures: every figure cell of a chapter carries a name, a caption and real
alternative text (MyST-NB cell metadata), the text refers to figures that exist, result
tables have their figure, the comparison figure draws what it is given, and the browser
check flags figures a reader cannot use."""
import ast
import importlib.util
import re
from pathlib import Path

import jupytext
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from propalign_book import paper, plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("*.py"))
#: chapters that print a result table compared with the paper or between methods
TABLE_CHAPTERS = ("synthetic", "citeseq", "prediction", "baselines", "realdata", "realcells")
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?([^`>]+)>?`")


def _figure_cells(path):
    nb = jupytext.read(path)
    return [c for c in nb.cells if c.cell_type == "code" and "plt.show()" in c.source], nb


def _figure_meta(cell):
    meta = cell.metadata.get("mystnb", {})
    return meta.get("figure", {}), meta.get("image", {})


def test_every_figure_cell_has_a_name_a_caption_and_alternative_text():
    names = []
    for path in CHAPTERS:
        cells, _ = _figure_cells(path)
        for cell in cells:
            where = f"{path.name}: {cell.source.splitlines()[0][:60]}"
            figure, image = _figure_meta(cell)
            assert figure.get("name", "").startswith(f"fig-"), where
            assert len(figure.get("caption", "")) >= 40, where
            alt = image.get("alt", "")
            assert len(alt) >= 40 and not re.search(r"\.(png|jpe?g|svg)$", alt), where
            names.append(figure["name"])
    assert len(names) >= 40
    assert len(names) == len(set(names)), "figure names must be unique across the book"


def test_a_figure_cell_shows_its_figure_and_nothing_else():
    # MyST-NB wraps every display output of a cell with figure metadata in the figure (and
    # gives each the same label): a table or a Markdown display there would be captioned
    for path in CHAPTERS:
        cells, _ = _figure_cells(path)
        for cell in cells:
            body = "\n".join(line for line in cell.source.splitlines()
                             if not line.lstrip().startswith("#"))
            assert body.count("plt.show()") == 1, f"{path.name}: {body[:80]}"
            assert "display(" not in body, f"{path.name}: {body[:80]}"
            last = ast.parse(body).body[-1]        # a bare last expression is displayed too
            if isinstance(last, ast.Expr):
                assert ast.unparse(last.value).startswith(("plt.show(", "print(")), \
                    f"{path.name}: {ast.unparse(last)}"


def test_numbered_references_point_at_figures_of_the_same_chapter():
    for path in CHAPTERS:
        cells, nb = _figure_cells(path)
        names = {_figure_meta(c)[0].get("name") for c in cells}
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for target in NUMREF.findall(text):
            assert target in names, f"{path.name}: {{numref}} to unknown figure {target!r}"


def test_every_result_table_has_its_figure_with_the_papers_values():
    for name in TABLE_CHAPTERS:
        cells, nb = _figure_cells(ROOT / "book" / f"{name}.py")
        drawn = [c for c in cells if "comparison_figure(" in c.source]
        assert drawn, f"{name}: no comparison figure beside its result table"
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for cell in drawn:
            assert _figure_meta(cell)[0]["name"] in NUMREF.findall(text), name


def test_comparison_figure_draws_seeds_medians_quartiles_and_the_papers_mark():
    ours = {"PS+OT": {"Trace": [0.1, 0.2, 0.3, 0.4, 0.5]}, "Rand": {"Trace": [0.05] * 3}}
    fig = plots.comparison_figure(ours, {"PS+OT": {"Trace": (0.6, 0.55, 0.7)},
                                         "SCOT": {"Trace": (0.02, None, None)}},
                                  ["Trace"], scales={"Trace": (10.0, 2.0)},
                                  refs={"Trace": {"chance": 0.3}})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["PS+OT", "Rand", "SCOT"]
    dots = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections])
    assert sorted(dots) == pytest.approx(sorted([1, 2, 3, 4, 5, 0.5, 0.5, 0.5]))
    lines = {(tuple(np.round(line.get_xdata(), 6)), tuple(np.round(line.get_ydata(), 6)))
             for line in ax.get_lines()}
    assert ((2.0, 4.0), (0.0, 0.0)) in lines            # our Q1-Q3 of PS+OT, scaled by 10
    assert ((3.0,), (0.0,)) in lines                    # our median
    assert ((1.1, 1.4), (0.3, 0.3)) in lines            # the paper's Q1-Q3, scaled by 2
    assert ((1.2,), (0.3,)) in lines                    # the paper's median, below the row
    assert ((0.04,), (2.3,)) in lines                   # SCOT: the paper's single run
    assert ((0.3, 0.3), (0.0, 1.0)) in lines            # chance
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["this build: median, Q1-Q3", "paper", "chance"]


def test_comparison_figure_skips_what_the_paper_does_not_report():
    fig = plots.comparison_figure({"Rand": {"Trace": [0.1]}}, {"Rand": {"Trace": (np.nan, None,
                                                                                  None)}},
                                  ["Trace"])
    assert not [line for line in fig.axes[0].get_lines() if line.get_marker() == "D"]


def test_the_drawn_table2_differs_from_the_printed_one_only_by_the_misprint():
    for method, entry in paper.TABLE2.items():
        for metric, value in entry.items():
            drawn = paper.TABLE2_DRAWN[method][metric]
            if (method, metric) == ("VAE+OT", "Trace"):
                assert drawn[2] < 0.1 < value[2] and drawn[:2] == value[:2]
            else:
                assert drawn == value


def _check_browser():
    spec = importlib.util.spec_from_file_location("check_browser",
                                                  ROOT / "scripts" / "check_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browser_check_flags_figures_a_reader_cannot_use():
    cb = _check_browser()
    good = {"imgs": [{"src": "../_images/a.png", "alt": "A line chart of trace against T."}],
            "figures": [{"id": "fig-x", "images": 1, "caption": "Fig. 2 Trace against T."}]}
    assert cb.figure_problems("book/synthetic.html", good) == []
    named = {"imgs": [{"src": "a.png", "alt": "../_images/bbda8a1f.png"}], "figures": []}
    assert any("file name" in p for p in cb.figure_problems("book/status.html", named))
    bare = {"imgs": [{"src": "a.png", "alt": ""}],
            "figures": [{"id": "f", "images": 1, "caption": "Trace against T."},
                        {"id": "g", "images": 2, "caption": ""}]}
    problems = cb.figure_problems("book/status.html", bare)
    assert any("no alternative text" in p for p in problems)
    assert any("'f' is not numbered" in p for p in problems)
    assert any("'g' has no caption" in p for p in problems)
    assert any("holds 2 images" in p for p in problems)
    empty = {"imgs": [], "figures": []}
    assert cb.figure_problems("book/synthetic.html", empty) == [
        "a chapter with results but no figure"]
    assert cb.figure_problems("book/status.html", empty) == []
    assert cb.figure_problems("book/api/align.html", empty) == []
