"""Immutable, throttled views of the engine for observers (TUI, CLI): built on the engine thread.

A Snapshot holds only tuples, floats, ints and strings, so a reader on another
thread can never see it change, and building one never waits for a reader.
"""
from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

Grid = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Snapshot:
    ts: float
    status: str                                    # 'awake' | 'idle' | 'consolidating'
    tokens_per_s: float
    session: str | None
    adapter_version: str | None
    registers: tuple[Grid, ...]                    # per layer: K x R floats (batch row 0)
    memory_valid: tuple[Grid, ...]                 # per layer: NB x W (0/1)
    memory_utility: tuple[Grid, ...]               # per layer: NB x W
    memory_age: tuple[Grid, ...]                   # per layer: NB x W, tokens since the write (0 if empty)
    memory_reads: tuple[tuple[tuple[int, int], ...], ...]   # per layer: (bucket, way) read since last snapshot
    memory_writes: tuple[tuple[tuple[int, int], ...], ...]  # per layer: (bucket, way) written since last snapshot
    opcodes: tuple[tuple[str, ...], ...]           # recent steps, each L opcode names (oldest first)
    drives: tuple[Mapping[str, Any], ...]          # dict(name, value, low, high, urgency) per drive
    counters: Mapping[str, Any]
    pending_tools: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


def _grid(t: torch.Tensor) -> Grid:
    return tuple(tuple(row) for row in t.tolist())


def state_digest(state: Any) -> str:
    """sha256 over every layer's memory table (keys, values, utility, age, valid) of all batch rows."""
    h = hashlib.sha256()
    for layer in state.layers:
        for name in ("mem_keys", "mem_values", "mem_utility", "mem_age", "mem_valid"):
            t = getattr(layer, name).detach().contiguous().cpu()
            h.update(name.encode())
            if t.numel():
                h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class SnapshotBuilder:
    """Collects per-step touches and builds a Snapshot at most ``hz`` times a second (engine thread)."""

    def __init__(self, n_layers: int, hz: float = 20.0, history: int = 64) -> None:
        self.min_interval = 1.0 / hz if hz > 0 else float("inf")
        self._last_build = -float("inf")
        self._reads: list[set[tuple[int, int]]] = [set() for _ in range(n_layers)]
        self._writes: list[set[tuple[int, int]]] = [set() for _ in range(n_layers)]
        self.opcodes: deque[tuple[str, ...]] = deque(maxlen=history)
        self._steps_since = 0
        self._tps = 0.0
        self._tps_mark = time.monotonic()

    def on_step(self, opnames: tuple[str, ...], reads: list[list[int]] | None,
                writes: list[tuple[int, int]] | None) -> None:
        """opnames: L names; reads: per layer bucket ids read; writes: per layer (bucket, way) or (-1,-1)."""
        self.opcodes.append(opnames)
        self._steps_since += 1
        if reads is not None:
            for layer, buckets in enumerate(reads):
                for b in buckets:
                    if b >= 0:
                        self._reads[layer].add((b, -1))
        if writes is not None:
            for layer, (b, w) in enumerate(writes):
                if b >= 0:
                    self._writes[layer].add((b, w))

    def on_writes(self, per_layer: list[list[tuple[int, int]]]) -> None:
        """(bucket, way) slots written per layer, e.g. by a prefilled turn."""
        for layer, slots in enumerate(per_layer):
            self._writes[layer].update(slots)

    @property
    def last_build(self) -> float:
        return self._last_build

    def idle_since_build(self) -> bool:
        return self._steps_since == 0

    def due(self, now: float) -> bool:
        return now - self._last_build >= self.min_interval

    def build(self, state: Any, status: str, session: str | None, adapter_version: str | None,
              drives: list[dict], counters: dict, pending_tools: list[dict] | None = None) -> Snapshot:
        now = time.monotonic()
        dt = now - self._tps_mark
        if dt > 0:
            self._tps = self._steps_since / dt
        self._steps_since, self._tps_mark, self._last_build = 0, now, now
        pos = int(state.position[0])
        regs, valid, util, age = [], [], [], []
        for layer in state.layers:
            regs.append(_grid(layer.registers[0]))
            valid.append(_grid(layer.mem_valid[0].float()))
            util.append(_grid(layer.mem_utility[0]))
            age.append(_grid(((pos - layer.mem_age[0]) * layer.mem_valid[0]).float()))
        snap = Snapshot(
            ts=time.time(), status=status, tokens_per_s=round(self._tps, 2), session=session,
            adapter_version=adapter_version, registers=tuple(regs), memory_valid=tuple(valid),
            memory_utility=tuple(util), memory_age=tuple(age),
            memory_reads=tuple(tuple(sorted(s)) for s in self._reads),
            memory_writes=tuple(tuple(sorted(s)) for s in self._writes),
            opcodes=tuple(self.opcodes), drives=tuple(dict(d) for d in drives),
            counters=dict(counters), pending_tools=tuple(dict(t) for t in (pending_tools or ())))
        for s in self._reads:
            s.clear()
        for s in self._writes:
            s.clear()
        return snap
