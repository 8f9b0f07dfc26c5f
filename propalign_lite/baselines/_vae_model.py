r"""The networks, the loss and the training loop of :class:`~propalign_lite.baselines.CrossModalVAE`.

Private: the model and its loss are documented in :mod:`propalign_lite.baselines.vae`; this
module holds the parts that a reader of the method does not need, kept apart so that
``vae.py`` is the estimator (parameters, checks, ``fit`` / ``transform``) and this one the
PyTorch machinery it runs.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._torch_utils import one_cycle
from ..encoders import CNNEncoder, MLPEncoder

KINDS = ("mlp", "cnn")
PARTS = ("recon", "kl", "label_ce", "modality_ce", "loss")


# --------------------------------------------------------------------------------------------
# modules
class MLPView(nn.Module):
    """Encoder + decoder of one tabular modality."""

    def __init__(self, d_in: int, latent_dim: int, width: int):
        super().__init__()
        self.encoder = MLPEncoder(d_in, width=width)
        self.fc_mu = nn.Linear(width, latent_dim)
        self.fc_var = nn.Linear(width, latent_dim)
        # the decoder has the encoder's layout, with the last layer mapping back to d_in
        self.decoder = MLPEncoder(latent_dim, width=width)
        self.decoder.net[-1] = nn.Linear(width, d_in)

    def encode(self, x):
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z):
        return self.decoder(z)


class CNNView(nn.Module):
    """Encoder + decoder of one image modality ("VanillaVAE" layout)."""

    def __init__(self, image_size: int, in_channels: int, latent_dim: int,
                 channels: tuple[int, ...]):
        super().__init__()
        # CNNEncoder's own linear layer (features -> latent_dim) serves as the mu head
        self.encoder = CNNEncoder(image_size, in_channels=in_channels, out_dim=latent_dim,
                                  channels=channels)
        self.fc_var = nn.Linear(self.encoder.flat_dim, latent_dim)
        self.side = self.encoder.final_side
        self.top = channels[-1]
        self.fc_dec = nn.Linear(latent_dim, self.encoder.flat_dim)
        rev = list(channels[::-1])
        blocks = []
        for c_in, c_out in zip(rev[:-1], rev[1:]):
            blocks += [nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1,
                                          output_padding=1),
                       nn.BatchNorm2d(c_out), nn.LeakyReLU(0.01)]
        c0 = rev[-1]
        blocks += [nn.ConvTranspose2d(c0, c0, kernel_size=3, stride=2, padding=1,
                                      output_padding=1),
                   nn.BatchNorm2d(c0), nn.LeakyReLU(0.01),
                   nn.Conv2d(c0, in_channels, kernel_size=3, padding=1), nn.Sigmoid()]
        self.deconv = nn.Sequential(*blocks)

    def encode(self, x):
        h = self.encoder.features(x)
        return self.encoder.fc(h), self.fc_var(h)

    def decode(self, z):
        h = self.fc_dec(z).view(-1, self.top, self.side, self.side)
        return self.deconv(h)


class VAEPair(nn.Module):
    def __init__(self, views: list[nn.Module], latent_dim: int, n_classes: int, width: int):
        super().__init__()
        self.views = nn.ModuleList(views)
        self.label_head = nn.Linear(latent_dim, n_classes)
        self.modality_clf = nn.Sequential(
            nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))


def reparameterise(mu, logvar, generator=None):
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu, logvar):
    """Batch mean of the per-sample KL(N(mu, sigma^2) || N(0, I)) summed over dimensions."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def build(vae, x1: np.ndarray, x2: np.ndarray, n_classes: int) -> VAEPair:
    """The two views and the heads, sized for the training data."""
    latent = vae.latent_dim or (128 if vae.kind == "mlp" else 512)
    if vae.kind == "mlp":
        views = [MLPView(x.shape[1], latent, vae.width) for x in (x1, x2)]
    else:
        views = [CNNView(x.shape[2], x.shape[1], latent, vae.channels) for x in (x1, x2)]
    return VAEPair(views, latent, n_classes, vae.width)


def to_tensor(vae, x: np.ndarray, idx=None) -> torch.Tensor:
    """Rows ``idx`` of ``x`` as a float tensor on ``vae.device`` (uint8 images scaled to [0, 1])."""
    part = x if idx is None else x[idx]
    out = torch.as_tensor(np.ascontiguousarray(part), device=vae.device)
    if x.dtype == np.uint8:
        return out.float().div_(255.0)
    return out.float()


def losses(vae, xs, ts, *, fool: bool, generator=None) -> dict:
    """Loss terms on one mini-batch of each modality; returns tensors (and the latents)."""
    net = vae.model_
    zs, recon, kl = [], 0.0, 0.0
    for m, x in enumerate(xs):
        mu, logvar = net.views[m].encode(x)
        z = reparameterise(mu, logvar, generator)
        recon = recon + F.mse_loss(net.views[m].decode(z), x)
        kl = kl + kl_divergence(mu, logvar)
        zs.append(z)
    label_ce = 0.5 * (F.cross_entropy(net.label_head(zs[0]), ts[0])
                      + F.cross_entropy(net.label_head(zs[1]), ts[1]))
    targets = (1, 0) if fool else (0, 1)
    modality_ce = 0.5 * sum(
        F.cross_entropy(net.modality_clf(z), torch.full((len(z),), tgt, device=z.device))
        for z, tgt in zip(zs, targets))
    loss = recon + vae.lam * kl + vae.alpha * label_ce + vae.beta * modality_ce
    return {"recon": recon, "kl": kl, "label_ce": label_ce, "modality_ce": modality_ce,
            "loss": loss, "z": zs}


def batches(n_long: int, n: int, n_steps: int, rng: np.random.Generator):
    """``n_steps`` index chunks for a modality of ``n`` samples, cycling if ``n < n_long``."""
    reps = -(-n_long // n)
    order = np.concatenate([rng.permutation(n) for _ in range(reps)])[:n_long]
    return np.array_split(order, n_steps)


def train(vae, x1, y1, x2, y2, val, rng):
    """Train ``vae.model_`` for ``vae.epochs`` epochs (one-cycle schedule), recording
    ``vae.history_`` and keeping the weights of the lowest validation loss (module docstring
    of :mod:`propalign_lite.baselines.vae`)."""
    net = vae.model_
    disc_params = list(net.modality_clf.parameters())
    if vae.adversarial:
        disc_ids = {id(p) for p in disc_params}
        ae_params = [p for p in net.parameters() if id(p) not in disc_ids]
    else:
        ae_params = list(net.parameters())
    opts = [torch.optim.Adam(ae_params, lr=vae.lr, weight_decay=vae.weight_decay)]
    if vae.adversarial:
        opts.append(torch.optim.Adam(disc_params, lr=vae.disc_lr or vae.lr,
                                     weight_decay=vae.weight_decay))
    scheds = [one_cycle(o, vae.epochs, vae.pct_start) for o in opts]

    keys = [f"train_{p}" for p in PARTS]
    if vae.adversarial:
        keys += ["train_disc_ce", "n_ae_steps", "n_disc_steps"]
    if val is not None:
        keys += [f"val_{p}" for p in PARTS]
    vae.history_ = {"epoch": [], "lr": [], "seconds": [], **{k: [] for k in keys}}
    best, best_state = math.inf, None
    n_long = max(len(x1), len(x2))
    n_steps = max(1, min(-(-n_long // vae.batch_size), n_long // 2))

    epochs = range(vae.epochs)
    if vae.progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=f"{vae.kind} VAE")
    for epoch in epochs:
        start = time.perf_counter()
        net.train()
        vae.history_["epoch"].append(epoch + 1)
        vae.history_["lr"].append(opts[0].param_groups[0]["lr"])
        b1 = batches(n_long, len(x1), n_steps, rng)
        b2 = batches(n_long, len(x2), n_steps, rng)
        sums = dict.fromkeys(PARTS + ("disc_ce",), 0.0)
        count, n_ae, n_disc = 0, 0, 0
        for i1, i2 in zip(b1, b2):
            xs = (to_tensor(vae, x1, i1), to_tensor(vae, x2, i2))
            ts = (torch.as_tensor(y1[i1], device=vae.device),
                  torch.as_tensor(y2[i2], device=vae.device))
            out = losses(vae, xs, ts, fool=vae.adversarial)
            opts[0].zero_grad(set_to_none=True)
            out["loss"].backward()
            opts[0].step()
            n_ae += 1
            if vae.adversarial:
                # discriminator step on the detached latents, true modality labels
                z1, z2 = (z.detach() for z in out["z"])
                d_loss = 0.5 * (
                    F.cross_entropy(net.modality_clf(z1),
                                    torch.zeros(len(z1), dtype=torch.long, device=z1.device))
                    + F.cross_entropy(net.modality_clf(z2),
                                      torch.ones(len(z2), dtype=torch.long, device=z2.device)))
                opts[1].zero_grad(set_to_none=True)
                d_loss.backward()
                opts[1].step()
                n_disc += 1
                sums["disc_ce"] += d_loss.item() * len(i1)
            for p in PARTS:
                sums[p] += out[p].item() * len(i1)
            count += len(i1)
        for s in scheds:
            s.step()
        for p in PARTS:
            vae.history_[f"train_{p}"].append(sums[p] / count)
        if vae.adversarial:
            vae.history_["train_disc_ce"].append(sums["disc_ce"] / count)
            vae.history_["n_ae_steps"].append(n_ae)
            vae.history_["n_disc_steps"].append(n_disc)
        if val is not None:
            scores = evaluate_losses(vae, *val, seed=vae.val_seed_)
            for p in PARTS:
                vae.history_[f"val_{p}"].append(scores[p])
            if scores["loss"] < best:
                best = scores["loss"]
                best_state = copy.deepcopy(net.state_dict())
                vae.best_epoch_ = epoch + 1
        vae.history_["seconds"].append(time.perf_counter() - start)
        if vae.progress:
            epochs.set_postfix(loss=vae.history_["train_loss"][-1],
                               val=vae.history_.get("val_loss", [None])[-1])
    if best_state is not None:
        net.load_state_dict(best_state)
        vae.best_val_loss_ = best
    else:
        vae.best_epoch_ = vae.epochs
        vae.best_val_loss_ = None
    net.eval()


@torch.no_grad()
def evaluate_losses(vae, x1, y1, x2, y2, *, seed=None) -> dict:
    """Mean loss terms over the data, chunk j of ``x1`` with chunk j of ``x2``; the latent
    noise is drawn from a generator seeded with ``seed``."""
    net = vae.model_
    net.eval()
    gen = torch.Generator(device=vae.device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    n_long = max(len(x1), len(x2))
    n_steps = max(1, -(-n_long // vae.batch_size))
    sums, count = dict.fromkeys(PARTS, 0.0), 0
    # evaluation pairs chunk j of x1 with chunk j of x2 (no shuffling, no cycling beyond
    # what is needed to cover the larger modality)
    idx1 = np.array_split(np.resize(np.arange(len(x1)), n_long), n_steps)
    idx2 = np.array_split(np.resize(np.arange(len(x2)), n_long), n_steps)
    for i1, i2 in zip(idx1, idx2):
        xs = (to_tensor(vae, x1, i1), to_tensor(vae, x2, i2))
        ts = (torch.as_tensor(y1[i1], device=vae.device),
              torch.as_tensor(y2[i2], device=vae.device))
        out = losses(vae, xs, ts, fool=vae.adversarial, generator=gen)
        for p in PARTS:
            sums[p] += out[p].item() * len(i1)
        count += len(i1)
    return {p: sums[p] / count for p in PARTS}
