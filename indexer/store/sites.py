"""Which site a media file belongs to: the site of the deepest named folder that holds it.

Folders are absolute paths, so a site stays with its files when a root is folded into a larger
one, and a folder named for a site before it is indexed is the site's as soon as it is.
"""

from __future__ import annotations

from typing import Iterable


class SiteFolders:
    """``(folder, site)`` pairs, asked by file path (deepest folder first)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._deepest_first = sorted(((folder.rstrip("/") or "/", site) for folder, site in pairs),
                                     key=lambda pair: len(pair[0]), reverse=True)

    def __call__(self, path: str) -> str | None:
        for folder, site in self._deepest_first:
            if path.startswith(folder) and (len(path) == len(folder) or path[len(folder)] == "/"
                                            or folder == "/"):
                return site
        return None
