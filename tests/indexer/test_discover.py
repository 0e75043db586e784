import os

from audioscan.indexer.media.discover import fingerprint, walk


def test_walk_skips_hidden_follows_links_once_and_keeps_spaces(tmp_path):
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "x.wav").write_bytes(b"1")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "y.wav").write_bytes(b"2")
    (tmp_path / ".z.wav").write_bytes(b"3")
    os.symlink(tmp_path, tmp_path / "a b" / "loop")  # a symlink loop back to the root
    rels = [e.rel for e in walk(tmp_path)]
    assert rels == ["a b/x.wav"]
    entry = next(iter(walk(tmp_path)))
    assert entry.size == 1 and entry.mtime_ns > 0 and entry.abs.is_file()


def test_fingerprint_follows_content_not_name(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 3_000_000)
    (tmp_path / "b").write_bytes(b"x" * 3_000_000)
    (tmp_path / "c").write_bytes(b"x" * 2_999_999 + b"y")
    assert fingerprint(tmp_path / "a") == fingerprint(tmp_path / "b") != fingerprint(tmp_path / "c")
