import warnings

import numpy as np
import ot
import pytest

from propalign_lite import block_coupling, match, match_groups
from propalign_lite.matchers import euclidean_cost, sinkhorn, snn_coupling


def _pot_log_sinkhorn(x, y, reg=0.05, n_iter=20000, tol=1e-12):
    n1, n2 = len(x), len(y)
    C = ot.dist(x, y, metric="euclidean")
    return ot.sinkhorn(np.full(n1, 1 / n1), np.full(n2, 1 / n2), C, reg,
                       method="sinkhorn_log", numItermax=n_iter, stopThr=tol, log=True)


@pytest.mark.parametrize("n1,n2,d,scale", [(60, 60, 3, 0.5), (40, 70, 5, 3.0), (80, 50, 2, 0.3)])
def test_sinkhorn_matches_pot(n1, n2, d, scale):
    # at convergence the plan is POT's log-domain plan (POT run until its error is < 1e-12)
    rng = np.random.default_rng(n1 + n2)
    x, y = rng.normal(size=(n1, d)) * scale, rng.normal(size=(n2, d)) * scale
    G, log = _pot_log_sinkhorn(x, y)
    assert log["err"][-1] < 1e-12
    M = match(x, y, method="ot", reg=0.05, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(M, G / G.sum(1, keepdims=True), atol=1e-8)


def test_sinkhorn_marginals_and_logdomain_stability():
    rng = np.random.default_rng(1)
    # costs ~ 100 with reg 0.05: exp(-C/reg) underflows everywhere without stabilisation
    x, y = rng.normal(size=(30, 3)) * 40, rng.normal(size=(30, 3)) * 40
    res = sinkhorn(euclidean_cost(x, y), 0.05, max_iter=5000)
    assert np.isfinite(res.plan).all() and res.converged
    np.testing.assert_allclose(res.plan.sum(1), 1 / 30, atol=1e-10)
    np.testing.assert_allclose(res.plan.sum(0), 1 / 30, atol=1e-10)
    # POT's log-domain solver needs 1000s of iterations here; where it converges, it agrees
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G, log = _pot_log_sinkhorn(x / 40, y / 40, reg=0.5, tol=1e-11)
    res = sinkhorn(euclidean_cost(x / 40, y / 40), 0.5, tol=1e-11)
    assert res.converged and log["err"][-1] < 1e-11
    np.testing.assert_allclose(res.plan, G, atol=1e-10)


def test_euclidean_cost_matches_pot():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(15, 4))
    np.testing.assert_allclose(euclidean_cost(x, y), ot.dist(x, y, metric="euclidean"), atol=1e-12)


def test_emd_is_permutation_and_matches_pot():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(25, 3))
    y = x[rng.permutation(25)] + 1e-3 * rng.normal(size=(25, 3))
    M = match(x, y, method="emd")
    assert set(np.unique(M)) <= {0.0, 1.0}
    np.testing.assert_allclose(M.sum(0), 1)
    G = ot.emd(np.full(25, 1 / 25), np.full(25, 1 / 25), ot.dist(x, y, metric="euclidean"))
    np.testing.assert_allclose(M, 25 * G)


def test_small_reg_ot_approaches_exact_ot():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 2))
    y = x[rng.permutation(30)] + 0.05 * rng.normal(size=x.shape)
    exact = match(x, y, method="emd")
    gaps = [np.abs(match(x, y, method="ot", reg=r, max_iter=20000) - exact).max()
            for r in (0.3, 0.1, 0.03, 0.01)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.05


def test_snn_hand_computed_case():
    # modality 1 at 0, 1, 5; modality 2 at 0.1, 4.8, 1.2 (1-d, no normalisation), k = 1
    x = np.array([[0.0], [1.0], [5.0]])
    y = np.array([[0.1], [4.8], [1.2]])
    # 11_i = {i}; 22_j = {j}; 21_i = NN of x_i among y: x0->y0, x1->y2, x2->y1
    # 12_j = NN of y_j among x: y0->x0, y1->x2, y2->x1; all links mutual: J = 2 on the matching
    M = snn_coupling(x, y, k=1, normalize=False)
    np.testing.assert_allclose(M, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_snn_one_sided_link_weight():
    # x0 -> y0 is a NN link, but y0's NN is x1 (not mutual): J = 1 -> 1/3 before normalising
    x = np.array([[0.0], [0.9]])
    y = np.array([[0.8], [5.0]])
    # 21: x0->y0, x1->y0 ; 12: y0->x1, y1->x1 ; J = [[0+1, 0], [1+1, 1+0]]
    Mt = np.array([[1 / 3, 0.0], [1.0, 1 / 3]])
    np.testing.assert_allclose(snn_coupling(x, y, k=1, normalize=False),
                               Mt / Mt.sum(1, keepdims=True))


def test_snn_k2_rows_normalised_and_bounded():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(15, 3)), rng.normal(size=(12, 3))
    M = snn_coupling(x, y, k=2)
    np.testing.assert_allclose(M.sum(1), 1)
    assert (M >= 0).all()
    assert (M > 0).any(axis=0).all()        # Lemma 1: no empty column either


def test_random_identity_uniform():
    M = match(np.zeros((5, 2)), np.zeros((5, 2)), method="random", random_state=0)
    np.testing.assert_array_equal(M.sum(0), 1)
    np.testing.assert_array_equal(M.sum(1), 1)
    np.testing.assert_array_equal(match(np.zeros((3, 1)), np.zeros((3, 1)), method="identity"),
                                  np.eye(3))
    np.testing.assert_allclose(match(np.zeros((3, 1)), np.zeros((4, 1)), method="uniform"), 0.25)
    a = match(np.zeros((6, 1)), np.zeros((6, 1)), method="random", random_state=1)
    b = match(np.zeros((6, 1)), np.zeros((6, 1)), method="random", random_state=1)
    np.testing.assert_array_equal(a, b)


def test_match_groups_and_block_coupling():
    rng = np.random.default_rng(0)
    t = np.array([0, 1, 0, 1, 2, 2, 0])
    e1, e2 = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    out = match_groups(e1, t, e2, t, method="ot")
    assert list(out) == [0, 1, 2] and out[0].shape == (3, 3)
    B = block_coupling(out, t, t).toarray()
    np.testing.assert_allclose(B.sum(1), 1)
    assert B[0, 1] == 0 and B[0, 2] > 0                      # zero across groups


@pytest.mark.parametrize("kwargs,msg", [
    (dict(emb1=np.ones((3, 2)), t1=[0, 0], emb2=np.ones((3, 2)), t2=[0, 0, 0]), "t1 has 2 entries"),
    (dict(emb1=np.ones((3, 2)), t1=[0, 0, 1], emb2=np.ones((3, 2)), t2=[0, 0, 0]),
     "present in modality 1 only"),
    (dict(emb1=np.ones((3, 2)), t1=[0, 0, 1], emb2=np.ones((3, 2)), t2=[0, 0, 1]),
     "fewer than min_group_size"),
    (dict(emb1=np.array([[np.nan, 1.0]]), t1=[0], emb2=np.ones((1, 2)), t2=[0]), "NaN"),
    (dict(emb1=np.ones((2, 2)), t1=[0, 0], emb2=np.ones((2, 3)), t2=[0, 0]), "same space"),
])
def test_match_groups_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        match_groups(kwargs["emb1"], kwargs["t1"], kwargs["emb2"], kwargs["t2"])


def test_match_groups_skip_reports():
    e = np.arange(10.0).reshape(5, 2)
    with pytest.warns(UserWarning, match="skipped 2 group"):
        out = match_groups(e, [0, 0, 0, 1, 1], e, [0, 0, 0, 2, 2], on_missing="skip")
    assert list(out) == [0]


def test_match_bad_method_and_reg():
    with pytest.raises(ValueError, match="unknown method"):
        match(np.ones((2, 1)), np.ones((2, 1)), method="hungarian")
    with pytest.raises(ValueError, match="reg must be > 0"):
        match(np.ones((2, 1)), np.ones((2, 1)), method="ot", reg=0)
    with pytest.raises(ValueError, match="larger than the group"):
        match(np.ones((2, 1)), np.ones((2, 1)), method="snn", k=3)


def test_the_matcher_table_is_the_one_source_of_methods_and_defaults():
    """match() spells its options out for its users; they must be the table's, every method of
    the table has its paragraph in the module docstring, and the paper's setting is one
    constant."""
    import inspect

    from propalign_lite import matchers
    from propalign_lite.sinkhorn import PAPER_REG

    assert matchers.METHODS == tuple(matchers.MATCHERS)
    sig = inspect.signature(matchers.match).parameters
    for name, default in matchers.MATCH_OPTIONS.items():
        assert sig[name].default == default, name
    for method in matchers.METHODS:
        assert f'``"{method}"``' in matchers.__doc__, method
    assert matchers.PAPER_OT == {"method": "ot", "reg": PAPER_REG} and PAPER_REG == 0.05
    with pytest.raises(ValueError, match="unknown method"):
        matchers.match(np.zeros((2, 1)), np.zeros((2, 1)), method="sinkhorn")


def test_a_new_matcher_is_one_function_and_one_table_line(monkeypatch):
    """The README's recipe for a matcher: a function and a line in MATCHERS, nothing else."""
    from propalign_lite import matchers, metrics

    def _nearest(x, y, **_):                       # each sample to its nearest partner
        M = np.zeros((len(x), len(y)))
        M[np.arange(len(x)), matchers.euclidean_cost(x, y).argmin(1)] = 1.0
        return M, None

    monkeypatch.setitem(matchers.MATCHERS, "nearest", (_nearest, {}, True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2))
    t = np.arange(20) % 2
    couplings = matchers.match_groups(x, t, x + 1e-3, t, method="nearest")
    assert metrics.evaluate_couplings(couplings, t)["Trace"] == 1.0
    with pytest.raises(ValueError, match="same space"):
        matchers.match(x, x[:, :1], method="nearest")


@pytest.mark.parametrize("online", [False, True])
def test_match_passes_a_fixed_over_relaxation_to_the_solver(online):
    """``match(..., omega=)`` reaches the solver (fewer iterations on a dense plan) and
    gives the plain coupling to the tolerance; with ``reg_m`` or a bad value it is refused."""
    from propalign_lite import matchers

    rng = np.random.default_rng(1)
    x = 0.8 * rng.normal(size=(300, 45))
    y = 0.8 * rng.normal(size=(300, 45)) + 0.3
    kw = dict(tol=1e-6, max_iter=5000, online=online, return_result=True)
    plain, res_plain = matchers.match(x, y, **kw)
    fast, res_fast = matchers.match(x, y, omega=1.8, **kw)
    assert res_plain.converged and res_fast.converged
    assert res_fast.n_iter < 0.7 * res_plain.n_iter, (res_fast.n_iter, res_plain.n_iter)
    A, B = (M if isinstance(M, np.ndarray) else M.block() for M in (fast, plain))
    assert np.abs(A - B).sum(1).max() < 1e-3          # rows of the row-normalised couplings
    with pytest.raises(ValueError, match="omega"):
        matchers.match(x, y, omega=1.8, reg_m=1.0)
    with pytest.raises(ValueError, match="omega"):
        matchers.match(x, y, omega=2.0)
