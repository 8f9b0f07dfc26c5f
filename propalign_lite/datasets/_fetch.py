"""One hash-checked route from a published file to a local path, for the real paired sets.

A data set is a folder of files, each with a public URL pinned to a commit and a SHA-256.
:func:`fetch_files` looks for every file, in this order:

1. ``data_dir`` (an argument): the folder itself or its sub-folder named after the set;
2. the environment variable ``PROPALIGN_DATA_DIR`` (same meaning; the book points it at the
   project's ``../shared/data``);
3. the cache, ``cache_dir`` / ``PROPALIGN_CACHE_DIR`` / ``pooch.os_cache("propalign")``,
   under the set's name;
4. only with ``download=True``: the URL, through :func:`pooch.retrieve`, into a private
   staging folder of the cache, moved into place only once its SHA-256 matched.

Every file found locally is hash-checked too (the sets are a few MB): a file that differs from
the published one raises instead of silently changing the book's numbers. A download that fails
or does not match leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
from dataclasses import dataclass

ENV_DATA_DIR = "PROPALIGN_DATA_DIR"
ENV_CACHE_DIR = "PROPALIGN_CACHE_DIR"


@dataclass(frozen=True)
class RemoteFile:
    """A published file: its name in the set's folder, its SHA-256 and its pinned URL."""

    name: str
    sha256: str
    url: str


def sha256sum(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_root(cache_dir=None) -> pathlib.Path:
    """``cache_dir``, else ``$PROPALIGN_CACHE_DIR``, else ``pooch.os_cache("propalign")``."""
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return pathlib.Path(env).expanduser()
    import pooch

    return pathlib.Path(pooch.os_cache("propalign"))


def _candidates(dataset: str, data_dir, cache_dir) -> list[tuple[str, pathlib.Path]]:
    out = []
    for label, root in (("data_dir", data_dir), (ENV_DATA_DIR, os.environ.get(ENV_DATA_DIR))):
        if root:
            root = pathlib.Path(root).expanduser()
            out += [(label, root / dataset), (label, root)]
    out.append(("cache", cache_root(cache_dir) / dataset))
    return out


def _checked(path: pathlib.Path, f: RemoteFile) -> pathlib.Path:
    got = sha256sum(path)
    if got != f.sha256:
        raise ValueError(f"{path} does not have the published SHA-256 of {f.name} (expected "
                         f"{f.sha256}, got {got}): it is another version of the file or was "
                         f"damaged. Replace it with the file from {f.url}")
    return path


def _download(f: RemoteFile, target_dir: pathlib.Path, *, downloader=None,
              progressbar: bool = False) -> pathlib.Path:
    """Download ``f`` into ``target_dir`` through a staging folder emptied before and removed
    after; the file is moved into place only after pooch checked its SHA-256."""
    import pooch
    import requests

    target_dir.mkdir(parents=True, exist_ok=True)
    staging = target_dir / f".download-{f.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        pooch.retrieve(f.url, known_hash=f"sha256:{f.sha256}", fname=f.name, path=staging,
                       downloader=downloader, progressbar=progressbar)
        os.replace(staging / f.name, target_dir / f.name)
    except requests.exceptions.RequestException as err:
        raise ConnectionError(f"downloading {f.url} failed ({type(err).__name__}: {err}); "
                              f"nothing was kept in {target_dir}") from err
    except ValueError as err:
        if "hash" in str(err).lower():
            raise ValueError(f"the file downloaded from {f.url} does not have the published "
                             f"SHA-256 {f.sha256}; it was deleted and nothing was written to "
                             f"{target_dir} (details: {err})") from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target_dir / f.name


def fetch_files(dataset: str, files, *, data_dir=None, cache_dir=None, download: bool = False,
                downloader=None, progressbar: bool = False) -> dict[str, pathlib.Path]:
    """Local, hash-checked paths of the ``files`` (:class:`RemoteFile`) of ``dataset``.

    See the module docstring for where files are looked for. ``downloader`` is passed to
    :func:`pooch.retrieve` (tests use it to serve a file without a network).

    Raises
    ------
    FileNotFoundError
        A file is nowhere and ``download`` is False; the message lists the places looked at
        and the three ways to provide it.
    ValueError
        A local or downloaded file does not have the published SHA-256 (a download is
        deleted; a local file is left as it is, it is the user's).
    """
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a non-empty name, got {dataset!r}")
    places = _candidates(dataset, data_dir, cache_dir)
    cache = places[-1][1]
    out = {}
    for f in files:
        found = next((d / f.name for _, d in places if (d / f.name).is_file()), None)
        if found is not None:
            out[f.name] = _checked(found, f)
        elif download:
            out[f.name] = _download(f, cache, downloader=downloader, progressbar=progressbar)
        else:
            looked = "\n".join(f"  - {label}: {d / f.name}" for label, d in places)
            raise FileNotFoundError(
                f"{f.name} of the data set {dataset!r} was not found. Looked at:\n{looked}\n"
                f"Provide it in one of three ways: pass data_dir=<folder holding {dataset}/>; "
                f"set {ENV_DATA_DIR} to that folder; or call with download=True to fetch it "
                f"(hash-checked) from {f.url}")
    return out
