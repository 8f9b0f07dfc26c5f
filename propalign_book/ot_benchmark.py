r"""Timing entropic OT solvers side by side (used by ``benchmarks/ot_bench.py`` and the book).

Every run happens in a fresh Python subprocess, so that its peak memory (``ru_maxrss``) is its
own; the subprocess builds the data itself from ``(n, seed)``:
:math:`z \sim 3\,\mathcal N(0, I_{12})`, :math:`x = z + 0.5\,\xi`, :math:`y = z + 0.5\,\xi'`
(two noisy copies of Gaussian points, shaped like classifier logits), one group with
:math:`n_1 = n_2 = n`, plain Euclidean cost, ``reg`` 0.05, uniform marginals.

Solvers (``SOLVERS``): ``"ours"`` (:func:`propalign_lite.match`, dense or online by size),
``"ours_online"`` (always online), ``"ours_tree"`` / ``"ours_blocked"`` (online with the
support found by k-d trees / by block passes over all pairs, wrapped in an
``ImplicitCoupling`` as ``match`` does; they also record ``nnz_per_row``, ``n_builds`` and
``support_search``), ``"pot"`` (``ot.sinkhorn``, POT's default numpy method),
``"pot_log"`` (``method="sinkhorn_log"``, numpy), ``"pot_log_torch"`` (the same on torch
tensors), ``"ott"`` (ott-jax, when installed; float64, jit-compiled, compile time included;
its stopping rule uses the L1 marginal error, stricter than POT's L2) and ``"geomloss"``
(when installed; epsilon-scaling with a fixed schedule and no stopping rule: its marginal
error is measured on the plan of its potentials, after its time and peak memory are taken). Each
reports wall-clock and CPU seconds (including the cost matrix where the solver needs one; CPU
time is less disturbed by other jobs on a shared machine), iterations, the final
marginal error :math:`\lVert P^\top \mathbf 1 - b\rVert_2` as the solver measures it, the peak
resident memory of the subprocess and its increase over the state just before solving.

Example
-------
>>> rec = run("pot", 200, tol=1e-6)          # doctest: +SKIP
>>> sorted(rec)                               # doctest: +SKIP
['err', 'mem_gb', 'mem_increase_gb', 'n', 'n_iter', 'seconds', 'solver', ...]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from propalign_lite.sinkhorn import PAPER_REG

SOLVERS = ("ours", "ours_online", "ours_tree", "ours_blocked", "pot", "pot_log", "pot_log_torch", "ott", "geomloss")

_CHILD = textwrap.dedent('''
    import json, resource, sys, time, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    solver, n, seed, reg, tol, max_iter, threads, dim, device = sys.argv[1:10]
    n, seed, reg, tol, max_iter = int(n), int(seed), float(reg), float(tol), int(max_iter)
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.normal(size=(n, int(dim)))
    x = z + 0.5 * rng.normal(size=z.shape)
    y = z + 0.5 * rng.normal(size=z.shape)
    a = np.full(n, 1.0 / n)
    out = {"solver": solver, "n": n, "dim": int(dim), "device": device, "reg": reg, "tol": tol}
    if device != "cpu":
        import torch
        out["gpu"] = torch.cuda.get_device_name(0)
    if solver in ("ours_tree", "ours_blocked"):
        from propalign_lite.sinkhorn import sinkhorn_online
        from propalign_lite.coupling import ImplicitCoupling
    elif solver.startswith("ours"):
        from propalign_lite import match
        online = True if solver == "ours_online" else None
    elif solver.startswith("pot"):
        import ot
        out["version"] = ot.__version__
        if solver == "pot_log_torch":
            import torch
            torch.set_num_threads(int(threads))
    elif solver == "ott":
        import jax, ott
        jax.config.update("jax_enable_x64", True)      # float64, as ours and POT
        from ott.geometry import pointcloud, costs
        from ott.problems.linear import linear_problem
        from ott.solvers.linear import sinkhorn
        out["version"] = ott.__version__
    elif solver == "geomloss":
        import torch, geomloss
        out["version"] = getattr(geomloss, "__version__", "?")
    def status_gb(key):
        """``VmRSS`` / ``VmHWM`` of /proc/self/status in GB, or None where it cannot be read"""
        try:
            with open("/proc/self/status") as fh:
                return next(int(l.split()[1]) for l in fh if l.startswith(key + ":")) / 2**20
        except (OSError, StopIteration):
            return None
    def measure():
        """(wall, CPU, the process's peak resident GB, the peak since the reset below)"""
        return (time.perf_counter(), time.process_time(),
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, status_gb("VmHWM"))
    # the increase is measured from the resident size before the solve to the peak during it:
    # Linux resets the peak ("VmHWM", and with it ru_maxrss) on writing 5 to clear_refs.
    # Without that, the peak of the imports (numba, torch) can exceed the solve's, and a
    # small solve showed +0 GB. mem_gb stays the whole process's peak, imports included.
    start_peak = measure()[2]
    base = status_gb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = base is not None
    except OSError:
        reset = False
    if not reset:
        base = start_peak
    t0, c0 = time.perf_counter(), time.process_time()
    if solver in ("ours_tree", "ours_blocked"):
        res = sinkhorn_online(x, y, reg, tol=tol, max_iter=max_iter, warn=False,
                              support=solver[5:], device=device)
        M = ImplicitCoupling.from_result(x, y, res)
        out.update(n_iter=res.n_iter, err=float(res.err), converged=bool(res.converged),
                   path=type(M).__name__, nnz_per_row=res.nnz / n, n_builds=res.n_builds,
                   support_search=res.support_search,
                   stages={k: round(v, 3) for k, v in (res.timings or {}).items()})
    elif solver.startswith("ours"):
        M, res = match(x, y, reg=reg, tol=tol, max_iter=max_iter, online=online,
                       return_result=True, warn=False)
        out.update(n_iter=res.n_iter, err=float(res.err), converged=bool(res.converged),
                   path=type(M).__name__)
    elif solver == "pot":
        C = ot.dist(x, y, metric="euclidean")
        G, log = ot.sinkhorn(a, a, C, reg, numItermax=max_iter, stopThr=tol, log=True)
        out.update(n_iter=int(log["niter"]) + 1, err=float(log["err"][-1]))
    elif solver == "pot_log":
        C = ot.dist(x, y, metric="euclidean")
        G, log = ot.sinkhorn(a, a, C, reg, method="sinkhorn_log", numItermax=max_iter,
                             stopThr=tol, log=True)
        out.update(n_iter=int(log["niter"]) + 1, err=float(log["err"][-1]))
    elif solver == "pot_log_torch":
        xt, yt, at = (torch.as_tensor(v, device=device) for v in (x, y, a))
        C = ot.dist(xt, yt, metric="euclidean")
        G, log = ot.sinkhorn(at, at, C, reg, method="sinkhorn_log", numItermax=max_iter,
                             stopThr=tol, log=True)
        out.update(n_iter=int(log["niter"]) + 1, err=float(log["err"][-1]))
    elif solver == "ott":
        out["backend"] = jax.default_backend()
        # above 20,000 points the cost is computed online in batches (never held whole)
        geom = pointcloud.PointCloud(jax.numpy.asarray(x), jax.numpy.asarray(y),
                                     cost_fn=costs.Euclidean(), epsilon=reg,
                                     batch_size=4096 if n > 20000 else None)
        solve = jax.jit(lambda g: sinkhorn.Sinkhorn(threshold=tol, max_iterations=max_iter)(
            linear_problem.LinearProblem(g)))
        o = solve(geom)
        jax.block_until_ready(o.f)
        out.update(n_iter=int(o.n_iters), err=float(o.errors[o.errors > -1][-1]))
    elif solver == "geomloss":
        # without KeOps, GeomLoss's online backend fails (NameError: generic_logsumexp, seen
        # on a GPU machine): take the tensorized one, which holds the n x n cost
        import importlib.util
        out["backend"] = "online" if importlib.util.find_spec("pykeops") else "tensorized"
        loss = geomloss.SamplesLoss("sinkhorn", p=1, blur=reg, scaling=0.9, debias=False,
                                    potentials=True, backend=out["backend"])
        f, g = loss(torch.as_tensor(x, device=device), torch.as_tensor(y, device=device))
        f, g = f.double().cpu().numpy().ravel(), g.double().cpu().numpy().ravel()  # (1, n)
        done = measure()   # before the check below
        # GeomLoss has no stopping rule (epsilon-scaling, fixed schedule): measure the final
        # marginal error of its plan exp((f + g - C) / reg) a b^T like the others', by one
        # exact float64 pass in blocks (log P = alpha_i + beta_j - C_ij / reg)
        from propalign_lite._blocked import BlockedCost
        lse = BlockedCost(x, y, dtype=np.float64).lse(f / reg + np.log(a), g / reg + np.log(a),
                                                      reg, axis=0)
        out.update(n_iter=None, err=float(np.linalg.norm(np.exp(lse) - a)))
    if solver != "geomloss":
        done = measure()
    out["seconds"] = done[0] - t0
    out["cpu_seconds"] = done[1] - c0
    out["mem_gb"] = max(done[2], start_peak)
    out["mem_increase_gb"] = (done[3] if reset else done[2]) - base
    if device != "cpu" and solver != "ott":
        out["gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print("RESULT " + json.dumps(out))
''')


def available(solver: str, python: str | None = None) -> bool:
    """Whether the packages a solver needs can be imported here (or by ``python``)."""
    import importlib.util

    need = {"ott": "ott", "geomloss": "geomloss", "pot_log_torch": "torch"}.get(solver)
    if need is None:
        return True
    if python is None:
        return importlib.util.find_spec(need) is not None
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({need!r}) is None)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def run(solver: str, n: int, *, seed: int = 0, reg: float = PAPER_REG, tol: float = 1e-6,
        max_iter: int = 10000, threads: int = 2, timeout: float | None = None,
        python: str | None = None, dim: int = 12, device: str = "cpu") -> dict:
    """Run one solver on the size-``n`` problem (points in ``dim`` dimensions) in a
    subprocess; returns its record.

    ``device="cuda"`` runs the torch solvers (ours_blocked, pot_log_torch, geomloss) on the
    GPU and records its peak memory (``gpu_mem_gb``); ott-jax uses JAX's default backend.

    A run that exceeds ``timeout`` seconds returns ``{"timed_out": True, ...}``.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {SOLVERS}")
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [python or sys.executable, "-c", _CHILD, solver, str(n), str(seed), str(reg),
           str(tol), str(max_iter), str(threads), str(int(dim)), str(device)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"solver": solver, "n": n, "dim": int(dim), "device": device,
                "timed_out": True, "seconds": timeout}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"solver {solver!r} at n={n} failed:\n{proc.stderr[-2000:]}")
