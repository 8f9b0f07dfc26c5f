r"""The cross-modal VAE baseline (Yang et al. 2021 style, as run in the paper).

Two variational autoencoders, one per modality, share one latent space. Their latents are asked
to do two extra jobs through small heads: predict the treatment / label :math:`t` (a *linear*
classifier, the same kind of head as the propensity classifiers) and carry the modality through a
*modality classifier*. Matching then uses the latents exactly as it uses propensity scores:
``propalign_lite.matchers.match(vae.transform(x1, 1), vae.transform(x2, 2))`` within a group.

Model
-----
For modality :math:`m \in \{1, 2\}` the encoder gives :math:`\mu_m(x), \log\sigma_m^2(x)`, a latent
sample :math:`z = \mu + \sigma \odot \epsilon`, :math:`\epsilon \sim N(0, I)` (reparameterisation),
and the decoder a reconstruction :math:`\hat x = g_m(z)`. Per mini-batch the loss is

.. math::

   L = \sum_{m=1}^{2}\Big[\underbrace{\tfrac{1}{B D_m}\lVert \hat x_m - x_m\rVert^2}_{\text{MSE}}
       + \lambda\, \underbrace{\tfrac1B \sum_b \mathrm{KL}\big(N(\mu, \sigma^2)\,\Vert\, N(0, I)
       \big)}_{\text{KL}}\Big]
       + \alpha\, \underbrace{\tfrac12\big[\mathrm{CE}(h(z_1), t_1) + \mathrm{CE}(h(z_2), t_2)\big]}
       _{\text{treatment CE}}
       + \beta\, \underbrace{\tfrac12\big[\mathrm{CE}(c(z_1), 0) + \mathrm{CE}(c(z_2), 1)\big]}
       _{\text{modality CE}},

with :math:`\mathrm{KL} = -\tfrac12 \sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)` summed over
latent dimensions, :math:`h` the linear treatment head and :math:`c` the modality classifier
(MLP latent :math:`\to` 1024 :math:`\to` 1024 :math:`\to` 1024 :math:`\to` 2 with ReLU).

Weights: the issue and the paper's text (appendix, "Loss Functions") put :math:`\alpha` on the
treatment classifier and :math:`\beta` on the modality classifier with :math:`\alpha = 1,
\beta = 0.1`; that is what ``alpha`` and ``beta`` mean here. **The official code does the
opposite**: its ``alpha`` (1) multiplies the modality CE and its ``beta`` (0.1) the label CE. To
reproduce the code's numbers exactly pass ``alpha=0.1, beta=1.0``. The paper sets
:math:`\lambda = 10^{-9}` (the default ``lam``); the code's run used :math:`10^{-10}`.

Co-operative vs adversarial modality term
-----------------------------------------
In the official code one optimiser minimises *everything*, the modality CE included, with the
**true** modality labels: the encoders are rewarded for making the two modalities *separable* in
the latent space -- the opposite of alignment. That is the default (``adversarial=False``) because
it is what produced the paper's numbers. ``adversarial=True`` gives the original scheme of Yang et
al.: the modality classifier becomes a *discriminator* with its own Adam optimiser; per
mini-batch, first the autoencoders (encoders, decoders, treatment head) take a step on the loss
above with the modality labels **swapped** (they try to fool the discriminator), then the
discriminator takes a step on :math:`\tfrac12[\mathrm{CE}(c(z_1), 0) + \mathrm{CE}(c(z_2), 1)]`
with the latents detached. (In Yang et al. :math:`\alpha` weights the reconstruction instead;
here the weights keep the meaning above in both modes.)

Architecture (reference: official code)
---------------------------------------
* ``kind="mlp"`` (CITE-seq; latent 128): encoder = :class:`~propalign_lite.encoders.MLPEncoder`
  (five 1024-wide linears with BN) + linear heads for :math:`\mu` and :math:`\log\sigma^2`;
  decoder = ``Linear(latent, w) -> ReLU -> BN``, 3 x ``[Linear(w, w) -> BN -> ReLU]``,
  ``Linear(w, d_in)`` (no output activation).
* ``kind="cnn"`` (images; latent 512): encoder = :class:`~propalign_lite.encoders.CNNEncoder`'s
  five conv blocks, whose linear layer is the :math:`\mu` head, plus a linear
  :math:`\log\sigma^2` head; decoder = ``Linear(latent, C s s)`` -> reshape to ``(C, s, s)`` ->
  four ``ConvTranspose2d(k3, s2, p1, output_padding 1) -> BN -> LeakyReLU`` blocks mirroring the
  encoder's channels -> one more such block keeping the channels -> ``Conv2d(k3, p1)`` to the
  input channels -> **Sigmoid**. The output lies in (0, 1), so images must be scaled to [0, 1]
  (``uint8`` arrays are divided by 255 on the fly; float images outside [0, 1] are refused).
  The official run fed images standardised with wrong constants (values down to about -30),
  which a sigmoid cannot reconstruct; we do not reproduce that.

Training (reference: official code)
-----------------------------------
Adam(``lr``, ``weight_decay``) with ``OneCycleLR(max_lr=lr, total_steps=epochs,
pct_start=0.1)`` stepped once per *epoch*; all epochs run and the weights with the lowest
validation loss are kept (``best_epoch_``). The modalities need **not** be paired: each epoch
shuffles each modality on its own and walks through ``ceil(max(n1, n2) / batch_size)``
mini-batches of (almost) equal size, cycling through the smaller modality. (The official code
iterated over true pairs; the loss never uses the pairing, so this changes only which samples
share a batch.) The validation loss uses the same sampled latents as training, with the noise
drawn from a fixed seed (``val_seed_``) so that epochs are compared on the same draws.

Embeddings for matching: the official code matches on the **sampled** latent
:math:`z = \mu + \sigma\epsilon` (stochastic even at test time); that is the default of
:meth:`CrossModalVAE.transform` (``sample=True``). ``sample=False`` returns :math:`\mu`.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t = np.repeat([0, 1, 2], 40)
>>> x1 = np.eye(3)[t] @ rng.normal(size=(3, 6)) + 0.1 * rng.normal(size=(120, 6))
>>> x2 = np.eye(3)[t] @ rng.normal(size=(3, 4)) + 0.1 * rng.normal(size=(120, 4))
>>> vae = CrossModalVAE("mlp", latent_dim=4, width=32, epochs=5, lr=1e-3, random_state=0)
>>> vae = vae.fit(x1, t, x2, t)
>>> vae.transform(x1, modality=1).shape, vae.transform(x2, modality=2, sample=False).shape
((120, 4), (120, 4))

References
----------
Yang, Belyaeva, Venkatachalapathy, Damodaran, Katcoff, Radhakrishnan, Shivashankar, Uhler (2021).
*Multi-domain translation between single-cell imaging and sequencing data using autoencoders.*
Nature Communications 12, 31.
Kingma, Welling (2014). *Auto-encoding variational Bayes.* ICLR.
Xi, Osea, Xu, Hartford (2024). *Propensity score alignment of unpaired multimodal data.* NeurIPS.
"""
from __future__ import annotations

import numpy as np
import torch

from .._validation import (check_labels, check_number, check_random_state,
                           validate_random_state)
from ..encoders import CNN_CHANNELS
from ._vae_model import KINDS, build, evaluate_losses, reparameterise, to_tensor, train

__all__ = ["CrossModalVAE", "KINDS"]

# --------------------------------------------------------------------------------------------
class CrossModalVAE:
    r"""Two VAEs with a shared latent space, a treatment head and a modality classifier.

    See the module docstring for the loss, the architecture and the differences from the
    official code.

    Parameters
    ----------
    kind : {"mlp", "cnn"}
        Tabular data (``(n, d)`` arrays; the two modalities may have different ``d``) or images
        (``(n, C, S, S)`` arrays in [0, 1] or ``uint8``, ``S`` a multiple of
        ``2 ** len(channels)``). Input sizes (``d``, ``C``, ``S``) are read from the data at
        ``fit``; small images (e.g. 32 px) and a small ``width`` / ``channels`` make a CPU run
        fast.
    latent_dim : int, optional
        Latent size; default 128 (``"mlp"``) or 512 (``"cnn"``), as in the official code.
    width : int
        Hidden width of the MLP encoder/decoder and of the modality classifier (1024 in the
        paper). Smaller is faster on a CPU.
    channels : tuple of int
        Conv channels of the CNN encoder (the decoder mirrors them); default
        ``(32, 64, 128, 256, 512)``.
    epochs, batch_size, lr, weight_decay, pct_start
        Training: 100 epochs, batch 256, Adam with lr 1e-4 and weight decay 1e-5 in the
        official run; one-cycle schedule (warm-up fraction ``pct_start`` = 0.1) stepped per
        epoch.
    alpha, beta, lam : float
        Weights of the treatment CE, the modality CE and the KL term (see the module docstring
        for how these relate to the official code).
    adversarial : bool
        ``False``: co-operative modality classifier (official); ``True``: discriminator trained
        separately, encoders trained to fool it (Yang et al.).
    disc_lr : float, optional
        Discriminator learning rate when ``adversarial=True`` (default ``lr``).
    random_state : None, int or numpy Generator
        Seeds weight initialisation, shuffling and latent noise.
    device : str
        Torch device, ``"cpu"`` by default.
    progress : bool
        Show a progress bar over epochs (tqdm).

    Attributes
    ----------
    classes_ : array
        Sorted treatment labels (the treatment head's outputs).
    history_ : dict of lists
        Per epoch: ``epoch`` (1-based), ``lr``, ``seconds`` and the epoch means of
        ``train_loss``, ``train_recon``,
        ``train_kl``, ``train_label_ce``, ``train_modality_ce`` (with ``val_*`` twins when
        validation data were given); in adversarial mode also ``train_disc_ce``,
        ``n_ae_steps`` and ``n_disc_steps``.
    best_epoch_ : int
        Epoch (1-based, as ``history_["epoch"]``) whose weights were kept: the lowest
        ``val_loss``, or the last epoch without validation data.
    best_val_loss_ : float or None
    val_seed_ : int
        Seed of the latent noise used for every validation pass.
    model_ : torch.nn.Module
        The trained networks (``views[0]``, ``views[1]``, ``label_head``, ``modality_clf``).
    """

    def __init__(self, kind: str = "mlp", *, latent_dim: int | None = None, width: int = 1024,
                 channels: tuple[int, ...] = CNN_CHANNELS, epochs: int = 100,
                 batch_size: int = 256, lr: float = 1e-4, weight_decay: float = 1e-5,
                 pct_start: float = 0.1, alpha: float = 1.0, beta: float = 0.1, lam: float = 1e-9,
                 adversarial: bool = False, disc_lr: float | None = None, random_state=None,
                 device: str = "cpu", progress: bool = False):
        self.kind = kind
        self.latent_dim = latent_dim
        self.width = width
        self.channels = tuple(channels)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.pct_start = pct_start
        self.alpha = alpha
        self.beta = beta
        self.lam = lam
        self.adversarial = adversarial
        self.disc_lr = disc_lr
        self.random_state = random_state
        self.device = device
        self.progress = progress
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")

    # ----------------------------------------------------------------------------------------
    # input handling
    def _check_params(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {KINDS}")
        for name in ("epochs", "batch_size", "width"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{name} must be a positive integer, got {val!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (batch normalisation)")
        if self.latent_dim is not None and (not isinstance(self.latent_dim, (int, np.integer))
                                            or self.latent_dim < 1):
            raise ValueError(f"latent_dim must be a positive integer, got {self.latent_dim!r}")
        for name in ("lr", "weight_decay", "alpha", "beta", "lam"):
            val = getattr(self, name)
            check_number(val, name, low=0)
        check_number(self.lr, "lr", low=0, low_open=True)
        check_number(self.pct_start, "pct_start", low=0, high=1, low_open=True, high_open=True)
        validate_random_state(self.random_state)

    def _check_x(self, x, name: str) -> np.ndarray:
        """Numpy view of the data, checked; images keep their dtype (no float64 copy)."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        if x is None or isinstance(x, (str, bytes, dict)):
            raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except ValueError as err:                      # ragged lists
            raise ValueError(f"{name} must be a numeric array: {err}") from None
        if x.dtype.kind == "c":
            raise TypeError(f"{name} is complex; pass a real array")
        if x.dtype.kind not in "fiub":
            raise ValueError(f"{name} must be a numeric array, got dtype {x.dtype}")
        if self.kind == "mlp":
            if x.ndim != 2:
                raise ValueError(f"{name} must be 2-dimensional (samples x features) for "
                                 f"kind='mlp', got shape {x.shape}")
        else:
            if x.ndim != 4 or x.shape[2] != x.shape[3]:
                raise ValueError(f"{name} must have shape (n, channels, S, S) for kind='cnn', "
                                 f"got {x.shape} (channels-last images: use "
                                 "x.transpose(0, 3, 1, 2))")
            factor = 2 ** len(self.channels)
            if x.shape[2] % factor:
                raise ValueError(f"{name}: image side {x.shape[2]} must be a multiple of "
                                 f"{factor} for {len(self.channels)} conv blocks")
        if x.shape[0] == 0:
            raise ValueError(f"{name} is empty")
        if x.dtype.kind == "f":
            bad = ~np.isfinite(x)
            if bad.any():
                raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s)")
            if np.abs(x).max() > 1e30:
                raise ValueError(f"{name} has values of magnitude up to {np.abs(x).max():.3g}, "
                                 "too large for float32 training; standardise it first")
            if self.kind == "cnn" and (x.min() < 0 or x.max() > 1):
                raise ValueError(f"{name} has values in [{x.min():.3g}, {x.max():.3g}]; the image "
                                 "VAE's decoder ends in a sigmoid, so scale images to [0, 1] "
                                 "(uint8 images are divided by 255 automatically)")
        elif self.kind == "cnn" and x.dtype != np.uint8:
            raise ValueError(f"{name}: integer images must be uint8 (0-255), got {x.dtype}")
        return x

    def _encode_labels(self, t, name: str, n: int) -> np.ndarray:
        t = check_labels(t, name, n)
        try:
            idx = np.searchsorted(self.classes_, t)
        except TypeError:
            raise ValueError(f"{name} holds labels of another type than the training labels "
                             f"({self.classes_.dtype})") from None
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != t
        if unknown.any():
            raise ValueError(f"{name} has labels not seen in training: "
                             f"{sorted(set(t[unknown].tolist()), key=str)[:5]}")
        return idx

    def fit(self, x1, t1, x2, t2, *, x1_val=None, t1_val=None, x2_val=None, t2_val=None):
        """Train on unpaired data; keep the weights of the lowest validation loss.

        Parameters
        ----------
        x1, x2 : arrays
            Training samples of modality 1 and 2 (``(n, d)`` or ``(n, C, S, S)``).
        t1, t2 : arrays (n1,), (n2,)
            Treatment / label of every sample (any hashable type, same vocabulary).
        x1_val, t1_val, x2_val, t2_val : arrays, optional
            Validation data (all four or none); without them the last epoch is kept.

        Returns
        -------
        self
        """
        self._check_params()
        x1 = self._check_x(x1, "x1")
        x2 = self._check_x(x2, "x2")
        t1 = check_labels(t1, "t1", len(x1))
        t2 = check_labels(t2, "t2", len(x2))
        if min(len(x1), len(x2)) < 2:
            raise ValueError(f"need at least 2 samples per modality, got {len(x1)} and {len(x2)}")
        val = [x1_val, t1_val, x2_val, t2_val]
        if any(v is not None for v in val) and any(v is None for v in val):
            raise ValueError("give all of x1_val, t1_val, x2_val, t2_val or none of them")
        try:
            self.classes_ = np.unique(np.concatenate([t1, t2]))
        except TypeError as err:
            raise ValueError(f"t1 and t2 must hold labels of one comparable type: {err}") from None
        only1 = sorted(set(np.unique(t1).tolist()) - set(np.unique(t2).tolist()), key=str)
        only2 = sorted(set(np.unique(t2).tolist()) - set(np.unique(t1).tolist()), key=str)
        if only1 or only2:
            raise ValueError("t1 and t2 must use the same labels (the VAE's label embedding is "
                             f"shared): only in t1 {only1[:10]}, only in t2 {only2[:10]}")
        y1 = self._encode_labels(t1, "t1", len(x1))
        y2 = self._encode_labels(t2, "t2", len(x2))
        has_val = val[0] is not None
        if has_val:
            v1 = self._check_x(x1_val, "x1_val")
            v2 = self._check_x(x2_val, "x2_val")
            for v, x, name in ((v1, x1, "x1_val"), (v2, x2, "x2_val")):
                if v.shape[1:] != x.shape[1:]:
                    raise ValueError(f"{name} has sample shape {v.shape[1:]} but the training "
                                     f"data has {x.shape[1:]}")
            vy1 = self._encode_labels(t1_val, "t1_val", len(v1))
            vy2 = self._encode_labels(t2_val, "t2_val", len(v2))

        rng = check_random_state(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        self.val_seed_ = int(rng.integers(2**31 - 1))
        dev = torch.device(self.device)
        fork_devices = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            self.model_ = build(self, x1, x2, len(self.classes_)).to(dev)
            train(self, x1, y1, x2, y2, (v1, vy1, v2, vy2) if has_val else None, rng)
        return self

    # ----------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this CrossModalVAE is not fitted yet; call fit first")

    def _check_modality(self, modality) -> int:
        if modality not in (1, 2):
            raise ValueError(f"modality must be 1 or 2, got {modality!r}")
        return modality - 1

    def _check_like_training(self, x, m: int, name: str = "x") -> np.ndarray:
        x = self._check_x(x, name)
        view = self.model_.views[m]
        if self.kind == "mlp":
            want = view.encoder.net[0].in_features
            if x.shape[1] != want:
                raise ValueError(f"{name} has {x.shape[1]} features but modality {m + 1} was "
                                 f"trained on {want}")
        else:
            side = view.encoder.final_side * 2 ** len(self.channels)
            c_in = view.encoder.conv[0].in_channels
            if x.shape[1:] != (c_in, side, side):
                raise ValueError(f"{name} has image shape {x.shape[1:]} but modality {m + 1} "
                                 f"was trained on {(c_in, side, side)}")
        return x

    @torch.no_grad()
    def transform(self, x, modality: int = 1, *, sample: bool = True, random_state=None,
                  batch_size: int | None = None) -> np.ndarray:
        r"""Latent embedding of samples of one modality (eval mode).

        Parameters
        ----------
        x : array
            Samples of ``modality``.
        modality : {1, 2}
        sample : bool
            ``True`` (default, as the official code): a draw :math:`\mu + \sigma\epsilon`;
            ``False``: the posterior mean :math:`\mu` (deterministic).
        random_state : None, int or Generator
            Seeds the draw when ``sample=True``. An int seed is combined with the modality, so
            the two modalities never share noise: with paired rows, shared noise
            :math:`\epsilon_i` would leak the hidden pairing into the embeddings.
        batch_size : int, optional
            Rows per forward pass (default ``self.batch_size``); does not change the result.

        Returns
        -------
        (n, latent_dim) float32 array
        """
        self._check_fitted()
        m = self._check_modality(modality)
        x = self._check_like_training(x, m)
        net = self.model_
        net.eval()
        gen = None
        if sample:
            if isinstance(random_state, (int, np.integer)):
                # an int seed gives each modality its own stream (no shared noise across views)
                random_state = np.random.default_rng([int(random_state), m])
            gen = torch.Generator(device=self.device)
            gen.manual_seed(int(check_random_state(random_state).integers(2**31 - 1)))
        bs = batch_size or self.batch_size
        out = []
        for start in range(0, len(x), bs):
            mu, logvar = net.views[m].encode(to_tensor(self, x[start:start + bs]))
            z = reparameterise(mu, logvar, gen) if sample else mu
            out.append(z.cpu().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def reconstruct(self, x, modality: int = 1, *, sample: bool = False, random_state=None,
                    batch_size: int | None = None) -> np.ndarray:
        """Decode the latent of ``x`` back to its own modality (same shape as ``x``)."""
        self._check_fitted()
        m = self._check_modality(modality)
        z = self.transform(x, modality, sample=sample, random_state=random_state,
                           batch_size=batch_size)
        bs = batch_size or self.batch_size
        net = self.model_
        out = [net.views[m].decode(torch.as_tensor(z[s:s + bs], device=self.device)).cpu().numpy()
               for s in range(0, len(z), bs)]
        return np.concatenate(out)

    def evaluate(self, x1, t1, x2, t2, *, random_state=None) -> dict:
        """The loss terms (``recon``, ``kl``, ``label_ce``, ``modality_ce``, ``loss``) on data,
        in eval mode, computed as during validation. ``random_state=self.val_seed_`` repeats
        the validation noise, so the value at ``best_epoch_`` can be checked."""
        self._check_fitted()
        x1 = self._check_like_training(x1, 0, "x1")
        x2 = self._check_like_training(x2, 1, "x2")
        y1 = self._encode_labels(t1, "t1", len(x1))
        y2 = self._encode_labels(t2, "t2", len(x2))
        seed = None
        if random_state is not None:
            seed = (random_state if isinstance(random_state, (int, np.integer))
                    else int(check_random_state(random_state).integers(2**31 - 1)))
        return evaluate_losses(self, x1, y1, x2, y2, seed=seed)
