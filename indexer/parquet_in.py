"""Reading a Parquet file of window vectors: the interchange shape ``vectors export`` writes
(``query/vectors_out.py``): ``path``, ``start``, ``end`` and ``vector`` at least, ``root`` when the paths
are relative to a folder, ``channel`` when the vectors are of single channels, and the set's description
in the schema metadata (without it, the cut is read from the windows and the set is named after the
file).  Every row is checked before anything is stored - columns, one dimension, finite numbers, time
ranges, channels, no window twice - and each problem is one sentence naming the row.

The small columns are read whole and the vectors a row group at a time, twice: once to check them,
once per batch of files to commit them (``vectors_in``).  Labels that come with the vectors are read
from ``NAME.labels.parquet`` beside the file.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audioscan.indexer.media.decode import MAX_SPLIT_CHANNELS
from audioscan.indexer.store.records import MIX_CHANNEL
from audioscan.indexer.vectors_in import Incoming, IncomingLabel, VectorsError

REQUIRED = ("path", "start", "end", "vector")
METADATA_KEY = b"audioscan"


def _parquet_vectors(source: Path, group_starts: np.ndarray, dim: int, rows: np.ndarray) -> np.ndarray:
    """The vectors of ``rows`` of a Parquet file, reading only the row groups that hold them."""
    out = np.empty((len(rows), dim), dtype=np.float32)
    groups = np.searchsorted(group_starts, rows, side="right") - 1
    with pq.ParquetFile(source) as reader:
        for group in np.unique(groups):
            mine = np.flatnonzero(groups == group)
            values = _group_vectors(reader, int(group), dim)
            out[mine] = values[rows[mine] - group_starts[group]]
    return out


def read_vectors(path: Path) -> Incoming:
    """Every row of a Parquet file of window vectors, checked (see the module docstring): the small
    columns are read whole, the vectors a row group at a time."""
    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise VectorsError(f"{path} is not a readable Parquet file ({_first_line(err)}); give the file "
                           "'audioscan vectors export' (or another tool) wrote") from None
    with reader:
        names = reader.schema_arrow.names
        missing = [name for name in REQUIRED if name not in names]
        if missing:
            raise VectorsError(f"{path} has no column {', '.join(missing)} (it has: {', '.join(names)}); "
                               f"a file of vectors needs {', '.join(REQUIRED)} (and root when paths are relative)")
        try:
            table = reader.read(columns=[name for name in ("root", "path", "start", "end", "channel") if name in names])
            dim, group_starts = _check_vectors(path, reader)
        except (pa.ArrowException, OSError) as err:
            raise VectorsError(f"{path} cannot be read whole ({_first_line(err)}); nothing was imported") from None
        metadata = reader.schema_arrow.metadata or {}
    for name in ("path", "start", "end"):
        if table.column(name).null_count:
            raise VectorsError(f"{path}: column {name} has {table.column(name).null_count} empty value(s); every "
                               "window needs one")
    starts = _numbers(table.column("start"))
    ends = _numbers(table.column("end"))
    bad = np.flatnonzero(~(np.isfinite(starts) & np.isfinite(ends) & (starts >= 0) & (ends > starts)))
    if len(bad):
        row = int(bad[0])
        raise VectorsError(f"{path}: row {row + 1} has start {starts[row]!r} and end {ends[row]!r}, which are not a "
                           f"time range ({len(bad)} such row(s)); give finite seconds with start before end")
    roots = table.column("root").to_pylist() if "root" in names else [None] * table.num_rows
    paths = [str(value) for value in table.column("path").to_pylist()]
    channels = _channels(path, table.column("channel")) if "channel" in names else None
    _refuse_repeats(path, roots, paths, starts, channels)
    try:
        description = json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else {}
    except ValueError:
        description = {}
    return Incoming(source=path, roots=roots, paths=paths, starts=starts, ends=ends, dim=dim,
                    description=description if isinstance(description, dict) else {},
                    fetch=functools.partial(_parquet_vectors, path, group_starts, dim),
                    labels=_parquet_labels(labels_path(path)), channels=channels)


def _channels(path: Path, column: pa.ChunkedArray) -> np.ndarray | None:
    """The rows' channels: None when every row is a mix (0), else each row's channel from 1; a file
    mixing both, or holding what is no channel, is refused (a set hears files one way)."""
    values = column.to_numpy(zero_copy_only=False) if not column.null_count else None
    if values is None or values.dtype.kind not in "iu" or not len(values):
        if values is not None and not len(values):
            return None
        raise VectorsError(f"{path}: the channel column holds {'empty values' if values is None else values.dtype} "
                           "where whole numbers belong (0 for a mono mix, else the channel from 1)")
    if not values.any():
        return None
    if values.min() < 1 or values.max() > MAX_SPLIT_CHANNELS:
        raise VectorsError(f"{path}: the channel column mixes mono mixes (0) with single channels, or holds "
                           f"numbers past {MAX_SPLIT_CHANNELS}; a set holds either mixes or channels from 1")
    return values.astype(np.int16)


def labels_path(vectors: Path) -> Path:
    """Where the labels of a vectors file go: beside it, ``NAME.labels.parquet``."""
    return vectors.with_name(vectors.name.removesuffix(".parquet") + ".labels.parquet")


def _parquet_labels(path: Path) -> tuple[IncomingLabel, ...]:
    """The labels ``vectors export --labels`` wrote beside the vectors, if they are there."""
    if not path.is_file():
        return ()
    try:
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=["root", "path", "start", "end", "label", "negative",
                                             *(["channel"] if "channel" in names else [])])
    except (pa.ArrowException, OSError, KeyError) as err:
        raise VectorsError(f"{path} is there but cannot be read as the labels of the vectors ({_first_line(err)}); "
                           "move it away to import the vectors alone") from None
    labels = tuple(IncomingLabel(root=row["root"], path=str(row["path"]), start=float(row["start"]),
                                 end=float(row["start"] if row["end"] is None else row["end"]),
                                 label=str(row["label"]), positive=not row["negative"],
                                 channel=int(row.get("channel") or MIX_CHANNEL))
                   for row in table.to_pylist())
    wrong = [item.channel for item in labels if not 0 <= item.channel <= MAX_SPLIT_CHANNELS]
    if wrong:
        raise VectorsError(f"{path}: a label's channel is {wrong[0]}, which is no channel; give 0 (the whole file) "
                           f"or a channel from 1 to {MAX_SPLIT_CHANNELS}")
    return labels


def _check_vectors(path: Path, reader: pq.ParquetFile) -> tuple[int, np.ndarray]:
    """(the dimension, each row group's first row): every vector has it, and only finite numbers."""
    kind = reader.schema_arrow.field("vector").type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)) or \
            not pa.types.is_floating(kind.value_type):
        raise VectorsError(f"{path}: column vector holds {kind}, not lists of floating-point numbers")
    dim = kind.list_size if pa.types.is_fixed_size_list(kind) else None
    first = 0
    starts = []
    for group in range(reader.num_row_groups):
        starts.append(first)
        column = reader.read_row_group(group, columns=["vector"]).column("vector").combine_chunks()
        if column.null_count:
            raise VectorsError(f"{path}: column vector has {column.null_count} empty value(s) in rows "
                               f"{first + 1}-{first + len(column)}; every window needs one")
        if not pa.types.is_fixed_size_list(kind):
            lengths = np.asarray(column.value_lengths())
            dim = int(lengths[0]) if dim is None and len(lengths) else dim
            odd = np.flatnonzero(lengths != dim)
            if len(odd):
                raise VectorsError(f"{path}: vectors have different lengths (row 1 has {dim}, row "
                                   f"{first + int(odd[0]) + 1} has {int(lengths[odd[0]])}); every window's vector "
                                   "needs the same dimension")
        if not dim:
            raise VectorsError(f"{path}: the vectors are empty; give at least one dimension")
        values = _values(column, dim)
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            row = first + int(np.flatnonzero(~finite)[0])
            raise VectorsError(f"{path}: row {row + 1} has a vector with NaN or infinite values; nothing was imported")
        first += len(column)
    starts.append(first)
    return int(dim or 0), np.asarray(starts, dtype=np.int64)


def _values(column: pa.Array, dim: int) -> np.ndarray:
    return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)


def _group_vectors(reader: pq.ParquetFile, group: int, dim: int) -> np.ndarray:
    return _values(reader.read_row_group(group, columns=["vector"]).column("vector").combine_chunks(), dim)


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _refuse_repeats(path: Path, roots: list[str | None], paths: list[str], starts: np.ndarray,
                    channels: np.ndarray | None) -> None:
    seen: dict[tuple, int] = {}
    heard = channels.tolist() if channels is not None else [MIX_CHANNEL] * len(paths)
    for row, key in enumerate(zip(roots, paths, starts.tolist(), heard)):
        if key in seen:
            raise VectorsError(f"{path}: rows {seen[key] + 1} and {row + 1} are the same window of {key[1]} "
                               f"(start {key[2]:g} s); each window may come once")
        seen[key] = row


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
