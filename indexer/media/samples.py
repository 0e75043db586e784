"""Sample media made from scratch: the demo library and the test fixtures.

Nothing is downloaded, so sounds are synthesised (sirens, knocks, bird chirps, hum,
rain) and encoded with PyAV into the containers people actually have: wav, flac,
mp3, m4a, mp4 with an H.264 picture, mkv/webm with Opus.  Events sit at known
times, which lets the demo and the tests check that search finds them.

``python -m audioscan.indexer.media.samples FOLDER`` writes the demo library there.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

_AUDIO_CODECS = {
    ".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac", ".mp4": "aac",
    ".mov": "aac", ".mkv": "libopus", ".webm": "libopus", ".opus": "libopus", ".ogg": "libopus",
    ".avi": "libmp3lame",
}
_OPUS_RATE = 48_000


def synth(kind: str, seconds: float, *, rate: int, seed: int = 0) -> np.ndarray:
    """A mono float32 signal of one sound ``kind`` (siren, knock, chirp, hum, rain, noise, silence)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    if kind == "siren":
        freq = 900 + 300 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, np.pi))
        sound = 0.5 * np.sin(2 * np.pi * np.cumsum(freq) / rate)
    elif kind == "knock":
        sound = np.zeros(n)
        decay = np.exp(-np.arange(int(0.08 * rate)) / (0.012 * rate))
        for start in np.arange(rng.uniform(0, 0.2), seconds, 0.45) * rate:
            s = int(start)
            burst = rng.standard_normal(len(decay)) * decay * 0.8
            sound[s: s + len(burst)] += burst[: max(0, n - s)]
    elif kind == "chirp":
        sound = np.zeros(n)
        length = int(0.12 * rate)
        tt = np.arange(length) / rate
        tone = np.sin(2 * np.pi * (3000 * tt + 0.5 * 20000 * tt ** 2)) * np.hanning(length) * 0.4
        for start in np.arange(rng.uniform(0, 0.3), seconds, 0.35) * rate:
            s = int(start)
            sound[s: s + length] += tone[: max(0, n - s)]
    elif kind == "hum":
        sound = np.sum([0.15 / k * np.sin(2 * np.pi * 100 * k * t) for k in (1, 2, 3)], axis=0)
    elif kind == "rain":
        white = rng.standard_normal(n)
        sound = 0.08 * (white - np.concatenate([[0.0], white[:-1]]))
    elif kind == "noise":
        sound = 0.05 * rng.standard_normal(n)
    elif kind == "silence":
        sound = np.zeros(n)
    else:
        raise ValueError(f"unknown sound kind {kind!r}")
    return sound.astype(np.float32)


def scene(seconds: float, rate: int, *, background: str, events: Sequence[tuple[str, float, float]],
          seed: int = 0) -> np.ndarray:
    """A background sound with ``(kind, start, end)`` events mixed in at known times."""
    audio = synth(background, seconds, rate=rate, seed=seed)
    for k, (kind, start, end) in enumerate(events):
        a, b = int(start * rate), int(end * rate)
        audio[a:b] += synth(kind, (b - a) / rate, rate=rate, seed=seed + 1 + k)
    return np.clip(audio, -1.0, 1.0)


def write_media(path: Path, audio: np.ndarray, *, rate: int, video: bool = False) -> Path:
    """Encode ``audio`` (mono ``[n]`` or ``[channels, n]``) into the container ``path`` names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    planes = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    layout = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 6: "5.1", 8: "7.1"}[planes.shape[0]]
    codec = _AUDIO_CODECS[path.suffix.lower()]
    out_rate = _OPUS_RATE if codec == "libopus" else rate
    with av.open(str(path), "w") as container:
        picture = None
        if video:
            picture = container.add_stream("libx264", rate=5)
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream(codec, rate=out_rate, layout=layout)
        # Interleaved (packed) samples: PyAV's planar from_ndarray mishandles more than 6 channels.
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes.T).reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in sound.encode(frame):
            container.mux(packet)
        for packet in sound.encode(None):
            container.mux(packet)
        if picture is not None:
            seconds = planes.shape[1] / rate
            for i in range(int(seconds * 5)):
                image = np.full((48, 64, 3), (i * 7) % 255, dtype=np.uint8)
                for packet in picture.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in picture.encode(None):
                container.mux(packet)
    return path


def write_video_without_audio(path: Path, seconds: float = 2.0) -> Path:
    """An H.264 video with no audio stream: a file the build must report, not crash on."""
    with av.open(str(path), "w") as container:
        picture = container.add_stream("libx264", rate=5)
        picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 5)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, dtype=np.uint8), format="rgb24")
            for packet in picture.encode(frame):
                container.mux(packet)
        for packet in picture.encode(None):
            container.mux(packet)
    return path


# The demo library: (file, rate, seconds, background, events, video).
DEMO_LIBRARY = [
    ("street/ep01 night.mp4", 48_000, 60, "noise", [("siren", 20, 32)], True),
    ("street/ep02.mkv", 48_000, 45, "rain", [("siren", 5, 14), ("knock", 30, 36)], False),
    ("forest/dawn.flac", 44_100, 40, "rain", [("chirp", 0, 40)], False),
    ("kitchen/door.mp3", 44_100, 30, "hum", [("knock", 8, 14)], False),
    ("kitchen/fridge.m4a", 44_100, 25, "hum", [], False),
]
DEMO_CLIP = ("siren-clip.wav", 44_100, 6, "noise", [("siren", 0, 6)])


def make_demo(folder: Path) -> tuple[Path, Path]:
    """Write the demo library under ``folder/library`` and a query clip; returns both paths."""
    library = folder / "library"
    for k, (name, rate, seconds, background, events, video) in enumerate(DEMO_LIBRARY):
        write_media(library / name, scene(seconds, rate, background=background, events=events, seed=10 * k), rate=rate,
                    video=video)
    (library / "notes.txt").write_text("shot list: siren at 0:20 in ep01\n")
    (library / "street" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    name, rate, seconds, background, events = DEMO_CLIP
    clip = write_media(folder / name, scene(seconds, rate, background=background, events=events, seed=999), rate=rate)
    return library, clip


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo")
    lib, query_clip = make_demo(target)
    print(f"wrote the demo library to {lib} and a query clip to {query_clip}")
