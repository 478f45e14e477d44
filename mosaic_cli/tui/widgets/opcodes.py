"""Opcode trace: recent tokens (x, newest at the right) by layers (y), one coloured glyph per opcode."""
from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size

from mosaic_cli.tui import palette
from mosaic_cli.tui.widgets.lines import LineWidget


def legend(width: int = 10_000) -> Text:
    """Every glyph with its name, packed into lines of at most ``width`` cells (an entry never splits)."""
    text = Text()
    used = 0
    for glyph, colour, label in palette.OPCODE_GLYPHS.values():
        entry = 2 + len(label)
        if used and used + 2 + entry > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("  ")
            used += 2
        text.append(glyph, Style(color=colour, bold=True))
        text.append(f" {label}", Style(dim=True))
        used += entry
    return text


@lru_cache(maxsize=64)
def glyph_segment(name: str) -> Segment:
    """The coloured glyph of opcode ``name`` (cached: the trace draws hundreds per frame)."""
    glyph, colour, _ = palette.OPCODE_GLYPHS.get(name, palette.UNKNOWN_OPCODE)
    return Segment(glyph, Style(color=colour, bold=name != "NOP"))


class OpcodeTrace(LineWidget):
    """The recent window of per-layer opcodes. The runtime acts on the last layer's
    opcode, so its row is labelled in bold; the selected layer's label is reversed."""

    DEFAULT_CSS = "OpcodeTrace { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps: list[list[str]] = []   # recent steps, each a list of L opcode names
        self.selected: int | None = None

    def show(self, opcodes: list | None, layer: int | None) -> None:
        """Take a snapshot's ``opcodes`` (list of recent steps, each a list of L opcode names)."""
        self.steps = [list(step) for step in (opcodes or [])]
        self.selected = layer
        self.changed(layout=self.rows(self.size.width) != self.size.height)

    def n_layers(self) -> int:
        return max((len(s) for s in self.steps), default=0)

    def build(self, width: int) -> list[list[Segment]]:
        """One segment line per layer: its label, then one glyph per recent step (newest right)."""
        layers = self.n_layers()
        gutter = 4
        window = self.steps[-max(1, width - gutter):]
        rows = []
        for i in range(layers):
            last, chosen = i == layers - 1, i == self.selected
            label = Style(bold=last, reverse=chosen, dim=not (last or chosen))
            row = [Segment(f"L{i}".ljust(gutter - 1), label), Segment(" ")]
            row += [glyph_segment(step[i] if i < len(step) else "") for step in window]
            rows.append(row)
        return rows

    def rows(self, width: int) -> int:
        return max(self.n_layers(), 1) + legend(width).plain.count("\n") + 1

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.rows(width)

    def lines(self, width: int) -> list[list[Segment]]:
        rows = self.build(width) if self.steps else [[Segment("no steps yet", Style(dim=True))]]
        return rows + self.text_lines(legend(width), width)
