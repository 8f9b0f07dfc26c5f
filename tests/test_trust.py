"""Units of the trust chapter (experiments/trust.py) on tiny settings."""
import numpy as np
import pytest

from propalign_lite.experiments import UNITS
from propalign_lite.experiments import trust
from propalign_lite.experiments._registry import unit_settings
from propalign_lite.profiles import get_profile


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
    assert bal["orphan_mass"] == pytest.approx(1.0) and bal["orphan_auc"] == 0.5
    assert bal["unmatched_fraction"] == 0.0 and 0 < ub["unmatched_fraction"] < 1
    assert ub["orphan_mass"] < 1 and 0 <= ub["orphan_auc"] <= 1


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
