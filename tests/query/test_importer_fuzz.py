"""Every importer (CSV, Raven, Audacity, JSON, moments CSV) against generated files: each ends in rows or in one sentence, never a traceback.

Files are built from the pieces real exports and hand edits contain - headers, times in every
notation, delimiters, quotes, unicode, control characters, short and long rows, huge numbers,
cells past the csv module's limit - recombined at random (seeded, so a failure reproduces).
"""

from __future__ import annotations

import json
import random

import pytest

from audioscan.errors import UserError
from audioscan.query.label_files import read_label_file, read_moments_file

TIMES = ["0", "1.5", "12:34.5", "1:02:03.250", "-3", "nan", "inf", "1e999", "1" * 400, "9" * 5000 + ":00:00",
         "12:99", "", " ", "abc", "0x10", "١٢", "3,5"]
TEXTS = ["siren", "door knock", "é", "🔔", "=cmd|' /C calc'!A0", '"quoted, comma"', "tab\there", "line\nbreak",
         "nul\x00", "", "x" * 300, "a;b", "\ufeff", " (negative)", "bird 0.86"]
PATHS = ["long.mkv", "/abs/path/a.wav", "dir/b.flac", "", "no such file.mp3", "..\\..\\x", "C:\\media\\c.mp4"]
HEADERS = ["path,start,end,label", "path;start;end;label;negative", "path\tstart\tend\tlabel\tscore", "start,end",
           "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tLabel",
           "Selection\tBegin File\tBegin Time (s)\tEnd Time (s)\tFile Offset (s)\tAnnotation", ""]


def _row(rng: random.Random, delimiter: str) -> str:
    cells = [rng.choice(PATHS), rng.choice(TIMES), rng.choice(TIMES), rng.choice(TEXTS), rng.choice(["", "1", "yes"])]
    cells = cells[: rng.randint(0, len(cells) + 2)] + [rng.choice(TEXTS)] * rng.randint(0, 2)
    return delimiter.join(cells)


def _json(rng: random.Random) -> str:
    values = [None, True, 5, -1.5, 1e308, "x", [], {}] + TIMES + TEXTS + PATHS
    items = [{key: rng.choice(values) for key in rng.sample(["path", "start", "end", "label", "kind", "negative"],
                                                             rng.randint(0, 6))} for _ in range(rng.randint(0, 5))]
    text = json.dumps(rng.choice([items, items[:1] * 2, {"labels": items}, "[", 7]))
    return text if rng.random() < 0.9 else text[: rng.randint(1, max(1, len(text)))]


def _file(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return _json(rng)
    if rng.random() < 0.1:
        return "x" * 140_000 + "\n1,2,3\n"  # one cell past the csv module's field limit
    delimiter = rng.choice([",", ";", "\t", "|"])
    lines = [rng.choice(HEADERS)] + [_row(rng, delimiter) for _ in range(rng.randint(0, 6))]
    if rng.random() < 0.2:
        lines.append("\\t1000\t8000")  # an Audacity frequency line
    return rng.choice(["\n", "\r\n", "\r"]).join(lines) + rng.choice(["", "\n"])


@pytest.mark.parametrize("seed", range(300))
def test_every_importer_ends_in_rows_or_a_sentence(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "labels.txt"
    path.write_bytes(_file(rng).encode("utf-8", "surrogatepass"))
    for read in (lambda: read_label_file(path), lambda: read_label_file(path, media="long.mkv"),
                 lambda: read_label_file(path, label="forced", negative=True), lambda: read_moments_file(path)):
        try:
            rows = read()
        except UserError as err:
            assert str(err) and "\n" not in str(err) and len(str(err)) < 1000
            continue
        for row in rows:
            assert all(isinstance(time, float) for time in row if isinstance(time, float))
