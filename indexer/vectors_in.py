"""Vectors in from other tools: a set made from a Parquet file of window vectors.

The file is the interchange shape ``vectors export`` writes (``query/vectors_out.py``): ``path``,
``start``, ``end`` and ``vector`` at least, ``root`` when the paths are relative to a folder, and the
set's description in the schema metadata (without it, the cut is read from the windows and the set
is named after the file).  Every row is checked before anything is stored - columns, one dimension,
finite numbers, time ranges, no window twice - and each problem is one sentence naming the row.

Rows are matched to media files under ``media_root`` (or the file's own ``root``); files not found
there are listed, not fatal.  The set then appears whole or not at all: it is created only after
every check, its windows are committed in batches through the store's commit protocol, and if a
commit fails the set is removed again.  A model audioscan runs (the export of an audioscan set,
BIRDNET's vectors) gives a native set that later builds keep up to date; another tool's model
gives a set that search from a stored window, training, rescoring and suggestions use as they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audioscan.indexer.errors import StoreError
from audioscan.indexer.media.decode import header_facts
from audioscan.indexer.media.discover import fingerprint
from audioscan.indexer.store.files import valid_set_name
from audioscan.indexer.store.records import FOREIGN_WEIGHTS, Commit, FileVectors, MediaRow, SetInfo
from audioscan.indexer.store.segments import checksum
from audioscan.indexer.store.store import Store
from audioscan.models import registry

REQUIRED = ("path", "start", "end", "vector")
# Windows committed together: a few commits for a large import, each well under a second of catalog work.
BATCH_WINDOWS = 100_000
METADATA_KEY = b"audioscan"
DEFAULT_RATE = 16_000


class VectorsError(StoreError):
    """A file of vectors that cannot be imported as it is; nothing was stored."""


@dataclass(frozen=True)
class Incoming:
    """A checked file of window vectors, row for row."""

    roots: list[str | None]
    paths: list[str]
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray  # float32 [rows, dim]
    description: dict


@dataclass(frozen=True)
class VectorsImported:
    """What an import made: the set, the files and windows it holds, the rows' files not found."""

    set_name: str
    files: int
    windows: int
    unmatched: list[str]
    labels: int = 0


def read_vectors(path: Path) -> Incoming:
    """The rows of a Parquet file of window vectors, every one checked (see the module docstring)."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise VectorsError(f"{path} is not a readable Parquet file ({_first_line(err)}); give the file "
                           "'audioscan vectors export' (or another tool) wrote") from None
    missing = [name for name in REQUIRED if name not in table.column_names]
    if missing:
        raise VectorsError(f"{path} has no column {', '.join(missing)} (it has: {', '.join(table.column_names)}); "
                           f"a file of vectors needs {', '.join(REQUIRED)} (and root when paths are relative)")
    for name in (*REQUIRED, *(["root"] if "root" in table.column_names else [])):
        nulls = table.column(name).null_count
        if nulls and name != "root":
            raise VectorsError(f"{path}: column {name} has {nulls} empty value(s); every window needs one")
    vectors = _vectors(path, table.column("vector"))
    starts = _numbers(table.column("start"))
    ends = _numbers(table.column("end"))
    bad = np.flatnonzero(~(np.isfinite(starts) & np.isfinite(ends) & (starts >= 0) & (ends > starts)))
    if len(bad):
        row = int(bad[0])
        raise VectorsError(f"{path}: row {row + 1} has start {starts[row]!r} and end {ends[row]!r}, which are not a "
                           f"time range ({len(bad)} such row(s)); give finite seconds with start before end")
    roots = table.column("root").to_pylist() if "root" in table.column_names else [None] * table.num_rows
    paths = [str(value) for value in table.column("path").to_pylist()]
    _refuse_repeats(path, roots, paths, starts)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    try:
        description = json.loads(raw) if raw else {}
    except ValueError:
        description = {}
    return Incoming(roots=roots, paths=paths, starts=starts, ends=ends, vectors=vectors,
                    description=description if isinstance(description, dict) else {})


def _vectors(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    """The vector column as float32 ``[rows, dim]``: one dimension for every row, finite numbers."""
    kind = column.type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)) or \
            not pa.types.is_floating(kind.value_type):
        raise VectorsError(f"{path}: column vector holds {kind}, not lists of floating-point numbers")
    array = column.combine_chunks()
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
    else:
        lengths = np.asarray(array.value_lengths())
        dim = int(lengths[0]) if len(lengths) else 0
        odd = np.flatnonzero(lengths != dim)
        if len(odd):
            raise VectorsError(f"{path}: vectors have different lengths (row 1 has {dim}, row {int(odd[0]) + 1} has "
                               f"{int(lengths[odd[0]])}); every window's vector needs the same dimension")
    if dim < 1:
        raise VectorsError(f"{path}: the vectors are empty; give at least one dimension")
    values = np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise VectorsError(f"{path}: row {row + 1} has a vector with NaN or infinite values "
                           f"({int((~finite).sum())} such row(s)); nothing was imported")
    return values


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _refuse_repeats(path: Path, roots: list[str | None], paths: list[str], starts: np.ndarray) -> None:
    seen: dict[tuple, int] = {}
    for row, key in enumerate(zip(roots, paths, starts.tolist())):
        if key in seen:
            raise VectorsError(f"{path}: rows {seen[key] + 1} and {row + 1} are the same window of {key[1]} "
                               f"(start {key[2]:g} s); each window may come once")
        seen[key] = row


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def _cut(incoming: Incoming) -> tuple[float, float]:
    """The set's window and hop: as the file says, else the windows' typical length and step."""
    window, hop = incoming.description.get("window"), incoming.description.get("hop")
    if isinstance(window, (int, float)) and isinstance(hop, (int, float)) and window > 0 and hop > 0:
        return float(window), float(hop)
    window = float(np.median(incoming.ends - incoming.starts))
    _, files = np.unique(np.asarray(incoming.paths, dtype=object).astype(str), return_inverse=True)
    order = np.lexsort((incoming.starts, files))
    steps = np.diff(incoming.starts[order])[np.diff(files[order]) == 0]
    steps = steps[steps > 0]
    return round(window, 6), round(float(np.median(steps)) if len(steps) else window, 6)


def import_vectors(store: Store, path: Path, *, name: str | None = None, media_root: Path | None = None
                   ) -> VectorsImported:
    """Make a set of the vectors in ``path`` (see the module docstring); the caller holds the writer lock."""
    incoming = read_vectors(path)
    description = incoming.description
    window, hop = _cut(incoming)
    model = str(description.get("model") or "IMPORTED").upper()
    weights_id = str(description.get("weights_id") or f"{FOREIGN_WEIGHTS}{checksum(path)[:12]}")
    if model not in registry.names() and not weights_id.startswith(FOREIGN_WEIGHTS):
        weights_id = f"{FOREIGN_WEIGHTS}{weights_id}"  # a model audioscan cannot run: no build ever fills this set
    rate = int(description.get("sample_rate") or DEFAULT_RATE)
    dim = incoming.vectors.shape[1]
    wanted = name or str(description.get("set") or path.name.removesuffix(".parquet"))
    _refuse_existing(store, wanted, model, weights_id, window, hop, rate)
    files, unmatched = _match_files(incoming, media_root, path)
    rows = _media_rows(store, files)
    info = store.ensure_set(model, weights_id, window, hop, rate, dim, name=wanted)
    try:
        windows = _commit_windows(store, info, incoming, files, rows)
    except BaseException:
        store.remove_set(info)  # the set appears whole or not at all
        raise
    return VectorsImported(set_name=info.name, files=len(files), windows=windows, unmatched=unmatched)


def _refuse_existing(store: Store, name: str, model: str, weights_id: str, window: float, hop: float,
                     rate: int) -> None:
    if not valid_set_name(name):
        raise VectorsError(f"'{name}' cannot name a set (it becomes a folder name): give `name` with letters, "
                           "digits, '-', '_' or '.'")
    for info in store.sets():
        if info.name == name:
            raise VectorsError(f"the store already has a set named {name}; give the import another `name`")
        if (info.model, info.weights_id, info.window, info.hop, info.sample_rate) == (model, weights_id, window,
                                                                                      hop, rate):
            raise VectorsError(f"the store already holds these vectors' model and cut as set {info.name}; "
                               "import them into another store, or remove that set first")


@dataclass(frozen=True)
class _File:
    root: Path
    rel: str
    rows: np.ndarray  # the file's rows in the incoming table, by start


def _match_files(incoming: Incoming, media_root: Path | None, source: Path) -> tuple[list[_File], list[str]]:
    """The rows' media files found on disk, and the ones not found (as the file names them)."""
    by_file: dict[tuple[str | None, str], list[int]] = {}
    for row, key in enumerate(zip(incoming.roots, incoming.paths)):
        by_file.setdefault(key, []).append(row)
    if media_root is None and any(root is None for root, _ in by_file):
        raise VectorsError(f"{source} gives paths without a root folder; give `media_root`, the folder they are "
                           "relative to")
    found, unmatched = [], []
    for (root, rel), rows in by_file.items():
        base = Path(media_root if media_root is not None else str(root)).expanduser().resolve()
        file = base / rel
        if not file.is_file():
            unmatched.append(rel if root is None else str(Path(root) / rel))
            continue
        order = np.asarray(rows)[np.argsort(incoming.starts[rows], kind="stable")]
        found.append(_File(root=base, rel=rel, rows=order))
    return found, unmatched


def _media_rows(store: Store, files: list[_File]) -> dict[tuple[Path, str], tuple[MediaRow, bool]]:
    """Each matched file's media row: the one the store has (False), or a new one read from the file (True)."""
    rows: dict[tuple[Path, str], tuple[MediaRow, bool]] = {}
    for root in dict.fromkeys(file.root for file in files):
        root_id = store.ensure_root(root)
        known = store.media_of_root(root_id)
        for file in (f for f in files if f.root == root):
            row = known.get(file.rel)
            if row is not None and row.status == "ok":
                rows[(root, file.rel)] = (row, False)
                continue
            stat = os.stat(root / file.rel)
            facts = header_facts(root / file.rel)
            row = MediaRow(store.new_media_id() if row is None else row.id, root_id, file.rel, stat.st_size,
                           stat.st_mtime_ns, fingerprint(root / file.rel), facts.declared, "ok", fps=facts.fps)
            rows[(root, file.rel)] = (row, True)
    return rows


def _duration(row: MediaRow, ends: np.ndarray) -> float:
    """A file's duration as its windows give it: the cut's last window ends at the file's end (the rule
    ``index check`` holds a native set to), so several windows say it exactly, more exactly than a
    container's header; one window (a file shorter than it) leaves it to the header."""
    return float(ends.max()) if len(ends) > 1 or not row.duration else float(row.duration)


def _commit_windows(store: Store, info: SetInfo, incoming: Incoming, files: list[_File],
                    rows: dict[tuple[Path, str], tuple[MediaRow, bool]]) -> int:
    """Commit the files' windows in batches of about :data:`BATCH_WINDOWS`; returns the windows committed."""
    batch, done = Commit(), 0
    for file in files:
        row, new = rows[(file.root, file.rel)]
        if new:
            batch.media.append(replace(row, duration=_duration(row, incoming.ends[file.rows])))
        batch.vectors.append(FileVectors(row.id, info.id, incoming.starts[file.rows], incoming.ends[file.rows],
                                         incoming.vectors[file.rows]))
        if batch.windows() >= BATCH_WINDOWS:
            done += batch.windows()
            store.commit(batch)
            batch = Commit()
    if batch:
        done += batch.windows()
        store.commit(batch)
    return done
