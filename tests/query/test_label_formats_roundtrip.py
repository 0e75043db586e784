"""Every format ``labels list`` writes imports back to the same labels: markers, negatives, and names
with separators, commas, quotes and odd Unicode.  The formats come from the command itself (its
``--format`` choices, less the printed table); the ones for video editors hold whole frames, so
their times come back within half a frame."""

from __future__ import annotations

import pytest

import audioscan

from audioscan.cli.query import labels_list
from audioscan.indexer.store.store import Store
from audioscan.query.formats import EDITOR_FORMATS
from tests.query.helpers import cli

FORMATS = [fmt for fmt in next(p.type.choices for p in labels_list.params if p.name == "fmt") if fmt != "table"]
HALF_FRAME = 0.5 / 24  # the slowest rate a file of the world has, or 25 fps for audio
NAMES = ["dog/bark", 'say "hi", ok', "a;b\\c|d", "日本 🔔 ß", "=SUM(1)", "-1", "<b>bold</b>", "tab'quote"]
MEDIA = {"long": "long.mkv", "other": "other.flac"}


def _labels(world) -> set:
    with Store.open(world / "store") as store:
        return {(i.media.rel, i.label, i.start, i.end, i.kind, i.positive) for i in store.labels()}


def _same(after: set, before: set, fmt: str) -> bool:
    """The same labels: exactly, or for a format in frames the same names, kinds and signs on the same
    files at times within half a frame."""
    if fmt not in EDITOR_FORMATS:
        return after == before
    def key(item):
        return item[0], item[1], item[4], item[5], round(item[2])
    pairs = dict(zip(sorted(before, key=key), sorted(after, key=key)))
    return len(after) == len(before) and all(
        key(a) == key(b) and abs(a[2] - b[2]) <= HALF_FRAME and abs(a[3] - b[3]) <= HALF_FRAME
        for b, a in pairs.items())


def _add_every_kind(world) -> None:
    rows = []
    for number, name in enumerate(NAMES):
        rows += [("long.mkv", name, 20.125 + 7 * number, 22.625 + 7 * number, True),
                 ("other.flac", name, 1.5 + number, None, True),  # a marker
                 ("long.mkv", name, 150.0 + number, 151.75 + number, False)]
    assert audioscan.open(world / "store").labels.add_rows(rows).added == len(rows)


def _remove_all(world) -> None:
    labels = audioscan.open(world / "store").labels
    labels.remove([item.id for item in labels.list()])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_written_imports_back_to_the_same_labels(world, fmt):
    _add_every_kind(world)
    before = _labels(world)
    exported = []
    combined = cli(world, "labels", "list", "--format", fmt, "--out", str(world / f"all.{fmt}"))
    if combined.exit_code == 0:
        exported.append((world / f"all.{fmt}", None))
    listed = cli(world, "labels", "list", "--format", fmt, "--out-dir", str(world / "each"))
    assert listed.exit_code == 0, listed.stderr
    exported += [(path, MEDIA[path.stem]) for path in sorted((world / "each").iterdir()) if not path.name.startswith(".")]
    for path, media in exported:
        _remove_all(world)
        options = ["--media", media] if media is not None and fmt in ("raven", "audacity") else []
        imported = cli(world, "labels", "import", str(path), *options)
        assert imported.exit_code == 0, (path.name, imported.stderr)
        if media is not None:  # one file per media file: the others come back from their own files
            for other, other_media in exported:
                if other_media not in (None, media):
                    extra = [] if fmt not in ("raven", "audacity") else ["--media", other_media]
                    assert cli(world, "labels", "import", str(other), *extra).exit_code == 0
        assert _same(_labels(world), before, fmt), (path.name, _labels(world) ^ before)
