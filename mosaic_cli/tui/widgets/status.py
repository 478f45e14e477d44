"""The status line: engine state, tokens per second, adapter version, session, layer, UI frame rate."""
from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from mosaic_cli.tui import palette


class StatusLine(Static):
    """One line at the top of the screen; repainted only when its text changes."""

    DEFAULT_CSS = "StatusLine { height: 1; }"

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.mode = mode
        self.last: Text | None = None

    def show(self, status: str, tokens_per_s: float | None, adapter: object, session: object,
             layer: str, ui_fps: float | None) -> None:
        text = Text.assemble((" mosaic ", Style(bold=True, reverse=True)), f" {self.mode}  ")
        colour = palette.STATUS_COLOURS.get(status, "#808080")
        text.append(f"● {status}", Style(color=colour, bold=True))
        if tokens_per_s is not None:
            text.append(f"  {tokens_per_s:6.1f} tok/s")
        text.append(f"  adapter {adapter if adapter not in (None, '') else '—'}")
        text.append(f"  session {session if session not in (None, '') else '—'}")
        text.append(f"  layer {layer}", Style(dim=True))
        if ui_fps is not None:
            text.append(f"  ui {ui_fps:4.1f} fps", Style(dim=True))
        if text != self.last:
            self.last = text
            self.update(text)
