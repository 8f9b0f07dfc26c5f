"""The ``device="cuda"`` paths, run only where torch sees a GPU (skipped elsewhere, e.g. in CI).

Each test runs the same problem on the CPU and on the GPU and compares them: the GPU's
convolutions and reductions round differently, so results agree to a tolerance, not bit for
bit. Run them on a GPU machine with ``python -m pytest tests/test_gpu.py``.
"""
import numpy as np
import pytest
import torch

from propalign_lite import PropensityClassifier
from propalign_lite.sinkhorn import sinkhorn_online
from propalign_lite.trainer import CrossModalTrainer, make_probe_mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _images(n=256, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 32, 32, 3)).astype(np.uint8)
    for k in (1, 2):                               # class k: a bright band at rows 10k..10k+10
        x[t == k, 10 * k:10 * k + 10] += 150
    return x, t


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_cnn_classifier_trains_on_the_gpu_like_on_the_cpu(precision):
    x, t = _images()
    kw = dict(epochs=8, lr=3e-3, batch_size=32, random_state=0)
    gpu = PropensityClassifier("cnn", device="cuda", precision=precision, **kw)
    gpu.fit(x, t, x_val=x[:64], t_val=t[:64])
    cpu = PropensityClassifier("cnn", **kw).fit(x, t, x_val=x[:64], t_val=t[:64])
    assert gpu.mean_.device.type == "cuda"          # the statistics live beside the batches
    zg, zc = gpu.logits(x), cpu.logits(x)
    assert zg.dtype == np.float64 and zg.shape == (256, 3)
    assert (gpu.predict(x) == t).mean() > 0.95
    assert np.corrcoef(zg.ravel(), zc.ravel())[0, 1] > 0.9
    assert len(gpu.history_["val_loss"]) == 8


def test_mlp_classifier_on_the_gpu_takes_sparse_counts():
    from scipy import sparse

    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 600)
    x = rng.poisson(1.0, (600, 40)).astype(np.float32)
    x[np.arange(600), t] += 6
    clf = PropensityClassifier("mlp", width=64, epochs=10, lr=1e-2, random_state=0,
                               device="cuda").fit(sparse.csr_matrix(x), t)
    assert (clf.predict(sparse.csr_matrix(x)) == t).mean() > 0.95


def test_online_sinkhorn_on_the_gpu_gives_the_cpu_plan():
    # the benchmark's data (benchmarks/ot_bench.py): two noisy copies of 12-d points. (A
    # near-permutation, y = permuted x + small noise, converges slowly at reg 0.05 on both
    # devices alike: the first version of this test used one and stopped at max_iter.)
    rng = np.random.default_rng(2)
    z = 3.0 * rng.normal(size=(3000, 12))
    x, y = z + 0.5 * rng.normal(size=z.shape), z + 0.5 * rng.normal(size=z.shape)
    kw = dict(reg=0.05, tol=1e-6, support="blocked", verify=True)
    gpu = sinkhorn_online(x, y, device="cuda", **kw)
    cpu = sinkhorn_online(x, y, **kw)
    assert gpu.converged and gpu.err < 1e-6 and cpu.converged
    # potentials are unique up to a constant shift (alpha + c, beta - c), and here only to
    # about 1e-4 beyond it: both plans meet the marginals to 1e-6, not to each other exactly
    shift = np.median(gpu.alpha - cpu.alpha)
    np.testing.assert_allclose(gpu.alpha - shift, cpu.alpha, atol=1e-3)
    np.testing.assert_allclose(gpu.beta + shift, cpu.beta, atol=1e-3)


def test_unbiased_trainer_on_the_gpu_matches_the_cpu():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    y = x[:, :3] @ rng.normal(size=(3, 3))
    coupling = np.eye(200)
    fits = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        tr = CrossModalTrainer(make_probe_mlp(4, 3), epochs=5, batch_size=32, lr=1e-2,
                               random_state=0, device=device).fit(x, y, coupling)
        fits[device] = tr.predict(x)
    np.testing.assert_allclose(fits["cuda"], fits["cpu"], rtol=1e-3, atol=1e-3)
