"""The stream format: how every kind of turn is written into the model's byte stream.

Tokens are bytes. A turn is one role byte, the turn's text on one line, and
``END`` (a newline). Role bytes are ASCII control characters that never occur in
cleaned text, so a turn boundary is unambiguous:

    USER         a person's line                       "\\x11remember that the door code is 4417\\n"
    BOT          the model's reply                     "\\x12ok, the door code is 4417.\\n"
    IMPULSE      a drive out of its band (rendered)    "\\x13memory pressure: occupancy 0.93 above 0.85\\n"
    TOOL_DEF     a tool definition the model proposes  "\\x14{...definition json...}\\n"
    TOOL_CALL    a call of a registered tool           "\\x15{"name": "add", "args": {"a": 1, "b": 2}}\\n"
    TOOL_RESULT  the result the runtime feeds back     "\\x16{"ok": true, "result": 3}\\n"
    REPLAY       cue-free recall of a stored fact      "\\x17the door code is 4417\\n"

After a USER, IMPULSE or TOOL_RESULT turn the model itself chooses the next
role byte (BOT, TOOL_DEF, TOOL_CALL, or nothing worth saying: IDLE).

Opcode conventions the curriculum teaches and the runtime reads (last layer):
  * RESPOND at the position whose input is the BOT role byte of a turn meant
    for the user (a self-activated turn without RESPOND stays internal);
  * IDLE at the position whose input is the END of a model turn (end of turn),
    and on the role byte of an impulse answered by doing nothing;
  * WRITE_MEM at every byte of a value the model must remember: a value told, a
    tool's result, and the function and parameter names a tool definition chooses
    (its code repeats them), and on the byte right after such a value (its end marker);
  * READ_MEM at every position whose *next* byte is recalled from memory, the last
    byte of a recalled value included (it reads the end marker: the value ends here);
  * CLEAR_MEM at every byte of a value being forgotten or replaced, and its end marker;
  * COMMIT at the END of a turn that opens ("I will remind you ...") or closes a commitment.
"""
from __future__ import annotations

import json

USER = "\x11"
BOT = "\x12"
IMPULSE = "\x13"
TOOL_DEF = "\x14"
TOOL_CALL = "\x15"
TOOL_RESULT = "\x16"
REPLAY = "\x17"
END = "\n"

ROLES = {USER: "user", BOT: "bot", IMPULSE: "impulse", TOOL_DEF: "tool_def",
         TOOL_CALL: "tool_call", TOOL_RESULT: "tool_result", REPLAY: "replay"}
ROLE_BYTES = {name: byte for byte, name in ROLES.items()}
MODEL_ROLES = (BOT, TOOL_DEF, TOOL_CALL)  # role bytes the model may open a turn with

_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}


def clean(text: str) -> str:
    """Make ``text`` safe to embed in one turn: control characters (role bytes, newlines) become spaces."""
    return "".join(" " if ch in _CONTROL else ch for ch in text).strip()


def turn(role: str, text: str) -> str:
    """One whole turn: ``role`` is a role byte or a role name (``"user"``, ``"bot"``, ...)."""
    byte = ROLE_BYTES.get(role, role)
    if byte not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return byte + clean(text) + END


def user(text: str) -> str:
    return turn(USER, text)


def bot(text: str) -> str:
    return turn(BOT, text)


def impulse(text: str) -> str:
    return turn(IMPULSE, text)


def replay(text: str) -> str:
    return turn(REPLAY, text)


def shown_result(result) -> str:
    """A tool's result as a reply shows it ("done: {shown}."): a string as it is, else its JSON."""
    return result if isinstance(result, str) else json.dumps(result)


def split_turns(stream: str) -> list[tuple[str, str]]:
    """Parse a stream into ``(role_name, text)`` pairs; text outside a turn is ignored."""
    out: list[tuple[str, str]] = []
    role: str | None = None
    buf: list[str] = []
    for ch in stream:
        if ch in ROLES:
            role, buf = ROLES[ch], []
        elif ch == END:
            if role is not None:
                out.append((role, "".join(buf)))
            role, buf = None, []
        elif role is not None:
            buf.append(ch)
    return out
