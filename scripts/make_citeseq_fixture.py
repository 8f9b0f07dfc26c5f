"""Write the small CITE-seq test fixture ``tests/data/cite_fixture.h5ad``.

The fixture is a seeded draw of :func:`propalign_lite.datasets.citeseq.simulate_cite_seq`
in the layout of the GSE194122 BMMC CITE-seq file: 480 cells of 5 real BMMC cell types,
3 batches over 2 sites (``s1d1``, ``s1d2`` for training and ``s4d1`` held out), all three
``is_train`` values, 260 genes, 24 named proteins and 6 isotype controls, stored with gzip
compression inside the h5ad (well under 0.5 MB).

The file is committed because random streams are not promised to be identical across NumPy
versions: tests read the bytes, they do not regenerate them. Rebuild it with::

    python scripts/make_citeseq_fixture.py            # writes tests/data/cite_fixture.h5ad
    python scripts/make_citeseq_fixture.py --output /tmp/x.h5ad --seed 7
"""
from __future__ import annotations

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "tests" / "data" / "cite_fixture.h5ad"
MAX_BYTES = 500_000

FIXTURE_SETTINGS = dict(n_cells=480, n_cell_types=5, n_genes=260, n_proteins=24, batches=3)


def make_fixture(output: pathlib.Path, *, seed: int = 20240) -> pathlib.Path:
    """Simulate the fixture, check it against the fixture's promises, and write it."""
    try:
        from propalign_lite.datasets.citeseq import simulate_cite_seq, validate_cite_seq_layout
    except ImportError:  # running from a checkout without installing the package
        sys.path.insert(0, str(REPO))
        from propalign_lite.datasets.citeseq import simulate_cite_seq, validate_cite_seq_layout

    adata = simulate_cite_seq(**FIXTURE_SETTINGS, random_state=seed)
    summary = validate_cite_seq_layout(adata)
    if set(summary["is_train"]) != {"train", "test", "iid_holdout"}:
        raise RuntimeError(f"fixture lacks an is_train value: {summary['is_train']}")
    if adata.obs["Site"].nunique() != 2 or adata.obs["batch"].nunique() != 3:
        raise RuntimeError("fixture must have 3 batches over 2 sites")
    adata.uns["dataset_id"] = "propalign_cite_fixture"
    output.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(output, compression="gzip")
    size = output.stat().st_size
    if size >= MAX_BYTES:
        raise RuntimeError(f"{output} is {size:,} bytes, over the {MAX_BYTES:,}-byte budget")
    print(f"wrote {output} ({size:,} bytes): {adata.n_obs} cells x {summary['n_gex']} GEX "
          f"+ {summary['n_adt']} ADT; cell types {sorted(adata.obs['cell_type'].unique())}; "
          f"is_train {summary['is_train']}")
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT,
                        help=f"where to write the fixture (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--seed", type=int, default=20240, help="random seed (default 20240)")
    args = parser.parse_args(argv)
    make_fixture(args.output, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
