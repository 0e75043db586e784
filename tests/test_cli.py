"""The CLI as people use it: JSON shapes, exit codes, one-sentence errors, quiet pipes."""

import json
import subprocess
import sys

from click.testing import CliRunner

from audioscan.cli import main
from tests.conftest import tone_file


def run(*args, store=None):
    prefix = ["--store", str(store)] if store else []
    return CliRunner().invoke(main, prefix + list(args), catch_exceptions=False)


def test_build_status_check_search_in_json(library, store_path, tmp_path):
    result = run("index", "build", str(library), "--format", "json", store=store_path)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) == {"files_seen", "files_indexed", "files_skipped", "files_reused", "files_removed",
                           "files_failed", "files_unavailable", "windows_embedded", "seconds"}
    assert report["files_failed"] == 4 and "could not be indexed" in result.stderr
    status = json.loads(run("index", "status", "--format", "json", store=store_path).stdout)
    assert set(status) >= {"store", "sets", "media", "failed"}
    assert set(status["sets"][0]) == {"name", "model", "dim", "window", "hop", "windows", "segments", "behind"}
    assert status["media"]["ok"] == 9 and status["media"]["failed"] == 4
    assert all(set(item) == {"path", "error"} for item in status["failed"])
    assert run("index", "check", store=store_path).exit_code == 0
    clip = tone_file(tmp_path / "q.wav", 4, "siren")
    hits = json.loads(run("search", str(clip), "-k", "3", "--format", "json", store=store_path).stdout)
    assert 1 <= len(hits) <= 3 and set(hits[0]) == {"path", "start", "end", "score", "peak", "onset", "offset",
                                                    "datetime", "site", "channel"}
    assert run("index", "build", str(library), "--strict", store=store_path).exit_code == 1


def test_user_errors_are_one_sentence_without_traceback(tmp_path, library):
    store = tmp_path / "none"
    for args in (["index", "status"], ["search", str(library / "a.wav")],
                 ["index", "build", str(library), "--model", "NOPE"],
                 ["index", "build", str(library), "--window", "0"]):
        result = subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), *args],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") <= 3, result.stderr
    assert not (tmp_path / "none" / "sets").exists() or not any((tmp_path / "none" / "sets").iterdir())


def test_check_fails_with_the_reason_when_a_segment_is_lost(library, store_path):
    run("index", "build", str(library), store=store_path)
    next((store_path / "sets").rglob("*.faiss")).unlink()
    result = run("index", "check", store=store_path)
    assert result.exit_code == 1 and "is missing" in result.stderr


def test_quiet_in_a_pipe_prints_only_the_result(library, store_path):
    result = subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store_path), "-q", "index", "build",
                             str(library), "--format", "json"], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and result.stderr == ""
    json.loads(result.stdout)


def test_compact_keeps_every_live_vector(library, store_path):
    run("index", "build", str(library), "--commit-every", "0", store=store_path)
    (library / "c.mp3").unlink()
    run("index", "build", str(library), store=store_path)
    result = run("index", "compact", store=store_path)
    assert result.exit_code == 0 and "dead vectors dropped" in result.stdout
    assert run("index", "check", store=store_path).exit_code == 0
    status = json.loads(run("index", "status", "--format", "json", store=store_path).stdout)
    assert status["sets"][0]["segments"] == 1


def test_threads_is_a_global_option_and_a_bad_count_is_one_sentence(monkeypatch):
    from audioscan.models import threads

    monkeypatch.setattr(threads, "_chosen", None)
    for name in threads._LOAD_TIME:
        monkeypatch.setenv(name, str(threads.usable_cores()))
    try:
        assert run("models", "list", "--threads", "1").exit_code == 0
        assert threads.count() == 1
    finally:
        threads.set_threads(threads.usable_cores())
        monkeypatch.setattr(threads, "_chosen", None)
    refused = run("--threads", "0", "models", "list")
    assert refused.exit_code == 2 and "--threads" in refused.output and "Traceback" not in refused.output
    monkeypatch.setenv("AUDIOSCAN_THREADS", "many")
    bad = run("models", "list")
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [
        "Error: AUDIOSCAN_THREADS='many' is not a number of threads; give a whole number from 1 up, or unset it"]
