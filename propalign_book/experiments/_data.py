"""Data shared by the units of one process, loaded once (units stay deterministic: the data
depend only on the settings)."""
from __future__ import annotations

import functools
import json


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"`` (what the chapters did)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_CITE_KEYS = ("data", "n_cells", "n_pcs", "data_seed", "simulator")


def cite_data(settings: dict):
    """The CITE-seq data of ``settings`` (:func:`propalign_lite.datasets.load_cite_seq_for`),
    cached per process by the settings that determine it."""
    key = json.dumps({k: settings.get(k) for k in _CITE_KEYS}, sort_keys=True)
    return _cite_cached(key)[0]


def cite_source(settings: dict) -> str:
    """The one-line description of :func:`cite_data`'s data."""
    key = json.dumps({k: settings.get(k) for k in _CITE_KEYS}, sort_keys=True)
    return _cite_cached(key)[1]


@functools.lru_cache(maxsize=2)
def _cite_cached(key: str):
    from propalign_lite.datasets import load_cite_seq_for

    return load_cite_seq_for(json.loads(key))


def cite_fingerprint(settings: dict) -> str:
    """Data fingerprint of CITE-seq units: the expected SHA-256 of the real file for
    ``data="geo"`` (empty for simulated data, which the settings determine)."""
    if settings.get("data") == "geo":
        from propalign_lite.datasets.citeseq import CITESEQ_SHA256

        return CITESEQ_SHA256
    return ""


def balls_data(images: dict):
    """The synthetic chapter's train, validation and test scenes (:func:`make_balls` with
    ``data_seed``, ``+1``, ``+2``), cached per process by their settings."""
    key = json.dumps({k: images[k] for k in ("image_size", "n_train", "n_val", "n_test",
                                             "data_seed")}, sort_keys=True)
    return _balls_cached(key)


@functools.lru_cache(maxsize=1)
def _balls_cached(key: str):
    from propalign_lite.datasets import make_balls

    s = json.loads(key)
    size, seed = s["image_size"], s["data_seed"]
    return (make_balls(s["n_train"], image_size=size, random_state=seed),
            make_balls(s["n_val"], image_size=size, random_state=seed + 1),
            make_balls(s["n_test"], image_size=size, random_state=seed + 2))


def shared_data_dir():
    """The project's ``../shared/data`` (the real paired cells) when it exists, else None: the
    book's default place for :func:`propalign_lite.datasets.load_bmmc_cite` /
    ``load_mop_snare`` when neither ``data_dir`` nor ``PROPALIGN_DATA_DIR`` is set."""
    import os
    import pathlib

    if os.environ.get("PROPALIGN_DATA_DIR"):
        return None                      # the loaders read the variable themselves
    shared = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


@functools.lru_cache(maxsize=2)
def paired_cells_cached(dataset: str, data_dir, n_pcs: int):
    """``(rna, modality 2)`` AnnData of a real paired set (``"bmmc"``: RNA + protein,
    ``"mop"``: RNA + accessibility), loaded and preprocessed once per process. Callers copy
    before writing to them."""
    from propalign_lite.datasets import load_bmmc_cite, load_mop_snare

    data_dir = data_dir or shared_data_dir()
    if dataset == "bmmc":
        md = load_bmmc_cite(data_dir, n_pcs=n_pcs)
        return md["rna"], md["adt"]
    if dataset == "mop":
        md = load_mop_snare(data_dir, n_pcs=n_pcs)
        return md["rna"], md["atac"]
    raise ValueError(f"dataset must be 'bmmc' or 'mop', got {dataset!r}")
