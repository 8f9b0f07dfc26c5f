"""End to end: fixture file -> loader -> classifiers -> matchers -> metrics (the CITE-seq chapter's
pipeline on a tiny scale), and the book runner's plumbing."""
import warnings
from pathlib import Path

import numpy as np
import pytest

from propalign_lite import PropensityClassifier, match_groups, metrics
from propalign_book.book import chapters_from_toc
from propalign_lite.datasets.citeseq import load_cite_seq
from propalign_book.profiles import PROFILES, get_profile

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "cite_fixture.h5ad"


def test_citeseq_pipeline_on_fixture():
    data = load_cite_seq(FIXTURE, n_pcs=20)
    train, val, test = (data.split_view(s) for s in ("train", "val", "test"))
    embs = []
    for x_tr, x_va, x_te in ((train.adt, val.adt, test.adt),
                             (train.gex_pca, val.gex_pca, test.gex_pca)):
        clf = PropensityClassifier("mlp", width=32, epochs=10, lr=1e-2, batch_size=64,
                                   random_state=0)
        clf.fit(x_tr, train.cell_type, x_val=x_va, t_val=val.cell_type)
        assert clf.history_["val_accuracy"][clf.best_epoch_ - 1] > 0.5
        embs.append(clf.logits(x_te))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # types with one test cell: skipped
        couplings = match_groups(embs[0], test.cell_type, embs[1], test.cell_type, method="ot",
                                 on_missing="skip")
    scores = metrics.evaluate_couplings(couplings, test.cell_type, x2=embs[1], random_state=0)
    assert 0 <= scores["FOSCTTM"] <= 1 and 0 < scores["Trace"] <= 1
    for g, M in couplings.items():
        np.testing.assert_allclose(M.sum(1), 1)
        assert M.shape[0] == (test.cell_type == g).sum()


def test_toc_lists_every_chapter_with_a_profile():
    """Every page of the toc has a source; every profile a chapter asks for exists with both
    ``ci`` and ``paper``; every profile of PROFILES is used by some page."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    chapters = chapters_from_toc()
    assert chapters[0] == "book/intro"
    used = set()
    for chapter in chapters:
        sources = [p for p in (root / f"{chapter}.py", root / f"{chapter}.md") if p.exists()]
        assert sources, f"{chapter} is in _toc.yml but has no source"
        used |= set(re.findall(r'get_profile\(\s*"(\w+)"', sources[0].read_text()))
    assert used, "no chapter reads a profile"
    for name in used:
        assert name in PROFILES, f"a chapter asks for the unknown profile {name!r}"
        for profile in ("ci", "paper"):
            assert get_profile(name, profile)["profile"] == profile
    assert set(PROFILES) <= used, f"profiles no page uses: {set(PROFILES) - used}"


def test_get_profile_errors():
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("synthetic", "fast")
    with pytest.raises(ValueError, match="unknown setting"):
        get_profile("synthetic", "ci", epocs=3)
    assert get_profile("synthetic", "ci", seeds=[7])["seeds"] == [7]


def test_load_cite_seq_for_profile_settings():
    from propalign_lite.datasets import load_cite_seq_for

    settings = dict(data="simulated", n_cells=400, n_pcs=10, data_seed=3,
                    simulator=dict(n_cell_types=6, n_genes=300, n_proteins=20, batches=3))
    a, text = load_cite_seq_for(settings)
    b, _ = load_cite_seq_for(settings)
    assert a.gex_pca.shape == (400, 10) and "simulated" in text
    np.testing.assert_array_equal(a.adt, b.adt)          # same settings, same cells
    with pytest.raises(ValueError, match="data must be"):
        load_cite_seq_for(dict(settings, data="h5"))
