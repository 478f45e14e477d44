"""One labelled training example and the builder that writes turns into it.

Every position ``t`` of an example has the input byte ``ids[t]`` and labels that
say what the model should do *at* that position (INTERFACES.md, prompts/stream.py):

* ``opcode``      Opcode value (NOP where nothing happens; -1 = free: the model's own decision)
* ``write_gate``  1 at WRITE positions, 0 elsewhere
* ``bucket``      a learnable compositional bucket (key group x byte offset) at WRITE,
                  READ and CLEAR positions, -1 elsewhere
* ``pair``        at a READ position: the index of the WRITE position holding the byte
                  that comes next (``ids[pair[t]] == ids[t + 1]``), or, at the last byte of a
                  recalled value, the value's end marker (below); -1 elsewhere
* ``commit``      commitment head class at COMMIT positions: 0 close, 2 open; 1 (neutral) elsewhere
* ``supersedes``  at the WRITE of a new value's first byte for a fact told before (an update):
                  the position of the old value's first-byte WRITE, which the new write should
                  find by its key (a write replaces a slot whose key is >= the match threshold
                  close); -1 elsewhere
* ``loss_weight`` weight of predicting ``ids[t + 1]`` from position ``t`` (answers weighted
                  up, unpredictable bytes such as a new random value or the world's next
                  role byte weighted 0; the last position has no target)

A written value's end is written too: the byte after the told value (whatever it is: END,
",", a quote) is WRITTEN at offset len(value) of the same key group, and the last byte of
a recalled value READS it. Without it only the value's length as the registers guessed it
said where a value ends, and answers ended a byte early or ran a byte long (``th82.`` for
``th82x``; ``kv92b`` for ``kv92``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prompts import stream

# The contract's order of opcodes (engine.vm.Opcode); a test checks they agree.
NOP, READ_MEM, WRITE_MEM, CLEAR_MEM, IDLE, GATE_UP, GATE_DOWN, SCAN, COMMIT, RESPOND = range(10)
OPCODE_NAMES = ("NOP", "READ_MEM", "WRITE_MEM", "CLEAR_MEM", "IDLE", "GATE_UP", "GATE_DOWN",
                "SCAN", "COMMIT", "RESPOND")
COMMIT_CLOSE, COMMIT_NEUTRAL, COMMIT_OPEN = 0, 1, 2
FREE = -1  # no label: the model's own decision stands
MAX_OFFSET = 8  # value bytes beyond this offset share the last offset's bucket

LABEL_FIELDS = ("opcode", "write_gate", "bucket", "pair", "commit", "supersedes")
WORLD_ROLES = {ord(stream.USER), ord(stream.IMPULSE), ord(stream.TOOL_RESULT)}
MODEL_TURN_ROLES = (stream.BOT, stream.TOOL_DEF, stream.TOOL_CALL, stream.REPLAY)


def bucket_of(group: int, offset: int, n_buckets: int) -> int:
    """Compositional bucket: key group x byte offset, folded into ``n_buckets``."""
    return (group * MAX_OFFSET + min(offset, MAX_OFFSET - 1)) % n_buckets


def key_group(key: str) -> int:
    """The learnable group of a fact key: the first letter of its last word (0..25).

    A hash of the key text was not learned by the prototype; a visible, compositional
    property of the key is (research/recall-feasibility.md).
    """
    from engine.curriculum.vocab import NOUNS  # the noun, wherever it stands in the key
    words = key.split() or ["x"]
    nouns = [w for w in words if w in _NOUN_SET(NOUNS)]
    ch = (nouns[0] if nouns else words[-1])[0].lower()
    return (ord(ch) - ord("a")) % 26 if ch.isalpha() else 26


def _NOUN_SET(nouns: tuple[str, ...], _cache: dict = {}) -> frozenset:  # noqa: B006
    if "s" not in _cache:
        _cache["s"] = frozenset(nouns)
    return _cache["s"]


@dataclass
class Example:
    """A labelled byte stream; arrays all have length ``len(ids)``."""
    ids: np.ndarray          # int64 [T]
    opcode: np.ndarray       # int64 [T]
    write_gate: np.ndarray   # int64 [T]
    bucket: np.ndarray       # int64 [T]
    pair: np.ndarray         # int64 [T]
    commit: np.ndarray       # int64 [T]
    supersedes: np.ndarray   # int64 [T]
    loss_weight: np.ndarray  # float32 [T]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def text(self) -> str:
        return bytes(self.ids.tolist()).decode("utf-8", errors="replace")

    def truncated(self, length: int) -> "Example":
        """The first ``length`` positions (pairs always point backwards, so they stay valid)."""
        cut = {f: getattr(self, f)[:length].copy() for f in LABEL_FIELDS + ("ids", "loss_weight")}
        if length > 0:
            cut["loss_weight"][length - 1] = 0.0
            if cut["opcode"][length - 1] == READ_MEM:  # its answer byte was cut off
                cut["opcode"][length - 1] = NOP
                cut["pair"][length - 1] = -1
                cut["bucket"][length - 1] = -1
        return Example(**cut, meta=dict(self.meta))


class Builder:
    """Appends turns and labelled segments to a growing example.

    A segment is plain text, or a fact value being written, read or cleared. The
    builder remembers where each fact's value bytes were last written so that
    reads can point at them (``pair``).
    """

    def __init__(self, n_buckets: int, answer_weight: float = 5.0):
        self.n_buckets = n_buckets
        self.answer_weight = answer_weight
        self.ids: list[int] = []
        self.opcode: list[int] = []
        self.write_gate: list[int] = []
        self.bucket: list[int] = []
        self.pair: list[int] = []
        self.commit: list[int] = []
        self.supersedes: list[int] = []
        self.first_written: dict[str, int] = {}  # fact id -> position of its last value's first byte (kept on drop)
        self.weight: list[float] = []  # weight of *this* byte as a target (shifted at the end)
        self.writes: dict[str, list[int]] = {}  # fact id -> positions of its value bytes
        self.ends: dict[str, int] = {}          # fact id -> position of its value's end marker
        self._pending: tuple[int, str, int, int] | None = None  # (WRITE_MEM|CLEAR_MEM, fact, group, offset)
        self._end_of_answer = False  # the next byte ends a recalled value: weighted as an answer
        self.events: list[dict] = []

    def __len__(self) -> int:
        return len(self.ids)

    # -- low level --------------------------------------------------------
    def _push(self, byte: int, op: int = NOP, gate: int = 0, bucket: int = -1, pair: int = -1,
              weight: float = 1.0) -> int:
        pending, self._pending = self._pending, None
        if self._end_of_answer:
            self._end_of_answer, weight = False, max(weight, self.answer_weight)
        if pending is not None and op == NOP:  # this byte ends a value just written or cleared
            kind, fact, group, off = pending
            op, bucket = kind, bucket_of(group, off, self.n_buckets)
            gate = int(kind == WRITE_MEM)
            if kind == WRITE_MEM:
                self.ends[fact] = len(self.ids)
        self.ids.append(byte)
        self.opcode.append(op)
        self.write_gate.append(gate)
        self.bucket.append(bucket)
        self.pair.append(pair)
        self.commit.append(COMMIT_NEUTRAL)
        self.supersedes.append(-1)
        self.weight.append(weight)
        return len(self.ids) - 1

    def plain(self, text: str, weight: float = 1.0) -> None:
        for b in text.encode("utf-8"):
            self._push(b, weight=weight)

    def write(self, fact: str, key: str, value: str, weight: float = 0.0) -> None:
        """Value bytes WRITTEN at each byte, under key group x offset. ``weight``: LM weight on
        them (0 for a value told by the world, which is unpredictable; >0 where the model writes it)."""
        group = key_group(key)
        pos = []
        for off, b in enumerate(value.encode("utf-8")):
            pos.append(self._push(b, WRITE_MEM, 1, bucket_of(group, off, self.n_buckets), weight=weight))
        if pos and fact in self.first_written:
            self.supersedes[pos[0]] = self.first_written[fact]
        if pos:
            self.first_written[fact] = pos[0]
        self.writes[fact] = pos
        self.ends.pop(fact, None)
        self._pending = (WRITE_MEM, fact, group, len(pos))
        self.events.append({"kind": "write", "fact": fact, "at": pos[0], "value": value})

    def read(self, fact: str, key: str, value: str) -> None:
        """Value bytes recalled by the model: READ at the position *before* each byte."""
        group = key_group(key)
        src = self.writes[fact]
        data = value.encode("utf-8")
        assert len(src) == len(data), "a read must recall the value last written"
        for off, b in enumerate(data):
            prev = len(self.ids) - 1
            self.opcode[prev] = READ_MEM
            self.bucket[prev] = bucket_of(group, off, self.n_buckets)
            self.pair[prev] = src[off]
            self._push(b, weight=self.answer_weight)
        # At the last value byte nothing in the text says the value ends: the end marker in
        # memory does. A value written without one (cut off, or right before a label) stays FREE.
        end = self.ends.get(fact)
        last = len(self.ids) - 1
        if end is None:
            self.opcode[last] = FREE
        else:
            self.opcode[last], self.pair[last] = READ_MEM, end
            self.bucket[last] = bucket_of(group, len(data), self.n_buckets)
            self._end_of_answer = True
        self.events.append({"kind": "read", "fact": fact, "at": len(self.ids) - len(data),
                            "value": value})

    def clear(self, fact: str, key: str, value: str) -> None:
        """Value bytes being forgotten or replaced: CLEAR at each byte."""
        group = key_group(key)
        for off, b in enumerate(value.encode("utf-8")):
            self._push(b, CLEAR_MEM, 0, bucket_of(group, off, self.n_buckets), weight=1.0)
        if self.ends.get(fact) is not None:  # its end marker goes too
            self._pending = (CLEAR_MEM, fact, group, len(value.encode("utf-8")))
        self.drop(fact)

    def drop(self, fact: str) -> None:
        """Forget where ``fact`` was written (a new value is told without clearing the old)."""
        self.writes.pop(fact, None)
        self.ends.pop(fact, None)

    def _unmark_end(self, pos: int) -> None:
        """The byte at ``pos`` needs another label (a model turn's END): no end marker there."""
        if self.opcode[pos] in (WRITE_MEM, CLEAR_MEM):
            self.opcode[pos], self.write_gate[pos], self.bucket[pos] = NOP, 0, -1
            for fact, at in list(self.ends.items()):
                if at == pos:
                    del self.ends[fact]

    # -- turns ------------------------------------------------------------
    def open_turn(self, role: str, respond: bool = False) -> None:
        """The role byte; RESPOND on it when a BOT turn is meant for the user."""
        self._push(ord(role), RESPOND if respond else NOP)

    def close_turn(self, model_turn: bool, commit: int | None = None) -> None:
        """END; IDLE on it for model turns, COMMIT (open/close) when the turn changes a commitment."""
        pos = self._push(ord(stream.END))
        if commit is not None or model_turn:
            self._unmark_end(pos)
        if commit is not None:
            self.opcode[pos] = COMMIT
            self.commit[pos] = commit
        elif model_turn:
            self.opcode[pos] = IDLE

    def turn(self, role: str, text: str, respond: bool | None = None, commit: int | None = None,
             weight: float = 1.0) -> None:
        """A whole turn of plain text (cleaned as prompts.stream does)."""
        if respond is None:
            respond = role == stream.BOT
        self.open_turn(role, respond)
        self.plain(stream.clean(text), weight)
        self.close_turn(role in MODEL_TURN_ROLES, commit)

    def idle_after_world_turn(self) -> None:
        """The model chooses to say nothing after a world turn: IDLE on that turn's END."""
        self._unmark_end(len(self.ids) - 1)
        self.opcode[-1] = IDLE

    # -- result -----------------------------------------------------------
    def build(self, length: int | None = None, meta: dict | None = None) -> Example:
        """Freeze into an Example (truncated to ``length``); loss weights shift onto the
        predicting position, and the world's next role byte gets weight 0."""
        ids = np.asarray(self.ids, dtype=np.int64)
        target_w = np.asarray(self.weight, dtype=np.float32)
        lw = np.zeros_like(target_w)
        lw[:-1] = target_w[1:]
        world = np.isin(ids[1:], list(WORLD_ROLES))
        lw[:-1][world] = 0.0
        ex = Example(ids=ids, opcode=np.asarray(self.opcode, dtype=np.int64),
                     write_gate=np.asarray(self.write_gate, dtype=np.int64),
                     bucket=np.asarray(self.bucket, dtype=np.int64),
                     pair=np.asarray(self.pair, dtype=np.int64),
                     commit=np.asarray(self.commit, dtype=np.int64),
                     supersedes=np.asarray(self.supersedes, dtype=np.int64),
                     loss_weight=lw, meta=dict(meta or {}))
        if length is not None and len(ex) > length:
            ex = ex.truncated(length)
        return ex
