"""The package's shape: one namespace, imports that run one way, SQL only in the store,
nothing Unix-only on any command's path."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import sys
from pathlib import Path

import pytest

import audioscan

ROOT = Path(__file__).resolve().parents[2]
# Folder in the repository -> installed package name.
PACKAGES = {"audioscan": "audioscan", "indexer": "audioscan.indexer", "query": "audioscan.query",
            "models": "audioscan.models"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


# (module or package prefix, rank, group), most specific first: the first match decides.
_LAYERS = [
    ("audioscan.errors", 0, "errors"),
    ("audioscan.models", 1, "models"),
    ("audioscan.indexer.errors", 2, "indexer-base"),
    ("audioscan.indexer.faults", 2, "indexer-base"),
    ("audioscan.indexer.media", 3, "media"),
    ("audioscan.indexer.store", 3.5, "store"),
    ("audioscan.indexer", 4, "indexer"),
    ("audioscan.query", 4, "query"),
    ("audioscan.api", 5, "api"),
    ("audioscan.web", 5.5, "web"),
    ("audioscan.cli", 6, "cli"),
]


def _layer(module: str) -> tuple[float, str]:
    """(rank, group): a module may import its own group and lower ranks, nothing else.

    cli -> web -> api -> query / indexer -> store -> media -> indexer errors -> models -> errors.
    Anything else is the entry (audioscan/__init__, which loads the API lazily, and __main__).
    """
    for prefix, rank, group in _LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank, group
    return 7, "entry"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return [n for n in names if n.split(".")[0] in ("audioscan", "indexer", "query", "models")]


def test_imports_run_one_way():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        rank, group = _layer(module)
        for name in _imports(path):
            if not name.startswith("audioscan"):
                wrong.append(f"{module} imports the bare top-level package {name}")
                continue
            if name not in modules and name.rsplit(".", 1)[0] in modules:
                name = name.rsplit(".", 1)[0]  # `from package import name` of a non-module name
            if name not in modules or name == "audioscan":
                continue
            their_rank, their_group = _layer(name)
            if their_group != group and their_rank >= rank:
                wrong.append(f"{module} ({group}) imports {name} ({their_group})")
    assert not wrong, "\n".join(wrong)


def _runtime_imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that ``module`` imports when it runs - at its top or inside a function,
    relative imports resolved, ``from package import module`` as that module - leaving out imports
    for type checking only and its own packages (which Python runs before it in any case)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                   for statement in block.body for node in ast.walk(statement)}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else (node.module or "")
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, round a circle (Tarjan's strongly connected
    components of more than one module)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in graph[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return circles


def test_no_modules_import_each_other_round_a_circle():
    modules = _modules()
    graph = {module: _runtime_imports(module, path, modules) for module, path in modules.items()}
    assert _circles(graph) == []


def test_the_import_graph_counts_imports_inside_functions_and_not_those_for_types_alone(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
                    "def f():\n    from pkg import b\n")
    assert _runtime_imports("pkg.a", path, {"pkg.a": path, "pkg.b": path, "pkg.c": path}) == {"pkg.b"}
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# More arguments than this, given by position, and a reader must count to know which is which.
MOST_BY_POSITION = 5


def _our_callables(modules: dict[str, Path]) -> set[str]:
    """The names of the functions and classes the package defines."""
    return {node.name for path in modules.values() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def test_no_call_of_ours_passes_more_than_five_arguments_by_position():
    """Records (MediaRow, Snapshot, TrainingSet...) and long signatures are filled by name: a
    sixth positional argument is where two adjacent ints get swapped unseen."""
    modules = _modules()
    ours = _our_callables(modules)
    by_position = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and len(node.args) > MOST_BY_POSITION:
                name = ast.unparse(node.func).rsplit(".", 1)[-1]
                if name in ours:
                    by_position.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)} "
                                       f"({len(node.args)} by position)")
    assert by_position == []


# Records of four fields or more name every field past the first two; these few are filled in place and so
# not frozen (each says why).
FIELDS_BY_POSITION = 2
FILLED_IN_PLACE = {
    "BuildReport": "a build's tally, added to as each file finishes",
    "FileTally": "the planner's tally, counted file by file",
    "Plan": "the planner's output, grown file by file",
    "Work": "the journal as it is replayed, one change at a time",
    "SetAnn": "keeps the in-memory cover of windows committed after it, made on the first search",
    "TorchEmbedder": "a loaded model, moved to its device and evaluation mode once",
    "Calibration": "its labelled share is set after the calibrator is fitted",
    "Classifier": "given its version when stored, and its tree model when first used",
}


def test_records_name_their_fields_and_do_not_change():
    """Every dataclass of four fields or more, anywhere in the package: keyword-only past its first two
    fields (``Moment(path, start, end=..., score=...)``: no swapped pair passes unseen), and frozen unless
    it is one of the few filled in place."""
    wrong = []
    for module in _modules():
        if module.endswith("__main__"):
            continue  # importing it runs the CLI
        for name, value in vars(importlib.import_module(module)).items():
            if not (isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module):
                continue
            given = [f for f in dataclasses.fields(value) if f.init]
            if len(given) < 4:
                continue
            by_position = [f.name for f in given if not f.kw_only]
            if len(by_position) > FIELDS_BY_POSITION:
                wrong.append(f"{module}.{name}: {', '.join(by_position)} by position")
            if not value.__dataclass_params__.frozen and name not in FILLED_IN_PLACE:  # type: ignore[attr-defined]
                wrong.append(f"{module}.{name}: not frozen")
    assert wrong == []


# Parameters a public function takes by position: the rest are named at every call.  (A function defined
# inside another is its own; a framework callback among them keeps the parameters it is called with.)
PARAMETERS_BY_POSITION = 2
# Methods a framework calls by position, which keep the signature it calls them with.
FRAMEWORK_METHODS = {"convert": "click calls a ParamType's convert(value, param, ctx)"}


def test_no_public_function_takes_more_than_two_arguments_by_position():
    """Every public function and method of the package (and every ``__init__``), whatever its layer: past
    two parameters a call names what it passes (``embed_clip(path, info, start=2.0, end=4.5)``)."""
    wrong = []
    for path in _modules().values():
        tree = ast.parse(path.read_text())
        for owner in [tree, *[node for node in tree.body if isinstance(node, ast.ClassDef)]]:
            for node in owner.body:
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                if node.name.startswith("_") and node.name != "__init__" or node.name in FRAMEWORK_METHODS:
                    continue
                params = [a.arg for a in node.args.posonlyargs + node.args.args]
                if isinstance(owner, ast.ClassDef) and params[:1] in (["self"], ["cls"]):
                    params = params[1:]
                if len(params) > PARAMETERS_BY_POSITION:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({', '.join(params)})")
    assert wrong == []


def test_nothing_imports_the_cli():
    users = [m for m, path in _modules().items() if not m.startswith(("audioscan.cli", "audioscan.__main__"))
             and any(n.startswith("audioscan.cli") for n in _imports(path))]
    assert users == []


SQL = re.compile(r"""["'](\s*)(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE|ALTER TABLE|BEGIN|COMMIT)\b""")


def test_only_the_store_holds_sql():
    outside = [f"{m}: {path.relative_to(ROOT)}" for m, path in _modules().items()
               if not m.startswith("audioscan.indexer.store") and SQL.search(path.read_text())]
    assert outside == []


_NO_UNIX = """
import builtins, importlib, sys
real = builtins.__import__
def no_unix(name, *args, **kwargs):
    if name in ("fcntl", "termios", "pwd", "grp", "resource"):
        raise ImportError(f"No module named {name!r} (as on Windows)")
    return real(name, *args, **kwargs)
builtins.__import__ = no_unix
for module in sys.argv[1:]:
    importlib.import_module(module)
"""


def test_every_module_imports_without_unix_only_modules():
    import subprocess

    modules = sorted(m for m in _modules() if m != "audioscan.__main__")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", _NO_UNIX, *modules], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_wheel_installs_one_namespace_and_nothing_else(tmp_path):
    """What `pip install .` puts in site-packages: audioscan/ and its dist-info, no bare packages."""
    import shutil
    import subprocess
    import zipfile

    source = tmp_path / "source"  # a copy, so the build leaves nothing in the working tree
    for name in ("audioscan", "indexer", "query", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--quiet", "-w", str(tmp_path), str(source)], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    wheel, = tmp_path.glob("audioscan-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"audioscan"}
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("audioscan/indexer/store/store.py", "audioscan/query/search.py", "audioscan/models/logmel.py",
                   "audioscan/cli/__init__.py", "audioscan/__main__.py", "audioscan/api/__init__.py",
                   "audioscan/web/page.html", "audioscan/web/page.js", "audioscan/web/page.css"):
        assert module in names
    assert audioscan.__version__ != "0+unknown"


@pytest.mark.parametrize("error", ["audioscan.indexer.errors.StoreError", "audioscan.indexer.errors.MediaError",
                                   "audioscan.models.errors.ModelError", "audioscan.query.errors.QueryError"])
def test_every_user_error_is_a_user_error(error):
    module, name = error.rsplit(".", 1)
    assert issubclass(getattr(importlib.import_module(module), name), audioscan.UserError)
