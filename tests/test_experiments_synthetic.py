"""The synthetic chapter's experiment unit, learning-curve settings and claims."""
import numpy as np
import pytest

from propalign_book.experiments import UNITS
from propalign_book.experiments import synthetic as ex
from propalign_book.profiles import get_profile
from propalign_book.report import claims_table


@pytest.fixture(scope="module")
def tiny():
    s = get_profile("synthetic", "ci", n_train=192, n_val=96, n_test=288, epochs=1,
                    batch_size=64, image_size=32)
    s = {k: v for k, v in s.items() if k not in ("seeds", "curve_fractions")}
    s["display_seed"] = 1
    return s


def test_modality_seeds_differ_per_view_and_per_seed():
    a, b = ex.modality_seeds(1)
    assert a != b and (a, b) != ex.modality_seeds(2) and (a, b) == ex.modality_seeds(1)


def test_unit_record(tiny):
    rec = UNITS["synthetic.seed"](tiny, 1)
    assert set(rec["scores"]) == set(ex.METHODS)
    for name, sc in rec["scores"].items():
        assert np.isfinite(sc["MSE"]) and 0 <= sc["Trace"] <= 1
    # the uniform coupling's trace is exactly chance and its MSE the within-group variance
    assert rec["scores"]["Uniform"]["Trace"] == pytest.approx(rec["chance_trace"])
    _, _, test = ex.synthetic_data(tiny)
    within = np.mean([test.z[test.t == g].var(axis=0).mean() for g in np.unique(test.t)])
    assert rec["scores"]["Uniform"]["MSE"] == pytest.approx(within, rel=1e-9)
    assert rec["modality_seeds"] == list(ex.modality_seeds(1))
    d = rec["display"]
    assert d["emb1"].shape == (len(d["group_rows"]), 12) and d["zhat"]["PS+OT"].shape[1] == 4
    # deterministic: the same settings and seed give the same numbers
    again = UNITS["synthetic.seed"](tiny, 1)
    assert again["scores"] == rec["scores"]
    other = UNITS["synthetic.seed"]({**tiny, "display_seed": None}, 2)
    assert "display" not in other and other["scores"] != rec["scores"]


def test_learning_curve_settings_and_budget():
    s = {"n_train": 1000, "batch_size": 64, "epochs": 3}
    out = ex.learning_curve_settings(s, [0.01, 0.5])
    assert [x["n_train"] for x in out] == [64, 500]         # at least one batch
    assert ex.budget(out[1]) == 1500 and s["n_train"] == 1000   # input unchanged
    with pytest.raises(ValueError, match="fractions"):
        ex.learning_curve_settings(s, [0.0])


def test_synthetic_data_needs_its_keys():
    with pytest.raises(KeyError, match="n_test"):
        ex.synthetic_data({"image_size": 32, "n_train": 10, "n_val": 10, "data_seed": 0})


def test_table1_claims_verdicts():
    good = {"PS+OT": {"MSE": [0.030], "Trace": [0.02]}, "PS+SNN": {"MSE": [0.05], "Trace": [0.01]},
            "Rand": {"MSE": [0.07], "Trace": [0.001]}, "Uniform": {"MSE": [0.035], "Trace": [0.001]}}
    claims = ex.table1_claims(good, chance=0.001)
    assert all(c["holds"] for c in claims)
    bad = {**good, "PS+OT": {"MSE": [0.040], "Trace": [0.005]}}
    verdicts = dict(zip([c["claim"] for c in claims],
                        [c["holds"] for c in ex.table1_claims(bad, chance=0.001)]))
    assert not verdicts["PS+OT's trace is at least 10 times chance"]
    assert not verdicts["PS+OT has a lower latent MSE than the uniform coupling (it predicts "
                        "more than the group mean)"]
    table = claims_table(ex.table1_claims(bad, chance=0.001) + [{"claim": "x", "holds": None}])
    assert set(table["verdict"]) == {"holds", "does not hold", "cannot be tested here"}


def test_table1_claims_exact_score_row():
    res = {"PS+OT": {"MSE": [0.040], "Trace": [0.01]}, "PS+SNN": {"MSE": [0.05], "Trace": [0.005]},
           "Rand": {"MSE": [0.07], "Trace": [0.001]}, "Uniform": {"MSE": [0.035], "Trace": [0.001]}}
    exact = {"scores": {"Exact PS+OT": {"MSE": 0.0330, "Trace": 0.004},
                        "Uniform": {"MSE": 0.0350, "Trace": 0.001}}}
    assert len(ex.table1_claims(res, chance=0.001)) == 5
    row = ex.table1_claims(res, chance=0.001, exact=exact)[-1]
    assert row["holds"] and "0.0330 vs 0.0350" in row["ours"]
    exact["scores"]["Exact PS+OT"]["MSE"] = 0.036
    assert not ex.table1_claims(res, chance=0.001, exact=exact)[-1]["holds"]


def test_scores_table_collects_per_seed_values():
    recs = [{"scores": {m: {"MSE": 0.1 * i, "Trace": 0.01 * i} for m in ex.METHODS}}
            for i in (1, 2, 3)]
    table = ex.scores_table(recs)
    assert set(table) == set(ex.METHODS)
    assert table["PS+OT"]["MSE"] == [0.1, 0.2, 0.30000000000000004]
    assert table["Uniform"]["Trace"] == [0.01, 0.02, 0.03]
