import numpy as np
import pytest
import torch

from propalign_lite import PropensityClassifier
from propalign_lite.encoders import CNNEncoder, MLPEncoder


def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 6)) * 0.5 + 3 * np.eye(6)[t]
    return x, t


def test_mlp_learns_separable_toy_and_keeps_best_epoch():
    x, t = _toy()
    clf = PropensityClassifier("mlp", width=32, epochs=15, lr=1e-2, batch_size=64,
                               random_state=0).fit(x[:300], t[:300], x_val=x[300:], t_val=t[300:])
    assert (clf.predict(x[300:]) == t[300:]).mean() > 0.95
    h = clf.history_
    assert len(h["val_loss"]) == 15
    assert h["val_loss"][clf.best_epoch_ - 1] == min(h["val_loss"])
    # the kept model reproduces the best validation loss
    logits = torch.from_numpy(clf.logits(x[300:]))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(t[300:]))
    assert float(loss) == pytest.approx(min(h["val_loss"]), rel=1e-4)
    p = clf.predict_proba(x[:5])
    np.testing.assert_allclose(p.sum(1), 1)


def test_string_labels_and_classes_order():
    x, t = _toy(200)
    names = np.array(["b", "c", "a"])[t]
    clf = PropensityClassifier("mlp", width=16, epochs=2, lr=1e-2, random_state=0).fit(x, names)
    assert list(clf.classes_) == ["a", "b", "c"]
    assert clf.logits(x).shape == (200, 3)


def test_seeded_runs_are_identical():
    x, t = _toy(200)
    a = PropensityClassifier("mlp", width=16, epochs=3, random_state=5).fit(x, t).logits(x)
    b = PropensityClassifier("mlp", width=16, epochs=3, random_state=5).fit(x, t).logits(x)
    np.testing.assert_array_equal(a, b)


def test_cnn_on_images():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 64)
    x = rng.integers(0, 50, (64, 32, 32, 3)).astype(np.uint8)
    x[t == 1, :16] += 150                     # class 1: bright top half
    clf = PropensityClassifier("cnn", epochs=6, lr=3e-3, batch_size=16, random_state=0)
    clf.fit(x, t, x_val=x, t_val=t)
    assert clf.logits(x).shape == (64, 2)
    assert (clf.predict(x) == t).mean() > 0.9
    assert clf.mean_.shape == (1, 3, 1, 1)


def test_encoders_shapes():
    assert CNNEncoder(image_size=64, out_dim=8)(torch.zeros(2, 3, 64, 64)).shape == (2, 8)
    assert MLPEncoder(5, width=16)(torch.zeros(3, 5)).shape == (3, 16)
    with pytest.raises(ValueError, match="multiple of 32"):
        CNNEncoder(image_size=48)


@pytest.mark.parametrize("call,msg", [
    (lambda x, t: PropensityClassifier("rnn"), "encoder must be"),
    (lambda x, t: PropensityClassifier("mlp", epochs=0), "epochs"),
    (lambda x, t: PropensityClassifier("mlp", epochs=1).fit(x, t[:-1]), "entries"),
    (lambda x, t: PropensityClassifier("mlp", epochs=1).fit(np.where(x > 2, np.nan, x), t), "NaN"),
    (lambda x, t: PropensityClassifier("mlp", epochs=1).fit(x, np.zeros(len(x))), "two treatments"),
    (lambda x, t: PropensityClassifier("mlp", epochs=1).fit(x, t, x_val=x), "both x_val"),
    (lambda x, t: PropensityClassifier("mlp", epochs=1, width=8).fit(x, t, x_val=x, t_val=t + 5),
     "never seen"),
    (lambda x, t: PropensityClassifier("cnn", epochs=1).fit(x, t), "batch of images"),
    (lambda x, t: PropensityClassifier("mlp").logits(x), "not fitted"),
])
def test_bad_inputs(call, msg):
    x, t = _toy(50)
    with pytest.raises((ValueError, RuntimeError), match=msg):
        call(x, t)


@pytest.mark.parametrize("epochs", [1, 10, 20])
def test_one_cycle_schedule_any_epoch_count(epochs):
    # torch's OneCycleLR divides by zero when pct_start * epochs == 1 (10 epochs at 0.1)
    x, t = _toy(40)
    clf = PropensityClassifier("mlp", width=8, epochs=epochs, random_state=0).fit(x, t)
    assert len(clf.history_["lr"]) == epochs
    assert max(clf.history_["lr"]) == pytest.approx(clf.lr, rel=0.05) or epochs < 3


def _bright_top(n=64, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    x = rng.integers(0, 50, (n, 32, 32, 3)).astype(np.uint8)
    x[t == 1, :16] += 150                     # class 1: bright top half
    return x, t


@pytest.mark.parametrize("encoder", ["cnn", "mlp"])
def test_batches_cut_from_a_copy_on_the_device_train_the_same_model(monkeypatch, encoder):
    # on a GPU the training and validation arrays are copied to it once and the batches are
    # cut there; the network must see the same inputs as when each batch is sent on its own
    import propalign_lite.classifiers as clf_mod

    x, t = _bright_top() if encoder == "cnn" else _toy(200)
    kw = dict(epochs=3, lr=3e-3, batch_size=16, random_state=0, standardize=True)

    def fit():
        return PropensityClassifier(encoder, **kw).fit(x, t, x_val=x[:40], t_val=t[:40])

    sent = fit()
    copied = []
    monkeypatch.setattr(clf_mod, "_fits_on_device",
                        lambda nbytes, device: copied.append(nbytes) or True)
    cut = fit()
    size = x.nbytes if encoder == "cnn" else x.astype(np.float32).nbytes   # the float32 copy
    assert copied == [size, size * 40 // len(x)]       # the training and validation arrays
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert cut.history_[key] == sent.history_[key], key
    np.testing.assert_array_equal(cut.logits(x), sent.logits(x))


def test_bf16_autocast_trains_and_returns_float64_logits():
    x, t = _bright_top()
    clf = PropensityClassifier("cnn", epochs=6, lr=3e-3, batch_size=16, random_state=0,
                               precision="bf16").fit(x, t, x_val=x, t_val=t)
    ref = PropensityClassifier("cnn", epochs=6, lr=3e-3, batch_size=16,
                               random_state=0).fit(x, t, x_val=x, t_val=t)
    z = clf.logits(x)
    assert z.dtype == np.float64 and (clf.predict(x) == t).mean() > 0.9
    # bfloat16 forward passes (8 bits of mantissa): close to, not equal to, float32's
    assert not np.array_equal(z, ref.logits(x))
    with pytest.raises(ValueError, match="precision"):
        PropensityClassifier("cnn", precision="fp16")
