"""Every option of ``export clips`` is honoured in every clip format or refused in one sentence, and
a clip counts as "already there" only when the same clip with the same options is there."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import av
import pytest

from audioscan.api.options import CLIP_FORMATS
from audioscan.query.clips import export_clips
from audioscan.query.errors import QueryError
from audioscan.query.moments import Moment
from tests.conftest import tone_file
from tests.query.helpers import cli

SOURCE_RATE = 48_000
RATES = (None, 16_000, 11_000)  # the source's, one every format stores, one AAC cannot store
CHANNELS = (None, 1, 2)
AAC_RATES = set(av.codec.Codec("aac", "w").audio_rates)  # what an MP4 clip's sound can be stored at


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A mono 48 kHz video, the issue's source: every format can be cut from it, mp4 keeping its picture."""
    return tone_file(tmp_path_factory.mktemp("clip-source") / "scene.mp4", 4, "siren", SOURCE_RATE, video=True)


def moment(path: Path) -> Moment:
    return Moment(str(path), 1.0, end=2.5, score=0.9, label="siren", duration=4.0, peak=1.7, onset=1.4, offset=2.2)


def shape(path: Path) -> tuple[str, int, int]:
    """(container suffix, sample rate, channels) of a written clip, as PyAV reads it back."""
    with av.open(str(path)) as container:
        sound = container.streams.audio[0].codec_context
        return path.suffix, sound.sample_rate, sound.channels


@pytest.mark.parametrize("fmt,rate,channels", list(itertools.product(CLIP_FORMATS, RATES, CHANNELS)))
def test_every_format_honours_rate_and_channels_or_refuses_them(tmp_path, source, fmt, rate, channels):
    if fmt == "mp4" and rate is not None and rate not in AAC_RATES:
        with pytest.raises(QueryError, match=f"cannot be stored at {rate} Hz") as refused:
            export_clips([moment(source)], tmp_path / "out", fmt=fmt, rate=rate, channels=channels)
        assert "\n" not in str(refused.value) and not (tmp_path / "out").exists()
        return
    report = export_clips([moment(source)], tmp_path / "out", fmt=fmt, rate=rate, channels=channels)
    assert not report.failed and len(report.written) == 1
    assert shape(report.written[0]) == (f".{fmt}", rate or SOURCE_RATE, channels or 1)


# Each run after the first changes one option that changes a clip's bytes.
CHANGED = {"format flac": {"fmt": "flac"}, "format mp4": {"fmt": "mp4"}, "rate": {"rate": 16_000},
           "channels": {"channels": 2}, "length": {"length": 3.0}, "pad": {"pad": 0.25}, "tight": {"tight": True}}


@pytest.mark.parametrize("change", list(CHANGED))
def test_a_clip_is_already_there_only_with_the_same_options(tmp_path, source, change):
    out = tmp_path / "out"
    first = export_clips([moment(source)], out)
    other = export_clips([moment(source)], out, **CHANGED[change])
    again = export_clips([moment(source)], out, **CHANGED[change])
    plain = export_clips([moment(source)], out)
    assert (len(first.written), len(other.written), len(again.written), len(plain.written)) == (1, 1, 0, 0)
    assert (other.skipped, again.skipped, plain.skipped) == (0, 1, 1)
    assert other.written[0] != first.written[0] and first.written[0].is_file()


@pytest.mark.parametrize("options,says", [
    ({"length": 3.0, "pad": 0.5}, "give one of them"), ({"length": 3.0, "tight": True}, "give one of them"),
    ({"channels": 3}, "give 1 (mono) or 2 (stereo)"), ({"rate": 0}, "is not a sample rate")])
def test_options_that_cannot_be_honoured_together_are_refused(tmp_path, source, options, says):
    with pytest.raises(QueryError, match=re.escape(says)):
        export_clips([moment(source)], tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_tight_is_refused_for_moments_that_carry_no_onset(tmp_path, source):
    """A label or a listed span has no estimated onset: ``tight`` would cut it whole, silently."""
    listed = Moment(str(source), 1.0, end=2.5, label="siren")
    with pytest.raises(QueryError, match="1 of these 2 moments carry none"):
        export_clips([moment(source), listed], tmp_path / "out", tight=True)


@pytest.mark.parametrize("extra,says", [(["-k", "3"], "-k goes with --from-search"),
                                        (["-m", "LOGMEL"], "--model goes with --from-search"),
                                        (["--threshold", "0.2"], "--threshold goes with --from-rescore"),
                                        (["--precision", "0.9"], "--precision goes with --from-rescore"),
                                        (["--label", "siren"], "--label goes with --from-labels")])
def test_an_option_of_another_source_is_refused(tmp_path, source, extra, says):
    (tmp_path / "m.csv").write_text(f"path,start,end,label\n{source},1,2,siren\n")
    result = cli(tmp_path, "--store", str(tmp_path / "store"), "export", "clips", str(tmp_path / "m.csv"),
                 "--out-dir", str(tmp_path / "out"), *extra)
    assert result.exit_code == 2 and says in result.stderr and not (tmp_path / "out").exists()
