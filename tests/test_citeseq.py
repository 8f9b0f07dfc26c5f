"""Tests of the CITE-seq loader, layout checks, preprocessing and simulator.

No test touches the network: the loader runs on the committed fixture
(``tests/data/cite_fixture.h5ad``, written by ``scripts/make_citeseq_fixture.py``) and the
download path runs with a local "downloader" that copies a file.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import shutil
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from propalign_lite.datasets import citeseq
from propalign_lite.datasets.citeseq import (
    BMMC_CELL_TYPES,
    CiteSeqData,
    fetch_cite_seq,
    load_cite_seq,
    load_cite_seq_simulated,
    preprocess_cite_seq,
    read_cite_seq,
    simulate_cite_seq,
    validate_cite_seq_layout,
)

FIXTURE = pathlib.Path(__file__).parent / "data" / "cite_fixture.h5ad"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Never look at the user's real cache or path settings."""
    monkeypatch.delenv("PROPALIGN_CITESEQ_PATH", raising=False)
    monkeypatch.setenv("PROPALIGN_CACHE_DIR", str(tmp_path / "cache"))


def _read_fixture() -> anndata.AnnData:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        return anndata.read_h5ad(FIXTURE)


@pytest.fixture(scope="module")
def fixture_data() -> CiteSeqData:
    return load_cite_seq(FIXTURE, n_pcs=20)


@pytest.fixture(scope="module")
def sim():
    """A mid-sized simulation with all 134 proteins and the 12 real batches."""
    return simulate_cite_seq(2000, n_cell_types=6, n_genes=800, n_proteins=134,
                             random_state=3)


def _foscttm(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook FOSCTTM for paired rows: the fraction of samples closer than the true match,
    averaged over both directions (0 = perfect, 0.5 = chance)."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    true = np.diag(d)
    n = len(a)
    rows = (d < true[:, None]).sum(1) / (n - 1)
    cols = (d < true[None, :]).sum(0) / (n - 1)
    return float(0.5 * (rows.mean() + cols.mean()))


# ---------------------------------------------------------------------------------------
# Loader on the fixture
# ---------------------------------------------------------------------------------------
def test_fixture_promises():
    adata = _read_fixture()
    assert FIXTURE.stat().st_size < 500_000
    assert 300 <= adata.n_obs <= 600
    ft = adata.var["feature_types"].astype(str)
    assert (ft == "GEX").sum() >= 250 and 20 <= (ft == "ADT").sum() <= 30
    assert 4 <= adata.obs["cell_type"].nunique() <= 6
    assert set(adata.obs["cell_type"].unique()) <= set(BMMC_CELL_TYPES)
    assert adata.obs["batch"].nunique() == 3 and adata.obs["Site"].nunique() == 2
    assert set(adata.obs["is_train"].astype(str)) == {"train", "test", "iid_holdout"}
    assert adata.obsm["ADT_isotype_controls"].shape == (adata.n_obs, 6)


def test_load_by_path(fixture_data):
    adata = _read_fixture()
    data = fixture_data
    n_adt = int((adata.var["feature_types"] == "ADT").sum())
    assert isinstance(data, CiteSeqData) and len(data) == adata.n_obs
    assert data.gex_pca.shape == (adata.n_obs, 20) and data.gex_pca.dtype == np.float32
    assert data.adt.shape == (adata.n_obs, n_adt) and data.adt.dtype == np.float32
    assert list(data.adt_names) == list(adata.var_names[adata.var["feature_types"] == "ADT"])
    assert list(data.obs_names) == list(adata.obs_names)
    assert data.cell_types == tuple(sorted(data.cell_types))
    assert np.array_equal(data.cell_type_codes,
                          adata.obs["cell_type"].cat.codes.to_numpy())
    # proteins are X's ADT columns as stored
    adt_x = adata.X[:, np.flatnonzero(adata.var["feature_types"] == "ADT")].toarray()
    np.testing.assert_array_equal(data.adt, adt_x)


def test_load_by_env_var(monkeypatch, fixture_data):
    monkeypatch.setenv("PROPALIGN_CITESEQ_PATH", str(FIXTURE))
    data = load_cite_seq(n_pcs=20)
    np.testing.assert_allclose(data.gex_pca, fixture_data.gex_pca, rtol=1e-4, atol=1e-4)
    assert fetch_cite_seq() == FIXTURE


def test_split_mapping(fixture_data):
    is_train = _read_fixture().obs["is_train"].astype(str).to_numpy()
    expected = np.array([{"train": "train", "test": "val", "iid_holdout": "test"}[v]
                         for v in is_train])
    np.testing.assert_array_equal(fixture_data.split, expected)
    for name in ("train", "val", "test"):
        part = fixture_data.split_view(name)
        assert len(part) == (expected == name).sum() and set(part.split) == {name}
        assert part.cell_types == fixture_data.cell_types
    # the held-out site is the validation split
    assert set(fixture_data.split_view("val").batch) == {"s4d1"}
    with pytest.raises(ValueError, match="name must be one of"):
        fixture_data.split_view("validation")
    with pytest.raises(ValueError, match="boolean mask must have shape"):
        fixture_data.subset(np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="indices must lie"):
        fixture_data.subset(np.array([10 ** 6]))
    assert len(fixture_data.subset(np.arange(5))) == 5


def test_gz_path_is_decompressed_atomically(tmp_path):
    gz = tmp_path / "cite.h5ad.gz"
    with open(FIXTURE, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    cache = tmp_path / "cache"
    data = load_cite_seq(gz, n_pcs=5, cache_dir=cache)
    assert len(data) > 0
    target = cache / "cite.h5ad"
    assert target.is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["cite.h5ad"]    # no temp leftovers
    mtime = target.stat().st_mtime_ns
    assert fetch_cite_seq(gz, cache_dir=cache) == target            # reused, not redone
    assert target.stat().st_mtime_ns == mtime


def test_truncated_gz_leaves_no_file(tmp_path):
    gz = tmp_path / "broken.h5ad.gz"
    payload = gzip.compress(FIXTURE.read_bytes())
    gz.write_bytes(payload[: len(payload) // 2])
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="not a valid"):
        fetch_cite_seq(gz, cache_dir=cache)
    assert not any(cache.iterdir())


def test_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_cite_seq()
    msg = str(err.value)
    for hint in ("path=", "PROPALIGN_CITESEQ_PATH", "download=True", "cache",
                 "simulate_cite_seq"):
        assert hint in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cite_seq(tmp_path / "nope.h5ad")


def test_env_var_to_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PROPALIGN_CITESEQ_PATH", str(tmp_path / "gone.h5ad"))
    with pytest.raises(FileNotFoundError, match="PROPALIGN_CITESEQ_PATH"):
        fetch_cite_seq()


def test_cached_file_is_found(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(FIXTURE, cache / citeseq.CITESEQ_H5AD_NAME)
    assert fetch_cite_seq() == cache / citeseq.CITESEQ_H5AD_NAME
    # a file with the official name must have the real file's size
    with pytest.raises(ValueError, match="size of the GSE194122"):
        read_cite_seq()
    assert read_cite_seq(full_size=False).n_obs == _read_fixture().n_obs


def _copy_downloader(source: pathlib.Path):
    def download(url, output_file, pooch_obj):  # pooch's downloader signature
        shutil.copy(source, output_file)
    return download


def test_hash_mismatch_leaves_no_file(tmp_path):
    gz = tmp_path / "payload.h5ad.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    cache = tmp_path / "dl"
    with pytest.raises(ValueError, match="expected checksum") as err:
        citeseq._retrieve("https://example.invalid/payload.h5ad.gz",
                          known_hash="sha256:" + "0" * 64, cache_dir=cache,
                          fname="payload.h5ad.gz", downloader=_copy_downloader(gz))
    assert "nothing was written" in str(err.value)
    assert list(cache.iterdir()) == []


def test_download_with_matching_hash(tmp_path):
    gz = tmp_path / "payload.h5ad.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    sha = hashlib.sha256(gz.read_bytes()).hexdigest()
    cache = tmp_path / "dl"
    out = citeseq._retrieve("https://example.invalid/payload.h5ad.gz",
                            known_hash=f"sha256:{sha}", cache_dir=cache,
                            fname="payload.h5ad.gz", downloader=_copy_downloader(gz))
    assert out == cache / "payload.h5ad"
    assert sorted(p.name for p in cache.iterdir()) == ["payload.h5ad", "payload.h5ad.gz"]
    assert out.read_bytes() == FIXTURE.read_bytes()


def test_download_only_when_asked(monkeypatch, tmp_path):
    calls = []

    def fake_retrieve(url, *, known_hash, cache_dir, progressbar):
        calls.append((url, known_hash, cache_dir))
        return FIXTURE

    monkeypatch.setattr(citeseq.geo, "_retrieve", fake_retrieve)  # where fetch_cite_seq looks
    with pytest.raises(FileNotFoundError):
        fetch_cite_seq()
    assert calls == []
    assert fetch_cite_seq(download=True, progressbar=False) == FIXTURE
    assert calls == [(citeseq.CITESEQ_URL, citeseq.CITESEQ_SHA256, tmp_path / "cache")]
    assert citeseq.CITESEQ_SHA256.endswith(
        "b9b50fade9349719cba23c97c6515d3501a32ee3735fe95fe51221d2e8a5f361")


# ---------------------------------------------------------------------------------------
# Layout validation
# ---------------------------------------------------------------------------------------
def _drop_var(a):
    del a.var["feature_types"]


def _all_gex(a):
    a.var["feature_types"] = "GEX"


def _all_adt(a):
    a.var["feature_types"] = "ADT"


def _odd_feature(a):
    ft = a.var["feature_types"].astype(str).to_numpy().copy()
    ft[0] = "Peaks"
    a.var["feature_types"] = ft


def _drop_obs(key):
    def mutate(a):
        del a.obs[key]
    return mutate


def _odd_is_train(a):
    v = a.obs["is_train"].astype(str).to_numpy().copy()
    v[:3] = "validation"
    a.obs["is_train"] = v


def _missing_cell_type(a):
    v = a.obs["cell_type"].astype(object).to_numpy().copy()
    v[0] = None
    a.obs["cell_type"] = v


def _drop_counts(a):
    del a.layers["counts"]


def _nan_in_x(a):
    a.X = a.X.copy()
    a.X.data[0] = np.nan


@pytest.mark.parametrize("mutate, message", [
    (_drop_var, r'var\["feature_types"\] is missing'),
    (_all_gex, "no ADT columns"),
    (_all_adt, "no GEX columns"),
    (_odd_feature, r"unknown values \['Peaks'\]"),
    (_drop_obs("cell_type"), r'obs\["cell_type"\] is missing'),
    (_drop_obs("is_train"), r'obs\["is_train"\] is missing'),
    (_drop_obs("batch"), r'obs\["batch"\] is missing'),
    (_odd_is_train, r"unknown values \['validation'\]"),
    (_missing_cell_type, r'obs\["cell_type"\] has 1 missing'),
    (_drop_counts, r'layers\["counts"\]'),
    (_nan_in_x, "NaN"),
])
def test_layout_errors(mutate, message, tmp_path):
    adata = _read_fixture()
    mutate(adata)
    with pytest.raises(ValueError, match=message):
        validate_cite_seq_layout(adata)
    # the loader reports the same problem for a file on disk
    path = tmp_path / "bad.h5ad"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        adata.write_h5ad(path)
    with pytest.raises(ValueError, match=message):
        load_cite_seq(path, n_pcs=5)


def test_layout_other_errors():
    with pytest.raises(ValueError, match="anndata.AnnData"):
        validate_cite_seq_layout(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="size of the GSE194122"):
        validate_cite_seq_layout(_read_fixture(), full_size=True)
    summary = validate_cite_seq_layout(_read_fixture())
    assert summary["n_adt"] == 24 and summary["n_gex"] == 260


# ---------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------
def test_preprocess_matches_scale_then_pca():
    adata = _read_fixture()
    gex = adata.X[:, np.flatnonzero(adata.var["feature_types"] == "GEX")].toarray()
    x = gex.astype(np.float64)
    sd = x.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    x = np.clip((x - x.mean(axis=0)) / sd, -10, 10)
    x -= x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    ref = x @ vt[:10].T
    for solver in ("covariance_eigh", "arpack", "randomized", "auto"):
        data = preprocess_cite_seq(adata, n_pcs=10, svd_solver=solver)
        got = data.gex_pca.astype(np.float64)
        # compare up to the sign of each component; the leading ones must agree closely
        # (the fixture's 5th and 6th eigenvalues are nearly equal, so the 5th component is
        # not identified: only its explained variance is compared below)
        np.testing.assert_allclose(np.abs(got[:, :4]), np.abs(ref[:, :4]), atol=2e-2 *
                                   np.abs(ref[:, 0]).max())
        evr = data.info["explained_variance_ratio"]
        np.testing.assert_allclose(evr[:5], (s[:5] ** 2 / (s ** 2).sum()), rtol=2e-2)
    # deterministic signs: the largest |loading| of each component is positive
    a = preprocess_cite_seq(adata, n_pcs=10, svd_solver="covariance_eigh").gex_pca
    b = preprocess_cite_seq(adata, n_pcs=10, svd_solver="arpack").gex_pca
    np.testing.assert_allclose(a, b, atol=1e-3 * np.abs(a).max())


def test_preprocess_argument_errors():
    adata = _read_fixture()
    limit = min(adata.n_obs, 260)
    with pytest.raises(ValueError, match="exceeds min"):
        preprocess_cite_seq(adata, n_pcs=limit + 1)
    with pytest.raises(ValueError, match="arpack"):
        preprocess_cite_seq(adata, n_pcs=limit, svd_solver="arpack")
    with pytest.raises(ValueError, match="svd_solver must be one of"):
        preprocess_cite_seq(adata, n_pcs=5, svd_solver="full")
    with pytest.raises(ValueError, match="n_pcs must be a positive int"):
        preprocess_cite_seq(adata, n_pcs=0)
    with pytest.raises(ValueError, match="max_value"):
        preprocess_cite_seq(adata, n_pcs=5, max_value=-1)


def test_preprocess_dense_x_same_as_sparse():
    adata = _read_fixture()
    sparse_result = preprocess_cite_seq(adata, n_pcs=8)
    adata.X = adata.X.toarray()
    dense_result = preprocess_cite_seq(adata, n_pcs=8, block_rows=37)
    np.testing.assert_allclose(dense_result.gex_pca, sparse_result.gex_pca, atol=1e-3)
    np.testing.assert_array_equal(dense_result.adt, sparse_result.adt)


# ---------------------------------------------------------------------------------------
# Simulator
# ---------------------------------------------------------------------------------------
def test_simulator_layout_matches_real_layout(sim):
    fixture = _read_fixture()
    validate_cite_seq_layout(sim)
    assert set(sim.obs.columns) == set(fixture.obs.columns)
    assert set(sim.var.columns) == set(fixture.var.columns) == {"feature_types", "gene_id"}
    assert set(sim.layers.keys()) == {"counts"} and set(sim.obsm.keys()) == {
        "ADT_isotype_controls"}
    ft = sim.var["feature_types"].astype(str).to_numpy()
    n_gex = int((ft == "GEX").sum())
    assert (ft[:n_gex] == "GEX").all() and (ft[n_gex:] == "ADT").all()   # GEX first
    for key in ("cell_type", "batch", "is_train"):
        assert isinstance(sim.obs[key].dtype, pd.CategoricalDtype)
    cats = list(sim.obs["cell_type"].cat.categories)
    assert cats == sorted(cats) and set(cats) <= set(BMMC_CELL_TYPES)
    assert list(sim.obs["batch"].cat.categories) == list(citeseq.BMMC_BATCHES)
    assert sim.obs_names.is_unique
    assert sim.obs_names.str.fullmatch(r"[ACGT]{16}-1-s\dd\d").all()
    assert sp.issparse(sim.X) and sim.X.format == "csr"
    assert sim.X.dtype == np.float32


def test_simulator_counts_and_normalisation(sim):
    ft = sim.var["feature_types"].astype(str).to_numpy()
    gex, adt = ft == "GEX", ft == "ADT"
    counts = sim.layers["counts"]
    assert counts.format == "csr" and counts.dtype == np.float32
    assert np.array_equal(counts.data, np.round(counts.data)) and counts.data.min() > 0
    c_gex = counts[:, np.flatnonzero(gex)].toarray()
    c_adt = counts[:, np.flatnonzero(adt)].toarray().astype(np.float64)
    x = sim.X.toarray()
    sf = sim.obs["GEX_size_factors"].to_numpy()
    np.testing.assert_allclose(x[:, gex], c_gex / sf[:, None], rtol=1e-5)
    np.testing.assert_allclose(sf.mean(), 1.0, rtol=1e-4)
    clr = np.log1p(c_adt / np.exp(np.log1p(c_adt).mean(axis=1, keepdims=True)))
    np.testing.assert_allclose(x[:, adt], clr, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(sim.obs["GEX_n_genes_by_counts"], (c_gex > 0).sum(1))
    np.testing.assert_allclose(sim.obs["ADT_total_counts"], c_adt.sum(1))
    np.testing.assert_array_equal(sim.obs["ADT_n_antibodies_by_counts"], (c_adt > 0).sum(1))


def test_simulator_realism_targets(sim):
    ft = sim.var["feature_types"].astype(str).to_numpy()
    c = sim.layers["counts"]
    c_gex = c[:, np.flatnonzero(ft == "GEX")]
    zero_rna = 1 - c_gex.nnz / np.prod(c_gex.shape)
    # the real file: ~1e8 non-zeros in 90,261 x 13,953 GEX counts, i.e. ~92 % zeros
    assert 0.75 <= zero_rna <= 0.93
    detected = sim.obs["ADT_n_antibodies_by_counts"].to_numpy()
    assert np.quantile(detected, 0.05) >= 80                    # of 134 proteins
    totals = sim.obs["ADT_total_counts"].to_numpy()
    assert ((totals >= 1100) & (totals <= 24000)).mean() >= 0.99
    assert 2000 <= np.median(totals) <= 6000
    iso = sim.obs["ADT_iso_count"].to_numpy()
    assert ((iso >= 1) & (iso <= 100)).mean() >= 0.99
    iso_norm = sim.obsm["ADT_isotype_controls"]
    assert list(iso_norm.columns) == list(citeseq.ISOTYPE_NAMES)
    assert np.isfinite(iso_norm.to_numpy()).all() and (iso_norm.to_numpy() >= 0).all()


def test_simulator_splits_and_links(sim):
    obs = sim.obs
    test_batches = set(obs.loc[obs["is_train"] == "test", "batch"].astype(str))
    assert test_batches == {"s4d1", "s4d8", "s4d9"}                # the held-out site
    assert (obs.loc[obs["batch"].astype(str).str.startswith("s4"), "is_train"]
            == "test").all()
    holdout = obs[obs["is_train"] == "iid_holdout"]
    assert len(holdout) > 0 and set(holdout["cell_type"]) == set(obs["cell_type"])
    # proteins linked to a gene of the same name (for scGLUE-style guidance graphs)
    ft = sim.var["feature_types"].astype(str).to_numpy()
    genes = set(sim.var_names[ft == "GEX"])
    proteins = list(sim.var_names[ft == "ADT"])
    assert sum(p in genes for p in proteins) == 67                # round(0.5 * 134)
    assert len(set(proteins)) == len(proteins)


def test_simulator_determinism_and_presets():
    kw = dict(n_cell_types=6, n_genes=100, n_proteins=10, batches=3)
    a = simulate_cite_seq(150, random_state=5, **kw)
    b = simulate_cite_seq(150, random_state=5, **kw)
    c = simulate_cite_seq(150, random_state=6, **kw)
    assert (a.X != b.X).nnz == 0 and list(a.obs_names) == list(b.obs_names)
    assert (a.X != c.X).nnz > 0
    full = simulate_cite_seq(300, n_cell_types=45, n_genes=60, n_proteins=8, random_state=0)
    assert tuple(full.obs["cell_type"].cat.categories) == BMMC_CELL_TYPES
    assert full.obs["cell_type"].value_counts().min() >= 2
    assert full.obs["cell_type"].value_counts().idxmax() == "CD14+ Mono"
    custom = simulate_cite_seq(40, cell_types=["alpha", "beta"], n_genes=30, n_proteins=5,
                               batches=["s1d1", "s2d1"], random_state=0)
    assert set(custom.obs["cell_type"]) == {"alpha", "beta"}
    assert set(custom.obs.loc[custom.obs["is_train"] == "test", "batch"]) == {"s2d1"}
    adata, z = simulate_cite_seq(60, n_genes=30, n_proteins=5, n_cell_types=3, n_latent=4,
                                 random_state=1, return_latent=True)
    assert z.shape == (60, 4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_cells=10, n_cell_types=6), "n_cells must be at least 12"),
    (dict(n_cell_types=46), "n_cell_types must be between 2 and 45"),
    (dict(cell_types=["a", "a"]), "duplicate"),
    (dict(batches=["site1"]), "named like 's1d2'"),
    (dict(batches=0), "batches must be between 1 and 12"),
    (dict(within_sd=-0.1), "within_sd must be a finite number >= 0"),
    (dict(gene_density=1.5), "gene_density must lie in"),
    (dict(n_genes=2.5), "n_genes must be an int"),
    (dict(median_adt_counts=0), "median_adt_counts must be a positive"),
    (dict(random_state="seed"), "random_state"),
    (dict(n_genes=5, n_proteins=20), "linked proteins need"),
])
def test_simulator_argument_errors(kwargs, message):
    kwargs = {"n_cells": 100, "n_genes": 50, "n_proteins": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_cite_seq(**kwargs)


def _within_type_foscttm(data: CiteSeqData, seed: int = 0) -> float:
    """Fit a ridge map RNA-PCs -> ADT on half of each cell type's cells and score the other
    half by FOSCTTM between predicted and measured proteins; average over types."""
    rng = np.random.default_rng(seed)
    scores = []
    for t in np.unique(data.cell_type):
        idx = rng.permutation(np.flatnonzero(data.cell_type == t))
        half = idx.size // 2
        fit, held = idx[:half], idx[half:]
        x, y = data.gex_pca[fit].astype(np.float64), data.adt[fit].astype(np.float64)
        xm, ym = x.mean(0), y.mean(0)
        beta = np.linalg.solve((x - xm).T @ (x - xm) + 1.0 * np.eye(x.shape[1]),
                               (x - xm).T @ (y - ym))
        pred = (data.gex_pca[held] - xm) @ beta + ym
        scores.append(_foscttm(pred, data.adt[held].astype(np.float64)))
    return float(np.mean(scores))


def test_within_type_signal():
    kw = dict(n_cell_types=4, n_genes=400, n_proteins=30, batches=3, random_state=11)
    easy = load_cite_seq_simulated(1200, n_pcs=15, within_sd=0.8, **kw)
    none = load_cite_seq_simulated(1200, n_pcs=15, within_sd=0.0, **kw)
    assert _within_type_foscttm(easy) < 0.3          # paired structure is recoverable
    assert _within_type_foscttm(none) > 0.42         # ... and absent without within-type spread


def test_simulate_then_preprocess_equals_roundtrip(tmp_path):
    adata = simulate_cite_seq(300, n_cell_types=4, n_genes=120, n_proteins=12, batches=3,
                              random_state=2)
    direct = preprocess_cite_seq(adata, n_pcs=6)
    path = tmp_path / "sim.h5ad"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        adata.write_h5ad(path, compression="gzip")
    loaded = load_cite_seq(path, n_pcs=6)
    np.testing.assert_allclose(loaded.gex_pca, direct.gex_pca, atol=1e-4)
    np.testing.assert_array_equal(loaded.adt, direct.adt)
    np.testing.assert_array_equal(loaded.split, direct.split)
    assert os.path.exists(path)
