"""The registry of experiment units (see :mod:`propalign_book.experiments`)."""
from __future__ import annotations

from typing import Callable

#: unit name -> function ``(settings, seed) -> record``
UNITS: dict[str, Callable] = {}


def unit(name: str, *, settings_for: Callable | None = None,
         fingerprint: Callable | None = None):
    """Register the decorated function as the experiment unit ``name``.

    ``settings_for(profile) -> dict`` and ``fingerprint(settings) -> str`` are optional (see
    the package docstring).
    """
    if not isinstance(name, str) or "." not in name:
        raise ValueError(f"name must look like '<chapter>.<what>', got {name!r}")

    def register(fn):
        if name in UNITS and UNITS[name] is not fn:
            raise ValueError(f"unit {name!r} is already registered")
        if settings_for is not None:
            fn.settings_for = settings_for
        if fingerprint is not None:
            fn.fingerprint = fingerprint
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


def settings_for(name: str, profile: str = "ci") -> dict:
    """The settings of unit ``name`` under ``profile``, without the list of seeds."""
    fn = get_unit(name)
    if hasattr(fn, "settings_for"):
        settings = fn.settings_for(profile)
    else:
        from ..profiles import get_profile

        settings = get_profile(chapter_of(name), profile)
    return unit_settings(settings)


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
