r"""Results store: one file per experiment unit, keyed by what determines its result.

An *experiment unit* (see :mod:`propalign_book.experiments`) maps ``(settings, seed)`` to a
*record*: a dict of JSON-able values and small numpy arrays. The store keeps one record per
unit under a directory (``results/`` at the repository root by default, git-ignored)::

    results/<unit name>/<key>.json

where the key is a hash of everything the record depends on,

.. math::
    \mathrm{key} = \mathrm{sha256}\big(\text{unit name},\ \text{settings},\ \text{seed},\
    \text{package version},\ \text{data fingerprint}\big)[:20],

with the settings serialised canonically (sorted keys), so that equal settings give equal
keys in any process. The *package version* includes a hash of the library's source files and
of the unit's own code (its module and the book-kit modules it imports; :func:`package_version`,
:func:`source_files`): a change of the computation never serves a stale record, a change of
the book's presentation or of another chapter's units keeps them.

Each file holds the record, its key material and its provenance, plus a SHA-256 checksum of
that content. Files are written to a temporary name and renamed (``os.replace``), which is
atomic on POSIX: a reader sees either no file or a complete one. A file that is truncated,
edited or otherwise corrupt fails its checksum; it is reported (:meth:`ResultsStore.status`
says ``"corrupt"``), never read, and the unit is recomputed.

Example
-------
>>> import tempfile
>>> store = ResultsStore(tempfile.mkdtemp())
>>> key = store.key("toy.matching", {"n": 3}, seed=1)
>>> _ = store.put(key, {"trace": 0.5}, unit="toy.matching", settings={"n": 3}, seed=1)
>>> store.get(key)["trace"]
0.5
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
from functools import lru_cache

import numpy as np

__all__ = ["ResultsStore", "CorruptRecordError", "encode", "decode", "settings_hash",
           "package_version", "source_files", "provenance", "default_store_dir", "FORMAT"]

#: Format tag written into every record file.
FORMAT = "propalign-record/1"
ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV_RESULTS_DIR = "PROPALIGN_RESULTS_DIR"
ENV_COMMIT = "PROPALIGN_COMMIT"


class CorruptRecordError(ValueError):
    """A record file exists but is truncated, malformed or fails its checksum."""


# --------------------------------------------------------------------------------------
# Encoding: JSON with numpy arrays and scalars
# --------------------------------------------------------------------------------------
def encode(value):
    """Turn a record into plain JSON data; numpy arrays become tagged dicts.

    Floats keep their exact value (JSON round-trips ``repr``); NaN and infinities are kept.
    """
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"record keys must be str, got {bad[:3]}")
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            if value.dtype.kind == "U":
                return {"__ndarray__": value.tolist(), "dtype": "str",
                        "shape": list(value.shape)}
            raise TypeError(f"cannot store an array of dtype {value.dtype}")
        return {"__ndarray__": value.ravel().tolist(), "dtype": value.dtype.str,
                "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a record "
                    "(use numbers, strings, lists, dicts or numpy arrays)")


def decode(value):
    """Inverse of :func:`encode`."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            if value["dtype"] == "str":
                return np.asarray(value["__ndarray__"], dtype=str).reshape(value["shape"])
            return np.asarray(value["__ndarray__"],
                              dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _canonical(value) -> str:
    return json.dumps(encode(value), sort_keys=True, separators=(",", ":"))


def settings_hash(settings: dict) -> str:
    """SHA-256 (hex, 16 characters) of the canonical JSON of ``settings``."""
    return hashlib.sha256(_canonical(settings).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------
# Versions and provenance
# --------------------------------------------------------------------------------------
def source_files(unit: str | None = None) -> list[pathlib.Path]:
    """The files a record depends on: the library (``propalign_lite/**/*.py``) and the unit's
    own code: the module that defines ``unit`` and every ``propalign_book`` module it imports,
    directly or through others (:func:`_book_imports`). Without ``unit``: the library and all
    of ``propalign_book/experiments``. The rest of the book kit (report, runner, paper numbers,
    other chapters' units) shapes how records are shown or other units, not what this unit's
    records hold, and is left out: a typo fixed there keeps every stored record.

    >>> names = [p.name for p in source_files("toy.matching")]
    >>> "toy.py" in names, "synthetic.py" in names, "metrics.py" in names
    (True, False, True)
    """
    lib = sorted((ROOT / "propalign_lite").rglob("*.py"))
    if unit is None:
        return lib + sorted((ROOT / "propalign_book" / "experiments").rglob("*.py"))
    from .experiments._registry import get_unit

    start = pathlib.Path(sys.modules[get_unit(unit).__module__].__file__).resolve()
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(_book_imports(path))
    return lib + sorted(seen)


def _book_imports(path: pathlib.Path) -> list[pathlib.Path]:
    """Files of the ``propalign_book`` modules that ``path`` imports (absolute or relative
    imports, at any depth of the file: function-level imports count)."""
    import ast

    book = ROOT / "propalign_book"
    package = path.parent
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("propalign_book")]
                out += [_module_file(ROOT.joinpath(*n.split("."))) for n in names]
            continue
        if node.level:
            base = package
            for _ in range(node.level - 1):
                base = base.parent
        elif (node.module or "").startswith("propalign_book"):
            base = ROOT
        else:
            continue
        mod = base.joinpath(*node.module.split(".")) if node.module else base
        out.append(_module_file(mod))
        # "from . import x" / "from .pkg import sub": x may be a module itself
        out += [_module_file(mod / a.name) for a in node.names]
    return [f for f in out if f is not None and book in f.parents]


def _module_file(stem: pathlib.Path) -> pathlib.Path | None:
    for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


@lru_cache(maxsize=None)
def package_version(unit: str | None = None) -> str:
    """``<propalign_lite.__version__>+src.<hash>``: the library's release number and a hash of
    :func:`source_files` of ``unit`` (names and contents), so records computed by other code
    are never served as current."""
    from propalign_lite import __version__

    h = hashlib.sha256()
    for path in source_files(unit):
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return f"{__version__}+src.{h.hexdigest()[:10]}"


@lru_cache(maxsize=1)
def _commit() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes to tracked files), or
    ``$PROPALIGN_COMMIT`` where the code runs from a copy without git (a GPU machine, an
    archive)."""
    if os.environ.get(ENV_COMMIT):
        return os.environ[ENV_COMMIT]
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return out.stdout.strip()[:12] + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> str:
    """A short description of the machine: host, CPU count and the GPU (if torch sees one)."""
    desc = f"{platform.node() or 'unknown host'} ({os.cpu_count()} CPUs"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        desc += f", GPU {torch.cuda.get_device_name(0)}"
    return desc + ")"


def provenance(**extra) -> dict:
    """Where and when a record was made: commit, host/hardware, UTC date, versions."""
    info = {"commit": _commit(), "hardware": hardware(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S UTC"),
            "python": platform.python_version(), "package_version": package_version()}
    info.update(extra)
    return info


def default_store_dir() -> pathlib.Path:
    """``$PROPALIGN_RESULTS_DIR`` if set, else ``results/`` at the repository root."""
    env = os.environ.get(ENV_RESULTS_DIR)
    return pathlib.Path(env).expanduser() if env else ROOT / "results"


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------
class ResultsStore:
    """A directory of records, one JSON file per unit, written atomically.

    Parameters
    ----------
    root : path-like, optional
        The directory (created on first write). Default :func:`default_store_dir`.
    """

    def __init__(self, root=None):
        self.root = pathlib.Path(root) if root is not None else default_store_dir()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    @staticmethod
    def key(unit: str, settings: dict, seed: int, *, version: str | None = None,
            fingerprint: str = "") -> str:
        """The key of a unit: a hash of (unit, settings, seed, version, data fingerprint)."""
        if not isinstance(unit, str) or not unit:
            raise ValueError(f"unit must be a non-empty str, got {unit!r}")
        material = {"unit": unit, "settings": settings, "seed": int(seed),
                    "version": version if version is not None else package_version(),
                    "fingerprint": fingerprint}
        return hashlib.sha256(_canonical(material).encode()).hexdigest()[:20]

    def path(self, key: str, unit: str) -> pathlib.Path:
        """Where the record of ``key`` lives: ``<root>/<unit>/<key>.json``."""
        return self.root / unit / f"{key}.json"

    def _find(self, key: str) -> pathlib.Path | None:
        hits = list(self.root.glob(f"*/{key}.json")) if self.root.is_dir() else []
        return hits[0] if hits else None

    def put(self, key: str, record: dict, *, unit: str, settings: dict, seed: int,
            fingerprint: str = "", meta: dict | None = None) -> pathlib.Path:
        """Write ``record`` under ``key`` atomically (temporary file + ``os.replace``)."""
        if not isinstance(record, dict):
            raise TypeError(f"record must be a dict, got {type(record).__name__}")
        body = {"format": FORMAT, "key": key, "unit": unit, "seed": int(seed),
                "settings": encode(settings), "settings_hash": settings_hash(settings),
                "fingerprint": fingerprint, "meta": encode(meta or {}),
                "record": encode(record)}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        checksum = hashlib.sha256(text.encode()).hexdigest()
        payload = '{"checksum":"' + checksum + '","body":' + text + "}\n"
        target = self.path(key, unit)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key}.", suffix=".part")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @staticmethod
    def read_file(path) -> dict:
        """Read and verify one record file; return its body (record decoded).

        Raises :class:`CorruptRecordError` if the file is truncated, malformed or its
        checksum does not match.
        """
        path = pathlib.Path(path)
        try:
            raw = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptRecordError(f"{path}: not a record file ({err})") from None
        start = raw.find('"body":')
        try:
            outer = json.loads(raw)
            checksum = outer["checksum"]
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptRecordError(f"{path}: not a complete record file ({err})") from None
        text = raw[start + len('"body":'):].rstrip()
        if not text.endswith("}"):
            raise CorruptRecordError(f"{path}: not a complete record file")
        text = text[:-1]
        if hashlib.sha256(text.encode()).hexdigest() != checksum:
            raise CorruptRecordError(f"{path}: checksum mismatch (the file was truncated or "
                                     "edited); it is ignored and the unit recomputed")
        body = outer["body"]
        if body.get("format") != FORMAT:
            raise CorruptRecordError(f"{path}: unknown format {body.get('format')!r}")
        body["record"] = decode(body["record"])
        body["settings"] = decode(body["settings"])
        body["meta"] = decode(body["meta"])
        return body

    def status(self, key: str) -> str:
        """``"ok"``, ``"missing"`` or ``"corrupt"``."""
        path = self._find(key)
        if path is None:
            return "missing"
        try:
            self.read_file(path)
        except CorruptRecordError:
            return "corrupt"
        return "ok"

    def load(self, key: str) -> dict | None:
        """The verified file body of ``key`` (``record``, ``meta``, settings...), or ``None``
        when it is missing or corrupt (a corrupt file is never read)."""
        path = self._find(key)
        if path is None:
            return None
        try:
            return self.read_file(path)
        except CorruptRecordError:
            return None

    def get(self, key: str) -> dict | None:
        """The record of ``key``, or ``None`` when it is missing or corrupt."""
        body = self.load(key)
        return None if body is None else body["record"]

    def __contains__(self, key: str) -> bool:
        return self.load(key) is not None

    def keys(self, unit: str | None = None) -> list[str]:
        """Keys of the files present (any status), optionally of one unit."""
        if not self.root.is_dir():
            return []
        pattern = f"{unit}/*.json" if unit else "*/*.json"
        return sorted(p.stem for p in self.root.glob(pattern))
