"""Matching the groups of :func:`~propalign_lite.match_groups` one after the other, on threads
or on a Dask cluster (groups are independent problems)."""
from __future__ import annotations

import os
import sys

__all__ = ["run_groups"]


def run_groups(match_one, x, y, todo: dict, opts: dict, rng, *, n_jobs: int, client,
               progress: bool) -> dict:
    """``{label: match_one(x[rows], y[cols], **opts)}`` for the groups of ``todo`` (``label ->
    (rows, cols)``), in its order: one after the other, on ``n_jobs`` threads, or as tasks of
    a Dask ``client``. ``"random"`` always runs in order from the one generator ``rng``, so
    its draws do not depend on how the groups are run; the other matchers are deterministic.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="matching groups", disable=not progress, file=sys.stderr)
    if opts["method"] == "random" or (client is None and n_jobs == 1):
        out = {}
        for g, (i1, i2) in todo.items():         # one generator, drawn in label order
            out[g] = match_one(x[i1], y[i2], random_state=rng, warn=False, **opts)
            bar.update()
        bar.close()
        return out
    if client is not None:
        from contextlib import nullcontext

        from distributed import as_completed

        executor = nullcontext()
        submit = lambda fn, *args, **kw: client.submit(fn, *args, pure=False, **kw)  # noqa: E731
    else:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        executor = ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) if n_jobs == -1
                                      else n_jobs)
        submit = executor.submit
    done = {}
    with executor:
        futures = {submit(match_one, x[i1], y[i2], warn=False, **opts): g
                   for g, (i1, i2) in todo.items()}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            bar.update()
    bar.close()
    return {g: done[g] for g in todo}
