"""Run the experiment units of chapters from the command line, on any Dask back end.

Examples (from the repository root)::

    python -m propalign_book.run --profile ci --chapters toy --seeds 1-8 --workers 2
    python -m propalign_book.run --profile paper --chapters synthetic,citeseq --seeds 1-10 \\
        --slurm --queue gpu --jobs 10 --gpu --walltime 04:00:00 --memory 32GB
    python -m propalign_book.run --profile paper --chapters prediction --scheduler tcp://host:8786
    python -m propalign_book.run --list

Records go to the results store (``results/`` or ``--store``); units already there are
skipped, so an interrupted sweep is resumed by running the same command again. The book
then renders these records without recomputing (``make book PROFILE=paper``). ``--record``
also copies them to ``results/recorded/`` (with provenance) for committing.
"""
from __future__ import annotations

import argparse
import sys
import time


def parse_seeds(text: str) -> list[int]:
    """``"1-10"`` -> 1..10; ``"1,3,5"``; ``"1-3,7"``."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
            lo, hi = int(lo), int(hi)
            if hi < lo:
                raise ValueError(f"seed range {part!r} is empty")
            seeds.extend(range(lo, hi + 1))
        else:
            seeds.append(int(part))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return list(dict.fromkeys(seeds))


def units_of(chapters: list[str]) -> list[str]:
    """Registered unit names of the given chapters (all chapters: ``["all"]``); an entry
    may also name one unit (``"synthetic.seed"``).

    >>> units_of(["synthetic.seed", "toy"])
    ['synthetic.seed', 'toy.matching']
    """
    from .experiments import UNITS, chapter_of

    if chapters == ["all"]:
        return sorted(UNITS)
    known = sorted({chapter_of(n) for n in UNITS})
    unknown = [c for c in chapters if c not in known and c not in UNITS]
    if unknown:
        raise ValueError(f"no experiment units for chapter(s) {unknown}; chapters with units: "
                         f"{known}")
    return [n for c in chapters
            for n in ([c] if c in UNITS else sorted(u for u in UNITS if chapter_of(u) == c))]


def plan(names: list[str], profile: str, seeds=None) -> list[tuple]:
    """``(unit, params, settings, seeds)`` for every unit and variant the chapters run under
    ``profile``: the settings come from :func:`propalign_book.experiments.settings_for`, the
    route the chapters take, so the records land where the chapters look for them.

    >>> [(n, p) for n, p, _, _ in plan(["realcells.transfer"], "ci")]
    [('realcells.transfer', {'dataset': 'bmmc'}), ('realcells.transfer', {'dataset': 'mop'})]
    """
    from .experiments import chapter_of, settings_for, variants_of
    from .profiles import PROFILES

    out = []
    for name in names:
        chapter = PROFILES.get(chapter_of(name), {}).get(profile, {})
        for params in variants_of(name, profile):
            settings = settings_for(name, profile, **params)
            out.append((name, params, settings,
                        seeds or chapter.get("seeds") or [settings.get("seed", 0)]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", choices=["ci", "paper"])
    parser.add_argument("--chapters", default="all",
                        help="comma-separated chapters or unit names (default: all chapters "
                             "with units)")
    parser.add_argument("--seeds", help="e.g. 1-10 or 1,2,5 (default: the profile's seeds)")
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument("--workers", type=int, help="LocalCluster with N worker processes")
    backend.add_argument("--scheduler", help="address of a running Dask scheduler")
    backend.add_argument("--slurm", action="store_true", help="SLURM jobs via dask-jobqueue")
    backend.add_argument("--pbs", action="store_true", help="PBS jobs via dask-jobqueue")
    parser.add_argument("--jobs", type=int, default=1, help="SLURM/PBS: number of jobs")
    parser.add_argument("--queue", help="SLURM partition / PBS queue")
    parser.add_argument("--account", help="SLURM/PBS account (project)")
    parser.add_argument("--walltime", default="02:00:00")
    parser.add_argument("--memory", default="16GB")
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--gpu", action="store_true", help="one GPU per unit")
    parser.add_argument("--store", help="results directory (default: results/)")
    parser.add_argument("--record", action="store_true",
                        help="also copy the records to results/recorded/ (for committing)")
    parser.add_argument("--recompute", action="store_true", help="ignore stored records")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the units and exit")
    args = parser.parse_args(argv)

    from .runner import make_client, run_units

    try:
        names = units_of([c.strip() for c in args.chapters.split(",") if c.strip()])
        seeds_arg = parse_seeds(args.seeds) if args.seeds else None
    except ValueError as err:
        parser.error(str(err))
    if args.list:
        for n in names:
            print(n)
        return 0
    jobqueue = None
    if args.slurm or args.pbs:
        jobqueue = dict(cores=args.cores, memory=args.memory, walltime=args.walltime)
        if args.queue:
            jobqueue["queue"] = args.queue
        if args.account:
            jobqueue["account"] = args.account
    client = make_client(workers=args.workers, scheduler=args.scheduler,
                         slurm=jobqueue if args.slurm else None,
                         pbs=jobqueue if args.pbs else None, gpu=args.gpu, jobs=args.jobs)
    try:
        for name, params, settings, seeds in plan(names, args.profile, seeds_arg):
            label = name + "".join(f" {k}={v}" for k, v in params.items())
            start = time.perf_counter()
            records = run_units(name, settings, seeds, store=args.store, client=client,
                                progress=not args.no_progress, gpu=args.gpu,
                                recompute=args.recompute)
            n_new = sum(r["_run"]["source"] == "computed" for r in records)
            print(f"[run] {label}: {len(records)} records ({n_new} computed, "
                  f"{len(records) - n_new} from the store) in "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
            if args.record:
                from .recorded import save_recorded

                paths = save_recorded(name, settings, records)
                print(f"[run] {label}: recorded {len(paths)} records under "
                      f"{paths[0].parent if paths else '-'}")
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
