"""The OT benchmark harness (benchmarks/ot_bench.py, the performance page)."""
import importlib.util
import sys

import pytest

from propalign_book.ot_benchmark import available, run


def test_ours_and_pot_records_on_one_problem():
    ours, pot = run("ours", 300, tol=1e-6), run("pot", 300, tol=1e-6, reg=0.1)
    for rec in (ours, pot):
        assert rec["n"] == 300 and rec["seconds"] > 0 and rec["mem_gb"] > 0
        assert rec["err"] < 1e-6 and rec["tol"] == 1e-6 and rec["dim"] == 12
    # the settings are recorded (records at reg 0.1 once looked like the figure's reg 0.05)
    assert ours["reg"] == 0.05 and pot["reg"] == 0.1
    assert ours["converged"] and ours["n_iter"] <= pot["n_iter"]


def test_available_checks_the_given_interpreter():
    assert available("pot") and available("pot", python=sys.executable)
    for solver, module in (("ott", "ott"), ("geomloss", "geomloss")):
        here = importlib.util.find_spec(module) is not None
        assert available(solver) == here == available(solver, python=sys.executable)


def test_bad_solver_and_size():
    with pytest.raises(ValueError, match="unknown solver"):
        run("nope", 100)
    with pytest.raises(ValueError, match="n must be"):
        run("ours", 1)


def test_geomloss_marginal_error_is_measured_on_its_plan():
    """GeomLoss returns potentials of shape (1, n); flattening them wrongly gave a marginal
    error of about 1 for a plan that meets its marginals to 1e-14."""
    pytest.importorskip("geomloss")
    rec = run("geomloss", 300, tol=1e-6)
    assert rec["err"] < 1e-6


def test_memory_increase_is_the_solves_even_when_the_imports_peaked_higher(tmp_path,
                                                                           monkeypatch):
    # the performance page's memory panel was empty: in its kernel the imports had peaked
    # above the small solves, and "peak after - peak before" was 0 for every n. A
    # sitecustomize that touches 400 MB at start-up stands in for such imports.
    (tmp_path / "sitecustomize.py").write_text("_b = b'x' * (400 * 2**20)\ndel _b\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    r = run("ours_online", 500)
    assert r["mem_gb"] > 0.4                        # the process peak includes start-up
    assert 0.005 < r["mem_increase_gb"] < 0.4       # the solve's own increase does not


def test_the_command_runs_each_of_ours_once_untimed_before_its_rows(monkeypatch, capsys):
    # a fresh checkout's first row of ours included numba's compilation (8.3 s at n = 1,000
    # against 0.4 s warm, 2026-12-04): each of ours now runs once on a small problem first
    import importlib.util as iu
    from pathlib import Path
    spec = iu.spec_from_file_location(
        "ot_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "ot_bench.py")
    bench = iu.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = []

    def fake_run(solver, n, **kw):
        calls.append((solver, n))
        return {"solver": solver, "n": n, "seconds": 1.0, "cpu_seconds": 1.0, "mem_gb": 0.1,
                "mem_increase_gb": 0.0, "err": 1e-7, "n_iter": 3}
    monkeypatch.setattr(bench, "run", fake_run)
    records = bench.main(["--n", "2000", "--solvers", "ours_blocked", "pot"])
    assert calls == [("ours_blocked", 500), ("pot", 2000), ("ours_blocked", 2000)]
    assert [(r["solver"], r["n"]) for r in records] == [("pot", 2000), ("ours_blocked", 2000)]
