"""A widget base that draws from plain segment lines (Textual's line API).

The live panels repaint up to ~12 times a second; going through ``render()`` would send each
frame through Rich's console pipeline a second time (to split and crop it), which cost more
than drawing the frame itself. Subclasses return their rows as segment lists from ``lines``.
"""
from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget


class LineWidget(Widget):
    """Call ``changed()`` when the content changes; ``lines(width)`` is asked once per repaint."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strips: list[Strip] = []
        self.strips_for: tuple[int, int] | None = None   # (version, width) the strips were built for
        self.version = 0

    def lines(self, width: int) -> list[list[Segment]]:
        raise NotImplementedError

    def text_lines(self, text: Text, width: int) -> list[list[Segment]]:
        """A Rich Text as segment lines (split on its newlines, not wrapped)."""
        segments = text.render(self.app.console, end="")
        return [list(line) for line in Segment.split_lines(segments)]

    def changed(self, layout: bool = False) -> None:
        self.version += 1
        self.refresh(layout=layout)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.visual_style.rich_style
        if self.strips_for != (self.version, width):
            self.strips = [Strip(list(Segment.apply_style(line, style=base))).adjust_cell_length(width, base)
                           for line in self.lines(width)]
            self.strips_for = (self.version, width)
        if y < len(self.strips):
            return self.strips[y]
        return Strip.blank(width, base)
