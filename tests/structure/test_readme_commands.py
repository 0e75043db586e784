"""Every command line the README shows runs as shown: its commands exist and each option it uses is
one ``--help`` lists for that command (a README that drifts from the CLI is a bug a user meets first)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from audioscan.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_command_lines() -> list[str]:
    """The ``audioscan ...`` lines of the README's code blocks, without comments and brackets."""
    lines, inside = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        for part in re.split(r" && | \| |; ", line.split(" # ")[0]):
            text = part.strip()
            if text.startswith("audioscan "):
                lines.append(text.replace("[", " ").replace("]", " "))
    return lines


def check_line(line: str) -> list[str]:
    """What in ``line`` the CLI does not have, as sentences."""
    words = shlex.split(line)[1:]
    command: click.Command = main
    problems = []
    chain = ["audioscan"]
    for word in words:
        if word.startswith("-"):
            name = word.split("=")[0]
            known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
            if name not in known and name not in ("-h", "--help"):
                problems.append(f"{' '.join(chain)} has no option {name} (README: {line})")
            continue
        sub = getattr(command, "commands", {}).get(word)
        if sub is not None:
            command = sub
            chain.append(word)
    return problems


def test_the_readme_shows_command_lines():
    assert len(readme_command_lines()) > 30


def test_every_command_line_in_the_readme_uses_options_the_cli_has():
    problems = [problem for line in readme_command_lines() for problem in check_line(line)]
    assert problems == []


def test_every_command_the_readme_names_exists():
    missing = []
    for line in readme_command_lines():
        words = [w for w in shlex.split(line)[1:] if not w.startswith("-")]
        command: click.Command = main
        for word in words:
            subs = getattr(command, "commands", None)
            if not subs:
                break
            if word not in subs:
                if not re.fullmatch(r"[./~\w-].*", word) or word in ("index", "labels", "models", "vectors", "export"):
                    missing.append(f"{word} (README: {line})")
                break
            command = subs[word]
    assert missing == []
