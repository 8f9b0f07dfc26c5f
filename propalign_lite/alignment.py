r"""The result of :func:`~propalign_lite.align`: couplings between the cells of two objects.

An :class:`Alignment` holds one coupling :math:`M^{(g)}` per matched group :math:`g`; row
:math:`i` of :math:`M^{(g)}` is a probability distribution over the cells of the other object
in the same group (rows sum to one). Two things are built from it:

* :meth:`Alignment.transfer` -- the **barycentric projection** of features :math:`y` measured
  in one object onto every cell :math:`i` of the other,

  .. math:: \hat y_i = \sum_j M^{(g_i)}_{ij}\, y_j ,

  the coupling-weighted average of the partners' values (an estimate of
  :math:`E[y \mid \text{cell } i]` under the coupling). For the uniform coupling it is the
  group mean; for a one-to-one coupling the partner's value.
* :meth:`Alignment.sample_pairs` -- pseudo-pairs :math:`(i, j)` with
  :math:`j \sim M^{(g_i)}_{i\cdot}`, e.g. to train a cross-modal model.

Only ``M.shape``, ``M @ Y`` and :func:`~propalign_lite.metrics.sample_partners` are used on a
coupling, so dense, sparse and implicit (never materialised) couplings all work.

Example
-------
See :func:`propalign_lite.align`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from scipy import sparse

from ._validation import check_random_state
from .alignment_io import read_alignment, save_alignment
from .matchers import match_groups
from .metrics import sample_partners

__all__ = ["ROLES", "Alignment", "load_alignment"]

ROLES = ("adata1", "adata2")


class Alignment:
    """Per-group couplings between the cells of two AnnData objects (made by ``align``).

    Attributes
    ----------
    adata1, adata2 : AnnData
        The aligned objects (the modalities themselves for a MuData).
    names : (str, str)
        ``("adata1", "adata2")``, or the MuData's modality names.
    couplings_ : dict
        ``{group: M}`` with ``M`` of shape ``(n1_g, n2_g)``: rows are the ``adata1`` cells
        ``index1_[group]``, columns the ``adata2`` cells ``index2_[group]`` (positions).
    index1_, index2_ : dict
        ``{group: integer positions}`` of the group's cells in each object.
    unmatched_ : dict
        ``{group: reason}`` for groups that could not be matched (present in one object only,
        or smaller than ``min_group_size`` in either).
    merged_ : dict
        ``{small label: parent label}``: groups merged before matching (``small_groups`` as
        a mapping); ``labels_`` holds the labels after merging.
    classifier1_, classifier2_ : PropensityClassifier
        The fitted propensity classifiers.
    logits1_, logits2_ : ndarray
        Their logits (also in ``.obsm[f"{key_added}_logits"]``).
    validation1_, validation2_ : boolean ndarray or None
        The cells each classifier held out for early stopping (``None`` for given
        classifiers): where :meth:`calibration` is measured.
    reg_selection_ : RegSelection or None
        With ``reg="auto"``: the criterion at every ``reg`` of the grid and the choice
        (:mod:`propalign_lite.regselect`); ``None`` otherwise.
    timings_ : dict
        Seconds ``align`` spent on each stage: ``"classifiers"`` (training and logits),
        ``"reg_selection"`` (with ``reg="auto"``: the check pair and the couplings of the
        grid) and ``"matching"``; empty for a loaded alignment.
    memory_estimate_ : int or None
        Bytes the matching was estimated to need before it ran
        (:func:`~propalign_lite.ot_memory.estimate_groups_memory`; ``align(progress=True)``
        prints it); ``None`` for other methods, a Dask ``client`` or a loaded alignment.
    results_ : dict
        ``{group: SinkhornResult or None}``, the solver's result of every group ``align``
        matched (``n_iter``, ``err``, ``converged``; ``None`` for the methods without one);
        :meth:`to_df` shows them. An error below ``WARN_ERR`` (1e-4) raises no warning, so
        this is where a group that stopped at ``max_iter`` short of ``tol`` shows. Empty for
        a loaded alignment.
    """

    def __init__(self, adata1, adata2, *, couplings: dict, labels, names, groupby: str,
                 key_added: str, unmatched: dict, classifiers, merged: dict | None = None,
                 match_kwargs: dict, random_state=None, validation=(None, None),
                 reg_selection=None):
        self.adata1, self.adata2 = adata1, adata2
        self.names = tuple(names)
        self.groupby = groupby
        self.key_added = key_added
        self.couplings_ = dict(couplings)
        t1, t2 = (np.asarray(t) for t in labels)
        self.labels_ = (t1, t2)
        self.index1_ = {g: np.flatnonzero(t1 == g) for g in self.couplings_}
        self.index2_ = {g: np.flatnonzero(t2 == g) for g in self.couplings_}
        self.unmatched_ = dict(unmatched)
        self.merged_ = dict(merged or {})
        self.classifier1_, self.classifier2_ = classifiers
        self.logits1_ = adata1.obsm[f"{key_added}_logits"]
        self.logits2_ = adata2.obsm[f"{key_added}_logits"]
        self.match_kwargs = dict(match_kwargs)
        self.validation1_, self.validation2_ = validation
        self.reg_selection_ = reg_selection
        self._rng = check_random_state(random_state)
        self._reverse = None
        self.timings_ = {}
        self.results_ = {}
        self.memory_estimate_ = None

    # ------------------------------------------------------------------------------------
    def _role(self, source) -> int:
        if source in ROLES:
            return ROLES.index(source)
        if source in self.names:
            return self.names.index(source)
        raise ValueError(f"source must be one of {sorted(set(ROLES + self.names))}, "
                         f"got {source!r}")

    def couplings(self, source="adata2") -> dict:
        """Couplings whose *columns* are the cells of ``source`` and rows the other object's.

        ``source="adata2"`` gives :attr:`couplings_`; ``"adata1"`` the reverse direction,
        matched once with the same matcher (for entropic OT with uniform marginals this is the
        transposed plan, row-normalised).
        """
        if self._role(source) == 1:
            return self.couplings_
        if self._reverse is None:
            t1, t2 = self.labels_
            groups = list(self.couplings_)
            in1, in2 = np.flatnonzero(np.isin(t1, groups)), np.flatnonzero(np.isin(t2, groups))
            kw = dict(self.match_kwargs)
            if isinstance(kw.get("reg_m"), (tuple, list)):       # the sides swap
                kw["reg_m"] = tuple(kw["reg_m"])[::-1]
            self._reverse = match_groups(self.logits2_[in2], t2[in2], self.logits1_[in1],
                                         t1[in1], random_state=self._rng, min_group_size=1,
                                         **kw)     # groups vetted by align
        return self._reverse

    @staticmethod
    def _features(a, layer, obsm, name):
        if layer is not None and obsm is not None:
            raise ValueError("give layer or obsm, not both")
        if obsm is not None:
            if obsm not in a.obsm:
                raise KeyError(f"obsm={obsm!r} is not a key of {name}.obsm (keys: "
                               f"{list(a.obsm.keys())})")
            y, columns = a.obsm[obsm], None
            if isinstance(y, pd.DataFrame):
                y, columns = y.to_numpy(), y.columns
        elif layer is not None:
            if layer not in a.layers:
                raise KeyError(f"layer={layer!r} is not a layer of {name} (layers: "
                               f"{list(a.layers.keys())})")
            y, columns = a.layers[layer], a.var_names
        else:
            y, columns = a.X, a.var_names
        if y is None:
            raise ValueError(f"{name}.X is empty (None); pass layer= or obsm=")
        if not sparse.issparse(y):
            y = np.asarray(y)
        data = y.data if sparse.issparse(y) else y
        if not np.issubdtype(data.dtype, np.number) or not np.isfinite(data).all():
            what = f"obsm[{obsm!r}]" if obsm else f"layers[{layer!r}]" if layer else "X"
            raise ValueError(f"{name}.{what} must be numeric and finite to be transferred")
        return y, columns

    def transfer(self, source="adata2", *, layer=None, obsm=None, key_added=None):
        """Project the features of ``source`` onto every cell of the other object.

        Parameters
        ----------
        source : {"adata1", "adata2"} or a MuData modality name
            The object whose features are transferred.
        layer, obsm : str, optional
            Transfer ``source.layers[layer]`` or ``source.obsm[obsm]`` instead of ``.X``
            (dense or sparse).
        key_added : str, optional
            Key of the target's ``.obsm`` written to; default ``f"{key_added}_{source}"``
            (plus ``_{layer}`` / ``_{obsm}``), e.g. ``"propalign_adata2"``.

        Returns
        -------
        pandas.DataFrame or ndarray
            ``(n_target, d)``: a DataFrame indexed by the target's obs names with the source's
            feature names as columns (for ``.X`` and layers), an array for an ``.obsm`` source.
            Rows of cells in unmatched groups are NaN. The same object is stored in the
            target's ``.obsm[key_added]``.
        """
        s = self._role(source)
        src, dst = (self.adata1, self.adata2)[s], (self.adata1, self.adata2)[1 - s]
        idx_src, idx_dst = (self.index1_, self.index2_)[s], (self.index1_, self.index2_)[1 - s]
        y, columns = self._features(src, layer, obsm, self.names[s])
        out = np.full((dst.n_obs, y.shape[1]), np.nan)
        for g, M in self.couplings(ROLES[s]).items():
            yg = y[idx_src[g]]
            yg = yg.toarray() if sparse.issparse(yg) else np.asarray(yg, dtype=float)
            out[idx_dst[g]] = M @ yg
        if key_added is None:
            key_added = "_".join([self.key_added, self.names[s]] + [k for k in (layer, obsm) if k])
        result = out if columns is None else pd.DataFrame(out, index=dst.obs_names.copy(),
                                                          columns=list(columns))
        dst.obsm[key_added] = result
        info = dst.uns.setdefault(self.key_added, {}).setdefault("transfers", {})
        info[key_added] = dict(source=self.names[s], layer=str(layer), obsm=str(obsm))
        return result

    def sample_pairs(self, n: int | None = None, *, random_state=None,
                     as_index: bool = False) -> pd.DataFrame:
        """Draw pseudo-pairs: a cell ``i`` of ``adata1`` and a partner ``j ~ M[i, :]``.

        ``n=None`` draws one partner for every matched ``adata1`` cell;
        an integer ``n`` draws ``n`` pairs whose ``adata1`` cells are spread evenly over the
        matched cells (each appears ``n // n_matched`` or one more times; the extra ones are
        drawn at random). Pairs come sorted by ``adata1`` cell.

        Returns a DataFrame with one column per object holding obs names (integer positions
        with ``as_index=True``, the safe choice when obs names repeat) and the group.
        """
        rng = check_random_state(random_state)
        n_rows = sum(len(i) for i in self.index1_.values())
        if n is not None and not (isinstance(n, (int, np.integer)) and n >= 1):
            raise ValueError(f"n must be a positive integer or None, got {n!r}")
        rounds = 1 if n is None else -(-int(n) // n_rows)
        parts = []
        for _ in range(rounds):
            for g, M in self.couplings_.items():
                j = sample_partners(M, random_state=rng)
                parts.append((self.index1_[g], self.index2_[g][j], np.full(len(j), g,
                                                                           dtype=object)))
        i1, i2, grp = (np.concatenate(p) for p in zip(*parts))
        if n is not None:           # whole rounds, then distinct cells of the last one
            last = np.arange((rounds - 1) * n_rows, rounds * n_rows)
            extra = rng.choice(last, size=int(n) - (rounds - 1) * n_rows, replace=False)
            keep = np.concatenate([np.arange((rounds - 1) * n_rows), extra])
            i1, i2, grp = i1[keep], i2[keep], grp[keep]
        order = np.argsort(i1, kind="stable")
        i1, i2, grp = i1[order], i2[order], grp[order]
        if not as_index:
            i1 = self.adata1.obs_names.to_numpy()[i1]
            i2 = self.adata2.obs_names.to_numpy()[i2]
        return pd.DataFrame({self.names[0]: i1, self.names[1]: i2, self.groupby: grp})

    def transfer_labels(self, column: str, source="adata2", *, key_added=None):
        r"""Carry a label of ``source`` (e.g. a finer annotation) onto the other object's cells.

        For target cell :math:`i`, the probability of label :math:`\ell` is the coupling mass
        on source cells carrying it, :math:`p_{i\ell} = \sum_j M_{ij} [\ell_j = \ell]` (the
        barycentric projection of the one-hot labels). Returns a DataFrame of these
        probabilities (target cells x labels; NaN rows for unmatched groups) and writes the
        most probable label and its probability to the target's ``.obs[key_added]`` and
        ``.obs[key_added + "_prob"]`` (default key ``f"{column}_transferred"``).
        """
        s = self._role(source)
        src, dst = (self.adata1, self.adata2)[s], (self.adata1, self.adata2)[1 - s]
        if column not in src.obs.columns:
            raise KeyError(f"column={column!r} is not a column of {self.names[s]}.obs")
        values = src.obs[column]
        if values.isna().any():
            raise ValueError(f"{self.names[s]}.obs[{column!r}] has missing values")
        labels = np.asarray(values.astype(str))
        vocab = np.unique(labels)
        onehot = (labels[:, None] == vocab[None, :]).astype(float)
        idx_src, idx_dst = (self.index1_, self.index2_)[s], (self.index1_, self.index2_)[1 - s]
        probs = np.full((dst.n_obs, len(vocab)), np.nan)
        for g, M in self.couplings(ROLES[s]).items():
            probs[idx_dst[g]] = M @ onehot[idx_src[g]]
        out = pd.DataFrame(probs, index=dst.obs_names.copy(), columns=vocab)
        key = key_added or f"{column}_transferred"
        matched = ~np.isnan(probs).any(1)
        best = np.full(dst.n_obs, None, dtype=object)
        best[matched] = vocab[probs[matched].argmax(1)]
        dst.obs[key] = pd.Categorical(best, categories=vocab)
        dst.obs[key + "_prob"] = np.where(matched, np.nan_to_num(probs).max(1), np.nan)
        return out

    def transition_table(self, column1: str, column2: str, *, normalize: bool = True):
        r"""Coupling mass between the labels ``column1`` of ``adata1`` and ``column2`` of
        ``adata2``: entry :math:`(k, \ell)` sums :math:`M_{ij}` over cells :math:`i` with label
        :math:`k` and partners :math:`j` with label :math:`\ell` (rows normalised to 1 with
        ``normalize``). Two annotations of the same biology give a near-diagonal table."""
        tables = []
        for a, col, name in ((self.adata1, column1, self.names[0]),
                             (self.adata2, column2, self.names[1])):
            if col not in a.obs.columns:
                raise KeyError(f"{col!r} is not a column of {name}.obs")
            tables.append(np.asarray(a.obs[col].astype(str)))
        l1, l2 = tables
        v1, v2 = np.unique(l1), np.unique(l2)
        oh2 = (l2[:, None] == v2[None, :]).astype(float)
        total = np.zeros((len(v1), len(v2)))
        for g, M in self.couplings_.items():
            i1, i2 = self.index1_[g], self.index2_[g]
            oh1 = (l1[i1][:, None] == v1[None, :]).astype(float)
            total += oh1.T @ (M @ oh2[i2])
        df = pd.DataFrame(total, index=pd.Index(v1, name=column1),
                          columns=pd.Index(v2, name=column2))
        df = df.loc[df.sum(1) > 0]
        return df.div(df.sum(1), axis=0) if normalize else df

    def diagnostics(self) -> pd.DataFrame:
        """Per matched group, quantities that need no true pairs
        (:mod:`propalign_lite.diagnostics`): cells in each object, the median effective
        number of partners of ``adata1``'s cells, the cycle consistency (x chance) and the
        mass the plan left unmatched."""
        from .diagnostics import cycle_consistency, effective_partners

        back = self.couplings("adata1")
        mass = self.to_df()
        rows = []
        for g, M in self.couplings_.items():
            rows.append({self.groupby: g, f"n_{self.names[0]}": M.shape[0],
                         f"n_{self.names[1]}": M.shape[1],
                         "effective partners": float(np.median(effective_partners(M))),
                         "cycle consistency (x chance)": cycle_consistency(M, back[g]),
                         **{c: mass.loc[g, c] for c in mass.columns if c.startswith("unmatched")}})
        return pd.DataFrame(rows).set_index(self.groupby)

    def calibration(self, *, n_bins: int = 10) -> pd.DataFrame:
        """Each classifier's expected calibration error and its fitted temperature on the
        cells it held out for validation (:mod:`propalign_lite.diagnostics`). A badly
        calibrated classifier (large ECE, temperature far from 1) gives logits whose distances
        are on the wrong scale for ``reg``."""
        from .diagnostics import expected_calibration_error, fit_temperature

        rows = {}
        for name, clf, logits, val, t in zip(self.names, (self.classifier1_, self.classifier2_),
                                            (self.logits1_, self.logits2_),
                                            (self.validation1_, self.validation2_),
                                            self.labels_):
            if val is None or not np.any(val):
                rows[name] = {"held-out cells": 0, "accuracy": np.nan, "ECE": np.nan,
                              "temperature": np.nan}
                continue
            z, y = np.asarray(logits)[val], t[val]
            acc = float((np.asarray(clf.classes_)[z.argmax(1)] == y).mean())
            rows[name] = {"held-out cells": int(np.sum(val)), "accuracy": acc,
                          "ECE": expected_calibration_error(z, y, clf.classes_, n_bins=n_bins),
                          "temperature": fit_temperature(z, y, clf.classes_)}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("object")

    def save(self, path) -> None:
        """Store the couplings and settings apart from the AnnData objects (see
        :func:`propalign_lite.alignment_io.save_alignment`)."""
        save_alignment(self, path)

    @classmethod
    def load(cls, path, adata1, adata2=None, *, modalities=None) -> "Alignment":
        """Read an alignment saved by :meth:`save` onto the same objects (see
        :func:`propalign_lite.alignment_io.read_alignment`)."""
        return cls(**read_alignment(path, adata1, adata2, modalities=modalities))

    def to_df(self) -> pd.DataFrame:
        """One row per group of either object: cells in each, whether it was matched, why not,
        the share of each object's mass the plan left unmatched (0 for balanced OT), and, for
        the groups that ``align`` solved by entropic OT in this session (``results_``), the
        solver's iterations, marginal error and whether it reached its tolerance (NaN / None
        otherwise, e.g. for a loaded alignment)."""
        t1, t2 = self.labels_
        groups = sorted(set(pd.unique(t1).tolist()) | set(pd.unique(t2).tolist()), key=str)
        key = f"{self.key_added}_mass"
        m1 = self.adata1.obs[key].to_numpy() if key in self.adata1.obs else None
        m2 = self.adata2.obs[key].to_numpy() if key in self.adata2.obs else None

        def left(m, t, g):
            if m is None or g not in self.couplings_:
                return np.nan
            return float(np.clip(1.0 - m[t == g], 0, None).mean())

        rows = [{self.groupby: g, f"n_{self.names[0]}": int((t1 == g).sum()),
                 f"n_{self.names[1]}": int((t2 == g).sum()), "matched": g in self.couplings_,
                 f"unmatched mass {self.names[0]}": left(m1, t1, g),
                 f"unmatched mass {self.names[1]}": left(m2, t2, g),
                 **self._solver_columns(g),
                 "note": self.unmatched_.get(g, "")} for g in groups]
        return pd.DataFrame(rows).set_index(self.groupby)

    def _solver_columns(self, g) -> dict:
        res = self.results_.get(g)
        if res is None or not hasattr(res, "converged"):
            return {"iterations": np.nan, "marginal error": np.nan, "converged": None}
        return {"iterations": int(res.n_iter), "marginal error": float(res.err),
                "converged": bool(res.converged)}

    def __repr__(self) -> str:
        n1 = sum(len(i) for i in self.index1_.values())
        n2 = sum(len(i) for i in self.index2_.values())
        kinds = Counter("dense" if isinstance(M, np.ndarray) else type(M).__name__
                        for M in self.couplings_.values())
        unmatched = ("none" if not self.unmatched_ else
                     ", ".join(f"{g!r} ({why})" for g, why in self.unmatched_.items()))
        method = self.match_kwargs.get("method", "ot")
        reg = f", reg={self.match_kwargs['reg']}" if "reg" in self.match_kwargs else ""
        return (f"Alignment of {self.names[0]} ({self.adata1.n_obs} cells) and {self.names[1]} "
                f"({self.adata2.n_obs} cells) by {self.groupby!r}\n"
                f"    method={method!r}{reg}; {len(self.couplings_)} groups matched "
                f"({n1} / {n2} cells); couplings: "
                + ", ".join(f"{v} {k}" for k, v in kinds.items()) + "\n"
                f"    unmatched groups: {unmatched}\n"
                f"    logits: .obsm[{self.key_added + '_logits'!r}] "
                f"({self.logits1_.shape[1]} columns); settings: .uns[{self.key_added!r}]")


def load_alignment(path, adata1, adata2=None, *, modalities=None) -> Alignment:
    """An :class:`Alignment` saved by :meth:`Alignment.save`, read onto the same objects
    (``propalign_lite.align.load`` is this function; see
    :func:`propalign_lite.alignment_io.read_alignment` for the checks)."""
    return Alignment.load(path, adata1, adata2, modalities=modalities)
