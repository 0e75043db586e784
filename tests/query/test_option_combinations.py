"""Every option a command that lists moments has is honoured or refused, never ignored.

Generated from the click command tree: for each command with ``--out``, ``--out-dir`` or
``--timecode``, every ``--format`` with every destination (stdout, ``--out FILE``, ``--out-dir``)
and with and without ``--timecode`` either succeeds and writes what was asked (the file, the
folder, the text; timecodes that change the output) or is refused in one sentence (exit 1 or 2).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audioscan.cli import main

# What each such command needs to have something to list; a new command fails the test until it has an entry.
BASE_ARGS = {
    ("search",): ["--from", "long.mkv", "--at", "25", "-k", "3"],
    ("labels", "list"): [],
    ("rescore",): ["siren", "--threshold", "0", "--top", "4"],
    ("suggest",): ["siren", "-n", "3"],
    ("vectors", "export"): [],
}
DESTINATION_OPTIONS = {"out", "out_dir", "use_timecode"}


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, path + (name,))
    elif DESTINATION_OPTIONS & {param.name for param in command.params}:
        yield path, command


COMMANDS = {path: command for path, command in _commands(main) if path != ("export", "clips")}


def _formats(command: click.Command) -> tuple[str, ...]:
    return next(param.type.choices for param in command.params if param.name == "fmt")


def test_every_command_with_destinations_is_covered():
    assert set(COMMANDS) == set(BASE_ARGS)


@pytest.fixture(scope="module")
def labelled(world_template, tmp_path_factory) -> Path:
    """One labelled world with a detector, shared by every combination (they only read it)."""
    from tests.query.helpers import cli, label_sirens

    base = tmp_path_factory.mktemp("combinations")
    shutil.copytree(world_template / "media", base / "media", copy_function=shutil.copy2)
    shutil.copytree(world_template / "store", base / "store")
    import duckdb
    con = duckdb.connect(str(base / "store" / "catalog.duckdb"))
    con.execute("UPDATE roots SET path = ?", [str((base / "media").resolve())])
    con.close()
    label_sirens(base)
    assert cli(base, "labels", "add", "long.mkv", "205", "siren", "--marker").exit_code == 0
    assert cli(base, "train", "siren").exit_code == 0
    return base


def _run(world: Path, args: list[str]):
    return CliRunner().invoke(main, ["--store", str(world / "store"), *args], catch_exceptions=False)


@pytest.mark.parametrize("path, fmt", [(path, fmt) for path in sorted(COMMANDS) for fmt in _formats(COMMANDS[path])],
                         ids=lambda value: "-".join(value) if isinstance(value, tuple) else value)
def test_each_combination_is_honoured_or_refused(labelled, tmp_path, path, fmt):
    plain = {}
    for destination in ("stdout", "out", "out_dir"):
        for use_timecode in (False, True):
            target = tmp_path / f"{fmt}-{destination}-{use_timecode}"
            args = [*path, *BASE_ARGS[path], "--format", fmt] + (["--timecode"] if use_timecode else [])
            args += {"stdout": [], "out": ["--out", str(target)], "out_dir": ["--out-dir", str(target)]}[destination]
            result = _run(labelled, args)
            case = f"{' '.join(args)} -> {result.exit_code}: {result.stderr.strip()[:200]}"
            if result.exit_code != 0:
                assert result.exit_code in (1, 2) and "Traceback" not in result.stderr, case
                assert result.stderr.strip().splitlines()[-1].startswith("Error: "), case
                continue
            if destination == "out":  # bytes: some formats are binary (Parquet), some a folder (hoplite)
                written = target.read_bytes() if target.is_file() else \
                    b"".join(p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file())
            elif destination == "out_dir":
                written = b"".join(p.read_bytes() for p in sorted(target.iterdir()) if not p.name.startswith("."))
            else:
                written = result.stdout_bytes
            assert written.strip(), case  # never exit 0 with nothing written
            if use_timecode:  # honoured: the times changed
                assert destination in plain and written != plain[destination], case
            else:
                plain[destination] = written
