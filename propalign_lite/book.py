"""Execute the book's chapters with papermill under a named profile.

Usage (from the repository root)::

    python -m propalign_lite.book --profile ci            # every chapter in _toc.yml
    python -m propalign_lite.book --only synthetic        # one chapter

Each chapter is a jupytext ``py:percent`` file ``book/<name>.py`` with a cell tagged
``parameters``; it is converted in memory and executed by papermill into ``book/<name>.ipynb``
(git-ignored), with the parameter ``profile`` injected. A failing cell stops the run with a
non-zero exit status, so a page can never be rendered from a failed or missing execution.
Execution times are written to ``book/_timings.json`` and shown on the book's status page.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def execute(chapter: str, profile: str, *, parameters: dict | None = None) -> float:
    """Execute ``book/<chapter>.py`` into ``book/<chapter>.ipynb``; return seconds."""
    import jupytext
    import papermill

    src = ROOT / f"{chapter}.py"
    out = ROOT / f"{chapter}.ipynb"
    nb = jupytext.read(src)
    params = {"profile": profile, **(parameters or {})}
    start = time.perf_counter()
    tmp = out.with_suffix(".running.ipynb")
    try:
        papermill.execute_notebook(nb, str(tmp), parameters=params, cwd=str(src.parent),
                                   progress_bar=False, kernel_name="python3")
    except Exception:
        if tmp.exists():
            tmp.replace(out.with_suffix(".failed.ipynb"))
        out.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=os.environ.get("PROPALIGN_PROFILE", "ci"),
                        choices=["ci", "paper"])
    parser.add_argument("--only", nargs="*", help="chapter names (e.g. synthetic)")
    args = parser.parse_args(argv)
    chapters = chapters_from_toc()
    if args.only:
        wanted = {c if c.startswith("book/") else f"book/{c}" for c in args.only}
        unknown = wanted - set(chapters)
        if unknown:
            parser.error(f"unknown chapter(s) {sorted(unknown)}; known: {chapters}")
        chapters = [c for c in chapters if c in wanted]
    timings_file = ROOT / "book" / "_timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    # the status page reads the timings: run it last
    chapters.sort(key=lambda c: c.endswith("status"))
    for chapter in chapters:
        print(f"[book] executing {chapter} (profile={args.profile}) ...", flush=True)
        if chapter.endswith("status"):
            timings_file.write_text(json.dumps(timings, indent=1))
        seconds = execute(chapter, args.profile)
        timings[chapter] = {"seconds": round(seconds, 1), "profile": args.profile,
                            "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        print(f"[book] {chapter}: {seconds:.1f} s", flush=True)
        timings_file.write_text(json.dumps(timings, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
