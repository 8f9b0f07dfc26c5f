r"""A fast tabular simulator of the paper's model (1): two injective views of one latent.

Generative model, with :math:`K` treatments, latent dimension :math:`d` and noise dimension
:math:`k`:

.. math::
    t &\sim \text{Uniform}\{0, \dots, K-1\}
        \quad\text{(stratified: group sizes differ by at most one)},\\
    z \mid t &\sim \mathcal N(\mu_t,\ \sigma_z^2 I_d), \qquad \mu_0 = 0
        \quad\text{(the base environment)},\\
    u^{(e)} \mid t &\sim \mathcal N(a\,\sigma_u\,\nu^{(e)}_t,\ \sigma_u^2 I_k),
        \qquad \nu^{(e)}_0 = 0,\ \lVert \nu^{(e)}_t \rVert = 1,\\
    x^{(e)} &= f^{(e)}(z, u^{(e)}), \qquad e = 1, 2 .

The treatment moves the latent mean by ``shift`` (:math:`\lVert\mu_t\rVert`), along random
directions (``design="random"``; orthogonal ones while :math:`K - 1 \le d`) or along the
coordinate axes (``design="axes"``, like do-interventions on single coordinates), or to any
given ``means``. The two modality noises are independent of each other and of :math:`z`.

* **A1** (the treatment does not touch the modality noise) holds when
  ``treatment_affects_noise`` :math:`a = 0`. With :math:`a > 0` treatment :math:`t` also moves
  :math:`u^{(e)}` by :math:`a` noise standard deviations, in a different direction
  :math:`\nu^{(e)}_t` for each view, and the views' propensity scores no longer agree.
* **A2** (injective views) always holds: :math:`f^{(e)}` is a fixed random network
  :math:`x = A\,\rho(W_L \cdots \rho(W_1 [z; u] + b_1) \cdots + b_L)` with square invertible
  :math:`W_l` (random orthogonal matrices times singular values in [0.5, 1.5]), a strictly
  increasing activation :math:`\rho` (leaky ReLU for view 1 and :math:`\operatorname{asinh}`
  for view 2 by default) and a full-column-rank output matrix :math:`A` that embeds the
  :math:`d + k` inputs into ``x_dims[e]`` features. :meth:`InjectiveView.inverse` recovers
  :math:`(z, u)` exactly.

The model's parameters (means, noise directions, view networks) are drawn from ``model_seed``;
the samples from ``random_state``. Calls that share ``model_seed`` and the model's settings
therefore sample from one and the same model, e.g. for training, validation and test sets.

Because the model is known, the exact propensity scores are available:
:meth:`ViewsData.exact_log_propensity` computes :math:`\log P(t \mid z)` from the latents
or :math:`\log P(t \mid x^{(e)})` from a view by inverting :math:`f^{(e)}`.

Example
-------
>>> from propalign_lite.datasets.views import make_views
>>> data = make_views(600, n_treatments=3, latent_dim=2, noise_dim=2, random_state=0)
>>> data.x1.shape, data.x2.shape, data.z.shape, data.t.shape
((600, 4), (600, 7), (600, 2), (600,))
>>> import numpy as np
>>> lp_z, lp_1 = data.exact_log_propensity(), data.exact_log_propensity(view=1)
>>> bool(np.allclose(lp_z, lp_1))            # Proposition 1: the view's score is pi(z)
True
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from .._validation import check_array, check_random_state
from ..theory import gaussian_log_propensity

__all__ = ["make_views", "ViewsData", "ViewsModel", "InjectiveView", "ACTIVATIONS", "LEAKY_SLOPE"]

LEAKY_SLOPE = 0.2


def _leaky(a):
    return np.where(a > 0, a, LEAKY_SLOPE * a)


def _leaky_inv(y):
    return np.where(y > 0, y, y / LEAKY_SLOPE)


def _identity(a):
    return a


#: Strictly increasing activations of the view networks: name -> (function, inverse).
ACTIVATIONS = {
    "leaky": (_leaky, _leaky_inv),
    "asinh": (np.arcsinh, np.sinh),
    "identity": (_identity, _identity),
}


def _orthogonal(rng, rows: int, cols: int) -> np.ndarray:
    """A random matrix with orthonormal columns (``rows >= cols``), Haar distributed."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))[None, :]


@dataclass
class InjectiveView:
    r"""One modality's measurement map :math:`x = f(z, u)`, an invertible random network.

    :math:`h_0 = [z; u]`, :math:`h_l = \rho(W_l h_{l-1} + b_l)` for :math:`l = 1..L`,
    :math:`x = A h_L`. All :math:`W_l` are square and invertible, :math:`\rho` is strictly
    increasing and :math:`A` has full column rank, so :math:`f` is injective in :math:`(z, u)`.

    Attributes
    ----------
    weights, biases : lists of arrays
        :math:`W_l` (m, m) and :math:`b_l` (m,), with :math:`m = d + k`.
    embedding : array (D, m)
        :math:`A`.
    activation : str
        A key of ``ACTIVATIONS``.
    latent_dim : int
        :math:`d`: the first :math:`d` inputs are :math:`z`, the rest :math:`u`.
    """

    weights: list
    biases: list
    embedding: np.ndarray
    activation: str
    latent_dim: int

    @property
    def input_dim(self) -> int:
        return self.embedding.shape[1]

    @property
    def output_dim(self) -> int:
        return self.embedding.shape[0]

    def __call__(self, z, u=None) -> np.ndarray:
        """Apply the view to latents ``z`` (n, d) and noise ``u`` (n, k); returns (n, D)."""
        z = check_array(z, "z")
        n = z.shape[0]
        u = np.zeros((n, 0)) if u is None else check_array(u, "u", allow_empty=True)
        if z.shape[1] != self.latent_dim or z.shape[1] + u.shape[1] != self.input_dim:
            raise ValueError(f"this view takes z with {self.latent_dim} and u with "
                             f"{self.input_dim - self.latent_dim} columns, got {z.shape[1]} "
                             f"and {u.shape[1]}")
        if u.shape[0] != n:
            raise ValueError(f"z has {n} rows but u has {u.shape[0]}")
        fwd = ACTIVATIONS[self.activation][0]
        h = np.hstack([z, u])
        for W, b in zip(self.weights, self.biases):
            h = fwd(h @ W.T + b)
        return h @ self.embedding.T

    def inverse(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Recover ``(z, u)`` from observations ``x`` (n, D).

        Exact for points on the view's image; other points are first projected onto it by
        least squares.
        """
        x = check_array(x, "x")
        if x.shape[1] != self.output_dim:
            raise ValueError(f"x must have {self.output_dim} columns, got {x.shape[1]}")
        inv = ACTIVATIONS[self.activation][1]
        h = np.linalg.lstsq(self.embedding, x.T, rcond=None)[0].T
        for W, b in zip(reversed(self.weights), reversed(self.biases)):
            h = np.linalg.solve(W, (inv(h) - b).T).T
        return h[:, :self.latent_dim], h[:, self.latent_dim:]


@dataclass
class ViewsModel:
    r"""The parameters of one instance of the simulator (see the module docstring).

    Attributes
    ----------
    means : array (K, d)
        :math:`\mu_t`; row 0 is the base environment (zero).
    latent_scale, noise_scale : float
        :math:`\sigma_z` and :math:`\sigma_u`.
    noise_means : array (2, K, k)
        :math:`a \sigma_u \nu^{(e)}_t` for view :math:`e` = index + 1 (zero when A1 holds).
    views : tuple of two :class:`InjectiveView`
        :math:`f^{(1)}, f^{(2)}`.
    """

    means: np.ndarray
    latent_scale: float
    noise_scale: float
    noise_means: np.ndarray
    views: tuple

    @property
    def n_treatments(self) -> int:
        return self.means.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    @property
    def noise_dim(self) -> int:
        return self.noise_means.shape[2]

    def sample(self, n: int, *, random_state=None) -> "ViewsData":
        """Draw ``n`` units: treatments (stratified), latents, both noises and both views."""
        n = _check_int(n, "n", 1)
        rng = check_random_state(random_state)
        K, d, k = self.n_treatments, self.latent_dim, self.noise_dim
        t = np.arange(n) % K
        rng.shuffle(t)
        z = self.means[t] + self.latent_scale * rng.standard_normal((n, d))
        u = [self.noise_means[e][t] + self.noise_scale * rng.standard_normal((n, k))
             for e in range(2)]
        x = [self.views[e](z, u[e]) for e in range(2)]
        return ViewsData(x1=x[0], x2=x[1], z=z, t=t, u1=u[0], u2=u[1], model=self)

    def log_propensity(self, z) -> np.ndarray:
        r"""Exact :math:`\log P(t \mid z)`, shape (n, K).

        See :func:`propalign_lite.theory.gaussian_log_propensity`.
        """
        return gaussian_log_propensity(z, self.means, scale=self.latent_scale)

    def view_log_propensity(self, x, view: int) -> np.ndarray:
        r"""Exact :math:`\log P(t \mid x^{(e)})` for observations ``x`` of view ``e``.

        The view is inverted to :math:`(z, u)`, and by the change-of-variables formula

        .. math:: \log P(t \mid x) = \log p_t + \log p(z \mid t) + \log p(u \mid t)
                  - \log|\det J_f(z, u)| - \log p(x),

        where the Jacobian term does not depend on :math:`t` and cancels in the normalisation
        over :math:`t`. When A1 holds, :math:`p(u \mid t)` does not depend on :math:`t`
        either and the result is :math:`\log P(t \mid z)`: Proposition 1.
        """
        e = _check_view(view)
        z, u = self.views[e].inverse(x)
        lp = self.log_propensity(z)                          # includes log p_t and p(z | t)
        if self.noise_dim:
            sq = ((u[:, None, :] - self.noise_means[e][None, :, :]) ** 2).sum(-1)
            lp = lp - sq / (2 * self.noise_scale ** 2)
            lp = lp - logsumexp(lp, axis=1, keepdims=True)
        return lp


@dataclass
class ViewsData:
    """Paired samples of the simulator: row ``i`` of every array is the same unit.

    Attributes
    ----------
    x1, x2 : arrays (n, D1), (n, D2)
        The two views (modalities).
    z : array (n, d)
        The shared latent.
    t : int array (n,)
        Treatment in ``0..K-1`` (0 is the base environment).
    u1, u2 : arrays (n, k)
        The modality noises.
    model : ViewsModel
        The generating model (exact propensity scores, view inverses).
    """

    x1: np.ndarray
    x2: np.ndarray
    z: np.ndarray
    t: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    model: ViewsModel = field(repr=False)

    def __len__(self) -> int:
        return len(self.t)

    def subset(self, idx) -> "ViewsData":
        """The samples ``idx`` (an index array or boolean mask), the views kept paired."""
        return ViewsData(self.x1[idx], self.x2[idx], self.z[idx], self.t[idx], self.u1[idx],
                         self.u2[idx], self.model)

    def exact_log_propensity(self, view: int | None = None) -> np.ndarray:
        r"""Exact log propensity scores of the samples, shape (n, K).

        ``view=None`` gives :math:`\log P(t \mid z)` from the latents; ``view=1`` or ``2``
        gives :math:`\log P(t \mid x^{(e)})` computed from that view alone (by inverting it).
        """
        if view is None:
            return self.model.log_propensity(self.z)
        e = _check_view(view)
        return self.model.view_log_propensity((self.x1, self.x2)[e], view)


# --------------------------------------------------------------------------------------------
def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")
    return float(value)


def _check_view(view) -> int:
    if view not in (1, 2) or isinstance(view, bool):
        raise ValueError(f"view must be 1 or 2, got {view!r}")
    return int(view) - 1


def _treatment_means(design, K: int, d: int, shift: float, rng) -> np.ndarray:
    if isinstance(design, str):
        if design == "random":
            if K - 1 <= d:
                dirs = _orthogonal(rng, d, K - 1).T
            else:
                dirs = rng.standard_normal((K - 1, d))
                dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        elif design == "axes":
            j = np.arange(K - 1)
            dirs = np.zeros((K - 1, d))
            dirs[j, j % d] = 1.0 + j // d          # after d treatments: twice as far, etc.
        else:
            raise ValueError(f"design must be 'random', 'axes' or an array of means, "
                             f"got {design!r}")
        return np.vstack([np.zeros((1, d)), shift * dirs])
    means = check_array(design, "design (means)")
    if means.shape != (K, d):
        raise ValueError(f"design given as means must have shape (n_treatments, latent_dim) = "
                         f"{(K, d)}, got {means.shape}")
    return means


def make_views(n: int, *, n_treatments: int = 3, latent_dim: int = 2, noise_dim: int = 2,
               noise_scale: float = 1.0, shift: float = 2.0, design="random",
               latent_scale: float = 1.0, treatment_affects_noise: float = 0.0,
               x_dims: tuple[int, int] | None = None, n_layers: int = 2,
               activations: tuple[str, str] = ("leaky", "asinh"), random_state=None,
               model_seed: int = 0) -> ViewsData:
    r"""Sample ``n`` units from two injective non-linear views of a shared Gaussian latent.

    See the module docstring for the model.

    Parameters
    ----------
    n : int
        Number of units; every unit is observed in both views (row ``i`` of ``x1`` and ``x2``
        share ``z[i]``), so the hidden true pairing is the row index.
    n_treatments : int
        :math:`K \ge 2`, including the base environment :math:`t = 0`.
    latent_dim, noise_dim : int
        :math:`d \ge 1` and :math:`k \ge 0` (the same :math:`k` for both views).
    noise_scale, latent_scale : float
        Standard deviations :math:`\sigma_u` of the modality noise and :math:`\sigma_z` of the
        latent within a treatment group.
    shift : float
        Distance :math:`\lVert \mu_t \rVert` of each treatment's latent mean from the base's
        (for ``design="axes"`` beyond :math:`d` treatments: 2, 3, ... times ``shift``).
    design : {"random", "axes"} or array (K, d)
        Directions of the treatment shifts, or the means themselves.
    treatment_affects_noise : float
        :math:`a \ge 0`; :math:`a > 0` violates A1 (needs ``noise_dim >= 1``).
    x_dims : (int, int), optional
        Number of features of each view, each at least :math:`d + k` (default
        :math:`(d + k, d + k + 3)`: the views live in spaces of different dimension).
    n_layers : int
        Number of hidden non-linear layers of each view network.
    activations : (str, str)
        Activation of each view, from ``ACTIVATIONS``.
    random_state : None, int or numpy Generator
        Seeds the samples.
    model_seed : int
        Seeds the model (means, noise directions, networks), independently of the samples.

    Returns
    -------
    ViewsData

    Raises
    ------
    ValueError
        For a non-positive size or dimension, fewer than two treatments, a negative scale, a
        noise effect without noise dimensions, views too small to be injective, an unknown
        design or activation, or means of the wrong shape.
    """
    n = _check_int(n, "n", 1)
    K = _check_int(n_treatments, "n_treatments", 2)
    d = _check_int(latent_dim, "latent_dim", 1)
    k = _check_int(noise_dim, "noise_dim", 0)
    L = _check_int(n_layers, "n_layers", 1)
    noise_scale = _check_positive(noise_scale, "noise_scale")
    latent_scale = _check_positive(latent_scale, "latent_scale")
    shift = _check_positive(shift, "shift")
    a = _check_positive(treatment_affects_noise, "treatment_affects_noise", allow_zero=True)
    if a > 0 and k == 0:
        raise ValueError("treatment_affects_noise > 0 needs modality noise: set noise_dim >= 1")
    m = d + k
    if x_dims is None:
        x_dims = (m, m + 3)
    if len(x_dims) != 2:
        raise ValueError(f"x_dims must give the number of features of both views, got {x_dims!r}")
    x_dims = tuple(_check_int(D, "x_dims entry", 1) for D in x_dims)
    if min(x_dims) < m:
        raise ValueError(f"each view needs at least latent_dim + noise_dim = {m} features to be "
                         f"injective, got x_dims={x_dims}")
    if len(activations) != 2 or any(act not in ACTIVATIONS for act in activations):
        raise ValueError(f"activations must be two of {sorted(ACTIVATIONS)}, got {activations!r}")
    mrng = np.random.default_rng(_check_int(model_seed, "model_seed", 0))
    means = _treatment_means(design, K, d, shift, mrng)
    noise_means = np.zeros((2, K, k))
    if k:
        dirs = mrng.standard_normal((2, K - 1, k))
        dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
        noise_means[:, 1:, :] = a * noise_scale * dirs
    views = []
    for e in range(2):
        weights, biases = [], []
        for _ in range(L):
            sv = mrng.uniform(0.5, 1.5, m)
            weights.append(_orthogonal(mrng, m, m) * sv[None, :] @ _orthogonal(mrng, m, m).T)
            biases.append(0.5 * mrng.standard_normal(m))
        emb = _orthogonal(mrng, x_dims[e], m) * mrng.uniform(0.5, 2.0, m)[None, :]
        views.append(InjectiveView(weights, biases, emb, activations[e], d))
    model = ViewsModel(means=means, latent_scale=latent_scale, noise_scale=noise_scale,
                       noise_means=noise_means, views=tuple(views))
    return model.sample(n, random_state=random_state)
