"""Labels survive every format they are exported in: export, import, and the same labels come back.

Names are generated (seeded) from the pieces that break naive writers and readers: unicode,
quotes, commas, semicolons, a leading '=' (spreadsheet formulas), brackets, digits.
"""

from __future__ import annotations

import json
import random

import pytest

from audioscan.errors import UserError
from audioscan.query import formats
from audioscan.query.label_files import parse_audacity, parse_csv, parse_json, parse_raven
from audioscan.query.labels import check_label_name, to_csv
from audioscan.query.moments import Moment

PIECES = ["bird", "Door knock", "é", "ß", "日本", "🔔", '"', "'", ",", ";", "=", "+", "-", "@", "(", ")", "[x]",
          "0.86", " ", "|", "\\", "%", "#", "~", "a b", "1", "NEG"]


def _names(seed: int, count: int = 12) -> list[str]:
    rng = random.Random(seed)
    names = []
    while len(names) < count:
        name = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 5))).strip()
        try:
            check_label_name(name)
        except UserError:
            continue  # a name refused where it enters never reaches an export
        names.append(name)
    return names


class _Item:  # what labels.to_csv reads: a label with its media file
    def __init__(self, label: str, positive: bool, start: float, channel: int) -> None:
        self.label, self.positive, self.start, self.end, self.kind = label, positive, start, start + 1.5, "range"
        self.channel = channel
        self.media = type("Media", (), {"path": "/media/a b.wav", "site": None})()

    def clock(self) -> None:  # a file whose recording start is not known
        return None


@pytest.mark.parametrize("seed", range(40))
def test_every_format_gives_back_the_same_labels(seed):
    names = _names(seed)
    wanted = [(name, float(i), float(i) + 1.5, i % 3 != 0) for i, name in enumerate(names)]
    channels = [i % 4 for i in range(len(wanted))]  # 0: the whole file; else one channel of a split set
    moments = [Moment("/media/a b.wav", start, end=end, score=None, label=name, negative=not positive, channel=channel)
               for (name, start, end, positive), channel in zip(wanted, channels)]
    items = [_Item(name, positive, start, channel) for (name, start, _, positive), channel in zip(wanted, channels)]
    csv_rows = parse_csv(to_csv(items), "x.csv", label=None, negative=False)
    assert [row[1:5] for row in csv_rows] == wanted
    assert [row.channel for row in csv_rows] == channels
    raven = parse_raven(formats.render("raven", moments, combined=True), "x.txt", negative=False)
    assert [row[1:5] for row in raven] == wanted
    assert [row.channel for row in raven] == [max(1, c) for c in channels]  # Raven counts from 1: the mix is 1
    mixed = [m.__class__(**{**m.__dict__, "channel": 0}) for m in moments]
    whole = parse_raven(formats.render("raven", mixed, combined=True), "x.txt", negative=False)
    assert [row.channel for row in whole] == [0] * len(wanted)  # every row on channel 1: whole files, as written
    listed = json.dumps([{"path": "/media/a b.wav", "start": start, "end": end, "label": name, "kind": "range",
                          "negative": not positive, "channel": channel}
                         for (name, start, end, positive), channel in zip(wanted, channels)])  # as labels list writes
    from_json = parse_json(listed, "x.json", media=None, label=None, negative=False)
    assert [row[1:5] for row in from_json] == wanted
    assert [row.channel for row in from_json] == channels
    audacity = parse_audacity(formats.render("audacity", moments), "x.txt", label=None, negative=False)
    assert [(row.label, row.start, pytest.approx(row.end), row.positive) for row in audacity] == wanted


@pytest.mark.parametrize("name", ["bird (negative)", "bird 0.86", "a\tb", "a\nb", "x" * 201, "  "])
def test_names_no_format_could_give_back_are_refused_where_they_enter(name):
    with pytest.raises(UserError):
        check_label_name(name)
