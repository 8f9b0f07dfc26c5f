"""Sphinx extension: author-year labels for the book's reference lists.

sphinxcontrib-bibtex writes a chapter's ``{bibliography}`` (and the global one on the
References page) as a citation list whose labels come from the pybtex style; pybtex's ``plain``
numbers them ``[1]``, ``[2]``, ..., which clash between pages and do not match the author-year
citations in the text. This style (``bibtex_default_style: author_year_labels`` in
``_config.yml``) is pybtex's ``plain`` formatting with labels such as ``Xi et al., 2024``,
``Cao and Gao, 2022``, ``van den Brink et al., 2017``: the same label for a work on every page.

It also registers the citation style ``author_year_round`` (``bibtex_reference_style``):
sphinxcontrib-bibtex's ``author_year`` with round brackets, "Xi et al. (2024)" for
``{cite:t}`` and "(Xi et al., 2024)" for ``{cite:p}``, instead of square ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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


def _round():
    from sphinxcontrib.bibtex.style.referencing import BracketStyle

    return BracketStyle(left="(", right=")")


def _round_style():
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    @dataclass
    class RoundAuthorYear(AuthorYearReferenceStyle):
        """Author-year citations in round brackets."""

        bracket_parenthetical: object = field(default_factory=_round)
        bracket_textual: object = field(default_factory=_round)
        bracket_author: object = field(default_factory=_round)
        bracket_label: object = field(default_factory=_round)
        bracket_year: object = field(default_factory=_round)

    return RoundAuthorYear


def setup(app):
    """Sphinx entry point: registers the pybtex style ``author_year_labels`` and the citation
    style ``author_year_round``."""
    import sphinxcontrib.bibtex.plugin

    register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle)
    sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing",
                                                "author_year_round", _round_style())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
