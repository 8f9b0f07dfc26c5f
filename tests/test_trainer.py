"""Tests for propalign_lite.trainer: sampler, objectives, metric, and input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse, stats
from sklearn.metrics import r2_score

from propalign_lite.trainer import (CouplingSampler, CrossModalTrainer, make_probe_mlp,
                                    r2_score_pooled)


# --------------------------------------------------------------------------------------------
# helpers
@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The models here are tiny; with several threads on a busy 2-core machine, CPU batch
    norm can spend ~50 ms per call waiting on its thread pool. One thread keeps it at ~us."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def soft_linear_problem(seed, *, n=1000, d=3, d_out=2, k=3, bias=True):
    """Targets generated from the coupling-average of k random inputs, plus both minimisers.

    Returns X, Y, M and the closed-form minimisers of
    * loss (4):   least squares of Y on M X~            (X~ = X with a ones column if bias)
    * the naive sampled-pair objective sum_ij M_ij ||y_i - W^T x~_j||^2:
                  (X~^T diag(1^T M) X~) W = X~^T M^T Y
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    m = np.zeros((n, n))
    rows = np.repeat(np.arange(n), k)
    np.add.at(m, (rows, rng.integers(n, size=n * k)),
              rng.dirichlet(np.full(k, 2.0), size=n).ravel())
    w_true = rng.normal(size=(d, d_out))
    b_true = rng.normal(size=d_out) if bias else np.zeros(d_out)
    y = m @ x @ w_true + b_true + 0.1 * rng.normal(size=(n, d_out))
    xa = np.c_[x, np.ones(n)] if bias else x
    mx = m @ xa
    w_unbiased = np.linalg.solve(mx.T @ mx, mx.T @ y)
    col_mass = m.sum(axis=0)
    w_naive = np.linalg.solve(xa.T @ (col_mass[:, None] * xa), xa.T @ m.T @ y)
    return x, y, m, w_unbiased, w_naive


def linear_params(model, bias):
    w = model.weight.detach().numpy().T
    if bias:
        w = np.r_[w, model.bias.detach().numpy()[None]]
    return w


def small_data(seed=0, n=40, d=4, d_out=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, d_out))).astype(np.float32)
    return x, y


# --------------------------------------------------------------------------------------------
# the two objectives reach their own closed-form minimisers
@pytest.mark.parametrize("bias", [True, False])
def test_modes_converge_to_their_closed_form_minimisers(bias):
    x, y, m, w_unb, w_naive = soft_linear_problem(1, bias=bias)
    gap = np.linalg.norm(w_unb - w_naive)
    assert gap > 0.5  # the soft coupling makes the two objectives clearly different
    torch.manual_seed(1)
    lin = torch.nn.Linear(3, 2, bias=bias).double()
    fitted = {}
    for unbiased in (True, False):
        tr = CrossModalTrainer(lin, unbiased=unbiased, epochs=300, batch_size=200, lr=0.05,
                               weight_decay=0.0, random_state=1).fit(x, y, m)
        fitted[unbiased] = linear_params(tr.model_, bias)
    err_unb = np.linalg.norm(fitted[True] - w_unb)
    err_naive = np.linalg.norm(fitted[False] - w_naive)
    # measured: errors ~0.03-0.05 (unbiased) and ~0.01 (naive) against a gap of ~1.5
    assert err_unb < 0.1 * gap, (err_unb, gap)
    assert err_naive < 0.1 * gap, (err_naive, gap)
    # ... and each lands far from the other mode's minimiser
    assert np.linalg.norm(fitted[True] - w_naive) > 0.5 * gap
    assert np.linalg.norm(fitted[False] - w_unb) > 0.5 * gap
    # the input model is untouched: fit trains a copy
    assert lin.weight.grad is None


def test_identity_coupling_gives_the_same_fit_in_both_modes():
    x, y = small_data(0, n=50)
    torch.manual_seed(0)
    probe = make_probe_mlp(4, 3)
    params = {}
    for unbiased in (True, False):
        tr = CrossModalTrainer(probe, unbiased=unbiased, epochs=4, batch_size=16, lr=1e-2,
                               random_state=3).fit(x, y, np.eye(len(x)))
        params[unbiased] = [p.detach().clone() for p in tr.model_.parameters()]
        assert np.isclose(tr.history_[-1]["train_loss"], tr.history_[-1]["train_pair_mse"])
    for a, b in zip(params[True], params[False]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_unbiased_gradient_matches_eq5_scaling():
    """One step of the surrogate equals 2 (f(x_dot) - y) df(x_ddot) / (B D) by hand."""
    x, y = small_data(1, n=8, d=2, d_out=2)
    torch.manual_seed(0)
    lin = torch.nn.Linear(2, 2, bias=False).double()
    w0 = lin.weight.detach().numpy().copy()
    coupling = np.full((8, 8), 1 / 8)
    opt_lr = 0.1
    tr = CrossModalTrainer(lin, epochs=1, batch_size=8, random_state=5, scheduler=None,
                           optimizer=lambda p: torch.optim.SGD(p, lr=opt_lr)).fit(x, y, coupling)
    # reproduce the draws of that fit: same seed, same order of random calls
    rng = np.random.default_rng(5)
    rng.integers(2**63 - 1)                           # torch seed
    draws = CouplingSampler(coupling).sample(rng, n_draws=2)
    f_dot = x[draws[0]] @ w0.T
    resid = f_dot - y                                  # (B, D)
    grad = 2 * resid.T @ x[draws[1]] / resid.size      # d/dW of mean over B*D
    np.testing.assert_allclose(tr.model_.weight.detach().numpy(), w0 - opt_lr * grad,
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# determinism, history, predict
def test_same_random_state_same_result_and_different_otherwise():
    x, y = small_data(2)
    m = np.full((len(y), len(x)), 1 / len(x))
    torch.manual_seed(0)
    probe = torch.nn.Sequential(make_probe_mlp(4, 8), torch.nn.Dropout(0.2),
                                torch.nn.Linear(8, 3))

    def run(seed):
        tr = CrossModalTrainer(probe, epochs=3, batch_size=16, lr=1e-2, random_state=seed)
        return tr.fit(x, y, m, eval_inputs=x, eval_targets=y)

    a, b, c = run(7), run(7), run(8)
    assert a.history_ == b.history_
    assert a.history_ != c.history_
    for pa, pb in zip(a.model_.state_dict().values(), b.model_.state_dict().values()):
        assert torch.equal(pa, pb)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_global_torch_rng_is_left_alone():
    x, y = small_data(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CrossModalTrainer(model, epochs=2, batch_size=10, random_state=0).fit(x, y, np.eye(len(x)))
    torch.testing.assert_close(torch.rand(3), expected)


def test_history_predict_and_score():
    x, y = small_data(4, n=41)       # 41 = 2 * 20 + 1: the singleton batch must be merged
    probe = make_probe_mlp(4, 3)
    tr = CrossModalTrainer(probe, epochs=20, batch_size=20, lr=1e-2, random_state=0)
    assert tr.fit(x, y, np.eye(41), eval_inputs=x[:10], eval_targets=y[:10]) is tr
    assert [h["epoch"] for h in tr.history_] == list(range(20))
    assert set(tr.history_[0]) == {"epoch", "lr", "train_loss", "train_pair_mse",
                                   "eval_mse", "eval_r2"}
    lrs = [h["lr"] for h in tr.history_]
    assert np.argmax(lrs) == 1 and np.isclose(max(lrs), 1e-2)  # one-cycle: 2 warm-up epochs
    pred = tr.predict(x[:10])
    assert pred.shape == (10, 3) and pred.dtype == np.float64
    assert np.isclose(tr.history_[-1]["eval_r2"], r2_score_pooled(y[:10], pred))
    assert np.isclose(tr.score(x[:10], y[:10]), tr.history_[-1]["eval_r2"])
    assert tr.n_targets_ == 41 and tr.n_inputs_ == 41
    assert not tr.model_.training


def test_torch_tensor_inputs_and_no_eval():
    x, y = small_data(5)
    tr = CrossModalTrainer(torch.nn.Linear(4, 3), epochs=2, batch_size=8, random_state=0)
    tr.fit(torch.from_numpy(x), torch.from_numpy(y), torch.eye(len(x)))
    assert set(tr.history_[0]) == {"epoch", "lr", "train_loss", "train_pair_mse"}


# --------------------------------------------------------------------------------------------
# the sampler
def test_sampler_frequencies_match_coupling_rows():
    rng = np.random.default_rng(0)
    m = rng.dirichlet(np.full(6, 0.7), size=5)
    m[0] = [0, 0, 0.5, 0, 0.5, 0]           # sparse row
    m[1] = [0, 0, 0, 1, 0, 0]               # one-hot row
    n_draws = 20_000
    draws = CouplingSampler(m).sample(random_state=1, n_draws=n_draws)
    assert draws.shape == (n_draws, 5)
    for i in range(5):
        counts = np.bincount(draws[:, i], minlength=6)
        assert (counts[m[i] == 0] == 0).all()        # never a zero-weight partner
        support = m[i] > 0
        if support.sum() > 1:
            p = stats.chisquare(counts[support], n_draws * m[i, support]).pvalue
            assert p > 1e-3, (i, counts, m[i])
        else:
            assert counts[support][0] == n_draws


def test_sampler_one_hot_and_formats_agree():
    perm = np.random.default_rng(0).permutation(6)
    assert (CouplingSampler(np.eye(6)[perm]).sample(random_state=0) == perm).all()
    a = np.array([[0.2, 0.8], [1.0, 0.0]])
    b = np.array([[0.3, 0.3, 0.4]])
    dense = np.zeros((3, 5))
    dense[:2, :2], dense[2:, 2:] = a, b
    ref = CouplingSampler(dense).sample(random_state=4, n_draws=50)
    for form in (sparse.csr_matrix(dense), [a, b],
                 [(np.array([0, 1]), np.array([0, 1]), a), (np.array([2]), np.arange(2, 5), b)]):
        np.testing.assert_array_equal(CouplingSampler(form).sample(random_state=4, n_draws=50),
                                      ref)


def test_fit_accepts_sparse_block_coupling():
    x, y = small_data(6, n=20)
    blocks = [np.full((10, 10), 0.1), np.full((10, 10), 0.1)]
    tr = CrossModalTrainer(torch.nn.Linear(4, 3), epochs=2, batch_size=8, random_state=0)
    h_list = tr.fit(x, y, blocks).history_
    h_sparse = tr.fit(x, y, sparse.block_diag(blocks, format="csr")).history_
    assert h_list == h_sparse


# --------------------------------------------------------------------------------------------
# bad inputs
@pytest.fixture
def xy():
    return small_data(7, n=10)


def _fit(x, y, m, **kw):
    return CrossModalTrainer(torch.nn.Linear(x.shape[1], y.shape[1]), epochs=1,
                             batch_size=5, **kw).fit(x, y, m)


def test_coupling_shape_mismatch(xy):
    x, y = xy
    with pytest.raises(ValueError, match=r"coupling has shape \(10, 9\).*must have shape"):
        _fit(x, y, np.full((10, 9), 1 / 9))
    with pytest.raises(ValueError, match="looks transposed"):
        _fit(x[:4], y, np.full((4, 10), 0.1))


def test_rows_must_sum_to_one(xy):
    x, y = xy
    with pytest.raises(ValueError, match=r"rows of coupling must each sum to 1.*row 0"):
        _fit(x, y, np.full((10, 10), 0.2))
    m = np.eye(10)
    m[3] = 0
    with pytest.raises(ValueError, match="carry no weight"):
        _fit(x, y, m)


def test_nan_and_negative_weights(xy):
    x, y = xy
    m = np.eye(10)
    m[2, 2] = np.nan
    with pytest.raises(ValueError, match="coupling contains 1 NaN"):
        _fit(x, y, m)
    m = np.full((10, 10), 0.1)
    m[0, :2] = [-0.1, 0.3]
    with pytest.raises(ValueError, match="negative entries"):
        _fit(x, y, m)
    with pytest.raises(ValueError, match="negative entries"):
        _fit(x, y, sparse.csr_matrix(m))
    with pytest.raises(ValueError, match="block 1 has negative"):
        CouplingSampler([np.eye(2), -np.eye(2)])


def test_nan_in_data_and_other_bad_arguments(xy):
    x, y = xy
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="inputs contains 1 NaN"):
        _fit(bad, y, np.eye(10))
    bad = y.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="targets contains 1 NaN or infinite"):
        _fit(x, bad, np.eye(10))
    with pytest.raises(ValueError, match="eval_inputs and eval_targets"):
        CrossModalTrainer(torch.nn.Linear(4, 3), epochs=1).fit(x, y, np.eye(10), eval_inputs=x)
    with pytest.raises(ValueError, match="eval_inputs has 10 rows but eval_targets has 9"):
        CrossModalTrainer(torch.nn.Linear(4, 3), epochs=1).fit(
            x, y, np.eye(10), eval_inputs=x, eval_targets=y[:9])
    with pytest.raises(ValueError, match="values per sample but the targets"):
        CrossModalTrainer(torch.nn.Linear(4, 2), epochs=1).fit(x, y, np.eye(10))
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        CrossModalTrainer(torch.nn.Linear(4, 3), epochs=0).fit(x, y, np.eye(10))
    with pytest.raises(ValueError, match="lr must be a positive number"):
        CrossModalTrainer(torch.nn.Linear(4, 3), lr=-1.0).fit(x, y, np.eye(10))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        CrossModalTrainer(lambda t: t).fit(x, y, np.eye(10))
    with pytest.raises(RuntimeError, match="not fitted"):
        CrossModalTrainer(torch.nn.Linear(4, 3)).predict(x)
    with pytest.raises(ValueError, match="positive integer"):
        make_probe_mlp(0, 3)


# --------------------------------------------------------------------------------------------
# the metric
def test_r2_matches_sklearn_variance_weighted():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 4)) * np.array([1.0, 5.0, 0.2, 2.0])
    pred = y + rng.normal(size=y.shape)
    ours = r2_score_pooled(y, pred)
    assert np.isclose(ours, r2_score(y, pred, multioutput="variance_weighted"))
    assert not np.isclose(ours, r2_score(y, pred))           # uniform average differs
    assert np.isclose(r2_score_pooled(y[:, 0], pred[:, 0]), r2_score(y[:, 0], pred[:, 0]))


def test_r2_of_mean_predictor_is_zero_and_perfect_is_one():
    y = np.random.default_rng(1).normal(size=(30, 3))
    assert np.isclose(r2_score_pooled(y, np.broadcast_to(y.mean(0), y.shape)), 0.0)
    assert r2_score_pooled(torch.from_numpy(y), y) == 1.0


def test_r2_bad_input():
    with pytest.raises(ValueError, match="shape"):
        r2_score_pooled(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="constant"):
        r2_score_pooled(np.ones((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        r2_score_pooled([[1.0], [np.nan]], [[1.0], [2.0]])


def test_trainer_ten_epochs_one_cycle_regression():
    # OneCycleLR with pct_start 0.1 used to divide by zero for exactly 10 epochs
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    fit = CrossModalTrainer(torch.nn.Linear(3, 2), epochs=10, batch_size=10, random_state=0).fit(x, y, np.eye(20))
    assert len(fit.history_) == 10
