"""The help screen: what each panel shows, the opcode glyphs, and the keys."""
from __future__ import annotations

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mosaic_cli.tui import palette

PANELS = [
    ("status", "engine state (awake / idle / consolidating), tokens per second, adapter version, "
               "session, selected layer, UI frames per second"),
    ("chat / events", "your lines, the model's replies (streamed as they are generated), impulses, "
                      "tools, consolidation, saves, errors"),
    ("registers", "one row per timescale of the selected layer (fast at the top), channels binned "
                  "across; blue < 0 < red, the scale in the title. 'all layers' stacks the layers, "
                  "two timescales per row"),
    ("memory", "buckets across (binned), ways down. occ: share of valid slots; util: mean utility "
               "of the valid ones. A slot lights cyan when read, magenta when written"),
    ("opcodes", "the last tokens across (newest right), layers down; the runtime acts on the last "
                "(bold) layer, the selected layer is highlighted"),
    ("drives", "each drive's value (●) against its healthy band (━), then the value and the "
               "urgency u; an impulse lights its drive (↯)"),
    ("tool proposals", "tools waiting for a person: Enter (or F4) opens one to approve or reject"),
]


def two_columns(rows: list[tuple[str, str]], key_style: Style) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style=key_style)
    table.add_column()
    for key, text in rows:
        table.add_row(key, text)
    return table


class HelpScreen(ModalScreen[None]):
    """A scrollable page; any of escape, q, ? or F1 closes it."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def body(self) -> Group:
        bold = Style(bold=True)
        glyphs = Table.grid(padding=(0, 2))
        glyphs.add_column(no_wrap=True)
        glyphs.add_column()
        for name, (glyph, colour, _) in palette.OPCODE_GLYPHS.items():
            glyphs.add_row(Text(glyph, Style(color=colour, bold=True)), name)
        return Group(
            Text("mosaic: what you are looking at", bold), Text(""),
            two_columns(PANELS, bold), Text(""),
            Text("opcode glyphs", bold), glyphs, Text(""),
            Text("keys", bold), two_columns(self.app.help_keys(), bold),
        )

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(self.body())

    def action_close(self) -> None:
        self.dismiss(None)
