r"""Propensity-score classifiers: one per modality, predicting the treatment from the sample.

The propensity score of a sample is :math:`\pi(x) = P(t \mid x)`. Under the paper's model
(potential views :math:`x^{(e)} = f^{(e)}(z, u^{(e)})`, injective :math:`f^{(e)}`, treatment
independent of the modality noise) it equals :math:`\pi(z)` for *both* modalities
(Proposition 1), so the scores of the two classifiers live in one shared space. The embedding
used for matching is the classifier's raw **logits** :math:`\log \pi(x) + c(x)` (official
code); softmax-invariant variants are studied in the ablation chapter.

The ``"mlp"`` encoder also takes a scipy sparse matrix (e.g. an AnnData's ``.X`` of counts):
it stays sparse in memory and each mini-batch is densified on its own, so training and
inference need memory for one batch of dense rows, not for the whole matrix.

:class:`PropensityClassifier` = encoder (:mod:`propalign_lite.encoders`) + linear head, trained
with cross-entropy, Adam (weight decay 1e-4) and a one-cycle learning-rate schedule stepped
once per epoch; the weights of the epoch with the lowest validation loss are kept.

Example
-------
>>> import numpy as np
>>> from propalign_lite import PropensityClassifier
>>> rng = np.random.default_rng(0)
>>> t = rng.integers(0, 3, 300)
>>> x = rng.normal(size=(300, 5)) + 2 * np.eye(5)[t]
>>> clf = PropensityClassifier("mlp", width=32, epochs=5, lr=1e-2, random_state=0)
>>> clf = clf.fit(x[:200], t[:200], x_val=x[200:], t_val=t[200:])
>>> clf.logits(x[200:]).shape
(100, 3)
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
from scipy import sparse
from torch import nn

from ._torch_utils import one_cycle
from ._validation import (check_array, check_sparse, check_choice, check_int, check_labels, check_number,
                          torch_seed, validate_random_state)
from .encoders import CNNEncoder, MLPEncoder

__all__ = ["ENCODERS", "PRECISIONS", "PropensityClassifier"]

ENCODERS = ("cnn", "mlp")
PRECISIONS = ("float32", "bf16")


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether an array of ``nbytes`` is worth holding on ``device``: a GPU with at least four
    times that much free memory (the CPU never: its batches are cut from the array itself)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return 4 * nbytes <= free


def _fork_devices(device) -> list:
    dev = torch.device(device)
    return [dev.index or 0] if dev.type == "cuda" else []


class PropensityClassifier:
    """Estimate propensity scores of one modality with a neural classifier.

    Parameters
    ----------
    encoder : {"cnn", "mlp"}
        ``"cnn"`` for images ``(n, S, S, 3)`` (uint8 or float in [0, 1]) or ``(n, 3, S, S)``;
        ``"mlp"`` for feature vectors ``(n, d)``.
    epochs, batch_size, lr, weight_decay
        Optimisation (paper: 100 epochs, batch 256, lr 1e-4, weight decay 1e-4).
    pct_start : float
        Warm-up fraction of the one-cycle schedule (official: 0.1).
    width : int
        MLP width (paper: 1024).
    feature_dim : int
        Output size of the CNN's linear layer before the head (official: 128).
    standardize : bool or "auto"
        Standardise inputs with statistics of the training set: per colour channel for
        images, per feature for vectors. ``"auto"`` = images only. (The official code used
        constants from a white-background version of the data; see the reproduction notes.)
    random_state : None, int or numpy Generator
        Seeds weight initialisation and batch order (through a forked torch RNG: the global
        torch and numpy RNG states are left as they were).
    device : str
        Torch device (CPU by default). On a GPU the training and validation arrays are
        copied to it once (images as bytes) when they fit in a quarter of its free memory,
        so each mini-batch is cut on the GPU instead of being converted and sent from the CPU.
    precision : {"float32", "bf16"}
        ``"bf16"`` runs the forward passes under bfloat16 autocast (weights, gradients and the
        optimiser stay float32); it pays where large matrix products dominate a step. For
        the paper's small CNN (128 px, batch 256) on an H200 it was slower than float32 (6.1
        against 4.8 ms a step), so float32 is the default. Logits are float64 either way.
    progress : bool
        Show a progress bar over epochs.

    Attributes
    ----------
    classes_ : array
        Sorted treatment labels; logit column ``c`` belongs to ``classes_[c]``.
    model_ : torch.nn.Module
        The trained network (best validation epoch).
    history_ : dict of lists
        ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``, ``lr`` and ``seconds`` per epoch.
    best_epoch_ : int
        Epoch (1-based) whose weights were kept.
    """

    def __init__(self, encoder: str = "mlp", *, epochs: int = 100, batch_size: int = 256,
                 lr: float = 1e-4, weight_decay: float = 1e-4, pct_start: float = 0.1,
                 width: int = 1024, feature_dim: int = 128, standardize="auto",
                 random_state=None, device: str = "cpu", precision: str = "float32",
                 progress: bool = False):
        self.encoder = encoder
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.pct_start = pct_start
        self.width = width
        self.feature_dim = feature_dim
        self.standardize = standardize
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.progress = progress
        self._check_params()
        self.epochs = int(epochs)

    def _check_params(self) -> None:
        check_choice(self.encoder, "encoder", ENCODERS)
        check_int(self.epochs, "epochs")
        check_int(self.batch_size, "batch_size", min_value=2)   # BatchNorm needs 2 samples
        check_number(self.lr, "lr", low=0, low_open=True)
        check_number(self.weight_decay, "weight_decay", low=0)
        check_number(self.pct_start, "pct_start", low=0, high=1)
        check_int(self.width, "width")
        check_int(self.feature_dim, "feature_dim")
        check_choice(self.standardize, "standardize", (True, False, "auto"))
        check_choice(self.precision, "precision", PRECISIONS)
        validate_random_state(self.random_state)

    # ---------------------------------------------------------------- data handling
    def _as_float(self, x, name: str) -> np.ndarray:
        """Validate inputs; images become float32 ``(n, C, S, S)`` in [0, 1] lazily per batch."""
        if self.encoder == "mlp":
            arr = (check_sparse(x, name) if sparse.issparse(x)
                   else check_array(x, name, ndim=2, dtype=np.float32))
            if hasattr(self, "input_shape_") and arr.shape[1:] != self.input_shape_:
                raise ValueError(f"{name} has {arr.shape[1]} features but the classifier was "
                                 f"fitted on {self.input_shape_[0]}")
            return arr
        if x is None or isinstance(x, (str, bytes, dict)):
            raise TypeError(f"{name} must be an array of images, got {type(x).__name__}")
        arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
        if arr.ndim != 4:
            raise ValueError(f"{name} must be a batch of images (n, S, S, C) or (n, C, S, S), "
                             f"got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty")
        if arr.shape[-1] not in (1, 3) and arr.shape[1] not in (1, 3):
            raise ValueError(f"{name} must have 1 or 3 colour channels, first or last, got "
                             f"shape {arr.shape}")
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} is complex; pass real images")
        if arr.dtype.kind not in "uif" or (arr.dtype.kind in "ui" and arr.dtype != np.uint8):
            if arr.dtype.kind not in "ui":
                raise ValueError(f"{name} must be uint8 or float images, got dtype {arr.dtype}")
            raise ValueError(f"{name}: integer images must be uint8 (0-255), got {arr.dtype}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0 or hi > 1:
                raise ValueError(f"{name}: float images must be in [0, 1], got values in "
                                 f"[{lo:.3g}, {hi:.3g}] (pass uint8 0-255 images, or divide "
                                 "by 255)")
        if hasattr(self, "input_shape_") and arr.shape[1:] != self.input_shape_:
            raise ValueError(f"{name} has images of shape {arr.shape[1:]} but the classifier "
                             f"was fitted on {self.input_shape_}")
        return arr

    def _on_device(self, x):
        """``x`` as the loops index it: a torch tensor on the device (same dtype, so images
        stay bytes) when :func:`_fits_on_device` says so, else ``x`` itself."""
        device = torch.device(self.device)
        if sparse.issparse(x) or not _fits_on_device(np.asarray(x).nbytes, device):
            return x
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)

    def _batch_tensor(self, x) -> torch.Tensor:
        """One batch as the network's input, on the device: float32, channels first, images
        scaled to [0, 1], standardised (``x``: array, sparse matrix or tensor, raw dtype)."""
        if isinstance(x, torch.Tensor):
            xb = x
        elif sparse.issparse(x):
            xb = torch.from_numpy(np.ascontiguousarray(x.toarray(), dtype=np.float32))
        else:
            xb = torch.from_numpy(np.ascontiguousarray(x))
        device = torch.device(self.device)
        xb = xb.to(device)                    # before the cast: bytes are 4x less to send
        if self.encoder == "cnn":
            if xb.shape[-1] in (1, 3) and xb.shape[1] not in (1, 3):      # channels last
                xb = xb.permute(0, 3, 1, 2)
            # channels_last memory suits the GPU's convolutions; the values are the same
            fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
            scale = xb.dtype == torch.uint8
            xb = xb.contiguous(memory_format=fmt).float()
            if scale:
                xb = xb / 255.0
        else:
            xb = xb.float()
        if self.mean_ is not None:
            xb = (xb - self.mean_) / self.std_
        return xb

    def _autocast(self):
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")

    def _fit_scaler(self, x: np.ndarray) -> None:
        std = self.standardize is True or (self.standardize == "auto" and self.encoder == "cnn")
        self.mean_ = self.std_ = None
        if not std:
            return
        sub = x[: min(x.shape[0], 4000)]
        if sparse.issparse(sub):
            sub = sub.toarray()
        xb = self._batch_tensor(sub)          # on the device, as every batch will be
        dims = (0, 2, 3) if self.encoder == "cnn" else (0,)
        shape = (1, -1, 1, 1) if self.encoder == "cnn" else (1, -1)
        self.mean_ = xb.mean(dim=dims).reshape(shape)
        self.std_ = xb.std(dim=dims).clamp_min(1e-6).reshape(shape)

    def _build(self, x: np.ndarray, n_classes: int) -> nn.Module:
        if self.encoder == "mlp":
            enc = MLPEncoder(x.shape[1], width=self.width)
        else:
            side = x.shape[2] if x.shape[1] in (1, 3) else x.shape[1]
            enc = CNNEncoder(image_size=side, out_dim=self.feature_dim)
        return nn.Sequential(enc, nn.Linear(enc.out_dim, n_classes))

    def _encode_labels(self, t, name: str, n: int) -> np.ndarray:
        t = check_labels(t, name, n)
        unknown = np.setdiff1d(np.unique(t), self.classes_)
        if unknown.size:
            raise ValueError(f"{name} has labels never seen in training: {unknown[:10].tolist()}")
        return np.searchsorted(self.classes_, t)

    # ---------------------------------------------------------------- training
    def fit(self, x, t, *, x_val=None, t_val=None, callback=None) -> "PropensityClassifier":
        """Train on ``(x, t)``; keep the weights with the lowest loss on ``(x_val, t_val)``.

        Without validation data the last epoch is kept. ``callback(epoch, self)``, if given,
        runs after every epoch with the model in eval mode (e.g. to track matching quality);
        what it returns is stored in ``history_["callback"]``.
        """
        self._check_params()
        for attr in ("input_shape_", "model_"):        # refitting starts afresh
            self.__dict__.pop(attr, None)
        x = self._as_float(x, "x")
        t = check_labels(t, "t", x.shape[0])
        if x.shape[0] < 2:
            raise ValueError(f"x has {x.shape[0]} sample(s); training needs at least 2")
        self.classes_ = np.unique(t)
        if len(self.classes_) < 2:
            raise ValueError("t must contain at least two treatments to learn a propensity score")
        y = np.searchsorted(self.classes_, t)
        has_val = x_val is not None
        if has_val != (t_val is not None):
            raise ValueError("give both x_val and t_val, or neither")
        if has_val:
            x_val = self._as_float(x_val, "x_val")
            y_val = self._encode_labels(t_val, "t_val", x_val.shape[0])
            if x_val.shape[1:] != x.shape[1:]:
                raise ValueError(f"x_val samples have shape {x_val.shape[1:]}, x has {x.shape[1:]}")
        seed = torch_seed(self.random_state)
        with torch.random.fork_rng(devices=_fork_devices(self.device)):
            torch.manual_seed(seed)       # weight init and dropout, without touching the global RNG
            gen = torch.Generator()
            gen.manual_seed(seed)         # batch order
            self._fit_loop(x, y, x_val, y_val if has_val else None, has_val, gen, callback)
        self.input_shape_ = tuple(x.shape[1:])
        return self

    def _fit_loop(self, x, y, x_val, y_val, has_val, gen, callback) -> None:
        self._fit_scaler(x)
        model = self._build(x, len(self.classes_)).to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = one_cycle(opt, self.epochs, self.pct_start)
        loss_fn = nn.CrossEntropyLoss()
        device = torch.device(self.device)
        yt = torch.from_numpy(y).to(device)
        source = self._on_device(x)
        val_source = self._on_device(x_val) if has_val else None
        with_tensor = isinstance(source, torch.Tensor)
        hist = {k: [] for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "lr",
                                "seconds", "callback")}
        best, best_state, self.best_epoch_ = np.inf, None, self.epochs
        epochs = range(1, self.epochs + 1)
        if self.progress:
            from tqdm.auto import tqdm
            epochs = tqdm(epochs, desc=f"{self.encoder} classifier", leave=False)
        self.model_ = model
        for epoch in epochs:
            start = time.perf_counter()
            model.train()
            perm = torch.randperm(x.shape[0], generator=gen).numpy()
            total, seen = torch.zeros((), dtype=torch.float64, device=device), 0
            for s in range(0, x.shape[0], self.batch_size):
                idx = perm[s:s + self.batch_size]
                if len(idx) < 2:          # BatchNorm needs two samples
                    continue
                sel = torch.from_numpy(idx).to(device)
                with self._autocast():
                    logits = model(self._batch_tensor(source[sel] if with_tensor else x[idx]))
                loss = loss_fn(logits.float(), yt[sel])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.detach().double() * len(idx)     # no sync with the GPU per step
                seen += len(idx)
            hist["lr"].append(opt.param_groups[0]["lr"])
            sched.step()
            hist["epoch"].append(epoch)
            hist["train_loss"].append(float(total) / max(seen, 1))
            model.eval()
            if has_val:
                logits = self._predict(val_source, 1024)
                vl = float(nn.functional.cross_entropy(torch.from_numpy(logits),
                                                       torch.from_numpy(y_val)))
                hist["val_loss"].append(vl)
                hist["val_accuracy"].append(float((logits.argmax(1) == y_val).mean()))
                if vl < best:
                    best, self.best_epoch_ = vl, epoch
                    best_state = copy.deepcopy(model.state_dict())
            hist["callback"].append(callback(epoch, self) if callback is not None else None)
            hist["seconds"].append(time.perf_counter() - start)
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        self.history_ = hist

    # ---------------------------------------------------------------- inference
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this PropensityClassifier is not fitted yet; call fit first")

    def logits(self, x, *, batch_size: int = 1024) -> np.ndarray:
        """Raw logits ``(n, T)``: the propensity embedding used for matching."""
        self._check_fitted()
        batch_size = check_int(batch_size, "batch_size")
        return self._predict(self._as_float(x, "x"), batch_size)

    @torch.no_grad()
    def _predict(self, x, batch_size: int) -> np.ndarray:
        was_training = self.model_.training
        self.model_.eval()
        out = []
        for s in range(0, x.shape[0], batch_size):
            with self._autocast():
                z = self.model_(self._batch_tensor(x[s:s + batch_size]))
            out.append(z.float().cpu().numpy())
        self.model_.train(was_training)
        return np.concatenate(out).astype(np.float64)

    def predict_proba(self, x) -> np.ndarray:
        """Estimated propensity scores :math:`P(t \\mid x)` (softmax of the logits)."""
        z = self.logits(x)
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, x) -> np.ndarray:
        """Most likely treatment of each sample."""
        return self.classes_[self.logits(x).argmax(1)]
