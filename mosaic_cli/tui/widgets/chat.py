"""The chat / event log: one line per event worth a person's attention, and the reply being typed."""
from __future__ import annotations

import time
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog, Static

USER = Style(color="#1f9ed1", bold=True)
BOT = Style(color="#2f9e44", bold=True)
SYSTEM = Style(color="#808080")
WARN = Style(color="#e8590c", bold=True)
ERROR = Style(color="#e03131", bold=True)
TOOL = Style(color="#ae3ec9", bold=True)


def payload_text(payload: Any, *keys: str) -> str:
    """The first present text field of ``payload`` among ``keys`` (a str payload is its own text)."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in keys:
            value = payload.get(key)
            if value not in (None, ""):
                return str(value)
    return ""


def summary(payload: Any, limit: int = 80) -> str:
    """``k=v`` pairs of a payload (long ids and tracebacks left out), cut to ``limit`` characters."""
    if isinstance(payload, dict):
        text = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in payload.items()
                        if not isinstance(v, (dict, list)) and k not in ("traceback", "memory_digest", "id"))
    else:
        text = str(payload)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _g(p: dict, key: str, default: str = "?") -> Any:
    value = p.get(key)
    return default if value is None else value


# One short line for the frequent bookkeeping events (their full payload is in the session's log).
CONCISE = {
    "Started": lambda p: f"session {_g(p, 'session', '—')}, generation {_g(p, 'generation')}, position {_g(p, 'position')}",
    "SessionLoaded": lambda p: f"session {_g(p, 'session')}, generation {_g(p, 'generation')}, position {_g(p, 'position')}",
    "StateSaved": lambda p: f"session {_g(p, 'session')}, generation {_g(p, 'generation')} ({_g(p, 'reason')})",
    "Stopped": lambda p: "engine stopped",
    "SelfActivated": lambda p: f"by {_g(p, 'drive')}",
    "Consolidated": lambda p: (f"{_g(p, 'replays', 0)} replays, {_g(p, 'pruned', 0)} pruned"
                               + (" (aborted)" if p.get("aborted") else "") + f" · {_g(p, 'reason', '')}"),
    "AdapterUpdated": lambda p: f"adapter {_g(p, 'version', _g(p, 'adapter_version'))}",
    "AdapterReverted": lambda p: f"adapter back to {_g(p, 'version', _g(p, 'adapter_version'))}",
}


def describe_event(event: Any, mode: str) -> Text | None:
    """The log line for ``event`` (an engine Event), or None for events not logged one by one
    (tokens go to the reply line; in chat mode the user's own lines are logged on submit)."""
    kind = getattr(event, "type", "?")
    payload = getattr(event, "payload", {}) or {}
    if kind == "Token":
        return None
    if kind == "UserMessage":
        if mode == "chat":
            return None
        return Text.assemble(("you › ", USER), payload_text(payload, "text", "content"))
    if kind == "Response":
        own = isinstance(payload, dict) and payload.get("self_activated")
        return Text.assemble(("mosaic ↯ › " if own else "mosaic › ", BOT), payload_text(payload, "text", "content"))
    if kind == "TurnEnded":
        if not isinstance(payload, dict) or payload.get("replied"):
            return None
        line = Text(f"· turn ended without a reply ({payload.get('ended_by') or payload.get('origin') or '?'})", SYSTEM)
        if payload.get("internal_text"):
            line.append(f": {payload['internal_text']}", Style(dim=True, italic=True))
        return line
    if kind == "Impulse":
        drive = payload_text(payload, "drive", "name")
        urgency = payload.get("urgency") if isinstance(payload, dict) else None
        detail = payload_text(payload, "text", "reason")
        line = Text.assemble(("↯ impulse ", WARN), (drive, Style(bold=True)))
        if isinstance(urgency, (int, float)):
            line.append(f" urgency {urgency:.2f}", SYSTEM)
        if detail:
            line.append(f" · {detail}", SYSTEM)
        return line
    if kind in ("EngineError", "CommitmentError"):
        where = payload_text(payload, "where")
        return Text.assemble((f"✗ {kind}{' in ' + where if where else ''} ", ERROR),
                             payload_text(payload, "error", "message", "text") or summary(payload))
    concise = CONCISE.get(kind)
    if concise is not None and isinstance(payload, dict):
        return Text.assemble((f"· {kind} ", SYSTEM), (concise(payload), Style(dim=True)))
    if kind.startswith("Tool"):
        name = payload_text(payload, "name", "tool")
        rest = {k: v for k, v in payload.items() if k not in ("name", "tool", "implementation", "source",
                                                                  "parameters", "definition")} \
            if isinstance(payload, dict) else payload
        line = Text.assemble((f"⚙ {kind[4:].lower()} ", TOOL), (name, Style(bold=True)))
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if isinstance(rest, dict):
            h = rest.pop("hash", None)
            if h:
                line.append(f" #{str(h)[:8]}", SYSTEM)
        line.append(" " + summary(rest, 60), SYSTEM)
        if errors:
            first = errors[0]
            text = f"{first.get('field')}: {first.get('message')}" if isinstance(first, dict) else str(first)
            line.append(f" · {text}", ERROR)
        return line
    return Text.assemble((f"· {kind} ", SYSTEM), (summary(payload), Style(dim=True)))


class EventLog(RichLog):
    """Chat turns and engine events, newest at the bottom."""

    def __init__(self, mode: str = "chat", **kwargs) -> None:
        super().__init__(wrap=True, markup=False, max_lines=2000, auto_scroll=True, min_width=10, **kwargs)
        self.mode = mode
        self.lines_logged = 0

    def user_line(self, text: str) -> None:
        """Log a line the person typed."""
        self.add(Text.assemble(("you › ", USER), text))

    def event(self, event: Any) -> None:
        """Log ``event`` if it is worth a line (see describe_event)."""
        line = describe_event(event, self.mode)
        if line is None:
            return
        if self.mode == "watch":
            ts = getattr(event, "ts", None)
            stamp = time.strftime("%H:%M:%S ", time.localtime(ts)) if isinstance(ts, (int, float)) else ""
            line = Text(stamp, Style(dim=True)) + line
        self.add(line)

    def add(self, line: Text) -> None:
        self.write(line)
        self.lines_logged += 1


class ReplyLine(Static):
    """The turn being generated, token by token; emptied when its Response or TurnEnded arrives.

    Tokens come as text (``{"text": ...}``) or as raw bytes (``{"byte": int}``, the real engine):
    bytes are collected and decoded as a whole, so a multi-byte character is never split.
    Role bytes and other control characters are not shown.
    """

    DEFAULT_CSS = "ReplyLine { height: auto; max-height: 4; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.data = bytearray()
        self.turn: object = None
        self.shown = ""

    def token(self, payload: object) -> None:
        """Add one Token event's payload."""
        if isinstance(payload, dict):
            turn = payload.get("turn")
            if turn is not None and turn != self.turn:
                self.turn = turn
                self.data.clear()
            byte = payload.get("byte", payload.get("token"))
            if isinstance(byte, int) and not isinstance(byte, bool):
                self.data.append(byte & 0xFF)
                return
        self.data += payload_text(payload, "text", "char").encode("utf-8")

    def text(self) -> str:
        raw = self.data.decode("utf-8", errors="replace")
        return "".join(ch for ch in raw if ch >= " " and ch != "\x7f")

    def clear(self) -> None:
        self.data.clear()

    def flush(self) -> None:
        """Repaint if the text changed since the last frame (called from the UI timer)."""
        text = self.text()
        if text == self.shown:
            return
        self.shown = text
        self.display = bool(text)
        self.update(Text.assemble(("mosaic › ", BOT), text[-400:], ("▌", Style(dim=True))))
