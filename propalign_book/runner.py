"""Run experiment units through Dask and keep their records in a results store.

:func:`run_units` is what chapters and the command line (:mod:`propalign_book.run`) call::

    records = run_units("prediction.seed", settings, seeds=[1, 2, 3])

For every seed it computes the store key (:meth:`propalign_book.store.ResultsStore.key`),
reads the record if the store holds a valid one, and otherwise runs the unit:

* ``client=None`` (default): in this process, through Dask's synchronous scheduler (no
  threads, no subprocesses, nothing printed: what the book and CI use);
* a :class:`distributed.Client` (e.g. from :func:`make_client`: a ``LocalCluster`` of
  ``N`` worker processes, a scheduler address, or SLURM/PBS jobs through ``dask-jobqueue``),
  or a scheduler address string. With ``gpu=True`` every unit asks for the worker resource
  ``{"GPU": 1}``, so a worker started with ``--resources GPU=1`` runs one unit at a time.

Each record is written to the store as soon as it arrives, atomically, so an interrupted
sweep (a killed worker, a cancelled job) loses nothing that finished; running the same call
again computes only what is missing. Every returned record carries a ``"_run"`` entry with
its provenance (where and when it ran, how long it took, whether it was read from the store).

Example
-------
>>> import tempfile
>>> from propalign_book.experiments import settings_for
>>> store = tempfile.mkdtemp()
>>> recs = run_units("toy.matching", settings_for("toy.matching"), [1, 2], store=store,
...                  progress=False)
>>> [r["_run"]["source"] for r in recs]
['computed', 'computed']
>>> [r["_run"]["source"] for r in run_units("toy.matching", settings_for("toy.matching"),
...                                         [1, 2], store=store, progress=False)]
['store', 'store']
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time

from .experiments._registry import fingerprint_of, get_unit, unit_settings
from .store import ResultsStore, decode, encode, package_version, provenance

__all__ = ["run_units", "make_client", "UnitsFailed", "resolve_store"]


class UnitsFailed(RuntimeError):
    """Some units of a sweep failed; the others' records are in the store."""

    def __init__(self, message, failures):
        super().__init__(message)
        self.failures = failures


def resolve_store(store) -> ResultsStore | None:
    """``None`` -> the default store (``results/``), ``False`` -> no store, a path -> a store
    there, a :class:`ResultsStore` as is."""
    if store is None:
        return ResultsStore()
    if store is False:
        return None
    if isinstance(store, ResultsStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        return ResultsStore(store)
    raise ValueError(f"store must be None, False, a path or a ResultsStore, got {store!r}")


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, str)) or seeds is None:
        raise ValueError(f"seeds must be a list of ints, got {seeds!r}")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not float(s).is_integer():
            raise ValueError(f"seeds must be integers, got {s!r}")
        out.append(int(s))
    if len(set(out)) != len(out):
        raise ValueError(f"seeds contains duplicates: {out}")
    return out


def execute_unit(name: str, settings: dict, seed: int) -> tuple[dict, dict]:
    """Run one unit here (on whichever process calls it); return ``(record, meta)``.

    ``meta`` holds the provenance (:func:`propalign_book.store.provenance`) with the
    unit's duration and the process that ran it.
    """
    from . import experiments  # noqa: F401  (registers the units on a fresh worker)

    fn = get_unit(name)
    start = time.perf_counter()
    record = fn(dict(settings), int(seed))
    duration = time.perf_counter() - start
    if not isinstance(record, dict):
        raise TypeError(f"unit {name!r} returned {type(record).__name__}, not a dict")
    meta = provenance(duration_s=round(duration, 3), pid=os.getpid(),
                      host=socket.gethostname())
    return record, meta


def _with_run(record: dict, **run) -> dict:
    out = dict(record)
    out["_run"] = run
    return out


def run_units(name: str, settings: dict, seeds, *, store=None, client=None,
              progress: bool = True, gpu: bool = False, recompute: bool = False,
              on_record=None) -> list[dict]:
    """Run unit ``name`` for every seed (or read its records from the store).

    Parameters
    ----------
    name : str
        A registered unit (:data:`propalign_book.experiments.UNITS`).
    settings : dict
        The unit's settings (a chapter's profile settings; a ``"seeds"`` entry is dropped,
        see :func:`propalign_book.experiments._registry.unit_settings`).
    seeds : list of int
    store : None, False, path or ResultsStore
        Where records are kept (default ``results/``; ``False``: keep nothing).
    client : None, distributed.Client or str
        ``None`` runs in this process (Dask's synchronous scheduler); a client or a scheduler
        address runs on that cluster.
    progress : bool
        Show a tqdm progress bar (on stderr; chapters pass ``False``).
    gpu : bool
        Ask for the worker resource ``GPU=1`` per unit (distributed only).
    recompute : bool
        Ignore stored records (they are overwritten).
    on_record : callable, optional
        Called as ``on_record(record)`` after each record is stored.

    Returns
    -------
    records : list of dict
        One per seed, in the order of ``seeds``, each with a ``"_run"`` provenance entry.

    Raises
    ------
    UnitsFailed
        If some units raised (or lost their worker too often); every unit that finished is
        stored, so calling again computes only the missing ones.
    """
    get_unit(name)  # a clear error for unknown names, before any work
    settings = unit_settings(settings)
    seeds = _check_seeds(seeds)
    st = resolve_store(store)
    version = package_version(name)          # the library + this unit's own code
    fingerprint = fingerprint_of(name, settings)
    keys = {s: ResultsStore.key(name, settings, s, version=version, fingerprint=fingerprint)
            for s in seeds}
    where = str(st.root) if st is not None else None
    results: dict[int, dict] = {}
    if st is not None and not recompute:
        for s in seeds:
            body = st.load(keys[s])
            if body is not None:
                results[s] = _with_run(body["record"], unit=name, seed=s, key=keys[s],
                                       source="store", store=where, **body["meta"])
    todo = [s for s in seeds if s not in results]

    from tqdm import tqdm        # not tqdm.auto: in a notebook without ipywidgets it warns on stderr

    bar = tqdm(total=len(seeds), initial=len(results), desc=name, disable=not progress,
               file=sys.stderr, leave=True)

    def finish(seed, record, meta):
        # what a store would give back (lists, plain floats, arrays): the same record
        # whether it was just computed or read later
        record = decode(json.loads(json.dumps(encode(record))))
        if st is not None:
            st.put(keys[seed], record, unit=name, settings=settings, seed=seed,
                   fingerprint=fingerprint, meta=meta)
        results[seed] = _with_run(record, unit=name, seed=seed, key=keys[seed],
                                  source="computed", store=where, **meta)
        bar.update(1)
        if on_record is not None:
            on_record(results[seed])

    failures = []
    own_client = None
    try:
        if client is None:
            import dask

            for s in todo:
                try:
                    record, meta = dask.delayed(execute_unit, pure=False)(
                        name, settings, s).compute(scheduler="synchronous")
                except Exception as err:  # a failing unit must not lose the others
                    failures.append((s, err))
                    continue
                finish(s, record, meta)
        else:
            from distributed import Client, as_completed

            if isinstance(client, str):                 # a scheduler address: ours to close
                client = own_client = Client(client, set_as_default=False)
            resources = {"GPU": 1} if gpu else None
            futures = {client.submit(execute_unit, name, settings, s, pure=False,
                                     key=f"{name}-seed{s}-{keys[s]}",
                                     resources=resources): s for s in todo}
            for fut in as_completed(list(futures)):
                s = futures[fut]
                try:
                    record, meta = fut.result()
                except Exception as err:  # a failing unit must not lose the others
                    failures.append((s, err))
                    continue
                finish(s, record, meta)
    finally:
        bar.close()
        if own_client is not None:
            own_client.close()
    if failures:
        done = len(seeds) - len(failures)
        seeds_failed = sorted(s for s, _ in failures)
        raise UnitsFailed(
            f"{len(failures)} of {len(seeds)} units of {name!r} failed (seeds "
            f"{seeds_failed}; first error: {failures[0][1]!r}). The {done} others are "
            f"{'stored in ' + where if where else 'done'}; run again to compute only the "
            "missing ones.", failures) from failures[0][1]
    return [results[s] for s in seeds]


def make_client(*, workers: int | None = None, scheduler: str | None = None,
                slurm: dict | None = None, pbs: dict | None = None, gpu: bool = False,
                threads_per_worker: int = 1, jobs: int = 1):
    """A :class:`distributed.Client` for one of the supported back ends, or ``None``.

    * ``workers=N``: a ``LocalCluster`` of ``N`` worker processes (``threads_per_worker``
      threads each; with ``gpu=True`` each worker offers the resource ``GPU=1``);
    * ``scheduler="tcp://host:8786"``: an existing cluster;
    * ``slurm={...}`` / ``pbs={...}``: keyword arguments of ``dask_jobqueue.SLURMCluster`` /
      ``PBSCluster`` (e.g. ``queue``, ``cores``, ``memory``, ``walltime``), scaled to
      ``jobs`` jobs; with ``gpu=True`` each job asks for one GPU and its worker offers
      ``GPU=1``.

    Nothing given: ``None`` (run in-process). The caller closes the client (and its
    ``cluster``, if any: ``client.cluster``).
    """
    chosen = [k for k, v in (("workers", workers), ("scheduler", scheduler), ("slurm", slurm),
                             ("pbs", pbs)) if v is not None]
    if len(chosen) > 1:
        raise ValueError(f"choose one of workers, scheduler, slurm, pbs; got {chosen}")
    if not chosen:
        return None
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler)
    if workers is not None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR,
                               resources={"GPU": 1} if gpu else None)
        return Client(cluster)
    try:
        import dask_jobqueue
    except ImportError as err:  # pragma: no cover - pinned in requirements.txt
        raise ImportError("SLURM/PBS need dask-jobqueue: pip install dask-jobqueue==0.9.0 "
                          f"({err})") from err
    options = dict(slurm if slurm is not None else pbs)
    options.setdefault("cores", 1)
    options.setdefault("memory", "16GB")
    options.setdefault("processes", 1)
    if gpu:
        options["worker_extra_args"] = list(options.get("worker_extra_args", [])) + [
            "--resources", "GPU=1"]
        directive = "--gres=gpu:1" if slurm is not None else "-l ngpus=1"
        options["job_extra_directives"] = list(options.get("job_extra_directives", [])) + [
            directive]
    cls = dask_jobqueue.SLURMCluster if slurm is not None else dask_jobqueue.PBSCluster
    cluster = cls(**options)
    cluster.scale(jobs=jobs)
    return Client(cluster)
