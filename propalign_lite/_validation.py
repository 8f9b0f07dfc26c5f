"""Input checks shared by every public function.

Each check raises :class:`ValueError` with a message that names the argument and the
problem, so that a user sees *what* is wrong with *which* input instead of a shape error
deep inside numpy or torch.
"""
from __future__ import annotations

import numpy as np


def check_array(x, name: str, *, ndim: int | None = 2, allow_empty: bool = False,
                dtype=np.float64) -> np.ndarray:
    """Return ``x`` as a finite numpy array of ``dtype`` with ``ndim`` dimensions.

    Torch tensors are accepted (detached and moved to the CPU).
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric array-like: {err}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return arr


def check_labels(t, name: str, n: int | None = None) -> np.ndarray:
    """Return a 1-d label array; check its length against ``n`` when given."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    arr = np.asarray(t)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite labels")
    if arr.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in arr):
        raise ValueError(f"{name} contains missing labels (None/NaN)")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but the data has {n} rows")
    return arr


def check_same_length(a, b, name_a: str, name_b: str) -> None:
    """Raise if ``a`` and ``b`` do not have the same number of rows."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} rows but {name_b} has {len(b)}: "
                         "they must describe the same samples")


def check_coupling(m, name: str = "coupling", *, square: bool = False,
                   row_stochastic: bool = False, atol: float = 1e-6) -> np.ndarray:
    """Check a coupling matrix: 2-d, finite, non-negative; optionally square / rows sum to 1."""
    m = check_array(m, name)
    if (m < 0).any():
        raise ValueError(f"{name} has negative entries (min {m.min():.3g})")
    if square and m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be square (row i and column i are true partners), "
                         f"got shape {m.shape}")
    if row_stochastic:
        rs = m.sum(axis=1)
        worst = np.abs(rs - 1).max()
        if worst > atol:
            raise ValueError(f"rows of {name} must sum to 1 (worst row sums to "
                             f"{rs[np.argmax(np.abs(rs - 1))]:.6g}); row-normalise it first")
    return m


def check_random_state(seed) -> np.random.Generator:
    """Turn ``None``, an int or a Generator into a :class:`numpy.random.Generator`."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise ValueError(f"random_state must be None, an int or a numpy Generator, got {seed!r}")
