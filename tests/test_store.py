"""Tests of the results store, recorded runs and the page's records sentence."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from propalign_book.experiments import settings_for
from propalign_book.recorded import check_recorded, recorded_for, save_recorded
from propalign_book.report import records_note
from propalign_book.runner import run_units
from propalign_book.store import (ROOT, CorruptRecordError, ResultsStore, decode, encode,
                                  package_version, settings_hash)

RECORD = {"trace": 0.125, "nan": float("nan"), "n": 3, "name": "PS+OT", "ok": True,
          "none": None, "per_group": np.array([0.1, 0.2, 0.3]),
          "ints": np.arange(6, dtype=np.int32).reshape(2, 3), "labels": np.array(["a", "b"]),
          "nested": {"curve": [1.0, 2.0], "arr": np.float32(1.5)}}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _same(a[k], b[k])
        elif isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])
        elif isinstance(a[k], float) and np.isnan(a[k]):
            assert np.isnan(b[k])
        else:
            assert a[k] == b[k]


def test_encode_decode_round_trip_is_exact():
    x = np.random.default_rng(0).normal(size=(4, 3))
    back = decode(json.loads(json.dumps(encode({"x": x}))))["x"]
    assert back.dtype == x.dtype and np.array_equal(back, x)
    with pytest.raises(TypeError, match="cannot store"):
        encode({"obj": object()})
    with pytest.raises(TypeError, match="keys must be str"):
        encode({1: 2})


def test_put_get_round_trip(tmp_path):
    store = ResultsStore(tmp_path)
    key = store.key("toy.matching", {"a": 1}, 3)
    path = store.put(key, RECORD, unit="toy.matching", settings={"a": 1}, seed=3,
                     meta={"duration_s": 1.5})
    assert path == tmp_path / "toy.matching" / f"{key}.json"
    _same(store.get(key), RECORD)
    assert store.status(key) == "ok" and key in store
    assert store.load(key)["meta"]["duration_s"] == 1.5
    assert store.keys("toy.matching") == [key]
    assert store.get("0" * 20) is None and store.status("0" * 20) == "missing"


def test_key_depends_on_everything_it_should():
    k = ResultsStore.key("u.x", {"a": 1, "b": [1, 2]}, 1, version="v1")
    assert k == ResultsStore.key("u.x", {"b": [1, 2], "a": 1}, 1, version="v1")  # key order
    others = [ResultsStore.key("u.y", {"a": 1, "b": [1, 2]}, 1, version="v1"),
              ResultsStore.key("u.x", {"a": 2, "b": [1, 2]}, 1, version="v1"),
              ResultsStore.key("u.x", {"a": 1, "b": [1, 2]}, 2, version="v1"),
              ResultsStore.key("u.x", {"a": 1, "b": [1, 2]}, 1, version="v2"),
              ResultsStore.key("u.x", {"a": 1, "b": [1, 2]}, 1, version="v1",
                               fingerprint="sha256:ab")]
    assert len({k, *others}) == 6
    assert package_version().startswith("0.") and "+src." in package_version()
    with pytest.raises(ValueError, match="unit must be"):
        ResultsStore.key("", {}, 1)


@pytest.mark.parametrize("damage", ["truncate", "edit", "garbage", "empty"])
def test_corrupt_or_partial_record_is_detected_not_read(tmp_path, damage):
    store = ResultsStore(tmp_path)
    key = store.key("toy.matching", {}, 1)
    path = store.put(key, RECORD, unit="toy.matching", settings={}, seed=1)
    raw = path.read_text()
    if damage == "truncate":           # a partial write
        path.write_text(raw[: len(raw) // 2])
    elif damage == "edit":             # a valid JSON file whose content was changed
        path.write_text(raw.replace('"trace":0.125', '"trace":0.999'))
        assert json.loads(path.read_text())          # still parses
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    else:
        path.write_text("")
    assert store.status(key) == "corrupt"
    assert store.get(key) is None and key not in store
    with pytest.raises(CorruptRecordError):
        ResultsStore.read_file(path)
    # the runner treats it as missing: recomputed and overwritten with a valid record
    recs = run_units("toy.matching", {"n_per_group": 20}, [1], store=store, progress=False)
    assert recs[0]["_run"]["source"] == "computed"


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    key = store.key("toy.matching", {}, 1)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(key, RECORD, unit="toy.matching", settings={}, seed=1)
    assert list(tmp_path.rglob("*")) == [tmp_path / "toy.matching"]   # no temp file, no record
    with pytest.raises(TypeError):
        store.put(key, {"bad": object()}, unit="toy.matching", settings={}, seed=1)
    assert store.status(key) == "missing"


def test_recorded_runs_match_and_go_stale(tmp_path):
    settings = settings_for("toy.matching", "ci")
    recs = run_units("toy.matching", settings, [1, 2], store=False, progress=False)
    save_recorded("toy.matching", settings, recs, directory=tmp_path)
    found, stale = recorded_for("toy.matching", settings, directory=tmp_path)
    assert [r["_run"]["source"] for r in found] == ["recorded", "recorded"]
    assert found[0]["trace"] == recs[0]["trace"] and stale == []
    assert check_recorded(tmp_path) == []
    # the same records under changed settings are reported, not shown
    found, stale = recorded_for("toy.matching", dict(settings, noise=0.5), directory=tmp_path)
    assert found == [] and [s["differs"] for s in stale] == [["noise"], ["noise"]]
    other = dict(settings, reg=0.5)
    save_recorded("toy.matching", other, run_units("toy.matching", other, [3], store=False,
                                                   progress=False), directory=tmp_path)
    problems = check_recorded(tmp_path)
    assert len(problems) == 1 and "['reg']" in problems[0]
    assert "were made with other settings" in records_note(found, stale=stale)


def test_committed_recorded_runs_match_current_settings():
    """CI check: every record under results/recorded/ still matches its profile's settings.
    With no record committed there is nothing to check: the test says so (a skip in the
    report) instead of passing on an empty list."""
    from propalign_book.recorded import RECORDED_DIR, _files

    files = list(_files(RECORDED_DIR))
    if not files:
        pytest.skip(f"no recorded run is committed under {RECORDED_DIR.name}/")
    assert check_recorded() == []


def test_records_note_says_count_origin_hardware_and_date(tmp_path):
    recs = run_units("toy.matching", {"n_per_group": 20}, [1, 2], store=tmp_path,
                     progress=False)
    again = run_units("toy.matching", {"n_per_group": 20}, [1, 2, 3], store=tmp_path,
                      progress=False)
    note = records_note(again)
    assert note.startswith("This page shows 3 record(s) of `toy.matching` (seeds 1, 2, 3; "
                           "1 computed in this build, 2 read from the results store)")
    assert recs[0]["_run"]["date"][:10] in note and "CPUs" in note
    assert settings_hash({"a": 1}) == settings_hash({"a": 1}) != settings_hash({"a": 2})


def test_a_units_key_depends_on_the_library_and_its_own_code_only():
    """Another chapter's unit code, the report or the runner do not change a unit's key; the
    library and every book module the unit imports (even inside a function) do."""
    from propalign_book.store import source_files

    def names(unit):
        return {p.relative_to(ROOT).as_posix() for p in source_files(unit)}

    toy, cite = names("toy.matching"), names("citeseq.seed")
    lib = {p.relative_to(ROOT).as_posix() for p in (ROOT / "propalign_lite").rglob("*.py")}
    assert lib <= toy and lib <= cite
    assert "propalign_book/experiments/toy.py" in toy
    assert not {"propalign_book/experiments/synthetic.py", "propalign_book/report.py",
                "propalign_book/runner.py"} & toy
    # citeseq_seed imports plots.embeddings_2d inside the function: its records depend on it
    assert {"propalign_book/experiments/citeseq.py", "propalign_book/plots.py"} <= cite
    # ablations.specific runs the citeseq and baselines units: their code is part of its key
    spec = names("ablations.specific")
    assert {"propalign_book/experiments/citeseq.py",
            "propalign_book/experiments/baselines.py"} <= spec
    assert package_version("toy.matching") != package_version("citeseq.seed")


def test_provenance_takes_the_commit_from_the_environment_where_git_is_missing(monkeypatch):
    # a GPU machine gets a copy of the tree without .git: the run names its commit instead
    from propalign_book import store

    monkeypatch.setenv("PROPALIGN_COMMIT", "abc123def456")
    store._commit.cache_clear()
    try:
        assert store.provenance()["commit"] == "abc123def456"
    finally:
        store._commit.cache_clear()
