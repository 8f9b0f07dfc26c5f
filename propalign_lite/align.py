r"""The front door for single-cell data: align two AnnData objects and transfer a modality.

:func:`align` takes two :class:`anndata.AnnData` objects holding *different* cells measured
in two modalities (e.g. RNA-only and protein-only cells), or one :class:`mudata.MuData` with
two modalities, and a shared grouping of the cells (``groupby``: a cell type, a perturbation,
a sample of origin). It

1. trains one propensity classifier per object to predict the group from that object's
   features (:class:`~propalign_lite.PropensityClassifier`, an MLP; a stratified validation
   split is taken inside each object and the epoch with the lowest validation loss is kept);
2. writes the classifiers' logits -- the propensity embedding
   :math:`\log \hat\pi(t \mid x) + c(x)`, a space shared by both modalities -- to
   ``.obsm[f"{key_added}_logits"]`` of each object;
3. matches the cells of every group with :func:`~propalign_lite.match_groups` (entropic OT on
   the plain Euclidean cost between logits by default, :math:`\lambda = 0.05`), and
4. returns an :class:`~propalign_lite.alignment.Alignment` that transfers features of one object
   onto the cells of the other (the barycentric projection
   :math:`\hat y_i = \sum_j M_{ij} y_j` within the cell's group) and samples pseudo-pairs.

It follows scanpy's conventions: ``use_rep=None`` means ``.X``, any other string an ``.obsm``
key; results go to ``.obsm`` and the settings to ``.uns[key_added]``.

Example
-------
>>> import numpy as np, anndata as ad, pandas as pd
>>> from propalign_lite import align
>>> rng = np.random.default_rng(0)
>>> def toy(n, d, shift):
...     t = rng.integers(0, 3, n)
...     x = rng.normal(size=(n, d)) + shift * np.eye(3, d)[t]
...     return ad.AnnData(x, obs=pd.DataFrame({"kind": pd.Categorical(np.array(list("abc"))[t])},
...                                            index=[f"c{i}" for i in range(n)]))
>>> rna, prot = toy(300, 8, 3.0), toy(200, 5, 3.0)
>>> aln = align(rna, prot, groupby="kind", classifier=dict(epochs=5, width=32, lr=1e-2),
...             random_state=0)
>>> rna.obsm["propalign_logits"].shape
(300, 3)
>>> aln.transfer("adata2").shape            # prot's 5 features for each rna cell
(300, 5)
>>> aln.sample_pairs(4, random_state=0).columns.tolist()
['adata1', 'adata2', 'kind']

References
----------
Xi, Osea, Xu and Hartford (2024), *Propensity score alignment of unpaired multimodal data*,
NeurIPS; Wolf, Angerer and Theis (2018), *SCANPY: large-scale single-cell gene expression data
analysis* (the AnnData conventions).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from ._anndata_inputs import _labels, _resolve_objects, get_rep  # noqa: F401 (get_rep: public)
from ._validation import check_random_state
from .alignment import Alignment
from .groups import resolve_groups
from .align_classifiers import DEFAULT_CLASSIFIER, auto_reg, train_pair  # noqa: F401
from .matchers import PAPER_REG, match_groups
from .ot_memory import estimate_groups_memory

__all__ = ["align", "get_rep"]


# --------------------------------------------------------------------------------------------
def align(adata1, adata2=None, *, groupby: str, use_rep1=None, use_rep2=None,
          method: str = "ot", reg=PAPER_REG, reg_m=None, classifier=None, validation=0.2,
          min_group_size: int = 2, small_groups="skip", key_added: str = "propalign",
          modalities=None, reg_grid=None,
          match_kwargs: dict | None = None, random_state=0, device: str = "cpu",
          n_jobs: int = 1, client=None, progress: bool = False) -> Alignment:
    """Align the cells of two AnnData objects within groups by propensity scores.

    Parameters
    ----------
    adata1, adata2 : AnnData
        Two objects with *different* cells, one modality each. Or ``adata1`` a MuData and
        ``adata2=None``: its two modalities (see ``modalities``).
    groupby : str
        Column of ``.obs`` present in both (for a MuData: in each modality's ``.obs`` or the
        global ``.obs``): the shared treatment / label. Cells are matched only within a group.
    use_rep1, use_rep2 : str, optional
        Features the classifiers see: ``None`` = ``.X`` (a sparse ``.X`` stays sparse; each
        training batch is densified on its own), else an ``.obsm`` key such as ``"X_pca"``.
    method : str
        Matcher (:func:`~propalign_lite.match`): ``"ot"`` (default), ``"emd"``, ``"snn"``,
        ``"random"``, ``"uniform"``.
    reg : float or "auto"
        Entropic regularisation of ``"ot"`` (the paper's 0.05). ``"auto"`` chooses it
        without true pairs (:func:`propalign_lite.regselect.select_reg`): a second pair of
        classifiers is trained (other seeds and validation cells, so twice the training
        time) and the ``reg`` of ``reg_grid`` whose coupling best predicts that pair's scores
        is used; ``Alignment.reg_selection_`` and ``.uns[key_added]["reg_selection"]`` hold
        the criterion at every value.
    reg_m : None, float or (float, float)
        ``None`` (default): balanced OT, every cell sends and receives its share. A number
        (or one per object) relaxes the marginals by a KL penalty of that strength
        (:mod:`propalign_lite.unbalanced`): a cell with no good partner in its group (a state
        missing from the other object, or a group whose sizes differ a lot) may keep part of
        its mass. Smaller is looser; about the scale of the logit distances is a moderate
        choice. ``Alignment.mass_`` and ``.obs[f"{key_added}_mass"]`` report what was kept.
    classifier : None, dict, PropensityClassifier or (PropensityClassifier, PropensityClassifier)
        ``None``: an MLP with :data:`DEFAULT_CLASSIFIER` settings; a dict: settings that
        override those; an unfitted ``PropensityClassifier("mlp", ...)``: a template copied for
        each object; a pair of *fitted* classifiers (one per object, the same ``classes_``):
        used as they are, nothing is trained.
    validation : float, str or None
        Validation cells of each object for early stopping: a fraction (a stratified, seeded
        split by group), the name of a boolean ``.obs`` column (True = validation), or
        ``None`` (keep the last epoch).
    min_group_size : int
        A group needs at least this many cells in both objects to be matched (default 2).
    small_groups : {"skip", "raise"} or mapping
        What to do with smaller groups (real data always have some): ``"skip"`` (default)
        leaves them out with a warning and lists them in ``Alignment.unmatched_``;
        ``"raise"`` stops with an error; a mapping ``{label: parent label}`` merges the small
        groups it names into their parents first (see
        :func:`propalign_lite.groups.resolve_groups`).
    key_added : str
        Logits go to ``.obsm[f"{key_added}_logits"]`` of both objects, the settings to
        ``.uns[key_added]``.
    modalities : (str, str), optional
        The two MuData modalities to align (default: its two modalities in order).
    reg_grid : sequence of float, optional
        The values ``reg="auto"`` chooses from (default
        :data:`propalign_lite.regselect.REG_GRID`, 0.01 to 5).
    match_kwargs : dict, optional
        More options for :func:`~propalign_lite.match_groups` (e.g. ``k`` for ``"snn"``).
    random_state : int, Generator or None
        Seeds the validation splits, the classifiers and random matchers.
    device : str
        Torch device of the classifiers and, for ``method="ot"``, of the block passes of the
        groups solved online (above ``dense_max`` pairs; :func:`~propalign_lite.match`'s
        ``device``, which ``match_kwargs`` may set apart). A group small enough to hold its
        cost matrix is solved in numpy on the CPU either way.
    n_jobs, client, progress
        How the groups are matched (:func:`~propalign_lite.match_groups`): ``n_jobs`` groups
        at once on threads of this process (``-1``: one per CPU), or as tasks of a Dask
        ``client``; ``progress`` prints the memory the matching will need, estimated before it
        starts for sparse plans (kept in ``Alignment.memory_estimate_``) and for dense ones
        (``estimate_groups_memory(..., dense_plans=True)``), and shows a progress bar over
        the groups. The couplings do not depend on these.

    Returns
    -------
    Alignment
        Groups present in one object only cannot be matched: they are left out, listed in
        ``Alignment.unmatched_`` and in a ``UserWarning``; their cells get NaN on transfer.

    Raises
    ------
    KeyError
        ``groupby``, ``use_rep1``/``use_rep2`` or ``validation`` not found (message names it).
    ValueError
        ``groupby`` with missing values, non-finite features, a small group with
        ``small_groups="raise"``, fewer than two groups to match, or mismatched fitted
        classifiers.
    """
    a1, a2, names, mdata = _resolve_objects(adata1, adata2, modalities)
    if not isinstance(groupby, str):
        raise TypeError(f"groupby must be the name of an .obs column, got {groupby!r}")
    if not (isinstance(key_added, str) and key_added):
        raise ValueError(f"key_added must be a non-empty string, got {key_added!r}")
    auto = isinstance(reg, str)
    if auto:
        problems = [why for why, bad in (
            ("reg must be 'auto' or a positive number", reg != "auto"),
            ("method must be 'ot'", method != "ot"),
            ("classifiers must be trained by align, not a fitted pair",
             isinstance(classifier, (tuple, list))),
            ("match_kwargs must not set 'reg'", "reg" in (match_kwargs or {}))) if bad]
        if problems:
            raise ValueError(f"reg={reg!r}: " + "; ".join(problems) + " (reg='auto' trains a "
                             "second pair of classifiers to choose the reg of entropic OT)")
    t1 = _labels(a1, groupby, names[0], mdata, names[0])
    t2 = _labels(a2, groupby, names[1], mdata, names[1])
    # features for the classifiers: a sparse .X stays sparse (densified batch by batch)
    x1 = get_rep(a1, use_rep1, names[0], arg="use_rep1", keep_sparse=True)
    x2 = get_rep(a2, use_rep2, names[1], arg="use_rep2", keep_sparse=True)
    rng = check_random_state(random_state)
    seeds = rng.integers(0, 2 ** 31 - 1, size=3)

    t1, t2, shared, unmatched, merged = resolve_groups(
        t1, t2, names=names, groupby=groupby, min_group_size=min_group_size,
        small_groups=small_groups)
    g1, g2 = set(pd.unique(t1).tolist()), set(pd.unique(t2).tolist())
    if len(shared) < 2 and not isinstance(classifier, (tuple, list)):
        raise ValueError(f"groupby={groupby!r}: {names[0]} and {names[1]} share "
                         f"{len(shared)} group(s) that can be matched; a propensity score needs "
                         f"at least two (groups: {sorted(g1, key=str)} vs {sorted(g2, key=str)}"
                         + (f"; left out: {unmatched}" if unmatched else "") + ")")
    if unmatched:
        warnings.warn(f"align: {len(unmatched)} group(s) of {groupby!r} cannot be matched and "
                      "are left out (their cells get NaN on transfer; see "
                      "Alignment.unmatched_): "
                      + "; ".join(f"{g!r} {why}" for g, why in unmatched.items()), stacklevel=2)

    # ---- propensity classifiers, trained on the cells of the shared groups
    start = time.perf_counter()
    if isinstance(classifier, (tuple, list)):
        if len(classifier) != 2 or not all(hasattr(c, "model_") for c in classifier):
            raise ValueError("classifier: a pair must hold two fitted PropensityClassifiers")
        clf1, clf2 = classifier
        if not np.array_equal(np.asarray(clf1.classes_), np.asarray(clf2.classes_)):
            raise ValueError("classifier: the two fitted classifiers have different classes_, so "
                             "their logits do not live in one space")
        shared &= set(np.asarray(clf1.classes_).tolist())
        held_out = [None, None]
        if not shared:
            raise ValueError("classifier: the fitted classifiers know none of the shared groups")
    else:
        (clf1, clf2), held_out = train_pair(classifier, seeds, device, (a1, a2), (x1, x2),
                                             (t1, t2), names, shared, validation)
    e1, e2 = clf1.logits(x1), clf2.logits(x2)
    a1.obsm[f"{key_added}_logits"] = e1
    a2.obsm[f"{key_added}_logits"] = e2
    timings = {"classifiers": time.perf_counter() - start}

    # ---- couplings within the shared groups
    groups = sorted(shared, key=str)
    in1, in2 = np.flatnonzero(np.isin(t1, groups)), np.flatnonzero(np.isin(t2, groups))
    mkw = dict(match_kwargs or {})
    mkw.setdefault("method", method)
    if mkw["method"] == "ot" and device != "cpu":
        mkw.setdefault("device", device)       # the block passes of the large groups too
    selection = None
    if auto:
        start = time.perf_counter()
        selection = auto_reg(rng, classifier, device, (a1, a2), (x1, x2), (t1, t2), names,
                             shared, validation, (e1, e2), (in1, in2), reg_grid, mkw,
                             min_group_size, reg_m)
        reg = selection.reg
        timings["reg_selection"] = time.perf_counter() - start
    if mkw["method"] == "ot":
        mkw.setdefault("reg", reg)
        if reg_m is not None:
            mkw.setdefault("reg_m", reg_m)
    match_rng = check_random_state(mkw.pop("random_state", rng))
    results = {}
    memory = (estimate_groups_memory(t1[in1], t2[in2], n_jobs=n_jobs,
                                     dense_max=mkw.get("dense_max"))
              if mkw["method"] == "ot" and client is None else None)
    if progress and memory is not None:
        dense = estimate_groups_memory(t1[in1], t2[in2], n_jobs=n_jobs, dense_plans=True,
                                       dense_max=mkw.get("dense_max"))
        print(f"align: matching {len(groups)} groups of {groupby!r} will need about "
              f"{memory / 2 ** 30:.2f} GB if their plans are sparse, up to "
              f"{dense / 2 ** 30:.2f} GB if the largest are dense ({n_jobs} at once; "
              "estimate_groups_memory)")
    start = time.perf_counter()
    couplings = match_groups(e1[in1], t1[in1], e2[in2], t2[in2], random_state=match_rng,
                             min_group_size=min_group_size, results=results, n_jobs=n_jobs,
                             client=client, progress=progress, **mkw)
    timings["matching"] = time.perf_counter() - start
    _record_mass(a1, a2, t1, t2, results, key_added)

    settings = dict(groupby=groupby, use_rep1="X" if use_rep1 is None else use_rep1,
                    use_rep2="X" if use_rep2 is None else use_rep2, method=mkw["method"],
                    validation=str(validation),
                    min_group_size=min_group_size,
                    small_groups=small_groups if isinstance(small_groups, str) else "merge",
                    merged_groups={str(k): str(v) for k, v in merged.items()},
                    random_state=str(random_state), modalities=list(names),
                    groups=[str(g) for g in groups],
                    unmatched_groups=[str(g) for g in unmatched],
                    logits_key=f"{key_added}_logits")
    if mkw["method"] == "ot":
        settings["reg"] = float(mkw["reg"])       # the value used, match_kwargs included
        if mkw.get("reg_m") is not None:
            settings["reg_m"] = [float(v) for v in np.broadcast_to(mkw["reg_m"], 2)]
    if selection is not None:
        settings["reg_selection"] = selection.to_dict()
    for a, role in ((a1, "adata1"), (a2, "adata2")):
        a.uns[key_added] = dict(settings, role=role)
    aln = Alignment(a1, a2, couplings=couplings, labels=(t1, t2), names=names,
                    groupby=groupby, key_added=key_added, unmatched=unmatched,
                    merged=merged, classifiers=(clf1, clf2), match_kwargs=mkw,
                    random_state=match_rng, validation=tuple(held_out),
                    reg_selection=selection)
    aln.timings_ = timings
    aln.results_ = results
    aln.memory_estimate_ = memory
    return aln


def _record_mass(a1, a2, t1, t2, results: dict, key: str) -> None:
    """Per cell, the mass its plan row / column carries relative to its share (1 for balanced
    OT and the other matchers; below 1 where unbalanced OT left mass behind), written to
    ``.obs[f"{key}_mass"]`` (NaN for cells of unmatched groups)."""
    for a, t, side in ((a1, t1, "row_mass"), (a2, t2, "col_mass")):
        mass = np.full(a.n_obs, np.nan)
        for g, res in results.items():
            idx = np.flatnonzero(t == g)
            got = getattr(res, side, None)
            mass[idx] = 1.0 if got is None else np.asarray(got) * len(idx)
        a.obs[f"{key}_mass"] = mass
