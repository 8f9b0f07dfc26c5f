"""The encoders shared by the propensity classifiers and the VAE baseline.

Both follow the paper's appendix (and the official code):

* :class:`CNNEncoder` -- five blocks of ``Conv2d(k=3, stride=2, padding=1) -> BatchNorm2d ->
  LeakyReLU(0.01)`` with 32, 64, 128, 256, 512 channels; each block halves the image side, so a
  128 px image ends as a 512 x 4 x 4 map (8192 features), then ``Linear(8192, out_dim)``.
* :class:`MLPEncoder` -- ``Linear(d_in, w) -> ReLU -> BN``, three ``Linear(w, w) -> BN -> ReLU``
  blocks and a final ``Linear(w, w)``: five linear layers of constant width ``w = 1024``.

Example
-------
>>> import torch
>>> enc = CNNEncoder(image_size=32, out_dim=128)
>>> enc(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 128])
>>> MLPEncoder(10, width=64)(torch.zeros(4, 10)).shape
torch.Size([4, 64])
"""
from __future__ import annotations

from numbers import Integral

from torch import nn

__all__ = ["CNN_CHANNELS", "CNNEncoder", "MLPEncoder", "make_probe_mlp"]

CNN_CHANNELS = (32, 64, 128, 256, 512)


class CNNEncoder(nn.Module):
    """Convolutional encoder for ``(N, 3, S, S)`` images, ``S`` a multiple of 32."""

    def __init__(self, image_size: int = 128, *, in_channels: int = 3, out_dim: int = 128,
                 channels: tuple[int, ...] = CNN_CHANNELS):
        super().__init__()
        factor = 2 ** len(channels)
        if image_size % factor:
            raise ValueError(f"image_size must be a multiple of {factor}, got {image_size}")
        layers, c_in = [], in_channels
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1),
                       nn.BatchNorm2d(c_out), nn.LeakyReLU(0.01)]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.final_side = image_size // factor
        self.flat_dim = c_in * self.final_side ** 2
        self.fc = nn.Linear(self.flat_dim, out_dim)
        self.out_dim = out_dim

    def features(self, x):
        """The flattened convolutional feature map (before the linear layer)."""
        return self.conv(x).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


class MLPEncoder(nn.Module):
    """Five-layer MLP of constant width with batch normalisation."""

    def __init__(self, d_in: int, *, width: int = 1024, n_hidden: int = 3):
        super().__init__()
        layers = [nn.Linear(d_in, width), nn.ReLU(), nn.BatchNorm1d(width)]
        for _ in range(n_hidden):
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()]
        layers.append(nn.Linear(width, width))
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x):
        return self.net(x)


def make_probe_mlp(d_in: int, d_out: int, *, hidden: int | None = None) -> nn.Sequential:
    """The paper's two-layer probe, ``Linear -> BatchNorm1d -> ReLU -> Linear``.

    Layers: ``Linear(d_in, h) -> BatchNorm1d(h) -> ReLU -> Linear(h, d_out)`` with
    ``h = 2 * d_in`` unless ``hidden`` is given (the official code predicts 200 PCA
    components of RNA from 134 proteins through a 268-wide hidden layer).

    Example
    -------
    >>> probe = make_probe_mlp(134, 200)
    >>> [type(layer).__name__ for layer in probe]
    ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    >>> probe[0].out_features, probe[3].out_features
    (268, 200)
    """
    hidden = 2 * d_in if hidden is None else hidden
    for name, val in (("d_in", d_in), ("d_out", d_out), ("hidden", hidden)):
        if not isinstance(val, Integral) or isinstance(val, bool) or val < 1:
            raise ValueError(f"{name} must be a positive integer, got {val!r}")
    return nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))
