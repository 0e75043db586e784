"""What a listener plays and sees of a moment: WAV bytes, and a small spectrogram picture.

Both are made on demand from the source file (by indexed media id and a bounded time
range, never a path from a request), so nothing is cached on disk.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib
from pathlib import Path

import numpy as np

from audioscan.indexer.media.cut import read_span

MAX_SPAN_SECONDS = 120.0
_PLAY_RATE = 22_050


def moment_wav(source: Path, start: float, *, end: float, channel: int = 0) -> bytes:
    """``[start, end)`` of ``source`` as 16-bit WAV (mono or stereo, 22.05 kHz: enough to judge by ear); of
    one ``channel`` (from 1) when a split set's moment is on it."""
    span = read_span(source, start, end=end, rate=_PLAY_RATE, channels=None)
    samples = _heard(span.samples.astype(np.float32), channel)
    if span.format not in ("flt", "dbl"):
        samples = samples / float(np.iinfo(span.samples.dtype).max)
    if samples.shape[0] > 2:
        samples = samples.mean(axis=0, keepdims=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").T.copy()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(span.rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _heard(samples: np.ndarray, channel: int) -> np.ndarray:
    """The rows of ``[channels, n]`` samples a moment was heard on: one channel (from 1; a file of fewer
    channels than that keeps them all), or every one for the mix (0)."""
    return samples[channel - 1: channel] if 1 <= channel <= samples.shape[0] else samples


def spectrogram_png(source: Path, start: float, *, end: float, width: int = 240, height: int = 64,
                    channel: int = 0) -> bytes:
    """A grey-scale log spectrogram of the moment (of one ``channel``, from 1, or the mono mix),
    ``width`` x ``height`` pixels, low frequencies at the bottom."""
    span = read_span(source, start, end=end, rate=16_000, channels=None if channel else 1)
    audio = _heard(span.samples, channel).astype(np.float32).mean(axis=0)
    if span.format not in ("flt", "dbl"):
        audio = audio / float(np.iinfo(span.samples.dtype).max)
    frame = 512
    hop = max(1, (len(audio) - frame) // max(1, width - 1)) if len(audio) > frame else 1
    starts = np.arange(0, max(1, len(audio) - frame + 1), hop)[:width]
    frames = np.stack([np.pad(audio[s: s + frame], (0, max(0, frame - len(audio[s: s + frame])))) for s in starts])
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
    bands = np.array_split(power, height, axis=1)
    image = np.log10(np.stack([b.mean(axis=1) for b in bands], axis=0) + 1e-10)
    image = np.clip((image - (image.max() - 8)) / 8, 0, 1)  # 80 dB of range
    pixels = (255 - image[::-1] * 255).astype(np.uint8)
    return _png(np.ascontiguousarray(pixels))


def _png(gray: np.ndarray) -> bytes:
    """A grey-scale PNG of an 8-bit image (the format's own few chunks, no imaging library needed)."""
    height, width = gray.shape
    raw = b"".join(b"\x00" + gray[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
