"""An append-only SQLite event log in WAL mode (one per session).

Each append is its own transaction: in WAL mode with synchronous=NORMAL a commit
survives the process being killed (the OS holds the written WAL pages); a power
loss may drop the last commits but never corrupts the file. Events are stored as
their JSON form and read back as dicts (or Event objects by the runtime).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL,
    ts       REAL NOT NULL,
    type     TEXT NOT NULL,
    sender   TEXT NOT NULL,
    priority INTEGER NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_type ON events(type);
"""


class EventLog:
    """Append events (anything with ``to_json()`` or a dict with type/ts); thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # appends are the only writes, so the total is counted once and then kept
        self._total = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        self._closed = False

    def append(self, event: Any) -> int:
        """Append one event; returns its sequence number."""
        d = event.to_json() if hasattr(event, "to_json") else dict(event)
        body = json.dumps(d, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO events(id, ts, type, sender, priority, body) VALUES (?,?,?,?,?,?)",
                (str(d.get("id", "")), float(d["ts"]), str(d["type"]), str(d.get("sender", "")),
                 int(d.get("priority", 0)), body))
            self._total += 1
            return int(cur.lastrowid)

    def count(self, type_: str | None = None) -> int:
        with self._lock:
            if type_ is None:
                return self._total
            return int(self._db.execute("SELECT COUNT(*) FROM events WHERE type=?", (type_,)).fetchone()[0])

    def read(self, type_: str | None = None, after_seq: int = 0, limit: int | None = None) -> list[dict]:
        """Events as dicts (with their 'seq'), oldest first."""
        q = "SELECT seq, body FROM events WHERE seq > ?"
        args: list[Any] = [after_seq]
        if type_ is not None:
            q += " AND type = ?"
            args.append(type_)
        q += " ORDER BY seq"
        if limit is not None:
            q += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        out = []
        for seq, body in rows:
            d = json.loads(body)
            d["seq"] = seq
            out.append(d)
        return out

    def __iter__(self) -> Iterator[dict]:
        return iter(self.read())

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (on a clean stop)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    self._db.close()
                    self._closed = True
