"""Adapters on disk, per session, versioned, in PEFT's own format.

    MOSAIC_HOME/sessions/<name>/adapters/
        v1/  adapter_model.safetensors  adapter_config.json  README.md  mosaic.json
        v2/  ...
        current          "v2\\n"  (written atomically)

A version is written into a hidden temporary folder beside the others and
renamed into place, so a reader (or a crash) sees a whole version or none.
``mosaic.json`` holds the learner's counters at save time (version, updates,
reverts, last loss, the base model's fingerprint).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from engine.store.atomic import atomic_write_text, fsync_dir
from engine.store.paths import sessions_dir

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftModel

_VERSION = re.compile(r"^v(\d+)$")
META_FILE = "mosaic.json"
CURRENT_FILE = "current"


class AdapterStoreError(ValueError):
    """A one-line problem with stored adapters (unknown session or version, bad name)."""


def check_session_name(name: str) -> str:
    """Return ``name`` if it is a valid session name (the sessions' own rule), else raise AdapterStoreError."""
    from engine.store.sessions import SessionError, validate_name
    try:
        return validate_name(name)
    except SessionError as exc:
        raise AdapterStoreError(str(exc)) from None


def _valid_name(name: str) -> bool:
    try:
        check_session_name(name)
    except AdapterStoreError:
        return False
    return True


def adapters_dir(session: str) -> Path:
    """``MOSAIC_HOME/sessions/<session>/adapters`` (not created)."""
    return sessions_dir() / check_session_name(session) / "adapters"


def list_versions(session: str) -> list[int]:
    """The saved version numbers of ``session``, ascending ([] if none)."""
    root = adapters_dir(session)
    if not root.is_dir():
        return []
    out = []
    for entry in root.iterdir():
        m = _VERSION.match(entry.name)
        if m and entry.is_dir():
            out.append(int(m.group(1)))
    return sorted(out)


def current_version(session: str) -> int | None:
    """The version the ``current`` pointer names, or None if there is none (or it names a missing version)."""
    pointer = adapters_dir(session) / CURRENT_FILE
    try:
        text = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    m = _VERSION.match(text)
    if not m or not (adapters_dir(session) / text).is_dir():
        return None
    return int(m.group(1))


def version_dir(session: str, version: int | None = None) -> Path:
    """The folder of ``version`` (default: current) of ``session``; AdapterStoreError if absent."""
    if version is None:
        version = current_version(session)
        if version is None:
            raise AdapterStoreError(f"session {session!r} has no saved adapters")
    folder = adapters_dir(session) / f"v{version}"
    if not folder.is_dir():
        raise AdapterStoreError(
            f"session {session!r} has no adapter version {version} (saved: {list_versions(session)})")
    return folder


def save(peft_model: "PeftModel", session: str, version: int, meta: dict | None = None) -> Path:
    """Save the adapter as ``v<version>`` (PEFT save_pretrained) and point ``current`` at it.

    If ``v<version>`` already exists it is left as it is (a version is immutable)
    and only ``current`` moves. Returns the version folder.
    """
    if version < 1:
        raise AdapterStoreError(f"adapter versions start at 1, got {version}")
    root = adapters_dir(session)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"v{version}"
    if not final.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f".v{version}.", suffix=".tmp", dir=root))
        try:
            # the adapter only: PEFT would otherwise also save a targeted lm_head's base weight
            peft_model.save_pretrained(str(tmp), save_embedding_layers=False)
            info = dict(meta or {})
            info["version"] = version
            atomic_write_text(tmp / META_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(root)
    atomic_write_text(root / CURRENT_FILE, f"v{version}\n")
    return final


def read_meta(session: str, version: int | None = None) -> dict:
    """The ``mosaic.json`` and ``adapter_config.json`` of a version, plus file sizes."""
    folder = version_dir(session, version)
    meta = {}
    if (folder / META_FILE).is_file():
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    config = {}
    if (folder / "adapter_config.json").is_file():
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    weights = folder / "adapter_model.safetensors"
    m = _VERSION.match(folder.name)
    return {
        "session": session,
        "version": int(m.group(1)) if m else None,
        "current": current_version(session) == (int(m.group(1)) if m else None),
        "path": str(folder),
        "bytes": weights.stat().st_size if weights.is_file() else 0,
        "rank": config.get("r"),
        "alpha": config.get("lora_alpha"),
        "targets": sorted(config.get("target_modules") or []),
        "meta": meta,
    }


def reset(session: str) -> int:
    """Delete every saved adapter version of ``session``; returns how many were removed."""
    root = adapters_dir(session)
    n = len(list_versions(session))
    if root.is_dir():
        # rename first so a crash never leaves a half-deleted tree that looks valid
        doomed = root.with_name(f".adapters.deleting.{os.getpid()}")
        os.rename(root, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return n


def sessions_with_adapters() -> list[str]:
    """Names of the sessions that have at least one saved adapter version."""
    root = sessions_dir()
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and _valid_name(p.name) and list_versions(p.name))
