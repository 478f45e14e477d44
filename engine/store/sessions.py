"""Sessions under ``MOSAIC_HOME/sessions/<name>/``: the VM state in generations, plus the event log.

Layout of one session folder::

    state.<gen>.safetensors   the VM state (written by state.save, atomic)
    runtime.<gen>.json        ledger, counters and other runtime fields
    manifest.<gen>.json       written LAST: sizes and sha256 of the two files above
    events.db                 the append-only SQLite event log (WAL)
    corrupt/                  generations that failed to load, moved aside (never deleted)
    .lock                     held (flock) by the process that has the session open

A generation exists only once its manifest exists, so a save killed half-way
leaves the previous generation as the newest. The previous generation is kept;
loading walks generations newest first and moves aside any that fails its
checksums or its state loader, so a damaged newest file costs one generation,
never the session.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.store.atomic import atomic_write_text
from engine.store.eventlog import EventLog
from engine.store.paths import sessions_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GEN_FILE = re.compile(r"^(state|runtime|manifest)\.(\d{6,})\.(safetensors|json)$")


class SessionError(Exception):
    """A session cannot be opened (bad name, in use by another process)."""


class SessionMismatchError(SessionError):
    """The session's state belongs to another model; raised by a loader, never set aside as corrupt."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class SavedGeneration:
    generation: int
    files: dict[str, dict[str, Any]]
    seconds: float


@dataclass
class LoadedGeneration:
    generation: int
    state: Any
    runtime: dict[str, Any]
    moved_aside: list[str] = field(default_factory=list)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a usable session name, else raise SessionError saying why."""
    if not _NAME.match(name or ""):
        raise SessionError(f"bad session name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
                           "starting with a letter or digit")
    return name


class Session:
    """One named session; open it with ``Session.open(name)`` and ``close()`` it when done."""

    def __init__(self, path: Path, name: str, keep: int = 2) -> None:
        self.path = path
        self.name = name
        self.keep = max(2, keep)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            raise SessionError(f"session {name!r} is in use by another process") from None
        self.warnings: list[str] = []   # what opening had to repair, for the front to show
        try:
            self._remove_temporaries()
            self.log = self._open_log()
        except BaseException:
            self._lock_fh.close()
            raise
        self._closed = False

    def _open_log(self) -> EventLog:
        """The event log; a corrupt one is moved aside (kept, never deleted) and a new one started."""
        path = self.path / "events.db"
        try:
            return EventLog(path)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"events.db.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(path) + suffix)
                if src.exists():
                    src.replace(Path(str(aside) + suffix))
            self.warnings.append(f"the event log of session {self.name!r} was corrupt ({exc}); "
                                 f"moved aside to {aside.name}, a new log was started")
            try:
                return EventLog(path)
            except sqlite3.DatabaseError as again:
                raise SessionError(f"cannot open the event log of session {self.name!r}: {again}") from None

    @classmethod
    def open(cls, name: str, root: Path | None = None) -> "Session":
        validate_name(name)
        return cls((root or sessions_dir()) / name, name)

    # -- generations ---------------------------------------------------------------
    def _remove_temporaries(self) -> None:
        # atomic writes killed mid-way leave ".<name>.<random>.tmp" beside the target
        for p in self.path.glob(".*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass

    def _files_of(self, gen: int) -> list[Path]:
        return [self.path / f"state.{gen:06d}.safetensors", self.path / f"runtime.{gen:06d}.json",
                self.path / f"manifest.{gen:06d}.json"]

    def generations(self) -> list[int]:
        """Generations that have a manifest, newest first."""
        gens = []
        for p in self.path.iterdir():
            m = _GEN_FILE.match(p.name)
            if m and m.group(1) == "manifest":
                gens.append(int(m.group(2)))
        return sorted(gens, reverse=True)

    def _all_generation_numbers(self) -> set[int]:
        out = set()
        for p in self.path.iterdir():
            m = _GEN_FILE.match(p.name)
            if m:
                out.add(int(m.group(2)))
        return out

    def _corrupt_generation_numbers(self) -> set[int]:
        folder = self.path / "corrupt"
        if not folder.is_dir():
            return set()
        return {int(p.name.split("-")[0]) for p in folder.iterdir() if p.name.split("-")[0].isdigit()}

    def save(self, state: Any, runtime: dict[str, Any]) -> SavedGeneration:
        """Write a new generation: state, runtime JSON, then the manifest; prune old generations.

        ``state`` must have ``save(path)``. When this returns, the generation is durable.
        """
        t0 = time.perf_counter()
        gen = max(self._all_generation_numbers() | self._corrupt_generation_numbers() | {0}) + 1
        st, rt, mf = self._files_of(gen)
        state.save(st)
        atomic_write_text(rt, json.dumps(runtime, ensure_ascii=False, sort_keys=True))
        files = {p.name: {"sha256": _sha256(p), "size": p.stat().st_size} for p in (st, rt)}
        manifest = {"format": 1, "session": self.name, "generation": gen, "created": time.time(),
                    "state": st.name, "runtime": rt.name, "files": files}
        atomic_write_text(mf, json.dumps(manifest, indent=1, sort_keys=True))
        self._prune(gen)
        return SavedGeneration(gen, files, time.perf_counter() - t0)

    def _prune(self, newest: int) -> None:
        keep = set(self.generations()[: self.keep])
        for gen in self._all_generation_numbers():
            if gen in keep:
                continue
            # older generations beyond `keep`, and orphans of killed saves (no manifest)
            for p in self._files_of(gen):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass

    def _verify(self, gen: int) -> dict[str, Any]:
        mf = self.path / f"manifest.{gen:06d}.json"
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        if manifest.get("generation") != gen:
            raise ValueError("manifest names another generation")
        for name, meta in manifest["files"].items():
            p = self.path / name
            if not p.is_file():
                raise ValueError(f"{name} is missing")
            if p.stat().st_size != meta["size"]:
                raise ValueError(f"{name} has {p.stat().st_size} bytes, manifest says {meta['size']}")
            if _sha256(p) != meta["sha256"]:
                raise ValueError(f"{name} does not match its checksum")
        return manifest

    def _move_aside(self, gen: int, reason: str) -> str:
        dest = self.path / "corrupt" / f"{gen:06d}-{int(time.time() * 1000)}"
        dest.mkdir(parents=True, exist_ok=True)
        for p in self._files_of(gen):
            if p.exists():
                shutil.move(str(p), str(dest / p.name))
        (dest / "reason.txt").write_text(reason + "\n", encoding="utf-8")
        return f"generation {gen} moved aside to {dest}: {reason}"

    def load(self, load_state: Callable[[Path], Any]) -> LoadedGeneration | None:
        """Load the newest good generation (None if the session has none).

        ``load_state(path)`` must return the state or raise on a bad file. Generations that
        fail are moved to ``corrupt/`` and the next older one is tried.
        """
        moved: list[str] = []
        for gen in self.generations():
            try:
                manifest = self._verify(gen)
                runtime = json.loads((self.path / manifest["runtime"]).read_text(encoding="utf-8"))
                state = load_state(self.path / manifest["state"])
            except SessionMismatchError:
                raise                      # a good file for another model: refuse, keep everything
            except Exception as exc:  # any failure of this generation: set it aside, try older
                moved.append(self._move_aside(gen, f"{type(exc).__name__}: {exc}"))
                continue
            return LoadedGeneration(gen, state, runtime, moved)
        if moved:
            return LoadedGeneration(0, None, {}, moved)
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.log.close()
        finally:
            try:
                fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._lock_fh.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
