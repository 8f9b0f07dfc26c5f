"""Experiment units: the heavy work of the chapters, one plain function per unit of work.

A unit is a top-level function ``unit(settings: dict, seed: int) -> dict``. It is
deterministic given ``(settings, seed)``, generates or loads its data itself (seeded from the
settings) and returns a *record*: a dict of JSON-able values and small numpy arrays. The
runner (:func:`propalign_book.runner.run_units`) executes units through Dask and keeps the
records in a results store (:mod:`propalign_book.store`); chapters aggregate the records.

Registry
--------
``UNITS`` maps a unit name (``"<chapter>.<what>"``, e.g. ``"prediction.seed"``) to its
function. A chapter module ``propalign_book/experiments/<chapter>.py`` registers its units
either with the :func:`unit` decorator or by defining a module-level dict ``UNITS``; every
module listed in ``CHAPTER_MODULES`` that exists is imported here.

A unit may carry three optional attributes (set by the decorator):

``derive(chapter_settings, **params) -> dict``
    the unit's settings from its chapter's profile (default: the chapter's settings as they
    are). :func:`settings_for` is the one route from a profile to a unit's settings; the
    chapters and the command line both take it;
``variants(chapter_settings) -> list of dict``
    the ``params`` for which the chapter runs the unit (e.g. one per data set), so that
    the command line runs what the chapter reads;
``fingerprint(settings) -> str``
    a fingerprint of the data the unit reads (default ``""``: the data are generated from
    the settings), part of the store key.

Example
-------
>>> from propalign_book.experiments import UNITS
>>> record = UNITS["toy.matching"]({"n_groups": 2, "n_per_group": 20, "noise": 0.1}, 0)
>>> sorted(record)[:2]
['chance_trace', 'latent_mse']
"""
from __future__ import annotations

import importlib

from ._data import cite_data, cite_source
from ._registry import UNITS, chapter_of, fingerprint_of, settings_for, unit, variants_of

#: Chapter modules whose units are registered (a missing module is skipped).
CHAPTER_MODULES = ("toy", "synthetic", "prediction", "citeseq", "baselines", "ablations",
                   "theory", "specific_variation", "realdata", "realcells", "trust", "trust_reg")

for _name in CHAPTER_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_name}":
            raise
        continue
    for _unit_name, _fn in getattr(_module, "UNITS", {}).items():
        UNITS.setdefault(_unit_name, _fn)

__all__ = ["UNITS", "CHAPTER_MODULES", "chapter_of", "cite_data", "cite_source", "fingerprint_of",
           "settings_for", "unit", "variants_of"]
