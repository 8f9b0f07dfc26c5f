"""align() end to end at atlas size: simulated RNA-PC and protein cells in many types.

Not part of the tests. One run = one fresh process (its own peak memory). It simulates ``n``
paired cells in ``--types`` cell types (uneven abundances), gives object 1 the RNA principal
components and object 2 the proteins of the same cells in shuffled order (unpaired for the
method; the pairing is kept to score the result), runs ``align`` with the given classifier
settings and ``n_jobs``, transfers the proteins onto the RNA cells, and records the time of
every stage, the peak resident memory and the transfer's median Pearson r over proteins
(on a subsample of cells; the truth is the cell's own proteins).

    .venv/bin/python benchmarks/align_atlas.py --n 20000 --types 45
    .venv/bin/python benchmarks/align_atlas.py --n 1000000 --types 45 --epochs 3 \\
        --json benchmarks/results/align_atlas.jsonl
    python3 benchmarks/align_atlas.py --n 1000000 --device cuda --tol 1e-6   # on a GPU

Simulator: a 10-d latent state, type means drawn once (sd 2) plus a within-type spread
(sd 1); RNA PCs (50-d) = a random linear map plus a tanh term of the latent, noise sd 0.5;
proteins (30-d) = softplus of another linear map, noise sd 0.3. Abundances: a Dirichlet(1)
draw over types, floored at 0.2 / types.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def simulate(n: int, n_types: int, seed: int):
    """``(rna_pcs, proteins, labels)`` of ``n`` paired cells (float32)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n_types))
    p = np.maximum(p, 0.2 / n_types)
    p /= p.sum()
    t = rng.choice(n_types, size=n, p=p)
    means = 2.0 * rng.normal(size=(n_types, 10))
    z = means[t] + rng.normal(size=(n, 10))
    A, A2, B = rng.normal(size=(10, 50)), rng.normal(size=(10, 50)), rng.normal(size=(10, 30))
    rna = z @ A / np.sqrt(10) + np.tanh(z @ A2 / np.sqrt(10)) + 0.5 * rng.normal(size=(n, 50))
    prot = np.logaddexp(0.0, z @ B / np.sqrt(10)) + 0.3 * rng.normal(size=(n, 30))
    return rna.astype(np.float32), prot.astype(np.float32), t


def median_r(moved, truth) -> float:
    """Median over proteins of the Pearson r between transferred and own values."""
    return float(np.median([np.corrcoef(moved[:, j], truth[:, j])[0, 1]
                            for j in range(truth.shape[1])]))


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="cells per object")
    ap.add_argument("--types", type=int, default=45)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--reg", type=float, default=0.05)
    ap.add_argument("--tol", type=float, default=None,
                    help="Sinkhorn's tolerance on the marginal error (default: match's 1e-10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--score-cells", type=int, default=20000)
    ap.add_argument("--json", default=None, help="append the record to this JSON-lines file")
    ap.add_argument("--device", default="cpu",
                    help="align(device=...): torch device of the classifiers and of the block "
                         "passes of the groups solved online (e.g. cuda)")
    ap.add_argument("--progress", action="store_true",
                    help="align(progress=True): the memory estimate and a bar over the groups")
    args = ap.parse_args(argv)

    import anndata as ad
    import pandas as pd
    import torch

    from propalign_lite import align

    torch.set_num_threads(os.cpu_count() or 1)
    stages = {}
    start = time.perf_counter()
    rna, prot, t = simulate(args.n, args.types, args.seed)
    order = np.random.default_rng(args.seed + 1).permutation(args.n)   # unpair object 2
    labels = pd.Categorical([f"type{k:02d}" for k in t])
    a1 = ad.AnnData(rna, obs=pd.DataFrame({"cell_type": labels}))
    a2 = ad.AnnData(prot[order], obs=pd.DataFrame({"cell_type": labels[order]}))
    a1.obs_names = [f"r{i}" for i in range(args.n)]
    a2.obs_names = [f"p{i}" for i in range(args.n)]
    stages["simulate"] = time.perf_counter() - start
    base_gb = peak_gb()

    start = time.perf_counter()
    aln = align(a1, a2, groupby="cell_type", reg=args.reg, n_jobs=args.n_jobs,
                classifier=dict(epochs=args.epochs, width=args.width,
                                batch_size=args.batch_size), random_state=args.seed,
                progress=args.progress, device=args.device,
                match_kwargs=None if args.tol is None else dict(tol=args.tol))
    stages["align"] = time.perf_counter() - start
    stages.update({f"align.{k}": v for k, v in aln.timings_.items()})

    start = time.perf_counter()
    moved = aln.transfer("adata2")                       # proteins for every RNA cell
    stages["transfer"] = time.perf_counter() - start

    pick = np.random.default_rng(args.seed + 2).choice(args.n, min(args.n, args.score_cells),
                                                        replace=False)
    truth, est = prot[pick], np.asarray(moved)[pick]
    # groups whose solver stopped at max_iter short of tol (their marginal error); records
    # before 2026-12-05 read an attribute align did not set, and always held {}
    results = {str(g): float(res.err) for g, res in aln.results_.items()
               if res is not None and not res.converged}
    sizes = np.bincount(t, minlength=args.types)
    rec = {"n": args.n, "types": args.types, "largest_group": int(sizes.max()),
           "epochs": args.epochs, "width": args.width, "n_jobs": args.n_jobs, "reg": args.reg,
           "device": args.device,
           "tol": args.tol,
           "seconds": {k: round(v, 2) for k, v in stages.items()},
           "peak_gb": round(peak_gb(), 2), "peak_gb_after_simulate": round(base_gb, 2),
           "transfer_median_r": median_r(est, truth),
           "coupling_kinds": sorted({type(M).__name__ for M in aln.couplings_.values()}),
           "n_groups": len(aln.couplings_), "unconverged": results,
           "machine": f"{platform.node()} {os.cpu_count()} CPUs",
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(rec, indent=1))
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
