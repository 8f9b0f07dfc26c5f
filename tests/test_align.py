"""Tests of the AnnData front door: propalign_lite.align (align.py) and Alignment (alignment.py)."""
from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from propalign_lite import Alignment, PropensityClassifier, align

FAST = dict(epochs=3, width=16, lr=1e-2, batch_size=64)
GROUPS = np.array(["a", "b", "c"])


def make(n, d, *, seed, groups=GROUPS, prefix="c", sparse_x=False):
    rng = np.random.default_rng(seed)
    t = np.arange(n) % len(groups)
    x = rng.normal(size=(n, d)) + 3.0 * np.eye(len(groups), d)[t]
    x = np.abs(x)
    obs = pd.DataFrame({"kind": pd.Categorical(groups[t])},
                       index=[f"{prefix}{i}" for i in range(n)])
    a = ad.AnnData(sparse.csr_matrix(x) if sparse_x else x, obs=obs,
                   var=pd.DataFrame(index=[f"f{j}" for j in range(d)]))
    a.obsm["X_pca"] = x[:, :4] + 0.1
    return a


def run(a1, a2, **kw):
    kw.setdefault("classifier", FAST)
    return align(a1, a2, groupby="kind", random_state=0, **kw)


@pytest.fixture(scope="module")
def aligned():
    a1, a2 = make(90, 6, seed=1), make(60, 5, seed=2, prefix="p")
    return a1, a2, run(a1, a2)


# ------------------------------------------------------------------------------ align()
def test_align_writes_logits_and_settings(aligned):
    a1, a2, aln = aligned
    assert isinstance(aln, Alignment)
    assert a1.obsm["propalign_logits"].shape == (90, 3)
    assert a2.obsm["propalign_logits"].shape == (60, 3)
    assert a1.uns["propalign"]["groupby"] == "kind"
    assert a1.uns["propalign"]["role"] == "adata1" and a2.uns["propalign"]["role"] == "adata2"
    assert a1.uns["propalign"]["groups"] == ["a", "b", "c"]
    assert sorted(aln.couplings_) == ["a", "b", "c"]
    for g, M in aln.couplings_.items():
        assert M.shape == (30, 20)
        np.testing.assert_allclose(M.sum(1), 1.0, atol=1e-8)
    # the classifiers were trained on a stratified validation split inside each object
    assert len(aln.classifier1_.history_["val_loss"]) == FAST["epochs"]


def test_transfer_is_the_barycentric_projection(aligned):
    a1, a2, aln = aligned
    imp = aln.transfer("adata2")
    assert isinstance(imp, pd.DataFrame) and imp.shape == (90, 5)
    assert list(imp.columns) == list(a2.var_names)
    assert (imp.index == a1.obs_names).all()
    assert a1.obsm["propalign_adata2"] is imp
    for g, M in aln.couplings_.items():
        want = M @ a2.X[aln.index2_[g]]
        np.testing.assert_allclose(imp.to_numpy()[aln.index1_[g]], want)
    assert "propalign_adata2" in a1.uns["propalign"]["transfers"]


def test_transfer_reverse_direction_and_obsm_source(aligned):
    a1, a2, aln = aligned
    rev = aln.transfer("adata1", obsm="X_pca", key_added="rna_pcs")
    assert isinstance(rev, np.ndarray) and rev.shape == (60, 4)
    assert a2.obsm["rna_pcs"] is rev
    for g, M in aln.couplings("adata1").items():
        assert M.shape == (20, 30)
        np.testing.assert_allclose(M.sum(1), 1.0, atol=1e-8)
    assert np.isfinite(rev).all()


def test_uniform_coupling_transfers_group_means():
    a1, a2 = make(60, 6, seed=3), make(45, 5, seed=4, prefix="p")
    aln = run(a1, a2, method="uniform")
    imp = aln.transfer("adata2").to_numpy()
    t1, t2 = a1.obs["kind"].to_numpy(), a2.obs["kind"].to_numpy()
    for g in GROUPS:
        np.testing.assert_allclose(imp[t1 == g], np.tile(a2.X[t2 == g].mean(0), ((t1 == g).sum(), 1)))


def test_sample_pairs(aligned):
    a1, a2, aln = aligned
    pairs = aln.sample_pairs(random_state=0)
    assert list(pairs.columns) == ["adata1", "adata2", "kind"]
    assert len(pairs) == 90 and list(pairs["adata1"]) == list(a1.obs_names)
    assert (a2.obs.loc[pairs["adata2"], "kind"].to_numpy() == pairs["kind"].to_numpy()).all()
    some = aln.sample_pairs(200, random_state=1, as_index=True)
    assert len(some) == 200 and some["adata1"].dtype.kind == "i"
    assert (a1.obs["kind"].to_numpy()[some["adata1"]] == a2.obs["kind"].to_numpy()[some["adata2"]]).all()
    counts = np.bincount(some["adata1"], minlength=90)
    assert counts.min() >= 2 and counts.max() <= 3          # spread evenly over the cells
    pd.testing.assert_frame_equal(aln.sample_pairs(7, random_state=5),
                                  aln.sample_pairs(7, random_state=5))
    with pytest.raises(ValueError, match="n must be"):
        aln.sample_pairs(0)


def test_to_df_and_repr(aligned):
    _, _, aln = aligned
    df = aln.to_df()
    assert list(df.index) == ["a", "b", "c"]
    assert df["matched"].all() and (df["n_adata1"] == 30).all() and (df["n_adata2"] == 20).all()
    text = repr(aln)
    assert "3 groups matched" in text and "'kind'" in text and "unmatched groups: none" in text


# ------------------------------------------------------------------------------ awkward inputs
def test_sparse_x_unused_categories_and_sparse_layer():
    a1 = make(60, 6, seed=5, sparse_x=True)
    a2 = make(45, 5, seed=6, prefix="p", sparse_x=True)
    a1.obs["kind"] = a1.obs["kind"].cat.add_categories(["never"])
    a2.layers["counts"] = sparse.csr_matrix(a2.X * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # unused categories are not "unmatched groups"
        aln = run(a1, a2)
    assert sorted(aln.couplings_) == ["a", "b", "c"] and not aln.unmatched_
    np.testing.assert_allclose(aln.transfer("adata2", layer="counts").to_numpy(),
                               2 * aln.transfer("adata2").to_numpy())
    assert "propalign_adata2_counts" in a1.obsm


def test_group_in_one_object_only_is_reported_not_dropped():
    a1 = make(80, 6, seed=7, groups=np.array(["a", "b", "c", "d"]))
    a2 = make(60, 5, seed=8, prefix="p")
    with pytest.warns(UserWarning, match="'d' only in adata1"):
        aln = run(a1, a2)
    assert aln.unmatched_ == {"d": "only in adata1"}
    assert a1.uns["propalign"]["unmatched_groups"] == ["d"]
    df = aln.to_df()
    assert not df.loc["d", "matched"] and df.loc["d", "n_adata2"] == 0
    imp = aln.transfer("adata2").to_numpy()
    is_d = (a1.obs["kind"] == "d").to_numpy()
    assert np.isnan(imp[is_d]).all() and np.isfinite(imp[~is_d]).all()
    assert "'d' (only in adata1)" in repr(aln)
    assert a1.obsm["propalign_logits"].shape == (80, 3)   # trained on the shared groups


def test_clashing_obs_names():
    a1, a2 = make(60, 6, seed=9), make(60, 5, seed=10)      # both named c0 ... c59
    aln = run(a1, a2)
    pairs = aln.sample_pairs(random_state=0, as_index=True)
    assert (a1.obs["kind"].to_numpy()[pairs["adata1"]]
            == a2.obs["kind"].to_numpy()[pairs["adata2"]]).all()
    assert (aln.transfer("adata2").index == a1.obs_names).all()


def test_h5ad_round_trip_after_transfer(aligned, tmp_path):
    a1, a2, aln = aligned
    aln.transfer("adata2")
    a1.write_h5ad(tmp_path / "a1.h5ad")
    back = ad.read_h5ad(tmp_path / "a1.h5ad")
    assert back.uns["propalign"]["method"] == "ot"
    np.testing.assert_allclose(np.asarray(back.obsm["propalign_adata2"]),
                               np.asarray(a1.obsm["propalign_adata2"]))


def test_mudata_with_two_modalities():
    mudata = pytest.importorskip("mudata")
    rna, prot = make(60, 6, seed=11, prefix="r"), make(45, 5, seed=12, prefix="p")
    md = mudata.MuData({"rna": rna, "prot": prot})
    aln = align(md, groupby="kind", classifier=FAST, use_rep1="X_pca", random_state=0)
    assert aln.names == ("rna", "prot")
    assert md.mod["rna"].obsm["propalign_logits"].shape == (60, 3)
    imp = aln.transfer("prot")
    assert md.mod["rna"].obsm["propalign_prot"].shape == (60, 5) and imp.shape == (60, 5)
    assert list(aln.sample_pairs(3, random_state=0).columns) == ["rna", "prot", "kind"]
    with pytest.raises(KeyError, match="modalities"):
        align(md, groupby="kind", modalities=("rna", "adt"), classifier=FAST)


def test_fitted_classifiers_are_reused_and_validation_column():
    a1, a2 = make(60, 6, seed=13), make(45, 5, seed=14, prefix="p")
    a1.obs["val"] = np.arange(60) % 5 == 0
    a2.obs["val"] = np.arange(45) % 5 == 0
    first = run(a1, a2, validation="val")
    logits = a1.obsm["propalign_logits"].copy()
    again = run(a1, a2, classifier=(first.classifier1_, first.classifier2_), method="snn",
                key_added="snn")
    assert again.classifier1_ is first.classifier1_
    np.testing.assert_array_equal(a1.obsm["snn_logits"], logits)
    template = PropensityClassifier("mlp", **FAST, random_state=3)
    third = run(a1, a2, classifier=template, validation=None)
    assert third.classifier1_ is not template and not hasattr(template, "model_")


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("kwargs, err, match", [
    (dict(groupby="cell_type"), KeyError, "groupby='cell_type' is not a column of adata1.obs"),
    (dict(use_rep1="X_umap"), KeyError, "use_rep1='X_umap' is not a key of adata1.obsm"),
    (dict(use_rep2="X_umap"), KeyError, "use_rep2='X_umap' is not a key of adata2.obsm"),
    (dict(validation="nope"), KeyError, "validation='nope'"),
    (dict(validation=1.5), ValueError, "validation must be"),
    (dict(classifier="mlp"), TypeError, "classifier must be"),
    (dict(classifier=dict(depth=3)), ValueError, "classifier:"),
    (dict(classifier=PropensityClassifier("cnn")), ValueError, "'mlp' encoder"),
    (dict(key_added=""), ValueError, "key_added"),
])
def test_bad_arguments(kwargs, err, match):
    a1, a2 = make(30, 6, seed=15), make(30, 5, seed=16, prefix="p")
    kwargs = {"groupby": "kind", "classifier": FAST, **kwargs}
    with pytest.raises(err, match=match):
        align(a1, a2, **kwargs)


def test_bad_data():
    a1, a2 = make(30, 6, seed=17), make(30, 5, seed=18, prefix="p")
    nan_groups = a1.copy()
    nan_groups.obs.loc["c0", "kind"] = np.nan
    with pytest.raises(ValueError, match="groupby='kind' has 1 missing"):
        run(nan_groups, a2)
    bad_x = a1.copy()
    bad_x.X[3, 2] = np.inf
    with pytest.raises(ValueError, match=r"adata1.X contains 1 NaN or infinite"):
        run(bad_x, a2)
    bad_rep = a2.copy()
    bad_rep.obsm["X_pca"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"adata2.obsm\['X_pca'\] contains"):
        run(a1, bad_rep, use_rep2="X_pca")
    tiny = a2[~((a2.obs["kind"] == "c").to_numpy() & (np.arange(30) > 2))].copy()   # 1 "c" cell
    with pytest.raises(ValueError, match=r"fewer than min_group_size=2 cells: 'c': 10 in adata1, 1 in adata2"):
        run(a1, tiny, small_groups="raise")
    with pytest.raises(ValueError, match=r"small_groups must be one of"):
        run(a1, tiny, small_groups="drop")
    one = a2.copy()
    one.obs["kind"] = pd.Categorical(["z"] * 30)
    with pytest.raises(ValueError, match="share 0 group"):
        run(a1, one)
    with pytest.raises(ValueError, match="adata2 is missing"):
        align(a1, groupby="kind")
    with pytest.raises(TypeError, match="adata2 must be an AnnData"):
        align(a1, a2.X, groupby="kind")


def test_bad_transfer_arguments(aligned):
    a1, a2, aln = aligned
    with pytest.raises(KeyError, match="layer='counts' is not a layer of adata2"):
        aln.transfer("adata2", layer="counts")
    with pytest.raises(KeyError, match="obsm='X_umap' is not a key of adata1.obsm"):
        aln.transfer("adata1", obsm="X_umap")
    with pytest.raises(ValueError, match="layer or obsm, not both"):
        aln.transfer("adata2", layer="x", obsm="y")
    with pytest.raises(ValueError, match="source must be one of"):
        aln.transfer("protein")
    a2.layers["bad"] = a2.X.copy()
    a2.layers["bad"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"adata2.layers\['bad'\] must be numeric and finite"):
        aln.transfer("adata2", layer="bad")
    del a2.layers["bad"]


def test_match_kwargs_and_seeded_random_matching():
    a1, a2 = make(60, 6, seed=19), make(45, 5, seed=20, prefix="p")
    first = run(a1, a2, method="random")
    clfs = (first.classifier1_, first.classifier2_)
    again = run(a1, a2, classifier=clfs, method="random")
    for g in first.couplings_:
        np.testing.assert_array_equal(first.couplings_[g], again.couplings_[g])
    snn = run(a1, a2, classifier=clfs, method="snn", match_kwargs=dict(k=2, random_state=1))
    assert snn.match_kwargs == {"k": 2, "method": "snn"} and "method='snn'" in repr(snn)


def test_validation_column_that_empties_a_group():
    a1, a2 = make(30, 6, seed=21), make(30, 5, seed=22, prefix="p")
    a1.obs["val"] = (a1.obs["kind"] == "a").to_numpy()
    with pytest.raises(ValueError, match="without training cells"):
        run(a1, a2, validation="val")


def test_docstring_examples_run():
    import doctest
    import importlib

    module = importlib.import_module("propalign_lite.align")   # the module, not the function
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 5


# ------------------------------------------------------------------------------ small groups
def test_small_groups_are_skipped_and_reported_by_default():
    a1, a2 = make(60, 6, seed=21), make(45, 5, seed=22, prefix="p")
    keep = ~((a2.obs["kind"] == "c").to_numpy() & (np.arange(45) > 2))      # 1 "c" cell left
    tiny = a2[keep].copy()
    with pytest.warns(UserWarning, match=r"'c' 20 cell\(s\) in adata1, 1 in adata2"):
        aln = run(a1, tiny)
    assert sorted(aln.couplings_) == ["a", "b"]
    assert "min_group_size=2" in aln.unmatched_["c"]
    out = aln.transfer("adata2")
    assert out.loc[a1.obs["kind"] == "c"].isna().all().all()
    assert out.loc[a1.obs["kind"] != "c"].notna().all().all()
    assert a1.uns["propalign"]["unmatched_groups"] == ["c"]
    assert aln.to_df().loc["c", "matched"] == False   # noqa: E712 (numpy bool)


def test_small_groups_merged_into_parent_labels():
    a1, a2 = make(60, 6, seed=23), make(45, 5, seed=24, prefix="p")
    keep = ~((a2.obs["kind"] == "c").to_numpy() & (np.arange(45) > 2))
    tiny = a2[keep].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # nothing left out, nothing to warn
        aln = run(a1, tiny, small_groups={"c": "b"})
    assert aln.merged_ == {"c": "b"} and not aln.unmatched_
    assert sorted(aln.couplings_) == ["a", "b"]
    assert aln.couplings_["b"].shape == (40, 16)       # 20 + 20 "b"/"c" rows, 15 + 1 columns
    assert a1.uns["propalign"]["merged_groups"] == {"c": "b"}
    assert not aln.transfer("adata2").isna().any().any()


def test_min_group_size_one_matches_singletons():
    a1, a2 = make(30, 6, seed=25), make(30, 5, seed=26, prefix="p")
    keep = ~((a2.obs["kind"] == "c").to_numpy() & (np.arange(30) > 2))
    aln = run(a1, a2[keep].copy(), min_group_size=1)
    assert aln.couplings_["c"].shape == (10, 1) and not aln.unmatched_


def test_reg_recorded_is_the_one_used():
    a1, a2 = make(30, 6, seed=27), make(30, 5, seed=28, prefix="p")
    run(a1, a2, match_kwargs={"reg": 0.5})
    assert a1.uns["propalign"]["reg"] == 0.5
    run(a1, a2, method="snn")
    assert "reg" not in a1.uns["propalign"]


@pytest.fixture(scope="module")
def bmmc():
    from propalign_lite.datasets import load_bmmc_cite

    try:
        return load_bmmc_cite(n_pcs=20)
    except FileNotFoundError as err:       # outside this project's machines: no local copy
        pytest.skip(f"real BMMC subset not available: {str(err).splitlines()[0]}")


def test_align_on_the_real_bmmc_cells(bmmc):
    """What a new user tries first: the 600 real cells, 41 types, 4 of them single cells; the
    two objects made unpaired (different cells) and of unequal sizes."""
    rna, adt = bmmc["rna"], bmmc["adt"]
    rng = np.random.default_rng(0)
    order = rng.permutation(rna.n_obs)
    r, p = rna[order[:350]].copy(), adt[order[350:]].copy()
    p = p[p.obs["cell_type"] != "CD14+ Mono"].copy()       # a type present in RNA only
    with pytest.warns(UserWarning, match="cannot be matched") as caught:
        aln = align(r, p, groupby="cell_type", use_rep1="X_pca", classifier=FAST,
                    random_state=0)
    msg = str(caught[0].message)
    assert "'CD14+ Mono' only in adata1" in msg
    matched, left = set(aln.couplings_), set(aln.unmatched_)
    assert not matched & left
    assert matched | left == set(r.obs["cell_type"]) | set(p.obs["cell_type"])
    for g, M in aln.couplings_.items():
        assert M.shape == ((r.obs["cell_type"] == g).sum(), (p.obs["cell_type"] == g).sum())
        assert min(M.shape) >= 2
        assert np.allclose(M.sum(1), 1)
    prot = aln.transfer("adata2")
    rows = r.obs["cell_type"].isin(matched).to_numpy()
    assert prot.shape == (350, 134) and prot[rows].notna().all().all()
    assert prot[~rows].isna().all().all()


def test_to_df_shows_each_groups_solver_result():
    """align kept the solvers' results nowhere: a group stopped at max_iter with an error
    below the warning's 1e-4 was invisible (the atlas benchmark recorded no unconverged
    group while 36 of 45 had stopped short of 1e-6). ``results_`` and ``to_df`` show them."""
    a1, a2 = make(90, 6, seed=1), make(60, 5, seed=2, prefix="p")
    short = run(a1, a2, match_kwargs=dict(max_iter=2, tol=1e-12, warn=False))
    df = short.to_df()
    assert set(short.results_) == {"a", "b", "c"}
    assert (df["iterations"] == 2).all() and (df["converged"] == False).all()  # noqa: E712
    assert (df["marginal error"] > 1e-12).all()
    done = run(a1, a2, match_kwargs=dict(tol=1e-6))
    df = done.to_df()
    assert (df["converged"] == True).all() and (df["marginal error"] < 1e-6).all()  # noqa: E712
    assert (df["iterations"] < 1000).all()


def test_align_device_reaches_the_block_passes_of_entropic_ot(monkeypatch):
    """align(device=...) moves entropic OT's block passes too, not only the classifiers
    (it used to reach the classifiers only); match_kwargs may still set the solver apart."""
    import importlib

    align_module = importlib.import_module("propalign_lite.align")   # the function shadows it

    real_train = align_module.train_pair
    seen = []

    def train_on_the_cpu(classifier, seeds, device, *args):
        seen.append(("classifiers", device))
        return real_train(classifier, seeds, "cpu", *args)

    class Stop(Exception):
        pass

    def record(*args, **kw):
        seen.append(("matching", kw.get("device", "cpu")))
        raise Stop

    monkeypatch.setattr(align_module, "train_pair", train_on_the_cpu)
    monkeypatch.setattr(align_module, "match_groups", record)
    a1, a2 = make(30, 6, seed=3), make(30, 5, seed=4, prefix="p")
    for kw, want in ((dict(device="cuda"), "cuda"),
                     (dict(device="cuda", match_kwargs=dict(device="cpu")), "cpu"),
                     (dict(device="cuda", method="snn"), "cpu"),
                     (dict(), "cpu")):
        seen.clear()
        with pytest.raises(Stop):
            run(a1, a2, **kw)
        assert seen == [("classifiers", kw.get("device", "cpu")), ("matching", want)], kw


def test_align_on_a_torch_device_gives_the_numpy_transfer():
    """device="cpu:0" takes the torch block passes that device="cuda" takes on a GPU (CI has
    none): the large groups' couplings live on that device, and the transfer is numpy's
    to the solver's tolerance."""
    a1, a2 = make(240, 6, seed=5), make(210, 5, seed=6, prefix="p")
    kw = dict(match_kwargs=dict(tol=1e-9, dense_max=1000))          # every group online
    plain = run(a1.copy(), a2.copy(), **kw)
    torch_run = run(a1.copy(), a2.copy(), device="cpu:0", **kw)
    assert {M.device for M in torch_run.couplings_.values()} == {"cpu:0"}
    assert {M.device for M in plain.couplings_.values()} == {"cpu"}
    np.testing.assert_allclose(torch_run.transfer("adata2").to_numpy(),
                               plain.transfer("adata2").to_numpy(), atol=1e-6)
