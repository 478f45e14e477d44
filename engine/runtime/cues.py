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
_TURN_START = re.compile(rb"[\x00-\x1f]")   # role bytes and END: a turn's bounds


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

    def rewind(self, pos: int) -> None:
        """Forget the bytes from ``pos`` on (the state was rewound there); a ``pos`` the tape no
        longer holds starts it again there."""
        if self.start <= pos <= self.end:
            del self.data[pos - self.start:]
        else:
            self.start, self.data = pos, bytearray()

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


def fact_starts(state: Any) -> set[int]:
    """The stream positions where each fact in ``state``'s memory (batch row 0) begins.

    A fact is a run of consecutive written positions in a memory layer (a slot's ``mem_age`` is
    the position of the value byte it holds); its start is a position whose predecessor no
    layer wrote."""
    starts: set[int] = set()
    for layer in state.layers:
        if layer.mem_valid.numel() == 0:
            continue
        written = set(layer.mem_age[0][layer.mem_valid[0]].tolist())
        starts |= {p for p in written if p - 1 not in written}
    return starts


def cue_book(state: Any, tape: Tape, old: dict[int, str] | None = None, lookback: int = 96) -> dict[int, str]:
    """Start position -> cue, for the facts in ``state``'s memory whose cue is known.

    The cue is read off ``tape`` just before the fact's start; where the telling has left the
    tape, the cue ``old`` (this function's last answer) held is kept. So a book refreshed at
    every turn keeps a cue as long as its fact stays in memory, however far back the telling
    was; facts that memory no longer holds drop out."""
    old = old or {}
    book: dict[int, str] = {}
    for p in fact_starts(state):
        text = tape.before(p, lookback)
        # a clause the tape's start cuts could give a shorter key ("door code" of "the back
        # door code"): read it only when the text reaches back a whole turn, the lookback or
        # the stream's start
        whole = len(text) == lookback or p - len(text) == 0 or _TURN_START.search(text)
        cue = cue_of(text) if text and whole else None
        cue = cue if cue is not None else old.get(p)
        if cue is not None:
            book[p] = cue
    return book


def fact_cues(state: Any, tape: Tape, book: dict[int, str] | None = None) -> list[str]:
    """The distinct cues of the facts in ``state``'s memory (batch row 0), newest first.

    Each fact's cue is read off ``tape`` just before its first position (:func:`cue_book`), or
    taken from ``book`` where the tape no longer holds it. Facts that follow no
    "the <key> is " give none.
    """
    cues: list[str] = []
    for _, cue in sorted(cue_book(state, tape, book).items(), reverse=True):
        if cue not in cues:
            cues.append(cue)
    return cues


def book_to_dict(book: dict[int, str]) -> dict[str, str]:
    """JSON-ready (keys as strings), for the session's runtime file."""
    return {str(p): c for p, c in book.items()}


def book_from_dict(d: Any) -> dict[int, str]:
    """The book :func:`book_to_dict` saved; entries that do not parse are dropped, and anything
    that is not a mapping gives an empty book (cues help; they never stop a session loading)."""
    if not isinstance(d, dict):
        return {}
    book: dict[int, str] = {}
    for k, v in d.items():
        try:
            p = int(k)
        except (TypeError, ValueError):
            continue
        if isinstance(v, str) and _CUE.fullmatch(v) and p >= 0:
            book[p] = v
    return book
