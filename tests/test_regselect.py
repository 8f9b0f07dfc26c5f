"""reg chosen without true pairs (regselect.py) and align(reg="auto")."""
import anndata as ad
import numpy as np
import pandas as pd
import pytest

from propalign_lite import align, load_alignment
from propalign_lite.matchers import match_groups
from propalign_lite.regselect import REG_GRID, RegSelection, select_reg

FAST = dict(epochs=3, width=16, lr=1e-2, batch_size=64)


def scores(n=120, groups=3, seed=0):
    """True propensity-like scores: a continuous spread within each group."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) % groups
    z = rng.normal(size=(n, groups)) + 4.0 * np.eye(groups)[t]
    return t, z, rng


def test_cv_is_the_mean_squared_error_of_the_projected_check_scores():
    t, z, rng = scores()
    e1, e2 = z + 0.3 * rng.normal(size=z.shape), z + 0.3 * rng.normal(size=z.shape)
    f1, f2 = z + 0.3 * rng.normal(size=z.shape), z + 0.3 * rng.normal(size=z.shape)
    sel = select_reg(e1, t, e2, t, f1, f2, regs=(0.1, 1.0), keep_couplings=True)
    c1, c2 = f1 - f1.mean(1, keepdims=True), f2 - f2.mean(1, keepdims=True)
    for reg in (0.1, 1.0):
        M = match_groups(e1, t, e2, t, reg=reg)
        assert all(np.allclose(M[g], sel.couplings[reg][g]) for g in M)
        err = sum(((c1[t == g] - M[g] @ c2[t == g]) ** 2).sum() for g in M) / len(t)
        assert sel.table.loc[reg, "cv"] == pytest.approx(err, rel=1e-12)
    uni = sum(((c1[t == g] - c2[t == g].mean(0)) ** 2).sum() for g in range(3)) / len(t)
    assert sel.uniform == pytest.approx(uni, rel=1e-12)
    assert sel.table["cv / uniform"].to_numpy() == pytest.approx(sel.table["cv"] / uni)


def test_exact_scores_choose_the_sharpest_reg_and_noise_the_smoothest():
    t, z, rng = scores(seed=1)
    regs = (0.01, 0.1, 1.0, 10.0)
    # the same cells in both objects with exact scores: sharp matching is the truth
    assert select_reg(z, t, z, t, z, z, regs=regs).reg == 0.01
    # coupling logits that carry nothing about the check scores: average over the group
    e1, e2 = rng.normal(size=z.shape), rng.normal(size=z.shape)
    assert select_reg(e1, t, e2, t, z, z + rng.normal(size=z.shape), regs=regs).reg == 10.0


def test_ties_go_to_the_larger_reg_and_the_grid_is_sorted():
    t, z, _ = scores(seed=2)
    sel = select_reg(z, t, z, t, np.zeros_like(z), np.zeros_like(z), regs=(1.0, 0.1, 10.0))
    assert list(sel.table.index) == [0.1, 1.0, 10.0] and sel.reg == 10.0
    assert RegSelection.from_dict(sel.to_dict()).table.equals(sel.table)


def test_select_reg_bad_inputs():
    t, z, _ = scores()
    with pytest.raises(ValueError, match="same cells"):
        select_reg(z, t, z, t, z[:-1], z)
    with pytest.raises(ValueError, match="positive"):
        select_reg(z, t, z, t, z, z, regs=(0.1, -1.0))
    with pytest.raises(ValueError, match="method='ot'"):
        select_reg(z, t, z, t, z, z, method="snn")
    assert 0.05 in REG_GRID


def make(n, *, seed, prefix):
    rng = np.random.default_rng(seed)
    t = np.arange(n) % 3
    x = rng.normal(size=(n, 5)) + 2.0 * np.eye(3, 5)[t]
    obs = pd.DataFrame({"kind": pd.Categorical(np.array(list("abc"))[t])},
                       index=[f"{prefix}{i}" for i in range(n)])
    return ad.AnnData(x, obs=obs)


def test_align_auto_matches_at_the_chosen_reg_with_the_same_classifiers(tmp_path):
    a1, a2 = make(90, seed=1, prefix="r"), make(60, seed=2, prefix="p")
    fixed = align(a1, a2, groupby="kind", classifier=FAST, random_state=3, key_added="fixed")
    auto = align(a1, a2, groupby="kind", classifier=FAST, random_state=3, reg="auto",
                 reg_grid=(0.02, 0.2, 2.0))
    # the coupling's classifiers are those of reg=0.05: only the check pair is new
    np.testing.assert_array_equal(auto.logits1_, fixed.logits1_)
    sel = auto.reg_selection_
    assert sel.reg in (0.02, 0.2, 2.0) and sel.reg == sel.table["cv"].idxmin()
    t1, t2 = auto.labels_
    expect = match_groups(auto.logits1_, t1, auto.logits2_, t2, reg=sel.reg)
    for g, M in auto.couplings_.items():
        np.testing.assert_allclose(M, expect[g])
    uns = a1.uns["propalign"]
    assert uns["reg"] == sel.reg and uns["reg_selection"]["regs"] == [0.02, 0.2, 2.0]
    # the selection travels with a saved alignment
    auto.save(tmp_path / "a.npz")
    back = load_alignment(tmp_path / "a.npz", a1, a2)
    assert back.reg_selection_.reg == sel.reg and back.reg_selection_.table.equals(sel.table)
    assert fixed.reg_selection_ is None


@pytest.mark.parametrize("bad, msg", [
    (dict(reg="Auto"), "'auto' or a positive number"),
    (dict(reg="auto", method="snn"), "method must be 'ot'"),
    (dict(reg="auto", match_kwargs=dict(reg=0.1)), "must not set 'reg'"),
])
def test_align_auto_bad_settings(bad, msg):
    a1, a2 = make(30, seed=1, prefix="r"), make(30, seed=2, prefix="p")
    with pytest.raises(ValueError, match=msg):
        align(a1, a2, groupby="kind", classifier=FAST, **bad)


def test_align_auto_refuses_a_fitted_pair():
    a1, a2 = make(30, seed=1, prefix="r"), make(30, seed=2, prefix="p")
    aln = align(a1, a2, groupby="kind", classifier=FAST)
    with pytest.raises(ValueError, match="not a fitted pair"):
        align(a1, a2, groupby="kind", reg="auto",
              classifier=(aln.classifier1_, aln.classifier2_))
