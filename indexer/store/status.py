"""``index status``: what a store holds, in the shape the CLI prints and scripts parse."""

from __future__ import annotations

import os
from pathlib import Path

from audioscan.indexer.store import catalog
from audioscan.indexer.store.lock import LOCK_FILE, WriterLock
from audioscan.indexer.store.store import Store

_LOCKS = Path("/proc/locks")


def writer(folder: Path, locks: Path = _LOCKS) -> str | None:
    """Who holds the store's writer lock now (a build running), or None.

    Read from the kernel's table of file locks, never by trying the lock: a probe that took it for
    an instant could refuse a build starting at that instant.  Where that table is not (not Linux),
    None: status then says nothing of a writer rather than guess."""
    try:
        stat = os.stat(folder / LOCK_FILE)
        table = locks.read_text()
    except OSError:
        return None
    where = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    held = any(len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where
               for fields in (line.split() for line in table.splitlines()))
    return WriterLock(folder).holder() if held else None


def store_status(store: Store) -> dict:
    """``{"store", "sets": [...], "media": {"ok", "failed", "missing", "unavailable"},
    "failed": [{"path", "error"}], "warnings": [{"path", "warning"}], "writer"}``, read in one catalog
    transaction (``sites``: files and hours per site, read after it); warnings are notes on indexed files (a file whose audio ends before its header says).
    A set's files behind are indexed files it lacks, and the files a build set out to embed and has
    not committed yet (an interrupted first build leaves them, never seen by the catalog otherwise).
    ``writer`` names the process building now (:func:`writer`), or is None."""
    with store.connect() as con, catalog.transaction(con):
        sets = con.execute(
            "SELECT s.name, s.model, s.dim, s.window_s, s.hop_s, "
            "(SELECT count(*) FROM windows w WHERE w.set_id = s.id AND w.alive), "
            "(SELECT count(*) FROM segments g WHERE g.set_id = s.id), "
            "(SELECT count(*) FROM (SELECT m.root_id, m.path FROM media m WHERE m.status = 'ok' AND NOT EXISTS "
            "(SELECT 1 FROM media_sets ms WHERE ms.media_id = m.id AND ms.set_id = s.id) "
            "UNION SELECT p.root_id, p.path FROM planned p)) FROM sets s ORDER BY s.id").fetchall()
        counts = dict(con.execute("SELECT status, count(*) FROM media GROUP BY status").fetchall())
        failed = con.execute("SELECT r.path, m.path, m.error FROM media m JOIN roots r ON r.id = m.root_id "
                             "WHERE m.status = 'failed' ORDER BY r.path, m.path").fetchall()
        warned = con.execute("SELECT r.path, m.path, m.error FROM media m JOIN roots r ON r.id = m.root_id "
                             "WHERE m.status = 'ok' AND m.error IS NOT NULL ORDER BY r.path, m.path").fetchall()
    return {
        "store": str(store.path.resolve()),
        "sets": [{"name": n, "model": m, "dim": d, "window": w, "hop": h, "windows": c, "segments": g, "behind": b}
                 for n, m, d, w, h, c, g, b in sets],
        "media": {"ok": counts.get("ok", 0), "failed": counts.get("failed", 0), "missing": counts.get("missing", 0),
                  "unavailable": counts.get("unavailable", 0)},
        "failed": [{"path": f"{root}/{path}", "error": error} for root, path, error in failed],
        "warnings": [{"path": f"{root}/{path}", "warning": note} for root, path, note in warned],
        "writer": writer(store.path),
        "sites": _per_site(store),
    }


def _per_site(store: Store) -> list[dict]:
    """Indexed files and hours of audio per site (``None``: files no site holds), when any site is named."""
    named = [site.name for site in store.sites()]
    if not named:
        return []
    media = [item for item in store.media().values() if item.status == "ok"]
    return [{"site": name, "files": sum(item.site == name for item in media),
             "hours": round(sum(item.duration or 0.0 for item in media if item.site == name) / 3600, 3)}
            for name in [*named, None]]
