"""Small torch helpers shared by the classifiers, the VAE baseline and the trainer."""
from __future__ import annotations

import torch


def one_cycle(opt: torch.optim.Optimizer, epochs: int, pct_start: float = 0.1):
    """``OneCycleLR(max_lr=lr, total_steps=epochs, pct_start)``, meant to be stepped once per epoch
    (as the official code does); ``max_lr`` is the optimiser's learning rate.

    torch divides by zero when ``pct_start * epochs == 1`` (e.g. 10 epochs at 0.1: a warm-up
    phase that ends at step 0); the warm-up fraction is then nudged up by one part in a million,
    which keeps the schedule's shape.
    """
    if abs(pct_start * epochs - 1) < 1e-9:
        pct_start = pct_start * (1 + 1e-6)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"],
                                               total_steps=epochs, pct_start=pct_start)
