"""Sphinx extension: author-year labels for the book's reference lists.

sphinxcontrib-bibtex writes a chapter's ``{bibliography}`` (and the global one on the
References page) as a citation list whose labels come from the pybtex style; pybtex's ``plain``
numbers them ``[1]``, ``[2]``, ..., which clash between pages and do not match the author-year
citations in the text. This style (``bibtex_default_style: author_year_labels`` in
``_config.yml``) is pybtex's ``plain`` formatting with labels such as ``Xi et al., 2024``,
``Cao and Gao, 2022``, ``van den Brink et al., 2017``: the same label for a work on every page.
"""
from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle

NAME = "author_year_labels"


def author_year_label(entry) -> str:
    """``Surname, year``, ``Surname and Surname, year`` or ``Surname et al., year``.

    Example
    -------
    >>> from pybtex.database import Entry, Person
    >>> e = Entry("article", fields={"year": "2017"},
    ...           persons={"author": [Person("van den Brink, Susanne"), Person("Sage, Fanny")]})
    >>> author_year_label(e)
    'van den Brink and Sage, 2017'
    """
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(p.prelast_names + p.last_names) for p in people if str(p) != "others"]
    if not names:
        names = ["Anonymous"]
    if len(people) > 2 or (len(people) == 2 and str(people[1]) == "others"):
        who = f"{names[0]} et al."
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = names[0]
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """pybtex label style: :func:`author_year_label` of every entry."""

    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield author_year_label(entry)


class AuthorYearStyle(PlainStyle):
    """pybtex's ``plain`` style with :class:`AuthorYearLabels`."""

    default_label_style = AuthorYearLabels


def setup(app):
    """Sphinx entry point: registers the pybtex style ``author_year_labels``."""
    register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
