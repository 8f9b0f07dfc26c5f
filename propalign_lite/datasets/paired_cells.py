r"""Two real data sets of *paired* single cells, for scoring alignments against the truth.

Both come as a :class:`mudata.MuData` whose two modalities hold the same cells in the same
order (row ``i`` of one is row ``i`` of the other), each modality with the cell labels in its
own ``.obs`` so that :func:`propalign_lite.align` can group by them.

* :func:`load_bmmc_cite` -- 600 bone-marrow cells of the paper's own CITE-seq data (GEO
  GSE194122, the NeurIPS 2021 competition), as subset by Open Problems: ``"rna"`` (1,000
  genes: log-normalised ``X``, counts in ``layers["counts"]``) and ``"adt"`` (134 antibodies:
  per-cell CLR in ``X``, counts in ``layers["counts"]``); ``obs["cell_type"]`` (41 types),
  ``obs["batch"]``.
* :func:`load_mop_snare` -- 10,309 mouse motor-cortex nuclei measured by SNARE-seq (batch 1 of
  scMoMaT's ``MOp_5batches``): ``"rna"`` (1,677 genes) and ``"atac"`` (25,734 regions), counts;
  ``obs["cell_type"]`` (23 types), ``obs["cell_type_coarse"]`` (15), ``obs["batch"]``
  (12 samples).

Files are found or downloaded through :func:`~propalign_lite.datasets._fetch.fetch_files`
(``data_dir`` > ``$PROPALIGN_DATA_DIR`` > cache > ``download=True``), always hash-checked.
With ``preprocess=True`` (default) the loaders add ``obsm["X_pca"]`` to RNA and, for MOp,
``obsm["X_lsi"]`` to ATAC (:mod:`propalign_lite.datasets.cells`).

Example
-------
>>> from propalign_lite.datasets import load_bmmc_cite
>>> mdata = load_bmmc_cite(data_dir="../shared/data")       # doctest: +SKIP
>>> mdata["rna"].obsm["X_pca"].shape, mdata["adt"].shape    # doctest: +SKIP
((600, 50), (600, 134))

References
----------
Luecken et al. (2021), *A sandbox for prediction and integration of DNA, RNA, and proteins in
single cells*, NeurIPS Datasets and Benchmarks; Chen, Lake and Zhang (2019), *High-throughput
sequencing of the transcriptome and chromatin accessibility in the same cell* (SNARE-seq);
Zhang et al. (2023), *scMoMaT* (the MOp files).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._fetch import RemoteFile, fetch_files

__all__ = ["PAIRED_SETS", "load_bmmc_cite", "load_mop_snare"]

_BMMC_BASE = ("https://raw.githubusercontent.com/openproblems-bio/neurips2021_multimodal_viash/"
              "75281c039ab98b459edbf52058a18597e710ed4d/resources_test/common/"
              "openproblems_bmmc_cite_starter/")
_MOP_BASE = ("https://raw.githubusercontent.com/PeterZZQ/scMoMaT/"
             "dbd954de4b1be415cdea543baf2856df0fda6992/data/real/MOp_5batches/")


def _files(base: str, table: dict) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, sha, base + name) for name, sha in table.items())


#: The published files of each set: name -> (RemoteFile, ...), URLs pinned to a commit.
PAIRED_SETS = {
    "bmmc_cite_subset": _files(_BMMC_BASE, {
        "openproblems_bmmc_cite_starter.output_rna.h5ad":
            "e111b6ad48f7236b9291dab56d0aa2ebcc1a5f8d1d402fa232d9bfe3d1af6f61",
        "openproblems_bmmc_cite_starter.output_mod2.h5ad":
            "ad4df05778c27c930bdb9764452af0fa381cbd9b3fb8de669420148f20fb1fed"}),
    "mop_snare": _files(_MOP_BASE, {
        "GxC1.npz": "44e48e6243954feafe0541f33b6b116093ca1ed4a25fc2f3ca146d89d1ab1bab",
        "RxC1.npz": "59d6f46dc4e908194bfc859b7773bc666d96ab74d9386b0a8f92d6b29dfcacf7",
        "meta_c1.csv": "05ea13be8042f66ee51516ccf9fd28ca43972498a69748a9e89b5b1ca280b037",
        "genes.txt": "9d722d1d281f5ff152dc8a1fb257fec883b8aa28ea3f4f79783d0595dd8b4833",
        "regions.txt": "d77319b1ad8a51af2c97ffa5d23d5458e95356b1926e9ae4e0ab821cc7e492a3"}),
}


def _mudata(mods: dict):
    import mudata

    with warnings.catch_warnings():     # mudata 0.3 announces a change of its defaults
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        return mudata.MuData(mods)


def _check_paired(a, b, what: str) -> None:
    if a.n_obs != b.n_obs or not np.array_equal(a.obs_names, b.obs_names):
        raise ValueError(f"{what}: the two modalities do not hold the same cells in the same "
                         "order; the files are not the published ones")


def load_bmmc_cite(data_dir=None, *, n_pcs: int = 50, preprocess: bool = True,
                   download: bool = False, cache_dir=None, random_state=0):
    """The 600-cell BMMC CITE-seq subset as a MuData with modalities ``"rna"`` and ``"adt"``.

    ``preprocess=True`` adds ``rna.obsm["X_pca"]`` (``n_pcs`` components of the scaled,
    clipped log-normalised expression, :func:`~propalign_lite.datasets.cells.rna_pca`); the
    protein ``X`` is the file's per-cell CLR. See the module docstring for the rest.
    """
    import anndata

    from .cells import rna_pca

    paths = fetch_files("bmmc_cite_subset", PAIRED_SETS["bmmc_cite_subset"], data_dir=data_dir,
                        cache_dir=cache_dir, download=download)
    with warnings.catch_warnings():     # the files predate anndata's encoding metadata
        warnings.filterwarnings("ignore", message=".*without encoding metadata")
        rna, adt = (anndata.read_h5ad(paths[f.name]) for f in PAIRED_SETS["bmmc_cite_subset"])
    _check_paired(rna, adt, "bmmc_cite_subset")
    for a in (rna, adt):
        a.obs["cell_type"] = a.obs["cell_type"].astype(str).astype("category")
        a.obs["batch"] = a.obs["batch"].astype(str).astype("category")
    if preprocess:
        rna.obsm["X_pca"], ratio = rna_pca(rna.X, n_pcs=n_pcs, random_state=random_state)
        rna.uns["pca"] = {"variance_ratio": ratio, "note": "scaled (clip 10) log-normalised X"}
    return _mudata({"rna": rna, "adt": adt})


def load_mop_snare(data_dir=None, *, n_pcs: int = 50, n_lsi: int = 51, preprocess: bool = True,
                   download: bool = False, cache_dir=None, random_state=0):
    """The 10,309 SNARE-seq MOp nuclei as a MuData with modalities ``"rna"`` and ``"atac"``.

    ``X`` holds counts (float32, CSR). ``preprocess=True`` adds ``rna.obsm["X_pca"]``
    (log-normalised, scaled, ``n_pcs`` components) and ``atac.obsm["X_lsi"]`` (TF-IDF + LSI
    with ``n_lsi`` components, the first dropped when it tracks depth;
    :func:`~propalign_lite.datasets.cells.atac_lsi`), with ``atac.uns["lsi"]`` saying what
    was dropped.
    """
    import anndata

    from .cells import atac_lsi, rna_pca

    paths = fetch_files("mop_snare", PAIRED_SETS["mop_snare"], data_dir=data_dir,
                        cache_dir=cache_dir, download=download)
    meta = pd.read_csv(paths["meta_c1.csv"], index_col=0)
    obs = pd.DataFrame({"batch": meta["Batch"].astype(str), "barcode": meta["Barcode"].astype(str),
                        "cell_type": meta["Ident"].astype(str),
                        "cell_type_coarse": meta["cluster (remapped)"].astype(str)},
                       index=meta.index.astype(str))
    for col in ("batch", "cell_type", "cell_type_coarse"):
        obs[col] = obs[col].astype("category")
    mods = {}
    for mod, fname, names in (("rna", "GxC1.npz", "genes.txt"), ("atac", "RxC1.npz", "regions.txt")):
        x = sp.load_npz(paths[fname]).T.tocsr().astype(np.float32)   # features x cells -> cells
        var = pd.read_csv(paths[names], header=None).iloc[:, 0].astype(str).to_numpy()
        if x.shape != (len(obs), len(var)):
            raise ValueError(f"mop_snare: {fname} has shape {x.shape[::-1]} (features x "
                             f"cells) but meta_c1.csv and {names} give {len(var)} x {len(obs)}")
        mods[mod] = anndata.AnnData(x, obs=obs.copy(), var=pd.DataFrame(index=var))
    if preprocess:
        mods["rna"].obsm["X_pca"], ratio = rna_pca(mods["rna"].X, n_pcs=n_pcs, counts=True,
                                                   random_state=random_state)
        mods["rna"].uns["pca"] = {"variance_ratio": ratio,
                                  "note": "log-normalised (1e4), scaled (clip 10)"}
        mods["atac"].obsm["X_lsi"], info = atac_lsi(mods["atac"].X, n_components=n_lsi,
                                                    random_state=random_state)
        mods["atac"].uns["lsi"] = info
    return _mudata(mods)
