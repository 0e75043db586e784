"""Decoding each channel apart (``index build --channels split``): every layout a recorder or a mix writes
comes out as one row per channel, in the file's order, each the channel's own samples, beside the mix
from the same pass."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from audioscan.indexer.media.decode import Hearing, decode_hearings
from audioscan.indexer.media.samples import write_media

RATE = 16_000


def _decoded(path, hearings):
    out: dict[Hearing, list[np.ndarray]] = {}
    for hearing, block in decode_hearings(path, hearings, block_seconds=0.5):
        out.setdefault(hearing, []).append(block)
    return {hearing: np.concatenate(blocks, axis=-1) for hearing, blocks in out.items()}


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 6, 8])  # mono, stereo, 3.0, an A-format array, 5.1, 7.1
def test_every_channel_comes_out_as_its_own_row_with_its_own_samples(tmp_path, channels):
    rng = np.random.default_rng(channels)
    t = np.arange(2 * RATE) / RATE
    audio = np.stack([0.05 * (k + 1) * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.001 * rng.standard_normal(len(t))
                      for k in range(channels)]).astype(np.float32)
    path = write_media(tmp_path / f"x{channels}.flac", audio, rate=RATE)  # lossless: the samples come back as written
    split, mix = Hearing(RATE, split=True), Hearing(RATE)
    got = _decoded(path, [split, mix])
    assert got[split].shape == (channels, audio.shape[1]) and got[mix].shape == (audio.shape[1],)
    assert np.allclose(got[split], audio, atol=1e-4)
    assert np.abs(got[mix]).max() > 0


def test_a_split_hearing_at_another_rate_keeps_each_channel_apart(tmp_path):
    t = np.arange(RATE) / RATE
    left, right = np.sin(2 * np.pi * 300 * t), np.zeros_like(t)
    path = write_media(tmp_path / "pair.wav", np.stack([left, right]).astype(np.float32) * 0.5, rate=RATE)
    got = _decoded(path, [Hearing(8_000, split=True)])[Hearing(8_000, split=True)]
    assert got.shape == (2, 8_000)
    assert np.abs(got[0]).max() > 0.4 and np.abs(got[1]).max() < 1e-4  # nothing leaks from one into the other


def test_a_layout_swresample_cannot_downmix_is_mixed_as_the_mean_of_its_channels(tmp_path):
    """32 channels of no known order: swresample builds no mono downmix for them, so the mix is their mean."""
    channels = 32
    t = np.arange(RATE) / RATE
    audio = np.stack([0.02 * (k + 1) * np.sin(2 * np.pi * (100 + 50 * k) * t) for k in range(channels)])
    pcm = (audio.T * 32767).astype("<i2")
    path = tmp_path / "array32.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    split, mix = Hearing(RATE, split=True), Hearing(RATE)
    got = _decoded(path, [split, mix])
    assert np.allclose(got[split], audio, atol=1e-3)
    assert np.allclose(got[mix], audio.mean(axis=0), atol=1e-3)
