"""Named run profiles of the book's chapters.

A chapter reads its settings with ``get_profile(chapter, profile)``. Two profiles exist:

* ``"ci"`` (default): the whole book on a 2-core CPU without a GPU, in minutes. Sizes, image
  resolution, epochs and seeds are reduced; what each chapter reduces is printed at its top.
* ``"paper"``: the paper's sizes, epochs and 10 seeds (GPU recommended; CITE-seq chapters need
  the real GEO file, see :func:`propalign_lite.datasets.load_cite_seq`).
"""
from __future__ import annotations

import copy

PROFILES: dict[str, dict[str, dict]] = {
    "synthetic": {
        "ci": dict(image_size=32, n_train=3000, n_val=750, n_test=20000, epochs=8,
                   batch_size=256, lr=2e-3, seeds=[1, 2, 3], data_seed=10),
        "paper": dict(image_size=128, n_train=20000, n_val=5000, n_test=20000, epochs=100,
                      batch_size=256, lr=1e-4, seeds=list(range(1, 11)), data_seed=10),
    },
}


def get_profile(chapter: str, profile: str = "ci", **overrides) -> dict:
    """Settings of ``chapter`` under ``profile``, with keyword ``overrides`` applied.

    >>> get_profile("synthetic", "paper")["epochs"]
    100
    """
    if chapter not in PROFILES:
        raise ValueError(f"unknown chapter {chapter!r}; known: {sorted(PROFILES)}")
    if profile not in PROFILES[chapter]:
        raise ValueError(f"unknown profile {profile!r} for chapter {chapter!r}; "
                         f"choose one of {sorted(PROFILES[chapter])}")
    settings = copy.deepcopy(PROFILES[chapter][profile])
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for chapter {chapter!r}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["profile"] = profile
    return settings
