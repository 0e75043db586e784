"""The cluster engine: decode and embed on Ray Data, commit here.

The build plans the work exactly as for a local run; this module turns the plan's
files into a Ray Dataset that flows through decode-and-window tasks on CPUs and an
embedding stage of actors (``map_batches`` with a callable class, ``num_gpus`` per
actor when the cluster has GPUs), and streams every file's windows and outcome back
to the driver, which stays the store's single writer and commits with the same
crash-safe protocol as a local build.  Ray's own streaming executor does the
scheduling and the back-pressure; nothing here decides which machine runs what.

Between the stages a batch of windows travels as the stretch of samples it covers
plus the window starts, not as overlapping windows: with 8 s windows every 1 s that
is an eighth of the bytes.  Media must be readable at the same path on every worker
(shared storage) unless ``ship_media`` is set: then reader actors on the driver's
machine serve each planned file's bytes to the decoders on demand.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import KW_ONLY, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import numpy as np

from audioscan.indexer.errors import EngineError
from audioscan.indexer.media.windows import WindowBatch
from audioscan.indexer.ray_cluster import (INSTALL_HINT, actor_count, check_models, explained, join, node_named,
                                           ray_output, watched)
from audioscan.indexer.pipeline import (Batch, Batcher, Decoded, Embedded, Failed, Result, SampleWindows, Source,
                                         decode_events)
from audioscan.models import registry
from audioscan.models.base import LoadOptions
from audioscan.models.engine import default_batch_size

# Bytes a shipped file is read in, per request to the reader actor.
_SHIP_CHUNK = 4 << 20
# Memory one decoding task holds: FFmpeg's buffers plus a few batches of windows.
DECODE_MEMORY = 512 << 20


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray build runs.

    ``address``: an existing cluster (``auto``, ``ray://host:10001``...), else ``RAY_ADDRESS``
    (as ``ray job submit`` sets it); neither starts a local Ray on ``num_cpus`` cores (all of them
    by default).  The embedding actors form a pool of ``actors`` that Ray Data grows to
    ``max_actors`` while the cluster has room (an autoscaling cluster that starts small).  ``actors``: embedding
    actors; by default ``actors_per_gpu`` per GPU, or one per two CPUs on a cluster
    without GPUs (the rest decode).
    """

    address: str | None = None
    ship_media: bool = False
    _: KW_ONLY
    actors: int | None = None
    actors_per_gpu: int = 1
    num_cpus: int | None = None
    wait: float = 600.0  # seconds without a result before the build stops (it says why it waits before)
    max_actors: int | None = None  # the pool grows to this many as the cluster grows (default: ``actors``)
    gpus_per_actor: float | None = None  # a GPU share per actor, instead of ``1 / actors_per_gpu``
    resources: dict[str, float] = field(default_factory=dict)  # custom resources each embedding actor asks for
    runtime_env: dict[str, Any] | None = None  # Ray's runtime_env for every task and actor of the build
    readers: int = 2  # reader actors serving ``ship_media`` on the driver's machine


def import_ray() -> Any:
    """Ray, or one sentence on how to get it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the engine is Ray Data)
    except ImportError:
        raise EngineError(f"`engine` ray needs Ray, which is not installed; install it with '{INSTALL_HINT}', "
                          "or build without `engine` ray") from None
    return ray


# --- rows that travel between the stages (one schema for windows and outcomes) -------------

def _window_row(job: int, set_id: int, starts: np.ndarray, ends: np.ndarray, data: np.ndarray, *,
                width: int, channel: int) -> dict:
    return {"job": job, "set_id": set_id, "width": width, "starts": starts.astype(np.int64).tobytes(),
            "ends": ends.astype(np.int64).tobytes(), "data": np.ascontiguousarray(data, np.float32).tobytes(),
            "outcome": "", "channel": channel}


def _outcome_text(event: Decoded | Failed) -> str:
    if isinstance(event, Failed):
        return json.dumps({"failed": event.reason, "retry": event.retry})
    return json.dumps({"duration": event.duration, "totals": event.totals, "fingerprint": event.fingerprint,
                       "fps": event.fps, "windows": event.windows, "declared": event.declared})


def _outcome_row(job: int, text: str) -> dict:
    return {"job": job, "set_id": -1, "width": 0, "starts": b"", "ends": b"", "data": b"", "outcome": text,
            "channel": 0}


def _outcome(job: int, text: str) -> Decoded | Failed:
    outcome = json.loads(text)
    if "failed" in outcome:
        return Failed(job, outcome["failed"], outcome["retry"])
    return Decoded(job, outcome["duration"], totals={int(k): v for k, v in outcome["totals"].items()},
                   fingerprint=outcome["fingerprint"], fps=outcome["fps"],
                   windows={int(k): v for k, v in outcome["windows"].items()}, declared=outcome.get("declared"))


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    keys = ("job", "set_id", "width", "starts", "ends", "data", "outcome", "channel")
    return {key: np.asarray([row[key] for row in rows], dtype=object if key in ("starts", "ends", "data", "outcome")
                            else np.int64) for key in keys}


# --- stage 1: decode and window (Ray tasks on CPUs) ------------------------------------

class _RemoteFile(io.RawIOBase):
    """A file on the driver's machine, read through the reader actor (``--ship-media``)."""

    def __init__(self, reader: Any, path: str, *, size: int) -> None:
        self._reader, self._path, self._size, self._pos = reader, path, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        import ray

        data = ray.get(self._reader.read.remote(self._path, self._pos, size=min(len(buffer), _SHIP_CHUNK)))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _shipped(reader: Any, path: str) -> BinaryIO:
    """A planned file on the driver's machine, opened for reading from this worker."""
    import ray

    size = ray.get(reader.size.remote(path))
    return io.BufferedReader(_RemoteFile(reader, path, size=size), buffer_size=_SHIP_CHUNK)


def _decode_rows(batch: dict[str, np.ndarray], batch_size: int, readers: Sequence[Any] | None) -> Iterator[dict]:
    """A planned file in, its window batches and then its outcome out, a batch at a time; shipped
    files are spread over the ``readers``."""
    for job, path, cuts_text, hash_it in zip(batch["job"], batch["path"], batch["cuts"], batch["hash_it"]):
        cuts = [SampleWindows(set_id, rate, win=win, hop=hop, split=split)
                for set_id, rate, win, hop, split in json.loads(cuts_text)]
        reader = None if not readers else readers[int(job) % len(readers)]
        if reader is None and not os.path.exists(path):
            yield _columns([_outcome_row(int(job), _outcome_text(_missing_here(int(job), str(path))))])
            continue
        source: Source = Path(path) if reader is None else partial(_shipped, reader, str(path))
        for event in decode_events(int(job), source, cuts=cuts, batch_size=batch_size, hash_it=bool(hash_it)):
            if isinstance(event, Batch):
                windows = event.windows
                yield _columns([_window_row(event.job, event.set_id, starts=windows.starts, ends=windows.ends,
                                            data=windows.span, width=windows.win, channel=event.channel)])
            else:
                yield _columns([_outcome_row(event.job, _outcome_text(event))])


def _missing_here(job: int, path: str) -> Failed:
    """A planned file (the driver found it) that this worker cannot see: shared storage is not
    mounted here at the same path.  Retried by the next build, which may run elsewhere."""
    import ray

    node = node_named(ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id())
    return Failed(job, f"not found at this path on Ray node {node}, though the machine "
                       "that started the build has it; mount the media at the same path on every node, or build "
                       "with --ship-media", True)


# --- stage 2: embed (an actor pool; one model load per actor) --------------------------------

class _Embedder:
    """Holds the models of the sets being built; embeds window rows, passes outcomes through."""

    def __init__(self, models: dict[int, tuple[str, str]], load: LoadOptions, *, batch_size: int | None) -> None:
        """Loads each model once per actor (on the actor's GPU when it was given one); without a
        ``batch_size`` each model gets the default for the device this actor landed on."""
        loaded: dict[tuple[str, str], Any] = {}
        for name, weights_id in models.values():
            if (name, weights_id) not in loaded:
                loaded[(name, weights_id)] = registry.load_model(name, load, weights_id=weights_id)
        self.batchers = {sid: Batcher(loaded[key], batch_size or default_batch_size(
            registry.spec(key[0]).params, load.device)) for sid, key in models.items()}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict] = []
        for job, set_id, width, starts, ends, data, outcome, channel in zip(
                batch["job"], batch["set_id"], batch["width"], batch["starts"], batch["ends"], batch["data"],
                batch["outcome"], batch["channel"]):
            if set_id < 0:
                rows.append(_outcome_row(int(job), outcome))
                continue
            starts_, ends_ = np.frombuffer(starts, np.int64), np.frombuffer(ends, np.int64)
            span = np.frombuffer(data, np.float32)
            self.batchers[int(set_id)].add(int(job), WindowBatch(starts_, ends_, span=span, win=int(width)),
                                           channel=int(channel))
        for set_id, batcher in self.batchers.items():
            for done in batcher.run(set_id, partial=True):
                rows.append(_window_row(done.job, set_id, starts=done.starts, ends=done.ends, data=done.vectors,
                                        width=done.vectors.shape[1], channel=done.channel))
        return _columns(rows)


def _reader_actors(ray: Any, paths: Sequence[str], count: int) -> list[Any]:
    """``count`` readers of the planned files (and only those), pinned to this machine: several,
    so that one slow read (a cold disk, a large seek) does not hold every decoder."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    class MediaReader:
        def __init__(self, allowed: Sequence[str]) -> None:
            self.allowed = frozenset(allowed)

        def _checked(self, path: str) -> str:
            if path not in self.allowed:
                raise PermissionError(f"{path} is not part of this build")
            return path

        def size(self, path: str) -> int:
            return os.stat(self._checked(path)).st_size

        def read(self, path: str, offset: int, *, size: int) -> bytes:
            with open(self._checked(path), "rb") as handle:
                handle.seek(offset)
                return handle.read(size)

    reader = ray.remote(num_cpus=0, max_concurrency=8)(MediaReader)  # as a call: type checkers skip class decorators
    here = ray.get_runtime_context().get_node_id()
    return [reader.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(
        list(paths)) for _ in range(count)]


def embed_on_ray(files: Sequence[tuple[Path, Sequence[SampleWindows], bool]], models: dict[int, tuple[str, str]],
                 *, load: LoadOptions, batch_size: int, options: RayOptions,
                 model_batch: int | None = None, notice: Callable[[str], None] = lambda text: None
                 ) -> Iterator[Result]:
    """The cluster engine: the same results as ``embed_locally``, computed on Ray.  Decoders cut
    rows of ``batch_size`` windows; actors embed ``model_batch`` at a time (default: chosen for
    the device each actor has, which the driver may lack).  ``notice`` hears why a build waits."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    address = options.address or os.environ.get("RAY_ADDRESS") or None
    if address and options.num_cpus:
        raise EngineError(f"`ray_cpus` sizes a Ray started here, and this build joins the cluster at {address} "
                          "(`ray_address` or RAY_ADDRESS), which has its own; drop `ray_cpus`")
    with ray_output():
        try:
            if started_here:
                join(ray, address, options=options)
            yield from _stream(ray, files, models=models, load=load, batch_size=batch_size, options=options,
                               model_batch=model_batch, notice=notice)
        except (ConnectionError, ray.exceptions.RayError) as err:
            raise explained(err, address) from None
        finally:
            if started_here:
                ray.shutdown()


def _stream(ray: Any, files: Sequence[tuple[Path, Sequence[SampleWindows], bool]], models: dict[int, tuple[str, str]],
            load: LoadOptions, batch_size: int, options: RayOptions, model_batch: int | None,
            notice: Callable[[str], None]) -> Iterator[Result]:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the build draws its own bar
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    readers = _reader_actors(ray, [str(path) for path, _, _ in files], options.readers) if options.ship_media else None
    items = [{"job": job, "path": str(path),
              "cuts": json.dumps([[c.set_id, c.rate, c.win, c.hop, c.split] for c in cuts]), "hash_it": hash_it}
             for job, (path, cuts, hash_it) in enumerate(files)]
    actors, gpus = actor_count(ray, options)
    check_models(ray, partial(_Embedder, models, load, batch_size=1), gpus=gpus)
    dataset = (ray.data.from_items(items, override_num_blocks=len(items))
               # Decoders are tasks with their own resources, so Ray never fuses them into the
               # embedding actors (which would leave a GPU waiting on a demuxer).  Ray Data runs a
               # task again, as often as it takes, when its node dies under it, and restarts its actors.
               .map_batches(partial(_decode_rows, batch_size=batch_size, readers=readers), batch_size=1,
                            batch_format="numpy", num_cpus=1, memory=DECODE_MEMORY)
               .map_batches(_Embedder, fn_constructor_kwargs={"models": models, "load": load,
                                                              "batch_size": model_batch},
                            batch_size=None, batch_format="numpy", num_gpus=gpus, num_cpus=0 if gpus else 1,
                            resources=options.resources or None,
                            compute=ray.data.ActorPoolStrategy(min_size=actors,
                                                               max_size=max(actors, options.max_actors or actors))))
    for batch in watched(ray, dataset.iter_batches(batch_size=None, batch_format="numpy"), wait=options.wait,
                         notice=notice):
        for job, set_id, width, starts, ends, data, outcome, channel in zip(
                batch["job"], batch["set_id"], batch["width"], batch["starts"], batch["ends"], batch["data"],
                batch["outcome"], batch["channel"]):
            if set_id < 0:
                yield _outcome(int(job), outcome)
            else:
                yield Embedded(int(job), int(set_id), starts=np.frombuffer(starts, np.int64),
                               ends=np.frombuffer(ends, np.int64),
                               vectors=np.frombuffer(data, np.float32).reshape(-1, int(width)), channel=int(channel))
