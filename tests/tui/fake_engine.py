"""A fake engine that follows the Runtime contract of docs/INTERFACES.md, for the TUI tests.

Two ways to drive it:
  * scripted (``step_period=None``): nothing runs on its own; ``run_steps``, ``impulse``,
    ``propose_tool`` and ``submit_user`` publish events synchronously on the caller's thread and
    ``run_steps`` publishes a fresh snapshot. Deterministic by seed: for snapshot tests.
  * paced (``step_period=s``): ``start()`` runs a thread stepping at a fixed pace (one Token
    event per step, a snapshot every 50 ms), like the real engine thread. Scheduler jitter of up
    to ``max_lag`` periods is caught up; steps missed beyond that are dropped, so anything that
    blocks the thread for longer shows up as lost steps.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from engine.store.paths import sessions_dir

OPCODES = ["NOP", "READ_MEM", "WRITE_MEM", "CLEAR_MEM", "IDLE", "GATE_UP", "GATE_DOWN", "SCAN", "COMMIT", "RESPOND"]
OPCODE_P = np.array([0.42, 0.16, 0.14, 0.04, 0.06, 0.05, 0.04, 0.04, 0.02, 0.03])
DRIVES = [("memory_pressure", 0.10, 0.85), ("routing_entropy", 0.40, 0.90), ("commitments", -0.5, 0.5),
          ("confidence", 0.30, 1.00), ("idle_seconds", 0.0, 30.0)]
T0 = 1_764_000_000.0   # a fixed clock origin for scripted events
_ids = itertools.count(1)


@dataclass(frozen=True)
class Event:
    type: str
    payload: dict = field(default_factory=dict)
    sender: str = "engine"
    priority: int = 0
    id: int = field(default_factory=lambda: next(_ids))
    ts: float = field(default_factory=time.time)
    commitment_delta: int = 0
    commitment_id: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Snapshot:
    ts: float
    status: str
    tokens_per_s: float
    session: str | None
    adapter_version: int | None
    registers: list
    memory_valid: list
    memory_utility: list
    memory_age: list
    memory_reads: list
    memory_writes: list
    opcodes: list
    drives: list
    counters: dict
    pending_tools: list


class FakeBus:
    """Subscribers are called on the publishing thread; a failing subscriber is ignored."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribers: list[tuple[str, Callable[[Event], None]]] = []

    def subscribe(self, event_type: str, callback: Callable[[Event], None]) -> None:
        with self.lock:
            self.subscribers.append((event_type, callback))

    def publish(self, event: Event) -> None:
        with self.lock:
            subs = list(self.subscribers)
        for kind, cb in subs:
            if kind in ("*", event.type):
                try:
                    cb(event)
                except Exception:
                    pass


class FakeToolService:
    """The duck-typed tool service the TUI calls: ``pending()``, ``get(key)``, ``approve(name, hash)``,
    ``reject(name, hash)``. Like a service wired to the runtime, it publishes the lifecycle events."""

    def __init__(self, engine: "FakeEngine") -> None:
        self.engine = engine
        self.proposed: dict[str, dict] = {}
        self.registered: dict[str, dict] = {}
        self.rejected: dict[str, dict] = {}

    def pending(self) -> list[dict]:
        return [{"name": d["name"], "hash": h, "description": d["description"]} for h, d in self.proposed.items()]

    def get(self, key: str) -> dict | None:
        for h, d in self.proposed.items():
            if key in (h, d["name"]):
                return {**d, "hash": h}
        return None

    def pop(self, name: str, hash: str | None) -> tuple[str, dict]:
        for h, d in list(self.proposed.items()):
            if d["name"] == name and hash in (None, h):
                del self.proposed[h]
                return h, d
        raise KeyError(f"no pending proposal {name!r} {hash or ''}")

    def approve(self, name: str, hash: str | None = None) -> None:
        h, d = self.pop(name, hash)
        self.registered[d["name"]] = d
        self.engine.publish("ToolApproved", {"name": d["name"], "hash": h, "by": "person"})
        self.engine.publish("ToolRegistered", {"name": d["name"], "hash": h, "version": 1})
        self.engine.publish_snapshot()

    def reject(self, name: str, hash: str | None = None) -> None:
        h, d = self.pop(name, hash)
        self.rejected[h] = d
        self.engine.publish("ToolDenied", {"name": d["name"], "hash": h, "by": "person"})
        self.engine.publish_snapshot()


class FakeEngine:
    """Deterministic stand-in for engine.runtime.Engine with small VM dimensions."""

    def __init__(self, layers: int = 3, timescales: int = 4, channels: int = 48, buckets: int = 64,
                 ways: int = 4, session: str = "test", seed: int = 0, step_period: float | None = None,
                 snapshot_every: float = 0.05, max_lag: int = 10) -> None:
        self.rng = np.random.default_rng(seed)
        self.L, self.K, self.R, self.NB, self.W = layers, timescales, channels, buckets, ways
        self.session = session
        self.step_period = step_period
        self.snapshot_every = snapshot_every
        self.max_lag = max_lag             # periods a paced step may run late before steps are dropped
        self.bus = FakeBus()
        self.tools = FakeToolService(self)
        self.lam = np.linspace(0.5, 0.99, timescales)[None, :, None]           # fast -> slow
        self.registers = np.zeros((layers, timescales, channels))
        self.valid = np.zeros((layers, buckets, ways), dtype=bool)
        self.utility = np.zeros((layers, buckets, ways))
        self.age = np.zeros((layers, buckets, ways))
        self.reads: list[list[tuple[int, int]]] = [[] for _ in range(layers)]
        self.writes: list[list[tuple[int, int]]] = [[] for _ in range(layers)]
        self.opcodes: list[list[str]] = []
        self.steps = 0
        self.status = "idle"
        self.reply: list[str] = []         # characters still to emit (paced mode)
        self.snapshot: Snapshot | None = None
        self.clock = T0                    # scripted time; the paced thread uses time.time()
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.thread: threading.Thread | None = None
        self.started = False
        self.stopped = False
        self.saved_to = None

    # ----------------------------------------------------------- the contract
    def start(self) -> None:
        self.started = True
        self.status = "awake"
        if self.step_period is not None:
            self.thread = threading.Thread(target=self.loop, name="fake-engine", daemon=True)
            self.thread.start()

    def submit_user(self, text: str) -> None:
        self.publish("UserMessage", {"text": text})
        reply = f"you said: {text}"
        if self.thread is None:
            for ch in reply:
                self.publish("Token", {"text": ch})
            self.publish("Response", {"text": reply})
        else:
            with self.lock:
                self.reply.extend(reply)

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(timeout)
        folder = sessions_dir() / self.session
        folder.mkdir(parents=True, exist_ok=True)
        self.saved_to = folder / "fake_state.json"
        self.saved_to.write_text(json.dumps({"steps": self.steps}))
        self.stopped = True
        self.publish("StateSaved", {"session": self.session, "path": str(self.saved_to)})
        self.publish("Stopped", {})

    def latest_snapshot(self) -> Snapshot | None:
        return self.snapshot

    # ------------------------------------------------------------ simulation
    def now(self) -> float:
        return time.time() if self.thread is not None else self.clock

    def publish(self, kind: str, payload: dict | None = None) -> None:
        self.bus.publish(Event(kind, payload or {}, ts=self.now()))

    def step(self) -> None:
        """One machine cycle: registers integrate noise, the memory is written and read, opcodes decoded."""
        rng = self.rng
        x = rng.normal(size=(self.L, 1, self.R)) * np.linspace(1.0, 0.3, self.L)[:, None, None]
        self.registers = self.lam * self.registers + (1 - self.lam) * x
        ops = [OPCODES[i] for i in rng.choice(len(OPCODES), size=self.L, p=OPCODE_P)]
        self.age += 1
        for layer, op in enumerate(ops):
            if op == "WRITE_MEM":
                b, w = int(rng.integers(self.NB)), int(rng.integers(self.W))
                self.valid[layer, b, w] = True
                self.utility[layer, b, w] = rng.uniform(0.2, 1.0)
                self.age[layer, b, w] = 0
                self.writes[layer].append((b, w))
            elif op == "READ_MEM" and self.valid[layer].any():
                slots = np.argwhere(self.valid[layer])
                b, w = slots[rng.integers(len(slots))]
                self.reads[layer].append((int(b), int(w)))
            elif op == "CLEAR_MEM" and self.valid[layer].any():
                slots = np.argwhere(self.valid[layer])
                b, w = slots[rng.integers(len(slots))]
                self.valid[layer, b, w] = False
        self.opcodes = (self.opcodes + [ops])[-256:]
        self.steps += 1
        self.clock += 0.01
        with self.lock:
            ch = self.reply.pop(0) if self.reply else None
            done = ch is not None and not self.reply
        self.publish("Token", {"text": ch if ch is not None else "", "step": self.steps})
        if done:
            self.publish("Response", {"text": "(reply complete)"})

    def drives(self) -> list[dict]:
        occupancy = float(self.valid.mean())
        values = [occupancy, 0.55, 0.0, 0.7, 3.0]
        out = []
        for (name, low, high), value in zip(DRIVES, values):
            distance = max(low - value, value - high, 0.0)
            out.append({"name": name, "value": value, "low": low, "high": high, "urgency": round(distance, 3)})
        return out

    def publish_snapshot(self, tokens_per_s: float = 123.4) -> None:
        """Freeze the current state into a new Snapshot (reads/writes since the previous one)."""
        snap = Snapshot(
            ts=self.now(), status=self.status, tokens_per_s=tokens_per_s, session=self.session,
            adapter_version=3, registers=self.registers.tolist(), memory_valid=self.valid.tolist(),
            memory_utility=self.utility.tolist(), memory_age=self.age.tolist(),
            memory_reads=[list(r) for r in self.reads], memory_writes=[list(w) for w in self.writes],
            opcodes=[list(o) for o in self.opcodes[-128:]], drives=self.drives(),
            counters={"steps": self.steps}, pending_tools=self.tools.pending())
        self.reads = [[] for _ in range(self.L)]
        self.writes = [[] for _ in range(self.L)]
        self.snapshot = snap

    # --------------------------------------------------------------- scripted
    def run_steps(self, n: int) -> None:
        """Scripted mode: ``n`` steps, then one snapshot."""
        for _ in range(n):
            self.step()
        self.publish_snapshot()

    def impulse(self, drive: str, urgency: float = 0.8) -> None:
        self.publish("Impulse", {"drive": drive, "urgency": urgency, "text": f"{drive} out of band"})

    def propose_tool(self, name: str = "word_count", source: str | None = None, errors: list | None = None) -> str:
        """Publish a ToolProposed event for a small tool; returns its hash."""
        source = source or ("def word_count(text: str) -> int:\n"
                            "    \"\"\"Count the words in text.\"\"\"\n"
                            "    return len(text.split())\n")
        definition = {"name": name, "description": "count the words in a piece of text",
                      "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                                     "required": ["text"]},
                      "implementation": source, "sandbox": True}
        h = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
        self.tools.proposed[h] = definition
        self.publish("ToolProposed", {**definition, "hash": h, "errors": list(errors or [])})
        return h

    # ------------------------------------------------------------------ paced
    def loop(self) -> None:
        period = self.step_period or 0.0
        next_t = time.perf_counter()
        last_snap = 0.0
        counted_from, counted_steps = time.perf_counter(), 0
        while not self.stop_flag.is_set():
            self.step()
            now = time.perf_counter()
            if now - last_snap >= self.snapshot_every:
                rate = (self.steps - counted_steps) / max(now - counted_from, 1e-9)
                counted_from, counted_steps = now, self.steps
                self.publish_snapshot(tokens_per_s=rate)
                last_snap = now
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -self.max_lag * period:
                next_t = time.perf_counter()   # fell far behind: drop the missed steps
