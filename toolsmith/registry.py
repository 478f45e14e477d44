"""ToolRegistry: tool definitions, versions, approvals and usage in SQLite at ``MOSAIC_HOME/tools.db``.

Tables: ``tools`` (one row per name: the approved hash, built-in flag, created / last used / uses /
failures, deprecation), ``versions`` (every proposed definition by hash: canonical JSON, version
number, status pending|approved|rejected, who decided and when), ``proposals`` (timestamps for the
rate limit), ``history`` (every lifecycle step, kept). Approval is bound to the hash: a changed
definition is a new version that needs its own approval, and a stored definition whose bytes no
longer match its hash is refused. A rejected hash cannot be proposed again.

A ``tools.db`` that SQLite cannot read (or whose ``quick_check`` fails) is moved aside to
``tools.db.corrupt-<timestamp>`` and a fresh one is started; ``recovered`` says where it went.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from toolsmith.builder import ToolBuilder
from toolsmith.builtin import BUILTIN_NAMES, BUILTIN_TOOLS
from toolsmith.definition import DefinitionError, ToolDefinition, ValidationError
from toolsmith.policy import ToolPolicy
from toolsmith.sandbox import RunResult, SandboxLimits, run_source

SCHEMA = """
CREATE TABLE IF NOT EXISTS tools(
  name TEXT PRIMARY KEY, current_hash TEXT, builtin INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL, last_used REAL, uses INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0, deprecated INTEGER NOT NULL DEFAULT 0,
  deprecated_at REAL, deprecated_reason TEXT);
CREATE TABLE IF NOT EXISTS versions(
  hash TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL, definition TEXT NOT NULL,
  status TEXT NOT NULL, proposed_at REAL NOT NULL, proposed_by TEXT,
  decided_at REAL, decided_by TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS versions_name ON versions(name, status);
CREATE TABLE IF NOT EXISTS proposals(ts REAL NOT NULL, hash TEXT, source TEXT);
CREATE TABLE IF NOT EXISTS history(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
  name TEXT, hash TEXT, action TEXT NOT NULL, detail TEXT);
"""
TABLES = ("tools", "versions", "proposals", "history")


class RegistryError(Exception):
    """A registry operation that cannot be done (unknown tool, nothing pending, wrong hash, ...)."""


def mosaic_home() -> Path:
    """``$MOSAIC_HOME`` or the platform's user data folder (same rule as engine.store.paths)."""
    env = os.environ.get("MOSAIC_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir
    return Path(user_data_dir("mosaic", appauthor=False))


def default_db_path() -> Path:
    return mosaic_home() / "tools.db"


@dataclass(frozen=True)
class ToolRecord:
    """One version of a tool plus its tool-level state."""

    name: str
    hash: str
    version: int
    status: str  # pending | approved | rejected
    definition: ToolDefinition
    builtin: bool
    deprecated: bool
    created: float
    last_used: float | None
    uses: int
    failures: int
    proposed_by: str | None
    decided_by: str | None
    decided_at: float | None
    reason: str | None
    current: bool  # this version is the tool's approved one

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, "version": self.version, "status": self.status,
                "sandbox": self.definition.sandbox, "description": self.definition.description,
                "builtin": self.builtin, "deprecated": self.deprecated, "created": self.created,
                "last_used": self.last_used, "uses": self.uses, "failures": self.failures,
                "proposed_by": self.proposed_by, "decided_by": self.decided_by,
                "decided_at": self.decided_at, "reason": self.reason, "current": self.current}


@dataclass
class ProposalOutcome:
    """What ``propose`` did. ``status``: pending | approved (auto) | invalid | duplicate |
    already_approved | previously_rejected | rate_limited."""

    status: str
    name: str | None = None
    hash: str | None = None
    version: int | None = None
    errors: list[ValidationError] | None = None
    definition: ToolDefinition | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ("pending", "approved")

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "name": self.name, "hash": self.hash, "version": self.version,
                "errors": [e.to_json() for e in (self.errors or [])]}


class ToolRegistry:
    """The tool store. Thread-safe (one connection behind a lock); sandbox runs happen outside it."""

    def __init__(self, path: str | Path | None = None, policy: ToolPolicy = ToolPolicy(),
                 clock: Callable[[], float] = time.time, install_builtins: bool = True):
        self.path = Path(path) if path is not None else default_db_path()
        self.policy = policy
        self.clock = clock
        self.recovered: Path | None = None
        self.warnings: list[str] = []
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open()
        if install_builtins:
            self._install_builtins()

    # ---- opening, corruption ------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        if self.path.exists():
            problem = self._check_file()
            if problem:
                self._move_aside(problem)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an approval a person gave must survive power loss
        conn.executescript(SCHEMA)
        return conn

    def _check_file(self) -> str | None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            try:
                row = conn.execute("PRAGMA quick_check").fetchone()
                if row is None or row[0] != "ok":
                    return f"quick_check: {row[0] if row else 'no answer'}"
                names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                for table in TABLES:
                    if table in names:
                        conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return None

    def _move_aside(self, problem: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        self.recovered = target
        self.warnings.append(f"{self.path} was unreadable ({problem}); moved it to {target} "
                             "and started a new tool registry")

    def integrity(self) -> str:
        """``PRAGMA quick_check`` of the open database ('ok' when intact)."""
        with self._lock:
            return self._conn.execute("PRAGMA quick_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ToolRegistry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- helpers ------------------------------------------------------------------------------
    def _tx(self):
        return _Transaction(self._conn, self._lock)

    def _log(self, name: str | None, hash_: str | None, action: str, detail: Any = None) -> None:
        self._conn.execute("INSERT INTO history(ts, name, hash, action, detail) VALUES (?,?,?,?,?)",
                           (self.clock(), name, hash_, action,
                            None if detail is None else json.dumps(detail, default=str)))

    def _install_builtins(self) -> None:
        now = self.clock()
        with self._tx() as c:
            for defn in BUILTIN_TOOLS:
                h = defn.hash()
                row = c.execute("SELECT current_hash FROM tools WHERE name=?", (defn.name,)).fetchone()
                if row is not None and row["current_hash"] == h:
                    continue
                version = self._next_version(c, defn.name)
                c.execute("INSERT OR REPLACE INTO versions VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (h, defn.name, version, defn.canonical().decode("utf-8"), "approved", now,
                           "builtin", now, "builtin", "vetted built-in tool"))
                if row is None:
                    c.execute("INSERT INTO tools(name, current_hash, builtin, created) VALUES (?,?,1,?)",
                              (defn.name, h, now))
                else:
                    c.execute("UPDATE tools SET current_hash=?, builtin=1, deprecated=0 WHERE name=?",
                              (h, defn.name))
                self._log(defn.name, h, "builtin_installed", {"version": version})

    @staticmethod
    def _next_version(c: sqlite3.Connection, name: str) -> int:
        row = c.execute("SELECT MAX(version) AS v FROM versions WHERE name=?", (name,)).fetchone()
        return (row["v"] or 0) + 1

    def _record(self, row: sqlite3.Row) -> ToolRecord:
        text = row["definition"]
        defn = ToolDefinition.from_json(text)
        if defn.hash() != row["hash"]:
            raise RegistryError(f"stored definition of {row['name']!r} does not match its hash "
                                f"{row['hash'][:12]}: refusing to use it")
        return ToolRecord(
            name=row["name"], hash=row["hash"], version=row["version"], status=row["status"],
            definition=defn, builtin=bool(row["builtin"]), deprecated=bool(row["deprecated"]),
            created=row["created"], last_used=row["last_used"], uses=row["uses"],
            failures=row["failures"], proposed_by=row["proposed_by"], decided_by=row["decided_by"],
            decided_at=row["decided_at"], reason=row["reason"],
            current=row["current_hash"] == row["hash"])

    _SELECT = ("SELECT v.*, t.builtin, t.deprecated, t.created, t.last_used, t.uses, t.failures, "
               "t.current_hash FROM versions v JOIN tools t ON t.name = v.name ")

    def _taken_names(self) -> set[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT name FROM versions WHERE status IN ('approved','pending')").fetchall()
        return {r["name"] for r in rows}

    # ---- proposals ----------------------------------------------------------------------------
    def propose(self, raw: str | bytes | dict[str, Any] | ToolDefinition, *, source: str = "model",
                update: bool = False) -> ProposalOutcome:
        """Register a proposal as pending (or approve it, if the policy allows). Proposals from the
        model are rate-limited; ``update=True`` (people only) submits a new version of an existing
        tool. Never raises for bad input: the outcome says what happened."""
        now = self.clock()
        with self._tx() as c:
            if source == "model":
                if update:
                    return ProposalOutcome("invalid", errors=[ValidationError(
                        "name", "the model cannot replace an existing tool")])
                window = now - self.policy.window_s
                recent = c.execute("SELECT COUNT(*) FROM proposals WHERE ts > ? AND source='model'",
                                   (window,)).fetchone()[0]
                c.execute("INSERT INTO proposals(ts, hash, source) VALUES (?,?,?)", (now, None, source))
                if recent >= self.policy.max_proposals_per_window:
                    self._log(None, None, "rate_limited", {"recent": recent})
                    return ProposalOutcome("rate_limited", errors=[ValidationError(
                        "definition", f"rate limit: {recent} proposals in the last "
                                      f"{self.policy.window_s:g} s (max {self.policy.max_proposals_per_window})")])
            try:
                defn = raw if isinstance(raw, ToolDefinition) else ToolDefinition.from_json(raw)
            except DefinitionError as exc:
                self._log(None, None, "invalid", [e.to_json() for e in exc.errors])
                return ProposalOutcome("invalid", errors=list(exc.errors))
            h = defn.hash()
            prior = c.execute("SELECT status, version, decided_at FROM versions WHERE hash=?", (h,)).fetchone()
            if prior is not None:
                status = {"pending": "duplicate", "approved": "already_approved",
                          "rejected": "previously_rejected"}[prior["status"]]
                errs = None
                if status == "previously_rejected":
                    errs = [ValidationError("definition", "this exact definition was rejected before; "
                                                          "change it to propose it again")]
                self._log(defn.name, h, status)
                return ProposalOutcome(status, defn.name, h, prior["version"], errs, defn)
            if source == "model":
                pending = c.execute("SELECT COUNT(*) FROM versions WHERE status='pending'").fetchone()[0]
                if pending >= self.policy.max_pending:
                    self._log(defn.name, h, "rate_limited", {"pending": pending})
                    return ProposalOutcome("rate_limited", defn.name, h, errors=[ValidationError(
                        "definition", f"{pending} proposals already wait for a decision "
                                      f"(max {self.policy.max_pending})")])
            taken = self._taken_names()
            if update:
                if defn.name not in taken:
                    return ProposalOutcome("invalid", defn.name, h, errors=[ValidationError(
                        "name", f"no tool named {defn.name!r} to update")])
                if defn.name in BUILTIN_NAMES:
                    return ProposalOutcome("invalid", defn.name, h, errors=[ValidationError(
                        "name", f"{defn.name!r} is a built-in tool and cannot be replaced")])
                taken.discard(defn.name)
            errors = ToolBuilder(existing=taken, reserved=BUILTIN_NAMES - ({defn.name} if update else set())
                                 ).build(defn).errors
            if errors:
                self._log(defn.name, h, "invalid", [e.to_json() for e in errors])
                return ProposalOutcome("invalid", defn.name, h, errors=errors, definition=defn)
            version = self._next_version(c, defn.name)
            c.execute("INSERT INTO versions(hash, name, version, definition, status, proposed_at, proposed_by) "
                      "VALUES (?,?,?,?, 'pending', ?, ?)",
                      (h, defn.name, version, defn.canonical().decode("utf-8"), now, source))
            c.execute("INSERT OR IGNORE INTO tools(name, created) VALUES (?, ?)", (defn.name, now))
            self._log(defn.name, h, "proposed", {"version": version, "source": source})
        if self.policy.may_auto_approve(defn.sandbox):
            self.approve(defn.name, h, by="policy")
            return ProposalOutcome("approved", defn.name, h, version, None, defn)
        return ProposalOutcome("pending", defn.name, h, version, None, defn)

    # ---- decisions ----------------------------------------------------------------------------
    def _pending_row(self, c: sqlite3.Connection, name: str, hash_: str | None) -> sqlite3.Row:
        rows = c.execute(self._SELECT + "WHERE v.name=? AND v.status='pending' ORDER BY v.version",
                         (name,)).fetchall()
        if hash_ is not None:
            rows = [r for r in rows if r["hash"] == hash_ or (len(hash_) >= 8 and r["hash"].startswith(hash_))]
            if not rows:
                raise RegistryError(f"no pending version of {name!r} has hash {hash_}")
        if not rows:
            known = c.execute("SELECT 1 FROM tools WHERE name=?", (name,)).fetchone()
            raise RegistryError(f"{name!r} has no pending proposal" if known else f"no tool named {name!r}")
        if len(rows) > 1:
            raise RegistryError(f"{name!r} has {len(rows)} pending versions; name one by its hash")
        return rows[0]

    def approve(self, name: str, hash: str | None = None, *, by: str = "person") -> ToolRecord:
        """Approve the pending version of ``name`` (the one with ``hash`` if given) and make it the
        tool's current version. A privileged definition needs ``by='person'``."""
        now = self.clock()
        with self._tx() as c:
            row = self._pending_row(c, name, hash)
            record = self._record(row)  # verifies the stored bytes still match the hash
            if not record.definition.sandbox and by != "person":
                raise RegistryError(f"{name!r} is privileged (sandbox: false): only a person may approve it")
            c.execute("UPDATE versions SET status='approved', decided_at=?, decided_by=? WHERE hash=?",
                      (now, by, record.hash))
            c.execute("UPDATE tools SET current_hash=?, deprecated=0, deprecated_at=NULL, "
                      "deprecated_reason=NULL WHERE name=?", (record.hash, name))
            self._log(name, record.hash, "approved", {"by": by, "version": record.version})
        return self.get(name, record.hash)

    def reject(self, name: str, hash: str | None = None, *, reason: str = "", by: str = "person") -> ToolRecord:
        """Reject the pending version of ``name``; its hash can never be proposed again."""
        now = self.clock()
        with self._tx() as c:
            row = self._pending_row(c, name, hash)
            c.execute("UPDATE versions SET status='rejected', decided_at=?, decided_by=?, reason=? WHERE hash=?",
                      (now, by, reason[:1000], row["hash"]))
            self._log(name, row["hash"], "rejected", {"by": by, "reason": reason[:1000]})
        return self.get(name, row["hash"])

    # ---- reading ------------------------------------------------------------------------------
    def get(self, name: str, hash: str | None = None) -> ToolRecord:
        """The version ``hash`` of ``name``, else its approved version, else its newest one."""
        with self._lock:
            if hash is not None:
                row = self._conn.execute(self._SELECT + "WHERE v.name=? AND v.hash=?", (name, hash)).fetchone()
            else:
                row = self._conn.execute(
                    self._SELECT + "WHERE v.name=? ORDER BY (v.hash = t.current_hash) DESC, v.version DESC",
                    (name,)).fetchone()
            if row is None:
                raise RegistryError(f"no tool named {name!r}" + (f" with hash {hash}" if hash else ""))
            return self._record(row)

    def versions(self, name: str) -> list[ToolRecord]:
        with self._lock:
            rows = self._conn.execute(self._SELECT + "WHERE v.name=? ORDER BY v.version", (name,)).fetchall()
        return [self._record(r) for r in rows]

    def list(self, *, include_deprecated: bool = True, include_pending: bool = True) -> list[ToolRecord]:
        """One record per tool: its approved version, or its newest pending one."""
        with self._lock:
            names = [r["name"] for r in self._conn.execute("SELECT name FROM tools ORDER BY name")]
        out = []
        for name in names:
            try:
                rec = self.get(name)
            except RegistryError as exc:  # tampered row: report it, keep listing the rest
                self.warnings.append(str(exc))
                continue
            if rec.status == "rejected" or (rec.status == "pending" and not include_pending):
                continue
            if rec.deprecated and not include_deprecated:
                continue
            out.append(rec)
        return out

    def model_tools(self) -> list[ToolRecord]:
        """What the model may see and call: approved, not deprecated."""
        return [r for r in self.list(include_deprecated=False, include_pending=False) if r.current]

    def pending(self) -> list[ToolRecord]:
        with self._lock:
            rows = self._conn.execute(self._SELECT + "WHERE v.status='pending' ORDER BY v.proposed_at").fetchall()
        return [self._record(r) for r in rows]

    def history(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            q = "SELECT * FROM history" + (" WHERE name=?" if name else "") + " ORDER BY seq"
            rows = self._conn.execute(q, (name,) if name else ()).fetchall()
        return [{k: r[k] for k in r.keys()} for r in rows]

    # ---- calls --------------------------------------------------------------------------------
    def call(self, name: str, args: dict[str, Any], *, limits: SandboxLimits = SandboxLimits(),
             allow_deprecated: bool = False) -> RunResult:
        """Run the approved version of ``name`` in the sandbox and record the use.

        Raises RegistryError only when there is no callable tool of that name; everything the
        tool itself does comes back as a RunResult."""
        from jsonschema import Draft202012Validator

        rec = self.get(name)
        if not rec.current:
            raise RegistryError(f"{name!r} has no approved version")
        if rec.deprecated and not allow_deprecated:
            raise RegistryError(f"{name!r} is deprecated")
        if not isinstance(args, dict):
            result = RunResult(False, error="arguments must be a JSON object", error_type="bad_args")
        else:
            problems = sorted(Draft202012Validator(rec.definition.parameters).iter_errors(args),
                              key=lambda e: list(e.path))
            if problems:
                p = problems[0]
                where = ".".join(str(x) for x in p.path) or "args"
                result = RunResult(False, error=f"bad arguments: {where}: {p.message[:300]}",
                                   error_type="bad_args")
            else:
                result = run_source(rec.definition.implementation, rec.name, args,
                                    restricted=rec.definition.sandbox, limits=limits)
        with self._tx() as c:
            c.execute("UPDATE tools SET uses=uses+1, failures=failures+?, last_used=? WHERE name=?",
                      (0 if result.ok else 1, self.clock(), name))
        return result

    # ---- deprecation --------------------------------------------------------------------------
    def deprecate(self, name: str, reason: str = "by request") -> ToolRecord:
        """Hide ``name`` from the model; it stays on disk and can be restored."""
        with self._tx() as c:
            row = c.execute("SELECT builtin, deprecated FROM tools WHERE name=?", (name,)).fetchone()
            if row is None:
                raise RegistryError(f"no tool named {name!r}")
            if not row["deprecated"]:
                c.execute("UPDATE tools SET deprecated=1, deprecated_at=?, deprecated_reason=? WHERE name=?",
                          (self.clock(), reason, name))
                self._log(name, None, "deprecated", {"reason": reason})
        return self.get(name)

    def restore(self, name: str) -> ToolRecord:
        with self._tx() as c:
            if c.execute("UPDATE tools SET deprecated=0, deprecated_at=NULL, deprecated_reason=NULL "
                         "WHERE name=?", (name,)).rowcount == 0:
                raise RegistryError(f"no tool named {name!r}")
            self._log(name, None, "restored")
        return self.get(name)

    def deprecate_idle(self, now: float | None = None) -> list[tuple[str, str]]:
        """Deprecate unused or failing tools per the policy; returns ``[(name, reason)]``."""
        now = self.clock() if now is None else now
        p = self.policy
        done: list[tuple[str, str]] = []
        with self._lock:
            rows = self._conn.execute(
                "SELECT t.*, v.decided_at FROM tools t JOIN versions v ON v.hash = t.current_hash "
                "WHERE t.builtin=0 AND t.deprecated=0").fetchall()
        for r in rows:
            idle_since = r["last_used"] or r["decided_at"] or r["created"]
            if now - idle_since > p.deprecate_idle_s and r["uses"] < p.deprecate_below_uses:
                reason = f"idle for {(now - idle_since) / 86400:.1f} days, {r['uses']} uses"
            elif r["failures"] >= p.deprecate_after_failures and 2 * r["failures"] >= r["uses"]:
                reason = f"failing: {r['failures']} of {r['uses']} calls failed"
            else:
                continue
            self.deprecate(r["name"], reason)
            done.append((r["name"], reason))
        return done


class _Transaction:
    """``with`` block = one IMMEDIATE transaction under the registry lock."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn, self.lock = conn, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
