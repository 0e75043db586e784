"""``index build --channels split``: each channel of a multichannel file is a stream of its own, and
search, labels, train, rescore, filters and every output format say and keep the channel.

The library: ``array.flac``, three channels each holding its own sound at its own time over room
noise (a siren on 1 at 10-14 s, a chirp on 2 at 24-28 s, a hum-like chirp on 3 at 34-38 s), a mono
``mono.wav`` with a siren at 5-9 s, and two minutes of room noise for the library's background.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import audioscan
from audioscan.indexer.media.cut import read_span
from audioscan.indexer.media.samples import scene, write_media
from audioscan.indexer.store.store import Store
from audioscan.api.summaries import detections_over_time
from audioscan.query import formats
from audioscan.query.export import write_moments
from audioscan.query.moments import Moment
from audioscan.query.training import training_set
from tests.query.helpers import cli

RATE = 16_000
SPLIT = "LOGMEL-w8-h1-split"
EVENTS = {1: ("siren", 10, 14), 2: ("chirp", 24, 28), 3: ("siren", 34, 38)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("channels")
    media = root / "media"
    channels = [scene(45, RATE, background="rain", events=[EVENTS[c]], seed=c) for c in (1, 2, 3)]
    write_media(media / "array.flac", np.stack(channels), rate=RATE)
    write_media(media / "mono.wav", scene(30, RATE, background="rain", events=[("siren", 5, 9)], seed=7), rate=RATE)
    write_media(media / "room.flac", scene(120, RATE, background="rain", events=[], seed=9), rate=RATE)
    for channel, samples in zip((1, 2, 3), channels):  # each channel alone, as a mono file of its own
        write_media(root / "alone" / f"ch{channel}.flac", samples, rate=RATE)
    assert cli(root, "index", "build", str(media)).exit_code == 0
    built = cli(root, "index", "build", str(media), "--channels", "split")
    assert built.exit_code == 0, built.stderr
    return root


def _windows(store, name):
    with Store.open(store) as opened:
        snapshot = opened.snapshot(opened.find_set(name))
        rels = np.asarray([snapshot.media[int(m)].rel for m in snapshot.media_ids])
        return snapshot, rels, snapshot.vectors()


def test_each_channel_is_indexed_as_the_mono_file_of_that_channel_alone(world, tmp_path):
    split, rels, vectors = _windows(world / "store", SPLIT)
    assert sorted(set(split.channels[rels == "array.flac"].tolist())) == [1, 2, 3]
    assert set(split.channels[rels == "mono.wav"].tolist()) == {1}  # a mono file's one channel
    mixed, mixed_rels, _ = _windows(world / "store", "LOGMEL-w8-h1")
    assert set(mixed.channels.tolist()) == {0}
    for channel in (1, 2, 3):  # the same windows as the mix, once a channel
        mine = (rels == "array.flac") & (split.channels == channel)
        assert np.array_equal(split.starts[mine], mixed.starts[mixed_rels == "array.flac"])
    assert cli(tmp_path, "index", "build", str(world / "alone")).exit_code == 0
    alone, alone_rels, alone_vectors = _windows(tmp_path / "store", None)
    for channel in (1, 2, 3):
        mine = (rels == "array.flac") & (split.channels == channel)
        theirs = alone_rels == f"ch{channel}.flac"
        assert np.allclose(vectors[mine], alone_vectors[theirs], atol=1e-3)
    assert cli(world, "index", "check").exit_code == 0


def test_a_search_finds_the_sound_on_its_channel_and_every_format_says_which(world):
    found = json.loads(cli(world, "search", "--from", "mono.wav", "--at", "7", "-m", SPLIT, "-k", "3",
                           "--format", "json").stdout)
    top = found[0]
    assert top["path"].endswith("array.flac") and top["channel"] == 1 and 10 <= top["peak"] <= 14
    siren_on_3 = [h for h in found if h["path"].endswith("array.flac") and h["channel"] == 3]
    assert siren_on_3 and 34 <= siren_on_3[0]["peak"] <= 38  # the same sound on another channel is its own hit
    only = json.loads(cli(world, "search", "--from", "mono.wav", "--at", "7", "-m", SPLIT, "-k", "5",
                          "--channel", "3", "--format", "json").stdout)
    assert only and {h["channel"] for h in only} == {3}
    raven = cli(world, "search", "--from", "mono.wav", "--at", "7", "-m", SPLIT, "-k", "3", "--format", "raven")
    rows = [line.split("\t") for line in raven.stdout.splitlines()]
    column = rows[0].index("Channel")
    assert {row[column] for row in rows[1:]} == {str(h["channel"]) for h in found}


def test_a_stored_query_of_a_multichannel_file_names_its_channel(world):
    unsaid = cli(world, "search", "--from", "array.flac", "--at", "12", "-m", SPLIT)
    assert unsaid.exit_code == 1 and "--from-channel (one of 1, 2, 3)" in unsaid.stderr
    said = json.loads(cli(world, "search", "--from", "array.flac", "--at", "12", "--from-channel", "1", "-m", SPLIT,
                          "--format", "json").stdout)
    assert all(not (h["path"].endswith("array.flac") and h["channel"] == 1 and h["start"] < 14 and h["end"] > 10)
               for h in said)  # the query's own window is left out, on its own channel only
    assert any(h["path"].endswith("mono.wav") for h in said[:2])
    absent = cli(world, "search", "--from", "array.flac", "--at", "12", "--from-channel", "4", "-m", SPLIT)
    assert absent.exit_code == 1 and "no channel 4" in absent.stderr
    mixed = cli(world, "search", "--from", "array.flac", "--at", "12", "--from-channel", "1", "-m", "LOGMEL-w8-h1")
    assert mixed.exit_code == 1 and "one mono mix" in mixed.stderr


@pytest.fixture(scope="module")
def trained(world):
    """A siren labelled on channel 1 of the array (and its channel 2 said to hold none), and on the mono
    file as a whole; a detector trained on the split set from them."""
    lib = audioscan.open(world / "store")
    lib.labels.add("array.flac", 10, end=14, label="siren", channel=1)
    lib.labels.add("array.flac", 24, end=28, label="siren", channel=2, negative=True)
    lib.labels.add("mono.wav", 5, end=9, label="siren")
    assert cli(world, "train", "siren", "-m", SPLIT).exit_code == 0
    return lib


def test_a_label_of_one_channel_trains_that_channel_and_its_detections_stay_there(world, trained):
    lib = trained
    listed = {(item.media.rel, item.channel, item.positive) for item in lib.labels.list("siren")}
    assert listed == {("array.flac", 1, True), ("array.flac", 2, False), ("mono.wav", 0, True)}
    with Store.open(world / "store") as store:
        snapshot = store.snapshot(store.find_set(SPLIT), stats=True)
        data = training_set(store, snapshot, label="siren")
    positives = data.window_ids[data.y == 1]
    at = np.searchsorted(snapshot.ids, positives)
    on_array = snapshot.media_ids[at] == next(m.id for m in snapshot.media.values() if m.rel == "array.flac")
    assert on_array.any() and set(snapshot.channels[at][on_array].tolist()) == {1}
    found = json.loads(cli(world, "rescore", "siren", "--threshold", "0.5", "--format", "json").stdout)
    array = [(h["channel"], h["peak"]) for h in found if h["path"].endswith("array.flac")]
    assert any(channel == 1 and 10 <= peak <= 14 for channel, peak in array)
    assert not any(channel == 2 and 10 <= peak <= 14 for channel, peak in array)  # rain there, no siren
    exported = cli(world, "labels", "list", "--label", "siren", "--format", "csv").stdout
    assert exported.splitlines()[0].endswith(",channel")


@pytest.mark.parametrize("fmt", formats.TEXT_FORMATS)
def test_every_format_says_the_channel_or_refuses_what_it_cannot_say(fmt, tmp_path):
    moments = [Moment("/m/array.flac", 10.0, end=18.0, score=0.9, label="siren", peak=12.0, channel=2),
               Moment("/m/array.flac", 30.0, end=38.0, score=0.8, label="siren", peak=35.0, channel=3)]
    if fmt == "audacity":  # a label track has no channel: two channels of one file cannot share one
        with pytest.raises(audioscan.UserError, match="no place for a channel"):
            write_moments(moments, fmt, out=tmp_path / "track.txt")
        text = formats.render(fmt, moments[:1])
        assert text.startswith("10.000000\t18.000000\tsiren")  # one channel's track is written as it is
        return
    text = formats.render(fmt, moments)
    if fmt in ("csv", "json", "ndjson"):
        rows = (json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
                if fmt == "ndjson" else [dict(zip(text.splitlines()[0].split(","), line.split(",")))
                                         for line in text.splitlines()[1:]])
        assert [int(row["channel"]) for row in rows] == [2, 3]
    elif fmt == "raven":
        lines = [line.split("\t") for line in text.splitlines()]
        assert [row[lines[0].index("Channel")] for row in lines[1:]] == ["2", "3"]
    else:  # edl, markers: the channel goes in the note each event carries
        assert "channel 2" in text and "channel 3" in text


def test_parquet_keeps_each_windows_channel_and_imports_back_as_a_split_set(world, tmp_path):
    out = tmp_path / "split.parquet"
    assert cli(world, "vectors", "export", "-m", SPLIT, "--format", "parquet", "--out", str(out),
               "--labels").exit_code == 0
    import pyarrow.parquet as pq
    table = pq.read_table(out, columns=["path", "channel"])
    assert set(table.column("channel").to_pylist()) == {1, 2, 3}
    imported = cli(tmp_path, "vectors", "import", str(out), "--format", "parquet")
    assert imported.exit_code == 0, imported.stderr
    again, again_rels, _ = _windows(tmp_path / "store", None)
    split, rels, _ = _windows(world / "store", SPLIT)
    assert sorted(zip(again_rels.tolist(), again.channels.tolist(), again.starts.tolist())) == \
        sorted(zip(rels.tolist(), split.channels.tolist(), split.starts.tolist()))
    refused = cli(world, "vectors", "export", "-m", SPLIT, "--format", "hoplite", "--out", str(tmp_path / "db"))
    assert refused.exit_code == 1 and "channel" in refused.stderr and not (tmp_path / "db").exists()


def test_a_clip_of_a_channels_moment_is_that_channel_alone_and_the_manifest_says_which(world, tmp_path):
    moments = tmp_path / "moments.csv"
    moments.write_text("path,start,end,label,channel\narray.flac,24,28,chirp,2\narray.flac,24,28,chirp,0\n")
    out = tmp_path / "clips"
    made = cli(world, "export", "clips", str(moments), "--out-dir", str(out), "--format", "flac")
    assert made.exit_code == 0, made.stderr
    rows = list(csv.DictReader(io.StringIO((out / "clips.csv").read_text())))
    assert [row["channel"] for row in rows] == ["2", "0"]
    alone, whole = (read_span(out / row["clip"], 0, end=4) for row in rows)
    assert "_ch2" in rows[0]["clip"] and alone.samples.shape[0] == 1 and whole.samples.shape[0] == 3
    source = read_span(world / "media" / "array.flac", 24, end=28)
    assert np.allclose(alone.samples[0], source.samples[1])  # the second channel, sample for sample
    again = cli(world, "export", "clips", str(moments), "--out-dir", str(out), "--format", "flac")
    assert again.exit_code == 0 and len(list(out.glob("*.flac"))) == 2  # found again by the manifest, not cut anew


def test_a_summary_counts_each_channels_audio_as_scored(trained):
    lib = trained
    rows = detections_over_time(lib.detector("siren"), "site")
    mixed_hours = sum(item.duration for item in lib.media().values() if item.status == "ok") / 3600
    assert sum(row.hours for row in rows) == pytest.approx(mixed_hours + 2 * 45 / 3600, abs=2e-3)  # 3 streams
