"""The plans of align's large groups: how dense, how their support grows, what shortcuts cost.

Not part of the tests. It simulates the atlas of ``benchmarks/align_atlas.py`` (``--n`` paired
cells in 45 types, proteins unpaired by a shuffle), trains the two propensity classifiers of
``align`` (an MLP, 3 epochs), and takes the logits of the largest cell type. From that group
it draws ``m`` cells a side for growing ``m`` and solves entropic OT exactly (``match`` on the
dense cost, ``reg`` 0.05, marginal error ``tol`` 1e-6, over-relaxation 1.8). For each plan it
records:

- the pairs a row that the plan needs so that the mass left out is at most 1e-6 and 1e-3
  of the total (largest entries first), and the share of all pairs that is;
- the median partners that carry 99 % of a row's mass;
- the transfer's median Pearson r over proteins (truth: each cell's own proteins), for the
  exact plan and for the plan cut at 1e-3.

For the largest ``m`` it also records two shortcuts that touch fewer pairs: the best
rank-``k`` approximation of the plan (truncated SVD, the best any low-rank solver can do in
Frobenius norm) and random mini-batch OT (both sides cut into parts of about ``b`` cells,
exact OT within each part), each by the transfer's median r. One JSON record per line:

    .venv/bin/python benchmarks/dense_plans.py --json benchmarks/results/dense_plans.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from align_atlas import median_r, peak_gb, simulate  # noqa: E402


def pairs_for_mass(plan, left_out: float) -> int:
    """Fewest entries of ``plan`` (largest first) whose mass is ``1 - left_out`` of it all."""
    v = np.sort(plan, axis=None)[::-1]
    return int(np.searchsorted(np.cumsum(v) / v.sum(), 1.0 - left_out) + 1)


def cut(plan, keep: int):
    """``plan`` with all but its ``keep`` largest entries set to 0, rows normalised."""
    level = np.partition(plan, plan.size - keep, axis=None)[plan.size - keep]
    out = np.where(plan >= level, plan, 0.0)
    return out / out.sum(1, keepdims=True)


def row_partners(plan, share: float) -> float:
    """Median over rows of the partners that carry ``share`` of the row's mass."""
    rows = np.sort(plan / plan.sum(1, keepdims=True), axis=1)[:, ::-1]
    return float(np.median((np.cumsum(rows, axis=1) < share).sum(1) + 1))


def logits_of_atlas(n: int, seed: int, epochs: int):
    """Logits of align's two classifiers on the simulated atlas, the labels, the proteins."""
    import torch

    from propalign_lite import PropensityClassifier

    torch.set_num_threads(os.cpu_count() or 1)
    rna, prot, t = simulate(n, 45, seed)
    order = np.random.default_rng(seed + 1).permutation(n)
    out = []
    for k, (x, labels) in enumerate(((rna, t), (prot[order], t[order]))):
        clf = PropensityClassifier("mlp", width=256, epochs=epochs, lr=1e-3, batch_size=1024,
                                   random_state=seed + k)
        out.append(clf.fit(x, labels).logits(x))
    return out[0], out[1], t, t[order], prot, prot[order]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100000, help="cells per object")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000, 11000])
    ap.add_argument("--ranks", type=int, nargs="+", default=[30, 100, 300])
    ap.add_argument("--batches", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reg", type=float, default=0.05)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="append the records to this JSON-lines file")
    args = ap.parse_args(argv)

    from sklearn.utils.extmath import randomized_svd

    from propalign_lite.matchers import match

    def solve(x, y):
        return np.asarray(match(x, y, reg=args.reg, tol=args.tol, max_iter=5000, omega=1.8,
                                online=False, dense_max=10 ** 9, warn=False))

    start = time.perf_counter()
    l1, l2, t1, t2, prot1, prot2 = logits_of_atlas(args.n, args.seed, args.epochs)
    trained = time.perf_counter() - start
    group = np.bincount(t1).argmax()
    i1, i2 = np.flatnonzero(t1 == group), np.flatnonzero(t2 == group)
    rng = np.random.default_rng(args.seed + 2)
    common = dict(n=args.n, group=f"type{group:02d}", group_cells=int(min(len(i1), len(i2))),
                  logits_dim=int(l1.shape[1]), reg=args.reg, tol=args.tol,
                  epochs=args.epochs, classifiers_s=round(trained, 1),
                  machine=f"{platform.node()} {os.cpu_count()} CPUs",
                  commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip(),
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    records = []
    for m in [s for s in args.sizes if s <= common["group_cells"]]:
        a, b = rng.choice(i1, m, replace=False), rng.choice(i2, m, replace=False)
        x, y = l1[a].astype(np.float64), l2[b].astype(np.float64)
        tick = time.perf_counter()
        plan = solve(x, y)
        rec = dict(common, m=m, solve_s=round(time.perf_counter() - tick, 1))
        exact = plan @ prot2[b]
        rec["exact_r"] = median_r(exact, prot1[a])
        for left_out in (1e-6, 1e-3):
            keep = pairs_for_mass(plan, left_out)
            rec[f"pairs_a_row_{left_out:g}"] = keep / m
            rec[f"share_{left_out:g}"] = keep / m ** 2
        rec["cut_1e-3_r"] = median_r(cut(plan, pairs_for_mass(plan, 1e-3)) @ prot2[b],
                                     prot1[a])
        rec["partners_99"] = row_partners(plan, 0.99)
        if m == max(s for s in args.sizes if s <= common["group_cells"]):
            for k in args.ranks:
                U, s, Vt = randomized_svd(plan, k, random_state=args.seed)
                rec[f"rank_{k}_r"] = median_r(U @ (s[:, None] * (Vt @ prot2[b])), prot1[a])
                rec[f"rank_{k}_sigma_ratio"] = float(s[-1] / s[0])
            for size in args.batches:
                parts = -(-m // size)
                moved = np.empty_like(exact)
                for pa, pb in zip(np.array_split(rng.permutation(m), parts),
                                  np.array_split(rng.permutation(m), parts)):
                    moved[pa] = solve(x[pa], y[pb]) @ prot2[b][pb]
                rec[f"minibatch_{size}_r"] = median_r(moved, prot1[a])
        rec["peak_gb"] = round(peak_gb(), 2)
        print(json.dumps(rec), flush=True)
        records.append(rec)
    if args.json:
        with open(args.json, "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
    main()
