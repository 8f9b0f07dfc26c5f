"""The real GSE194122 CITE-seq file: layout checks, finding, downloading and reading."""
from __future__ import annotations

import gzip
import os
import pathlib
import shutil
import tempfile
import warnings
import zlib

import numpy as np
import scipy.sparse as sp

from ._layout import (CITESEQ_FULL_SHAPE, CITESEQ_GZ_NAME, CITESEQ_H5AD_NAME, CITESEQ_SHA256,
                      CITESEQ_URL, ENV_CACHE_DIR, ENV_CITESEQ_PATH, SPLIT_FROM_IS_TRAIN,
                      _DUPLICATE_NAMES_MSG)

__all__ = ["validate_cite_seq_layout", "fetch_cite_seq", "read_cite_seq"]


# ======================================================================================
# Layout validation
# ======================================================================================
def validate_cite_seq_layout(adata, *, require_counts: bool = True,
                             full_size: bool = False) -> dict:
    """Check that ``adata`` has the GSE194122 CITE-seq layout; raise ``ValueError`` if not.

    Checked: an :class:`anndata.AnnData` with ``X``; ``var["feature_types"]`` holding only
    ``"GEX"``/``"ADT"`` with at least one column of each; ``obs["cell_type"]``,
    ``obs["batch"]`` and ``obs["is_train"]`` present without missing values;
    ``is_train`` only ``train``/``test``/``iid_holdout``; ``layers["counts"]`` of the same
    shape (when ``require_counts``); finite values in ``X``; and, with ``full_size=True``,
    the size of the real file (90,261 cells, 13,953 GEX, 134 ADT, 45 cell types).

    Returns
    -------
    summary : dict
        ``n_cells``, ``n_gex``, ``n_adt``, ``n_cell_types`` and ``is_train`` value counts.
    """
    try:
        import anndata
        is_anndata = isinstance(adata, anndata.AnnData)
    except ImportError:  # pragma: no cover - anndata is a dependency
        is_anndata = False
    if not is_anndata:
        raise ValueError(f"adata must be an anndata.AnnData, got {type(adata).__name__}")
    problems = []
    if adata.X is None:
        problems.append("adata.X is missing (None)")
    if "feature_types" not in adata.var:
        problems.append('var["feature_types"] is missing (it must say "GEX" or "ADT" for '
                        "every column)")
        n_gex = n_adt = 0
    else:
        ft = adata.var["feature_types"].astype(str).to_numpy()
        unknown = sorted(set(ft) - {"GEX", "ADT"})
        if unknown:
            problems.append(f'var["feature_types"] has unknown values {unknown} '
                            '(expected only "GEX" and "ADT")')
        n_gex, n_adt = int((ft == "GEX").sum()), int((ft == "ADT").sum())
        if n_gex == 0:
            problems.append('no GEX columns (var["feature_types"] == "GEX")')
        if n_adt == 0:
            problems.append('no ADT columns (var["feature_types"] == "ADT")')
    for key in ("cell_type", "batch", "is_train"):
        if key not in adata.obs:
            problems.append(f'obs["{key}"] is missing')
        elif adata.obs[key].isna().any():
            problems.append(f'obs["{key}"] has {int(adata.obs[key].isna().sum())} missing '
                            "value(s)")
    split_counts = {}
    if "is_train" in adata.obs and not adata.obs["is_train"].isna().any():
        values = adata.obs["is_train"].astype(str)
        split_counts = values.value_counts().to_dict()
        unknown = sorted(set(split_counts) - set(SPLIT_FROM_IS_TRAIN))
        if unknown:
            problems.append(f'obs["is_train"] has unknown values {unknown} (expected '
                            f"{sorted(SPLIT_FROM_IS_TRAIN)})")
    if require_counts:
        if "counts" not in adata.layers:
            problems.append('layers["counts"] (raw counts) is missing')
        elif adata.layers["counts"].shape != adata.shape:
            problems.append(f'layers["counts"] has shape {adata.layers["counts"].shape}, '
                            f"X has {adata.shape}")
    if adata.X is not None and not problems:
        values = adata.X.data if sp.issparse(adata.X) else np.asarray(adata.X)
        if not np.isfinite(values).all():
            problems.append(f"X contains {int((~np.isfinite(values)).sum())} NaN or "
                            "infinite value(s)")
    n_types = adata.obs["cell_type"].nunique() if "cell_type" in adata.obs else 0
    if full_size and not problems:
        expected = CITESEQ_FULL_SHAPE
        found = {"n_cells": adata.n_obs, "n_gex": n_gex, "n_adt": n_adt,
                 "n_cell_types": n_types}
        wrong = {k: (found[k], expected[k]) for k in expected if found[k] != expected[k]}
        if wrong:
            problems.append("the file does not have the size of the GSE194122 CITE-seq "
                            "release: " + ", ".join(f"{k}={f} (expected {e})"
                                                    for k, (f, e) in wrong.items()))
    if problems:
        raise ValueError("adata does not have the CITE-seq (GSE194122) layout:\n  - "
                         + "\n  - ".join(problems))
    return {"n_cells": adata.n_obs, "n_gex": n_gex, "n_adt": n_adt,
            "n_cell_types": int(n_types), "is_train": split_counts}


# ======================================================================================
# Finding, downloading and reading the real file
# ======================================================================================
def _default_cache_dir(cache_dir) -> pathlib.Path:
    """The package's one cache rule (:func:`propalign_lite.datasets._fetch.cache_root`)."""
    from .._fetch import cache_root

    return cache_root(cache_dir)


def _gunzip_atomic(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    """Decompress ``src`` to ``dst`` through a temporary file renamed at the end, so an
    interrupted or failed decompression never leaves a half-written ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as gz:
            shutil.copyfileobj(gz, out, length=16 << 20)
        os.replace(tmp, dst)
    except (OSError, EOFError, zlib.error) as err:
        pathlib.Path(tmp).unlink(missing_ok=True)
        if isinstance(err, (gzip.BadGzipFile, EOFError, zlib.error)):
            raise ValueError(f"{src} is not a valid (complete) gzip file: {err}") from err
        raise
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def _from_user_file(path, cache_dir) -> pathlib.Path:
    """A user-given ``.h5ad`` is used as is; an ``.h5ad.gz`` is decompressed into the
    cache once (reused while it is newer than the ``.gz``)."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CITE-seq file {str(path)!r} does not exist (or is not a "
                                "file)")
    if path.suffix == ".gz":
        target = _default_cache_dir(cache_dir) / path.name[: -len(".gz")]
        if not (target.is_file() and target.stat().st_mtime >= path.stat().st_mtime):
            _gunzip_atomic(path, target)
        return target
    return path


def _retrieve(url: str, *, known_hash: str | None, cache_dir: pathlib.Path,
              fname: str = CITESEQ_GZ_NAME, progressbar: bool = False,
              downloader=None) -> pathlib.Path:
    """Download ``url`` with pooch into ``cache_dir/fname``, check its hash, and
    decompress it (gzip) to ``cache_dir/<fname without .gz>`` via a temporary name.

    All work happens in a private staging folder ``cache_dir/.download`` (pooch's temporary
    file included), emptied at the start of every call and removed at the end, so that a
    killed process leaves nothing that a later call trips over; the ``.gz`` and the
    decompressed file are moved into ``cache_dir`` only when both are complete. A download cut
    short (even without ``known_hash``) or with a wrong checksum keeps nothing and raises
    ``ValueError``; a broken connection raises ``ConnectionError`` naming ``url``.
    """
    import pooch
    import requests

    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / (fname[: -len(".gz")] if fname.endswith(".gz") else fname + ".h5ad")
    part_name = final.name + ".part"
    (cache_dir / part_name).unlink(missing_ok=True)    # leftovers of the previous layout
    staging = cache_dir / ".download"
    shutil.rmtree(staging, ignore_errors=True)          # leftovers of a killed download
    staging.mkdir()
    gz = cache_dir / fname
    if gz.is_file():                                    # reuse a complete earlier download
        os.replace(gz, staging / fname)
    try:
        pooch.retrieve(url, known_hash=known_hash, fname=fname, path=staging,
                       processor=pooch.Decompress(method="gzip", name=part_name),
                       downloader=downloader, progressbar=progressbar)
        os.replace(staging / part_name, final)
        os.replace(staging / fname, gz)
    except requests.exceptions.RequestException as err:
        raise ConnectionError(
            f"downloading {url} failed ({type(err).__name__}: {err}); nothing was kept in "
            f"{cache_dir}. Check the connection and retry, or download the file yourself and "
            "pass path=...") from err
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"the file downloaded from {url} is not a complete gzip file ({err}): the download "
            f"was probably cut short. It was deleted and nothing was written to {cache_dir}; "
            "retry, or pass known_hash=... so that pooch checks the file") from err
    except ValueError as err:
        if "hash" in str(err).lower():
            raise ValueError(
                f"the file downloaded from {url} does not have the expected checksum "
                f"{known_hash}; it was deleted and nothing was written to {cache_dir}. The "
                "download was corrupted or the server's file changed: retry, or download "
                "the file yourself and pass path=... (details: " + str(err) + ")") from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def fetch_cite_seq(path=None, *, download: bool = False, cache_dir=None,
                   url: str = CITESEQ_URL, known_hash: str | None = CITESEQ_SHA256,
                   progressbar: bool | None = None) -> pathlib.Path:
    """Return the local path of the (uncompressed) CITE-seq ``.h5ad``.

    Looked up in this order:

    1. ``path`` -- an ``.h5ad`` or ``.h5ad.gz`` you already have;
    2. the environment variable ``PROPALIGN_CITESEQ_PATH`` (same meaning);
    3. the cache directory: ``cache_dir``, else ``PROPALIGN_CACHE_DIR``, else
       ``pooch.os_cache("propalign")``, holding
       ``GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad`` (or its ``.gz``);
    4. only with ``download=True``: download from GEO (about 590 MB), check the SHA-256 of
       the ``.gz`` against ``known_hash``, and decompress into the cache (about 2 GB).

    A ``.gz`` is decompressed through a temporary file renamed at the end, so an interrupted
    run never leaves a half-written ``.h5ad``. Files you provide are not hash-checked.

    Raises
    ------
    FileNotFoundError
        If nothing is found and ``download`` is False (the message lists the three ways to
        provide the file).
    ValueError
        If the downloaded file's checksum does not match (nothing is kept).
    """
    if path is not None:
        return _from_user_file(path, cache_dir)
    env = os.environ.get(ENV_CITESEQ_PATH)
    if env:
        try:
            return _from_user_file(env, cache_dir)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{ENV_CITESEQ_PATH}={env!r} points to a missing "
                                    "file") from err
    cache = _default_cache_dir(cache_dir)
    cached = cache / CITESEQ_H5AD_NAME
    if cached.is_file():
        return cached
    if download:
        if progressbar is None:
            try:
                import tqdm  # noqa: F401
                progressbar = True
            except ImportError:
                progressbar = False
        return _retrieve(url, known_hash=known_hash, cache_dir=cache,
                         progressbar=progressbar)
    if (cache / CITESEQ_GZ_NAME).is_file():
        return _from_user_file(cache / CITESEQ_GZ_NAME, cache_dir)
    raise FileNotFoundError(
        "The CITE-seq file (GEO GSE194122, " + CITESEQ_GZ_NAME + ") was not found. "
        "Provide it in one of three ways:\n"
        "  1. pass path='/path/to/" + CITESEQ_H5AD_NAME + "' (or the .h5ad.gz);\n"
        f"  2. set the environment variable {ENV_CITESEQ_PATH} to that path;\n"
        f"  3. put the file in the cache directory {str(cache)!r} (change it with "
        f"cache_dir=... or {ENV_CACHE_DIR}), or call with download=True to fetch it "
        f"(about 590 MB) from {url}.\n"
        "To work offline without it, use simulate_cite_seq() / load_cite_seq_simulated().")


def read_cite_seq(path=None, *, download: bool = False, cache_dir=None,
                  url: str = CITESEQ_URL, known_hash: str | None = CITESEQ_SHA256,
                  progressbar: bool | None = None, full_size: bool | None = None):
    """Find (see :func:`fetch_cite_seq`), read and validate the CITE-seq file; return the
    :class:`anndata.AnnData` with raw counts (for baselines that need them).

    ``full_size=None`` checks the real file's size only when the file has the official
    GEO name.
    """
    file = fetch_cite_seq(path, download=download, cache_dir=cache_dir, url=url,
                          known_hash=known_hash, progressbar=progressbar)
    return _read_validated(file, full_size=full_size)


def _read_validated(file: pathlib.Path, *, full_size: bool | None):
    import anndata

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DUPLICATE_NAMES_MSG)
            adata = anndata.read_h5ad(file)
    except OSError as err:
        raise ValueError(f"could not read {file} as an .h5ad file: {err}") from err
    if full_size is None:
        full_size = file.name == CITESEQ_H5AD_NAME
    validate_cite_seq_layout(adata, full_size=full_size)
    return adata
