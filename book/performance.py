# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance: optimal transport without the full coupling
#
# Every matching in this book solves an entropic optimal transport problem inside one
# treatment group. The paper's settings {cite:p}`xi2024propensity` are a plain Euclidean cost between classifier logits,
# regularisation 0.05, uniform marginals, and a row-normalised plan. At that regularisation
# the plain Sinkhorn iteration {cite:p}`cuturi2013sinkhorn` needs hundreds to thousands of iterations. Its memory also
# grows as $n^2$. Real groups are large: CD14+ monocytes alone have about 22,000 cells in
# GSE194122, and atlases have $10^5$ cells per type. This page measures the solver in
# `propalign_lite` against POT {cite:p}`flamary2021pot` on the same data, in the same run, and shows how its time and
# memory grow with $n$.
#
# How the solver works ({py:mod}`propalign_lite.sinkhorn`):
#
# 1. **A log-domain first step.** The first iteration is the log-sum-exp update, so the
#    scalings that follow stay bounded even when $C/\varepsilon$ is in the hundreds. Its
#    sums leave out the terms more than $\log n + 5$ below each largest one: that moves
#    the start by less than 0.7 %, which the next iterations correct, and the two passes
#    of the start then do exact float64 work for far fewer pairs (at $n = 10^5$ they took
#    10.3 s instead of 18.3 s in one profiled run; `SinkhornResult.timings` gives these
#    stage times for every solve). On the CPU, one pass does the work of three
#    (`propalign_lite._column_start`): a k-d tree gives every column a near row, whose term
#    bounds the column's largest from below; one pass of the columns against all rows
#    keeps the pairs within a window below that bound, wide enough for the start's sums
#    and for the candidates of item 5; both potentials of the start are summed from those
#    pairs, and the pairs become the first candidates, with the same certificate as a
#    support pass's. Rows or columns that the window misses (far from everything, or a
#    window narrower than the start's depth) get an exact pass of their own. The plain
#    start made two passes and the first support build a third.
# 2. **A truncated kernel** {cite:p}`schmitzer2019stabilized`. At $\varepsilon = 0.05$ almost every entry of
#    the plan is below $e^{-40}$ of the largest entries. Only the pairs above a threshold are
#    kept, and the iterations run on that sparse kernel. The threshold follows from the
#    tolerance. The mass that is dropped is bounded and added to the reported error, so
#    "converged" keeps POT's meaning.
# 3. **Newton steps on the sparse dual.** The dual's Hessian has the sparsity of the kept
#    kernel. After a few Sinkhorn steps, damped Newton steps (backtracking) remove the slow
#    modes that keep Sinkhorn busy for hundreds of iterations. The Newton system is solved by
#    sparse LU up to 30,000 unknowns and by preconditioned conjugate gradients above. LU's
#    fill-in on the support's largest connected component grows fast: at $n = 30{,}000$ per
#    modality an LU step took 4-5 s against 0.4 s for conjugate gradients, with the same
#    number of iterations, and at $n = 100{,}000$ one factorisation ran for minutes. The
#    conjugate gradients stop at a relative residual of 0.1 (inexact Newton): at
#    $n = 10^5$ the Newton steps then took 5.8 s against 16.3 s for a near-exact solve of
#    each step, with the same number of steps (8). The conjugate gradients never form the
#    plan or its Hessian: a product with the Hessian is two products with the kernel and
#    its transpose, and so is the line search (c7d208f; before, the plan, the Hessian and
#    their COO copies came on top of the kernels: the memory model counted 180 bytes a kept
#    pair with Newton steps against 60 without). At $3\times 10^5$ the iterations'
#    peak fell from 1.2 to 0.9 GB above the process's start, and their time from 51 to
#    45 s. A compiled product with the kernel, one row per thread, was no faster than
#    scipy's one-thread product (5.0 against 6.3 ms at $3\times 10^5$, 14.6 pairs a row;
#    102 against 69 ms at $10^6$, 45 a row) and, between the vector products of the
#    conjugate gradients, three times slower (the threads of the two libraries take turns):
#    at $3\times 10^5$ the iterations took 68 s instead of 34 s, so it was not kept.
# 4. **Online mode.** For large groups the cost is never stored. The passes over all pairs
#    (the first log-sum-exp step and the search for the support) compute each distance from
#    the embeddings and reduce it at once. On the CPU they are compiled loops
#    (`propalign_lite._screened` and `propalign_lite._support_pass`, numba) over tiles of
#    8 rows by 256 columns. A support
#    pass takes 16 groups of 8 rows against a block of 32 tiles before the next block, so
#    the columns are read from memory once a block rather than once every 8 rows: with
#    $10^6$ columns (48 MB of float32) the compiled loop ran at 0.46 ns a pair the old
#    way and 0.32 ns the new, as fast as on columns that fit in the cache (a timed kernel
#    on 4,096 rows, 2 cores). The float32 tile adds four coordinates at a time to all 8 rows
#    in one sweep over the columns, so each column vector is loaded once for the 8 rows
#    (96f11b1): one support pass of 40,000 rows against $10^6$ columns took 9.8 s instead
#    of 13.6 s, and one of $3\times 10^5$ rows against as many columns 22 s instead of
#    30-34 s (12-d, the two versions run in turn, twice). Each tile is first screened in float32: squared distances against
#    thresholds widened by a bound on every float32 rounding, so a pair the screen rejects
#    is below its threshold for certain. Only the pairs the screen cannot decide, and the
#    terms a log-sum-exp adds, are computed again in float64. The answers are those of a
#    float64 pass, at about a third of its time. On a GPU the passes are torch blocks.
#    Every kept entry is recomputed exactly. {py:func}`~propalign_lite.matchers.match` returns an {py:class}`~propalign_lite.coupling.ImplicitCoupling` (potentials plus
#    embeddings) that the metrics and the trainer use directly.
# 5. **Fewer passes.** The support pass also collects the pairs down to $D = 3B$ deeper
#    than the truncation level, or, when those are more than 64 a row on average, down to
#    the deepest of $D/2$, $D/4$, $D/8$ that fits: the pass counts all four at once and
#    keeps, for every row, the 128 largest of its deeper pairs (a heap), so a row whose
#    band fits holds all of it. (Before the bands, a deeper set that was too large was
#    dropped whole, and at $3\times 10^5$ and $10^6$ the next build had to make another
#    pass, half as deep.) While the potentials have risen by
#    less than that depth, a rebuilt support is filtered from these candidates instead of
#    another pass over all pairs. This is exact: no pair outside the candidates can have
#    climbed above the level. When some potentials have risen further, they are usually a
#    handful: at $n = 10^5$, when the candidates first stopped holding, the largest rises
#    were 16.3 and 17.7 against a depth of 27.6, but 99.9 % of them were below 3.6. Only
#    those rows and columns are then scanned again (a few rows against all columns), and the
#    others carry their rise as a slack into the next check
#    (`propalign_lite._kernel_support`). At $n = 10^5$ this replaced the second pass over
#    all pairs by two rescans of 9 and 59 rows and columns, 0.5 s each. A rescan keeps every
#    pair of its rows down to the depth, however many: rows whose potentials have just
#    risen far hold hundreds there for a while. At $10^6$ the rescans asked for 256 a row
#    at most, the 33,024 rows of the first repair held 257 on average, and both repairs of
#    the run gave way to whole passes (450 s each); keeping them all (1c6e00d), the run
#    made 6 repairs, each rescanning 3-12 % of all pairs (34-74 s), and no pass after the
#    start; its candidates grew from 60 to 77 pairs a row.
# 6. **Dense plans held whole, in float32.** When more than 30 % of the pairs are above the
#    level (logits of one cell type often lie close together compared with $\varepsilon$),
#    the whole kernel is computed once and the scalings are absorbed into it in place
#    (`propalign_lite._held`). It is held in float32: each iteration is two products with
#    the kernel, bound by memory traffic, so float32 halves both their time and the memory.
#    Float32 sums cannot certify an error of $10^{-6}$, so the float32 error only says when
#    to check: the potentials are then checked by two exact float64 passes over all pairs,
#    and that error is the one reported. If float32 cannot get there, the kernel is computed
#    again in float64.
#
# Every timing below runs in its own subprocess, so that its peak memory is its own
# (`propalign_book.ot_benchmark`). The data follow the issue that asked for this work: 12
# dimensions, two noisy copies (noise 0.5) of Gaussian points of scale 3, one group of $n$
# samples in each modality.

# %% tags=["parameters"]
profile = "ci"      # "ci" (small n, about a minute) or "paper" (n up to 50,000)

# %% tags=["hide-input"]
import json
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import ot
import pandas as pd
from IPython.display import Markdown, display

from propalign_lite import match
from propalign_lite.coupling import as_dense
from propalign_book.ot_benchmark import run
from propalign_book.profiles import get_profile
from propalign_book.report import profile_banner

S = get_profile("performance", profile)
display(Markdown(profile_banner(S, data="synthetic logit-like point clouds (12-d, noise 0.5)")))
display(Markdown(f"Machine: {os.cpu_count()} CPU(s); load average when the page started: "
                 f"{os.getloadavg()[0]:.1f}. Other jobs on the machine slow every solver, so "
                 "read the **ratios** between solvers measured in the same run."))

# %% [markdown]
# ## First, the same answer as POT
#
# Speed is worth nothing if the plan is wrong. On a small group, POT's log-domain solver is run
# until its own marginal error is below $10^{-12}$. Our plan at the same tolerance is then
# compared with POT's plan, row-normalised like the paper's. The online path, which never
# holds the cost, is compared as well.

# %% tags=["hide-input"]
rng = np.random.default_rng(S["seed"])
n = S["check_n"]
xs, ys = rng.normal(size=(n, 3)) * 0.5, rng.normal(size=(n, 3)) * 0.5
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    G, glog = ot.sinkhorn(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(xs, ys, metric="euclidean"),
                          S["reg"], method="sinkhorn_log", numItermax=50000, stopThr=1e-12,
                          log=True)
G = G / G.sum(1, keepdims=True)
M_dense, info = match(xs, ys, reg=S["reg"], tol=1e-12, max_iter=5000, return_result=True)
M_online = match(xs, ys, reg=S["reg"], tol=1e-12, max_iter=5000, online=True)
diff_dense = float(np.abs(M_dense - G).max())
diff_online = float(np.abs(as_dense(M_online) - G).max())
assert glog["err"][-1] < 1e-12 and info.converged
assert diff_dense < 1e-8 and diff_online < 1e-8
display(Markdown(
    f"POT `sinkhorn_log` needed **{glog['niter'] + 1}** iterations to reach its tolerance; ours "
    f"needed **{info.n_iter}**. Largest difference between the row-normalised plans: "
    f"{diff_dense:.1e} (dense path) and {diff_online:.1e} (online path)."))

# %% [markdown]
# ## Ours against POT, same data, same run
#
# "POT default" is what a POT user calls: `ot.sinkhorn(a, b, C, 0.05)`, the scaling iteration
# in numpy, run here to the same marginal error as ours. It is fast per iteration but needs
# many iterations. POT's log-domain solver (`method="sinkhorn_log"`, numpy and torch
# backends) is stable but costly per iteration. It is run for a fixed small number of
# iterations, so compare its **seconds per iteration**.

# %% tags=["hide-input"]
recs = []
for n in S["compare_n"]:
    for solver in ("ours", "pot"):
        recs.append(run(solver, n, reg=S["reg"], tol=S["tol"], seed=S["seed"],
                        threads=S["threads"]))
for solver in ("pot_log", "pot_log_torch"):
    recs.append(run(solver, S["pot_log_n"], reg=S["reg"], tol=S["tol"], seed=S["seed"],
                    max_iter=S["pot_log_iters"], threads=S["threads"]))
ours_big = run("ours", S["pot_log_n"], reg=S["reg"], tol=S["tol"], seed=S["seed"],
               threads=S["threads"])
recs.append(ours_big)
table = pd.DataFrame(recs)
table["s / iteration"] = table["seconds"] / table["n_iter"]
table["CPU s"] = table["cpu_seconds"]
table["converged"] = table["err"] < S["tol"]
show = table[["n", "solver", "seconds", "CPU s", "n_iter", "s / iteration", "err", "converged", "mem_gb",
              "mem_increase_gb"]].rename(columns={"n_iter": "iterations", "err": "marginal error",
                                                  "mem_gb": "peak GB", "mem_increase_gb": "+GB"})
display(show.style.format({"seconds": "{:.3f}", "CPU s": "{:.3f}", "s / iteration": "{:.2e}",
                           "marginal error": "{:.1e}", "peak GB": "{:.3f}", "+GB": "{:.3f}"})
        .hide(axis="index"))

# %% tags=["hide-input"]
lines = []
for n in S["compare_n"]:
    o = table[(table.n == n) & (table.solver == "ours")].iloc[0]
    p = table[(table.n == n) & (table.solver == "pot")].iloc[0]
    lines.append(f"- n = {n}: ours {o.seconds:.3f} s in {o.n_iter} iterations, POT default "
                 f"{p.seconds:.3f} s in {p.n_iter} iterations: **{p.seconds / o.seconds:.1f}x** "
                 f"faster, {p.n_iter / o.n_iter:.0f}x fewer iterations.")
for solver in ("pot_log", "pot_log_torch"):
    r = table[table.solver == solver].iloc[0]
    lines.append(f"- `{solver}` at n = {r.n}: {r['s / iteration']:.2e} s per iteration; its "
                 f"{r.n_iter} iterations reached marginal error {r.err:.1e}, while ours reached "
                 f"{ours_big['err']:.1e} in {ours_big['seconds']:.3f} s in total.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## How time and memory grow with $n$
#
# The online path is forced here, even where the dense path would be chosen, so that every
# point uses the same code. The time of a pass over all pairs grows as $n^2$. The iterations
# on the truncated kernel grow roughly with the number of kept entries, about linearly in $n$.
# The memory is the increase of the subprocess's resident size during the solve: from its
# size before the solve to its peak during it (the imports' own peak is left out). It grows
# slowly with $n$, while a single dense float64 matrix needs $8n^2$ bytes.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Our online solver against $n$ (log-log): time to the marginal-error tolerance (left, with an $n^2$ guide) and peak memory increase (right, against one dense $n \\times n$ float64 matrix).", "name": "fig-performance-scaling"}, "image": {"alt": "Two log-log line charts against problem size n: seconds with a dotted n-squared guide on the left, and memory in gigabytes against the size of a dense matrix on the right."}}
scal = pd.DataFrame([run("ours_online", n, reg=S["reg"], tol=S["tol"], seed=S["seed"],
                         threads=S["threads"]) for n in S["scaling_n"]])
dense_gb = 8 * scal.n.astype(float) ** 2 / 2**30
fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
ax[0].loglog(scal.n, scal.seconds, "o-", label="ours (online)")
ref = scal.seconds.iloc[-1] * (scal.n / scal.n.iloc[-1]) ** 2
ax[0].loglog(scal.n, ref, "k:", label=r"$\propto n^2$")
ax[0].set(xlabel="n (per modality)", ylabel="seconds", title="time to marginal error "
          f"{S['tol']:g}")
ax[0].legend()
ax[1].loglog(scal.n, scal.mem_increase_gb, "o-", label="ours: peak increase")
ax[1].loglog(scal.n, dense_gb, "k:", label="one dense float64 n x n matrix")
ax[1].set(xlabel="n (per modality)", ylabel="GB", title="memory")
ax[1].legend()
fig.tight_layout()
plt.show()

# %%
display(scal[["n", "seconds", "n_iter", "err", "converged", "mem_gb", "mem_increase_gb"]]
        .rename(columns={"n_iter": "iterations", "err": "marginal error (bound)",
                         "mem_gb": "peak GB", "mem_increase_gb": "+GB"})
        .style.format({"seconds": "{:.2f}", "marginal error (bound)": "{:.1e}",
                       "peak GB": "{:.3f}", "+GB": "{:.3f}"}).hide(axis="index"))
above = scal[scal.mem_increase_gb > dense_gb]
display(Markdown(
    f"At these small sizes the increase is {scal.mem_increase_gb.min() * 1024:.0f}-"
    f"{scal.mem_increase_gb.max() * 1024:.0f} MB, mostly a fixed working set"
    + (f", more than the dense matrix itself up to n = {above.n.max()}: the solver's memory "
       "pays off only for larger groups" if len(above) else "")
    + ". The recorded runs below show the large sizes: about 1 GB at $n = 10^5$, where one "
    "dense float64 matrix would need 80 GB."))

# %% [markdown]
# ## Large groups: recorded benchmark runs
#
# Larger groups take too long for this page's build: ours needs seconds at $n = 2\times 10^4$
# and minutes at $10^5$, while POT's solvers need minutes (and 15 GB) at $2\times 10^4$ and
# cannot hold the $10^5 \times 10^5$ plan at all. `benchmarks/ot_bench.py` measures them,
# with ott-jax and GeomLoss when they are installed (`--python` runs a solver from another
# environment). When its records are stored
# in `benchmarks/results/`, they are shown below **as recorded**, with the date and
# machine of the run. They were not recomputed when this page was built.

# %% tags=["hide-input"]
import propalign_lite


def recorded(name):
    """The records of ``benchmarks/results/<name>`` as a DataFrame, or None without the file."""
    path = os.path.join(os.path.dirname(propalign_lite.__file__), "..", "benchmarks",
                        "results", name)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return pd.DataFrame([json.loads(line) for line in fh if line.strip()])


big = recorded("ot_bench.jsonl")
if big is not None:
    big["iterations"] = big["n_iter"].map(lambda v: "-" if pd.isna(v) else f"{int(v)}")
    big["converged"] = [("timed out" if t is True else "-") if pd.isna(c) else str(bool(c))
                        for c, t in zip(big.get("converged", pd.Series(index=big.index)),
                                        big.get("timed_out", pd.Series(index=big.index)))]
    big["device"] = big["device"].fillna("cpu") if "device" in big else "cpu"
    # records before 2026-12-05 noon carry no reg (the default 0.05: no note names another),
    # the oldest no dimension (12)
    big["reg"] = big["reg"].fillna(0.05) if "reg" in big else 0.05
    big["dim"] = big["dim"].fillna(12).astype(int) if "dim" in big else 12
    shown = big[[c for c in ("when", "commit", "load", "n", "dim", "reg", "solver", "device",
                             "seconds",
                             "cpu_seconds", "iterations", "err", "converged", "mem_gb", "note")
                 if c in big]]
    display(shown.rename(columns={"err": "marginal error", "mem_gb": "peak GB",
                                  "cpu_seconds": "CPU s"})
            .style.format({"load": "{:.1f}", "seconds": "{:.3g}", "CPU s": "{:.3g}",
                           "marginal error": "{:.1e}", "peak GB": "{:.3f}", "reg": "{:g}"},
                          na_rep="-")
            .hide(axis="index"))
    display(Markdown(f"Machines: {'; '.join(sorted(set(big['machine'])))}. *load* is the "
                     "one-minute load average when the run ended; it includes the run's "
                     "own two threads, so about 2 means nothing else was running on the "
                     "2-CPU machine."))
else:
    display(Markdown("No recorded benchmark file was found next to the book, so nothing is "
                     "shown here. Run `benchmarks/ot_bench.py --json "
                     "benchmarks/results/ot_bench.jsonl` to add one."))

# %% [markdown]
# **The peers at the largest sizes they reach here.** One run on 2026-12-05 (10:57-11:19
# UTC), each solver in its own process one after the other, on the same data: POT's default
# `ot.sinkhorn`, GeomLoss 0.3.1 and ours (`ours_blocked`) at $10^4$ and $2\times 10^4$.
# GeomLoss ran its tensorized backend, which holds the $n \times n$ cost, because its online
# backend needs KeOps, which this machine has not got; it has no stopping rule (a fixed
# $\varepsilon$-scaling schedule, `scaling=0.9`) and reached marginal errors of 3.6e-8 and
# 9.0e-8, far below the others' 1e-6, so its times are for more accuracy than asked.
#
# | $n$ | POT (s, peak GB) | GeomLoss (s, peak GB) | ours (s, peak GB) | POT / ours | GeomLoss / ours |
# |---|---|---|---|---|---|
# | $10^4$ | 49.6, 4.08 | 165, 3.22 | 1.66, 0.43 | 30x | 99x |
# | $2\times 10^4$ | 175, 15.3 | 895, 12.2 | 0.58, 0.43 | 300x | 1,550x |
#
# Test runs of about a minute overlapped the $10^4$ rows of GeomLoss and ours, and ours
# there also compiled the functions just edited in the working tree (its start took 1.3 s;
# 0.37 s in earlier records); the $2\times 10^4$ rows ran alone. Neither peer can go further on
# this machine: at $10^5$ POT's float64 cost alone is 80 GB and GeomLoss's float32 one
# 40 GB, against 24 GB of memory. ott-jax (0.6.0, float64, dense cost up to
# $2\times 10^4$) took 312 s for 3,340 iterations at 5,000 (2026-11-30, table above); at
# $2\times 10^4$ each iteration has 16 times the pairs, so over an hour, and it was not run.
# So the largest $n$ at which a peer and ours ran in the same run is $2\times 10^4$; above it
# the figure's lines are ours alone.

# %% [markdown]
# {numref}`fig-performance-recorded` draws the last 24 hours of recorded runs (up to the
# newest record; a day by the calendar would split an evening's runs at midnight UTC): every
# solver and commit of that time at every $n$ it finished, on the same machine. These were
# POT's default solver ($10^3$ to $2\times 10^4$) and ours at several commits, each run
# after the other. In the evening, b909abb (19:27-19:36 UTC), with the shallower start of
# item 1 and its two log-sum-exp passes, then 0ffdda4 (from 19:52 UTC), with the one-pass
# start, up to $10^6$. Late in the evening (22:42-23:24 UTC), cbf2436 (the one-pass start)
# and then 5020877 (the bands of item 5, the blocks of item 4) at $10^5$ and
# $3\times 10^5$, and 5020877 at $10^6$; then 84308c7 (which frees the old candidates and
# kernels before a pass) at $10^6$ alone. On 2026-12-05 (02:19-03:27 UTC), one run after
# the other: 1c6e00d (repairs that keep every pair) at $10^6$, then 1c6e00d and 96f11b1
# (the faster tile) at $10^5$ and $3\times 10^5$, then 96f11b1 and e24ff40 (the compiled
# filter and repair of the candidates) at $10^6$; then (04:45-05:05 UTC) c7d208f (int32
# candidates, the kernel laid out in CSR) at $10^6$ and $3\times 10^5$, and (06:33 UTC)
# c677126 (the transposed kernel as a view) at $10^6$. The earlier days'
# runs are in the table above:
# on the evening of 2026-12-03, the commits before the shallower start took 24.9 s and
# 39.9 s at $10^5$ (the same code, ten minutes apart: that is how much this machine's
# timings vary) and 453 s at $3\times 10^5$.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The last 24 hours of recorded benchmark runs (log-log, 12-d data, reg 0.05, marginal error 1e-6): seconds (left) and peak resident memory (right) against n, one line per solver and commit (POT dashed, k-d trees dotted).", "name": "fig-performance-recorded"}, "image": {"alt": "Two log-log line charts of the recorded runs against n: seconds on the left and peak gigabytes on the right, with lines for POT, ours with block passes, ours with trees and the previous commit."}}
if big is not None:
    on_cpu = big[(big["device"] == "cpu") & (big["reg"] == 0.05) & (big["dim"] == 12)]
    when = pd.to_datetime(on_cpu["when"])
    recent = when >= when.max() - pd.Timedelta(hours=24)
    last = on_cpu[recent & ~on_cpu["converged"].isin(["timed out", "False"])].copy()
    last["label"] = last["solver"] + " @ " + last["commit"].fillna("?").astype(str)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    # one colour per line (more lines than the default ten colours); POT dashed, trees dotted
    colours = plt.cm.tab20(np.arange(20) % 20)
    dashes = {"pot": "--", "ours_tree": ":"}
    for k, (label, rows) in enumerate(last.sort_values("n").groupby("label")):
        style = dict(marker="o", ls=dashes.get(rows.solver.iloc[0], "-"), color=colours[k % 20])
        ax[0].loglog(rows.n, rows.seconds, label=label, **style)
        ax[1].loglog(rows.n, rows.mem_gb, label=label, **style)
    span = f"{when[recent].min():%Y-%m-%d %H:%M} to {when.max():%Y-%m-%d %H:%M} UTC"
    ax[0].set(xlabel="n (per modality)", ylabel="seconds")
    ax[0].set_title(f"recorded {span}", fontsize=9)
    ax[1].set(xlabel="n (per modality)", ylabel="peak resident GB", title="memory")
    ax[0].legend(fontsize=7)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Since 2026-12-04 every record of ours carries the solver's own stage times
# (`SinkhornResult.timings`): the start (b909abb: two log-sum-exp passes; since 0ffdda4:
# the k-d tree and the one column pass, which also yields the first candidates), the
# support passes over all pairs, the repairs (checks and rescans of the candidates),
# filtering the support, and the Sinkhorn and Newton iterations on it.

# %% tags=["hide-input"]
if big is not None and "stages" in big:
    staged = big[big["stages"].map(lambda v: isinstance(v, dict))]
    stages = pd.DataFrame(list(staged["stages"]), index=staged.index).fillna(0.0)
    stage_table = pd.concat([staged[["when", "commit", "n", "device", "seconds", "n_builds",
                                     "mem_gb"]], stages], axis=1)
    stage_table["when"] = stage_table["when"].str[:16]
    display(stage_table.rename(columns={"mem_gb": "peak GB", "n_builds": "builds"})
            .style.format({"builds": "{:.0f}",
                           **{c: "{:.3g}" for c in ["seconds", "peak GB", *stages.columns]}})
            .hide(axis="index"))

# %% [markdown]
# **On a GPU.** The rows with device `cuda` ran once, on 2026-12-04, on a lent machine with
# one NVIDIA H200 and 16 CPUs (`benchmarks/gpu_checks.sh ot`): the block passes ran in torch
# on the GPU, the Newton steps on the CPU. One group of $10^4$ took 1.1 s and one of $10^5$
# took 32 s (18 iterations, 4 support builds, 0.07 GB of GPU memory, marginal error
# 6.9e-7). That is no faster than the 2-CPU machine's 25-40 s. On the GPU there is no
# rescan of a few rows, so each of the 4 rebuilds was a whole pass. The process used 38
# CPU-seconds in its 32 s; where they went was not profiled (waiting for the GPU counts as
# CPU time too). $10^6$ did not finish within its 150 s limit.
#
# Reading the torch passes afterwards suggests a cause, not yet confirmed on a GPU: blocks of
# $2^{20}$ entries meant 10,000 blocks a pass at $10^5$, each a few small kernels and a
# synchronising copy to the CPU. A GPU now takes blocks of $2^{26}$ entries, the column
# log-sum-exp keeps its running maximum on the GPU, and the torch passes keep deeper
# candidate pairs as the compiled ones do, so fewer rebuilds need a whole pass. These
# changes were tested on torch's CPU backend only: no GPU time was left to measure them.
# GeomLoss failed on that machine (its online backend needs KeOps, which was not there),
# and there was no device time left for ott-jax. The figure above leaves the GPU rows out,
# since they come from other hardware.

# %% [markdown]
# ## `align` end to end: recorded atlas runs
#
# `benchmarks/align_atlas.py` runs {py:func}`~propalign_lite.align` on a simulated atlas:
# RNA principal components for one object and proteins for the other, in 45 cell types of
# uneven abundance. It trains both classifiers (3 epochs here), matches all 45 groups one at a
# time and transfers the proteins onto the RNA cells. Each run records the time of every
# stage, the peak resident memory and how well the transferred proteins agree with the
# cells' own (median Pearson r over proteins). The records in
# `benchmarks/results/align_atlas.jsonl` are shown below as recorded; this page's build did
# not rerun them.

# %% tags=["hide-input"]
runs = recorded("align_atlas.jsonl")
if runs is not None:
    for stage in ("align.classifiers", "align.matching", "transfer", "align"):
        runs[stage] = runs["seconds"].map(lambda s, k=stage: s.get(k))
    shown = runs[["date", "commit", "n", "types", "largest_group", "reg", "tol",
                  "align.classifiers", "align.matching", "transfer", "peak_gb",
                  "transfer_median_r", "note"]]
    display(shown.rename(columns={"largest_group": "largest group", "peak_gb": "peak GB",
                                  "align.classifiers": "classifiers s",
                                  "align.matching": "matching s", "transfer": "transfer s",
                                  "transfer_median_r": "median r"})
            .style.format({"classifiers s": "{:.0f}", "matching s": "{:.0f}",
                           "transfer s": "{:.1f}", "peak GB": "{:.2f}",
                           "median r": "{:.3f}", "tol": "{:.0e}", "reg": "{:g}"}, na_rep="-")
            .hide(axis="index"))
else:
    display(Markdown("No recorded `align_atlas.jsonl` was found next to the book. Run "
                     "`benchmarks/align_atlas.py --json benchmarks/results/align_atlas.jsonl` "
                     "to add one."))

# %% [markdown]
# The afternoon's record, with nothing else running, aligned $10^5 + 10^5$ cells in 257 s:
# 12 s for the classifiers, 244 s for matching the 45 groups and 8 s for the transfer, at
# 7.7 GB peak, against 344 s (327 s matching) for the morning's record, on a machine that
# ran about 20 % slower in the afternoon. The evening's record (4089e50: inexact Newton
# steps, candidate repairs) took 281 s (266 s matching), at 7.7 GB: those changes speed up
# sparse plans, and the time here goes to the few dense groups held whole (below). Before
# matching, `align(progress=True)` printed its estimate: 1.65 GB if the plans were sparse,
# up to 6.95 GB if the largest were dense. The transferred proteins agree in every record
# (median r 0.867; 0.866 in the evening, whose plans differ within the tolerance).
#
# At $10^5$ cells, most of the time goes to a few groups whose plans are **dense**: the
# classifiers' logits of one cell type lie close together compared with $\varepsilon$, so
# more than 30 % of a group's pairs are above the truncation level (38 % for the largest
# group, 11,504 cells a side). For such a group no support can be sparse. The solver used to
# make a new pass over all pairs at every absorption of its scalings, and to sort and
# recompute the support each time: 9 passes for that group. It now computes the whole kernel
# once and absorbs the scalings into it in place, in float32 (item 6 above). Solved alone,
# that group took 272 s with 9 passes (commit 640c830), 94 s with a float64 kernel
# (bfd1003) and 70 s with the float32 one, all to a marginal error below $10^{-6}$ (801
# iterations in float64, 863 in float32, whose target is $0.9\times 10^{-6}$). What is left
# is plain Sinkhorn's slow convergence on these plans: each iteration is two products with
# the 0.5 GB kernel, about 0.05 s on 2 cores. In float32, denormal numbers made those
# products 9 times slower (0.38 s against 0.042 s an iteration at this size), so entries
# below float32's smallest normal number are set to 0; they are far below the truncation
# level, and the exact check covers them.
#
# **Over-relaxation on dense plans.** Plain Sinkhorn's error on these plans falls like
# $1/k$, not geometrically: for the 6,311-cell group (solved alone, `tol` $10^{-6}$) it was
# 8.1e-6, 4.1e-6, 2.1e-6 and 1.05e-6 at iterations 200, 300, 500 and 850, and the solve took
# 964 iterations (16.3 s held). Over-relaxed steps {cite:p}`thibault2021overrelaxed` with a
# fixed factor took 490, 386, 322 and 263 iterations at $\omega$ = 1.6, 1.75, 1.85 and 1.95
# (12.7, 11.0, 10.2 and 9.3 s: the kernel, the exact checks and the final support take
# about 5 s whatever the iterations). At 1.9 the solve used to stop with "non-finite
# scalings; increase reg": one over-relaxed step carried a scaling past float32's range
# before its bound was checked (cd4cbae takes such a step plain; a test on both paths). A
# factor chosen from the measured rate, as both papers suggest for the linear regime, failed
# here: the rate measured over the first 40 iterations is that of a transient (it gave
# 1.63), the error then stalled, and the solve took 1,746 iterations. So no factor is
# chosen for you; `match(..., omega=1.8)` or `align(..., match_kwargs=dict(omega=1.8))` sets
# one. Over all 45 groups of the $10^5$-cell atlas (`match`'s defaults but `tol` $10^{-6}$,
# so at most 1,000 iterations; each group solved plain and then at 1.8, while another job
# used the machine), the plain solves took 577 s and 43,442 iterations, and 36 groups
# stopped at 1,000 iterations short of $10^{-6}$ (errors up to $1.4\times 10^{-5}$ in the
# smallest groups); at 1.8 they took 445 s and 35,927 iterations, and 17 stopped short. The
# largest group gained most (848 against 383 iterations); the groups of a few hundred cells
# stay near $10^{-5}$ after 1,000 iterations either way. Such errors are below the 1e-4 at
# which a `ConvergenceWarning` is raised; `Alignment.to_df()` now shows every group's
# iterations, marginal error and convergence (`Alignment.results_`, b37f490). The
# `unconverged` field of the recorded runs in `align_atlas.jsonl` was always empty before
# that commit: the benchmark read an attribute that `align` did not set.
#
# **$10^6$ cells do not finish on this machine** at the paper's $\varepsilon$. We trained
# the classifiers of a $10^6$-cell run of the same simulator (110 s, 3.0 GB) and solved
# 3,000-cell subsamples of its five largest groups: their plans kept 29-83 % of the pairs,
# and four of the five had not reached $10^{-6}$ after 1,000 iterations. The largest group
# has 117,583 cells a side. With 83 % of its $1.4\times 10^{10}$ pairs kept, neither a
# support nor the whole kernel (55 GB even in float32) fits, so the solver falls back to
# exact log-sum-exp passes over all pairs: 144 s a pass on these 45-d logits (10.4 ns a
# pair, measured at $2\times 10^4$), two a Sinkhorn iteration, more than 1,000 iterations.
# That is days for one group, against a target of 30 minutes for the whole atlas.
#
# **Do these plans become sparse in larger groups, or low-rank?** `benchmarks/dense_plans.py`
# trains the same classifiers on the $10^5$-cell atlas, draws $m$ cells a side from its
# largest type (11,504 cells) and solves each draw exactly (dense cost, `tol` $10^{-6}$). It
# counts the pairs a plan needs so that the mass it leaves out is at most $10^{-6}$ or
# $10^{-3}$ (largest entries first), and scores the protein transfer (median Pearson r with
# the cells' own proteins). For the largest draw it also scores two shortcuts that touch
# fewer pairs: the best rank-$k$ approximation of the exact plan (a truncated SVD: no
# low-rank solver can do better in Frobenius norm) and random mini-batch OT (both sides cut
# into parts of $b$ cells, exact OT within each part).

# %% tags=["hide-input"]
dense = recorded("dense_plans.jsonl")
if dense is not None:
    display(dense[["m", "solve_s", "pairs_a_row_1e-06", "share_1e-06", "pairs_a_row_0.001",
                   "share_0.001", "partners_99", "exact_r", "cut_1e-3_r"]]
            .rename(columns={"m": "cells a side", "solve_s": "solve s",
                             "pairs_a_row_1e-06": "pairs a row (1e-6)",
                             "share_1e-06": "share of pairs (1e-6)",
                             "pairs_a_row_0.001": "pairs a row (1e-3)",
                             "share_0.001": "share of pairs (1e-3)",
                             "partners_99": "partners for 99 % of a row",
                             "exact_r": "median r, exact", "cut_1e-3_r": "median r, cut at 1e-3"})
            .style.format({"solve s": "{:.1f}", "pairs a row (1e-6)": "{:.0f}",
                           "share of pairs (1e-6)": "{:.1%}", "pairs a row (1e-3)": "{:.0f}",
                           "share of pairs (1e-3)": "{:.1%}",
                           "partners for 99 % of a row": "{:.0f}", "median r, exact": "{:.3f}",
                           "median r, cut at 1e-3": "{:.3f}"}).hide(axis="index"))
    last = dense.iloc[-1]
    ranks = [int(c.split("_")[1]) for c in dense.columns if c.endswith("_sigma_ratio")]
    sizes = [int(c.split("_")[1]) for c in dense.columns
             if c.startswith("minibatch_") and pd.notna(last[c])]
    exact_at = dict(zip(dense["m"], dense["exact_r"]))
    display(Markdown(
        f"Recorded {last['date']} (commit {last['commit']}, {last['machine']}). At "
        f"{int(last['m']):,} cells a side the exact plan transfers with median r "
        f"{last['exact_r']:.3f}. Its best rank-k approximations transfer with r "
        + ", ".join(f"{last[f'rank_{k}_r']:.3f}" for k in ranks)
        + " at k = " + ", ".join(str(k) for k in ranks)
        + " (the k-th singular value is still "
        + ", ".join(f"{last[f'rank_{k}_sigma_ratio']:.2f}" for k in ranks)
        + " of the first). Mini-batch OT: "
        + ", ".join(f"parts of {b:,} cells: r {last[f'minibatch_{b}_r']:.3f}"
                    + (f" (the exact plan on {b:,} cells a side: {exact_at[b]:.3f})"
                       if b in exact_at else "") for b in sizes) + "."))
else:
    display(Markdown("No recorded `dense_plans.jsonl` was found next to the book. Run "
                     "`benchmarks/dense_plans.py --json benchmarks/results/dense_plans.jsonl`."))

# %% [markdown]
# Three things follow from these records. First, the plans do not get sparser as groups
# grow: the pairs a plan needs stay a fixed share of all pairs (about 8-9 % for $10^{-6}$,
# 2-3 % for $10^{-3}$, from 1,000 to 11,000 cells a side), so they grow as $m^2$, and every
# support is found by passes over all $m^2$ pairs. At the $10^6$-cell atlas's largest type
# (117,583 cells) that share would be about $10^9$ pairs for $10^{-6}$ in one group, ten
# times `max_nnz`. Yet the mass of a row is concentrated: 99 % of it sits on 10 to 46
# partners, and cutting the plan down to the 2-3 % of pairs that carry all but $10^{-3}$ of
# the mass leaves the transfer unchanged to three digits. Second, the plans are not
# low-rank: the singular values fall slowly, and even rank 300 loses most of the transfer,
# so Nyström, positive-feature or low-rank OT solvers, which assume a low-rank kernel or
# plan, do not fit these groups. Third, the transfer gets better with more cells
# (median r from 0.52 at 1,000 cells a side to 0.66 at 11,000), and mini-batches give
# that back: parts of $b$ cells transfer about as well as an exact plan on $b$ cells. So
# `align` offers no mini-batch shortcut; these groups need all their pairs, and a GPU
# (`align(..., device="cuda")` runs the classifiers and the block passes there) or finer
# groups: a label that splits a type in two halves its pairs, though each cell's partners
# are then sought within its half only.

# %% [markdown]
# ## Limits
#
# - The truncation pays off when the plan is concentrated, which is the case for the paper's
#   $\varepsilon = 0.05$ on logits of a trained classifier. With a large $\varepsilon$ relative
#   to the spread of the costs, almost every entry is kept. The online solver then falls back
#   to exact block log-sum-exp iterations, which are correct but slow (it warns).
# - The first iteration and every support pass visit all $n_1 n_2$ pairs, so the time grows
#   as $n^2$. What this solver does about it is to make each pass cheap (compiled, in cache,
#   screened in float32, nothing but the result written) and to make few of them (the
#   candidates, their repairs, the start's single pass). The stage table above shows where
#   the time goes. In the runs of 2026-12-04, one group of $10^5$ took 13.2 s and 0.99 GB
#   with the one-pass start (0ffdda4: 8.2 s for the start, which is the k-d tree and the
#   one pass, 1.5 s for the repairs, 2.5 s for the Newton steps, and no other pass),
#   against 21.4 s with the two log-sum-exp passes and a support pass (b909abb: start
#   10.1 s, pass 7.0 s) and 24.9-39.9 s on 2026-12-03. At $2\times 10^4$ POT's default
#   took 142 s and 15.3 GB in the same run, ours 0.63 s and 0.43 GB. Late that evening,
#   one run after the other: at $3\times 10^5$ cbf2436 took 177 s (start 56 s; its pairs
#   down to the candidates' depth were more than 64 a row, so the start's candidates were
#   dropped and one more pass made, 49 s) and 5020877 116 s (start 48 s, which kept its
#   candidates at half the depth, no other pass, repairs 19 s, 25 iterations 44 s), both
#   at 2.3 GB; at $10^5$ 14.6 s and 13.9 s. One group of $10^6$ took 2,719 s (45 minutes)
#   and 8.6 GB with 0ffdda4 (the start 685 s, whose candidates were dropped, three support
#   builds 1,688 s, repairs 204 s, 474 plain Sinkhorn iterations 98 s) and 1,874 s
#   (31 minutes) with 5020877 (the start 503 s, which kept its candidates, two builds
#   905 s, repairs 306 s, iterations 101 s), to a marginal error of 1.0e-6. Its 45.5 pairs
#   a row are above the 16 pairs a row and column (32 a row here) up to which the solver
#   takes Newton steps. That run peaked at 10.8 GB: the old candidates, support and
#   kernels were still held while a new pass ran. 84308c7 frees them first: it peaked at
#   7.75 GB, in 1,993 s (its start took 603 s, against 503 s; about two minutes of test
#   runs overlapped it). On 2026-12-05 the repairs kept every pair of the rows they
#   rescan (1c6e00d, item 5): no pass after the start, 989 s (16.5 minutes) and 6.68 GB
#   (start 497 s, 6 repairs 329 s, iterations 104 s); with the faster tile as well
#   (96f11b1) 886 s and 6.67 GB (start 450 s, of which my test runs overlapped about a
#   minute and a half; repairs 272 s; iterations 103 s), and with the candidates filtered
#   and repaired in compiled sweeps, without copies of their pairs (e24ff40), 799 s
#   (13.3 minutes) and 5.89 GB (start 425 s, repairs 222 s, iterations 102 s). With the
#   candidates' indices in int32, the kernel laid out in CSR without the support's indices,
#   the start's pairs sorted by a counting sort instead of a lexsort, and Newton steps that
#   form no Hessian (c7d208f), 747 s (12.4 minutes) and 4.85 GB (start 393 s, repairs
#   224 s, support 43 s, iterations 77 s). A second run of it, with the resident memory
#   sampled by stage, rose 2.9 GB above its state before the solve in the start, at most
#   3.1 GB in the repairs and 3.5 GB at the last support build, where the candidates (77 a
#   row by then, 1.2 GB), the kernel, its transpose and the log-entries (1.5 GB) are alive
#   together. With $K^\top$ as a view of the kernel's arrays instead of a copy
#   (c677126), 771 s and again 4.85 GB: the support builds took 29 s instead of 43 s and
#   the iterations 92 s instead of 77 s (the transposed products are slower), and the peak
#   did not move, so it lies after the solver's stages, where the returned support (int64
#   indices) and the coupling are built. Building both from the kernel's own int32 arrays,
#   with the log-entries updated in place and the coupling's row normalisation in one
#   compiled pass (a5cd9d8), brought the peak to 4.43 GB (3.82 GB above the state before
#   the solve), in 723 s (start 395 s, repairs 222 s, support 19 s, iterations 83 s).
#   The support filter then stopped holding every candidate's value and a mask (64ea657),
#   yet 4c20251 peaked at the same 4.43 GB (776 s). A second process that read the solve's
#   resident memory every 5 ms (a thread of the solving process, which the compiled loops
#   keep waiting, had missed it) placed the peak: at the end of every repair, where the
#   merged candidates are written while the old ones (77 a row by then, 1.2 GB) are still
#   alive. The repairs ended at 4.1, 4.0, 3.9, 4.1 and 4.4 GB, the start at 3.6 GB, the
#   support builds at most at 3.6 GB (the process's own 0.7 GB included). With the
#   repairs merging the candidates in place (6114e5e: the kept pairs moved to the front of
#   their own arrays, the arrays grown by `realloc`, which moves pages instead of copying
#   them, and the fresh pairs merged in from the back), one group of $10^6$ took 702 s and
#   peaked at **3.78 GB** (3.17 GB above the state before the solve; start 380 s, repairs
#   214 s, support 20 s, iterations 83 s). With the start's log-sum-exps over its pairs in
#   one compiled pass instead of `np.maximum.at` and `np.add.at` with their temporaries
#   (4f92937), it peaked at 3.73 GB (3.12 GB above; test runs overlapped it for about
#   five minutes, so its 889 s are not its own). At $3\times 10^5$ c7d208f took 92 s and 1.38 GB (e24ff40: about 116-121 s and
#   2.0 GB). The goal that issue 22 set, $10^5$ in 20 s and 1 GB and $10^6$ in
#   5 minutes and 4 GB on 2 cores, is reached at $10^5$ (14.4 s, 0.99 GB with the
#   process's imports; 11.1 s and 0.85 GB with c7d208f); at $10^6$ the memory is (3.78 GB
#   with 6114e5e) and the time is not (702 s): the start
#   alone, one pass over the $10^{12}$ pairs after the k-d tree, took 6.5 minutes with
#   this kernel; the repairs and the iterations come on top. A timed pass of 40,000 columns against
#   $10^6$ rows took 12.2 s collecting pairs down to the band the start keeps (3.45 below
#   the level) and 14.1 s counting every band down to 27.6 as the start does: choosing the
#   band beforehand would save at most about 13 % of the start.
# - No index removes pairs here without giving up the certificate. On the 12-d data of this
#   page, the support of a row reaches about 2.3 distance units beyond its nearest
#   neighbour (2.4 units away at $n = 10^5$), while groups of 256 points formed by k-means
#   have a median radius of 12 units: 92 % of such groups lie within reach of a sampled row,
#   and 99 % of the groups cut from a k-d tree's leaf order. Smaller groups do not help
#   enough: with the start's potentials at $n = 10^5$ and the triangle inequality
#   (a group is skipped for a row when even its nearest possible member, given the group's
#   centre and the members' distances to it, is below the row's threshold), groups of 16
#   points from a k-d tree's leaves (median radius 8.5 units) left 67 % of the
#   row-group pairs to compute, and k-means groups of 64 (radius 9.5 units) 78 % of the
#   pairs, before counting the distances to the groups' centres. Nor does a coarse start:
#   potentials from a converged solve of a 10 % subsample, extended to all points by
#   c-transforms, were far from the final ones: at $n = 10^5$ (a subsample of $10^4$),
#   99 % of the rows were within 84 log units of their final potential and of the
#   columns within 39, against 3.3 and 3.5 for the one-pass start (in the gauge of the
#   median row), and repairs would have had to rescan 22-31 % of the rows and columns at
#   any of the candidates' depths, against 0.06-5 % from the one-pass start. At
#   $\varepsilon = 0.05$ a point's partners in a subsample are not its partners in the
#   whole. At $n = 10^5$, scipy's
#   `cKDTree` took 9.8 s to find every row's nearest neighbour, and its radius queries
#   that reach 2.7 units beyond it would take 123 s for all rows (timed on 5,000 rows),
#   against 9-14 s for one screened pass over all pairs. `sinkhorn_online(...,
#   support="tree")` finds the same support by k-d tree radius queries instead (exactly the
#   pairs above the truncation level, so the certificate holds), and `support="auto"`
#   chooses it when a timed pilot against the compiled pass says it pays. On this page's data
#   it does not: the trees took 4.7 s and 16.9 s at $n = 10^4$ and $2\times 10^4$, against
#   1.6 s and 4.1 s for the compiled passes. The trees pay on low-dimensional embeddings whose
#   points are spread out compared with $\varepsilon$. On a GPU (`device="cuda"`) the passes
#   run in torch blocks. That path ran once on an H200 (the recorded `cuda` rows above: 32 s
#   at $10^5$); its tests (`tests/test_gpu.py`) run only where torch sees a GPU, and the CI
#   machine has none. `align(..., device="cuda")` sends the block passes of its large groups
#   there too (before caa625c it moved only the classifiers), and
#   `benchmarks/gpu_checks.sh OUTDIR align` runs the atlas above at $10^5$ and $10^6$ cells
#   on a GPU; no GPU has been lent since, so it has not run.
# - On the logits of real classifiers within one cell type, plans can be dense: for a 45-type
#   simulated atlas (3 training epochs), 95 % of a 2,243-cell group's entries were within
#   $e^{-27}$ of their row's largest, with about 530 effective partners per cell at
#   $\varepsilon = 0.05$ and 461 Sinkhorn iterations to reach $10^{-6}$ (16 at
#   $\varepsilon = 0.2$). Truncation cannot make such a plan sparse; a larger `reg` (see the
#   {doc}`trust page <trust>`) converges much faster.
# - A support of more than `max_nnz` pairs (default $10^8$) is counted by the pass and
#   never gathered: the solver then goes on with exact passes over all pairs, which hold
#   none, and warns after the first of those iterations with its time and the hours that
#   `max_iter` allows. On this page's 12-d data, `reg` 0.2 keeps about 10 % of all
#   pairs (464, 964 and 1,979 a row at $n$ = 5,000, $10^4$ and $2\times 10^4$), so
#   $10^9$ at $n = 10^5$. Before db88615 the start's pass and the support pass gathered
#   every such pair before the check: that run held 19.6 GB of this machine's 23 GB after
#   nine minutes and was stopped. Both passes now stop after counting: the same solve
#   counted 1,102,992,901 pairs, peaked at 0.73 GB, and warned after 387 s that its first
#   exact iteration had taken 97.5 s, so up to 27 hours for `max_iter` = 1000 (the test
#   suite ran beside it for about three of those minutes). Such a plan asks for a smaller
#   `reg` (0.1 kept 181 pairs a row at $10^5$ and converged in 79 s), more `max_nnz` where
#   the memory allows it (about 28 bytes a pair), or a GPU.
# - `M @ Z`, sampling and `to_sparse()` use the kept support. The dropped entries carry less
#   than the solver's tolerance/100 in total. `M.matmul(Z, exact=True)` and `M.topk(k)` pass
#   over all pairs instead.
# - Before a run, {py:func}`~propalign_lite.ot_memory.estimate_groups_memory` says how much
#   memory matching two labelled sets will need, from the group sizes alone (small groups
#   solved densely at 52 bytes an entry, measured; online groups by the model of
#   {py:func}`~propalign_lite.ot_memory.estimate_memory`, fitted on 2026-12-05 to eight
#   measured solves from $10^5$ to $10^6$ points and 1 to 375 kept pairs a row, each within
#   -20 % to +25 %; the sum of buffers it replaced said 6.4 GB for the 3.2 GB solve at
#   $10^6$; or, with `dense_plans=True`, as
#   held kernels at 27 bytes an entry); `align(progress=True)` prints both ends and keeps
#   the sparse one in `Alignment.memory_estimate_`. The atlas run at $10^5$ cells above
#   printed 1.65 GB (sparse plans) before the dense model existed, and peaked at 7.8-9.3 GB.
#   The cell below asks the model about $10^6$ cells in 45 types, with the uneven
#   abundances of `benchmarks/align_atlas.py`.

# %% tags=["hide-input"]
from propalign_lite.ot_memory import estimate_groups_memory

rng = np.random.default_rng(0)
p_types = np.maximum(rng.dirichlet(np.ones(45)), 0.2 / 45)
atlas_labels = rng.choice(45, size=10 ** 6, p=p_types / p_types.sum())
sizes = np.bincount(atlas_labels)
gb = {k: estimate_groups_memory(atlas_labels, atlas_labels, nnz_per_row=k) / 2 ** 30
      for k in (16, 530)}
held_gb = estimate_groups_memory(atlas_labels, atlas_labels, dense_plans=True) / 2 ** 30
display(Markdown(
    f"For $10^6$ cells in 45 types (largest type {sizes.max():,} cells, smallest "
    f"{sizes.min():,}), one group at a time, the estimate is {gb[16]:.2f} GB at 16 kept pairs a "
    f"row and {gb[530]:.1f} GB at the 530 of the dense plan above. With every plan dense it "
    f"is {held_gb:.1f} GB: in this model groups of up to about 15,800 cells a side are held "
    "whole, larger "
    "ones would keep more than `max_nnz` pairs and are solved by passes over all pairs, with "
    "little memory but many passes. The number of kept pairs is not known before a run, so "
    "pass the `nnz_per_row` that a smaller run showed (`result.nnz / n`)."))

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: perf-reg
# Time `match(x, y, online=True, return_result=True)` on the page's data with $n = 2000$ for
# `reg` in 0.02, 0.05, 0.2, 1.0. Record the seconds, the iterations and the size of the kept
# support (`M.result.nnz`). Explain the trend.
# :::
#
# :::{solution} perf-reg
# :class: dropdown
# ```python
# from propalign_lite import match
# rng = np.random.default_rng(0)
# z = 3 * rng.normal(size=(2000, 12))
# x, y = z + 0.5 * rng.normal(size=z.shape), z + 0.5 * rng.normal(size=z.shape)
# for reg in (0.02, 0.05, 0.2, 1.0):
#     M, res = match(x, y, reg=reg, online=True, tol=1e-6, return_result=True)
#     print(reg, res.n_iter, res.nnz, res.err)
# ```
# The kept support holds the pairs whose cost is within about $40\,\varepsilon$ of the best
# partner of their row. It grows quickly with $\varepsilon$: at 0.05 it is about one entry
# per row on this data; at 1.0 it holds a large part of every row. Sparse iterations then
# cost almost as much as dense ones. A smaller $\varepsilon$ keeps the support small, but
# the plain Sinkhorn rate gets worse. The Newton steps are what keep the iteration count low.
# :::
#
# :::{exercise}
# :label: perf-implicit
# With `M = match(x, y, online=True)` for $n = 5000$, compute the trace, the latent MSE
# (taking `z` as the latent) and the paper's FOSCTTM with `propalign_lite.metrics`. Check that
# `M` never becomes a dense array. Which of these operations pass over all $n^2$ pairs?
# :::
#
# :::{solution} perf-implicit
# :class: dropdown
# ```python
# from propalign_lite import metrics
# M = match(x, y, online=True)              # x, y, z with n = 5000 as above
# metrics.trace(M)                          # M.diagonal(): n distances, no pass
# metrics.latent_mse(M, z)                  # M @ z on the kept support
# metrics.foscttm_coupling(M, y, random_state=0)   # sampled partners + blocked FOSCTTM
# ```
# Trace and MSE use only the diagonal and the support. FOSCTTM compares every sample with
# every other one, so it passes over $n^2$ distances. It does so in blocks
# (`coupling.foscttm_blocked`), never holding an $n \times n$ matrix. `M.topk(k)` and
# `M.matmul(Z, exact=True)` are the other full passes.
# :::

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
