"""The layout is the architecture: layers, no cycles, no private names across packages.

The layer contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and
are explained in ``docs/design.md``; these tests run them and check what
import-linter does not: module-level import cycles (lazy imports included),
private names imported across packages, the size of the top level and of each
file, and the deprecated old import paths.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PKG = SRC / "repscope"

grimp = pytest.importorskip("grimp", reason="the architecture checks need import-linter")


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(SRC).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# ----------------------------------------------------------------- layers
def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports (import-linter) is not installed in this environment"
    run = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "broken" not in run.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_every_subpackage_sits_in_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {m.strip().split(".")[1] for layer in layers for m in layer.split("|")}
    present = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists())
               or (p.suffix == ".py" and not p.name.startswith("_"))}
    assert present - named == set(), "a subpackage or public module is outside the layers"


# ----------------------------------------------------------------- cycles
def _cycles(adjacency: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in adjacency:
        if start in index:
            continue
        work = [(start, iter(adjacency[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(adjacency.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": [], "c": ["a"]}) == []


def test_no_import_cycle_between_modules() -> None:
    """No two modules import each other, directly or through others — lazy imports included."""
    graph = grimp.build_graph("repscope", include_external_packages=False,
                              exclude_type_checking_imports=True)
    adjacency = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(adjacency) == []


def test_nothing_imports_the_top_level_package() -> None:
    graph = grimp.build_graph("repscope", include_external_packages=False,
                              exclude_type_checking_imports=True)
    assert graph.find_modules_that_directly_import("repscope") == set()


# ----------------------------------------------------------- private names
def _private_imports_across_packages() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        importer = _module_name(path)
        home = _subpackage(importer)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("repscope"):
                modules = [node.module]
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names if a.name.startswith("repscope")]
                names = []
            else:
                continue
            for module in modules:
                if _subpackage(module) in (home, ""):
                    continue
                private = [p for p in module.split(".")[1:] if p.startswith("_")]
                private += [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    bad.append(f"{importer} imports {private} from {module}")
    return bad


def test_no_private_name_imported_across_packages() -> None:
    assert _private_imports_across_packages() == []


# ------------------------------------------------------------------ sizes
def test_top_level_holds_only_the_entry_points() -> None:
    modules = sorted(p.name for p in PKG.glob("*.py"))
    assert modules == ["__init__.py", "_legacy.py", "testing.py"]


#: longest module, in lines (docstrings included): one sitting
MAX_LINES = 500


def test_every_module_reads_in_one_sitting() -> None:
    long = {str(p.relative_to(SRC)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


# ---------------------------------------------------------- old import paths
from repscope._legacy import MOVED  # noqa: E402


def _fresh_import(name: str):
    for key in [k for k in sys.modules if k == name]:
        del sys.modules[key]
    parent, _, child = name.rpartition(".")
    if parent in sys.modules and child in vars(sys.modules[parent]):
        delattr(sys.modules[parent], child)
    return importlib.import_module(name)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_resolves(old: str) -> None:
    new = MOVED[old]
    with pytest.warns(DeprecationWarning, match=new[0].replace(".", r"\.")) as caught:
        module = _fresh_import(old)
    assert caught[0].filename == __file__ or "importlib" not in caught[0].filename
    targets = [importlib.import_module(t) for t in new]
    if len(new) == 1:
        assert module is targets[0]
    public = set(dir(module))
    assert public, f"{old} exposes nothing"
    for name in public:
        assert getattr(module, name) is not None or name in vars(targets[0])


def test_old_paths_keep_their_meaning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from repscope.allpairs import grid as old_grid
        from repscope.comparison import ResultTable as OldTable
        from repscope.stats import Stats as OldStats
        from repscope.stats import capture_warnings as old_capture
        from repscope.store import ActivationStore as OldStore
        from repscope.store import EntryWriter as OldWriter
    from repscope.core.warning_capture import capture_warnings
    from repscope.engine.grid import grid
    from repscope.engine.table import ResultTable
    from repscope.inference.options import Stats
    from repscope.storage.activation_store import ActivationStore
    from repscope.storage.entry_writer import EntryWriter

    assert (old_grid, OldTable, OldStats, old_capture, OldStore, OldWriter) == (
        grid, ResultTable, Stats, capture_warnings, ActivationStore, EntryWriter)


def test_old_attribute_of_the_package_warns() -> None:
    import repscope

    sys.modules.pop("repscope.results", None)  # so the attribute is looked up anew
    vars(repscope).pop("results", None)
    with pytest.warns(DeprecationWarning, match="repscope.storage.results_db"):
        db = repscope.results
    assert db.ResultsDB is repscope.ResultsDB


def test_warning_points_at_the_importing_line(tmp_path: Path) -> None:
    script = tmp_path / "user_code.py"
    script.write_text("import repscope.stats\n")
    run = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", str(script)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"{script}:1: DeprecationWarning: repscope.stats is deprecated" in run.stderr


def test_unknown_old_style_name_is_an_attribute_error() -> None:
    import repscope

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        repscope.nonexistent  # noqa: B018
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stats = _fresh_import("repscope.stats")
    with pytest.raises(AttributeError, match="moved to one of"):
        stats.nonexistent  # noqa: B018


# ----------------------------------------------------------------- the docs
def test_design_doc_matches_the_tree() -> None:
    """docs/design.md names every subpackage and only files that exist."""
    import re

    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    for pkg in (p.name for p in PKG.iterdir() if (p / "__init__.py").exists()):
        assert f"repscope.{pkg}" in doc, f"docs/design.md does not place repscope.{pkg}"
    paths = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)`", doc))
    assert len(paths) > 15
    missing = sorted(p for p in paths if not (PKG / p).exists() and not (ROOT / p).exists())
    assert missing == []
