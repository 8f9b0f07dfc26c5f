"""The simulated data and the classifiers of the two theory chapters (``book/theory.py`` and
``book/theory_matching.py``), so that both pages build the same units the same way.

Example
-------
>>> from propalign_book.profiles import get_profile
>>> S = dict(get_profile("theory", "ci"), n_train=60, n_val=30, n_test=30)
>>> kw, train, val, test = views_splits(S)
>>> len(train), len(val), len(test), test.z.shape[1] == S["latent_dim"]
(60, 30, 30, True)
"""
from __future__ import annotations

from propalign_lite import PropensityClassifier
from propalign_lite.datasets.views import make_views

__all__ = ["views_splits", "fit_view", "scores"]


def views_splits(S: dict):
    """``(kw, train, val, test)``: the :func:`make_views` options of the chapter's simulator
    and its three splits (seeds ``data_seed``, ``+ 1``, ``+ 2``)."""
    kw = dict(n_treatments=S["n_treatments"], latent_dim=S["latent_dim"],
              noise_dim=S["noise_dim"], shift=S["shift"])
    train = make_views(S["n_train"], random_state=S["data_seed"], **kw)
    val = make_views(S["n_val"], random_state=S["data_seed"] + 1, **kw)
    test = make_views(S["n_test"], random_state=S["data_seed"] + 2, **kw)
    return kw, train, val, test


def fit_view(S: dict, view: str, data_train, data_val, *, device: str = "cpu", **overrides):
    """One ``PropensityClassifier("mlp")`` on ``view`` (``"x1"`` or ``"x2"``) of the training
    split, validated on ``data_val``; the profile's width, epochs, learning rate, batch size and
    seed unless ``overrides`` says otherwise."""
    options = dict(width=S["width"], epochs=S["epochs"], lr=S["lr"], batch_size=S["batch_size"],
                   random_state=S["seed"], standardize=True, device=device)
    options.update(overrides)
    clf = PropensityClassifier("mlp", **options)
    return clf.fit(getattr(data_train, view), data_train.t,
                   x_val=getattr(data_val, view), t_val=data_val.t)


def scores(couplings: dict, t, z) -> dict:
    """Group-averaged ``"Trace"`` and latent ``"MSE"`` of a dict of couplings (paired test
    data: the true partner of row ``i`` is column ``i`` of its group)."""
    from propalign_lite import metrics

    out = metrics.evaluate_couplings(couplings, t, z=z)
    return {"Trace": out["Trace"], "MSE": out["MSE"]}
