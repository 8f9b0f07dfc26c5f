"""Units of the trust chapter (experiments/trust.py) on tiny settings."""
import numpy as np
import pytest

from propalign_book.experiments import UNITS
from propalign_book.experiments import trust
from propalign_book.experiments._registry import unit_settings
from propalign_book.profiles import get_profile


def _tiny(**kw):
    s = unit_settings(get_profile("trust", "ci"))
    s.update(n_cells=900, n_cell_types=5, n_genes=200, n_proteins=20, batches=2, n_pcs=10,
             width=32, epochs=4, lr=1e-2, reg_ms=[1.0], regs=[0.5], datasets=["sim"],
             diag_cells=600)
    s.update(kw)
    return s


def test_unbalanced_unit_marks_the_orphans_and_keeps_balanced_mass_at_one():
    assert UNITS["trust.unbalanced"] is trust.trust_unbalanced
    rec = trust.trust_unbalanced(_tiny(), 1)
    assert rec["hidden_type"] not in (rec["host_type"], rec["drop_type"])
    assert rec["n_orphans"] > 0 and rec["n_host_rna"] > rec["n_orphans"]
    assert any("only in adata1" in v for v in rec["unmatched"].values())
    bal, ub = rec["runs"]["balanced"], rec["runs"]["unbalanced (reg_m=1)"]
    assert bal["host"]["mass_flagged"] == pytest.approx(1.0) and bal["host"]["auc"] == 0.5
    assert bal["host"]["unmatched_fraction"] == 0.0 and 0 < ub["host"]["unmatched_fraction"] < 1
    assert ub["host"]["mass_flagged"] < 1 and 0 <= ub["host"]["auc"] <= 1
    tab = trust.label_table([rec, rec], "host", "orphans", "partnered cells")
    assert list(tab.index) == ["balanced", "unbalanced (reg_m=1)"]
    assert tab.loc["balanced", "mass kept by orphans"] == pytest.approx(1.0)
    assert tab.loc["balanced", "trace × chance (partnered cells)"] == pytest.approx(
        bal["host"]["trace_partnered"] / bal["host"]["chance"])
    # the halved type: half its protein cells removed, balanced OT still keeps all mass
    assert rec["halved_type"] not in (rec["host_type"], rec["drop_type"], rec["hidden_type"])
    assert rec["n_halved"][1] == rec["n_halved"][0] - rec["n_halved"][0] // 2
    assert bal["halved"]["mass_flagged"] == pytest.approx(1.0) and bal["halved"]["auc"] == 0.5
    assert bal["halved"]["chance"] == pytest.approx(1 / rec["n_halved"][1])
    assert ub["halved"]["mass_partnered"] < 1


def test_auc_by_hand():
    score = np.array([0.9, 0.8, 0.3, 0.1])
    assert trust._auc(score, np.array([True, True, False, False])) == 1.0
    assert trust._auc(score, np.array([False, False, True, True])) == 0.0
    assert trust._auc(np.ones(4), np.array([True, False, True, False])) == 0.5


def test_diagnostics_unit_pairs_each_diagnostic_with_the_truth():
    rec = trust.trust_diagnostics(_tiny(), 1)
    assert {r["dataset"] for r in rec["groups"]} == {"sim"}
    for g in rec["groups"]:
        assert g["trace_x"] >= 0 and 0 <= g["rank"] <= 1
        assert 1 <= g["effective_partners"] <= g["n"] + 1e-9
        assert 0 <= g["agreement"] <= 1 + 1e-9 and g["cycle"] > 0
    assert 0 <= rec["runs"][0]["ece_rna"] <= 1


def test_autoreg_unit_sweeps_the_grid_on_cells_and_digits():
    from propalign_book.experiments import trust_reg

    assert UNITS["trust.autoreg"] is trust_reg.trust_autoreg
    s = _tiny(autoreg_datasets=["sim", "digits"], reg_grid=[0.05, 0.5, 5.0],
              digits=dict(split=[30, 10, 20], data_seed=0, width=16, epochs=3, lr=1e-2,
                          batch_size=64, pair=["pix", "kar"]))
    rec = trust_reg.trust_autoreg(s, 1)
    for name in ("sim", "digits"):
        d = rec["datasets"][name]
        assert d["regs"] == [0.05, 0.5, 5.0] and d["chosen"] == d["regs"][int(np.argmin(d["cv"]))]
        assert len(d["truth"]["r"]) == 3 and d["truth_uniform"]["trace_x"] == pytest.approx(1.0)
        # the sharper the coupling, the more mass on the true partner (x chance, >= 1 here)
        assert d["truth"]["trace_x"][0] > d["truth"]["trace_x"][-1] > 0.99
    rows = rec["datasets"]["digits"]["groups"]
    assert {r["reg"] for r in rows} == {0.5} and len(rows) == 10       # regs of _tiny, 10 digits
    assert all(0 <= r["agreement"] <= 1 + 1e-9 and r["cycle"] > 0 for r in rows)
    tab = trust_reg.autoreg_table([rec])
    assert list(tab["data set"]) == ["sim", "digits"]
    row = tab.iloc[0]
    d = rec["datasets"]["sim"]
    assert row["at oracle"] == max(d["truth"]["r"]) and row["at 0.05"] == d["truth"]["r"][0]


def test_autoreg_table_takes_the_lowest_mse_as_the_oracle():
    from propalign_book.experiments.trust_reg import autoreg_table

    d = {"regs": [0.05, 0.5], "chosen": 0.05, "truth": {"mse": [0.04, 0.03]},
         "truth_uniform": {"mse": 0.035}}
    row = autoreg_table([{"seed": 1, "datasets": {"images": d}}]).iloc[0]
    assert row["oracle reg"] == 0.5 and row["at chosen"] == 0.04 and row["uniform"] == 0.035


def test_truth_r_is_the_median_feature_correlation_of_the_projection():
    from propalign_book.experiments.realcells import feature_correlations
    from propalign_book.experiments.trust_reg import _truth

    rng = np.random.default_rng(0)
    t = np.repeat([0, 1], 5)
    y = rng.normal(size=(10, 3))
    M = {g: rng.dirichlet(np.ones(5), size=5) for g in (0, 1)}
    pred = np.vstack([M[0] @ y[:5], M[1] @ y[5:]])
    out = _truth(M, t, y=y, z=y)
    assert out["r"] == pytest.approx(np.median(feature_correlations(pred, y, t)["overall"]))
    assert out["mse"] == pytest.approx(np.mean([np.mean((y[t == g] - M[g] @ y[t == g]) ** 2)
                                                for g in (0, 1)]))
    assert out["trace_x"] == pytest.approx(np.mean([np.trace(M[g]) for g in (0, 1)]))
