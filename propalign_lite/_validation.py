"""Input checks shared by every public function: the package's one validation layer.

Each check raises :class:`ValueError` (a bad value) or :class:`TypeError` (a value of the wrong
type) with a message that names the argument, the problem and, where there is one, the fix,
so that a user sees *what* is wrong with *which* input instead of an error deep inside numpy or
torch -- or, worse, a silently wrong result.

Rules:

* arrays: numeric, real (complex is refused, not truncated), finite, the expected number of
  dimensions, not empty, and of magnitude at most :data:`MAX_ABS` (squared distances of larger
  values overflow float64);
* labels: 1-d, one per sample, no missing values, one kind (numbers *or* strings);
* integers: a Python/numpy integer, never a bool or a float (``2.0`` and ``1.7`` are refused,
  not truncated);
* numbers: a real finite scalar, never a bool or a string;
* couplings: 2-d, finite, non-negative, rows summing to 1 within ``atol``;
* ``random_state``: ``None``, a non-negative int (not bool, not float) or a
  :class:`numpy.random.Generator` -- everywhere; torch code derives its seed with
  :func:`torch_seed`.

>>> check_int(3, "k")
3
>>> int(check_random_state(0).integers(10)) == int(np.random.default_rng(0).integers(10))
True
"""
from __future__ import annotations

import numbers

import numpy as np

class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type. Both a :class:`TypeError` and (as these checks raised
    before) a :class:`ValueError`, so ``except ValueError`` keeps working."""


MAX_ABS = 1e150
"""Largest magnitude accepted in a data array: squared distances of larger values overflow."""


def _to_numpy(x):
    if hasattr(x, "detach"):                       # torch tensors
        x = x.detach().cpu()
        if getattr(x, "is_floating_point", lambda: False)() and x.element_size() < 4:
            x = x.float()                          # bfloat16 / float16: numpy has no bfloat16
        x = x.numpy()
    return x


def check_array(x, name: str, *, ndim: int | None = 2, allow_empty: bool = False,
                dtype=np.float64, max_abs: float | None = MAX_ABS) -> np.ndarray:
    """Return ``x`` as a finite numpy array of ``dtype`` with ``ndim`` dimensions.

    Torch tensors are accepted (detached and moved to the CPU). Complex input, strings,
    ragged lists, NaN/inf and values of magnitude above ``max_abs`` raise.
    """
    x = _to_numpy(x)
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise InputTypeError(f"{name} must be a numeric array, got {type(x).__name__}")
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as err:              # ragged nested lists
        raise ValueError(f"{name} must be a numeric array-like: {err}") from None
    if raw.dtype.kind == "c":
        raise InputTypeError(f"{name} is complex; pass a real array (e.g. its .real or abs())")
    try:
        arr = np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array-like: {err}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and arr.size:
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int((~finite).sum())
            raise ValueError(f"{name} contains {bad} NaN or infinite value(s)"
                             + (" (or values too large for " + str(arr.dtype) + ")"
                                if arr.dtype != np.float64 else ""))
        if max_abs is not None:
            top = float(np.abs(arr).max())
            if top > max_abs:
                raise ValueError(f"{name} has values of magnitude up to {top:.3g}, above "
                                 f"{max_abs:.0e}: distances would overflow; rescale it "
                                 "(e.g. divide by its standard deviation)")
    return arr


def check_sparse(x, name: str):
    """A scipy sparse input as a CSR float32 matrix with finite values (checked on its stored
    entries, without densifying): the sparse twin of :func:`check_array`."""
    from scipy import sparse

    x = sparse.csr_matrix(x, dtype=np.float32)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if not np.isfinite(x.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_labels(t, name: str, n: int | None = None) -> np.ndarray:
    """Return a 1-d label array; check its length against ``n`` when given.

    Labels are numbers or strings (one kind, not mixed), none missing.
    """
    t = _to_numpy(t)
    if t is None or isinstance(t, (dict, set)):
        raise InputTypeError(f"{name} must be a 1-d array of labels, got {type(t).__name__}")
    try:
        arr = np.asarray(t)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 1-d array of labels: {err}") from None
    if arr.dtype.kind == "c":
        raise InputTypeError(f"{name} has complex labels; use ints or strings")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite labels")
    if not isinstance(t, np.ndarray) or arr.dtype.kind == "O":
        objs = arr if arr.dtype.kind == "O" else np.asarray(t, dtype=object)
        if objs.ndim == 1:
            kinds = set()
            for v in objs:
                if v is None or (isinstance(v, float) and v != v):
                    raise ValueError(f"{name} contains missing labels (None/NaN)")
                kinds.add("string" if isinstance(v, (str, bytes, np.str_, np.bytes_))
                          else "number" if isinstance(v, (numbers.Number, np.number))
                          else type(v).__name__)
            if len(kinds) > 1:
                raise ValueError(f"{name} mixes label kinds {sorted(kinds)}; use one kind "
                                 "(e.g. all strings: np.asarray(labels).astype(str))")
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
    """Check a coupling matrix: 2-d, finite, non-negative; optionally square / rows sum to 1
    (within ``atol``)."""
    m = check_array(m, name, max_abs=None)
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
                             f"{rs[np.argmax(np.abs(rs - 1))]:.6g}); row-normalise it first: "
                             f"{name} / {name}.sum(axis=1, keepdims=True)")
    return m


def check_int(value, name: str, *, min_value: int | None = 1, max_value: int | None = None
              ) -> int:
    """Return ``value`` as an int; refuse bools, floats (even ``2.0``), strings and values
    outside ``[min_value, max_value]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer"
                             + (" >= 1 (a positive integer)" if min_value == 1 else "")
                             + f", got {value!r} ({type(value).__name__})")
    value = int(value)
    if min_value is not None and value < min_value:
        what = "a positive integer" if min_value == 1 else f"an integer >= {min_value}"
        raise ValueError(f"{name} must be {what}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def check_number(value, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float in the given range; refuse bools, strings,
    complex numbers, arrays and NaN/inf."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {value:g}")
    return value


def check_choice(value, name: str, choices) -> object:
    """Return ``value`` if it is one of ``choices`` (compared with ``==`` on hashables)."""
    try:
        ok = any(value is c or (type(value) is type(c) and value == c) for c in choices)
    except Exception:                               # pragma: no cover - exotic __eq__
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def _check_seed_value(seed) -> None:
    if seed is None or isinstance(seed, np.random.Generator):
        return
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(f"random_state must be None, a non-negative int or a "
                        f"numpy.random.Generator, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"random_state must be a non-negative int, got {seed}")
    if seed >= 2 ** 63:
        raise ValueError(f"random_state must be below 2**63 (torch seeds are 64-bit signed), "
                         f"got {seed}")


def check_random_state(seed) -> np.random.Generator:
    """Turn ``None``, a non-negative int or a Generator into a :class:`numpy.random.Generator`.

    Bools, floats (``1.7`` is not truncated), strings and legacy ``RandomState`` objects raise.
    A Generator is returned as is (drawing from it advances the caller's stream).
    """
    _check_seed_value(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(None if seed is None else int(seed))


def validate_random_state(seed):
    """Check ``seed`` by the :func:`check_random_state` rule without drawing from it; return it."""
    _check_seed_value(seed)
    return seed


def torch_seed(seed) -> int:
    """The integer seed torch code uses for ``random_state``: an int is used as is (so results
    are the same as seeding torch with it directly); a Generator gives one draw from it; ``None``
    a fresh random seed. Never touches the global numpy or torch RNG."""
    _check_seed_value(seed)
    if seed is not None and not isinstance(seed, np.random.Generator):
        return int(seed)
    return int(check_random_state(seed).integers(2 ** 63 - 1))


def check_settings(settings, required, name: str = "settings") -> dict:
    """Check that a settings dict holds every key in ``required``; a missing one raises a
    :class:`KeyError` that names it and the dict."""
    if not isinstance(settings, dict):
        raise InputTypeError(f"{name} must be a dict, got {type(settings).__name__}")
    missing = [k for k in required if k not in settings]
    if missing:
        raise KeyError(f"{name} is missing the key(s) {missing!r}; it has "
                       f"{sorted(map(str, settings))} (get a complete one from "
                       "the profiles of the book kit, propalign_book.profiles)")
    return settings
