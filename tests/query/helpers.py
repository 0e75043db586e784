from __future__ import annotations

from click.testing import CliRunner

from audioscan.cli import main


def cli(world, *args):
    """Run the CLI against the world's store; fails the test on a Python exception."""
    result = CliRunner().invoke(main, ["--store", str(world / "store"), *args], catch_exceptions=False)
    return result


def label_sirens(world) -> None:
    assert cli(world, "labels", "add", "long.mkv", "20", "30", "siren").exit_code == 0
    assert cli(world, "labels", "add", "other.flac", "30", "40", "siren").exit_code == 0
    assert cli(world, "labels", "add", "long.mkv", "100", "110", "siren", "--negative").exit_code == 0
