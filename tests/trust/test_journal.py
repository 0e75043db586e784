"""The journal of the user's work: every write of labels and detectors is in it, and it survives damage."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from audioscan.api import Library
from audioscan.indexer.errors import StoreError
from audioscan.indexer.store import journal
from audioscan.indexer.store.annotations import read_work
from audioscan.indexer.store.journal import SiteEntry
from audioscan.indexer.store.protocols import StoreAnnotator, StoreReader
from audioscan.indexer.store.records import NewLabel
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import commit_synthetic


def _range(store, label: str, start: float, end: float, positive: bool) -> NewLabel:
    """A range label on the store's first file."""
    return NewLabel(media_id=_media_id(store), label=label, start=start, end=end, kind="range", positive=positive)


def _media_id(store: Store) -> int:
    return next(iter(store.media()))


# Each method that changes the user's work, run once on a store with a label and a detector.
WRITES = {
    "add_labels": lambda store: store.add_labels([_range(store, "door", 1.0, 2.0, positive=False)], "test"),
    "remove_labels": lambda store: store.remove_labels([1]),
    "save_classifier": lambda store: store.save_classifier("knock", "knock", set_id=store.find_set().id, kind="logreg",
                                                           model="{}", blob=b"\x00\x01", metrics={"ap": 0.5}),
    "remove_classifier": lambda store: store.remove_classifier("siren", 1),
    "remove_set": lambda store: store.remove_set(store.find_set()),
    "give_times": lambda store: store.give_times([(_media_id(store), dt.datetime(2024, 10, 27, 2, 30, fold=1),
                                                   "Europe/Berlin")]),
    "set_sites": lambda store: store.set_sites([SiteEntry("B", 52.5, longitude=13.4, zone="Europe/Berlin")],
                                               [(str(store.path.parent), "B")]),
}


def annotation_writes() -> set[str]:
    """The store's methods that change labels or detectors: the annotator's face beyond the reader's,
    and a writer's removal of a set (which takes its detectors)."""
    def names(face) -> set[str]:
        return {name for name, _ in inspect.getmembers(face, inspect.isfunction) if not name.startswith("_")}

    return (names(StoreAnnotator) - names(StoreReader)) | {"remove_set"}


@pytest.fixture
def labelled(store_path):
    with Store.open(store_path, write=True) as store:
        store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
        commit_synthetic(store, "a.wav", 5)
        store.add_labels([_range(store, "siren", 0.0, 3.0, positive=True)], "test")
        store.save_classifier("siren", "siren", set_id=store.find_set().id, kind="logreg", model='{"w": [1]}',
                              blob=None, metrics={"ap": 1.0})
    return store_path


def test_every_write_of_the_users_work_has_a_case_here():
    assert annotation_writes() == set(WRITES)


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_write_of_the_users_work_is_in_the_journal(write, labelled):
    with Store.open(labelled, write=True) as store:
        WRITES[write](store)
        with store.connect() as con:
            held = read_work(con)
    replayed = journal.replay(labelled)
    assert replayed.complete and replayed.work == held


def test_a_line_cut_short_is_skipped_and_the_next_change_stands(labelled):
    path = labelled / journal.JOURNAL_FILE
    with Store.open(labelled, annotate=True) as store:
        store.add_labels([_range(store, "door", 1.0, 2.0, positive=False)], "test")
    path.write_bytes(path.read_bytes()[:-7])  # a crash in the middle of the last line
    with Store.open(labelled, annotate=True) as store:
        store.add_labels([_range(store, "bell", 3.0, 4.0, positive=True)], "test")
    replayed = journal.replay(labelled)
    assert replayed.damaged == 1 and not replayed.complete
    assert {entry.label for entry in replayed.work.labels.values()} == {"siren", "bell"}
    problems, _ = Library(labelled).check()
    assert any("journal" in problem for problem in problems)
    Library(labelled).repair()  # the catalog reads: the journal is written anew from it
    assert journal.replay(labelled).complete and Library(labelled).check() == ([], [])


def test_a_deleted_catalog_is_repairable_and_says_so(labelled):
    (labelled / "catalog.duckdb").unlink()
    with pytest.raises(StoreError, match="missing.*index repair"):
        Library(labelled).status()
    with pytest.raises(StoreError, match="missing.*index repair"):
        Library(labelled).build(labelled.parent)
    report = Library(labelled).repair()
    assert report.rebuilt is not None and "restored 1 labels and 1 detectors (1 versions); lost: none" in (
        report.rebuilt.sentence())
    assert [item.label for item in Library(labelled).labels.list()] == ["siren"]


def test_with_the_catalog_and_its_copy_gone_the_journal_alone_brings_the_work_back(labelled):
    (labelled / "catalog.duckdb").unlink()
    (labelled / "catalog.good.duckdb").unlink()
    report = Library(labelled).repair()
    assert "rebuilt from nothing" in report.rebuilt.sentence() and "lost: none" in report.rebuilt.sentence()
    library = Library(labelled)
    assert [(item.label, item.start, item.end, item.media.status) for item in library.labels.list()] == [
        ("siren", 0.0, 3.0, "missing")]  # the file is listed again, for the next build to find
    assert [row["name"] for row in library.detectors()] == ["siren"]
    assert library.check()[0] == []  # (its old segment is a note: the next build removes it)
