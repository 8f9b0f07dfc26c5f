import numpy as np
import pytest

from propalign_lite.datasets import make_balls
from propalign_lite.datasets.balls import sample_latents, view2_transform


@pytest.fixture(scope="module")
def data():
    return make_balls(240, image_size=32, random_state=7)


def test_shapes_and_types(data):
    assert data.x1.shape == data.x2.shape == (240, 32, 32, 3)
    assert data.x1.dtype == np.uint8
    assert data.z.shape == (240, 4) and data.t.shape == (240,)
    assert set(np.unique(data.t)) <= set(range(12))


def test_intervened_coordinate_constant_within_class():
    z, t, k, v = sample_latents(6000, random_state=0)
    assert len(np.unique(t)) == 12
    for cls in range(12):
        m = t == cls
        kk, vi = divmod(cls, 3)
        np.testing.assert_array_equal(z[m, kk], (0.25, 0.5, 0.75)[vi])
        others = [c for c in range(4) if c != kk]
        assert (z[m][:, others].std(0) > 0.05).all()


def test_child_mechanism_after_parent_intervention():
    z, t, k, v = sample_latents(4000, random_state=1)
    free_child = k < 2
    upper = 1.25 * (z[:, 0] ** 2 + z[:, 1] ** 2) >= 1
    sel = free_child & upper
    assert (z[sel, 2] <= 0.5).all() and (z[sel, 3] >= 0.5).all()
    sel = free_child & ~upper
    assert (z[sel, 2] >= 0.5).all() and (z[sel, 3] <= 0.5).all()


def test_seeded_determinism():
    a = make_balls(20, image_size=32, random_state=3)
    b = make_balls(20, image_size=32, random_state=3)
    c = make_balls(20, image_size=32, random_state=4)
    np.testing.assert_array_equal(a.x1, b.x1)
    np.testing.assert_array_equal(a.x2, b.x2)
    np.testing.assert_array_equal(a.z, b.z)
    assert not np.array_equal(a.x1, c.x1)


def test_views_share_z_and_draw_balls_where_z_says():
    d = make_balls(30, image_size=64, random_state=0)
    S = 64
    for i in range(30):
        # ball 1 of view 1 is drawn in colour (2, 156, 154) at (S x1, S (1 - y1)) after the flip
        col, row = int(S * d.z[i, 0]), S - 1 - int(S * d.z[i, 1])
        patch = d.x1[i, max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].reshape(-1, 3)
        assert (np.abs(patch.astype(int) - (2, 156, 154)).sum(1) < 10).any()
    # the background noise differs between views even though z is shared
    assert not np.array_equal(d.x1, d.x2)


def test_view2_transform_range():
    p = np.random.default_rng(0).uniform(0.1, 0.9, (1000, 2))
    q = view2_transform(p)
    assert q.min() > 0.25 and q.max() < 0.9


@pytest.mark.parametrize("kwargs,msg", [(dict(n=0), "positive integer"),
                                        (dict(n=5, image_size=4), "image_size")])
def test_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        make_balls(**kwargs)
