r"""Cross-modal prediction from a coupling ("probing").

Once two unpaired modalities are aligned, the coupling :math:`M` says, for every sample
:math:`i` of the *target* modality, how plausible every sample :math:`j` of the *input*
modality is as its partner: :math:`M_{ij} = P(x_j \mid y_i)`, each row summing to 1.
A model :math:`f_\theta` that translates inputs into targets can then be fitted without
ever knowing the true pairs.

The objective (the paper's loss (4))
-------------------------------------
Replace the unknown partner of :math:`y_i` by the coupling's average prediction and
minimise the squared error

.. math::

    \mathcal{L}(\theta) = \frac{1}{nD}\sum_{i=1}^{n}
        \Big\lVert y_i - \sum_j M_{ij} f_\theta(x_j) \Big\rVert^2 ,

with :math:`n` targets of dimension :math:`D` (the paper writes the sum without the
:math:`1/(nD)`; it changes the scale, not the minimiser). Evaluating
:math:`\sum_j M_{ij} f_\theta(x_j)` costs a forward pass over *every* input for every
target, so we sample instead.

Why one sample is not enough
----------------------------
Draw one partner :math:`j \sim M_{i\cdot}` and use the plain squared error
:math:`\lVert y_i - f_\theta(x_j)\rVert^2`. Its expectation is

.. math::

    \mathbb{E}_{j}\lVert y_i - f_\theta(x_j)\rVert^2
    = \Big\lVert y_i - \sum_j M_{ij} f_\theta(x_j)\Big\rVert^2
      + \operatorname{tr}\operatorname{Var}_{j \sim M_{i\cdot}} f_\theta(x_j),

the loss (4) *plus* the spread of the predictions over the candidate partners. The naive
("MSE") trainer therefore minimises an upper bound of (4): the variance term rewards a
model whose predictions barely depend on which candidate was drawn, which for a soft
coupling shrinks the fitted map (regression with noisy inputs attenuates slopes).

The two-sample estimator (the paper's equation (5))
----------------------------------------------------
The gradient of one term of (4) is
:math:`-2\,(y_i - \bar f_i)^\top \nabla_\theta \bar f_i` with
:math:`\bar f_i = \sum_j M_{ij} f_\theta(x_j)`, a product of two expectations over the
same distribution. Two *independent* draws :math:`\dot{j}, \ddot{j} \sim M_{i\cdot}` give
an unbiased estimate of it:

.. math::

    \nabla_\theta \mathcal{L} \approx
    \frac{2}{BD}\sum_{i \in \text{batch}}
        \big(f_\theta(x_{\dot{j}}) - y_i\big)^\top \nabla_\theta f_\theta(x_{\ddot{j}}),

because the expectation of a product of independent factors is the product of their
expectations. :class:`CrossModalTrainer` implements it as the gradient of the surrogate
``2 * mean((f(x_dot).detach() - y) * f(x_ddot))`` (mean over batch rows and output
columns), so it has exactly the scale of the gradient of a mean-squared error: with a
one-hot coupling both draws coincide and the two trainers take identical steps.

Where this follows the official code
------------------------------------
Adam (lr ``1e-4``, weight decay ``5e-4``), a one-cycle learning-rate schedule stepped once
per *epoch* (``pct_start=0.1``), batch 500, 50 epochs, fresh partners drawn every epoch,
the probe ``Linear -> BatchNorm1d -> ReLU -> Linear`` of width ``2 * d_in``
(:func:`~propalign_lite.encoders.make_probe_mlp`), and R² pooled over all outputs against the
evaluation set's own mean (:func:`~propalign_lite.metrics.r2_score_pooled`). Both forward
passes of the two-sample estimator run in train mode, as in the official code (see
:class:`CrossModalTrainer` on batch norm).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(60, 4)).astype("float32")
>>> y = x @ rng.normal(size=(4, 3)).astype("float32")
>>> M = np.eye(60)                                  # the true pairs
>>> trainer = CrossModalTrainer(make_probe_mlp(4, 3), epochs=3, batch_size=20,
...                             random_state=0).fit(x, y, M, eval_inputs=x, eval_targets=y)
>>> trainer.predict(x).shape, sorted(trainer.history_[-1])
((60, 3), ['epoch', 'eval_mse', 'eval_r2', 'lr', 'train_loss', 'train_pair_mse'])

References
----------
Xi, Osea, Xu, Hartford. *Propensity Score Alignment of Unpaired Multimodal Data*.
NeurIPS 2024 (section "cross-modality prediction", equations (4) and (5)).
Hartford, Lewis, Leyton-Brown, Taddy. *Deep IV*. ICML 2017 (the same two-sample argument).
"""
from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from ._torch_utils import one_cycle
from ._validation import check_array, check_random_state
from .coupling_sampler import CouplingSampler
from .encoders import make_probe_mlp  # noqa: F401  (still importable from here)
from .metrics import r2_score_pooled

__all__ = ["CrossModalTrainer", "CouplingSampler"]

_PREDICT_CHUNK = 8192  # rows per forward pass in predict()


# --------------------------------------------------------------------------------------------
# the trainer
class CrossModalTrainer:
    r"""Fit a model that predicts targets from inputs, given only a coupling between them.

    Each epoch draws fresh partners :math:`j \sim M_{i\cdot}` for every target :math:`i`,
    shuffles the targets and takes mini-batch steps:

    * ``unbiased=True`` -- two independent partners :math:`\dot j, \ddot j` per target and
      the two-sample gradient of equation (5): the step direction is an unbiased estimate
      of the gradient of loss (4),
      :math:`\mathcal{L}(\theta) = \frac{1}{nD}\sum_i \lVert y_i - \sum_j M_{ij}
      f_\theta(x_j)\rVert^2`, computed as the gradient of
      ``2 * mean((f(x_dot).detach() - y) * f(x_ddot))``.
    * ``unbiased=False`` -- one partner and the plain mean-squared error; in expectation it
      minimises :math:`\frac{1}{nD}\sum_i \mathbb{E}_j \lVert y_i - f_\theta(x_j)\rVert^2`
      = loss (4) + the mean variance of the predictions over each row's candidates.

    With a one-hot (true-pair) coupling the two modes coincide.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs ``(B, ...)`` to predictions ``(B, D)``. It is deep-copied at
        :meth:`fit` (the copy, trained, is ``model_``); the object you pass is left as is,
        so refitting starts again from the same initial weights.
    unbiased : bool, default True
        Two-sample estimator (5) if True, naive single-sample MSE if False.
    epochs : int, default 50
    batch_size : int, default 500
        Targets per step. A final batch of a single target is merged into the previous one
        (batch norm cannot normalise one sample).
    lr : float, default 1e-4
        Peak learning rate of the one-cycle schedule (the constant rate if
        ``scheduler=None``).
    weight_decay : float, default 5e-4
        Adam's L2 penalty (added to the gradient, as ``torch.optim.Adam`` does).
    random_state : None, int or numpy Generator
        Seeds partner draws, shuffling, and (through a forked torch RNG that leaves the
        global one untouched) any randomness inside the model such as dropout.
    device : str or torch.device, default "cpu"
    progress : bool, default False
        Show a tqdm progress bar over epochs.
    optimizer : "adam" or callable, default "adam"
        ``"adam"`` is ``Adam(lr, weight_decay)``; a callable ``params -> Optimizer``
        replaces it (``lr`` is still imposed by the scheduler unless ``scheduler=None``).
    scheduler : "onecycle", None or callable, default "onecycle"
        ``"onecycle"`` is ``OneCycleLR(max_lr=lr, total_steps=epochs, pct_start=0.1)``
        stepped once per epoch (the official setting: the rate warms up over the first
        10 % of epochs, then anneals; the last epoch runs at ``lr / 2.5e5``). ``None`` keeps ``lr``
        constant; a callable ``(optimizer, epochs) -> LRScheduler`` is stepped per epoch.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained copy of ``model``.
    history_ : list of dict
        One dict per epoch with ``epoch``, ``lr`` (the rate used during that epoch),
        ``train_loss`` (the mean over the epoch's batches of the objective being minimised:
        the pair MSE for the naive mode; for the unbiased mode the two-sample estimate
        ``mean((f(x_dot) - y) * (f(x_ddot) - y))`` of loss (4) itself, which can dip below
        zero on a batch), ``train_pair_mse`` (the MSE of ``f(x_ddot)``, the value the
        official code logs as "Train Loss" in both modes), and, when evaluation data are
        given, ``eval_mse`` and ``eval_r2`` (:func:`~propalign_lite.metrics.r2_score_pooled`)
        on the true pairs, computed in eval mode after the epoch. ``pandas.DataFrame(history_)`` tabulates it.
    n_targets_, n_inputs_ : int
        Sizes of the training data.

    Notes
    -----
    *Batch norm.* In train mode a batch-norm layer normalises with the statistics of the
    batch it sees and updates its running averages. As in the official code, the
    residual pass :math:`f(x_{\dot j})` (no gradient) and the gradient pass
    :math:`f(x_{\ddot j})` are two separate forward passes in train mode: each uses its own
    batch statistics, and the running averages are updated twice per step. With batch
    norm the two passes are therefore not exactly the same function, and the estimator is
    unbiased only up to that batch-statistics effect (as for any batch-norm network
    trained by SGD). :meth:`predict` uses eval mode (running averages).

    *Speed on a small CPU.* For small models on a busy 2-core machine, torch's CPU thread
    pool can make each batch-norm call wait for tens of milliseconds;
    ``torch.set_num_threads(1)`` before :meth:`fit` often trains several times faster.

    Example
    -------
    >>> import numpy as np, torch
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(90, 2)).astype("float32")
    >>> M = np.kron(np.eye(30), np.full((3, 3), 1 / 3))    # each target: 3 candidates
    >>> y = M @ x @ np.array([[1.0], [-2.0]], dtype="float32")
    >>> fit = CrossModalTrainer(torch.nn.Linear(2, 1), epochs=5, batch_size=30, lr=0.05,
    ...                         random_state=0).fit(x, y, M)
    >>> len(fit.history_), fit.predict(x).shape
    (5, (90, 1))
    """

    def __init__(self, model: nn.Module, *, unbiased: bool = True, epochs: int = 50,
                 batch_size: int = 500, lr: float = 1e-4, weight_decay: float = 5e-4,
                 random_state=None, device="cpu", progress: bool = False,
                 optimizer="adam", scheduler="onecycle"):
        self.model = model
        self.unbiased = unbiased
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.progress = progress
        self.optimizer = optimizer
        self.scheduler = scheduler

    # ---------------------------------------------------------------------------------------
    def _check_params(self):
        if not isinstance(self.model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(self.model).__name__}")
        for name in ("epochs", "batch_size"):
            val = getattr(self, name)
            if not isinstance(val, Integral) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive integer, got {val!r}")
        if (isinstance(self.lr, bool) or not isinstance(self.lr, Real)
                or not np.isfinite(self.lr) or self.lr <= 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if (isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, Real)
                or not np.isfinite(self.weight_decay)
                or self.weight_decay < 0):
            raise ValueError(f"weight_decay must be a non-negative number, got "
                             f"{self.weight_decay!r}")
        if not (self.optimizer == "adam" or callable(self.optimizer)):
            raise ValueError(f"optimizer must be 'adam' or a callable params -> Optimizer, "
                             f"got {self.optimizer!r}")
        if not (self.scheduler is None or self.scheduler == "onecycle"
                or callable(self.scheduler)):
            raise ValueError(f"scheduler must be 'onecycle', None or a callable "
                             f"(optimizer, epochs) -> scheduler, got {self.scheduler!r}")

    def _make_optimizer(self, params):
        if callable(self.optimizer):
            return self.optimizer(params)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def _make_scheduler(self, opt):
        if self.scheduler is None:
            return None
        if callable(self.scheduler):
            return self.scheduler(opt, self.epochs)
        return one_cycle(opt, self.epochs, 0.1)

    def _dtype(self, model):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    def _to_tensor(self, arr, name, *, ndim=None):
        np_dtype = np.float64 if self.dtype_ == torch.float64 else np.float32
        a = check_array(arr, name, ndim=ndim, dtype=np_dtype)
        if a.ndim < 2:
            raise ValueError(f"{name} must have one row per sample and at least one feature "
                             f"column, got shape {a.shape} (reshape(-1, 1) a single feature)")
        return torch.as_tensor(a, dtype=self.dtype_, device=self.device_)

    def _batches(self, n, rng):
        order = rng.permutation(n)
        starts = list(range(0, n, self.batch_size))
        if len(starts) > 1 and n - starts[-1] == 1:   # no singleton batch (batch norm)
            starts.pop()
        ends = starts[1:] + [n]
        return [order[a:b] for a, b in zip(starts, ends)]

    def _check_model_fits(self, model, x, y) -> None:
        """Fail before training, in this package's words, where torch would fail inside it:
        batch normalisation with one sample per batch, inputs of the wrong width, outputs of
        the wrong width."""
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if has_bn and min(self.batch_size, len(y)) < 2:
            raise ValueError("the model has batch normalisation, which needs at least 2 samples "
                             "per batch; " + (f"batch_size is {self.batch_size}"
                                              if self.batch_size < 2 else
                                              f"there is {len(y)} target") + " (use more)")
        was = model.training
        model.eval()                            # no batch statistics, no dropout: no RNG use
        try:
            with torch.no_grad():
                out = model(x[:2])
        except RuntimeError as err:
            raise ValueError(f"the model cannot take these inputs ({x.shape[1:].numel()} "
                             f"features per sample): {str(err).splitlines()[0]}") from None
        finally:
            model.train(was)
        if tuple(out.shape[1:]) != tuple(y.shape[1:]):
            raise ValueError(f"the model returns {tuple(out.shape[1:])} values per sample but "
                             f"the targets have {y.shape[1]} columns")

    @staticmethod
    def _check_output(f, y):
        if f.shape != y.shape:
            raise ValueError(f"the model returned predictions of shape {tuple(f.shape)} for a "
                             f"batch whose targets have shape {tuple(y.shape)}; its output "
                             "must have one column per target dimension")

    # ---------------------------------------------------------------------------------------
    def fit(self, inputs, targets, coupling, *, eval_inputs=None, eval_targets=None):
        """Train ``model_`` on targets paired with inputs drawn from ``coupling``.

        Parameters
        ----------
        inputs : array-like (n_inputs, ...)
            The modality we predict *from* (any trailing shape the model accepts).
        targets : array-like (n_targets, D)
            The modality we predict.
        coupling : array-like (n_targets, n_inputs), scipy sparse, ImplicitCoupling, or list of blocks
            ``coupling[i, j]`` = weight of input ``j`` as partner of target ``i``; rows are
            non-negative and sum to 1. See :class:`CouplingSampler` for the block forms.
        eval_inputs, eval_targets : array-like, optional
            Truly paired evaluation data (same number of rows); R² and MSE are recorded in
            ``history_`` after every epoch.

        Returns
        -------
        self
        """
        self._check_params()
        self.device_ = torch.device(self.device)
        model = copy.deepcopy(self.model).to(self.device_)
        self.dtype_ = self._dtype(model)
        x = self._to_tensor(inputs, "inputs")
        y = self._to_tensor(targets, "targets", ndim=2)
        sampler = CouplingSampler(coupling, n_targets=len(y), n_inputs=len(x))
        self._check_model_fits(model, x, y)
        if (eval_inputs is None) != (eval_targets is None):
            raise ValueError("give both eval_inputs and eval_targets, or neither")
        evaluate = eval_inputs is not None
        if evaluate:
            x_ev = self._to_tensor(eval_inputs, "eval_inputs")
            y_ev = check_array(eval_targets, "eval_targets")
            if len(x_ev) != len(y_ev):
                raise ValueError(f"eval_inputs has {len(x_ev)} rows but eval_targets has "
                                 f"{len(y_ev)}: they must be the same (truly paired) samples")
            if y_ev.shape[1] != y.shape[1]:
                raise ValueError(f"eval_targets has {y_ev.shape[1]} columns but targets has "
                                 f"{y.shape[1]}")
            if len(y_ev) < 2 or not np.ptp(y_ev, axis=0).any():
                raise ValueError("eval_targets must hold at least 2 samples that are not all "
                                 "equal (R² is undefined otherwise)")

        rng = check_random_state(self.random_state)
        torch_seed = int(rng.integers(2**63 - 1))
        fork_devices = ([self.device_.index or 0] if self.device_.type == "cuda" else [])
        self.model_ = model
        self.n_targets_, self.n_inputs_ = sampler.shape
        self.history_ = []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(torch_seed)
            opt = self._make_optimizer(model.parameters())
            sched = self._make_scheduler(opt)
            epochs = range(self.epochs)
            bar = None
            if self.progress:
                try:
                    from tqdm.auto import tqdm
                    epochs = bar = tqdm(epochs, desc="probe", unit="epoch")
                except ImportError:  # pragma: no cover - tqdm is a project dependency
                    pass
            for epoch in epochs:
                record = {"epoch": epoch, **self._train_epoch(model, opt, x, y, sampler, rng)}
                if sched is not None:
                    sched.step()
                if evaluate:
                    pred = self._predict_tensor(model, x_ev)
                    record["eval_mse"] = float(((pred - y_ev) ** 2).mean())
                    record["eval_r2"] = r2_score_pooled(y_ev, pred)
                self.history_.append(record)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                                     if k in ("train_loss", "eval_r2")})
        model.eval()
        return self

    def _train_epoch(self, model, opt, x, y, sampler, rng):
        model.train()
        lr = float(opt.param_groups[0]["lr"])
        draws = sampler.sample(rng, n_draws=2 if self.unbiased else 1)
        draws = torch.as_tensor(draws, device=self.device_)
        tot_loss = tot_pair = 0.0
        for b in self._batches(len(y), rng):
            b_t = torch.as_tensor(b, device=self.device_)
            yb = y[b_t]
            if self.unbiased:
                with torch.no_grad():
                    f_dot = model(x[draws[0, b_t]])           # residual draw, no gradient
                self._check_output(f_dot, yb)
                f_ddot = model(x[draws[1, b_t]])              # gradient draw
                resid = f_dot - yb
                surrogate = 2.0 * (resid * f_ddot).mean()      # grad = eq. (5), MSE scale
                with torch.no_grad():
                    err2 = f_ddot - yb
                    loss = float((resid * err2).mean())      # unbiased estimate of loss (4)
                    pair = float((err2 ** 2).mean())
            else:
                f = model(x[draws[0, b_t]])
                self._check_output(f, yb)
                surrogate = ((f - yb) ** 2).mean()
                loss = pair = float(surrogate.detach())
            opt.zero_grad(set_to_none=True)
            surrogate.backward()
            opt.step()
            tot_loss += loss * len(b)
            tot_pair += pair * len(b)
        n = len(y)
        return {"lr": lr, "train_loss": tot_loss / n, "train_pair_mse": tot_pair / n}

    # ---------------------------------------------------------------------------------------
    def _predict_tensor(self, model, x) -> np.ndarray:
        was_training = model.training
        model.eval()
        outs = []
        with torch.no_grad():
            for a in range(0, len(x), _PREDICT_CHUNK):
                outs.append(model(x[a:a + _PREDICT_CHUNK]).detach().cpu().double().numpy())
        model.train(was_training)
        return np.concatenate(outs, axis=0)

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this CrossModalTrainer is not fitted yet: call fit() first")

    def predict(self, inputs) -> np.ndarray:
        """Predictions of the trained model (eval mode, no gradient) as a float64 array."""
        self._check_fitted()
        return self._predict_tensor(self.model_, self._to_tensor(inputs, "inputs"))

    def score(self, inputs, targets) -> float:
        """Pooled R² (:func:`~propalign_lite.metrics.r2_score_pooled`) of the predictions on
        truly paired data."""
        y = check_array(targets, "targets")
        pred = self.predict(inputs)
        if len(pred) != len(y):
            raise ValueError(f"inputs has {len(pred)} rows but targets has {len(y)}")
        return r2_score_pooled(y, pred)
