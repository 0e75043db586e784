"""The files a store owns, and the only way a name becomes a path inside it.

A store folder may sit beside a user's own files, or be handed a crafted catalog,
so nothing is opened, renamed or deleted by a name read from disk or from the
catalog until it is proven ours: a plain file name of our own pattern
(``seg-<writer>-<n>.faiss``, ``ann-<writer>-<signature>.faiss``, or one of those with
``.tmp``), directly inside a set folder directly inside ``sets/``, with no symlink
anywhere on the way.  Every delete in the store goes through :meth:`StoreFiles.remove`.
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Iterator

from audioscan.indexer.errors import StoreError

SETS_DIR = "sets"
TMP_SUFFIX = ".tmp"
# The writer token (8 hex digits) is optional only for files written before tokens existed.
_SEGMENT = re.compile(r"seg-(?:(?P<token>[0-9a-f]{8})-)?\d{8}\.faiss")
_ANN = re.compile(r"ann-(?:(?P<token>[0-9a-f]{8})-)?[0-9a-f]{24}\.faiss")
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


def segment_name(token: str, segment_id: int) -> str:
    return f"seg-{token}-{segment_id:08d}.faiss"


def ann_name(token: str, signature: str, *, part: str = "base") -> str:
    """The file of one part of a set's approximate index; the parts of one signature get different names."""
    if part != "base":
        signature = hashlib.blake2b(f"{signature}|{part}".encode(), digest_size=12).hexdigest()
    return f"ann-{token}-{signature}.faiss"


def _match(name: str) -> re.Match | None:
    base = name[: -len(TMP_SUFFIX)] if name.endswith(TMP_SUFFIX) else name
    return _SEGMENT.fullmatch(base) or _ANN.fullmatch(base)


def is_owned_name(name: str) -> bool:
    """True for a name this program writes (segment, ANN index, or their temp files)."""
    return _match(name) is not None


def writer_of(name: str) -> str | None:
    """The token of the writer that made the file, if its name carries one."""
    found = _match(name)
    return found.group("token") if found else None


def valid_set_name(name: str) -> bool:
    return bool(_SET_NAME.fullmatch(name)) and ".." not in name


def _is_plain_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except FileNotFoundError:
        return False


class StoreFiles:
    """Paths under ``<store>/sets``, each checked before it is used."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sets_dir = root / SETS_DIR

    def _checked_sets_dir(self) -> Path:
        if self.sets_dir.is_symlink():
            raise StoreError(f"{self.sets_dir} is a symbolic link; a store keeps its vectors in a real folder "
                             "inside it, so this store is refused")
        return self.sets_dir

    def set_dir(self, set_name: str, create: bool = False) -> Path:
        if not valid_set_name(set_name):
            raise StoreError(f"the catalog names an embedding set '{set_name}' that is not a plain folder name; "
                             "the catalog is damaged or was edited by hand")
        folder = self._checked_sets_dir() / set_name
        if folder.is_symlink():
            raise StoreError(f"{folder} is a symbolic link; set folders must be real folders inside the store")
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def file(self, set_name: str, name: str) -> Path:
        """The path of a file the catalog lists, refused unless it is one of ours."""
        if TMP_SUFFIX in name or not is_owned_name(name):
            raise StoreError(f"the catalog lists a file '{name}' in set {set_name} that audioscan never writes; "
                             "the catalog is damaged or was edited by hand, so it is not opened")
        return self.set_dir(set_name) / name

    def owned_files(self) -> Iterator[tuple[str, Path]]:
        """(set folder name, path) of every file of ours under ``sets/``, never through a symlink."""
        if not _is_plain_dir(self._checked_sets_dir()):
            return
        for folder in sorted(self.sets_dir.iterdir()):
            if not valid_set_name(folder.name) or not _is_plain_dir(folder):
                continue
            for path in sorted(folder.iterdir()):
                if is_owned_name(path.name) and stat.S_ISREG(path.lstat().st_mode):
                    yield folder.name, path

    def remove(self, path: Path) -> bool:
        """Delete ``path`` if, and only if, it is a regular file of ours in one of our set folders."""
        path = Path(path)
        if (path.parent.parent != self.sets_dir or not valid_set_name(path.parent.name)
                or not is_owned_name(path.name) or not _is_plain_dir(path.parent)
                or not _is_plain_dir(self.sets_dir)):
            raise StoreError(f"refusing to delete {path}: it is not a file this store created")
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        except PermissionError:  # still open elsewhere (Windows): the next writer tries again
            return False
        return True
