"""Whatever a user types or imports, the answer is a result or one sentence, never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audioscan.cli import main
from audioscan.indexer.store.store import Store
from audioscan.query.export import file_names, write_audacity
from audioscan.query.formats import to_csv
from audioscan.query.moments import Moment
from audioscan.query.label_files import parse_csv
from tests.conftest import tone_file
from tests.query.helpers import cli, label_sirens


def _sentence(result) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stderr.strip().startswith("Error:")
    assert result.stderr.strip().count("\n") == 0, result.stderr


@pytest.mark.parametrize("times", [["nan", "10"], ["5", "inf"], ["-1", "4"], ["10", "10"], ["12", "4"]])
def test_label_times_that_are_not_a_range_are_refused(world, times):
    _sentence(cli(world, "labels", "add", "long.mkv", "--", *times, "siren"))


@pytest.mark.parametrize("args", [["--start", "-1"], ["--end", "nan"], ["--end", "inf"], ["--start", "nan"]])
def test_search_times_that_are_not_a_range_are_refused(world, tmp_path, args):
    clip = tone_file(tmp_path / "q.wav", 3, "siren")
    _sentence(cli(world, "search", str(clip), *args))


def test_search_at_nan_and_bad_devices_are_sentences(world, tmp_path):
    _sentence(cli(world, "search", "--from", "long.mkv", "--at", "nan"))
    clip = tone_file(tmp_path / "q.wav", 3, "siren")
    _sentence(cli(world, "search", str(clip), "--device", "bogus"))
    _sentence(cli(world, "search", str(clip), "--device", "cuda:7"))


def test_a_clip_far_shorter_than_a_window_is_padded_like_a_short_file(world, tmp_path):
    clip = tone_file(tmp_path / "tiny.wav", 0.05, "siren")
    result = cli(world, "search", str(clip), "-k", "2", "--format", "json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 2


def test_duplicates_unknown_ids_and_contradictions(world):
    assert cli(world, "labels", "add", "long.mkv", "20", "30", "siren").exit_code == 0
    again = cli(world, "labels", "add", "long.mkv", "20", "30", "siren")
    assert again.exit_code == 0 and "nothing added" in again.stdout
    with Store.open(world / "store") as store:
        assert len(store.labels("siren")) == 1
    _sentence(cli(world, "labels", "remove", "999"))
    clash = cli(world, "labels", "add", "long.mkv", "25", "40", "siren", "--negative")
    assert clash.exit_code == 0 and "overlap" in clash.stderr


@pytest.mark.parametrize("text,encoding", [("path;start;end;label\nlong.mkv;20;30;siren\n", "utf-8"),
                                           ("path\tstart\tend\tlabel\nlong.mkv\t20\t30\tsiren\n", "utf-8"),
                                           ("\ufeffpath,start,end,label\nlong.mkv,20,30,siren\n", "utf-8")])
def test_label_files_in_the_shapes_spreadsheets_write(world, text, encoding):
    (world / "l.csv").write_bytes(text.encode(encoding))
    result = cli(world, "labels", "import", str(world / "l.csv"))
    assert result.exit_code == 0 and "imported 1" in result.stdout


@pytest.mark.parametrize("data", ["path,start,end,label\nlong.mkv,20,30,sirène\n".encode("latin-1"), b"",
                                  b"path,start,end,label\nlong.mkv\n", b"long.mkv,abc,30,siren\n"])
def test_label_files_that_cannot_be_read_are_sentences(world, data):
    (world / "bad.csv").write_bytes(data)
    _sentence(cli(world, "labels", "import", str(world / "bad.csv")))


def test_output_names_never_collide_escape_or_overflow(tmp_path):
    long = "x" * 250
    paths = ["/m/clip.wav", "/m/clip.mp3", "/n/clip.wav", f"/m/{long}.wav", "/m/../../etc/passwd", "/m/a:b?.wav"]
    names = file_names(paths, ".txt")
    assert len(set(n.lower() for n in names.values())) == len(paths)
    assert all("/" not in n and len(n.encode()) <= 210 for n in names.values())
    written = write_audacity([(p, 1.0, 2.0, "x") for p in paths], tmp_path / "out")
    assert len(written) == len(paths) and all(w.parent == tmp_path / "out" for w in written)


def test_csv_cells_that_spreadsheets_would_run_are_neutralised():
    text = to_csv([Moment("=HYPERLINK(\"http://x\")", 1.0, end=2.0, score=0.5, label="+cmd")])
    import csv
    import io

    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0].startswith("'=") and row[4] == "'+cmd"
    assert parse_csv(text, "x", label=None, negative=False)[0][0] == "=HYPERLINK(\"http://x\")"  # read back as written


def test_writing_into_a_missing_folder_is_a_sentence(world):
    label_sirens(world)
    assert cli(world, "train", "siren").exit_code == 0
    _sentence(cli(world, "rescore", "siren", "--format", "csv", "--out", str(world / "missing" / "x.csv")))


def test_ctrl_c_during_a_catalog_read_is_exit_130_without_a_traceback(world, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "snapshot", interrupted)
    result = CliRunner().invoke(main, ["--store", str(world / "store"), "search", "--from", "long.mkv", "--at", "3"])
    assert result.exit_code == 130 and "Traceback" not in result.output and "interrupted" in result.stderr


def test_a_store_that_cannot_be_written_is_a_sentence(world, monkeypatch):
    from audioscan.indexer.store import lock

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(lock.FileLock, "acquire", denied)
    _sentence(cli(world, "index", "build", str(world / "media")))


def test_options_work_before_and_after_the_command(world):
    before = CliRunner().invoke(main, ["--store", str(world / "store"), "-q", "index", "status", "--format", "json"])
    after = CliRunner().invoke(main, ["index", "status", "--format", "json", "--store", str(world / "store"), "-q"])
    assert before.exit_code == after.exit_code == 0 and json.loads(before.stdout) == json.loads(after.stdout)


def test_ctrl_c_promises_kept_work_only_where_there_is_some(world, monkeypatch):
    from audioscan.api import labels, library

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(library.Library, "search", interrupted)
    monkeypatch.setattr(labels.Labels, "add", interrupted)
    reading = cli(world, "search", "--from", "long.mkv", "--at", "25")
    assert reading.exit_code == 130 and reading.stderr.strip() == "interrupted"
    writing = cli(world, "labels", "add", "long.mkv", "20", "30", "siren")
    assert writing.exit_code == 130 and "everything committed so far is kept" in writing.stderr


def test_exports_never_replace_what_the_user_wrote(world, tmp_path):
    """A per-file export, or a clip manifest, lands beside the user's own files without replacing them."""
    label_sirens(world)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "long.txt"
    mine.write_text("my own Raven table\n")
    refused = cli(world, "labels", "list", "--format", "raven", "--out-dir", str(out))
    assert refused.exit_code == 1 and "audioscan did not write it" in refused.stderr
    assert mine.read_text() == "my own Raven table\n" and not (out / "other.txt").exists()  # nothing half-written
    mine.unlink()
    assert cli(world, "labels", "list", "--format", "raven", "--out-dir", str(out)).exit_code == 0
    assert cli(world, "labels", "list", "--format", "raven", "--out-dir", str(out)).exit_code == 0  # ours: rewritten
    (out / "long.txt").write_text("edited by hand\n")  # changed since: theirs now
    assert cli(world, "labels", "list", "--format", "raven", "--out-dir", str(out)).exit_code == 1
    assert cli(world, "labels", "list", "--format", "raven", "--out-dir", str(out), "--overwrite").exit_code == 0
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "clips.csv").write_text("my,own,columns\n1,2,3\n")
    kept = cli(world, "export", "clips", "--from-labels", "--out-dir", str(clips))
    assert kept.exit_code == 1 and "not a clip manifest" in kept.stderr
    assert (clips / "clips.csv").read_text() == "my,own,columns\n1,2,3\n"
    assert cli(world, "export", "clips", "--from-labels", "--out-dir", str(clips), "--overwrite").exit_code == 0
    assert (clips / "clips.csv").read_text().startswith("source,start,end")


def test_a_stale_row_stops_an_import_unless_asked_to_skip_it(world, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("path,start,end,label\nlong.mkv,20,30,siren\ndeleted-since.wav,1,2,siren\n")
    stopped = cli(world, "labels", "import", str(rows))
    assert stopped.exit_code == 1 and "--skip-missing" in stopped.stderr
    with Store.open(world / "store") as store:
        assert store.labels("siren") == []
    skipped = cli(world, "labels", "import", str(rows), "--skip-missing")
    assert skipped.exit_code == 0 and skipped.stdout.startswith("imported 1 label")
    assert "deleted-since.wav" in skipped.stderr


def test_every_bad_row_of_a_file_is_reported_at_once(tmp_path):
    from audioscan.errors import UserError
    from audioscan.query.label_files import read_label_file

    bad = tmp_path / "rows.csv"
    bad.write_text("path,start,end,label\na.wav,1,2,x\nb.wav,abc,2,x\nc.wav,,2,x\nd.wav,3,4,x\ne.wav,5,zz,x\n"
                   "f.wav,nan,1,x\ng.wav,1,2,x\n")
    with pytest.raises(UserError) as found:
        read_label_file(bad)
    message = str(found.value)
    assert message.startswith("4 rows cannot be imported, so nothing was: rows.csv:3:")
    assert "rows.csv:4:" in message and "rows.csv:6:" in message and "rows.csv:7:" in message


def test_an_export_on_a_full_disk_is_a_sentence_and_leaves_no_half_file(tmp_path, monkeypatch):
    import builtins

    from audioscan.errors import UserError
    from audioscan.query.export import write_file

    target = tmp_path / "out.csv"
    target.write_text("the user's earlier file\n")
    real_open = builtins.open

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[:10])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(builtins, "open", lambda path, mode="r", *a, **k: Full(real_open(path, mode, *a, **k))
                        if str(path).endswith(".tmp") else real_open(path, mode, *a, **k))
    with pytest.raises(UserError, match=r"is full \(\d+ kB needed for out.csv\)"):
        write_file(target, "path,start,end\n" * 1000)
    assert target.read_text() == "the user's earlier file\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_writing_an_export_never_touches_a_file_that_happens_to_have_its_temporary_name(tmp_path):
    import os

    from audioscan.errors import UserError
    from audioscan.query.export import write_file

    squatter = tmp_path / f".out.csv.{os.getpid()}.tmp"
    squatter.write_text("not ours\n")
    with pytest.raises(UserError, match="cannot write"):
        write_file(tmp_path / "out.csv", "path,start,end\n")
    assert squatter.read_text() == "not ours\n" and not (tmp_path / "out.csv").exists()
