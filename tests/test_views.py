import numpy as np
import pytest

from propalign_lite.datasets.views import ACTIVATIONS, InjectiveView, make_views
from propalign_lite.theory import score_null_space


@pytest.fixture(scope="module")
def data():
    return make_views(900, n_treatments=3, latent_dim=2, noise_dim=3, random_state=0)


def test_shapes_types_and_pairing(data):
    assert data.x1.shape == (900, 5) and data.x2.shape == (900, 8)
    assert data.z.shape == (900, 2) and data.u1.shape == data.u2.shape == (900, 3)
    assert data.t.shape == (900,) and data.t.dtype.kind == "i"
    assert len(data) == 900
    # row i of both views is a function of the same z[i]
    np.testing.assert_allclose(data.model.views[0](data.z, data.u1), data.x1)
    np.testing.assert_allclose(data.model.views[1](data.z, data.u2), data.x2)
    sub = data.subset(np.arange(10, 20))
    np.testing.assert_array_equal(sub.x2, data.x2[10:20])
    np.testing.assert_array_equal(sub.z, data.z[10:20])
    assert sub.model is data.model


def test_stratified_treatments(data):
    assert np.bincount(data.t).tolist() == [300, 300, 300]
    sizes = np.bincount(make_views(10, n_treatments=3, random_state=1).t)
    assert sizes.max() - sizes.min() <= 1


def test_determinism_and_shared_model():
    a = make_views(50, random_state=3)
    b = make_views(50, random_state=3)
    c = make_views(50, random_state=4)
    np.testing.assert_array_equal(a.x1, b.x1)
    np.testing.assert_array_equal(a.x2, b.x2)
    assert not np.array_equal(a.z, c.z)
    # a different sample seed keeps the model (train/val/test share f and the means)
    np.testing.assert_array_equal(a.model.means, c.model.means)
    np.testing.assert_array_equal(a.model.views[0].embedding, c.model.views[0].embedding)
    d = make_views(50, random_state=3, model_seed=1)
    assert not np.allclose(a.model.means, d.model.means)
    gen = np.random.default_rng(0)
    make_views(5, random_state=gen)                       # a Generator is accepted


def test_latent_and_noise_laws():
    d = make_views(30000, n_treatments=4, latent_dim=3, noise_dim=2, shift=2.0,
                   noise_scale=0.5, random_state=0)
    means = d.model.means
    np.testing.assert_allclose(means[0], 0)
    np.testing.assert_allclose(np.linalg.norm(means[1:], axis=1), 2.0)
    # with K - 1 <= d the random shift directions are orthogonal
    gram = means[1:] @ means[1:].T
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-12)
    for t in range(4):
        m = d.t == t
        np.testing.assert_allclose(d.z[m].mean(0), means[t], atol=0.06)
        np.testing.assert_allclose(d.z[m].std(0), 1.0, atol=0.04)
        np.testing.assert_allclose(d.u1[m].mean(0), 0, atol=0.03)   # A1: noise ignores t
        np.testing.assert_allclose(d.u2[m].std(0), 0.5, atol=0.02)
    assert abs(np.corrcoef(d.u1[:, 0], d.u2[:, 0])[0, 1]) < 0.03


def test_treatment_affects_noise_moves_noise_means():
    d = make_views(20000, n_treatments=3, noise_dim=2, noise_scale=2.0,
                   treatment_affects_noise=1.5, random_state=0)
    nm = d.model.noise_means
    np.testing.assert_allclose(nm[:, 0], 0)
    np.testing.assert_allclose(np.linalg.norm(nm[:, 1:], axis=2), 1.5 * 2.0)
    assert not np.allclose(nm[0], nm[1])                   # each view has its own directions
    m = d.t == 2
    np.testing.assert_allclose(d.u1[m].mean(0), nm[0, 2], atol=0.1)
    np.testing.assert_allclose(d.u2[m].mean(0), nm[1, 2], atol=0.1)


@pytest.mark.parametrize("activations", [("leaky", "asinh"), ("asinh", "identity")])
def test_views_are_invertible(activations):
    d = make_views(400, latent_dim=3, noise_dim=2, n_layers=3, activations=activations,
                   x_dims=(5, 9), random_state=2)
    for view, u in zip(d.model.views, (d.u1, d.u2)):
        x = view(d.z, u)
        z_back, u_back = view.inverse(x)
        np.testing.assert_allclose(z_back, d.z, atol=1e-9)
        np.testing.assert_allclose(u_back, u, atol=1e-9)
    assert set(ACTIVATIONS) >= set(activations)


def test_views_are_nonlinear(data):
    """The views are not affine in (z, u): a linear fit leaves a clear residual."""
    h = np.hstack([data.z, data.u1, np.ones((len(data), 1))])
    coef, *_ = np.linalg.lstsq(h, data.x1, rcond=None)
    resid = data.x1 - h @ coef
    assert (resid.var(0) / data.x1.var(0)).max() > 0.01


def test_exact_propensity_from_views(data):
    """Proposition 1 under A1, and its failure when the treatment moves the noise."""
    lp = data.exact_log_propensity()
    np.testing.assert_allclose(np.exp(lp).sum(1), 1)
    np.testing.assert_allclose(data.exact_log_propensity(view=1), lp, atol=1e-9)
    np.testing.assert_allclose(data.exact_log_propensity(view=2), lp, atol=1e-9)
    bad = make_views(900, n_treatments=3, latent_dim=2, noise_dim=3, random_state=0,
                     treatment_affects_noise=1.0)
    p1 = np.exp(bad.exact_log_propensity(view=1))
    p2 = np.exp(bad.exact_log_propensity(view=2))
    assert np.abs(p1 - p2).mean() > 0.02
    # Bayes check of the exact scores: they are calibrated on a large sample
    big = make_views(30000, n_treatments=2, latent_dim=1, noise_dim=1, random_state=5)
    p = np.exp(big.exact_log_propensity())[:, 1]
    sel = (p > 0.4) & (p < 0.6)
    assert abs(big.t[sel].mean() - p[sel].mean()) < 0.03


def test_designs():
    d = make_views(20, n_treatments=6, latent_dim=2, design="axes", shift=1.5, random_state=0)
    expected = np.array([[0, 0], [1.5, 0], [0, 1.5], [3, 0], [0, 3], [4.5, 0]])
    np.testing.assert_allclose(d.model.means, expected)
    means = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    d = make_views(20, n_treatments=3, latent_dim=2, design=means, random_state=0)
    np.testing.assert_array_equal(d.model.means, means)
    assert score_null_space(d.model.means).shape == (2, 1)
    d = make_views(20, n_treatments=2, latent_dim=3, random_state=0)
    assert score_null_space(d.model.means).shape == (3, 2)      # T = 1 < d = 3


def test_no_noise_dimensions():
    d = make_views(30, noise_dim=0, random_state=0)
    assert d.u1.shape == (30, 0) and d.x1.shape == (30, 2)
    np.testing.assert_allclose(d.exact_log_propensity(view=2), d.exact_log_propensity(),
                               atol=1e-9)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "n must be at least 1"),
    (dict(n=2.5), "n must be an integer"),
    (dict(n=True), "n must be an integer"),
    (dict(n_treatments=1), "n_treatments must be at least 2"),
    (dict(latent_dim=0), "latent_dim must be at least 1"),
    (dict(noise_dim=-1), "noise_dim must be at least 0"),
    (dict(noise_scale=0.0), "noise_scale must be a finite positive"),
    (dict(latent_scale=float("nan")), "latent_scale must be a finite positive"),
    (dict(shift=-1.0), "shift must be a finite positive"),
    (dict(treatment_affects_noise=-0.5), "treatment_affects_noise must be a finite non-negative"),
    (dict(treatment_affects_noise=1.0, noise_dim=0), "needs modality noise"),
    (dict(x_dims=(3, 8)), "at least latent_dim \\+ noise_dim = 4"),
    (dict(x_dims=(4,)), "both views"),
    (dict(n_layers=0), "n_layers must be at least 1"),
    (dict(activations=("leaky", "relu")), "activations must be two of"),
    (dict(design="diagonal"), "design must be 'random', 'axes'"),
    (dict(design=np.zeros((2, 2))), "must have shape \\(n_treatments, latent_dim\\)"),
    (dict(design=np.array([[0, 0], [1, np.nan], [0, 1]])), "NaN or infinite"),
    (dict(random_state="seed"), "random_state must be"),
])
def test_bad_inputs(kwargs, match):
    args = dict(n=10, n_treatments=3, latent_dim=2, noise_dim=2)
    args.update(kwargs)
    n = args.pop("n")
    with pytest.raises(ValueError, match=match):
        make_views(n, **args)


def test_view_bad_inputs(data):
    view = data.model.views[0]
    assert isinstance(view, InjectiveView)
    with pytest.raises(ValueError, match="takes z with 2 and u with 3 columns"):
        view(data.z, data.u1[:, :2])
    with pytest.raises(ValueError, match="z has 900 rows but u has 5"):
        view(data.z, data.u1[:5])
    with pytest.raises(ValueError, match="x must have 5 columns"):
        view.inverse(data.x2)
    with pytest.raises(ValueError, match="view must be 1 or 2"):
        data.exact_log_propensity(view=3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        view.inverse(np.full((2, 5), np.nan))
