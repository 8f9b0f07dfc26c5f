r"""Two-view interventional images of two balls (the paper's synthetic experiment).

Generative model (the official generator, re-implemented; see the book's reproduction notes):

* Latent :math:`z = (x_1, y_1, x_2, y_2) \in [0, 1]^4`, the positions of two balls.
  Parent: :math:`x_1, y_1 \sim U(0.1, 0.9)`. Child (non-linear SCM): with
  :math:`c = 1.25 (x_1^2 + y_1^2)`, if :math:`c \ge 1` then :math:`x_2 \sim U(0.1, 0.5),
  y_2 \sim U(0.5, 0.9)`, else :math:`x_2 \sim U(0.5, 0.9), y_2 \sim U(0.1, 0.5)`.
* Treatment: every sample gets one do-intervention, coordinate :math:`k \sim U\{0,1,2,3\}` set
  to :math:`v \sim U\{0.25, 0.5, 0.75\}`; intervening on a parent coordinate re-draws the child
  from its mechanism. The class is :math:`t = 3k + \text{index}(v)` (12 classes).
* Views: :math:`x^{(e)} = f^{(e)}(z, u^{(e)})`. The modality noise :math:`u^{(e)}` is a background
  of 25 large random circles coloured from a per-view colormap (``summer`` for view 1,
  ``Wistia`` for view 2), drawn independently for each view. View 1 draws the balls as small
  circles at :math:`S\cdot(x, y)`; view 2 draws small squares at the fixed transform
  :math:`p' = \sigma(2((p - 0.5)R_\theta + 0.2))` of each ball position :math:`p`
  (:math:`\theta = 0.3\pi`). Images are rendered with pygame (headless) and flipped vertically.

Row ``i`` of both views shares ``z[i]``: the hidden ground-truth pairing is the row index.

Example
-------
>>> from propalign_lite.datasets import make_balls
>>> data = make_balls(24, image_size=32, random_state=0)
>>> data.x1.shape, data.x2.shape, data.z.shape, data.t.shape
((24, 32, 32, 3), (24, 32, 32, 3), (24, 4), (24,))
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_array, check_int, check_random_state

__all__ = ["N_BACKGROUND", "INTERVENTION_VALUES", "THETA", "BALL_COLOURS_VIEW1",
           "BACKGROUND_CMAPS", "BallsData", "treatment_name", "sample_latents",
           "view2_transform", "make_balls", "channel_stats"]

N_BACKGROUND = 25
INTERVENTION_VALUES = (0.25, 0.5, 0.75)
THETA = 0.3 * np.pi
BALL_COLOURS_VIEW1 = ((2, 156, 154), (222, 100, 100))
BACKGROUND_CMAPS = ("summer", "Wistia")


@dataclass
class BallsData:
    """Images of both views with their shared latents and treatments.

    Attributes
    ----------
    x1, x2 : uint8 arrays ``(n, S, S, 3)``
        View 1 (circles) and view 2 (squares); row ``i`` of both shares ``z[i]``.
    z : float array ``(n, 4)``
        Ball positions ``(x1, y1, x2, y2)`` in ``[0, 1]`` (not shifted by -0.5 as the official
        stored arrays are).
    t : int array ``(n,)``
        Treatment class ``3 * k + index(v)`` in ``0..11``.
    target, value : arrays ``(n,)``
        The intervened coordinate ``k`` and the value ``v`` it was set to.
    """

    x1: np.ndarray
    x2: np.ndarray
    z: np.ndarray
    t: np.ndarray
    target: np.ndarray
    value: np.ndarray
    image_size: int = field(default=128)

    def __len__(self) -> int:
        return len(self.t)

    def subset(self, idx) -> "BallsData":
        """The samples ``idx`` (an index array or boolean mask), both views kept paired."""
        return BallsData(self.x1[idx], self.x2[idx], self.z[idx], self.t[idx],
                         self.target[idx], self.value[idx], self.image_size)


def treatment_name(t: int) -> str:
    """Readable name of class ``t``, e.g. ``do(y1=0.50)``."""
    n = 4 * len(INTERVENTION_VALUES)
    t = check_int(t, "t", min_value=0, max_value=n - 1)
    k, i = divmod(t, len(INTERVENTION_VALUES))
    return f"do({('x1', 'y1', 'x2', 'y2')[k]}={INTERVENTION_VALUES[i]:.2f})"


def _draw_child(x1, y1, rng):
    """Child ball position from the non-linear mechanism, vectorised."""
    upper = 1.25 * (x1 ** 2 + y1 ** 2) >= 1.0
    x2 = np.where(upper, rng.uniform(0.1, 0.5, x1.shape), rng.uniform(0.5, 0.9, x1.shape))
    y2 = np.where(upper, rng.uniform(0.5, 0.9, x1.shape), rng.uniform(0.1, 0.5, x1.shape))
    return x2, y2


def sample_latents(n: int, *, random_state=None):
    """Latents and interventions: returns ``z (n, 4), t (n,), target k (n,), value v (n,)``."""
    n = check_int(n, "n")
    rng = check_random_state(random_state)
    x1 = rng.uniform(0.1, 0.9, n)
    y1 = rng.uniform(0.1, 0.9, n)
    k = rng.integers(0, 4, n)
    vi = rng.integers(0, len(INTERVENTION_VALUES), n)
    v = np.asarray(INTERVENTION_VALUES)[vi]
    x1 = np.where(k == 0, v, x1)
    y1 = np.where(k == 1, v, y1)
    x2, y2 = _draw_child(x1, y1, rng)       # drawn after the parent intervention
    z = np.stack([x1, y1, x2, y2], axis=1)
    z[k == 2, 2] = v[k == 2]
    z[k == 3, 3] = v[k == 3]
    return z, 3 * k + vi, k, v


def view2_transform(p: np.ndarray) -> np.ndarray:
    r"""Fixed map of view 2: :math:`p' = \sigma(2((p - 0.5) R_\theta + 0.2))`, rows ``p=(x, y)``."""
    R = np.array([[np.cos(THETA), -np.sin(THETA)], [np.sin(THETA), np.cos(THETA)]])
    return 1.0 / (1.0 + np.exp(-2.0 * ((p - 0.5) @ R + 0.2)))


def _pygame():
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    import pygame.gfxdraw

    if not pygame.display.get_init():
        pygame.display.init()
    return pygame


def _colours(cmap_name: str, values: np.ndarray, scale: float = 255.0) -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps[cmap_name](values)
    return (rgba[..., :3] * scale).astype(int)


def make_balls(n: int, *, image_size: int = 128, random_state=None) -> BallsData:
    """Generate ``n`` paired samples of the two-view interventional ball images.

    Parameters
    ----------
    n : int
        Number of samples (units); each has both views.
    image_size : int
        Side ``S`` of the square RGB images (128 in the paper). Object sizes scale with ``S``
        (ball radius ``0.02 S``, square side ``0.04 S``, background radius ``0.3 S``), with a
        floor of 1 px radius / 2 px side so small images still show the balls.
    random_state : None, int or numpy Generator
        Seed; the output is a deterministic function of it.

    Returns
    -------
    BallsData
    """
    check_int(n, "n")
    check_int(image_size, "image_size", min_value=8)
    rng = check_random_state(random_state)
    z, t, k, v = sample_latents(n, random_state=rng)
    S = int(image_size)
    # modality noise u^(e): independent backgrounds per view
    bg_pos = rng.uniform(0, 1, (2, n, N_BACKGROUND, 2))
    bg_col = [_colours(BACKGROUND_CMAPS[e], rng.uniform(0, 1, (n, N_BACKGROUND)))
              for e in range(2)]
    ball_col2 = _colours("viridis", np.array([0.1, 0.6]), scale=256.0)
    z2 = np.concatenate([view2_transform(z[:, :2]), view2_transform(z[:, 2:])], axis=1)

    pg = _pygame()
    surf = pg.Surface((S, S))
    bg_r = int(0.3 * S)
    ball_r = max(1, int(0.02 * S))
    side = max(2, int(0.04 * S))
    x1 = np.empty((n, S, S, 3), np.uint8)
    x2 = np.empty((n, S, S, 3), np.uint8)
    bg_px = (bg_pos * S).astype(int)
    for i in range(n):
        for e, out in ((0, x1), (1, x2)):
            surf.fill((255, 255, 255))
            for (cx, cy), col in zip(bg_px[e, i], bg_col[e][i]):
                col = tuple(int(c) for c in col)
                pg.gfxdraw.aacircle(surf, int(cx), int(cy), bg_r, col)
                pg.gfxdraw.filled_circle(surf, int(cx), int(cy), bg_r, col)
            if e == 0:
                for b in range(2):
                    centre = (int(S * z[i, 2 * b]), int(S * z[i, 2 * b + 1]))
                    pg.draw.circle(surf, BALL_COLOURS_VIEW1[b], centre, ball_r)
            else:
                for b in range(2):
                    rect = pg.Rect(int(S * z2[i, 2 * b]), int(S * z2[i, 2 * b + 1]), side, side)
                    pg.draw.rect(surf, tuple(int(c) for c in ball_col2[b]), rect)
            img = np.frombuffer(pg.image.tobytes(surf, "RGB"), np.uint8).reshape(S, S, 3)
            out[i] = img[::-1]                                  # vertical flip
    return BallsData(x1=x1, x2=x2, z=z, t=t.astype(np.int64), target=k.astype(np.int64),
                     value=v, image_size=S)


def channel_stats(x: np.ndarray, *, max_samples: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 images ``(n, S, S, C)`` scaled to [0, 1].

    This is what the official code meant to use for normalisation (its ``MU_noisy_*``
    constants); it actually normalised both views with white-background constants.
    Float images are taken to be in [0, 1] already (they are not divided by 255 again).
    """
    max_samples = check_int(max_samples, "max_samples")
    if x is None or isinstance(x, (str, bytes, dict)):
        raise TypeError(f"x must be an array of images (n, S, S, C), got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3) or arr.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch of images (n, S, S, C) with 1 or 3 "
                         f"channels, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        sub = arr[:max_samples].astype(np.float64) / 255.0
    elif arr.dtype.kind == "f":
        sub = check_array(arr[:max_samples], "x", ndim=4)
        if sub.min() < 0 or sub.max() > 1:
            raise ValueError(f"x: float images must be in [0, 1], got values in "
                             f"[{sub.min():.3g}, {sub.max():.3g}] (or pass uint8 0-255 images)")
    else:
        raise ValueError(f"x must hold uint8 (0-255) or float ([0, 1]) images, got dtype "
                         f"{arr.dtype}")
    return sub.mean(axis=(0, 1, 2)), sub.std(axis=(0, 1, 2))
