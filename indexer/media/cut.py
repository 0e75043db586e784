"""Cutting a stretch of a media file into a file of its own, sample for sample.

Audio is decoded from a little before the cut (so lossy decoders have settled by the
first kept sample: MP3's bit reservoir, AAC's overlapping transforms) - or from the
start when the container's timestamps are coarser than a sample (Matroska counts
milliseconds) - trimmed on the decoded sample positions, and written in the source's own rate, channel layout
and sample format (WAV stores any of them exactly; FLAC stores integer samples, so a
float source is written as 24-bit there).  Time 0 is the first decoded sample, as
everywhere in audioscan.  A rate or a channel count asked for (1 or 2) is honoured in every
format.  :func:`write_video` (MP4 out of a video) re-encodes the pictures of the span with
H.264 beside the audio in AAC, which stores only :data:`AAC_RATES`.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from audioscan.indexer.errors import MediaError
from audioscan.indexer.media.decode import open_audio

PREROLL_SECONDS = 2.0
AAC_RATES = tuple(av.codec.Codec("aac", "w").audio_rates or ())  # the rates an MP4 clip's sound can have
_PCM = {"s16": "pcm_s16le", "s32": "pcm_s32le", "flt": "pcm_f32le", "dbl": "pcm_f64le", "u8": "pcm_u8"}
_FLAC = {"s16": "s16", "s32": "s32"}


@dataclass(frozen=True)
class Span:
    """Decoded audio of a cut: ``samples[channels, n]`` in the source's own format."""

    samples: np.ndarray
    rate: int
    _: KW_ONLY
    layout: str
    format: str  # packed sample format name (s16, s32, flt, dbl, u8)


def read_span(path: Path, start: float, *, end: float, rate: int | None = None,
              channels: int | None = None) -> Span:
    """The samples of ``[start, end)`` of the first audio stream (optionally resampled or downmixed)."""
    try:
        container, stream = open_audio(path)
    except MediaError as err:
        raise MediaError(f"cannot cut {path.name}: {err.template}") from err
    with container:
        base = stream.time_base
        origin = float(stream.start_time * base) if stream.start_time is not None and base is not None else 0.0
        # Seeking is exact only when timestamps resolve single samples; Matroska's are milliseconds,
        # so such a file is read from its start and its samples counted instead.
        fine = base is not None and base <= Fraction(1, stream.codec_context.sample_rate)
        if start > PREROLL_SECONDS and base is not None and fine:
            container.seek(int((origin + start - PREROLL_SECONDS) / base), stream=stream, backward=True)
        frames = _frames(container, stream)
        head = next(frames, None)
        if head is None:
            raise MediaError(f"no audio could be decoded from {path.name}")
        layout = _layout(channels) or head.layout.name
        fmt = head.format.name.rstrip("p") if head.format.name.rstrip("p") in _PCM else "flt"
        out_rate = rate or head.sample_rate
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=out_rate)
        lo, hi = round(start * out_rate), round(end * out_rate)
        position, parts = None, []
        for frame in _chain(head, frames):
            for piece in resampler.resample(frame):
                if position is None:  # positions count on from the first decoded sample's time
                    position = round(((piece.time if piece.time is not None else frame.time) - origin) * out_rate)
                data = piece.to_ndarray().reshape(-1, len(piece.layout.channels)).T
                if position + data.shape[1] > lo and position < hi:
                    parts.append(data[:, max(0, lo - position): hi - position])
                position += data.shape[1]
            if position is not None and position >= hi:
                break
    if not parts:
        raise MediaError(f"{path.name} has no audio between {start:g} s and {end:g} s")
    return Span(np.ascontiguousarray(np.concatenate(parts, axis=1)), out_rate, layout=layout, format=fmt)


def _layout(channels: int | None) -> str | None:
    """The layout asked for by a channel count (1 or 2), or None to keep the source's."""
    return None if channels is None else ("mono" if channels == 1 else "stereo")


def audio_shape(path: Path) -> tuple[int, int] | None:
    """(sample rate, channels) of the first audio stream as its header says, or None when it has
    none or cannot be read: what a written clip holds, to tell whether it is the clip asked for."""
    try:
        container, stream = open_audio(path)
    except MediaError:
        return None
    with container:
        return stream.codec_context.sample_rate, stream.codec_context.channels


def _frames(container, stream):
    """Decoded frames with a time; a packet that fails to decode is skipped."""
    for packet in container.demux(stream):
        try:
            for frame in packet.decode():
                if frame.time is not None:
                    yield frame
        except av.error.FFmpegError:
            continue


def _chain(head, rest):
    yield head
    yield from rest


def write_audio(path: Path, span: Span, *, container_format: str) -> None:
    """Write ``span`` as ``wav`` (exact, any sample format) or ``flac`` (integer samples)."""
    fmt = span.format
    if container_format == "flac":
        codec, fmt = "flac", _FLAC.get(fmt, "s32")
    else:
        codec = _PCM[fmt]
    samples = _convert(span.samples, span.format, fmt)
    with av.open(str(path), "w", format="wav" if container_format == "wav" else "flac") as out:
        stream = out.add_stream(codec, rate=span.rate, layout=span.layout)
        stream.format = fmt
        frame = av.AudioFrame.from_ndarray(samples.T.reshape(1, -1), format=fmt, layout=span.layout)
        frame.sample_rate, frame.pts, frame.time_base = span.rate, 0, Fraction(1, span.rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _convert(samples: np.ndarray, source: str, target: str) -> np.ndarray:
    """Samples in ``target``'s dtype (float to 24-bit-in-32 for FLAC; integers pass unchanged)."""
    if source == target:
        return samples
    if source in ("flt", "dbl") and target == "s32":
        return (np.clip(samples, -1.0, 1.0 - 2 ** -23) * 2 ** 31).astype(np.int32) & ~0xFF
    if source == "u8" and target == "s16":
        return ((samples.astype(np.int16) - 128) << 8).astype(np.int16)
    return samples.astype({"s16": np.int16, "s32": np.int32}[target])


def write_video(source: Path, target: Path, *, start: float, end: float, rate: int | None = None,
                channels: int | None = None) -> None:
    """The pictures and sound of ``[start, end)`` of ``source`` as an H.264 + AAC MP4, the sound at
    ``rate`` and ``channels`` (default: the source's own, never a stereo copy of a mono source).

    AAC stores only the rates of :data:`AAC_RATES`; the caller refuses any other."""
    with av.open(str(source), metadata_errors="ignore") as inp:
        if not inp.streams.video:
            raise MediaError(f"{source.name} has no pictures: cut it to wav or flac")
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        picture_rate = vin.average_rate or Fraction(25, 1)
        with av.open(str(target), "w", format="mp4") as out:
            vout = out.add_stream("libx264", rate=picture_rate)
            vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
            aout = None
            if ain is not None:
                layout = _layout(channels) or ain.layout.name
                sound_rate = rate or ain.codec_context.sample_rate
                aout = out.add_stream("aac", rate=sound_rate, layout=layout)
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=sound_rate)
            if start > PREROLL_SECONDS:
                inp.seek(int((start - PREROLL_SECONDS) / vin.time_base), stream=vin, backward=True)
            picture_index = 0
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in inp.demux(*streams):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    if frame.time is None or not start <= frame.time < end:
                        continue
                    if isinstance(frame, av.VideoFrame):
                        image = frame.reformat(format="yuv420p")
                        image.pts, image.time_base = picture_index, Fraction(1, 1) / picture_rate
                        picture_index += 1
                        for out_packet in vout.encode(image):
                            out.mux(out_packet)
                    elif aout is not None:
                        for piece in resampler.resample(frame):
                            piece.pts = None
                            for out_packet in aout.encode(piece):
                                out.mux(out_packet)
            for out_packet in vout.encode(None):
                out.mux(out_packet)
            if aout is not None:
                for out_packet in aout.encode(None):
                    out.mux(out_packet)
