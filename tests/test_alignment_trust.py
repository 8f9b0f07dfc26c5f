"""What a user without true pairs gets from an Alignment: label transfer, a transition table,
diagnostics, calibration (diagnostics.py), and save / load (alignment_io.py)."""
import anndata as ad
import numpy as np
import pandas as pd
import pytest

from propalign_lite import Alignment, align, load_alignment
from propalign_lite.diagnostics import (coupling_agreement, cycle_consistency,
                                        effective_partners, expected_calibration_error,
                                        fit_temperature, reliability_curve, softmax)

FAST = dict(epochs=3, width=16, lr=1e-2, batch_size=64)


def make(n, *, seed, prefix):
    rng = np.random.default_rng(seed)
    t = np.arange(n) % 3
    x = rng.normal(size=(n, 5)) + 3.0 * np.eye(3, 5)[t]
    obs = pd.DataFrame({"kind": pd.Categorical(np.array(list("abc"))[t]),
                        "fine": [f"{'abc'[k]}{i % 2}" for i, k in enumerate(t)]},
                       index=[f"{prefix}{i}" for i in range(n)])
    return ad.AnnData(x, obs=obs)


@pytest.fixture()
def aligned():
    a1, a2 = make(60, seed=1, prefix="r"), make(45, seed=2, prefix="p")
    return a1, a2, align(a1, a2, groupby="kind", classifier=FAST, random_state=0)


def test_transfer_labels_is_the_projection_of_one_hot_labels(aligned):
    a1, a2, aln = aligned
    probs = aln.transfer_labels("fine")
    assert probs.shape == (60, 6) and np.allclose(probs.sum(1), 1)
    M = aln.couplings_["a"]
    rows, cols = aln.index1_["a"], aln.index2_["a"]
    expected = M @ (a2.obs["fine"].to_numpy()[cols][:, None] == probs.columns.to_numpy()).astype(float)
    np.testing.assert_allclose(probs.iloc[rows].to_numpy(), expected)
    # a fine label never crosses its group
    assert (probs.iloc[rows][["b0", "b1", "c0", "c1"]] == 0).all().all()
    assert set(a1.obs["fine_transferred"].dropna()) <= set(probs.columns)
    assert a1.obs["fine_transferred_prob"].between(0, 1).all()
    with pytest.raises(KeyError, match="'nope' is not a column"):
        aln.transfer_labels("nope")


def test_transition_table_rows_sum_to_one_and_stay_in_group(aligned):
    _, _, aln = aligned
    tab = aln.transition_table("fine", "fine")
    np.testing.assert_allclose(tab.sum(1), 1)
    assert tab.loc["a0", ["b0", "b1", "c0", "c1"]].sum() == 0
    raw = aln.transition_table("kind", "kind", normalize=False)
    np.testing.assert_allclose(np.diag(raw.to_numpy()), [20, 20, 20])   # every row's mass


def test_diagnostics_and_calibration(aligned):
    _, _, aln = aligned
    d = aln.diagnostics()
    assert list(d.index) == ["a", "b", "c"]
    assert (d["effective partners"] >= 1).all() and (d["effective partners"] <= 15).all()
    assert (d["cycle consistency (x chance)"] > 0).all()
    cal = aln.calibration()
    assert (cal["held-out cells"] > 0).all() and cal["ECE"].between(0, 1).all()
    assert (cal["temperature"] > 0).all()


def test_diagnostic_functions_on_known_couplings():
    u = np.full((4, 4), 0.25)
    assert np.allclose(effective_partners(u), 4) and np.allclose(effective_partners(np.eye(4)), 1)
    assert coupling_agreement(u, np.eye(4)) == pytest.approx(0.25)
    assert cycle_consistency(u, u) == pytest.approx(1.0)          # chance
    assert cycle_consistency(np.eye(4), np.eye(4)) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="rows of M must sum to 1"):
        effective_partners(np.ones((2, 2)))
    with pytest.raises(ValueError, match="transposed shape"):
        cycle_consistency(np.eye(2), np.full((3, 2), 0.5))


def test_calibration_tools_on_a_known_case():
    rng = np.random.default_rng(0)
    n, classes = 4000, np.array(["x", "y", "z"])
    true = rng.normal(size=(n, 3)) * 2
    y = np.array([rng.choice(3, p=p) for p in softmax(true)])
    assert expected_calibration_error(true, classes[y], classes) < 0.03    # calibrated
    over = 3.0 * true                                                      # overconfident
    assert expected_calibration_error(over, classes[y], classes) > 0.1
    assert fit_temperature(over, classes[y], classes) == pytest.approx(3.0, rel=0.15)
    c, a, cnt = reliability_curve(true, classes[y], classes, n_bins=5)
    assert cnt.sum() == n and np.all((c >= 0) & (c <= 1))
    with pytest.raises(ValueError, match="not among the classifier's classes"):
        expected_calibration_error(true, np.array(["w"] * n), classes)


def test_save_load_round_trip_and_refusal_when_cells_change(aligned, tmp_path):
    a1, a2, aln = aligned
    path = tmp_path / "aln.npz"
    aln.save(path)
    again = load_alignment(path, a1, a2)
    assert isinstance(again, Alignment) and again.match_kwargs == aln.match_kwargs
    pd.testing.assert_frame_equal(again.transfer("adata2", key_added="t2"),
                                  aln.transfer("adata2", key_added="t1"))
    assert align.load is load_alignment
    # logits restored when the object lost them (e.g. a fresh copy)
    fresh = a1.copy()
    del fresh.obsm["propalign_logits"]
    assert np.allclose(load_alignment(path, fresh, a2).logits1_, aln.logits1_)
    shuffled = a2[::-1].copy()
    with pytest.raises(ValueError, match="adata2 does not hold the cells"):
        load_alignment(path, a1, shuffled)
    with pytest.raises(ValueError, match="adata1 does not hold the cells"):
        load_alignment(path, a1[:50].copy(), a2)
    with pytest.raises(FileNotFoundError):
        load_alignment(tmp_path / "none.npz", a1, a2)
    with pytest.raises(ValueError, match="must end in .npz"):
        aln.save(tmp_path / "aln.pkl")


def test_save_load_implicit_couplings(tmp_path):
    a1, a2 = make(60, seed=3, prefix="r"), make(45, seed=4, prefix="p")
    aln = align(a1, a2, groupby="kind", classifier=FAST, random_state=0,
                match_kwargs=dict(online=True))
    aln.save(tmp_path / "imp.npz")
    again = load_alignment(tmp_path / "imp.npz", a1, a2)
    np.testing.assert_allclose(again.transfer("adata2", key_added="x").to_numpy(),
                               aln.transfer("adata2", key_added="y").to_numpy(), atol=1e-10)


def test_ece_by_hand():
    # three cells predicted "x" at 0.9 and right, one predicted "x" at 0.6 and wrong
    z = np.array([[np.log(9.0), 0.0]] * 3 + [[np.log(1.5), 0.0]])
    labels = np.array(["x", "x", "x", "y"])
    assert expected_calibration_error(z, labels, np.array(["x", "y"])) == pytest.approx(
        (3 * 0.1 + 1 * 0.6) / 4)


def test_an_alignment_saved_from_a_gpu_run_loads_and_matches_on_the_cpu(aligned, tmp_path):
    """align(device="cuda") records the device in match_kwargs; a machine without a GPU
    that loads the file must still match the reverse direction (on the CPU)."""
    a1, a2, aln = aligned
    aln.match_kwargs["device"] = "cuda"          # as recorded by a run on a GPU
    aln.save(tmp_path / "gpu.npz")
    again = load_alignment(tmp_path / "gpu.npz", a1, a2)
    assert "device" not in again.match_kwargs
    reverse = again.couplings("adata1")
    assert set(reverse) == set(aln.couplings_)
    for g, M in reverse.items():
        np.testing.assert_allclose(np.asarray(M).sum(1), 1.0)
