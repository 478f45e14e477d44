"""Test helpers: the real tiny model when engine.vm has it, opcode forcing, event recording."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Callable

import torch

from engine.runtime.events import Event


def tiny_model():
    """The real MosaicLM on ModelConfig.preset('tiny'), seeded."""
    from engine.vm import ModelConfig, MosaicLM
    torch.manual_seed(0)
    return MosaicLM(ModelConfig.preset("tiny")).eval()


class ScriptedModel:
    """Wraps a model: after the END of a non-model turn (or of a tool definition, which the model
    follows with its own words), greedy decoding spells ``reply`` and the
    last layer's opcode on the reply's first byte is ``first_op`` (RESPOND by default).

    Only the step *output* is changed (logits, last-layer opcode); the real model still runs and
    mutates the state as it would.
    """

    def __init__(self, model, reply: str | list[str] = "\x12ok\n", first_op: int = 9,
                 op_override: Callable[[int], int | None] | None = None, commit: int = 0) -> None:
        self.inner = model
        self.config = getattr(model, "config", None)
        self.replies = [r.encode() for r in ([reply] if isinstance(reply, str) else reply)]
        self.reply = self.replies[0]
        self.n_scripts = 0
        self.first_op = first_op
        self.op_override = op_override
        self.commit = commit             # COMMIT with this delta on the END of each scripted reply
        self._pos: int | None = None     # index into reply of the byte to be produced next
        self._prev_role: int | None = None
        self.fail_next = 0               # raise in the next N steps
        self.steps = 0
        self.lock = threading.Lock()
        self.roles_seen: list[int] = []  # every role byte the model read or wrote, in order

    def parameters(self):
        return self.inner.parameters()

    def init_state(self, *a, **k):
        return self.inner.init_state(*a, **k)

    def _start_script(self) -> None:
        self._pos, self._prev_role = 0, None
        self.reply = self.replies[min(self.n_scripts, len(self.replies) - 1)]
        self.n_scripts += 1

    def __call__(self, ids, state=None, teacher=None):
        """The forward path (the engine prefills input turns with it): same bookkeeping as step."""
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise RuntimeError("injected forward failure")
        out = self.inner(ids, state=state)
        data = ids[0].tolist()
        logits, aux = out.logits.clone(), dict(out.aux)
        opcodes = aux["opcodes"].clone()
        for t, b in enumerate(data):
            if 0x11 <= b <= 0x17:
                self._prev_role = b
                self.roles_seen.append(b)
                if b == 0x13 and int(opcodes[0, t, -1]) == 4:
                    opcodes[0, t, -1] = 0
            if b == 0x0A and self._prev_role in (0x11, 0x13, 0x14, 0x16):
                self._start_script()
            if self.op_override is not None:
                op = self.op_override(b)
                if op is not None:
                    opcodes[0, t, -1] = op
        if self._pos == 0:       # the fed turn ended: its last logits choose the reply's first byte
            logits[0, -1] = -1e4
            logits[0, -1, self.reply[0]] = 1e4
            self._pos = 1
        aux["opcodes"] = opcodes
        return SimpleNamespace(logits=logits, state=out.state, aux=aux)

    def step(self, ids, state):
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise RuntimeError("injected step failure")
        self.steps += 1
        out = self.inner.step(ids, state)
        b = int(ids[0])
        logits, opcodes = out.logits.clone(), out.opcodes.clone()
        if self._pos == 1 and b == self.reply[0]:
            opcodes[0, -1] = self.first_op
        if 0x11 <= b <= 0x17:
            self._prev_role = b
            self.roles_seen.append(b)
            if b == 0x13 and int(opcodes[0, -1]) == 4:
                opcodes[0, -1] = 0        # never decline an impulse unless a test says so
        if b == 0x0A and self._prev_role in (0x11, 0x13, 0x14, 0x16):
            self._start_script()
        if self._pos is not None:
            if self._pos < len(self.reply):
                if int(opcodes[0, -1]) == 4:
                    opcodes[0, -1] = 0    # keep the scripted reply from being cut short
                logits[0] = -1e4
                logits[0, self.reply[self._pos]] = 1e4
                self._pos += 1
            else:
                self._pos = None
                if self.commit:
                    opcodes[0, -1] = 8
                    info = dict(out.info)
                    info["commit_delta"] = out.info["commit_delta"].clone()
                    info["commit_delta"][0, -1] = self.commit
                    out = SimpleNamespace(logits=out.logits, opcodes=out.opcodes, info=info)
        if self.op_override is not None:
            op = self.op_override(b)
            if op is not None:
                opcodes[0, -1] = op
        return SimpleNamespace(logits=logits, opcodes=opcodes, info=out.info)


class Recorder:
    """Subscribes to ``"*"`` on a bus and keeps every event; ``wait_for`` polls with a deadline."""

    def __init__(self, bus) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        bus.subscribe("*", self._on)

    def _on(self, ev: Event) -> None:
        with self._lock:
            self.events.append(ev)

    def of(self, type_: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.type == type_]

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 30.0) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for e in self.events:
                    if pred(e):
                        return e
            time.sleep(0.01)
        raise AssertionError(f"no matching event within {timeout}s; saw "
                             f"{sorted({e.type for e in self.events})}")
