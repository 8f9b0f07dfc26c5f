import numpy as np
import pytest
from scipy.special import softmax

from propalign_lite.embeddings import EMBEDDINGS, propensity_embedding


def test_values_and_shift_invariance():
    rng = np.random.default_rng(0)
    ell = rng.normal(size=(30, 4)) * 3
    shifted = ell + rng.normal(size=(30, 1)) * 10         # same softmax, other logits
    np.testing.assert_allclose(propensity_embedding(ell, "proba"), softmax(ell, axis=1))
    np.testing.assert_allclose(propensity_embedding(ell, "log_proba"),
                               np.log(softmax(ell, axis=1)), atol=1e-12)
    np.testing.assert_allclose(propensity_embedding(ell, "centred").sum(1), 0, atol=1e-12)
    np.testing.assert_array_equal(propensity_embedding(ell, "logits"), ell)
    for kind in ("proba", "log_proba", "centred"):
        np.testing.assert_allclose(propensity_embedding(ell, kind),
                                   propensity_embedding(shifted, kind), atol=1e-9)
    assert not np.allclose(propensity_embedding(ell, "logits"),
                           propensity_embedding(shifted, "logits"))
    # centred logits are the centred log-probabilities
    lp = propensity_embedding(ell, "log_proba")
    np.testing.assert_allclose(propensity_embedding(ell, "centred"),
                               lp - lp.mean(1, keepdims=True), atol=1e-12)


def test_logits_not_modified_in_place():
    ell = np.ones((2, 3))
    out = propensity_embedding(ell, "logits")
    out[0, 0] = 5
    assert ell[0, 0] == 1


def test_large_logits_are_stable():
    ell = np.array([[1000.0, 0.0, -1000.0]])
    for kind in EMBEDDINGS:
        assert np.isfinite(propensity_embedding(ell, kind)).all()


@pytest.mark.parametrize("logits,kind,match", [
    (np.zeros((3, 2)), "softmax", "unknown embedding"),
    (np.zeros(3), "logits", "2-dimensional"),
    (np.zeros((3, 1)), "proba", "at least 2"),
    (np.array([[0.0, np.inf]]), "centred", "NaN or infinite"),
])
def test_bad_inputs(logits, kind, match):
    with pytest.raises(ValueError, match=match):
        propensity_embedding(logits, kind)
