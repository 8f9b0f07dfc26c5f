"""Sphinx extension for the API pages: cross-references to where an object is documented.

The library re-exports its main names (``propalign_lite.match`` is
``propalign_lite.matchers.match``), and its docstrings name objects by the path a user types.
The API pages document every object once, where it is defined. This extension (listed in
``sphinx.extra_extensions`` of ``_config.yml``) resolves a Python cross-reference that Sphinx
could not by *object identity*: ``:func:`propalign_lite.match``` imports the object, finds the
documented name bound to the same object (``propalign_lite.matchers.match``) and links there.
Two more rules, both narrow:

- ``:attr:`` to an attribute of a documented class (an instance attribute or a dataclass field,
  described in the class's "Attributes" section) links to the class;
- ``:mod:`` to an undocumented submodule of a documented package links to the package.

Only names under ``propalign_lite`` and ``propalign_book`` are resolved; any other unresolved
reference stays unresolved, and with ``-n -W`` fails the build.
"""
from __future__ import annotations

import importlib

PACKAGES = ("propalign_lite", "propalign_book")
_MISSING = object()


def import_dotted(name: str):
    """The object a dotted name denotes (module, then attributes), or ``None``.

    Example
    -------
    >>> import_dotted("propalign_lite.matchers.match").__name__
    'match'
    >>> import_dotted("propalign_lite.no_such_name") is None
    True
    """
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return None
        return obj
    return None


def candidates(target: str, module: str | None = None, cls: str | None = None) -> list[str]:
    """The full names a reference ``target`` may mean, seen from ``module`` and class ``cls``
    (most specific first), as Sphinx's Python domain reads them.

    Example
    -------
    >>> candidates("fit", "propalign_lite.classifiers", "PropensityClassifier")[0]
    'propalign_lite.classifiers.PropensityClassifier.fit'
    >>> candidates(".cells", "propalign_lite.datasets")
    ['propalign_lite.datasets.cells']
    """
    target = target.lstrip("~")
    if target.startswith("."):
        return [f"{module}{target}"] if module else []
    out = []
    if module and cls:
        out.append(f"{module}.{cls}.{target}")
    if module:
        parts = module.split(".")
        out += [".".join(parts[:i] + [target]) for i in range(len(parts), 0, -1)]
    out.append(target)
    return list(dict.fromkeys(out))


def documented_target(target: str, reftype: str, documented: dict, *, module=None, cls=None,
                      identity=None) -> str | None:
    """The documented full name a reference should link to, or ``None``.

    ``documented`` maps documented full names to their object type (``"function"``,
    ``"class"``, ``"module"``, ...); ``identity`` maps ``id(obj)`` to a documented name (built
    from ``documented`` when not given).

    Example
    -------
    >>> docs = {"propalign_lite.matchers.match": "function",
    ...         "propalign_lite.alignment.Alignment": "class"}
    >>> documented_target("propalign_lite.match", "func", docs)
    'propalign_lite.matchers.match'
    >>> documented_target("couplings_", "attr", docs, module="propalign_lite.alignment",
    ...                   cls="Alignment")
    'propalign_lite.alignment.Alignment'
    >>> documented_target("propalign_lite.nothing", "func", docs) is None
    True
    """
    if identity is None:
        identity = identity_map(documented)
    for name in candidates(target, module, cls):
        if not name.startswith(PACKAGES):
            continue
        if name in documented:
            return name
        obj = import_dotted(name)
        if obj is not None and not isinstance(obj, (bool, int, float, str)) \
                and id(obj) in identity:
            return identity[id(obj)]
        owner = name.rpartition(".")[0]
        wanted = {"attr": ("class", "exception"), "mod": ("module",)}.get(reftype, ())
        while owner.startswith(PACKAGES) and reftype in ("attr", "mod"):
            if documented.get(owner) in wanted:
                return owner
            if reftype == "attr":
                break
            owner = owner.rpartition(".")[0]
    return None


def identity_map(documented: dict) -> dict:
    """``id(obj) -> documented name`` for the documented names that import (first name wins)."""
    out = {}
    for name in documented:
        obj = import_dotted(name)
        if obj is not None and not isinstance(obj, (bool, int, float, str)):
            out.setdefault(id(obj), name)
    return out


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    documented = {name: entry.objtype for name, entry in domain.objects.items()}
    cache = getattr(app, "_propalign_identity", None)
    if cache is None or cache[0] != len(documented):
        cache = app._propalign_identity = (len(documented), identity_map(documented))
    name = documented_target(node["reftarget"], node.get("reftype", ""), documented,
                             module=node.get("py:module"), cls=node.get("py:class"),
                             identity=cache[1])
    if name is None:
        return None
    return domain.resolve_xref(env, node.get("refdoc", ""), app.builder, "obj", name,
                               node, contnode)


def setup(app):
    """Sphinx entry point (see the module docstring)."""
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
