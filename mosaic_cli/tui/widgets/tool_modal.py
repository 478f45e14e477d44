"""The tool-proposal dialog: definition, highlighted source, validation; approve / reject / view in full."""
from __future__ import annotations

import json
import time

from rich.console import Group
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from mosaic_cli.tui.proposal import ToolProposal

PREVIEW_LINES = 12


KEY_GRACE_S = 0.6  # keys ignored this long after the dialog opens


class ToolProposalScreen(ModalScreen[str | None]):
    """Dismisses with "approve", "reject", or None (closed without a decision)."""

    BINDINGS = [
        Binding("a", "decide('approve')", "Approve"),
        Binding("r", "decide('reject')", "Reject"),
        Binding("v", "view_full", "View in full"),
        Binding("escape", "decide(None)", "Close"),
    ]

    def __init__(self, proposal: ToolProposal) -> None:
        super().__init__()
        self.proposal = proposal
        self.full = False
        self.opened = time.monotonic()

    def syntax_theme(self) -> str:
        return "monokai" if self.app.current_theme.dark else "friendly"

    def header(self) -> Text:
        p = self.proposal
        text = Text.assemble(("tool proposal  ", Style(dim=True)), (p.name, Style(bold=True)))
        if p.hash:
            text.append(f"  #{p.hash[:12]}", Style(dim=True))
        text.append("  ")
        text.append(" sandboxed " if p.sandbox else " PRIVILEGED: no sandbox ",
                    Style(color="#ffffff", bgcolor="#2f9e44" if p.sandbox else "#e03131", bold=True))
        if p.description:
            text.append("\n" + p.description)
        return text

    def background(self) -> str:
        return self.app.get_css_variables().get("surface", "default")

    def parameters(self) -> Text | Syntax:
        """One line per argument (name: type, required or not, description); the JSON schema in full view."""
        schema = self.proposal.parameters
        if self.full:
            return Syntax(json.dumps(schema, indent=2, sort_keys=True), "json", theme=self.syntax_theme(),
                          background_color=self.background())
        props = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(props, dict) or not props:
            return Text("(no arguments)", Style(dim=True))
        required = set(schema.get("required") or [])
        text = Text()
        for name, spec in props.items():
            spec = spec if isinstance(spec, dict) else {}
            if text:
                text.append("\n")
            text.append(f"  {name}", Style(bold=True))
            text.append(f": {spec.get('type', '?')}")
            text.append("" if name in required else " (optional)", Style(dim=True))
            if spec.get("description"):
                text.append(f" — {spec['description']}", Style(dim=True))
        return text

    def source(self) -> Group | Syntax:
        lines = self.proposal.source.splitlines() or ["# (no source given)"]
        shown = lines if self.full else lines[:PREVIEW_LINES]
        syntax = Syntax("\n".join(shown), "python", theme=self.syntax_theme(), line_numbers=True,
                        background_color=self.background(), word_wrap=True)
        if len(shown) < len(lines):
            more = Text(f"… {len(lines) - len(shown)} more lines: press v to view in full", Style(dim=True))
            return Group(syntax, more)
        return syntax

    def validation(self) -> Text:
        errors = self.proposal.errors
        if errors is None:
            return Text("validation: not reported by the engine", Style(dim=True))
        where = " (checked here with toolsmith)" if self.proposal.checked_here else ""
        if not errors:
            return Text.assemble(("✓ passes validation", Style(color="#2f9e44", bold=True)), (where, Style(dim=True)))
        text = Text(f"✗ {len(errors)} validation problem{'s' * (len(errors) != 1)}{where}:",
                    Style(color="#e03131", bold=True))
        for e in errors:
            text.append(f"\n  • {e}", Style(color="#e03131"))
        return text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.header(), id="tool-header")
            with VerticalScroll(id="tool-body"):
                yield Static(Text("source", Style(dim=True)))
                yield Static(self.source(), id="tool-source")
                yield Static(Text("arguments", Style(dim=True)))
                yield Static(self.parameters(), id="tool-params")
            yield Static(self.validation(), id="tool-validation")
            with Horizontal(id="tool-buttons"):
                yield Button("Approve (a)", id="approve", variant="success")
                yield Button("Reject (r)", id="reject", variant="error")
                yield Button("View in full (v)", id="view")
                yield Button("Close (esc)", id="close")

    def action_decide(self, decision: str | None) -> None:
        # A key typed for the chat just before the dialog appeared must not decide for the person.
        if decision is not None and time.monotonic() - self.opened < KEY_GRACE_S:
            self.notify("dialog just opened: press the key again to decide")
            return
        self.dismiss(decision)

    def action_view_full(self) -> None:
        """Toggle between the first lines of the source and all of it (the dialog then fills the screen)."""
        self.full = not self.full
        self.query_one("#dialog").set_class(self.full, "full")
        self.query_one("#tool-source", Static).update(self.source())
        self.query_one("#tool-params", Static).update(self.parameters())
        self.query_one("#view", Button).label = "Preview (v)" if self.full else "View in full (v)"

    @on(Button.Pressed, "#approve")
    def approve_pressed(self) -> None:
        """Approve the proposal."""
        self.dismiss("approve")

    @on(Button.Pressed, "#reject")
    def reject_pressed(self) -> None:
        """Reject the proposal."""
        self.dismiss("reject")

    @on(Button.Pressed, "#view")
    def view_pressed(self) -> None:
        """Toggle the full source."""
        self.action_view_full()

    @on(Button.Pressed, "#close")
    def close_pressed(self) -> None:
        """Close without deciding."""
        self.dismiss(None)
