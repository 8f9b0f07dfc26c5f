"""Tests of the chapters' experiment units (tiny settings) and their aggregation helpers."""
from __future__ import annotations

import numpy as np
import pytest

from propalign_book.experiments import UNITS, cite_data, settings_for
from propalign_book.experiments.citeseq import (citeseq_claims, citeseq_settings,
                                                match_types, scores_table)
from propalign_book.experiments.prediction import (COUPLINGS, fit_probe, prediction_claims,
                                                   prediction_settings, r2_table, within_types)
from propalign_book.runner import run_units
from propalign_book.store import ResultsStore

TINY_CITE = dict(data="simulated", n_cells=900, n_pcs=8, data_seed=0,
                 simulator=dict(n_cell_types=4, n_genes=120, n_proteins=12, batches=3,
                                iid_holdout_fraction=0.25))


def test_registry_has_the_chapters_units_with_profile_settings():
    for name in ("prediction.seed", "citeseq.seed", "toy.matching"):
        assert name in UNITS
        for profile in ("ci", "paper"):
            s = settings_for(name, profile)
            assert "seeds" not in s and s.get("profile") == profile
    assert settings_for("prediction.seed", "ci")["detail_seed"] == 1
    assert citeseq_settings({"seeds": [4, 5], "a": 1}) == {"a": 1, "detail_seed": 4}
    assert prediction_settings({"seeds": [], "a": 1})["detail_seed"] is None


@pytest.mark.parametrize("profile", ["ci", "paper"])
def test_one_route_from_a_profile_to_every_unit_and_variant(profile):
    """The chapters pass their settings dict, the CLI the profile's name: both routes give the
    same settings (hence the same store key) for every unit and every variant it runs."""
    from propalign_book.experiments import chapter_of, variants_of
    from propalign_book.profiles import PROFILES, get_profile
    from propalign_book.store import settings_hash

    for name in UNITS:
        for params in variants_of(name, profile):
            by_name = settings_for(name, profile, **params)
            assert "seeds" not in by_name
            settings_hash(by_name)                      # JSON-able
            if chapter_of(name) in PROFILES:
                chapter = get_profile(chapter_of(name), profile)
                assert settings_for(name, chapter, **params) == by_name


def test_units_with_variants_get_the_settings_their_chapter_uses():
    from propalign_book.experiments import variants_of
    from propalign_book.profiles import get_profile
    from propalign_book.run import plan

    abl = get_profile("ablations", "ci")
    assert variants_of("ablations.specific") == [{"strength": s}
                                                 for s in abl["specific_strengths"]]
    for strength in abl["specific_strengths"]:
        s = settings_for("ablations.specific", "ci", strength=strength)
        assert s["strength"] == strength
        assert s["cite"]["simulator"]["specific_strength"] == strength
        if abl["specific_n_cells"]:                      # the chapter's smaller data set
            assert s["cite"]["n_cells"] == abl["specific_n_cells"]
    planned = {(n, tuple(p.items())) for n, p, _, _ in plan(["realcells.matching",
                                                              "realcells.prediction"], "ci")}
    assert planned == {("realcells.matching", (("dataset", "bmmc"),)),
                       ("realcells.matching", (("dataset", "mop"),)),
                       ("realcells.prediction", (("dataset", "bmmc"),))}
    curve = [settings_for("synthetic.seed", "ci", fraction=f)
             for f in get_profile("synthetic", "ci")["curve_fractions"]]
    assert all(c["display_seed"] is None for c in curve)
    with pytest.raises(ValueError, match="takes no parameters"):
        settings_for("trust.autoreg", "ci", dataset="bmmc")


def test_baselines_read_the_citeseq_chapters_records_from_the_store():
    """No side file: the baselines page asks the store for the CITE-seq chapter's units, with
    the settings the CITE-seq chapter runs them with."""
    import pathlib

    page = (pathlib.Path(__file__).parents[1] / "book" / "baselines.py").read_text()
    assert 'run_units("citeseq.seed", settings_for("citeseq.seed", cite_set)' in page
    assert "load_results" not in page and "_results" not in page


def test_within_types_is_block_diagonal_and_row_normalised():
    t = np.array(["a", "a", "b", "b", "b", "c"])
    x = np.random.default_rng(0).normal(size=(6, 2))
    M = within_types(t, x, x + 0.01, method="ot", reg=0.05).toarray()
    assert np.allclose(M.sum(axis=1), 1)
    assert M[0, 2:].sum() == 0 and M[5, 5] == pytest.approx(1.0)   # singleton matched to itself


def test_match_types_skips_singletons_quietly():
    t = np.array(["a", "a", "b"])
    x = np.arange(6.0).reshape(3, 2)
    assert list(match_types(x, x, t, method="ot")) == ["a"]


def test_prediction_unit_tiny_run_and_aggregation(tmp_path):
    settings = dict(TINY_CITE, width=16, clf_epochs=2, clf_lr=1e-3, vae_epochs=2,
                    probe_epochs=2, probe_lr=1e-3, reverse=True, detail_seed=1, profile="test")
    records = run_units("prediction.seed", settings, [1, 2], store=tmp_path, progress=False)
    assert set(records[0]["curves"]) == set(records[0]["reverse"]) and records[0]["curves"]
    assert records[1]["curves"] == {} and records[0]["r2"]["True Pairs"]["R2 (Unbiased)"] is None
    assert len(records[0]["curves"]["PS+OT|R2 (MSE)"]) == 2
    r2 = r2_table(records)
    assert [len(r2[c]["R2 (MSE)"]) for c in COUPLINGS] == [2, 2, 2, 2]
    assert r2["True Pairs"]["R2 (Unbiased)"] == []
    assert set(prediction_claims(r2)) and all(isinstance(v, (bool, np.bool_))
                                              for v in prediction_claims(r2).values())
    # the store gives back exactly the same records
    again = run_units("prediction.seed", settings, [1, 2], store=tmp_path, progress=False)
    assert [r["_run"]["source"] for r in again] == ["store", "store"]
    assert again[0]["r2"] == records[0]["r2"] and again[0]["curves"] == records[0]["curves"]
    cite = cite_data(settings)
    train, val = cite.split_view("train"), cite.split_view("val")
    with pytest.raises(ValueError, match="direction must be"):
        fit_probe(train, val, None, settings, 1, unbiased=False, direction="sideways")


def test_citeseq_unit_tiny_run_and_claims(tmp_path):
    settings = dict(TINY_CITE, width=16, epochs=2, batch_size=64, lr=1e-3, detail_seed=3,
                    profile="test")
    records = run_units("citeseq.seed", settings, [3, 4], store=tmp_path, progress=False)
    first = records[0]
    assert len(first["monitor"]["FOSCTTM"]) == len(first["monitor"]["epoch"]) == 2
    assert set(first["embedding_2d"]["xy"]) == {"protein (ADT) classifier logits",
                                                "RNA classifier logits"}
    assert "monitor" not in records[1] and records[1]["per_group"] == {}
    res = scores_table(records)
    assert len(res["PS+OT"]["FOSCTTM"]) == 2
    assert 0 <= first["scores"]["PS+OT"]["FOSCTTM"] <= 1
    claims = citeseq_claims({"PS+OT": {"FOSCTTM": [0.3], "Trace": [0.2]},
                             "PS+SNN": {"FOSCTTM": [0.4], "Trace": [0.1]}}, chance_trace=0.05)
    assert all(claims.values())
    assert not citeseq_claims({"PS+OT": {"FOSCTTM": [0.5], "Trace": [0.05]},
                               "PS+SNN": {"FOSCTTM": [0.4], "Trace": [0.1]}}, 0.05)[
        "PS+OT has a lower FOSCTTM than PS+SNN"]
    key = first["_run"]["key"]
    assert ResultsStore(tmp_path).status(key) == "ok"


def test_baselines_claims_and_verdict():
    from propalign_book import paper
    from propalign_book.experiments.baselines import (paper_claims_1, paper_claims_2,
                                                      per_seed_rows)
    from propalign_book.report import claims_verdict, seed_count

    pap1 = {m: {k: v[k][0] for k in ("MSE", "Trace")} for m, v in paper.TABLE1.items()}
    claims = paper_claims_1(pap1, 1 / 1667)
    assert claims["PS+OT has the lowest latent MSE"] and claims["PS+OT has the highest trace"]
    pap2 = {m: {k: v[k][0] for k in ("FOSCTTM", "Trace")} for m, v in paper.TABLE2.items()}
    c2 = paper_claims_2(pap2)
    assert c2["PS+OT has the lowest FOSCTTM"] and "GLUE+SNN has a lower FOSCTTM than GLUE+OT" in c2
    flipped = dict(c2, **{"PS+OT has the lowest FOSCTTM": False})
    table, text = claims_verdict(flipped, c2)
    assert list(table.columns) == ["this run", "paper's table"] and len(table) == len(c2)
    assert text.startswith(f"**Agreement with the paper:** {len(c2) - 1} of {len(c2)}")
    assert "*PS+OT has the lowest FOSCTTM* (false here, true in the paper)" in text
    assert claims_verdict(c2, c2)[1].endswith("table.")
    assert seed_count([1]) == "1 seed" and seed_count([1, 2]) == "2 seeds"
    recs = [{"VAE+OT": {"MSE": 1.0}, "VAE+SNN": {"MSE": 2.0}},
            {"VAE+OT": {"MSE": 3.0}, "VAE+SNN": {"MSE": 4.0}}]
    assert per_seed_rows(recs) == {"VAE+SNN": {"MSE": [2.0, 4.0]}, "VAE+OT": {"MSE": [1.0, 3.0]}}


def test_baselines_settings_and_image_helpers():
    from propalign_book.experiments.baselines import baselines_settings, channels_first, pixels

    s = settings_for("baselines.vae_images", "ci")
    assert "image_vae_seeds" not in s and s["images"]["image_size"] > 0
    assert s["cite"]["data"] in ("simulated", "geo")
    b = baselines_settings({"image_vae_seeds": [1], "x": 1},
                           {"image_size": 8, "n_train": 1, "n_val": 1, "n_test": 1,
                            "data_seed": 3, "epochs": 9},
                           {"data": "simulated", "n_cells": 5, "n_pcs": 2, "data_seed": 0})
    assert b == {"x": 1, "images": {"image_size": 8, "n_train": 1, "n_val": 1, "n_test": 1,
                                    "data_seed": 3},
                 "cite": {"data": "simulated", "n_cells": 5, "n_pcs": 2, "data_seed": 0,
                          "simulator": None}}
    img = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    assert channels_first(img).shape == (2, 3, 4, 4)
    assert pixels(img).shape == (2, 48) and pixels(img).max() <= 1.0


def test_scot_images_unit_tiny(tmp_path):
    s = settings_for("baselines.scot_images", "ci")
    s["images"] = dict(image_size=16, n_train=20, n_val=10, n_test=150, data_seed=10)
    s["image_scot_max_per_group"] = 15
    rec = run_units("baselines.scot_images", s, [0], store=tmp_path, progress=False)[0]
    assert rec["n_used"] <= 15 * len(rec["group_sizes"]) and sum(rec["group_sizes"]) == 150
    assert 0 < rec["uniform"]["MSE"] and rec["chance"] >= 1 / 15


def test_baselines_cost_table_names_every_unit_the_page_shows():
    """The page's cost table maps each shown record's unit to a label: every unit the page
    runs or reads must have one (a KeyError on 'citeseq.seed' once stopped the build)."""
    import ast
    import pathlib

    tree = ast.parse((pathlib.Path(__file__).parents[1] / "book" / "baselines.py").read_text())
    used = {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("run_units", "run")
            and node.args and isinstance(node.args[0], ast.Constant)}
    labels = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "labels")
    assert used and used <= set(labels), sorted(used - set(labels))
