"""The commitment ledger: what the model said it would do and has not done yet.

Every operation returns the event that describes it; nothing here raises on a
bad request (a hallucinated close, a close with no open commitment, a duplicate
id): those become ``CommitmentError`` events and the engine goes on.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from engine.runtime.events import Event


@dataclass
class Commitment:
    id: str
    sender: str
    opened_ts: float
    text: str = ""


@dataclass
class CommitmentLedger:
    open_items: dict[str, Commitment] = field(default_factory=dict)   # insertion order = open order
    opens: int = 0
    closes: int = 0
    closes_without_id: int = 0
    errors: int = 0
    latency_sum_s: float = 0.0

    @property
    def open_count(self) -> int:
        return len(self.open_items)

    def oldest_open_age_s(self, now: float | None = None) -> float:
        """Seconds the oldest open commitment has waited (0 if none)."""
        if not self.open_items:
            return 0.0
        now = time.time() if now is None else now
        return max(0.0, now - min(c.opened_ts for c in self.open_items.values()))

    def _error(self, reason: str, commitment_id: str | None, sender: str, delta: int) -> Event:
        self.errors += 1
        return Event("CommitmentError", {"reason": reason, "open": self.open_count},
                     sender=sender, commitment_delta=delta, commitment_id=commitment_id)

    def open(self, commitment_id: str | None = None, sender: str = "model", text: str = "") -> Event:
        """Open a commitment (a fresh id if none given). A duplicate open id is an error event."""
        cid = commitment_id or uuid.uuid4().hex[:12]
        if cid in self.open_items:
            return self._error("already open", cid, sender, +1)
        self.open_items[cid] = Commitment(cid, sender, time.time(), text)
        self.opens += 1
        return Event("CommitmentOpened", {"text": text, "open": self.open_count},
                     sender=sender, commitment_delta=+1, commitment_id=cid)

    def close(self, commitment_id: str | None = None, sender: str = "model") -> Event:
        """Close ``commitment_id``, or without an id the sender's most recent open one (else any)."""
        if commitment_id is None:
            mine = [c for c in self.open_items.values() if c.sender == sender]
            pool = mine or list(self.open_items.values())
            if not pool:
                return self._error("close without id and nothing open", None, sender, -1)
            commitment_id = pool[-1].id
            self.closes_without_id += 1
        item = self.open_items.pop(commitment_id, None)
        if item is None:
            return self._error("unknown commitment", commitment_id, sender, -1)
        latency = max(0.0, time.time() - item.opened_ts)
        self.closes += 1
        self.latency_sum_s += latency
        return Event("CommitmentClosed", {"latency_s": round(latency, 4), "open": self.open_count},
                     sender=sender, commitment_delta=-1, commitment_id=commitment_id)

    def apply(self, delta: int, commitment_id: str | None = None, sender: str = "model", text: str = "") -> Event | None:
        """Apply a commitment delta (+1 open, -1 close, 0 nothing)."""
        if delta > 0:
            return self.open(commitment_id, sender, text)
        if delta < 0:
            return self.close(commitment_id, sender)
        return None

    # -- persistence (the session keeps it beside the VM state) -------------------
    def to_dict(self) -> dict[str, Any]:
        return {"open": [vars(c) for c in self.open_items.values()], "opens": self.opens,
                "closes": self.closes, "closes_without_id": self.closes_without_id,
                "errors": self.errors, "latency_sum_s": self.latency_sum_s}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CommitmentLedger":
        led = cls(opens=int(d.get("opens", 0)), closes=int(d.get("closes", 0)),
                  closes_without_id=int(d.get("closes_without_id", 0)), errors=int(d.get("errors", 0)),
                  latency_sum_s=float(d.get("latency_sum_s", 0.0)))
        for c in d.get("open", []):
            led.open_items[c["id"]] = Commitment(c["id"], c.get("sender", "model"),
                                                 float(c.get("opened_ts", time.time())), c.get("text", ""))
        return led
