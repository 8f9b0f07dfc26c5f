"""Collect the book's executed notebooks and write student versions without the solutions.

Usage (from the repository root, after the chapters were executed)::

    python scripts/make_notebooks.py --profile ci      # or: make notebooks

Reads the executed notebooks ``book/<chapter>.ipynb`` written by ``python -m propalign_book.book``
for every chapter of ``_toc.yml`` and writes

- ``_build/notebooks/executed/<chapter>.ipynb``: the notebook as executed (outputs kept);
- ``_build/notebooks/student/<chapter>.ipynb``: the same notebook with every worked solution
  removed (``{solution}`` blocks of ``sphinx-exercise``, and everything between
  ``{solution-start}`` and ``{solution-end}``, code cells included), papermill's injected
  parameters cell removed and all outputs cleared, ready to be run in class.

A notebook executed under a different profile than ``--profile`` is an error (the downloads of a
page must come from the run that rendered it). The book's pages link to both versions (see
``propalign_book.book``).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_OPEN = re.compile(r"^\s*(?P<fence>:{3,}|`{3,})\{(?P<name>[a-z-]+)\}")


def _fence_close(lines: list[str], start: int, fence: str) -> int:
    """Index of the line closing the fence opened at ``lines[start]`` (or the last line)."""
    char, width = fence[0], len(fence)
    for j in range(start + 1, len(lines)):
        s = lines[j].strip()
        if s and set(s) == {char} and len(s) >= width:
            return j
    return len(lines) - 1


def _strip_markdown(text: str, inside: bool) -> tuple[str, bool, int]:
    """Remove solution blocks from one markdown cell.

    ``inside`` says whether a ``{solution-start}`` block is open when the cell begins. Returns
    the new text, whether a gated solution is still open at its end, and the number of
    solutions removed (counted at their start).
    """
    lines = text.splitlines()
    keep, i, removed = [], 0, 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        name = m.group("name") if m else None
        if inside:
            if name == "solution-end":
                i = _fence_close(lines, i, m.group("fence")) + 1
                inside = False
            else:
                i += 1
            continue
        if name == "solution":
            i = _fence_close(lines, i, m.group("fence")) + 1
            removed += 1
        elif name == "solution-start":
            i = _fence_close(lines, i, m.group("fence")) + 1
            inside, removed = True, removed + 1
        else:
            keep.append(lines[i])
            i += 1
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(keep)).strip("\n")
    return text, inside, removed


def strip_solutions(nb):
    """Return ``(student_nb, n_removed)``: ``nb`` without solutions, injected cell or outputs.

    Markdown cells lose their ``{solution}`` blocks (colon or backtick fences, nested
    directives inside them included); cells between a ``{solution-start}`` and a
    ``{solution-end}`` directive are dropped whatever their type; a markdown cell left empty
    is dropped. Code cells keep their source and lose outputs and execution counts. The input
    notebook is not changed.

    Example
    -------
    >>> import nbformat
    >>> md = ":::{exercise}\\n:label: e1\\nWhy?\\n:::\\n\\n:::{solution} e1\\n:class: dropdown\\nBecause.\\n:::"
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(md)])
    >>> student, n = strip_solutions(nb)
    >>> n, "Because" in student.cells[0].source
    (1, False)
    """
    import copy

    student = copy.deepcopy(nb)
    cells, inside, removed = [], False, 0
    for cell in student.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        if cell.cell_type == "markdown":
            text, inside, n = _strip_markdown(cell.source, inside)
            removed += n
            if not text.strip():
                continue
            cell.source = text
        elif inside:
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} block has no matching {solution-end}")
    student.cells = cells
    student.metadata.pop("papermill", None)
    return student, removed


def collect(profile: str, *, book_dir: Path = ROOT / "book",
            out: Path = ROOT / "_build" / "notebooks") -> list[tuple[str, int]]:
    """Write the executed and student notebooks; return ``[(chapter, n_solutions_removed)]``."""
    import nbformat

    from propalign_book.book import chapters_from_toc

    names = [Path(c).name for c in chapters_from_toc()]
    missing = [n for n in names if not (book_dir / f"{n}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"no executed notebook for {missing} in {book_dir}; run "
                                f"`python -m propalign_book.book --profile {profile}` first")
    notebooks = {n: nbformat.read(str(book_dir / f"{n}.ipynb"), as_version=4) for n in names}
    stale = {n: nb.metadata.get("papermill", {}).get("parameters", {}).get("profile")
             for n, nb in notebooks.items()}
    stale = {n: p for n, p in stale.items() if p != profile}
    if stale:
        raise ValueError(f"notebooks executed with another profile than {profile!r}: {stale}; "
                         f"rerun them with `python -m propalign_book.book --profile {profile}`")
    report = []
    for sub in ("executed", "student"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob("*.ipynb"):
            old.unlink()
    for name, nb in notebooks.items():
        nbformat.write(nb, str(out / "executed" / f"{name}.ipynb"))
        student, n = strip_solutions(nb)
        nbformat.write(student, str(out / "student" / f"{name}.ipynb"))
        report.append((name, n))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", choices=["ci", "paper"])
    parser.add_argument("--out", default=str(ROOT / "_build" / "notebooks"))
    args = parser.parse_args(argv)
    try:
        report = collect(args.profile, out=Path(args.out))
    except (FileNotFoundError, ValueError) as err:
        print(f"make_notebooks: {err}", file=sys.stderr)
        return 1
    for name, n in report:
        print(f"[notebooks] {name}: executed + student ({n} solution(s) removed)")
    print(f"[notebooks] {len(report)} chapters under {args.out}/executed and {args.out}/student")
    return 0


if __name__ == "__main__":
    sys.exit(main())
