"""Tests of the Dask runner: in-process vs a 2-worker LocalCluster, a killed worker, resumed
sweeps, failing units and the command line."""
from __future__ import annotations

import importlib
import os
import signal

import numpy as np
import pytest

from propalign_book.experiments import UNITS, settings_for, unit
from propalign_book.run import main as run_main
from propalign_book.run import parse_seeds
from propalign_book.runner import UnitsFailed, make_client, run_units
from propalign_book.store import ResultsStore

SETTINGS = dict(settings_for("toy.matching", "ci"), n_per_group=30)


def _strip(records):
    return [{k: v for k, v in r.items() if k != "_run"} for r in records]


def _assert_same_records(a, b):
    assert len(a) == len(b)
    for x, y in zip(_strip(a), _strip(b)):
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), k


@pytest.fixture(scope="module")
def client():
    """Two worker processes, each offering one 'GPU' resource (a label: units run on CPU)."""
    c = make_client(workers=2, gpu=True)
    c.wait_for_workers(2)
    c.run(importlib.import_module, "propalign_book.experiments")     # both workers ready
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def test_two_worker_cluster_gives_the_in_process_records(client, tmp_path):
    seeds = [1, 2, 3, 4, 5, 6]
    local = run_units("toy.matching", SETTINGS, seeds, store=tmp_path / "a", progress=False)
    remote = run_units("toy.matching", SETTINGS, seeds, store=tmp_path / "b", client=client,
                       progress=False, gpu=True)
    _assert_same_records(local, remote)
    assert [r["_run"]["seed"] for r in remote] == seeds
    assert {r["_run"]["key"] for r in local} == {r["_run"]["key"] for r in remote}
    assert len({r["_run"]["pid"] for r in remote}) == 2          # both workers took units
    assert all(r["_run"]["pid"] != os.getpid() for r in remote)
    # the stored files are byte-for-byte the same records
    a, b = ResultsStore(tmp_path / "a"), ResultsStore(tmp_path / "b")
    assert a.keys() == b.keys() and len(a.keys()) == len(seeds)
    for k in a.keys():
        _assert_same_records([a.get(k)], [b.get(k)])


def test_killed_worker_loses_no_record_and_rerun_completes_only_the_missing(client,
                                                                            tmp_path):
    seeds = list(range(10, 18))
    slow = dict(SETTINGS, sleep_s=0.2)
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one_worker(record):
        if not killed:                      # after the first record arrives
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    records = run_units("toy.matching", slow, seeds, store=tmp_path, client=client,
                        progress=False, on_record=kill_one_worker)
    assert killed and len(records) == len(seeds)
    store = ResultsStore(tmp_path)
    assert all(store.status(r["_run"]["key"]) == "ok" for r in records)
    _assert_same_records(records, run_units("toy.matching", slow, seeds, store=False,
                                            progress=False))

    # an interrupted sweep (the client stops after 3 records): those 3 are kept, whole
    interrupted = tmp_path / "interrupted"
    seen = []

    def stop_after_three(record):
        seen.append(record)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_units("toy.matching", slow, seeds, store=interrupted, client=client,
                  progress=False, on_record=stop_after_three)
    st = ResultsStore(interrupted)
    assert len(st.keys("toy.matching")) == 3
    assert all(st.status(k) == "ok" for k in st.keys())
    assert not list(interrupted.rglob("*.part"))
    rerun = run_units("toy.matching", slow, seeds, store=interrupted, progress=False)
    sources = [r["_run"]["source"] for r in rerun]
    assert sources.count("store") == 3 and sources.count("computed") == len(seeds) - 3
    _assert_same_records(rerun, records)


def test_failing_unit_keeps_the_others_and_says_what_to_do(tmp_path):
    @unit("testonly.flaky")
    def flaky(settings, seed):
        if seed == 2 and not settings.get("fixed"):
            raise RuntimeError("boom")
        return {"seed_squared": seed ** 2}

    try:
        with pytest.raises(UnitsFailed,
                           match=r"1 of 3 units of 'testonly.flaky' failed \(seeds \[2\].*again"):
            run_units("testonly.flaky", {}, [1, 2, 3], store=tmp_path, progress=False)
        assert len(ResultsStore(tmp_path).keys("testonly.flaky")) == 2
    finally:
        del UNITS["testonly.flaky"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown experiment unit 'nope.x'"):
        run_units("nope.x", {}, [1], store=False)
    with pytest.raises(ValueError, match="seeds must be a list"):
        run_units("toy.matching", SETTINGS, 3, store=False)
    with pytest.raises(ValueError, match="duplicates"):
        run_units("toy.matching", SETTINGS, [1, 1], store=False)
    with pytest.raises(ValueError, match="store must be"):
        run_units("toy.matching", SETTINGS, [1], store=3)
    with pytest.raises(ValueError, match="choose one of"):
        make_client(workers=2, scheduler="tcp://x:1")
    assert make_client() is None


def test_seeds_key_is_not_part_of_a_units_settings(tmp_path):
    a = run_units("toy.matching", dict(SETTINGS, seeds=[1, 2]), [1], store=tmp_path,
                  progress=False)
    b = run_units("toy.matching", dict(SETTINGS, seeds=[1, 2, 3]), [1], store=tmp_path,
                  progress=False)
    assert b[0]["_run"]["source"] == "store" and a[0]["_run"]["key"] == b[0]["_run"]["key"]


def test_cli_runs_and_skips_on_rerun(tmp_path, capsys):
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    with pytest.raises(ValueError):
        parse_seeds("5-2")
    args = ["--chapters", "toy", "--seeds", "1-3", "--store", str(tmp_path), "--no-progress"]
    assert run_main(args) == 0
    assert "3 records (3 computed, 0 from the store)" in capsys.readouterr().out
    assert run_main(args) == 0
    assert "3 records (0 computed, 3 from the store)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_main(["--chapters", "nonexistent"])
