"""The type hints are checked: mypy runs on the package as it is installed.

The repository keeps ``indexer/``, ``query/`` and ``models/`` beside ``audioscan/`` and setuptools
maps them under one namespace (``tool.setuptools.package-dir``), which mypy cannot follow: checked
from the repository's root it sees four unrelated packages and none of the imports between them.
So the installed tree is rebuilt here as links, from the mapping itself, and mypy checks that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A fixed place, so mypy's cache (beside it) stays valid from one run to the next.
CACHE = ROOT / ".mypy_cache"


def installed_tree(into: Path) -> Path:
    """Links laid out as ``pip install`` lays out the package: each mapped package at its dotted
    name's path, the top package's own files and folders beside them."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    if into.exists():
        for link in sorted(into.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            link.unlink() if link.is_symlink() or link.is_file() else link.rmdir()
    for package, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        target = into.joinpath(*package.split("."))
        if package.count("."):
            target.symlink_to(ROOT / folder, target_is_directory=True)
            continue
        target.mkdir(parents=True)
        for child in (ROOT / folder).iterdir():
            if child.name != "__pycache__" and child.name not in {name.split(".")[-1] for name in mapping}:
                (target / child.name).symlink_to(child, target_is_directory=child.is_dir())
    return into


def test_the_installed_package_type_checks() -> None:
    layout = installed_tree(CACHE / "installed")
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(CACHE), "-p", "audioscan"],
                          cwd=layout, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"mypy found type errors:\n{done.stdout}{done.stderr}"
    assert "Success" in done.stdout


def test_the_tree_holds_every_module_the_repository_has(tmp_path: Path) -> None:
    """The check sees every module: one missing from the links would pass unchecked."""
    layout = installed_tree(tmp_path / "installed")
    linked = {(Path(folder) / name).resolve() for folder, _, names in os.walk(layout, followlinks=True)
              for name in names if name.endswith(".py")}
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    ours = {path.resolve() for folder in set(mapping.values()) for path in (ROOT / folder).rglob("*.py")
            if "__pycache__" not in path.parts}
    assert ours and ours <= linked
