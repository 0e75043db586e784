"""``index repair``: give up what is lost, so the next build can restore it.

A catalog that is damaged or missing is rebuilt first, as the store opens for the repair
(``salvage``), with the labels and detectors from their journal.  Then a segment file that is missing, unreadable or fails its checksum cannot be read
back.  Repair drops it from the catalog together with its windows, and marks every
file that had vectors in it as no longer embedded in that set (its other windows
in the set die too, so nothing is counted twice); the next ``index build`` embeds
exactly those files again and the store checks clean.  Nothing else is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audioscan.indexer.errors import StoreError
from audioscan.indexer.store import catalog
from audioscan.indexer.store.salvage import Salvaged
from audioscan.indexer.store.segments import matches, read_segment
from audioscan.indexer.store.store import Store


@dataclass
class RepairReport:
    segments: list[str] = field(default_factory=list)
    files: int = 0
    rebuilt: Salvaged | None = None  # the catalog was damaged or missing and was rebuilt


def _damaged(store: Store, set_name: str, file: str, recorded: str | None) -> bool:
    try:
        path = store.files.file(set_name, file)
        if not path.exists() or (recorded is not None and not matches(path, recorded)):
            return True
        read_segment(path)
    except (StoreError, OSError):
        return True
    return False


def repair(store: Store) -> RepairReport:
    """Drop lost segments, then write the journal anew from the catalog, which is now the whole of
    the user's work (a journal rewritten is also one whose damaged lines are gone)."""
    report = RepairReport(rebuilt=store.salvaged)
    for info in store.sets():
        with store.connect() as con:
            rows = con.execute("SELECT id, file, checksum FROM segments WHERE set_id = ?", [info.id]).fetchall()
        lost = [(seg_id, file) for seg_id, file, recorded in rows if _damaged(store, info.name, file, recorded)]
        if not lost:
            continue
        ids = [seg_id for seg_id, _ in lost]
        with store.connect() as con, catalog.transaction(con):
            media = [r[0] for r in con.execute("SELECT DISTINCT media_id FROM windows WHERE set_id = ? AND "
                                               "list_contains(?, segment_id)", [info.id, ids]).fetchall()]
            con.execute("UPDATE windows SET alive = false WHERE set_id = ? AND list_contains(?, media_id)",
                        [info.id, media])
            con.execute("DELETE FROM windows WHERE list_contains(?, segment_id)", [ids])
            con.execute("DELETE FROM media_sets WHERE set_id = ? AND list_contains(?, media_id)", [info.id, media])
            con.execute("DELETE FROM segments WHERE list_contains(?, id)", [ids])
            con.execute("DELETE FROM ann_indexes WHERE set_id = ?", [info.id])
        for _, file in lost:
            try:
                store.files.remove(store.files.file(info.name, file))
            except StoreError:
                pass  # a name that is not ours is never deleted, only forgotten
        report.segments += [f"{info.name}/{file}" for _, file in lost]
        report.files += len(media)
    store.rewrite_journal()
    return report
