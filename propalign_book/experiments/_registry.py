"""The registry of experiment units (see :mod:`propalign_book.experiments`).

One route leads from a chapter's profile to the settings of each of its units,
:func:`settings_for`; the chapters and the command line (:mod:`propalign_book.run`) both take
it, so a unit computed by ``python -m propalign_book.run`` is the one the chapter reads back
from the results store.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["UNITS", "unit", "get_unit", "chapter_of", "settings_for", "variants_of",
           "unit_settings", "with_first_seed", "fingerprint_of"]

#: unit name -> function ``(settings, seed) -> record``
UNITS: dict[str, Callable] = {}


def unit(name: str, *, derive: Callable | None = None, variants: Callable | None = None,
         fingerprint: Callable | None = None):
    """Register the decorated function as the experiment unit ``name``.

    Parameters
    ----------
    derive : callable, optional
        ``derive(chapter_settings, **params) -> dict``: the unit's settings from its chapter's
        (a profile with the chapter's parameters applied; its ``"profile"`` entry names the
        profile). Default: the chapter's settings as they are.
    variants : callable, optional
        ``variants(chapter_settings) -> list of dict``: the ``params`` for which the chapter
        runs the unit (e.g. one per data set); default ``[{}]``. The command line runs all.
    fingerprint : callable, optional
        ``fingerprint(settings) -> str``: a fingerprint of the data the unit reads.
    """
    if not isinstance(name, str) or "." not in name:
        raise ValueError(f"name must look like '<chapter>.<what>', got {name!r}")

    def register(fn):
        if name in UNITS and UNITS[name] is not fn:
            raise ValueError(f"unit {name!r} is already registered")
        for attr, value in (("derive", derive), ("variants", variants),
                            ("fingerprint", fingerprint)):
            if value is not None:
                setattr(fn, attr, value)
        fn.unit_name = name
        UNITS[name] = fn
        return fn

    return register


def get_unit(name: str) -> Callable:
    """The unit function registered as ``name``; a clear error for unknown names."""
    if name not in UNITS:
        raise ValueError(f"unknown experiment unit {name!r}; registered: {sorted(UNITS)}")
    return UNITS[name]


def chapter_of(name: str) -> str:
    """``"prediction.seed"`` -> ``"prediction"``."""
    return name.split(".", 1)[0]


def _chapter_settings(name: str, profile) -> dict:
    if isinstance(profile, dict):
        return profile
    from ..profiles import PROFILES, get_profile

    if chapter_of(name) not in PROFILES:          # a unit without a chapter (the toy)
        if profile not in ("ci", "paper"):
            raise ValueError(f"profile must be 'ci' or 'paper', got {profile!r}")
        return {"profile": profile}
    return get_profile(chapter_of(name), profile)


def settings_for(name: str, profile="ci", **params) -> dict:
    """The settings of unit ``name``: the one route from a chapter's profile to its units.

    ``profile`` is a profile name (``"ci"``, ``"paper"``) or the chapter's settings as a dict
    (:func:`propalign_book.profiles.get_profile` with the chapter's parameters applied, what
    a chapter holds); ``params`` are the unit's own (e.g. ``dataset="bmmc"``, see
    :func:`variants_of`). The list of seeds is removed (:func:`unit_settings`).

    >>> import propalign_book.experiments  # registers the units
    >>> settings_for("realcells.matching", "ci", dataset="mop")["dataset"]
    'mop'
    """
    fn = get_unit(name)
    chapter = _chapter_settings(name, profile)
    derive = getattr(fn, "derive", None)
    if derive is None:
        if params:
            raise ValueError(f"unit {name!r} takes no parameters, got {sorted(params)}")
        return unit_settings(chapter)
    return unit_settings(derive(chapter, **params))


def variants_of(name: str, profile="ci") -> list[dict]:
    """The ``params`` of :func:`settings_for` for which the chapter runs unit ``name``.

    >>> import propalign_book.experiments
    >>> variants_of("realcells.transfer")
    [{'dataset': 'bmmc'}, {'dataset': 'mop'}]
    """
    fn = get_unit(name)
    variants = getattr(fn, "variants", None)
    return [{}] if variants is None else list(variants(_chapter_settings(name, profile)))


def unit_settings(settings: dict) -> dict:
    """A chapter's settings as one unit sees them: the list of ``seeds`` removed (each unit
    runs one seed, so the list must not change the key of a unit)."""
    if not isinstance(settings, dict):
        raise ValueError(f"settings must be a dict, got {type(settings).__name__}")
    return {k: v for k, v in settings.items() if k != "seeds"}


def with_first_seed(chapter_settings: dict, key: str, *, drop=()) -> dict:
    """A chapter's settings as its unit sees them (:func:`unit_settings`, minus ``drop``),
    with ``key`` = the first of the chapter's seeds (``None`` without seeds): the seed whose
    record keeps what the chapter's figures need."""
    s = {k: v for k, v in unit_settings(chapter_settings).items() if k not in drop}
    seeds = chapter_settings.get("seeds")
    s[key] = int(seeds[0]) if seeds else None
    return s


def fingerprint_of(name: str, settings: dict) -> str:
    """The data fingerprint of unit ``name`` under ``settings`` (``""`` if it has none)."""
    fn = get_unit(name)
    return str(fn.fingerprint(settings)) if hasattr(fn, "fingerprint") else ""
