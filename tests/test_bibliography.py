"""The book's bibliography: every cited key exists, every chapter cites and lists its works."""
import re
from pathlib import Path

import pytest
from pybtex.database import parse_file

from propalign_book.bibstyle import author_year_label
from propalign_book.book import chapters_from_toc

ROOT = Path(__file__).resolve().parent.parent
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def cited_keys(text: str) -> set[str]:
    """Keys of the ``{cite:...}`` roles in a page's source."""
    return {k.strip() for m in CITE.finditer(text) for k in m.group(1).split(",")}


def test_cited_keys_are_parsed_from_every_role_form():
    assert cited_keys("a {cite:p}`x2020, y2021` b {cite:t}`z` {cite}`w`") == {"x2020", "y2021", "z",
                                                                             "w"}


def _pages():
    return [ROOT / f"{c}.py" for c in chapters_from_toc()] + [ROOT / "book/reproduction_notes.md"]


def test_every_cited_key_is_in_references_bib():
    keys = set(parse_file(str(ROOT / "references.bib")).entries)
    missing = {p.name: cited_keys(p.read_text()) - keys for p in _pages()}
    assert not {k: v for k, v in missing.items() if v}


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_chapter_cites_and_lists_its_references(page):
    text = page.read_text()
    assert cited_keys(text), f"{page.name} cites nothing"
    assert re.search(r"```\{bibliography\}\s*\n(?:# )?:filter: docname in docnames", text), \
        f"{page.name} has no per-page reference list"


def test_bib_entries_have_a_year_and_well_formed_dois():
    for key, entry in parse_file(str(ROOT / "references.bib")).entries.items():
        assert re.fullmatch(r"(19|20)\d\d", entry.fields.get("year", "")), key
        doi = entry.fields.get("doi")
        assert doi is None or re.fullmatch(r"10\.\d{4,9}/\S+", doi), (key, doi)


def test_labels_are_author_year_and_unique():
    entries = parse_file(str(ROOT / "references.bib")).entries
    labels = [author_year_label(e) for e in entries.values()]
    assert author_year_label(entries["xi2024propensity"]) == "Xi et al., 2024"
    assert author_year_label(entries["cao2022glue"]) == "Cao and Gao, 2022"
    assert len(set(labels)) == len(labels)
