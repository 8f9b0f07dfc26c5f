"""Real paired cells: the hash-checked fetch (datasets/_fetch.py), the loaders
(datasets/paired_cells.py), the preprocessing (datasets/cells.py) and the realcells units."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from propalign_lite.datasets import (PAIRED_SETS, RemoteFile, atac_lsi, fetch_files,
                                     load_bmmc_cite, load_mop_snare, log_normalize, protein_clr,
                                     rna_pca, tfidf)
from propalign_lite.datasets._fetch import ENV_DATA_DIR


def _real(name):
    """The local folder of a real set (``$PROPALIGN_DATA_DIR``, set by conftest to the project's
    ../shared/data), or skip: outside this project's machines the files are not at hand."""
    import os
    import pathlib

    root = os.environ.get(ENV_DATA_DIR)
    if not root or not (pathlib.Path(root) / name).is_dir():
        pytest.skip(f"real data set {name} not available locally")
    return pathlib.Path(root) / name


# ------------------------------------------------------------------------------ fetch
def _fake_set(tmp_path, content=b"hello cells\n"):
    sha = hashlib.sha256(content).hexdigest()
    return [RemoteFile("a.txt", sha, "https://example.invalid/pinned/a.txt")], content


def test_fetch_finds_a_local_folder_or_its_subfolder_and_checks_the_hash(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    files, content = _fake_set(tmp_path)
    (tmp_path / "myset").mkdir()
    (tmp_path / "myset" / "a.txt").write_bytes(content)
    assert fetch_files("myset", files, data_dir=tmp_path)["a.txt"] == tmp_path / "myset" / "a.txt"
    assert fetch_files("myset", files, data_dir=tmp_path / "myset")["a.txt"].read_bytes() == content
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    assert fetch_files("myset", files, cache_dir=tmp_path / "cache")["a.txt"].is_file()
    (tmp_path / "myset" / "a.txt").write_bytes(b"another version")
    with pytest.raises(ValueError, match="does not have the published SHA-256 of a.txt"):
        fetch_files("myset", files, data_dir=tmp_path)


def test_fetch_missing_file_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    files, _ = _fake_set(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        fetch_files("myset", files, data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "c")
    msg = str(err.value)
    assert "a.txt of the data set 'myset' was not found" in msg
    assert str(tmp_path / "c" / "myset" / "a.txt") in msg
    assert "PROPALIGN_DATA_DIR" in msg and "download=True" in msg
    assert "https://example.invalid/pinned/a.txt" in msg


def test_download_is_hash_checked_and_leaves_nothing_when_wrong(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    files, content = _fake_set(tmp_path)
    served = {"body": b"corrupted"}

    def downloader(url, output_file, pooch_obj, check_only=False):
        with open(output_file, "wb") as f:
            f.write(served["body"])

    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="does not have the published SHA-256"):
        fetch_files("myset", files, cache_dir=cache, download=True, downloader=downloader)
    assert not any((cache / "myset").iterdir())            # no file, no staging folder
    served["body"] = content
    path = fetch_files("myset", files, cache_dir=cache, download=True,
                       downloader=downloader)["a.txt"]
    assert path == cache / "myset" / "a.txt" and path.read_bytes() == content
    assert sorted(p.name for p in (cache / "myset").iterdir()) == ["a.txt"]
    # now cached: found without download, hash-checked again
    assert fetch_files("myset", files, cache_dir=cache)["a.txt"] == path


def test_published_urls_are_pinned_to_a_commit():
    for name, files in PAIRED_SETS.items():
        for f in files:
            assert f.url.startswith("https://raw.githubusercontent.com/") and f.url.endswith(f.name)
            commit = f.url.split("/")[5]
            assert len(commit) == 40 and int(commit, 16) >= 0, f.url
            assert len(f.sha256) == 64


# ------------------------------------------------------------------------------ preprocessing
def test_log_normalize_and_tfidf_by_hand():
    x = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]]))
    ln = log_normalize(x, target_sum=4).toarray()
    np.testing.assert_allclose(ln, np.log1p([[1, 3, 0], [0, 0, 4]]))
    idf = np.log1p(2 / (1 + np.array([1.0, 3.0, 2.0])))
    np.testing.assert_allclose(tfidf(x).toarray(), np.log1p(1e4 * x.toarray() / x.sum(1).A) * idf)


def test_protein_clr_by_hand_and_bad_counts():
    x = np.array([[0.0, 1.0, 10.0], [2.0, 2.0, 2.0]])
    g = np.exp(np.log1p(x).mean(1, keepdims=True))
    np.testing.assert_allclose(protein_clr(x), np.log1p(x / g), rtol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        protein_clr(-x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        protein_clr(np.array([[np.nan, 1.0], [1.0, 1.0]]))


def test_atac_lsi_drops_a_depth_component_only_when_it_tracks_depth():
    rng = np.random.default_rng(0)
    depth = rng.lognormal(0, 1.0, size=300)
    counts = sp.csr_matrix(rng.poisson(0.2 * depth[:, None] * np.ones((1, 400))).astype(float))
    z, info = atac_lsi(counts, n_components=6, random_state=0)
    assert info["dropped_first"] and abs(info["depth_corr"][0]) > 0.9 and z.shape == (300, 5)
    np.testing.assert_allclose(z.std(0), 1, rtol=1e-4)
    _, info = atac_lsi(counts, n_components=6, depth_threshold=1.0, random_state=0)
    assert not info["dropped_first"]
    with pytest.raises(ValueError, match="n_components=400"):
        atac_lsi(counts, n_components=400)


def test_rna_pca_matches_sklearn_on_scaled_data():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    x = sp.csr_matrix(rng.poisson(1.0, size=(80, 30)).astype(float))
    scores, ratio = rna_pca(x, n_pcs=5, counts=True, max_value=None)
    ln = log_normalize(x).toarray()
    scaled = (ln - ln.mean(0)) / ln.std(0, ddof=1)
    ref = PCA(5).fit(scaled)
    np.testing.assert_allclose(np.abs(scores), np.abs(ref.transform(scaled)), atol=1e-3)
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_, rtol=1e-4)
    with pytest.raises(ValueError, match="n_pcs=31 exceeds"):
        rna_pca(x, n_pcs=31)


# ------------------------------------------------------------------------------ the real sets
def test_bmmc_loader_pairing_layout_and_the_files_clr():
    _real("bmmc_cite_subset")
    md = load_bmmc_cite(n_pcs=10)
    rna, adt = md["rna"], md["adt"]
    assert rna.shape == (600, 1000) and adt.shape == (600, 134)
    assert np.array_equal(rna.obs_names, adt.obs_names)
    assert rna.obsm["X_pca"].shape == (600, 10) and rna.obs["cell_type"].nunique() == 41
    # the file's X is log(1 + x / g_i) with one g_i per cell (a per-cell CLR) ...
    x, X = adt.layers["counts"].toarray(), adt.X.toarray()
    g = np.where(x > 0, x / np.expm1(np.where(X > 0, X, 1.0)), np.nan)
    spread = np.nanstd(g, 1) / np.nanmean(g, 1)
    assert np.nanmax(spread) < 1e-5
    # ... whose g_i tracks the geometric mean of these 134 columns (not exactly: see cells.py)
    ours = np.exp(np.log1p(x).mean(1))
    assert np.corrcoef(np.log(np.nanmedian(g, 1)), np.log(ours))[0, 1] > 0.99


def test_mop_loader_pairing_and_lsi(tmp_path):
    folder = _real("mop_snare")
    md = load_mop_snare(n_pcs=10, n_lsi=11)
    rna, atac = md["rna"], md["atac"]
    assert rna.shape == (10309, 1677) and atac.shape == (10309, 25734)
    assert sp.issparse(rna.X) and rna.X.dtype == np.float32
    assert rna.obs["cell_type"].nunique() == 23 and rna.obs["batch"].nunique() == 12
    assert atac.uns["lsi"]["dropped_first"] and atac.obsm["X_lsi"].shape == (10309, 10)
    # a damaged copy is refused, not read
    bad = tmp_path / "mop_snare"
    shutil.copytree(folder, bad)
    (bad / "meta_c1.csv").chmod(0o644)
    with open(bad / "meta_c1.csv", "a") as f:
        f.write("extra,line\n")
    with pytest.raises(ValueError, match="published SHA-256 of meta_c1.csv"):
        load_mop_snare(tmp_path, preprocess=False)
