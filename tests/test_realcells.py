"""The units and tables of the realcells chapter (experiments/realcells.py,
experiments/realcells_tables.py) on the real BMMC cells with tiny settings."""
from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from propalign_book.experiments import UNITS
from propalign_book.experiments import realcells as rc
from propalign_book.experiments import realcells_tables as rt
from propalign_book.profiles import get_profile


def _tiny(**kw):
    s = rc.dataset_settings(get_profile("realcells", "ci"), "bmmc")
    s.update(classifier=dict(epochs=3, width=32), vae=dict(width=16, latent_dim=4, epochs=2,
                                                           lr=1e-2, batch_size=128),
             probe_epochs=2, n_pcs=10)
    s.update(kw)
    return s


@pytest.fixture(scope="module", autouse=True)
def needs_bmmc():
    root = os.environ.get("PROPALIGN_DATA_DIR")
    if not root or not (pathlib.Path(root) / "bmmc_cite_subset").is_dir():
        pytest.skip("real BMMC subset not available locally")


def test_dataset_settings_merge_the_data_set_block():
    s = rc.dataset_settings(get_profile("realcells", "ci"), "mop")
    assert s["dataset"] == "mop" and "seeds" not in s and "bmmc" not in s and "mop" not in s
    assert s["reg"] == 0.05 and s["transfer_features"] == 10
    with pytest.raises(ValueError, match="dataset must be"):
        rc.dataset_settings(get_profile("realcells", "ci"), "pbmc")


def test_matching_unit_scores_every_method_within_type():
    assert UNITS["realcells.matching"] is rc.realcells_matching
    rec = rc.realcells_matching(_tiny(), 1)
    assert set(rec["scores"]) == {"PS+OT", "PS+SNN", "VAE+OT", "Random", "Uniform"}
    assert sorted(rec["unmatched"]) == ["MK/E prog", "Plasma cell IGKC+", "Plasmablast IGKC+",
                                        "Plasmablast IGKC-"]
    assert rec["n_cells"] == 596
    uni = rec["scores"]["Uniform"]
    assert uni["trace"] == pytest.approx(uni["chance"]) and uni["rank"] == 0.5
    assert uni["foscttm_textbook"] == pytest.approx(0.5, abs=0.02)   # ties counted half
    for s in rec["scores"].values():
        assert 0 <= s["rank"] <= 1 and 0 <= s["foscttm_paper"] <= 1
    # a seed outside vae_seeds skips the VAE, and the tables cope with it
    rec5 = rc.realcells_matching(_tiny(), 5)
    assert "VAE+OT" not in rec5["scores"]
    values = rt.matching_values([rec, rec5])
    assert len(values["VAE+OT"]["rank"]) == 1 and len(values["PS+OT"]["rank"]) == 2
    table = rt.matching_table(values, paper={"PS+OT": (0.3, 0.29, 0.31)})
    assert table.loc["PS+OT", "paper's FOSCTTM (Table 2, 90k cells)"].startswith("0.3000")
    claims = rt.matching_claims(rt.medians(values), "BMMC")
    assert all(isinstance(c["holds"], (bool, np.bool_)) for c in claims)


def test_transfer_unit_has_no_true_partner_and_scores_within_type():
    rec = rc.realcells_transfer(_tiny(), 2)
    assert rec["n_target"] + rec["n_source"] <= 600 and rec["n_features"] == 134
    tr = rec["transfer"]
    assert tr["per-type mean"]["within"] == pytest.approx(0.0, abs=1e-9)
    assert tr["paired kNN"]["within"] > tr["random partner"]["within"]
    assert set(tr) >= {"PS+OT", "PS+SNN", "VAE+OT", "paired kNN", "PS+OT (reg 0.5)"}
    summary = rt.transfer_summary(rt.medians(rt.transfer_values([rec])))
    assert summary["knn_within"] == tr["paired kNN"]["within"]


def test_prediction_unit_records_both_losses():
    rec = rc.realcells_prediction(_tiny(probe_epochs=2), 1)
    assert rec["r2"]["True Pairs"]["R2 (Unbiased)"] is None
    assert all(isinstance(rec["r2"][c][k], float) for c in ("Rand", "PS+OT", "VAE+OT")
               for k in ("R2 (MSE)", "R2 (Unbiased)"))
    with pytest.raises(ValueError, match="BMMC"):
        rc.realcells_prediction(dict(_tiny(), dataset="mop"), 1)


def test_halves_and_feature_correlations():
    t = np.array(list("aaaabbbcc"))
    a = rc.halves(t, np.random.default_rng(0))
    assert [int(a[t == g].sum()) for g in "abc"] == [2, 2, 1]
    truth = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    tt = np.array(list("aaabbb"))
    means = np.array([[1.0]] * 3 + [[11.0]] * 3)
    cor = rc.feature_correlations(means, truth, tt)
    assert cor["overall"][0] > 0.98 and cor["within"][0] == 0.0     # the label alone
    cor = rc.feature_correlations(truth, truth, tt)
    assert cor["within"][0] == pytest.approx(1.0)
