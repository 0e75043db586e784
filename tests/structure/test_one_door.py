"""One door: the CLI and the page reach the engine only through ``audioscan.api``, errors
below the CLI speak in API terms, and public calls name their options."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import audioscan.api as api
from audioscan.api import detector, installation, labels, library, models

ROOT = Path(__file__).resolve().parents[2]
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _audioscan_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return [name for name in names if name.split(".")[0] == "audioscan"]


@pytest.mark.parametrize("front", ["cli", "web"])
def test_the_cli_and_the_page_import_only_the_api(front):
    own = (f"audioscan.{front}", "audioscan.api") + (("audioscan.web",) if front == "cli" else ())
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path in sorted((ROOT / "audioscan" / front).glob("*.py"))
             for name in _audioscan_imports(path)
             if name != "audioscan" and not name.startswith(own)]
    assert wrong == []


def _error_texts(tree: ast.AST):
    """The string pieces of every exception constructed in a module (raised or returned)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if func.endswith(("Error", "Exception")):
                for part in ast.walk(node):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        yield node.lineno, part.value


def test_no_error_below_the_cli_names_a_cli_option():
    """A notebook user reads `window`, never --window; the CLI renders its own flags."""
    folders = [ROOT / name for name in ("indexer", "query", "models")] + [ROOT / "audioscan" / "api",
                                                                          ROOT / "audioscan" / "errors.py"]
    paths = [p for folder in folders for p in ([folder] if folder.is_file() else sorted(folder.rglob("*.py")))]
    wrong = [f"{path.relative_to(ROOT)}:{line}: {text!r}"
             for path in paths for line, text in _error_texts(ast.parse(path.read_text())) if _FLAG.search(text)]
    assert wrong == []


def test_the_cli_spells_the_options_an_error_names_as_its_flags():
    from audioscan.cli import flag

    error = api.UserError("`ray_address` x is unreachable; give a single `models` with `window` 8")
    assert str(error) == "ray_address x is unreachable; give a single models with window 8"
    assert error.render(flag) == "--ray-address x is unreachable; give a single --model with --window 8"
    assert error.options == ("ray_address", "models", "window")


# Calls whose subjects are more than two by nature, with the reason.
_MORE_SUBJECTS = {
    "Labels.add": 4,  # a label is (media, start, end, name): lib.labels.add("ep01.mkv", 754, 758, "gag")
}


def _public_callables():
    for module in (library, labels, detector, models, installation):
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{name}.{attr}", member, True
            elif inspect.isfunction(value):
                yield name, value, False
    yield "open", api.open, False


def test_public_api_options_are_keyword_only_past_the_subjects():
    wrong = []
    for name, function, is_method in _public_callables():
        positional = [p for p in inspect.signature(function).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1 if is_method else 0:]
        if len(positional) > _MORE_SUBJECTS.get(name, 2):
            wrong.append(f"{name}({', '.join(p.name for p in positional)}, ...)")
    assert wrong == []
    assert "Library.build" in {name for name, _, _ in _public_callables()}
