"""Recorded runs: records committed under ``results/recorded/`` with their provenance.

A GPU machine or cluster runs the ``paper`` profile (``python -m propalign_book.run
--profile paper ... --record``); its records are copied here, one verified file per unit
(the format of :mod:`propalign_book.store`), with the commit, settings, hardware, date and
duration of each unit. Pages show them next to the paper and to their own build
(:func:`recorded_for`), and :func:`check_recorded` (run by the tests, hence by CI) fails when
a committed record no longer matches the current settings of its profile.

Unlike the build store, recorded runs are matched by unit, *settings* and seed only, not by
package version: a recorded run stays valid across code changes that do not change the
settings, and says which commit produced it.
"""
from __future__ import annotations

import pathlib

from .experiments._registry import settings_for, unit_settings, variants_of
from .store import ROOT, CorruptRecordError, ResultsStore, settings_hash

__all__ = ["RECORDED_DIR", "save_recorded", "recorded_for", "check_recorded"]

RECORDED_DIR = ROOT / "results" / "recorded"


def _files(directory, unit: str | None = None):
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{unit}/*.json" if unit else "*/*.json"))


def save_recorded(name: str, settings: dict, records: list[dict], *,
                  directory=None) -> list[pathlib.Path]:
    """Copy ``records`` (as returned by :func:`~propalign_book.runner.run_units` for
    ``name`` and ``settings``) into the recorded-runs directory."""
    store = ResultsStore(directory if directory is not None else RECORDED_DIR)
    settings = unit_settings(settings)
    paths = []
    for rec in records:
        run = dict(rec["_run"])
        record = {k: v for k, v in rec.items() if k != "_run"}
        meta = {k: v for k, v in run.items() if k not in ("unit", "seed", "key", "source",
                                                           "store")}
        paths.append(store.put(run["key"], record, unit=name, settings=settings,
                               seed=run["seed"], meta=meta))
    return paths


def recorded_for(name: str, settings: dict, seeds=None, *, directory=None):
    """Recorded records of unit ``name`` under ``settings``.

    Returns ``(records, stale)``: the records whose settings equal ``settings`` (each with a
    ``"_run"`` entry, ``source="recorded"``), in seed order and restricted to ``seeds`` when
    given; and a list of ``{"path", "seed", "differs"}`` for records of this unit made
    under other settings (``differs``: the setting names that changed) or corrupt.
    """
    settings = unit_settings(settings)
    want = settings_hash(settings)
    records, stale = [], []
    for path in _files(directory if directory is not None else RECORDED_DIR, name):
        try:
            body = ResultsStore.read_file(path)
        except CorruptRecordError as err:
            stale.append({"path": str(path), "seed": None, "differs": [f"corrupt: {err}"]})
            continue
        if seeds is not None and body["seed"] not in seeds:
            continue
        if body["settings_hash"] != want:
            stale.append({"path": str(path), "seed": body["seed"],
                          "differs": _differs(body["settings"], settings)})
            continue
        rec = dict(body["record"])
        rec["_run"] = dict(body["meta"], unit=name, seed=body["seed"], key=body["key"],
                           source="recorded", store=str(path.parent))
        records.append(rec)
    records.sort(key=lambda r: r["_run"]["seed"])
    return records, stale


def _differs(old: dict, new: dict) -> list[str]:
    keys = set(old) | set(new)
    return sorted(k for k in keys if settings_hash({"v": old.get(k)})
                  != settings_hash({"v": new.get(k)}))


def check_recorded(directory=None) -> list[str]:
    """Check every recorded record against the current settings of its unit and profile.

    Returns a list of problems (empty when all records match): corrupt files, unknown units,
    and records whose settings differ from ``settings_for(unit, profile)`` (naming the
    settings that changed).
    """
    from .experiments import UNITS

    problems = []
    for path in _files(directory if directory is not None else RECORDED_DIR):
        try:
            body = ResultsStore.read_file(path)
        except CorruptRecordError as err:
            problems.append(str(err))
            continue
        name = body["unit"]
        if name not in UNITS:
            problems.append(f"{path}: unknown unit {name!r}")
            continue
        profile = body["settings"].get("profile", "paper")
        variants = [settings_for(name, profile, **params)
                    for params in variants_of(name, profile)]
        current = next((s for s in variants if settings_hash(s) == body["settings_hash"]),
                       variants[0])
        if settings_hash(current) != body["settings_hash"]:
            problems.append(f"{path}: settings of {name!r} (profile {profile!r}) changed since "
                            f"it was recorded: {_differs(body['settings'], current)}")
    return problems
