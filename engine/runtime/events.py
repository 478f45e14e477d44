"""The event envelope every part of the runtime speaks: a frozen, JSON-safe record.

Payloads are plain JSON values (dict / list / str / int / float / bool / None),
never bytes or tensors, so every event can be printed as one JSON line and kept
in the session's event log unchanged.
"""
from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Priorities: larger is handled first. Impulses sit between PRIORITY_LOW and
# PRIORITY_USER, growing with urgency (see drives.impulse_priority).
PRIORITY_LOW = 0
PRIORITY_NORMAL = 10
PRIORITY_IMPULSE_BASE = 20
PRIORITY_USER = 100
PRIORITY_CONTROL = 1000   # Stop and other control messages overtake everything

# Event types used across parts (docs/INTERFACES.md); TurnEnded is the runtime's
# marker that a turn (user-initiated or self-activated) is over.
EVENT_TYPES = (
    "UserMessage", "Response", "Token", "Impulse", "SelfActivated", "TurnEnded",
    "Consolidated", "CommitmentOpened", "CommitmentClosed", "CommitmentError",
    "EngineError", "StateSaved", "SessionLoaded", "ToolProposed", "ToolRegistered",
    "ToolRejected", "ToolApproved", "ToolDenied", "ToolCalled", "ToolResult",
    "ToolDeprecated", "ToolDefinitionRetried", "ToolNameHinted", "AdapterUpdated", "AdapterReverted",
    "Started", "Stopped",
)

_seq = itertools.count()


def _check_json(value: Any) -> None:
    """Raise TypeError if ``value`` is not made of plain JSON values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_json(v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"event payload keys must be str, got {type(k).__name__}")
            _check_json(v)
        return
    raise TypeError(f"event payload values must be JSON values, got {type(value).__name__}")


@dataclass(frozen=True)
class Event:
    """One event. ``payload`` holds plain JSON values; ``seq`` breaks ties of equal (priority, ts)."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    sender: str = "engine"
    priority: int = PRIORITY_NORMAL
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: float = field(default_factory=time.time)
    commitment_delta: int = 0
    commitment_id: str | None = None
    seq: int = field(default_factory=lambda: next(_seq), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise ValueError("event type must be a non-empty string")
        if self.commitment_delta not in (-1, 0, 1):
            raise ValueError(f"commitment_delta must be -1, 0 or 1, got {self.commitment_delta!r}")
        _check_json(self.payload)

    def to_json(self) -> dict[str, Any]:
        """A plain dict (always with 'type' and 'ts'), ready for json.dumps."""
        out: dict[str, Any] = {"type": self.type, "ts": self.ts, "id": self.id,
                               "sender": self.sender, "priority": self.priority,
                               "payload": self.payload}
        if self.commitment_delta or self.commitment_id is not None:
            out["commitment_delta"] = self.commitment_delta
            out["commitment_id"] = self.commitment_id
        return out

    def dumps(self) -> str:
        """One JSON line (no newline)."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Event":
        """Inverse of to_json (the event log reads events back with it)."""
        return cls(type=d["type"], payload=d.get("payload") or {}, sender=d.get("sender", "engine"),
                   priority=int(d.get("priority", PRIORITY_NORMAL)), id=d.get("id") or uuid.uuid4().hex,
                   ts=float(d.get("ts", time.time())),
                   commitment_delta=int(d.get("commitment_delta", 0)),
                   commitment_id=d.get("commitment_id"))


def make(type: str, priority: int = PRIORITY_NORMAL, sender: str = "engine", **payload: Any) -> Event:
    """Shorthand: ``make("Response", text="hi")``."""
    return Event(type=type, payload=payload, sender=sender, priority=priority)
