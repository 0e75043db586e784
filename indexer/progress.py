"""What a build reports as it goes: the CLI draws a bar from it, the page a counter, tests ignore it.

A module of its own, free of the engine's imports, so a front-end can subclass it
without loading FAISS, DuckDB or a model.
"""

from __future__ import annotations


class Progress:
    """Every hook does nothing; a front-end overrides the ones it shows."""

    def status(self, text: str) -> None: ...
    def notice(self, text: str) -> None:
        """What a person must hear even without a bar: a build that waits on its cluster, and why."""
    def start(self, files: int) -> None: ...
    def advance(self, files: int, windows: int) -> None: ...
    def close(self) -> None: ...
