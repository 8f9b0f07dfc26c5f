"""The API pages' cross-reference resolver (propalign_book.sphinx_api)."""
from propalign_book.sphinx_api import candidates, documented_target

DOCS = {"propalign_lite.matchers.match": "function",
        "propalign_lite.matchers.match_groups": "function",
        "propalign_lite.alignment.Alignment": "class",
        "propalign_lite.datasets": "module",
        "propalign_lite.classifiers.PropensityClassifier": "class"}


def test_a_reexported_name_links_to_where_it_is_documented():
    assert documented_target("propalign_lite.match_groups", "func", DOCS) \
        == "propalign_lite.matchers.match_groups"
    assert documented_target("~propalign_lite.PropensityClassifier", "class", DOCS) \
        == "propalign_lite.classifiers.PropensityClassifier"
    # a name imported into another module, seen from that module
    assert documented_target("match", "func", DOCS, module="propalign_lite.align") \
        == "propalign_lite.matchers.match"


def test_attributes_link_to_their_class_and_submodules_to_their_package():
    assert documented_target("couplings_", "attr", DOCS, module="propalign_lite.alignment",
                             cls="Alignment") == "propalign_lite.alignment.Alignment"
    assert documented_target(".cells", "mod", DOCS, module="propalign_lite.datasets") \
        == "propalign_lite.datasets"


def test_what_is_not_documented_stays_unresolved():
    # a private helper, an unknown name, a third-party name, an attribute of an undocumented class
    assert documented_target("propalign_lite._sampling.RowSampler", "class", DOCS) is None
    assert documented_target("propalign_lite.no_such_function", "func", DOCS) is None
    assert documented_target("numpy.ndarray", "class", DOCS) is None
    assert documented_target("foo", "attr", DOCS, module="propalign_lite.trainer",
                             cls="CrossModalTrainer") is None
    # the attribute rule is for :attr: only; a :func: to a missing method does not fall back
    assert documented_target("nope", "func", DOCS, module="propalign_lite.alignment",
                             cls="Alignment") is None


def test_candidates_follow_the_python_domain_lookup_order():
    assert candidates("fit", "propalign_lite.classifiers", "PropensityClassifier") == [
        "propalign_lite.classifiers.PropensityClassifier.fit", "propalign_lite.classifiers.fit",
        "propalign_lite.fit", "fit"]


def test_documented_modules_do_not_cross_reference_private_modules():
    """A role pointing into a private module (``propalign_lite._x``) has no API entry, so the
    book's ``-W -n`` build fails on it when the module is on an API page (it did, on
    ``_tree_support.TreeCost`` in ``sinkhorn``)."""
    import importlib
    import pathlib
    import re

    root = pathlib.Path(__file__).parents[1]
    names = re.findall(r"automodule:: (propalign_lite[\w.]*)",
                       "".join(p.read_text() for p in (root / "book" / "api").glob("*.md")))
    assert "propalign_lite.sinkhorn" in names
    role = re.compile(r":(?:func|class|mod|meth|data):`~?propalign_lite\.(?:\w+\.)*_[a-z]\w*")
    bad = [f"{n}: {m.group(0)}" for n in names
           for m in role.finditer(pathlib.Path(importlib.import_module(n).__file__).read_text())]
    assert not bad, bad


def test_attribute_comments_of_documented_modules_do_not_read_as_a_type():
    """napoleon reads the first line of a ``#:`` attribute comment shaped ``text: text`` as
    ``type: description`` and makes the text before the colon a class reference, which the
    ``-W -n`` build cannot resolve (it failed on ``ot_memory.BYTES_PER_PAIR`` when that module
    joined the API pages)."""
    import importlib
    import pathlib
    import re

    root = pathlib.Path(__file__).parents[1]
    names = re.findall(r"automodule:: (propalign_lite[\w.]*)",
                       "".join(p.read_text() for p in (root / "book" / "api").glob("*.md")))
    assert "propalign_lite.ot_memory" in names
    bad = []
    for name in names:
        lines = pathlib.Path(importlib.import_module(name).__file__).read_text().splitlines()
        for i, line in enumerate(lines):
            first = line.startswith("#:") and not (i and lines[i - 1].startswith("#:"))
            if first and re.match(r"#:\s*[^:`]+?:\s", line):
                bad.append(f"{name}: {line}")
    assert not bad, bad
