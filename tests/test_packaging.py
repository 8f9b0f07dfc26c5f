"""The project's set-up files agree with each other."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_mirrors_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env_text = (ROOT / "environment.yml").read_text()
    pip_block = env_text.split("- pip:", 1)[1].splitlines()
    env = _pins(pip_block)
    assert req, "requirements.txt has no pins"
    assert env == req, f"environment.yml and requirements.txt disagree: {set(env.items()) ^ set(req.items())}"
    assert "python=3.11" in env_text


def test_torch_pinned_to_cpu_build_everywhere():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert req["torch"] == "2.13.0"
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", readme, flags=re.S)
    commands = [l.strip() for b in blocks for l in b.splitlines() if l.strip() and not l.startswith("#")]
    test_cmd = next(c for c in commands if "test" in c).split("#")[0].strip()
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_every_chapter_is_jupytext_with_parameters_and_in_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for src in (ROOT / "book").glob("*.py"):
        text = src.read_text()
        assert "kernelspec:" in text and "format_name: percent" in text, src
        assert '# %% tags=["parameters"]' in text, f"{src.name} has no parameters cell"
        assert "profile = " in text, f"{src.name} does not take a profile"
        assert f"book/{src.stem}" in toc, f"{src.name} is not in _toc.yml"


def test_no_notebooks_or_build_output_tracked():
    """What git tracks (not what .gitignore says): no notebook, build output, environment,
    fetched asset or results-store record outside results/recorded/."""
    import subprocess

    ignored = (ROOT / ".gitignore").read_text()
    for pattern in ("*.ipynb", "_build/", ".venv/", "_assets/"):
        assert pattern in ignored
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert len(tracked) > 50
    bad = [f for f in tracked if f.endswith(".ipynb")
           or f.split("/")[0] in ("_build", ".venv", "_assets")
           or (f.startswith("results/") and not f.startswith("results/recorded/"))]
    assert not bad, bad


def test_sources_have_no_invalid_escape_sequences():
    """A docstring with ``\\c`` or ``\\a`` (LaTeX in a non-raw string) compiles with a
    SyntaxWarning and renders wrongly (``\\a`` is a bell character): every source must
    compile cleanly with warnings as errors."""
    import pathlib
    import warnings

    root = pathlib.Path(__file__).resolve().parents[1]
    files = [p for d in ("propalign_lite", "propalign_book", "book", "scripts", "benchmarks", "tests")
             for p in (root / d).rglob("*.py")]
    assert len(files) > 50
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(path.read_text(), str(path), "exec")


def test_no_real_data_file_is_tracked():
    """The real paired cells live outside the project (../shared/data, or a download): none of
    their files, nor any .h5ad / .npz, may enter git."""
    import subprocess

    from propalign_lite.datasets import PAIRED_SETS

    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):      # not a git checkout (e.g. an sdist)
        import pytest
        pytest.skip("not a git checkout")
    names = {f.name for files in PAIRED_SETS.values() for f in files}
    bad = [t for t in tracked if Path(t).name in names or t.endswith((".npz", ".h5ad"))
           and not t.startswith("tests/data/")]
    assert not bad, f"data files tracked by git: {bad}"


def _imported_modules(path):
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    parts = list(path.relative_to(root).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def test_the_library_never_imports_the_book_kit():
    """propalign_lite is what a user installs: no module of it may import propalign_book (the
    profiles, runner, store, experiments, report and plots of the book), at any depth."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    files = sorted((root / "propalign_lite").rglob("*.py"))
    assert len(files) > 20
    bad = {str(p.relative_to(root)): sorted(m for m in _imported_modules(p)
                                            if m.split(".")[0] == "propalign_book")
           for p in files}
    assert not {k: v for k, v in bad.items() if v}
    # and the relative-import resolution above sees a library-internal import as such
    assert "propalign_lite.matchers.match_groups" in _imported_modules(
        root / "propalign_lite" / "align.py")


def test_every_library_module_imports_without_the_book_kit():
    """With propalign_book made unimportable, every module of propalign_lite still imports."""
    import subprocess
    import sys

    code = ("import sys, pkgutil, importlib; sys.modules['propalign_book'] = None\n"
            "import propalign_lite\n"
            "names = [m.name for m in pkgutil.walk_packages(propalign_lite.__path__, "
            "'propalign_lite.')]\n"
            "[importlib.import_module(n) for n in names]\n"
            "print(len(names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) > 20


def test_record_keys_hash_the_library_and_the_units_not_the_presentation():
    import pathlib

    from propalign_book.store import source_files

    root = pathlib.Path(__file__).resolve().parents[1]
    names = {p.relative_to(root).as_posix() for p in source_files()}
    assert {"propalign_lite/matchers.py", "propalign_lite/datasets/cells.py",
            "propalign_book/experiments/trust.py"} <= names
    assert not {"propalign_book/plots.py", "propalign_book/report.py",
                "propalign_book/runner.py", "book/trust.py"} & names


def test_the_library_has_no_import_cycle():
    """No two library modules import each other, directly or through others, counting the
    imports inside functions (coupling <-> matchers, align -> alignment -> alignment_io ->
    align were such cycles)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    mods = {}
    for p in sorted((root / "propalign_lite").rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for name, p in mods.items():
        deps = set()
        for m in _imported_modules(p):
            while m and m not in mods:
                m = m.rpartition(".")[0]
            if m and m not in (name, "propalign_lite"):
                deps.add(m)
        graph[name] = deps

    def reaches(start):
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return seen

    cycles = sorted(m for m in graph if m in reaches(m))
    assert not cycles, f"modules on an import cycle: {cycles}"
    assert "propalign_lite._blocked" in graph["propalign_lite.coupling"]


def test_no_code_seeds_a_global_random_generator():
    """Seeds are local: ``np.random.seed`` / ``random.seed`` are never called, and
    ``torch.manual_seed`` only inside ``with torch.random.fork_rng(...)``, which restores the
    global state afterwards (experiments/prediction.py once seeded torch's global RNG)."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    bad = []
    for d in ("propalign_lite", "propalign_book", "book"):
        for path in sorted((root / d).rglob("*.py")):
            tree = ast.parse(path.read_text())
            forked = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.With) and any(
                        "fork_rng" in ast.unparse(item.context_expr) for item in node.items):
                    forked |= {id(n) for n in ast.walk(node)}
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                if name in ("np.random.seed", "numpy.random.seed", "random.seed") or (
                        name == "torch.manual_seed" and id(node) not in forked):
                    bad.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert not bad, bad


def test_every_public_library_module_declares_its_surface():
    """Each public module of the library has ``__all__``; every name in it exists, and every
    public function, class or constant it defines is declared (helpers not meant for users
    carry a leading underscore)."""
    import ast
    import importlib
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    checked = 0
    for path in sorted((root / "propalign_lite").rglob("*.py")):
        rel = path.relative_to(root / "propalign_lite")
        if any(part.startswith("_") for part in rel.parts):
            continue
        name = "propalign_lite." + ".".join(rel.with_suffix("").parts)
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} has no __all__"
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ names what it lacks: {missing}"
        defined = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)
                            and t.id.isupper() and not t.id.startswith("_")}
        assert defined <= set(module.__all__), \
            f"{name} defines public names it does not declare: {sorted(defined - set(module.__all__))}"
        checked += 1
    assert checked >= 20
