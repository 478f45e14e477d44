"""What preceded each stored fact: the cues that let consolidation replay a fact by its key.

Memory holds values, not the words that keyed them, so a cue-free replay has to invent the key:
told 16 held-out facts (three conversations), the shipped model's 24 cue-free replays named none
of the told keys (sampled cooler than the runtime does, it wrote "the daily train is 447161" for
"the daily tent pin is 447161"). The engine keeps the
recent stream on a :class:`Tape`; a slot's ``mem_age`` is the stream position of the value
byte it holds, so the text just before the first byte of a written run is the fact's cue
("... remember that the door code is " -> "the door code is "), and a replay cued with it
recalls the value the way a question does.
"""
from __future__ import annotations

import base64
import re
from typing import Any

# "the <key> is " at the end of the text before a value: the form every taught fact has.
_CUE = re.compile(r"\bthe ([^\x00-\x1f]+?) is $")


class Tape:
    """The last ``capacity`` bytes of the stream, each at its absolute position.

    ``put(pos, data)`` appends bytes that the model read or wrote at positions ``pos ...``;
    a gap or an overlap (a loaded session, a rewound state) starts the tape again there.
    """

    def __init__(self, capacity: int = 1 << 15) -> None:
        self.capacity = capacity
        self.start = 0
        self.data = bytearray()

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def put(self, pos: int, data: bytes | bytearray | list[int]) -> None:
        if pos != self.end:
            self.start, self.data = pos, bytearray()
        self.data.extend(data)
        extra = len(self.data) - self.capacity
        if extra > 0:
            del self.data[:extra]
            self.start += extra

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the start position and the bytes (base64), for the session's runtime file."""
        return {"start": self.start, "data": base64.b64encode(bytes(self.data)).decode("ascii")}

    @classmethod
    def from_dict(cls, d: Any, end: int, capacity: int = 1 << 15) -> "Tape":
        """The tape saved by :meth:`to_dict` if it ends at ``end`` (the loaded state's position);
        otherwise, or if it does not parse, an empty tape at ``end``: cues are a help, never a
        reason to refuse a session."""
        tape = cls(capacity)
        try:
            start, data = int(d["start"]), base64.b64decode(d["data"], validate=True)
        except (KeyError, TypeError, ValueError):
            start, data = end, b""
        if start + len(data) != end:
            start, data = end, b""
        tape.put(start, data)
        return tape

    def before(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes that end just before position ``pos`` (fewer where the tape begins)."""
        lo, hi = max(pos - n, self.start), min(pos, self.end)
        return bytes(self.data[lo - self.start:hi - self.start]) if hi > lo else b""


def cue_of(text: bytes) -> str | None:
    """The "the <key> is " that ``text`` (the bytes before a value) ends with, else None."""
    clause = re.split(r"[\x00-\x1f]", text.decode("utf-8", errors="ignore"))[-1]  # this turn only
    m = _CUE.search(clause)
    return None if m is None or not m[1].strip() else f"the {m[1]} is "


def fact_cues(state: Any, tape: Tape, lookback: int = 96) -> list[str]:
    """The distinct cues of the facts in ``state``'s memory (batch row 0), newest first.

    A fact is a run of consecutive written positions in a memory layer; its cue is read off
    ``tape`` just before the run's first position. Runs whose text is gone from the tape, or
    that do not follow "the <key> is ", give none.
    """
    starts: set[int] = set()
    for layer in state.layers:
        if layer.mem_valid.numel() == 0:
            continue
        written = set(layer.mem_age[0][layer.mem_valid[0]].tolist())
        starts |= {p for p in written if p - 1 not in written}
    cues: list[str] = []
    for p in sorted(starts, reverse=True):
        cue = cue_of(tape.before(p, lookback))
        if cue is not None and cue not in cues:
            cues.append(cue)
    return cues
