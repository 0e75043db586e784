"""Building from the API: :meth:`Library.build <audioscan.api.library.Library.build>` (the function here is
that method), the dtype names people use, and the progress a callable stands for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from audioscan.indexer.build import BuildOptions, BuildReport, build as build_folder, build_targets, selection
from audioscan.indexer.progress import Progress
from audioscan.indexer.ray_engine import RayOptions
from audioscan.indexer.store.records import CHANNEL_MODES
from audioscan.indexer.store.segments import DEFAULT_DTYPE, VECTOR_DTYPES
from audioscan.indexer.store.store import Store
from audioscan.models import registry
from audioscan.models.base import LoadOptions
from audioscan.query.errors import QueryError
from audioscan.query.sites import check_site_name

if TYPE_CHECKING:
    from audioscan.api.library import Library


def stored_dtype(dtype: str) -> str:
    if dtype not in VECTOR_DTYPES:
        raise QueryError(f"`dtype` {dtype!r} is none of {', '.join(VECTOR_DTYPES)}")
    return VECTOR_DTYPES[dtype]


def build(self: Library, paths: str | Path | Sequence[str | Path], *, models: Sequence[str] | None = None,
          window: float | None = None, hop: float | None = None, device: str = "auto", precision: str = "auto",
          weights: str | Path | None = None, batch_size: int | None = None, decode_workers: int = 1,
          commit_every: float = 20.0, dtype: str = DEFAULT_DTYPE,
          progress: Progress | Callable[[int, int], None] | None = None, include: Sequence[str] = (),
          exclude: Sequence[str] = (), ray: RayOptions | None = None, site: str | None = None,
          channels: str | None = None) -> BuildReport:
    """Index every media file under each folder, and each named file (again: only what changed),
    like ``index build``.  With no ``models``, ``window`` or ``hop``, every set the store already
    holds is brought up to date (LOGMEL 8 s / 1 s for a new store).  ``include``/``exclude`` are
    glob patterns on relative paths or file names.  ``progress`` is a :class:`Progress` or a
    callable ``(files_done, windows_done)``.  ``dtype``: how new sets keep their vectors, float16
    (half the bytes, scores within about 1e-3) or float32; a set keeps its own.  ``ray``: decode and
    embed on a Ray cluster (:class:`RayOptions`; ``RayOptions()`` starts a local one) instead of in
    this process.  ``site``
    names each folder (and file) given that site first (see :meth:`Recordings.name_site`).  ``channels``:
    'split' indexes each channel of a multichannel file as its own stream, in a set of its own (named
    ``...-split``); 'mix' (the default for a new set) one mono downmix, as the original scan did.
    """
    if channels is not None and channels not in CHANNEL_MODES:
        raise QueryError(f"`channels` {channels!r} is neither of {' or '.join(CHANNEL_MODES)}; give 'mix' (one "
                         "mono downmix a file) or 'split' (each channel its own stream)")
    items = [Path(p).expanduser() for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not items:
        raise QueryError("give a folder of media or media files to index")
    for item in items:
        if not item.exists():
            raise QueryError(f"{item} does not exist; give a folder of media or media files")
    existing = self.sets() if Store.exists(self.path) else []
    targets = build_targets(existing, list(models or []), window=window, hop=hop, channels=channels)
    load = LoadOptions(device=device, precision=precision, weights=Path(weights) if weights else None)
    stored = stored_dtype(dtype)
    if weights is not None and len({target.model for target in targets}) > 1:
        raise QueryError("`weights` names the file of one model; give a single `models` with it")
    for name in dict.fromkeys(target.model for target in targets):
        registry.spec(name).weights_id(load)  # unknown models and missing weights fail before any change
    report = None
    if site is not None:
        check_site_name(site)
    try:
        with self._whole(write=True) as store:
            for folder, files in _group_paths(items):
                options = BuildOptions(targets=targets, load=load, batch_size=batch_size,
                                       decode_workers=decode_workers, commit_seconds=commit_every,
                                       dtype=stored,
                                       select=selection(files, list(include), exclude=list(exclude)), ray=ray)
                done = build_folder(store, folder, options=options, progress=_as_progress(progress))
                report = done if report is None else report.add(done)
    finally:  # the files committed before an interruption are the site's too
        if site is not None and Store.exists(self.path):
            self.recordings.name_site(items, site)
    assert report is not None  # one report a folder, and there is at least one
    return report


def _group_paths(items: list[Path]) -> list[tuple[Path, list[str]]]:
    """Folders as they are; files grouped by their folder (built as that folder, those files only,
    unless the folder itself is given too)."""
    whole = [item.resolve() for item in items if item.is_dir()]
    files: dict[Path, list[str]] = {}
    for item in items:
        if not item.is_dir() and item.resolve().parent not in whole:
            files.setdefault(item.resolve().parent, []).append(item.resolve().name)
    return [(folder, []) for folder in dict.fromkeys(whole)] + list(files.items())


class _CallbackProgress(Progress):
    def __init__(self, callback: Callable[[int, int], None]) -> None:
        self._callback, self._files, self._windows = callback, 0, 0

    def advance(self, files: int, windows: int) -> None:
        self._files += files
        self._windows += windows
        self._callback(self._files, self._windows)


def _as_progress(progress: Progress | Callable[[int, int], None] | None) -> Progress | None:
    if progress is None or isinstance(progress, Progress):
        return progress
    return _CallbackProgress(progress)
