"""Messages that carry engine activity into the UI thread."""
from __future__ import annotations

from typing import Any

from textual.message import Message


class EngineEvent(Message):
    """One engine Event, posted from whatever thread published it on the engine's bus."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class UiNote(Message):
    """A line for the log from a UI worker thread (e.g. a tool approval that failed)."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error
