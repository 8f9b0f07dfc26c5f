"""Tests of the book's page tidying (propalign_book.book) and notebook tools (scripts/)."""
import importlib.util
from pathlib import Path

import nbformat
import pytest

from propalign_book.book import FOLD_AFTER, _ipc_kernel_manager, prepare_for_page

ROOT = Path(__file__).resolve().parent.parent


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code(source, *tags):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})


def _executed(profile_default="ci", injected="ci", long_lines=FOLD_AFTER + 5, extra=()):
    cells = [nbformat.v4.new_markdown_cell("# Page"),
             _code(f"profile = {profile_default!r}", "parameters"),
             _code(f'# Parameters\nprofile = "{injected}"\n', "injected-parameters"),
             _code("\n".join(f"x{i} = {i}" for i in range(long_lines))),
             _code("y = 1"), *extra]
    return nbformat.v4.new_notebook(cells=cells)


def test_injected_parameters_cell_is_removed_and_own_cell_kept():
    nb = prepare_for_page(_executed())
    own, injected = nb.cells[1], nb.cells[2]
    assert "remove-cell" in injected.metadata["tags"]
    assert own.metadata["tags"] == ["parameters"]          # shown once, unchanged
    assert own.source == "profile = 'ci'"


def test_parameters_cell_shows_the_values_the_page_ran_with():
    nb = prepare_for_page(_executed(injected="paper"))
    own = nb.cells[1]
    assert "profile = 'paper'" in own.source.splitlines()
    assert "defaults: profile = 'ci'" in own.source
    compile(own.source, "parameters", "exec")


def test_long_code_is_folded_short_code_and_show_input_are_not():
    keep_open = _code("\n".join(["z = 0"] * (FOLD_AFTER + 3)), "show-input")
    removed = _code("\n".join(["w = 0"] * (FOLD_AFTER + 3)), "remove-input")
    nb = prepare_for_page(_executed(extra=(keep_open, removed)))
    assert nb.cells[3].metadata["tags"] == ["hide-input"]
    assert nb.cells[4].metadata["tags"] == []
    assert nb.cells[5].metadata["tags"] == ["show-input"]
    assert nb.cells[6].metadata["tags"] == ["remove-input"]


def test_fold_threshold_is_exact_and_idempotent():
    at, over = _code("a = 1\n" * FOLD_AFTER), _code("a = 1\n" * (FOLD_AFTER + 1))
    nb = nbformat.v4.new_notebook(cells=[at, over])
    prepare_for_page(prepare_for_page(nb))
    assert at.metadata["tags"] == [] and over.metadata["tags"] == ["hide-input"]
    with pytest.raises(ValueError, match="fold_after"):
        prepare_for_page(nb, fold_after=0)


def test_kernels_use_ipc_transport_not_unencrypted_tcp():
    km = _ipc_kernel_manager()(kernel_name="python3")
    assert km.transport == "ipc"
    assert Path(km.ip).is_absolute()


SOLUTIONS = """## Exercises

:::{exercise}
:label: demo-ex1

Why is the trace of a uniform coupling $1/n$?
:::

::::{solution} demo-ex1
:class: dropdown

Every row puts $1/n$ on each partner.

:::{note}
A nested directive inside the solution.
:::
::::

```{solution} demo-ex1b
Backtick fences too.
```

:::{exercise}
:label: demo-ex2

Rerun with `reg=0.5`.
:::

:::{solution-start} demo-ex2
:class: dropdown
:::

The worked solution runs code:"""


def _with_solutions():
    cells = [nbformat.v4.new_markdown_cell(SOLUTIONS),
             _code("print('solution code')"),
             nbformat.v4.new_markdown_cell(":::{solution-end}\n:::\n\nText after the solutions."),
             _code('# Parameters\nprofile = "ci"\n', "injected-parameters"),
             _code("print(2)")]
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="out\n")]
            cell.execution_count = 3
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["papermill"] = {"parameters": {"profile": "ci"}}
    return nb


def test_strip_solutions_removes_every_solution_and_keeps_exercises():
    mn = _script("make_notebooks")
    nb = _with_solutions()
    student, removed = mn.strip_solutions(nb)
    assert removed == 3
    text = "\n".join(c.source for c in student.cells)
    for gone in ("{solution", "Every row", "nested directive", "Backtick fences",
                 "solution code", "Parameters"):
        assert gone not in text
    for kept in ("{exercise}", ":label: demo-ex1", "Rerun with", "Text after the solutions.",
                 "print(2)"):
        assert kept in text
    assert all(c.outputs == [] and c.execution_count is None
               for c in student.cells if c.cell_type == "code")
    assert "papermill" not in student.metadata
    assert nb.cells[1].outputs, "the executed notebook itself is left unchanged"
    nbformat.validate(student)


def test_strip_solutions_rejects_an_unclosed_gated_solution():
    mn = _script("make_notebooks")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        ":::{solution-start} e1\n:::\nno end")])
    with pytest.raises(ValueError, match="solution-end"):
        mn.strip_solutions(nb)


def test_collect_refuses_notebooks_of_another_profile(tmp_path, monkeypatch):
    mn = _script("make_notebooks")
    import propalign_book.book as book

    monkeypatch.setattr(book, "chapters_from_toc", lambda: ["book/demo"])
    nb = _with_solutions()
    nbformat.write(nb, str(tmp_path / "demo.ipynb"))
    report = mn.collect("ci", book_dir=tmp_path, out=tmp_path / "out")
    assert report == [("demo", 3)]
    assert (tmp_path / "out" / "executed" / "demo.ipynb").exists()
    student = nbformat.read(str(tmp_path / "out" / "student" / "demo.ipynb"), as_version=4)
    assert "{solution" not in "".join(c.source for c in student.cells)
    with pytest.raises(ValueError, match="another profile"):
        mn.collect("paper", book_dir=tmp_path, out=tmp_path / "out")
    monkeypatch.setattr(book, "chapters_from_toc", lambda: ["book/demo", "book/missing"])
    with pytest.raises(FileNotFoundError, match="missing"):
        mn.collect("ci", book_dir=tmp_path, out=tmp_path / "out")


def test_browser_console_errors_are_collected():
    cb = _script("check_browser")
    events = [
        {"method": "Runtime.consoleAPICalled", "params": {"type": "error",
                                                          "args": [{"value": "boom"}]}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "log",
                                                          "args": [{"value": "fine"}]}},
        {"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "text": "Uncaught", "exception": {"description": "TypeError: x"}}}},
        {"method": "Log.entryAdded", "params": {"entry": {"level": "error", "text": "404",
                                                          "url": "http://127.0.0.1/a.png"}}},
    ]
    errors = cb.console_errors(events)
    assert errors == ["console: boom", "exception: TypeError: x", "log: 404 http://127.0.0.1/a.png"]


def test_browser_pages_skip_static_and_sources(tmp_path):
    cb = _script("check_browser")
    for rel in ("index.html", "book/intro.html", "_static/x.html", "_sources/y.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert cb.pages_of(tmp_path) == ["book/intro.html", "index.html"]


def test_page_times_counts_prose_and_reads_last_timings(tmp_path):
    from propalign_book.book import page_times

    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.md").write_text("word " * 450)
    (tmp_path / "book" / "b.py").write_text('# %% [markdown]\n# ' + "word " * 100 + "\n\n# %%\nx = 1\n")
    (tmp_path / "book" / "_timings.json").write_text('{"book/b": {"seconds": 12.5, "profile": "ci"}}')
    times = page_times(["a", "book/b"], words_per_minute=100, root=tmp_path)
    assert times["a"] == {"read_min": 4, "run_s": None, "profile": None}   # round(4.5) == 4
    assert times["b"] == {"read_min": 1, "run_s": 12.5, "profile": "ci"}
    with pytest.raises(FileNotFoundError, match="nope"):
        page_times(["nope"], root=tmp_path)
    with pytest.raises(ValueError, match="words_per_minute"):
        page_times(["a"], words_per_minute=0, root=tmp_path)


def test_browser_pages_skip_redirect_stubs(tmp_path):
    # jupyter-book's root index.html is a bare meta refresh: the browser navigates away at once
    # and the check failed with "Inspected target navigated or closed"
    cb = _script("check_browser")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.html").write_text("<html><body>intro</body></html>")
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    assert cb.pages_of(tmp_path) == ["book/intro.html"]


def test_a_chapter_run_logs_the_records_it_shows(tmp_path, monkeypatch):
    """The kernel papermill starts sees $PROPALIGN_RECORDS_LOG, and records_note writes to it."""
    from propalign_book import book
    from propalign_book.report import RECORDS_LOG_ENV, records_summary

    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "tiny.py").write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
        "#     name: python3\n# ---\n\n"
        '# %% tags=["parameters"]\nprofile = "ci"\n\n# %%\n'
        "from propalign_book.report import records_note\n"
        'run = dict(unit="tiny.u", key="k", source="store", hardware="box (2 CPUs)")\n'
        'print(records_note([{"_run": dict(run, seed=s)} for s in (0, 1)]))\n')
    monkeypatch.setattr(book, "ROOT", tmp_path)
    monkeypatch.delenv(RECORDS_LOG_ENV, raising=False)
    book.execute("book/tiny", "ci")
    assert records_summary(book.records_log("book/tiny"))["store"] == 2
    assert RECORDS_LOG_ENV not in __import__("os").environ   # restored after the run


def test_html_check_finds_unresolved_citations_missing_signatures_and_broken_links(tmp_path):
    ch = _script("check_html")
    root = tmp_path / "html"
    (root / "book" / "api").mkdir(parents=True)
    good_sig = ('<dt class="sig sig-object py" id="propalign_lite.m.f">'
                '<span class="sig-name descname">f</span></dt>')
    (root / "book" / "api" / "m.html").write_text(f"<p id='top'>x</p>{good_sig}")
    (root / "book" / "api" / "empty.html").write_text("<p>nothing documented</p>")
    (root / "book" / "a.html").write_text(
        '<p id="here"><span class="bibtex-citation"><a href="#here">Xi et al., 2024</a></span>'
        '<span class="bibtex-citation" id="id2">[]</span> {cite:p}`raw` '
        '<a href="api/m.html#propalign_lite.m.f">ok</a> <a href="api/m.html#nope">bad anchor</a>'
        '<a href="missing.html">bad file</a> <a href="https://example.org/x">external</a>'
        '<code>{cite:p}`shown as code`</code></p>')
    problems = ch.check(root)
    assert any("a.html: unresolved citation" in p for p in problems)
    assert any("unprocessed role in the text: {cite:p}`" in p for p in problems)
    assert any("empty.html: API page without rendered signatures" in p for p in problems)
    assert any("no id 'nope' on m.html" in p for p in problems)
    assert any("missing.html" in p and "no file" in p for p in problems)
    assert len(problems) == 5, problems   # the good link, citation, code and API page pass


def test_browser_check_knows_the_api_pages():
    cb = _script("check_browser")
    assert cb.is_api_page("book/api/matching.html") and not cb.is_api_page("book/theory.html")


def test_chapters_run_two_at_a_time_with_their_share_of_threads_and_performance_alone(
        tmp_path, monkeypatch):
    """``--jobs 2``: two kernels at once, each told to use CPUs / 2 threads; the Performance
    page starts only when the others have finished; a timing is kept for every chapter."""
    import json
    import os

    from propalign_book import book

    (tmp_path / "book").mkdir()
    for name in ("a", "b", "performance"):
        (tmp_path / "book" / f"{name}.py").write_text(
            "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n"
            "#     language: python\n#     name: python3\n# ---\n\n"
            '# %% tags=["parameters"]\nprofile = "ci"\n\n# %%\n'
            "import json, os, time\nstart = time.time()\ntime.sleep(1.5)\n"
            f"json.dump(dict(start=start, end=time.time(), threads=os.environ.get("
            f"'OMP_NUM_THREADS')), open('{name}.json', 'w'))\n")
    monkeypatch.setattr(book, "ROOT", tmp_path)
    monkeypatch.setattr(book, "chapters_from_toc",
                        lambda: ["book/a", "book/performance", "book/b"])
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert book.main(["--jobs", "2"]) == 0
    runs = {n: json.loads((tmp_path / "book" / f"{n}.json").read_text())
            for n in ("a", "b", "performance")}
    assert runs["a"]["threads"] == runs["b"]["threads"] == "2"          # 4 CPUs / 2 jobs
    assert runs["a"]["start"] < runs["b"]["end"] and runs["b"]["start"] < runs["a"]["end"]
    assert runs["performance"]["start"] > max(runs["a"]["end"], runs["b"]["end"])
    timings = json.loads((tmp_path / "book" / "_timings.json").read_text())
    assert set(timings) == {"book/a", "book/b", "book/performance"}
    assert timings["book/a"]["beside"] == 1 and timings["book/performance"]["beside"] == 0


def test_a_figure_cell_is_folded_so_the_figure_leads():
    figure = nbformat.v4.new_code_cell("plt.show()", metadata={
        "mystnb": {"figure": {"name": "fig-a", "caption": "A."}, "image": {"alt": "A."}}})
    shown = nbformat.v4.new_code_cell("plt.show()", metadata={
        "tags": ["show-input"], "mystnb": {"figure": {"name": "fig-b", "caption": "B."}}})
    nb = prepare_for_page(_executed(extra=(figure, shown)))
    assert nb.cells[5].metadata["tags"] == ["hide-input"]
    assert nb.cells[6].metadata["tags"] == ["show-input"]
    assert nb.cells[4].metadata["tags"] == []                # a short cell stays open
