"""The committed locks (.ci/lock/*.txt, from `make lock`) and pyproject.toml agree.

pyproject.toml holds the honest ranges people get with `pip install audioscan`; the locks
hold the exact versions `make demo`, `make test` and CI install.  They drift apart when
one is edited without the other, and then a fresh clone installs what no one tested.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"demo.txt": (), "test.txt": ("test", "ray", "birdnet", "hoplite")}  # lock file: the extras it was compiled with
# Installed only by `make test`: the demo's lock must not carry them.
TEST_ONLY = {"pytest", "pytest-timeout", "pytest-xdist", "playwright", "ray"}
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s;\\]+)")


@dataclass
class Locked:
    name: str
    version: Version
    hashes: int = 0
    direct: bool = False  # uv's "# via audioscan (pyproject.toml)" (or the build requirement)
    sources: list[str] = field(default_factory=list)


def parse_lock(text: str) -> list[Locked]:
    entries: list[Locked] = []
    for line in text.splitlines():
        found = _ENTRY.match(line)
        if found:
            entries.append(Locked(canonicalize_name(found.group(1)), Version(found.group(2))))
        elif entries and "--hash=sha256:" in line:
            entries[-1].hashes += 1
        elif entries and line.strip().startswith("#"):
            source = line.strip().lstrip("#").strip().removeprefix("via").strip()
            if source:
                entries[-1].sources.append(source)
                entries[-1].direct |= source.startswith(("audioscan (pyproject.toml)", "-r -"))
    return entries


def declared(project: dict, extras: tuple[str, ...]) -> list[Requirement]:
    texts = list(project["project"]["dependencies"])
    for extra in extras:
        texts += project["project"]["optional-dependencies"][extra]
    texts += project["build-system"]["requires"]
    return [Requirement(text) for text in texts]


def disagreements(project: dict, lock_text: str, extras: tuple[str, ...]) -> list[str]:
    """Every way the lock and pyproject.toml disagree, as sentences (empty when they agree)."""
    locked = parse_lock(lock_text)
    by_name: dict[str, list[Locked]] = {}
    for entry in locked:
        by_name.setdefault(entry.name, []).append(entry)
    wanted = declared(project, extras)
    wanted_names = {canonicalize_name(r.name) for r in wanted}
    problems = []
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name not in by_name:
            problems.append(f"{name} is declared but not locked")
        for entry in by_name.get(name, []):
            if not requirement.specifier.contains(entry.version, prereleases=True):
                problems.append(f"{name} is locked at {entry.version}, outside the declared {requirement.specifier}")
    for entry in locked:
        if entry.direct and entry.name not in wanted_names:
            problems.append(f"{entry.name} is locked as a direct requirement but not declared")
        if entry.hashes == 0:
            problems.append(f"{entry.name} {entry.version} has no hash")
    return problems


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_and_pyproject_agree(project, lock):
    assert disagreements(project, (ROOT / ".ci" / "lock" / lock).read_text(), LOCKS[lock]) == []


def test_the_demo_lock_holds_only_what_the_demo_needs():
    names = {entry.name for entry in parse_lock((ROOT / ".ci" / "lock" / "demo.txt").read_text())}
    assert names & TEST_ONLY == set()


def test_torch_and_torchaudio_are_one_exact_pair(project):
    """ABI-coupled: pinned exactly in pyproject, to the same release, and locked at that pin."""
    pins = {canonicalize_name(r.name): r.specifier for r in declared(project, ())
            if canonicalize_name(r.name) in ("torch", "torchaudio")}
    assert {name: str(spec) for name, spec in pins.items()} == {"torch": "==2.11.0", "torchaudio": "==2.11.0"}
    for lock in LOCKS:
        locked = {e.name: str(e.version) for e in parse_lock((ROOT / ".ci" / "lock" / lock).read_text())}
        assert (locked["torch"], locked["torchaudio"]) == ("2.11.0", "2.11.0")


_LOCK = """\
click==8.1.8 \\
    --hash=sha256:aa
    # via audioscan (pyproject.toml)
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:bb
    # via click
setuptools==80.0.0 \\
    --hash=sha256:cc
    # via -r -
"""


def _project(*dependencies: str) -> dict:
    return {"project": {"dependencies": list(dependencies), "optional-dependencies": {}},
            "build-system": {"requires": ["setuptools>=69"]}}


def test_agreement_is_checked_not_assumed():
    """The checker itself: the fixture lock agrees with its project, and each kind of drift is named."""
    assert disagreements(_project("click>=8.1,<9"), _LOCK, ()) == []
    assert disagreements(_project("click>=8.2"), _LOCK, ()) == [
        "click is locked at 8.1.8, outside the declared >=8.2"]
    assert disagreements(_project("click>=8.1", "numpy>=1.26"), _LOCK, ()) == ["numpy is declared but not locked"]
    assert disagreements(_project(), _LOCK, ()) == ["click is locked as a direct requirement but not declared"]
    assert disagreements(_project("click>=8"), _LOCK.replace("    --hash=sha256:aa\n", ""), ()) == [
        "click 8.1.8 has no hash"]


def test_the_perch_hoplite_lock_is_hashed_and_holds_what_its_input_names():
    """perch-hoplite.txt (compiled --no-deps from perch-hoplite.in) pins every package the input names,
    each with hashes, and nothing else."""
    lock = ROOT / ".ci" / "lock"
    named = {canonicalize_name(Requirement(line).name) for line in (lock / "perch-hoplite.in").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    locked = parse_lock((lock / "perch-hoplite.txt").read_text())
    assert {entry.name for entry in locked} == named
    assert all(entry.hashes for entry in locked)
    assert [str(e.version) for e in locked if e.name == "perch-hoplite"] == ["1.0.2"]
