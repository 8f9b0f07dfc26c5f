"""Entropic OT benchmark: ours against POT (numpy, torch) and, when installed, ott-jax/GeomLoss.

Not part of the tests. Every run is a fresh subprocess (own peak memory) on the same data:
12-d, two noisy copies (noise 0.5) of Gaussian points of scale 3, reg 0.05, uniform marginals,
plain Euclidean cost (see propalign_book.ot_benchmark).

    .venv/bin/python benchmarks/ot_bench.py --n 2000 5000 --solvers ours pot
    .venv/bin/python benchmarks/ot_bench.py --n 2000 --solvers pot_log pot_log_torch --max-iter 50
    .venv/bin/python benchmarks/ot_bench.py --n 20000 100000 --solvers ours --json big.json
    .venv/bin/python benchmarks/ot_bench.py --n 2000 --solvers pot ott --python peers/bin/python

Prints seconds, iterations, final marginal error, peak memory and the time ratio of every
solver to POT's default ``ot.sinkhorn`` at the same n (when it ran). A solver capped by
``--max-iter`` before ``--tol`` is marked as not converged; compare seconds per iteration then.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from propalign_book.ot_benchmark import SOLVERS, available, run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[2000])
    p.add_argument("--solvers", nargs="+", default=["ours", "pot"], choices=SOLVERS)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--reg", type=float, default=0.05)
    p.add_argument("--max-iter", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=12, help="dimension of the points (default 12)")
    p.add_argument("--device", default="cpu",
                   help="cuda: the torch solvers (ours_blocked, pot_log_torch, geomloss) on the GPU")
    p.add_argument("--json", default=None, help="append the records to this JSON-lines file")
    p.add_argument("--python", default=None,
                   help="interpreter for the solver subprocesses (e.g. a venv with ott-jax)")
    args = p.parse_args(argv)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()}, "
          f"{os.cpu_count()} CPUs, threads={args.threads}, load {os.getloadavg()[0]:.1f}; "
          f"reg={args.reg}, tol={args.tol}, max_iter={args.max_iter}")
    head = (f"{'n':>7} {'solver':>14} {'seconds':>9} {'cpu s':>9} {'iters':>6} {'marg. err':>10} "
            f"{'conv':>5} {'peak GB':>8} {'+GB':>6} {'POT/ours-time':>13} {'nnz/row':>8}")
    print(head)
    records = []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = os.environ.get("BENCH_COMMIT")        # set when running from a `git archive` copy
    try:
        commit = commit or subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    # POT's default solver runs first at every n, so that every other row can show its ratio
    order = sorted(args.solvers, key=lambda s: s != "pot")
    # numba compiles our kernels at their first call and caches them on disk: in a fresh
    # checkout the first timed row would include that (8.3 s at n = 1,000, 2026-12-04), so
    # each of ours runs once, untimed, on a small problem first
    kw = dict(seed=args.seed, reg=args.reg, tol=args.tol, max_iter=args.max_iter,
              threads=args.threads, timeout=args.timeout, python=args.python, dim=args.dim,
              device=args.device)
    for s in order:
        if s.startswith("ours") and available(s, args.python):
            run(s, 500, **kw)
    for n in args.n:
        ref = None
        for s in order:
            if not available(s, args.python):
                print(f"{n:>7} {s:>14}  not installed here")
                continue
            r = run(s, n, **kw)
            r["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            r["machine"] = f"{platform.node()}, {os.cpu_count()} CPUs"
            r["load"] = round(os.getloadavg()[0], 1)
            r["commit"] = commit
            records.append(r)
            if args.json:                       # one line per run, written as soon as it ends
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
            if r.get("timed_out"):
                print(f"{n:>7} {s:>14}  timed out after {args.timeout} s")
                continue
            if s == "pot":
                ref = r["seconds"]
            conv = r.get("converged")
            if conv is None and r.get("err") is not None:
                conv = r["err"] < args.tol
            ratio = f"{ref / r['seconds']:.2g}x" if ref and s != "pot" else ""
            err = "n/a" if r.get("err") is None else f"{r['err']:.2e}"
            nnz = f"{r['nnz_per_row']:.1f}" if r.get("nnz_per_row") is not None else ""
            print(f"{n:>7} {s:>14} {r['seconds']:9.3f} {r['cpu_seconds']:9.3f} "
                  f"{str(r.get('n_iter')):>6} {err:>10} "
                  f"{str(conv):>5} {r['mem_gb']:8.3f} {r['mem_increase_gb']:6.3f} {ratio:>13}"
                  f" {nnz:>8}" + (f"  GPU {r['gpu_mem_gb']:.2f} GB" if "gpu_mem_gb" in r else ""),
                  flush=True)
    return records


if __name__ == "__main__":
    main()
