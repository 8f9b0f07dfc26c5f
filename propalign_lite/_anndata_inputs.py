"""What :func:`propalign_lite.align` and :func:`propalign_lite.load_alignment` read from their
inputs: the two objects (two AnnData, or one MuData and its two modalities), the group labels
and the features the classifiers see."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from ._validation import check_array, check_sparse


def _is_mudata(obj) -> bool:
    return hasattr(obj, "mod") and hasattr(obj, "obs")


def _resolve_objects(adata1, adata2, modalities):
    """Return ``(a1, a2, (name1, name2), mdata_or_None)``."""
    if _is_mudata(adata1):
        if adata2 is not None:
            raise ValueError("pass either a MuData as adata1 (adata2=None) or two AnnData objects")
        mdata = adata1
        mods = list(mdata.mod) if modalities is None else list(modalities)
        if len(mods) != 2:
            raise ValueError(f"modalities must name exactly two modalities of the MuData; it has "
                             f"{list(mdata.mod)}" + ("" if modalities is None else
                                                      f", got modalities={modalities!r}"))
        missing = [m for m in mods if m not in mdata.mod]
        if missing:
            raise KeyError(f"modalities: {missing} not in the MuData (it has {list(mdata.mod)})")
        return mdata.mod[mods[0]], mdata.mod[mods[1]], (mods[0], mods[1]), mdata
    if adata2 is None:
        raise ValueError("adata2 is missing: pass two AnnData objects or one MuData")
    for name, a in (("adata1", adata1), ("adata2", adata2)):
        if not (hasattr(a, "obs") and hasattr(a, "obsm") and hasattr(a, "X")):
            raise TypeError(f"{name} must be an AnnData (or adata1 a MuData), got "
                            f"{type(a).__name__}")
    if modalities is not None:
        raise ValueError("modalities is only used with a MuData")
    return adata1, adata2, ("adata1", "adata2"), None


def _labels(a, groupby: str, name: str, mdata=None, mod=None) -> np.ndarray:
    """The ``groupby`` column of ``a.obs`` (or of the MuData's global ``.obs``) as labels."""
    if groupby in a.obs.columns:
        col = a.obs[groupby]
    elif mdata is not None and groupby in mdata.obs.columns:
        if not mdata.obs.index.is_unique:
            raise ValueError(f"groupby={groupby!r} is a global MuData column but the MuData's obs "
                             f"names are not unique; copy the column into .mod[{mod!r}].obs")
        col = mdata.obs[groupby].reindex(a.obs_names)
    else:
        raise KeyError(f"groupby={groupby!r} is not a column of {name}.obs (columns: "
                       f"{list(a.obs.columns)[:20]})")
    nan = pd.isna(col.to_numpy())
    if nan.any():
        raise ValueError(f"groupby={groupby!r} has {int(nan.sum())} missing (NaN) value(s) in "
                         f"{name}.obs; drop those cells or give them a label")
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(col.cat.categories.dtype)   # unused categories play no role
    return col.to_numpy()


def get_rep(a, use_rep, name: str, *, arg: str = "use_rep", keep_sparse: bool = False):
    """The representation ``use_rep`` of ``a`` as a dense, finite float32 array.

    ``None`` or ``"X"`` is ``a.X``; any other string an ``.obsm`` key. A sparse matrix is
    densified, unless ``keep_sparse`` (then a checked CSR float32 matrix: what the
    classifiers train on in mini-batches, so ``.X`` of a large atlas is never densified whole).
    """
    if use_rep is None or use_rep == "X":
        x, where = a.X, f"{name}.X"
        if x is None:
            raise ValueError(f"{where} is empty (None); pass {arg}=<an .obsm key>")
    else:
        if use_rep not in a.obsm:
            raise KeyError(f"{arg}={use_rep!r} is not a key of {name}.obsm (keys: "
                           f"{list(a.obsm.keys())})")
        x, where = a.obsm[use_rep], f"{name}.obsm[{use_rep!r}]"
    if sparse.issparse(x) and keep_sparse:
        return check_sparse(x, where)
    if sparse.issparse(x):
        x = x.toarray()
    elif isinstance(x, pd.DataFrame):
        x = x.to_numpy()
    return check_array(np.asarray(x), where, dtype=np.float32)
