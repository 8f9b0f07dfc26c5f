"""Check the built book: no page shows an error or a traceback, nothing is loaded remotely,
every citation resolves, every API page shows signatures and no internal link is broken.

Usage: python scripts/check_html.py _build/html
Exits with status 1 and lists every problem found.

- **Citations.** sphinxcontrib-bibtex writes a citation whose key is not in ``references.bib``
  as an empty ``<span class="bibtex-citation">[]</span>`` (no link); a ``{cite}`` or ``{py:...}``
  role that was not processed at all is left as raw text. Both are problems.
- **API pages** (``book/api/*.html``): at least one rendered Python signature
  (``<dt class="sig sig-object py">`` with a name), and no signature without a name.
- **Internal links.** Every ``href``/``src`` to a local file must exist, and a ``#fragment`` of
  an HTML page must be an ``id`` on that page (an equivalent of Sphinx's linkcheck for internal
  links, which the offline build cannot run against the web anyway).
"""
from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

REMOTE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"'](?:https?:)?//", re.I)
ERROR_MARKERS = (
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r'class="[^"]*\boutput\s+(?:error|traceback)\b'),
    re.compile(r'class="[^"]*\bstderr\b'),
    re.compile(r"\b[A-Za-z]*Error: .*\bline \d+"),
)


CITATION = re.compile(r'<span class="bibtex-citation"[^>]*>(.*?)</span>', re.S)
RAW_ROLE = re.compile(r"\{(?:cite|py)(?::[a-z]+)?\}`")
CODE = re.compile(r"<(pre|code|script|style)\b.*?</\1>", re.S | re.I)
SIGNATURE = re.compile(r'<dt class="sig sig-object py"[^>]*>(.*?)</dt>', re.S)
LINK = re.compile(r"<(?:a|link|img|script)\b[^>]*?\b(?:href|src)\s*=\s*\"([^\"]*)\"", re.I)
ANCHOR = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")
EXTERNAL = ("http:", "https:", "mailto:", "data:", "javascript:", "//", "tel:")


def citation_problems(text: str) -> list[str]:
    """Unresolved citations and unprocessed roles in one page's HTML.

    Example
    -------
    >>> citation_problems('<span class="bibtex-citation" id="id2">[]</span>')
    ['unresolved citation: []']
    >>> citation_problems('<span class="bibtex-citation"><a href="#id5">Xi, 2024</a></span>')
    []
    """
    problems = [f"unresolved citation: {html.unescape(re.sub(r'<[^>]+>', '', m.group(1)))[:60]}"
                for m in CITATION.finditer(text) if "<a " not in m.group(1)]
    prose = CODE.sub("", text)
    problems += [f"unprocessed role in the text: {m.group(0)}" for m in RAW_ROLE.finditer(prose)]
    return problems


def signature_problems(text: str) -> list[str]:
    """An API page must show Python signatures, each with its name.

    Example
    -------
    >>> ok = '<dt class="sig sig-object py" id="f"><span class="sig-name descname">f</span></dt>'
    >>> signature_problems(ok), signature_problems("<p>no API here</p>")
    ([], ['API page without rendered signatures'])
    """
    sigs = SIGNATURE.findall(text)
    if not sigs:
        return ["API page without rendered signatures"]
    return [f"signature without a name: {re.sub(r'<[^>]+>', '', s).strip()[:60]!r}"
            for s in sigs if "sig-name" not in s]


def link_problems(root: Path, page: Path, text: str, anchors) -> list[str]:
    """Broken local links of one page: a missing file, or a ``#fragment`` that is no ``id``
    of its target page (``anchors(path)`` returns the ids of an HTML file)."""
    problems = []
    for raw in dict.fromkeys(LINK.findall(text)):
        url = html.unescape(raw).strip()
        if not url or url.lower().startswith(EXTERNAL):
            continue
        parts = urlsplit(url)
        target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if parts.path.endswith("/") or target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"broken link {raw!r} (no file {target.relative_to(root.resolve()) if target.is_relative_to(root.resolve()) else target})")
            continue
        frag = unquote(parts.fragment)
        if frag and target.suffix == ".html" and frag not in anchors(target):
            problems.append(f"broken link {raw!r} (no id {frag!r} on {target.name})")
    return problems


def check(root: Path) -> list[str]:
    pages = sorted(root.rglob("*.html"))
    if not pages:
        return [f"no HTML pages under {root}"]
    problems = []
    cache: dict[Path, set] = {}

    def anchors(path: Path) -> set:
        if path not in cache:
            cache[path] = set(ANCHOR.findall(path.read_text(errors="replace")))
        return cache[path]

    for page in pages:
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        text = page.read_text(errors="replace")
        rel = page.relative_to(root)
        problems += [f"{rel}: {p}" for p in citation_problems(text)]
        if "api" in rel.parts[:-1]:
            problems += [f"{rel}: {p}" for p in signature_problems(text)]
        problems += [f"{rel}: {p}" for p in link_problems(root, page.resolve(), text, anchors)]
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
