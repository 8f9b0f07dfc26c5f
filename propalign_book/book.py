"""Execute the book's chapters with papermill under a named profile.

Usage (from the repository root)::

    python -m propalign_book.book --profile ci            # every chapter in _toc.yml
    python -m propalign_book.book --only synthetic        # one chapter

Each chapter is a jupytext ``py:percent`` file ``book/<name>.py`` with a cell tagged
``parameters``; it is converted in memory and executed by papermill into ``book/<name>.ipynb``
(git-ignored), with the parameter ``profile`` injected. A failing cell stops the run with a
non-zero exit status, so a page can never be rendered from a failed or missing execution.
Execution times are written to ``book/_timings.json`` and shown on the book's status page.

Before a notebook is written, :func:`prepare_for_page` tidies it for the HTML page (tags only;
no source or output is changed except as described there): papermill's injected
``# Parameters`` cell is tagged ``remove-cell``, and code cells longer than ``FOLD_AFTER`` lines
get ``hide-input`` (the reader sees a toggle; prose, figures and tables lead) unless a cell is
tagged ``show-input``.

The module is also a Sphinx extension (``sphinx.extra_extensions`` in ``_config.yml``): when
``make notebooks`` has collected the notebooks under ``_build/notebooks/``, every page gets
download links to its executed notebook and to its student version (solutions removed), and
the notebooks are copied into the HTML under ``notebooks/``.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: code cells with more source lines than this are folded (``hide-input``) on the page
FOLD_AFTER = 15
#: tags after which a cell is left as its author tagged it
_VISIBILITY_TAGS = {"hide-input", "hide-cell", "remove-input", "remove-cell", "show-input",
                    "hide-output", "remove-output"}


def _literals(source: str) -> dict:
    """Names assigned a literal value in ``source`` (``name = <literal>`` lines only)."""
    values = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return values
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def prepare_for_page(nb, *, fold_after: int = FOLD_AFTER):
    """Tag the cells of an executed notebook for its HTML page; return the notebook.

    - papermill's injected cell (tag ``injected-parameters``) gets ``remove-cell``: the page
      shows the parameters once, in the chapter's own ``parameters`` cell;
    - if the injected values differ from that cell's defaults, the ``parameters`` cell's
      source is replaced by the values the page was really executed with (with a comment
      naming the defaults), so the page never shows a value it was not run with;
    - a code cell with more than ``fold_after`` source lines, or one that draws a numbered
      figure (MyST-NB ``mystnb.figure`` metadata), gets ``hide-input`` unless it already has a
      visibility tag (``show-input`` keeps it open): the figure and its caption lead, the code
      is one click away.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook (changed in place).
    fold_after : int, keyword-only
        Longest code cell (in lines) shown open; must be >= 1.

    Example
    -------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\\n" * 20)])
    >>> prepare_for_page(nb).cells[0].metadata["tags"]
    ['hide-input']
    """
    if isinstance(fold_after, bool) or not isinstance(fold_after, int) or fold_after < 1:
        raise ValueError(f"fold_after must be an integer >= 1, got {fold_after!r}")
    cells = nb.cells
    injected = [c for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    own = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    for cell in injected:
        tags = cell.metadata.setdefault("tags", [])
        if "remove-cell" not in tags:
            tags.append("remove-cell")
    if injected and own:
        defaults, used = _literals(own[0].source), _literals(injected[-1].source)
        if any(k not in defaults or defaults[k] != v for k, v in used.items()):
            lines = ["# parameters of this run (set by the runner; the chapter's defaults: "
                     + ", ".join(f"{k} = {v!r}" for k, v in defaults.items()) + ")"]
            lines += [f"{k} = {v!r}" for k, v in {**defaults, **used}.items()]
            own[0].source = "\n".join(lines)
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if _VISIBILITY_TAGS & set(tags) or "parameters" in tags or "injected-parameters" in tags:
            continue
        if len(cell.source.strip("\n").splitlines()) > fold_after \
                or "figure" in cell.metadata.get("mystnb", {}):
            tags.append("hide-input")
    return nb


def chapters_from_toc(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Chapter paths (without suffix) listed in ``_toc.yml`` that have a jupytext source."""
    import yaml

    data = yaml.safe_load(toc.read_text())
    files = [data["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    walk(data.get("chapters"))
    for part in data.get("parts", []):
        walk(part.get("chapters"))
    return [f for f in files if (ROOT / f"{f}.py").exists()]


def _ipc_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    return runtime


def _remove_ipc_files() -> None:
    """Remove this process's kernel socket files (the kernel can outlive the manager's cleanup)."""
    for f in _ipc_dir().glob(f"kernel-{os.getpid()}-*-ipc-*"):
        f.unlink(missing_ok=True)


def _ipc_kernel_manager():
    """A kernel manager whose kernel talks over local IPC sockets instead of TCP.

    ipykernel (>= 7) logs "Kernel is running over TCP without encryption" on every start over
    TCP without CurveZMQ keys; papermill's default kernel manager uses TCP on 127.0.0.1, so the
    book's log repeated that warning for every chapter. IPC (Unix domain sockets, files in
    Jupyter's runtime directory readable only by the user) is local by construction, so the
    warning's cause is removed rather than the warning hidden.
    """
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self):
            return "ipc"

        @default("ip")
        def _ip_default(self):
            return str(_ipc_dir() / f"kernel-{os.getpid()}-{uuid.uuid4().hex[:8]}-ipc")

    return IPCKernelManager


def records_log(chapter: str) -> Path:
    """The JSON-lines file where ``chapter``'s records are logged while it runs
    (:func:`propalign_book.report.log_records`; git-ignored, removed after the run)."""
    return ROOT / "book" / f"_records_{chapter.removeprefix('book/')}.jsonl"


def execute(chapter: str, profile: str, *, parameters: dict | None = None) -> float:
    """Execute ``book/<chapter>.py`` into ``book/<chapter>.ipynb``; return seconds.

    The kernel inherits ``$PROPALIGN_RECORDS_LOG`` = :func:`records_log`, so every
    ``records_note`` of the chapter logs the records it shows; read them back with
    :func:`propalign_book.report.records_summary` before the next run of the chapter.
    """
    import jupytext
    import papermill

    from .report import RECORDS_LOG_ENV

    src = ROOT / f"{chapter}.py"
    out = ROOT / f"{chapter}.ipynb"
    nb = jupytext.read(src)
    params = {"profile": profile, **(parameters or {})}
    start = time.perf_counter()
    tmp = out.with_suffix(".running.ipynb")
    log = records_log(chapter)
    log.unlink(missing_ok=True)
    previous = os.environ.get(RECORDS_LOG_ENV)
    os.environ[RECORDS_LOG_ENV] = str(log)
    try:
        papermill.execute_notebook(nb, str(tmp), parameters=params, cwd=str(src.parent),
                                   progress_bar=False, kernel_name="python3",
                                   kernel_manager_class=_ipc_kernel_manager())
    except Exception:
        if tmp.exists():
            tmp.replace(out.with_suffix(".failed.ipynb"))
        out.unlink(missing_ok=True)
        raise
    finally:
        _remove_ipc_files()
        if previous is None:
            os.environ.pop(RECORDS_LOG_ENV, None)
        else:
            os.environ[RECORDS_LOG_ENV] = previous
    import nbformat

    executed = nbformat.read(str(tmp), as_version=4)
    nbformat.write(prepare_for_page(executed), str(tmp))
    tmp.replace(out)
    return time.perf_counter() - start


def page_times(chapters, *, words_per_minute: int = 200, root: Path = ROOT) -> dict:
    """Reading and running time of book pages, measured from their sources and the last run.

    Returns ``{chapter: {"read_min": int, "run_s": float | None, "profile": str | None}}``:
    ``read_min`` counts the words of the page's prose (markdown cells or a MyST ``.md`` file) at
    ``words_per_minute``; ``run_s`` is the page's execution time from ``book/_timings.json``
    (the last run of ``python -m propalign_book.book``), ``None`` when it has not run yet.

    Example
    -------
    >>> page_times(["theory"])["theory"]["read_min"] >= 1
    True
    """
    if isinstance(words_per_minute, bool) or not isinstance(words_per_minute, int) \
            or words_per_minute < 1:
        raise ValueError(f"words_per_minute must be an integer >= 1, got {words_per_minute!r}")
    timings_file = root / "book" / "_timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    out = {}
    for chapter in chapters:
        name = chapter.removeprefix("book/")
        py, md = root / "book" / f"{name}.py", root / "book" / f"{name}.md"
        if py.exists():
            import jupytext

            prose = " ".join(c.source for c in jupytext.read(py).cells
                             if c.cell_type == "markdown")
        elif md.exists():
            prose = md.read_text()
        else:
            raise FileNotFoundError(f"chapter {chapter!r}: neither {py} nor {md} exists")
        run = timings.get(f"book/{name}", {})
        out[name] = {"read_min": max(1, round(len(prose.split()) / words_per_minute)),
                     "run_s": run.get("seconds"), "profile": run.get("profile")}
    return out


# --- Sphinx extension: download links to the page's notebooks -------------------------------

def _notebooks_dir(app) -> Path:
    return Path(app.confdir) / app.config.propalign_notebooks_dir


def _download_links(app, pagename, templatename, context, doctree):
    """Append links to the executed and the student notebook of ``pagename`` to its body."""
    name = pagename.rsplit("/", 1)[-1]
    root = _notebooks_dir(app)
    if "body" not in context or not (root / "executed" / f"{name}.ipynb").exists():
        return
    links = [f'<a href="{context["pathto"](f"notebooks/{kind}/{name}.ipynb", 1)}" download>{label}</a>'
             for kind, label in (("executed", "executed notebook (with outputs)"),
                                 ("student", "student notebook (solutions removed)"))
             if (root / kind / f"{name}.ipynb").exists()]
    context["body"] += ('<p class="propalign-downloads">Download this page: '
                        + " &middot; ".join(links) + "</p>")


def _copy_notebooks(app, exception):
    root = _notebooks_dir(app)
    if exception is None and app.builder.format == "html" and root.is_dir():
        shutil.copytree(root, Path(app.outdir) / "notebooks", dirs_exist_ok=True)


def setup(app):
    """Sphinx entry point: per-page notebook downloads (see the module docstring)."""
    app.add_config_value("propalign_notebooks_dir", "_build/notebooks", "html")
    app.connect("html-page-context", _download_links)
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


#: chapters that run alone, after the others: the Performance page times solvers (a chapter
#: running beside it would slow them), the status page reads every other chapter's timings
RUN_ALONE = ("book/performance", "book/status")
#: thread-count variables a chapter's kernel inherits (torch, BLAS, numba)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def _execute_with_threads(chapter: str, profile: str, threads: int) -> float:
    """:func:`execute` in a worker process whose kernel uses ``threads`` threads."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    return execute(chapter, profile)


def schedule(chapters: list[str], jobs: int) -> tuple[list[str], list[str]]:
    """Split ``chapters`` into those run ``jobs`` at a time (in the given order) and those
    run alone afterwards, in ``RUN_ALONE`` order (with ``jobs = 1`` every chapter runs alone,
    ``RUN_ALONE`` ones last).

    >>> schedule(["book/status", "book/a", "book/performance", "book/b"], 2)
    (['book/a', 'book/b'], ['book/performance', 'book/status'])
    """
    alone = [c for c in RUN_ALONE if c in chapters]
    return [c for c in chapters if c not in alone], alone


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=os.environ.get("PROPALIGN_PROFILE", "ci"),
                        choices=["ci", "paper"])
    parser.add_argument("--only", nargs="*", help="chapter names (e.g. synthetic)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("PROPALIGN_JOBS", 1)),
                        help="chapters executed at once, each kernel with CPUs/jobs threads "
                             "(default $PROPALIGN_JOBS or 1); the Performance and status "
                             "pages always run alone, last")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    from .report import records_summary

    chapters = chapters_from_toc()
    if args.only:
        wanted = {c if c.startswith("book/") else f"book/{c}" for c in args.only}
        unknown = wanted - set(chapters)
        if unknown:
            parser.error(f"unknown chapter(s) {sorted(unknown)}; known: {chapters}")
        chapters = [c for c in chapters if c in wanted]
    timings_file = ROOT / "book" / "_timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}

    def finished(chapter: str, seconds: float, threads: int) -> None:
        log = records_log(chapter)
        timings[chapter] = {"seconds": round(seconds, 1), "profile": args.profile,
                            "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                            "records": records_summary(log), "threads": threads,
                            "beside": args.jobs - 1 if chapter not in RUN_ALONE else 0}
        log.unlink(missing_ok=True)
        print(f"[book] {chapter}: {seconds:.1f} s", flush=True)
        timings_file.write_text(json.dumps(timings, indent=1))

    together, alone = schedule(chapters, args.jobs)
    cpus = os.cpu_count() or 1
    if args.jobs > 1 and together:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, cpus // args.jobs)
        print(f"[book] {len(together)} chapters, {args.jobs} at a time with {threads} "
              f"thread(s) each (profile={args.profile}) ...", flush=True)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(_execute_with_threads, c, args.profile, threads): c
                       for c in together}
            try:
                for future in as_completed(futures):
                    finished(futures[future], future.result(), threads)
            except BaseException:          # a failed chapter stops the run, as with --jobs 1
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        alone = together + alone
    for chapter in alone:
        print(f"[book] executing {chapter} (profile={args.profile}) ...", flush=True)
        if chapter.endswith("status"):
            timings_file.write_text(json.dumps(timings, indent=1))
        finished(chapter, execute(chapter, args.profile), cpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
