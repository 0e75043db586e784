"""Decoding any container FFmpeg reads into mono float32 at the rates the models want.

PyAV does the demuxing, decoding, downmixing and resampling (libswresample, as
``ffmpeg -ac 1`` in the original scan) and we hand out fixed-size blocks, so a
three-hour file streams through in constant memory.  Several target rates come out
of one decoding pass.  A packet that fails to decode is skipped, and the duration
is the number of samples actually decoded, because a truncated file's header lies.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import av
import numpy as np

from audioscan.indexer.errors import MediaError
from audioscan.models import threads

BLOCK_SECONDS = 10.0
# A damaged file is given this many undecodable packets in a row before we stop
# reading it (keeping what was decoded so far).
_MAX_BAD_PACKETS_IN_A_ROW = 64

MEDIA_EXTENSIONS = frozenset(
    "wav wave flac mp3 mp2 ogg oga opus m4a m4b aac ac3 eac3 wma aif aiff aifc caf amr ape wv "
    "mp4 m4v mkv mka mov webm avi wmv flv mpg mpeg ts mts m2ts vob 3gp ogv dv".split()
)


@dataclass(frozen=True)
class Probe:
    """What opening a file told us: is it media with audio, and if not, why."""

    is_media: bool
    error: str | None = None
    _: KW_ONLY
    creation_time: str | None = None  # the container's tag, when it has one (see ``media.recorded``)
    comment: str | None = None  # its comment tag (an AudioMoth says its clock's zone there), cut to 500 characters


def _short(err: Exception) -> str:
    """FFmpeg's own words without the errno and the path we already name."""
    text = getattr(err, "strerror", None) or str(err).strip() or type(err).__name__
    return text.splitlines()[0].rstrip(".")


def probe(path: Path) -> Probe:
    """Decide whether ``path`` is media and whether it has audio we can index.

    A file with a media extension, or one FFmpeg opens as a video, that cannot give
    audio is a *failed* media file (the user expects it indexed, so we say why).
    Anything else that does not open as audio is simply not media and is ignored.
    """
    expected = path.suffix.lower().lstrip(".") in MEDIA_EXTENSIONS
    try:
        size = path.stat().st_size
    except OSError as err:
        return Probe(expected, f"cannot be read: {_short(err)}")
    if size == 0:
        return Probe(expected, "the file is empty (0 bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.streams.audio:
                comment = container.metadata.get("comment")
                return Probe(True, creation_time=_creation_time(container),
                             comment=str(comment)[:500] if comment else None)
            if container.streams.video and expected:
                return Probe(True, "it has no audio stream (video only)")
            return Probe(expected, "it has no audio stream")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        return Probe(expected, f"it is not a readable media file ({_short(err)})")


def _creation_time(container: av.container.InputContainer) -> str | None:
    """The container's ``creation_time`` tag, else its first audio stream's (MP4 keeps one per track)."""
    found = container.metadata.get("creation_time") or container.streams.audio[0].metadata.get("creation_time")
    return str(found) if found else None


# Float sources may hold NaN, infinities or absurd peaks (a broken float WAV); samples are
# made finite and clipped here so no model ever sees them (+24 dBFS is far above real audio).
_PEAK_LIMIT = 16.0
# The most channels a file is split into (``Hearing.split``); a stream's key has room for this many.
MAX_SPLIT_CHANNELS = 255


def _clean(frame: av.AudioFrame, split: bool) -> np.ndarray:
    """A resampled frame's samples, finite and bounded: ``[n]`` for a mix, ``[channels, n]`` split.  Both
    are read packed (interleaved): PyAV's planar ``to_ndarray`` crashes the process on a 7.1 frame."""
    samples = frame.to_ndarray().reshape(-1)
    if split:
        samples = np.ascontiguousarray(samples.reshape(-1, len(frame.layout.channels)).T)
    if not np.isfinite(samples).all() or np.abs(samples).max(initial=0.0) > _PEAK_LIMIT:
        samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0), -_PEAK_LIMIT, _PEAK_LIMIT)
    return samples.astype(np.float32, copy=False)


@dataclass(frozen=True, order=True)
class Hearing:
    """One signal a decoding pass hands out: audio at ``rate``, as one mono mix or, ``split``, every
    channel apart (``[channels, n]`` blocks; channel k of the file is row k - 1)."""

    rate: int
    split: bool = False


def _openable(source: Path | BinaryIO) -> str | BinaryIO:
    """What ``av.open`` takes: a path's text, or an open binary file (media shipped to a worker)."""
    return str(source) if isinstance(source, Path) else source


def open_audio(source: Path | BinaryIO) -> tuple[av.container.InputContainer, av.AudioStream]:
    """An open container and its first audio stream (the caller closes the container), or a
    MediaError saying why there is none."""
    try:
        container = av.open(_openable(source), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise MediaError(f"it is not a readable media file ({_short(err)})") from err
    if not isinstance(container, av.container.InputContainer) or not container.streams.audio:
        container.close()
        raise MediaError("it has no audio stream")
    return container, container.streams.audio[0]


@dataclass(frozen=True)
class HeaderFacts:
    """What a container's header says, read without decoding: the frame rate of its first
    picture stream (None for audio, pictures, or unknown), so exports write timecodes the
    file's own editor agrees with; and how long its first audio stream claims to be, so a
    file cut short is noticed (None when the header does not say)."""

    fps: float | None = None
    declared: float | None = None


def header_facts(source: Path | BinaryIO) -> HeaderFacts:
    try:
        with av.open(_openable(source), metadata_errors="ignore") as container:
            fps = None
            for stream in container.streams.video:
                rate = stream.average_rate or stream.guessed_rate
                if rate and 1 <= float(rate) <= 1000 and stream.frames != 1:
                    fps = round(float(rate), 3)
                    break
            declared = None
            if container.streams.audio:
                audio = container.streams.audio[0]
                if audio.duration and audio.time_base:
                    declared = float(audio.duration * audio.time_base)
                elif container.duration:
                    declared = container.duration / av.time_base
            return HeaderFacts(fps, declared if declared and declared > 0 else None)
    except (av.error.FFmpegError, OSError, ValueError):
        return HeaderFacts()


def frame_rate(source: Path | BinaryIO) -> float | None:
    """The frame rate of a video's first picture stream (see :class:`HeaderFacts`)."""
    return header_facts(source).fps


class _Resampler:
    """Resamples one audio stream to one :class:`Hearing` with libswresample.

    A mix uses swresample's standard downmix matrix (5.1: centre 1.0, front 0.707, surround 0.5,
    LFE 0), the one ``ffmpeg -ac 1`` uses as the original scan did, and it handles any channel
    layout - 7.1 and 8 discrete channels included - without us touching the interleaved planes.
    swresample builds no downmix for a layout of more channels than it knows the order of (a 32-channel
    array): such a mix is the mean of the channels, resampled in the file's own layout.
    Split keeps the layout of the stream's first frame, each channel one row; a stream whose layout
    changes mid-way is remixed to that first layout, so a file keeps one set of channels from start
    to end.
    """

    def __init__(self, hearing: Hearing) -> None:
        self.hearing = hearing
        self._resampler: av.AudioResampler | None = None
        self._layout: str | None = None
        self._target: av.AudioLayout | str | None = None if hearing.split else "mono"
        self._averaged = False  # a mix taken as the mean of channels swresample cannot downmix

    def push(self, frame: av.AudioFrame | None) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        if frame is not None:
            layout = f"{frame.layout.name}/{len(frame.layout.channels)}/{frame.sample_rate}/{frame.format.name}"
            if self._resampler is not None and layout != self._layout:
                out += self._drain()  # the stream changed shape mid-way: start a new resampler
            if self._target is None:
                if len(frame.layout.channels) > MAX_SPLIT_CHANNELS:
                    raise MediaError(f"it has {len(frame.layout.channels)} channels, more than the "
                                     f"{MAX_SPLIT_CHANNELS} a split set indexes apart; index it in a mixed set")
                self._target = frame.layout
            if self._resampler is None:
                self._resampler = av.AudioResampler(format="flt", layout=self._target, rate=self.hearing.rate)
                self._layout = layout
            try:
                pieces = self._resampler.resample(frame)
            except av.error.ArgumentError:
                if self._target != "mono":
                    raise
                self._target, self._averaged = frame.layout, True
                self._resampler = av.AudioResampler(format="flt", layout=self._target, rate=self.hearing.rate)
                pieces = self._resampler.resample(frame)
            out += [self._samples(f) for f in pieces]
        else:
            out += self._drain()
        return out

    def _samples(self, frame: av.AudioFrame) -> np.ndarray:
        rows = _clean(frame, self.hearing.split or self._averaged)
        return rows.mean(axis=0) if self._averaged else rows

    def _drain(self) -> list[np.ndarray]:
        if self._resampler is None:
            return []
        rest = [self._samples(f) for f in self._resampler.resample(None)]
        self._resampler = None
        return rest


class _Blocker:
    """Gathers small decoded pieces into blocks of a fixed number of samples (along the last axis, so a
    split hearing's ``[channels, n]`` pieces are blocked as a mix's ``[n]`` ones are)."""

    def __init__(self, block: int) -> None:
        self.block = block
        self._parts: list[np.ndarray] = []
        self._size = 0

    def add(self, pieces: list[np.ndarray]) -> Iterator[np.ndarray]:
        for piece in pieces:
            self._parts.append(piece)
            self._size += piece.shape[-1]
        if self._size >= self.block:
            joined = np.concatenate(self._parts, axis=-1)
            full = (joined.shape[-1] // self.block) * self.block
            for i in range(0, full, self.block):
                yield joined[..., i: i + self.block]
            rest = joined[..., full:]
            self._parts, self._size = ([rest], rest.shape[-1]) if rest.shape[-1] else ([], 0)

    def rest(self) -> Iterator[np.ndarray]:
        if self._size:
            yield np.concatenate(self._parts, axis=-1)
        self._parts, self._size = [], 0


def decode(source: Path | BinaryIO, rates: Sequence[int], *, start: float = 0.0, end: float | None = None,
           block_seconds: float = BLOCK_SECONDS) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(rate, block)`` pairs of mono float32 audio for each rate in ``rates`` (see :func:`decode_hearings`)."""
    for hearing, block in decode_hearings(source, [Hearing(rate) for rate in rates], start=start, end=end,
                                          block_seconds=block_seconds):
        yield hearing.rate, block


def decode_hearings(source: Path | BinaryIO, hearings: Sequence[Hearing], *, start: float = 0.0,
                    end: float | None = None, block_seconds: float = BLOCK_SECONDS
                    ) -> Iterator[tuple[Hearing, np.ndarray]]:
    """Yield ``(hearing, block)`` pairs of float32 audio for each of ``hearings``, from one decoding pass.

    Blocks of one hearing are consecutive and cover ``[start, end)`` of the first audio
    stream (to the end of the file when ``end`` is None).  Raises :class:`MediaError`
    when the file cannot be opened or has no audio stream.
    """
    hearings = sorted(set(hearings))
    container, stream = open_audio(source)
    with container:
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = threads.count()
        if start > 0:
            _seek(container, stream, start)
        resamplers = {h: _Resampler(h) for h in hearings}
        blockers = {h: _Blocker(max(1, round(block_seconds * h.rate))) for h in hearings}
        # Samples still to drop (before ``start``) and still to keep (before ``end``), per hearing.
        skip: dict[Hearing, int | None] = {h: None for h in hearings}
        left: dict[Hearing, int | None] = {h: (None if end is None else max(0, round((end - start) * h.rate)))
                                           for h in hearings}

        def emit(hearing: Hearing, pieces: list[np.ndarray],
                 frame_time: float | None) -> Iterator[tuple[Hearing, np.ndarray]]:
            to_skip, to_keep = skip[hearing], left[hearing]
            if to_skip is None:
                to_skip = max(0, round((start - (frame_time or 0.0)) * hearing.rate)) if start > 0 else 0
            trimmed = []
            for piece in pieces:
                if to_skip:
                    cut = min(to_skip, piece.shape[-1])
                    piece, to_skip = piece[..., cut:], to_skip - cut
                if to_keep is not None:
                    piece = piece[..., :to_keep]
                    to_keep -= piece.shape[-1]
                if piece.shape[-1]:
                    trimmed.append(piece)
            skip[hearing], left[hearing] = to_skip, to_keep
            for block in blockers[hearing].add(trimmed):
                yield hearing, block

        bad_in_a_row = 0
        for frame in _frames(container, stream):
            if frame is None:
                bad_in_a_row += 1
                if bad_in_a_row > _MAX_BAD_PACKETS_IN_A_ROW:
                    break
                continue
            bad_in_a_row = 0
            for hearing in hearings:
                yield from emit(hearing, resamplers[hearing].push(frame), frame.time)
            if all(v is not None and v <= 0 for v in left.values()):
                break
        for hearing in hearings:
            yield from emit(hearing, resamplers[hearing].push(None), None)
            for block in blockers[hearing].rest():
                yield hearing, block


def _frames(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame | None]:
    """Decoded frames of ``stream``; ``None`` stands for a packet that failed to decode."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.EOFError:
            return
        except av.error.FFmpegError:
            yield None  # a damaged container: the demuxer may still resync
            continue
        try:
            yield from packet.decode()
        except av.error.FFmpegError:
            yield None


def _seek(container: av.container.InputContainer, stream: av.AudioStream, start: float) -> None:
    """Seek to a keyframe at or before ``start``; exact trimming happens on decoded samples."""
    if stream.time_base is None:
        return
    try:
        container.seek(int(max(0.0, start - 0.5) / stream.time_base), stream=stream, backward=True)
    except av.error.FFmpegError:
        container.seek(0, stream=stream)


def decode_all(path: Path, rate: int, *, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """The whole of ``[start, end)`` at one rate as one array (for short clips only)."""
    blocks = [block for _, block in decode(path, [rate], start=start, end=end)]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def self_check() -> dict[str, str]:
    """Encode half a second of FLAC in memory and decode it back through :func:`decode`:
    proves PyAV's FFmpeg libraries load and resample (``audioscan doctor``)."""
    import io
    from fractions import Fraction

    rate, seconds = 44_100, 0.5
    tone = np.sin(np.arange(int(rate * seconds), dtype=np.float32) * 0.05).reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    buffer.seek(0)
    decoded = sum(len(block) for _, block in decode(buffer, [16_000]))
    if abs(decoded - 16_000 * seconds) > 160:
        raise MediaError(f"PyAV decoded {decoded} samples of a {seconds} s test tone; its FFmpeg build is broken")
    return {"av": av.__version__, "libavcodec": ".".join(map(str, av.library_versions["libavcodec"]))}
