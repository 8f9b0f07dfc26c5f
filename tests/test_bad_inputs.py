"""Bad inputs across the public API: every one raises a clear error naming the argument.

The table below is generated per argument kind (arrays, labels, positive integers, positive
numbers, seeds, choices, couplings...), so every argument of every public entry point gets the
same few dozen wrong values: wrong types, shapes, NaN/inf, empty, negative, zero, bool for
int, float for int, strings, complex, huge magnitudes. Each case asserts the exception type
(``ValueError`` or ``TypeError``; ``ConnectionError`` for downloads) and that the message names
the argument. Cases of the OT solver (``match``/``match_groups``/``sinkhorn``/``block_coupling``,
owned by another module) that are not fixed yet are marked ``xfail(strict=False)``.

Also here: a property test that public functions return finite numbers from finite input; that
no public call touches the global numpy / torch RNG; determinism of the classifier; and the
download fixes against a local ``http.server`` on 127.0.0.1.
"""
from __future__ import annotations

import gzip
import http.server
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
import torch

from propalign_lite import (CrossModalTrainer, PropensityClassifier, block_coupling, match,
                            match_groups)
from propalign_lite import metrics
from propalign_lite import _validation
from propalign_lite._validation import check_random_state
from propalign_lite.baselines import CrossModalVAE, scot_match
from propalign_lite.datasets.balls import channel_stats, make_balls, sample_latents
from propalign_lite.sinkhorn import sinkhorn

RNG = np.random.default_rng(0)
N, D = 12, 3
X = RNG.normal(size=(N, D))
Y = RNG.normal(size=(N, D))
T = np.repeat([0, 1], N // 2)
M_OK = np.full((N, N), 1.0 / N)

OT_OWNED = {"match", "match_groups", "sinkhorn", "block_coupling"}


# ------------------------------------------------------------------------------------------
# bad values per argument kind
def bad_arrays(shape=(N, D)):
    n = shape[0]
    good = RNG.normal(size=shape)
    nan, inf, ninf = good.copy(), good.copy(), good.copy()
    nan.flat[1] = np.nan
    inf.flat[0] = np.inf
    ninf.flat[-1] = -np.inf
    out = {
        "none": None, "string": "abc", "scalar": 3.0, "bool": True, "dict": {"a": 1},
        "nan": nan, "inf": inf, "-inf": ninf, "complex": good + 1j,
        "huge": good * 1e200, "strings": np.full(shape, "a"),
        "object_none": np.full(shape, None, dtype=object),
        "ragged": [[1.0, 2.0], [3.0]], "empty": np.empty((0,) + tuple(shape[1:])),
        "ndim_minus": np.ones(shape[:-1]) if len(shape) > 1 else np.ones((n, 2, 2)),
        "ndim_plus": np.ones(tuple(shape) + (2,)),
        "nan_list": np.where(np.isnan(nan), np.nan, good).tolist(),
    }
    return out


def bad_images(n=N, side=8):
    good = RNG.integers(0, 255, (n, side, side, 3)).astype(np.uint8)
    f = good.astype(float) / 255
    f[0, 0, 0, 0] = np.nan
    return {"none": None, "string": "img", "3d": good[..., 0], "2_channels": good[..., :2],
            "5d": good[..., None], "empty": good[:0], "nan": f, "complex": good + 1j,
            "strings": np.full((n, side, side, 3), "a"), "above_255": good.astype(float) * 300,
            "negative": -good.astype(float)}


def bad_labels(n=N):
    return {"none": None, "scalar": 3, "string": "abc", "2d": np.zeros((n, 2)),
            "empty": np.array([]), "short": T[:-1], "long": np.r_[T, 0],
            "nan": np.r_[T[:-1], np.nan].astype(float), "inf": np.r_[T[:-1], np.inf],
            "none_entry": np.array(list(T[:-1]) + [None], dtype=object),
            "mixed_int_str": [0] * (n // 2) + ["a"] * (n // 2), "dict": {0: 1},
            "complex": T + 1j}


POSINT = {"zero": 0, "negative": -1, "float_frac": 1.7, "float_whole": 2.0, "bool_true": True,
          "bool_false": False, "string": "3", "none": None, "nan": np.nan, "inf": np.inf,
          "list": [3], "huge_negative": -10 ** 9, "complex": 2j}
POSFLOAT = {"zero": 0.0, "negative": -1.0, "nan": np.nan, "inf": np.inf, "-inf": -np.inf,
            "string": "0.1", "none": None, "list": [0.1], "bool": True, "complex": 1j,
            "array": np.array([0.1, 0.2])}
NONNEG = {"negative": -1.0, "nan": np.nan, "inf": np.inf, "string": "0", "none": None,
          "bool": True, "complex": 1j, "list": [0.0]}
FRACTION = {"negative": -0.1, "above_one": 1.5, "nan": np.nan, "string": "0.1", "none": None,
            "bool": True, "complex": 0.1j}
SEED = {"float_frac": 1.7, "float_whole": 2.0, "bool_true": True, "bool_false": False,
        "string": "0", "list": [0], "negative": -1, "nan": np.nan,
        "legacy_randomstate": np.random.RandomState(0), "object": object(), "complex": 1j}
CHOICE = {"unknown": "nope", "none": None, "int": 3, "empty": "", "list": ["ot"]}


def bad_couplings(n1=N, n2=N):
    ok = np.full((n1, n2), 1.0 / n2)
    neg = ok.copy()
    neg[0, 0], neg[0, 1] = -ok[0, 0], ok[0, 1] + 2 * ok[0, 0]
    return {"ones_unnormalised": np.ones((n1, n2)), "rows_sum_2": 2 * ok, "negative": neg,
            "almost_normalised": ok * (1 + 1e-3), "nan": np.where(ok > 0, np.nan, 0.0),
            **{k: v for k, v in bad_arrays((n1, n2)).items()
               if k in ("none", "string", "scalar", "inf", "complex", "empty", "ndim_minus",
                        "ndim_plus", "strings")}}


# ------------------------------------------------------------------------------------------
# the public API, each entry point with valid arguments and the kinds of its arguments
def _clf(**kw):
    opts = dict(encoder="mlp", epochs=1, batch_size=6, width=8, random_state=0)
    opts.update(kw)
    return PropensityClassifier(**opts)


def _fit_clf(**kw):
    x, t = kw.pop("x", X), kw.pop("t", T)
    return _clf(**kw).fit(x, t)


_FITTED = _clf().fit(X, T)


def _cnn_fit(x):
    return _clf(encoder="cnn", feature_dim=4).fit(x, T)


def _trainer(**kw):
    fit_args = {k: kw.pop(k) for k in ("inputs", "targets", "coupling") if k in kw}
    opts = dict(epochs=1, batch_size=6, random_state=0)
    opts.update(kw)
    torch.manual_seed(0)
    tr = CrossModalTrainer(torch.nn.Linear(D, 2), **opts)
    args = dict(inputs=X, targets=Y[:, :2], coupling=np.eye(N))
    args.update(fit_args)
    return tr.fit(**args)


def _vae(**kw):
    fit_args = {k: kw.pop(k) for k in ("x1", "t1", "x2", "t2") if k in kw}
    opts = dict(epochs=1, batch_size=6, width=8, latent_dim=2, random_state=0)
    opts.update(kw)
    args = dict(x1=X, t1=T, x2=Y, t2=T)
    args.update(fit_args)
    return CrossModalVAE("mlp", **opts).fit(**args)


def _call(f, **defaults):
    def run(**kw):
        args = dict(defaults)
        args.update(kw)
        return f(**args)
    return run


ENTRIES = [
    # name, callable(**kw), {argument: dict of bad values}
    ("match", _call(lambda emb1, emb2, **k: match(emb1, emb2, **k), emb1=X, emb2=Y),
     {"emb1": bad_arrays(), "emb2": bad_arrays(), "method": CHOICE}),
    ("match", _call(lambda emb1, emb2, **k: match(emb1, emb2, **k), emb1=X, emb2=Y,
                    method="ot"),
     {"reg": POSFLOAT, "max_iter": POSINT, "tol": POSFLOAT}),
    ("match", _call(lambda emb1, emb2, **k: match(emb1, emb2, **k), emb1=X, emb2=Y,
                    method="snn"), {"k": POSINT}),
    ("match", _call(lambda emb1, emb2, **k: match(emb1, emb2, **k), emb1=X, emb2=Y,
                    method="random"), {"random_state": SEED}),
    ("match_groups", _call(lambda emb1, t1, emb2, t2, **k: match_groups(emb1, t1, emb2, t2, **k),
                           emb1=X, t1=T, emb2=Y, t2=T, method="uniform"),
     {"emb1": bad_arrays(), "emb2": bad_arrays(), "t1": bad_labels(), "t2": bad_labels(),
      "min_group_size": POSINT, "on_missing": CHOICE}),
    ("match_groups", _call(lambda emb1, t1, emb2, t2, **k: match_groups(emb1, t1, emb2, t2, **k),
                           emb1=X, t1=T, emb2=Y, t2=T, method="random"),
     {"random_state": SEED}),
    ("sinkhorn", _call(lambda cost, **k: sinkhorn(cost, **k), cost=M_OK * N),
     {"cost": bad_arrays((N, N)), "reg": POSFLOAT, "max_iter": POSINT, "tol": POSFLOAT,
      # None is the default (uniform marginals) for a and b
      "a": {k: v for k, v in bad_arrays((N,)).items() if k != "none"},
      "b": {k: v for k, v in bad_arrays((N,)).items() if k != "none"}}),
    ("block_coupling", _call(lambda couplings, t1, t2: block_coupling(couplings, t1, t2),
                             couplings={0: np.eye(6), 1: np.eye(6)}, t1=T, t2=T),
     {"couplings": {"empty_dict": {}, "none": None, "string": "abc", "list": [np.eye(6)],
                    "entry_string": {0: "abc"}, "wrong_shape": {0: np.eye(5)},
                    "entry_nan": {0: np.full((6, 6), np.nan)},
                    "unnormalised": {0: np.ones((6, 6))}},
      "t1": bad_labels(), "t2": bad_labels()}),
    ("trace", _call(lambda M: metrics.trace(M), M=M_OK), {"M": bad_couplings()}),
    ("latent_mse", _call(lambda M, z: metrics.latent_mse(M, z), M=M_OK, z=X),
     {"M": bad_couplings(), "z": bad_arrays()}),
    ("foscttm", _call(lambda a, b: metrics.foscttm(a, b), a=X, b=Y),
     {"a": bad_arrays(), "b": bad_arrays()}),
    ("foscttm_coupling", _call(lambda M, x2, **k: metrics.foscttm_coupling(M, x2, **k),
                               M=M_OK, x2=Y),
     {"M": bad_couplings(), "x2": bad_arrays(), "how": CHOICE, "random_state": SEED}),
    ("sample_partners", _call(lambda M, **k: metrics.sample_partners(M, **k), M=M_OK),
     {"M": bad_couplings(), "random_state": SEED}),
    ("partner_rank", _call(lambda M, **k: metrics.partner_rank(M, **k), M=M_OK),
     {"M": {k: v for k, v in bad_couplings().items() if "normalised" not in k
            and k not in ("rows_sum_2", "negative")}, "block_size": POSINT}),
    ("summarize_seeds", _call(lambda values: metrics.summarize_seeds(values),
                              values=[0.1, 0.2]),
     {"values": bad_arrays((4,))}),
    ("PropensityClassifier", _fit_clf,
     {"encoder": CHOICE, "epochs": POSINT, "batch_size": {**POSINT, "one": 1},
      "lr": POSFLOAT, "weight_decay": NONNEG, "pct_start": FRACTION, "width": POSINT,
      "random_state": SEED, "x": bad_arrays(), "t": bad_labels()}),
    ("PropensityClassifier.logits", lambda x: _FITTED.logits(x),
     {"x": {**bad_arrays(), "fewer_features": X[:, :2], "more_features": np.c_[X, X]}}),
    ("PropensityClassifier(cnn)", lambda x: _cnn_fit(x), {"x": bad_images()}),
    ("CrossModalTrainer", _trainer,
     {"epochs": POSINT, "batch_size": POSINT, "lr": POSFLOAT, "weight_decay": NONNEG,
      "random_state": SEED,
      # inputs may have any trailing shape the model accepts, so no "ndim_plus" case there
      "inputs": {k: v for k, v in bad_arrays().items() if k != "ndim_plus"}, "targets": bad_arrays((N, 2)),
      # rows are sampling weights for the trainer (normalised per row when drawing), so an
      # unnormalised but non-negative coupling is legal there
      "coupling": {k: v for k, v in bad_couplings().items()
                   if k not in ("ones_unnormalised", "rows_sum_2", "almost_normalised")}}),
    ("CrossModalVAE", _vae,
     {"epochs": POSINT, "batch_size": POSINT, "width": POSINT, "lr": POSFLOAT,
      "random_state": SEED, "x1": bad_arrays(), "x2": bad_arrays(), "t1": bad_labels(),
      "t2": bad_labels()}),
    ("scot_match", _call(lambda x1, x2, **k: scot_match(x1, x2, **k), x1=X, x2=Y),
     {"x1": bad_arrays(), "x2": bad_arrays(),
      "k": {k: v for k, v in POSINT.items() if k != "none"},      # None: the default k
      "epsilon": POSFLOAT,
      "max_iter": POSINT, "tol": POSFLOAT}),
    ("make_balls", _call(lambda n, **k: make_balls(n, **k), n=4, image_size=16),
     {"n": POSINT, "image_size": {**POSINT, "too_small": 4}, "random_state": SEED}),
    ("sample_latents", _call(lambda n, **k: sample_latents(n, **k), n=4),
     {"n": POSINT, "random_state": SEED}),
    ("channel_stats", _call(lambda x, **k: channel_stats(x, **k),
                            x=RNG.integers(0, 255, (4, 8, 8, 3)).astype(np.uint8)),
     {"x": bad_images(4), "max_samples": POSINT}),
]

# arguments whose name differs from the one the message uses
MESSAGE_NAME = {"PropensityClassifier(cnn)": {}}

CASES = []
for entry, fn, args in ENTRIES:
    for arg, values in args.items():
        for label, value in values.items():
            CASES.append(pytest.param(entry, fn, arg, value, id=f"{entry}-{arg}-{label}"))

# cases in the OT solver's modules that still fail: fixed there, not here (see the report)
XFAIL_OT: set[str] = set()        # all OT cases are validated now
CASES = [pytest.param(*c.values, id=c.id,
                      marks=[pytest.mark.xfail(strict=False, reason="OT solver module (matchers"
                                               "/sinkhorn) not yet validating this input")]
                      if c.id in XFAIL_OT else []) for c in CASES]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("entry, fn, arg, value", CASES)
def test_bad_input_raises_naming_argument(entry, fn, arg, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        with pytest.raises((ValueError, TypeError)) as info:
            fn(**{arg: value})
    name = MESSAGE_NAME.get(entry, {}).get(arg, arg)
    assert name in str(info.value), f"message does not name {name!r}: {info.value}"
    assert not (tmp_path / "escape.json").exists() and not (tmp_path.parent / "escape.json").exists()


def test_the_table_is_large():
    assert len(CASES) >= 300


# ------------------------------------------------------------------------------------------
# legal inputs that used to be refused or mishandled
def test_classifier_accepts_a_generator_and_is_deterministic():
    a = _clf(random_state=np.random.default_rng(3)).fit(X, T).logits(X)
    b = _clf(random_state=np.random.default_rng(3)).fit(X, T).logits(X)
    c = _clf(random_state=7).fit(X, T).logits(X)
    d = _clf(random_state=7).fit(X, T).logits(X)
    assert np.array_equal(a, b) and np.array_equal(c, d)
    assert not np.array_equal(a, c)


def test_channel_stats_of_float_images_are_not_divided_again():
    u8 = RNG.integers(0, 255, (5, 8, 8, 3)).astype(np.uint8)
    m8, s8 = channel_stats(u8)
    mf, sf = channel_stats(u8.astype(np.float32) / 255)
    np.testing.assert_allclose(m8, mf, rtol=1e-6)
    np.testing.assert_allclose(s8, sf, rtol=1e-5)


def test_random_state_rule_is_one_rule():
    for ok in (None, 0, np.int64(5), np.random.default_rng(1)):
        assert isinstance(check_random_state(ok), np.random.Generator)
    for bad in SEED.values():
        with pytest.raises((ValueError, TypeError), match="random_state"):
            check_random_state(bad)


def test_settings_missing_key_is_named():
    _validation.check_settings({"a": 1, "b": 2}, ["a", "b"], "settings")
    with pytest.raises(KeyError, match="'b'.*settings|settings.*'b'"):
        _validation.check_settings({"a": 1}, ["a", "b"], "settings")
    with pytest.raises(TypeError, match="settings"):
        _validation.check_settings(["a"], ["a"], "settings")


# ------------------------------------------------------------------------------------------
# property: finite input -> finite output (or a clear error), over seeded random draws
FINITE_CALLS = {
    "match_ot": lambda a, b: match(a, b, method="ot", warn=False),
    "match_snn": lambda a, b: match(a, b, method="snn"),
    "trace": lambda a, b: metrics.trace(match(a, b, method="snn")),
    "latent_mse": lambda a, b: metrics.latent_mse(match(a, b, method="snn"), a),
    "foscttm": lambda a, b: metrics.foscttm(a, b),
    "foscttm_coupling": lambda a, b: metrics.foscttm_coupling(
        match(a, b, method="snn"), b, random_state=0),
    "partner_rank": lambda a, b: metrics.partner_rank(match(a, b, method="snn")),
    "logits": lambda a, b: _FITTED.logits(a),
    "predict_proba": lambda a, b: _FITTED.predict_proba(a),
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(FINITE_CALLS))
def test_finite_input_gives_finite_output(name):
    rng = np.random.default_rng(123)
    for draw in range(12):
        scale = 10.0 ** rng.uniform(-8, 60)      # up to 1e60: squared distances 1e120
        n = int(rng.integers(3, 9))
        a, b = rng.normal(size=(n, D)) * scale, rng.normal(size=(n, D)) * scale
        try:
            out = FINITE_CALLS[name](a, b)
        except ValueError as err:          # a clear refusal is fine; garbage is not
            assert str(err)
            continue
        out = np.asarray(getattr(out, "plan", out), dtype=float)
        assert np.isfinite(out).all(), f"{name}: non-finite output at scale {scale:.3g}"


# ------------------------------------------------------------------------------------------
# global RNG state
_PROBE = torch.nn.Linear(D, 2)          # built here: building a model draws from torch's RNG
RNG_CALLS = {
    "classifier_fit": lambda: _clf(random_state=0).fit(X, T),
    "classifier_fit_generator": lambda: _clf(random_state=np.random.default_rng(0)).fit(X, T),
    "trainer_fit": lambda: CrossModalTrainer(_PROBE, epochs=1, batch_size=6,
                                             random_state=0).fit(X, Y[:, :2], np.eye(N)),
    "vae_fit": lambda: _vae(),
    "match_random": lambda: match(X, Y, method="random", random_state=0),
    "match_groups": lambda: match_groups(X, T, Y, T, method="random", random_state=0),
    "foscttm_coupling": lambda: metrics.foscttm_coupling(M_OK, Y, random_state=0),
    "sample_latents": lambda: sample_latents(10, random_state=0),
}


@pytest.mark.parametrize("name", sorted(RNG_CALLS))
def test_public_calls_leave_global_rng_alone(name):
    np.random.seed(11)
    torch.manual_seed(11)
    np_before, torch_before = np.random.get_state(), torch.get_rng_state().clone()
    RNG_CALLS[name]()
    np_after = np.random.get_state()
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1]) \
        and np_before[2:] == np_after[2:], "global numpy RNG changed"
    assert torch.equal(torch_before, torch.get_rng_state()), "global torch RNG changed"


# ------------------------------------------------------------------------------------------
# downloads against a local server
PAYLOAD = gzip.compress(os.urandom(200_000))


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *args):          # keep test output clean
        pass

    def do_GET(self):  # noqa: N802
        mode = self.server.mode
        self.send_response(200)
        if mode == "ok":
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif mode == "cut":                 # promises the whole file, closes halfway
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif mode == "short":               # no length given, stops early: looks complete
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
        elif mode == "slow":                # half the file, then hangs
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            time.sleep(20)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.mode = "ok"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv):
    return f"http://127.0.0.1:{srv.server_address[1]}/data.h5ad.gz"


def _files(d: pathlib.Path):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_download_ok(server, tmp_path):
    from propalign_lite.datasets.citeseq.geo import _retrieve
    out = _retrieve(_url(server), known_hash=None, cache_dir=tmp_path, fname="data.h5ad.gz")
    assert out.read_bytes() == gzip.decompress(PAYLOAD)
    assert _files(tmp_path) == ["data.h5ad", "data.h5ad.gz"]


def test_cut_connection_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    from propalign_lite.datasets.citeseq.geo import _retrieve
    server.mode = "cut"
    with pytest.raises(ConnectionError, match="127.0.0.1") as info:
        _retrieve(_url(server), known_hash=None, cache_dir=tmp_path, fname="data.h5ad.gz")
    assert _url(server) in str(info.value)
    assert _files(tmp_path) == []


def test_truncated_download_without_hash_leaves_no_gz(server, tmp_path):
    from propalign_lite.datasets.citeseq.geo import _retrieve
    server.mode = "short"
    with pytest.raises(ValueError, match="cut short|incomplete|complete"):
        _retrieve(_url(server), known_hash=None, cache_dir=tmp_path, fname="data.h5ad.gz")
    assert _files(tmp_path) == []
    server.mode = "ok"                      # the next call is not tripped by a leftover
    out = _retrieve(_url(server), known_hash=None, cache_dir=tmp_path, fname="data.h5ad.gz")
    assert out.read_bytes() == gzip.decompress(PAYLOAD)


def test_killed_download_leaves_no_temporary_file(server, tmp_path):
    server.mode = "slow"
    code = textwrap.dedent(f"""
        import pathlib
        from propalign_lite.datasets.citeseq.geo import _retrieve
        _retrieve({_url(server)!r}, known_hash=None, cache_dir=pathlib.Path({str(tmp_path)!r}),
                  fname="data.h5ad.gz")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=pathlib.Path(__file__).parents[1])
    try:
        deadline = time.time() + 180       # the child imports torch: slow on a busy machine
        while time.time() < deadline:      # wait until the download is under way
            if any(p.stat().st_size > 0 for p in tmp_path.rglob("*") if p.is_file()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the download never started")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _files(tmp_path), "the killed download left nothing to clean (test is vacuous)"
    assert not (tmp_path / "data.h5ad.gz").exists() and not (tmp_path / "data.h5ad").exists()
    server.mode = "ok"
    from propalign_lite.datasets.citeseq.geo import _retrieve
    _retrieve(_url(server), known_hash=None, cache_dir=tmp_path, fname="data.h5ad.gz")
    assert _files(tmp_path) == ["data.h5ad", "data.h5ad.gz"]
