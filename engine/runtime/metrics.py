"""Metrics the drives read, taken from the live state and from each model step.

All values are floats in a plain dict:
  memory_occupancy       fraction of valid memory slots over all layers (0..1)
  write_rate             moving average of memory writes per step (0..layers)
  routing_entropy        mean router entropy per step / log(buckets) (0..1)
  logit_entropy          moving average of the output distribution's entropy / log(256) (0..1;
                         high = low confidence)
  open_commitments       commitments open in the ledger
  commitment_balance     opens - closes over the session
  idle_s                 seconds since the last user message or model turn
  unconsolidated_writes  memory writes since the last consolidation pass
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any

import torch

LOG_VOCAB = math.log(256)


def logit_entropy(logits: torch.Tensor) -> float:
    """Entropy of softmax(logits) for batch row 0, divided by log(vocab). logits: [B, V]."""
    lp = torch.log_softmax(logits[0].float(), dim=-1)
    h = float(-(lp.exp() * lp).sum())
    return h / math.log(logits.shape[-1])


def memory_occupancy(state: Any) -> float:
    """Fraction of valid slots in batch row 0 over all layers (mem_valid: [B, NB, W])."""
    valid = total = 0
    for layer in state.layers:
        v = getattr(layer, "mem_valid", None)
        if v is None or v.numel() == 0:
            continue
        valid += int(v[0].sum())
        total += v[0].numel()
    return valid / total if total else 0.0


class MetricsTracker:
    """Accumulates per-step signals (engine thread) and answers ``values()`` (any thread)."""

    def __init__(self, ema: float = 0.05, num_buckets: int | None = None) -> None:
        self.ema = ema
        self._log_buckets = math.log(num_buckets) if num_buckets and num_buckets > 1 else None
        self._lock = threading.Lock()
        self._values: dict[str, float] = {
            "memory_occupancy": 0.0, "write_rate": 0.0, "routing_entropy": 0.0,
            "logit_entropy": 0.0, "open_commitments": 0.0, "commitment_balance": 0.0,
            "idle_s": 0.0, "unconsolidated_writes": 0.0,
        }
        self._overrides: dict[str, float] = {}
        self._seen_entropy = False
        self.last_activity = time.monotonic()
        self.total_writes = 0
        self.total_clears = 0
        self.total_reads = 0

    def _avg(self, key: str, x: float) -> None:
        self._values[key] = (1 - self.ema) * self._values[key] + self.ema * x

    def on_step(self, logits: torch.Tensor, writes: int, clears: int, reads: int,
                router_entropy: float | None) -> None:
        """Fold one model step in. logits [B, 256]; counts are over layers for batch row 0."""
        h = logit_entropy(logits)
        with self._lock:
            if not self._seen_entropy:   # start the average at the first value, not at 0
                self._values["logit_entropy"] = h
                self._seen_entropy = True
            else:
                self._avg("logit_entropy", h)
            self._avg("write_rate", float(writes))
            if router_entropy is not None:
                norm = router_entropy / self._log_buckets if self._log_buckets else router_entropy
                self._avg("routing_entropy", norm)
            self._values["unconsolidated_writes"] += writes
            self.total_writes += writes
            self.total_clears += clears
            self.total_reads += reads

    def on_prefill(self, logits: torch.Tensor, writes: int) -> None:
        """Fold a prefilled turn in. logits: [T, 256] (batch row 0); writes: slots written by it."""
        lp = torch.log_softmax(logits.float(), dim=-1)
        hs = (-(lp.exp() * lp).sum(-1) / math.log(logits.shape[-1])).tolist()
        per = writes / max(1, len(hs))
        with self._lock:
            for h in hs:
                if not self._seen_entropy:
                    self._values["logit_entropy"] = h
                    self._seen_entropy = True
                else:
                    self._avg("logit_entropy", h)
                self._avg("write_rate", per)
            self._values["unconsolidated_writes"] += writes
            self.total_writes += writes

    def on_activity(self) -> None:
        """A user message or a model turn happened: idle time starts again."""
        self.last_activity = time.monotonic()

    def on_consolidated(self) -> None:
        with self._lock:
            self._values["unconsolidated_writes"] = 0.0

    def refresh(self, state: Any, ledger: Any) -> None:
        """Recompute the metrics read from the live state and the ledger (engine thread)."""
        occ = memory_occupancy(state)
        with self._lock:
            self._values["memory_occupancy"] = occ
            self._values["open_commitments"] = float(ledger.open_count)
            self._values["commitment_balance"] = float(ledger.opens - ledger.closes)
            self._values["idle_s"] = time.monotonic() - self.last_activity

    def inject(self, name: str, value: float | None) -> None:
        """Pin metric ``name`` to ``value`` (None releases it): tests and what-if experiments."""
        with self._lock:
            if value is None:
                self._overrides.pop(name, None)
            else:
                self._overrides[name] = float(value)

    def values(self) -> dict[str, float]:
        with self._lock:
            out = dict(self._values)
            out["idle_s"] = time.monotonic() - self.last_activity
            out.update(self._overrides)
            return out

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"unconsolidated_writes": self._values["unconsolidated_writes"],
                    "total_writes": self.total_writes, "total_clears": self.total_clears,
                    "total_reads": self.total_reads}

    def load_dict(self, d: dict[str, Any]) -> None:
        with self._lock:
            self._values["unconsolidated_writes"] = float(d.get("unconsolidated_writes", 0.0))
            self.total_writes = int(d.get("total_writes", 0))
            self.total_clears = int(d.get("total_clears", 0))
            self.total_reads = int(d.get("total_reads", 0))
