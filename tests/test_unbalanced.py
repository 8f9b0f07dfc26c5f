"""Unbalanced entropic OT (unbalanced.py), through match / match_groups / align."""
import numpy as np
import ot
import pytest

from propalign_lite import match, match_groups
from propalign_lite.matchers import euclidean_cost
from propalign_lite.sinkhorn import sinkhorn
from propalign_lite.unbalanced import (check_reg_m, sinkhorn_unbalanced,
                                       sinkhorn_unbalanced_online)


@pytest.mark.parametrize("reg, reg_m", [(0.5, 1.0), (0.1, (0.5, 2.0)), (0.05, 3.0),
                                         (0.2, (np.inf, 0.3))])
def test_plan_equals_pots_unbalanced_sinkhorn(reg, reg_m):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(35, 3)), rng.normal(size=(22, 3)) + 0.4
    C = euclidean_cost(x, y)
    res = sinkhorn_unbalanced(C, reg, reg_m=reg_m, tol=1e-13, max_iter=50000)
    ref = ot.unbalanced.sinkhorn_unbalanced(np.full(35, 1 / 35), np.full(22, 1 / 22), C, reg,
                                            reg_m, numItermax=50000, stopThr=1e-15)
    assert res.converged
    np.testing.assert_allclose(res.plan, ref, atol=1e-10 * ref.max() + 1e-14)
    np.testing.assert_allclose(res.row_mass, ref.sum(1), atol=1e-12)
    online = sinkhorn_unbalanced_online(x, y, reg, reg_m=reg_m, tol=1e-13, max_iter=50000)
    np.testing.assert_allclose(online.alpha, res.alpha, atol=1e-8)


def test_infinite_reg_m_is_balanced_ot():
    rng = np.random.default_rng(4)
    C = euclidean_cost(rng.normal(size=(20, 2)), rng.normal(size=(30, 2)))
    res = sinkhorn_unbalanced(C, 0.3, reg_m=np.inf, tol=1e-13, max_iter=20000)
    bal = sinkhorn(C, 0.3, tol=1e-12)
    np.testing.assert_allclose(res.plan, bal.plan, atol=1e-9)
    assert res.unmatched_fraction(1) < 1e-9 and res.unmatched_fraction(2) < 1e-9


def test_cells_without_a_partner_keep_their_mass_and_the_coupling_is_row_stochastic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = x[:40] + 0.05 * rng.normal(size=(40, 3))        # rows 40-59 have no counterpart
    M, res = match(x, y, reg=0.05, reg_m=1.0, return_result=True)
    np.testing.assert_allclose(M.sum(1), 1)
    share = res.row_mass * 60
    assert share[40:].mean() < 0.75 < share[:40].mean()
    Mb, resb = match(x, y, reg=0.05, return_result=True)
    # the matched rows put more mass on their true partner than under balanced OT
    assert np.trace(M[:40, :40]) > np.trace(Mb[:40, :40])
    Mo = match(x, y, reg=0.05, reg_m=1.0, online=True)
    np.testing.assert_allclose(Mo.block(), M, atol=1e-9)
    results = {}
    match_groups(x, np.zeros(60), y, np.zeros(40), reg_m=1.0, results=results)
    assert results[0.0].unmatched_fraction(1) > 0.1


@pytest.mark.parametrize("bad, msg", [(0, "reg_m\\[0\\]"), (-1.0, "reg_m"), ("1", "reg_m"),
                                      ((1.0, 2.0, 3.0), "a pair"), ((1.0, np.nan), "reg_m\\[1\\]")])
def test_bad_reg_m(bad, msg):
    with pytest.raises(ValueError, match=msg):
        check_reg_m(bad)
    with pytest.raises(ValueError, match=msg):
        match(np.eye(3), np.eye(3), reg_m=bad)


def test_align_reports_the_mass_left_behind():
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(5)
    def obj(n, shift, prefix):
        t = np.arange(n) % 2
        x = rng.normal(size=(n, 4)) + 3.0 * np.eye(2, 4)[t] + shift
        return ad.AnnData(x, obs=pd.DataFrame({"g": pd.Categorical(np.array(["a", "b"])[t])},
                                              index=[f"{prefix}{i}" for i in range(n)]))
    a1, a2 = obj(80, 0.0, "r"), obj(30, 0.0, "p")
    from propalign_lite import align

    aln = align(a1, a2, groupby="g", reg_m=0.5, classifier=dict(epochs=3, width=16),
                random_state=0)
    df = aln.to_df()
    assert (df["unmatched mass adata1"] > 0).all()
    assert a1.uns["propalign"]["reg_m"] == [0.5, 0.5]
    assert np.isfinite(a1.obs["propalign_mass"]).all()
    assert aln.couplings("adata1")["a"].shape == (15, 40)
    bal = align(a1, a2, groupby="g", classifier=dict(epochs=3, width=16), random_state=0)
    assert (bal.to_df()["unmatched mass adata1"] == 0).all()
    assert (a1.obs["propalign_mass"] == 1).all()
