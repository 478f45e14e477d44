"""Helpers shared by the TUI tests: reading what a widget shows, waiting for a condition."""
from __future__ import annotations

import io
import time
from typing import Callable

from rich.console import Console


def log_text(app) -> str:
    """Everything the event log shows as one plain string: wrapped lines rejoined, runs of
    spaces collapsed (so a test can look for a phrase whatever the panel width)."""
    lines = ("".join(seg.text for seg in strip).strip() for strip in app.event_log.lines)
    return " ".join(" ".join(lines).split())


def plain(renderable, width: int = 80) -> str:
    """A Rich renderable printed as plain text at ``width``."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


def rendered_text(widget, width: int | None = None) -> str:
    """The plain text a widget's ``render()`` produces at its current (or the given) width."""
    return plain(widget.render(), width or max(widget.size.width, 20))


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    """Let the app run until ``condition()`` holds (True) or ``timeout`` passes (False).
    A generous bound for threads on a loaded machine, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await pilot.pause(step)
    return condition()
