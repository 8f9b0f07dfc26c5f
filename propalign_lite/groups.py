"""Which groups of two labelled objects can be matched, and what happens to the others.

Real data always have groups that are too small in one object, or present in one object only.
:func:`resolve_groups` decides, once, which groups :func:`propalign_lite.align` matches, and
reports every other group with the reason (see its docstring for the policies).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._validation import check_int

__all__ = ["SMALL_GROUP_POLICIES", "resolve_groups"]

SMALL_GROUP_POLICIES = ("skip", "raise")


def resolve_groups(t1, t2, *, names=("adata1", "adata2"), groupby: str = "group",
                   min_group_size: int = 2, small_groups="skip"):
    """The groups that can be matched, and what happens to the others.

    A group can be matched when both objects hold at least ``min_group_size`` of its cells.
    ``small_groups`` says what to do with a group that is too small in either object:
    ``"skip"`` leaves it out (reported), ``"raise"`` stops with an error naming it, and a
    mapping ``{label: parent label}`` first merges every small group that has an entry into
    its parent, in both objects (e.g. a rare T-cell subtype into ``"T cell"``); groups that
    are still too small after merging are skipped. A group present in one object only is
    always left out and reported.

    Returns
    -------
    t1, t2 : ndarray
        The labels after merging (a copy; unchanged without a mapping).
    shared : set
        The groups to match.
    unmatched : dict
        ``{group: reason}`` of the groups left out.
    merged : dict
        ``{small label: parent label}`` of the merges made.

    Example
    -------
    >>> import numpy as np
    >>> t1 = np.array(["a"] * 5 + ["b"] * 5 + ["c"])
    >>> t2 = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"] * 2)
    >>> _, _, shared, unmatched, _ = resolve_groups(t1, t2)
    >>> sorted(shared), unmatched
    (['a', 'b'], {'c': '1 cell(s) in adata1, 2 in adata2 (min_group_size=2)', 'd': 'only in adata2'})
    >>> t1m, _, shared, _, merged = resolve_groups(t1, t2, small_groups={"c": "b"})
    >>> sorted(shared), merged, int((t1m == "b").sum())
    (['a', 'b'], {'c': 'b'}, 6)
    """
    min_group_size = check_int(min_group_size, "min_group_size", min_value=1)
    merge = None
    if isinstance(small_groups, Mapping) or isinstance(small_groups, pd.Series):
        merge = dict(small_groups)
    elif small_groups not in SMALL_GROUP_POLICIES:
        raise ValueError(f"small_groups must be one of {SMALL_GROUP_POLICIES} or a mapping "
                         f"{{label: parent label}}, got {small_groups!r}")
    t1, t2 = np.array(t1, dtype=object), np.array(t2, dtype=object)

    def sizes(g):
        return int((t1 == g).sum()), int((t2 == g).sum())

    def small_ones():
        shared = set(pd.unique(t1).tolist()) & set(pd.unique(t2).tolist())
        return {g: sizes(g) for g in shared if min(sizes(g)) < min_group_size}

    merged = {}
    if merge:
        for g in sorted(small_ones(), key=str):
            if g in merge:
                parent = merge[g]
                if parent is None or (isinstance(parent, float) and np.isnan(parent)):
                    raise ValueError(f"small_groups[{g!r}] must be a label, got {parent!r}")
                t1[t1 == g] = parent
                t2[t2 == g] = parent
                merged[g] = parent
    small = small_ones()
    if small and small_groups == "raise":
        desc = "; ".join(f"{g!r}: {n[0]} in {names[0]}, {n[1]} in {names[1]}"
                         for g, n in sorted(small.items(), key=lambda kv: str(kv[0])))
        raise ValueError(f"groupby={groupby!r}: group(s) with fewer than min_group_size="
                         f"{min_group_size} cells: {desc}. Remove or merge them first, or pass "
                         "small_groups='skip' (or a mapping to parent labels).")
    g1, g2 = set(pd.unique(t1).tolist()), set(pd.unique(t2).tolist())
    unmatched = {g: (f"{small[g][0]} cell(s) in {names[0]}, {small[g][1]} in {names[1]} "
                     f"(min_group_size={min_group_size})" if g in small else
                     f"only in {names[0] if g in g1 else names[1]}")
                 for g in sorted((g1 ^ g2) | set(small), key=str)}
    return t1, t2, (g1 & g2) - set(small), unmatched, merged
