"""Saving an :class:`~propalign_lite.alignment.Alignment` apart from its AnnData objects.

An alignment is the couplings of its groups plus the settings that made them; the cells it
couples live in two AnnData objects the user keeps (and may change). :func:`save_alignment`
writes one ``.npz`` file (no pickle) with the couplings (dense arrays; implicit couplings as
their potentials), both objects' logits and labels, the settings, and a SHA-256 checksum of
each object's cell names in order. :func:`read_alignment` (behind
:func:`propalign_lite.load_alignment`) refuses objects whose cell names no
longer match, so a coupling can never be applied to cells it was not computed for. The fitted
classifiers are not stored (their logits are).

Example
-------
>>> import anndata as ad, numpy as np, pandas as pd, tempfile, os
>>> from propalign_lite import align, Alignment
>>> rng = np.random.default_rng(0)
>>> def toy(n, prefix):
...     t = np.arange(n) % 2
...     return ad.AnnData(rng.normal(size=(n, 3)) + 3 * np.eye(2, 3)[t],
...                       obs=pd.DataFrame({"g": list("ab" * (n // 2))},
...                                        index=[f"{prefix}{i}" for i in range(n)]))
>>> a1, a2 = toy(40, "r"), toy(30, "p")
>>> aln = align(a1, a2, groupby="g", classifier=dict(epochs=2, width=8), random_state=0)
>>> path = os.path.join(tempfile.mkdtemp(), "aln.npz")
>>> aln.save(path)
>>> again = Alignment.load(path, a1, a2)
>>> bool(np.allclose(again.transfer("adata2"), aln.transfer("adata2")))
True
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile

import numpy as np

__all__ = ["FORMAT", "cell_names_checksum", "save_alignment", "read_alignment"]

FORMAT = "propalign-alignment/1"


def cell_names_checksum(adata) -> str:
    """SHA-256 of an object's cell names, in order (the count included)."""
    h = hashlib.sha256(str(adata.n_obs).encode())
    for name in adata.obs_names:
        h.update(b"\x1f" + str(name).encode())
    return h.hexdigest()


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def save_alignment(aln, path) -> None:
    """Write ``aln`` to ``path`` (``.npz``) through a temporary file renamed at the end."""
    from .coupling import is_implicit

    groups = list(aln.couplings_)
    arrays, kinds = {}, []
    for k, g in enumerate(groups):
        M = aln.couplings_[g]
        if is_implicit(M):                  # stored as its potentials
            arrays[f"alpha_{k}"], arrays[f"beta_{k}"] = M.alpha, M.beta
            kinds.append(["implicit", float(M.reg)])
        else:
            arrays[f"coupling_{k}"] = np.asarray(M.toarray() if hasattr(M, "toarray") else M)
            kinds.append(["dense", None])
    meta = {"format": FORMAT, "names": list(aln.names), "groupby": aln.groupby,
            "key_added": aln.key_added, "groups": _plain(groups), "kinds": kinds,
            "labels1": _plain(aln.labels_[0].tolist()), "labels2": _plain(aln.labels_[1].tolist()),
            "unmatched": [[_plain(g), why] for g, why in aln.unmatched_.items()],
            "merged": [[_plain(g), _plain(p)] for g, p in aln.merged_.items()],
            "match_kwargs": _plain(aln.match_kwargs),
            "checksum1": cell_names_checksum(aln.adata1),
            "checksum2": cell_names_checksum(aln.adata2),
            "n_obs": [aln.adata1.n_obs, aln.adata2.n_obs],
            "settings": _plain(dict(aln.adata1.uns.get(aln.key_added, {})))}
    arrays["logits1"], arrays["logits2"] = np.asarray(aln.logits1_), np.asarray(aln.logits2_)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)


def read_alignment(path, adata1, adata2=None, *, modalities=None) -> dict:
    """The constructor arguments of the :class:`~propalign_lite.alignment.Alignment` saved at
    ``path``, read onto ``adata1`` and ``adata2`` (or one MuData), which must hold the same
    cells, in the same order, as when it was saved (checked by checksum; a clear
    ``ValueError`` otherwise). Logits missing from ``.obsm`` are restored from the file.
    The couplings are read onto the CPU, and ``match_kwargs`` loses any ``device`` the
    saving run used (set ``Alignment.match_kwargs["device"]`` to match the reverse
    direction on a GPU). :func:`propalign_lite.load_alignment` (``Alignment.load``) builds
    the alignment."""
    from ._anndata_inputs import _resolve_objects
    from .coupling import ImplicitCoupling
    from .regselect import RegSelection

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved alignment at {str(path)!r}")
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if "meta" not in data:
        raise ValueError(f"{path} is not an alignment saved by Alignment.save")
    meta = json.loads(bytes(data["meta"]).decode())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    a1, a2, names, _ = _resolve_objects(adata1, adata2, modalities)
    for a, role, k in ((a1, "adata1", "1"), (a2, "adata2", "2")):
        if cell_names_checksum(a) != meta["checksum" + k]:
            raise ValueError(
                f"{role} does not hold the cells the alignment was computed for: its cell "
                f"names (or their order) changed ({a.n_obs} cells now, "
                f"{meta['n_obs'][int(k) - 1]} saved). Align again, or subset the object back "
                "to the saved cells in their saved order.")
    key = meta["key_added"]
    for a, k in ((a1, "1"), (a2, "2")):
        if f"{key}_logits" not in a.obsm:
            a.obsm[f"{key}_logits"] = data["logits" + k]
    groups = meta["groups"]
    couplings = {}
    t1, t2 = np.array(meta["labels1"], dtype=object), np.array(meta["labels2"], dtype=object)
    for k, (g, (kind, reg)) in enumerate(zip(groups, meta["kinds"])):
        if kind == "dense":
            couplings[g] = data[f"coupling_{k}"]
        else:
            i1, i2 = np.flatnonzero(t1 == g), np.flatnonzero(t2 == g)
            couplings[g] = ImplicitCoupling(data["logits1"][i1], data["logits2"][i2],
                                            data[f"alpha_{k}"], data[f"beta_{k}"], reg)
    mkw = dict(meta["match_kwargs"])
    # the loaded couplings live on the CPU; so does any matching they need (the reverse
    # direction), whatever device the saving run used (align(device="cuda") records it)
    mkw.pop("device", None)
    if isinstance(mkw.get("reg_m"), list):
        mkw["reg_m"] = tuple(mkw["reg_m"])
    selection = meta["settings"].get("reg_selection")
    return dict(adata1=a1, adata2=a2, couplings=couplings, labels=(t1, t2), names=names,
                groupby=meta["groupby"], key_added=key,
                unmatched={g: why for g, why in meta["unmatched"]},
                merged={g: p for g, p in meta["merged"]}, classifiers=(None, None),
                match_kwargs=mkw,
                reg_selection=None if selection is None else RegSelection.from_dict(selection))
