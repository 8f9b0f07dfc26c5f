"""The bad inputs a new user hit that still gave torch or numpy messages (issue: one library,
one book kit, step 7): each now fails early in the package's words, naming what to change."""
import numpy as np
import pytest
import torch

from propalign_lite import CrossModalTrainer, PropensityClassifier
from propalign_lite.baselines import CrossModalVAE
from propalign_lite.datasets.balls import treatment_name
from propalign_lite.matchers import euclidean_cost, row_normalize
from propalign_lite.metrics import mean_over_groups, per_group, trace
from propalign_lite.trainer import make_probe_mlp

X = np.random.default_rng(0).random((10, 4)).astype(np.float32)
Y = np.random.default_rng(1).random((10, 3)).astype(np.float32)


@pytest.mark.parametrize("kwargs, fit_args, message", [
    (dict(batch_size=1), (X, Y, np.eye(10)), "batch normalisation.*batch_size is 1"),
    ({}, (X, Y[:1], np.full((1, 10), 0.1)), "batch normalisation.*there is 1 target"),
])
def test_trainer_refuses_single_sample_batches_of_a_batch_norm_model(kwargs, fit_args, message):
    with pytest.raises(ValueError, match=message):
        CrossModalTrainer(make_probe_mlp(4, 3), epochs=1, **kwargs).fit(*fit_args)


def test_trainer_names_a_model_of_the_wrong_width():
    with pytest.raises(ValueError, match="cannot take these inputs \\(4 features"):
        CrossModalTrainer(make_probe_mlp(5, 3), epochs=1).fit(X, Y, np.eye(10))
    with pytest.raises(ValueError, match="returns \\(2,\\) values per sample but the targets "
                                         "have 3 columns"):
        CrossModalTrainer(make_probe_mlp(4, 2), epochs=1).fit(X, Y, np.eye(10))


def test_half_precision_tensors_are_accepted():
    fit = CrossModalTrainer(make_probe_mlp(4, 3), epochs=1, batch_size=5, random_state=0).fit(
        torch.tensor(X, dtype=torch.bfloat16), torch.tensor(Y, dtype=torch.float16), np.eye(10))
    assert fit.predict(X).shape == (10, 3)


def test_seeds_beyond_torch_range_are_refused_clearly():
    with pytest.raises(ValueError, match="random_state must be below 2\\*\\*63"):
        PropensityClassifier("mlp", epochs=1, random_state=2 ** 64).fit(X, np.arange(10) % 2)


def test_vae_refuses_label_vocabularies_that_differ():
    with pytest.raises(ValueError, match="same labels.*only in t2 \\[2\\]"):
        CrossModalVAE("mlp", epochs=1, width=8, latent_dim=2).fit(
            X, np.arange(10) % 2, X, np.arange(10) % 3)


def test_small_helpers_check_their_input():
    np.testing.assert_allclose(euclidean_cost([[0, 0]], [[3, 4]]), [[5.0]])      # lists work
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        euclidean_cost(np.array([[np.nan, 2.0]]), np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="same number of columns, got 3 and 4"):
        euclidean_cost(np.ones((2, 3)), np.ones((2, 4)))
    np.testing.assert_allclose(row_normalize([[1, 3]]), [[0.25, 0.75]])
    with pytest.raises(ValueError, match="negative entries"):
        row_normalize(np.array([[1.0, -1.0], [1.0, 1.0]]))
    with pytest.raises(TypeError, match="values must be a dict"):
        mean_over_groups([1.0, 2.0])
    with pytest.raises(TypeError, match="couplings must be a dict"):
        per_group(trace, [np.eye(2)], [0, 0])
    assert treatment_name(0).startswith("do(")
    for bad in (12, -1, 1.5):
        with pytest.raises(ValueError, match="t must be"):
            treatment_name(bad)
