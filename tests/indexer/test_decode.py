import numpy as np
import pytest

from audioscan.indexer.media.decode import decode, decode_all, probe
from audioscan.indexer.media.samples import write_media
from tests.conftest import tone_file


@pytest.mark.parametrize("name,rate,stereo,video", [
    ("x.wav", 44_100, False, False), ("x.flac", 48_000, True, False), ("x.mp3", 44_100, False, False),
    ("x.m4a", 48_000, True, False), ("x.mp4", 44_100, False, True), ("x.mkv", 48_000, True, False),
    ("x.webm", 48_000, False, False), ("x.ogg", 48_000, False, False), ("x.mov", 44_100, False, True),
    ("x.avi", 44_100, True, False),
])
def test_every_container_decodes_to_mono_16k_of_the_right_length(tmp_path, name, rate, stereo, video):
    path = tone_file(tmp_path / name, 5.0, "siren", rate, stereo=stereo, video=video)
    assert probe(path).is_media and probe(path).error is None
    audio = decode_all(path, 16_000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Codec priming/padding adds at most a few tens of milliseconds.
    assert abs(len(audio) / 16_000 - 5.0) < 0.08
    assert 0.2 < np.abs(audio).max() <= 1.5


def test_stereo_downmixes_like_ffmpeg_ac_1(tmp_path):
    """libswresample's stereo-to-mono matrix, as 'ffmpeg -ac 1' in the original scan: 0.7071 (L + R)."""
    rate = 16_000
    left = np.full(rate, 0.5, dtype=np.float32)
    path = write_media(tmp_path / "s.wav", np.stack([left, -left * 0.2]), rate=rate)
    audio = decode_all(path, rate)
    assert np.allclose(audio[100:-100], np.sqrt(0.5) * (0.5 - 0.1), atol=1e-3)


def test_blocks_stream_and_several_rates_come_from_one_pass(tmp_path):
    path = tone_file(tmp_path / "long.flac", 25.0, "hum", 48_000)
    sizes: dict[int, list[int]] = {16_000: [], 8_000: []}
    for rate, block in decode(path, [16_000, 8_000], block_seconds=4.0):
        sizes[rate].append(len(block))
    assert max(sizes[16_000]) == 64_000 and max(sizes[8_000]) == 32_000
    assert abs(sum(sizes[16_000]) - 25 * 16_000) <= 16 and abs(sum(sizes[8_000]) - 25 * 8_000) <= 8


def test_a_range_is_cut_exactly(tmp_path):
    rate = 16_000
    ramp = (np.arange(10 * rate) / (10 * rate)).astype(np.float32)
    path = write_media(tmp_path / "ramp.flac", ramp, rate=rate)
    part = decode_all(path, rate, start=3.0, end=4.5)
    assert len(part) == int(1.5 * rate)
    assert abs(part[0] - 0.3) < 2e-3 and abs(part[-1] - 0.45) < 2e-3


def test_truncated_file_duration_comes_from_decoded_samples(tmp_path):
    path = tone_file(tmp_path / "t.mp3", 10.0, "siren", 44_100)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    audio = decode_all(path, 16_000)
    assert 3.5 < len(audio) / 16_000 < 6.5


def test_probe_tells_media_from_other_files_and_says_why(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "junk.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 100)
    assert not probe(tmp_path / "notes.txt").is_media
    assert "empty" in probe(tmp_path / "empty.mp3").error
    junk = probe(tmp_path / "junk.mkv")
    assert junk.is_media and "not a readable media file" in junk.error
