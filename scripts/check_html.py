"""Check the built book: no page shows an error or a traceback, and nothing is loaded remotely.

Usage: python scripts/check_html.py _build/html
Exits with status 1 and lists every problem found.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REMOTE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"'](?:https?:)?//", re.I)
ERROR_MARKERS = (
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r'class="[^"]*\boutput\s+(?:error|traceback)\b'),
    re.compile(r'class="[^"]*\bstderr\b'),
    re.compile(r"\b[A-Za-z]*Error: .*\bline \d+"),
)


def check(root: Path) -> list[str]:
    pages = sorted(root.rglob("*.html"))
    if not pages:
        return [f"no HTML pages under {root}"]
    problems = []
    for page in pages:
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        text = page.read_text(errors="replace")
        rel = page.relative_to(root)
        for m in REMOTE.finditer(text):
            problems.append(f"{rel}: remote asset {m.group(0)[:120]}")
        for pat in ERROR_MARKERS:
            if pat.search(text):
                problems.append(f"{rel}: error output ({pat.pattern})")
    return problems


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")
    problems = check(root)
    for p in problems:
        print("PROBLEM", p)
    n = len([p for p in root.rglob("*.html") if "_static" not in p.parts])
    print(f"checked {n} HTML pages under {root}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
