"""Pending tool proposals: a list a person can pick from to open the approval dialog."""
from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option


def proposal_key(proposal: dict) -> str:
    """The id a proposal is approved by: its definition hash, else its name."""
    return str(proposal.get("hash") or proposal.get("name") or "?")


class PendingTools(OptionList):
    """One option per pending proposal: ``name — description``; Enter or a click opens it."""

    DEFAULT_CSS = "PendingTools { height: auto; max-height: 5; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.keys: tuple[str, ...] = ()
        self.proposals: dict[str, dict] = {}

    def show(self, pending: list | None) -> None:
        """Take a snapshot's ``pending_tools`` (list of dict(name, hash, description)); rebuild only on change
        so the highlighted row stays put."""
        pending = [dict(p) for p in (pending or [])]
        keys = tuple(proposal_key(p) for p in pending)
        self.proposals = {proposal_key(p): p for p in pending}
        if keys == self.keys:
            return
        self.keys = keys
        self.clear_options()
        for p in pending:
            label = Text.assemble((str(p.get("name", "?")), Style(bold=True)), " — ",
                                  (str(p.get("description", "")), Style(dim=True)))
            self.add_option(Option(label, id=proposal_key(p)))
        self.border_title = f"tool proposals ({len(pending)})"
        self.display = bool(pending)
