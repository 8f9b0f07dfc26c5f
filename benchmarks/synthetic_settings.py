"""Measure what the synthetic chapter's ci settings buy: PS+OT quality against training budget.

For one configuration (image size, training scenes, epochs, learning rate, batch size) this
trains the paper's CNN propensity classifier on both views, and after *every* epoch computes the
logits of the test scenes, so that the PS+OT trace and latent MSE can be read off for every
epoch of the run (same-epoch logits of both views), next to the checkpoint kept by validation loss
(what the chapter uses). One JSON line per configuration is appended to the output file.

Usage::

    python benchmarks/synthetic_settings.py --image-size 64 --n-train 10000 --epochs 4 \
        --lr 2e-3 --out benchmarks/results/synthetic_settings.jsonl

Not part of the tests: it is the measurement behind the chapter's ci settings (issue 9).
``benchmarks/results/synthetic_settings.jsonl`` holds the records of that measurement (one
seed per configuration, 6,000 test scenes, 2026-11-29/30, the project's 2-core machine). Most
ran while other jobs shared the CPU, so their ``train_s_incl_epoch_eval`` are wall times
under load; the matching scores do not depend on it.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from propalign_lite import metrics
from propalign_book.experiments.synthetic import METHODS, fit_view, modality_seeds
from propalign_lite.datasets import make_balls
from propalign_lite.matchers import match_groups


def score(emb1, emb2, test, names=("PS+OT", "Uniform")):
    out = {}
    for name in names:
        cp = match_groups(emb1, test.t, emb2, test.t, random_state=0, **METHODS[name])
        sc = metrics.evaluate_couplings(cp, test.t, z=test.z)
        out[name] = {"MSE": float(sc["MSE"]), "Trace": float(sc["Trace"])}
    out["chance_trace"] = metrics.chance_trace(cp)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--n-train", type=int, default=2500)
    p.add_argument("--n-val", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-seed", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/synthetic_settings.jsonl")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    S = a.image_size
    train = make_balls(a.n_train, image_size=S, random_state=a.data_seed)
    val = make_balls(a.n_val, image_size=S, random_state=a.data_seed + 1)
    test = make_balls(a.n_test, image_size=S, random_state=a.data_seed + 2)
    gen = time.perf_counter() - t0
    settings = dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr)
    per_epoch = {}

    def keep(view):
        def cb(epoch, clf):
            per_epoch.setdefault(view, []).append(clf.logits(getattr(test, view)))
        return cb

    fitted, seconds = {}, {}
    for view, seed in zip(("x1", "x2"), modality_seeds(a.seed)):
        start = time.perf_counter()
        from propalign_lite import PropensityClassifier
        clf = PropensityClassifier("cnn", epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                                   random_state=seed)
        clf.fit(getattr(train, view), train.t, x_val=getattr(val, view), t_val=val.t,
                callback=keep(view))
        fitted[view] = clf
        seconds[view] = float(sum(clf.history_["seconds"]))
    curve = [score(e1, e2, test, ("PS+OT",)) for e1, e2 in zip(per_epoch["x1"], per_epoch["x2"])]
    best = score(fitted["x1"].logits(test.x1), fitted["x2"].logits(test.x2), test)
    rec = {"image_size": S, "n_train": a.n_train, "n_val": a.n_val, "n_test": a.n_test,
           "epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size, "seed": a.seed,
           "best_epochs": [fitted[v].best_epoch_ for v in ("x1", "x2")],
           "val_accuracy": [fitted[v].history_["val_accuracy"] for v in ("x1", "x2")],
           "val_loss": [fitted[v].history_["val_loss"] for v in ("x1", "x2")],
           "kept": best, "per_epoch": curve, "generate_s": gen,
           "train_s_incl_epoch_eval": seconds, "threads": torch.get_num_threads(),
           "machine": f"{platform.machine()} {platform.processor()}",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    import pathlib
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    k = best
    print(f"S={S} n={a.n_train} ep={a.epochs} lr={a.lr}: kept epochs {rec['best_epochs']}, "
          f"PS+OT MSE {k['PS+OT']['MSE']:.4f} (uniform {k['Uniform']['MSE']:.4f}), trace "
          f"{k['PS+OT']['Trace'] / k['chance_trace']:.1f}x chance; per epoch x chance: "
          + " ".join(f"{c['PS+OT']['Trace'] / c['chance_trace']:.1f}/{c['PS+OT']['MSE']:.4f}"
                     for c in curve) + f"; train {sum(seconds.values()):.0f} s", flush=True)


if __name__ == "__main__":
    main()
