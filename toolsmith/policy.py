"""Lifecycle policy: approval, proposal rate limits, deprecation of unused tools."""
from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class ToolPolicy:
    """Knobs of the tool lifecycle.

    * ``auto_approve_sandboxed``: approve sandboxed proposals without a person (off by default;
      a privileged tool, ``sandbox: false``, always needs a person whatever this says).
    * ``max_proposals_per_window`` proposals per ``window_s`` seconds (valid or not), and at most
      ``max_pending`` proposals waiting for a decision.
    * Deprecation: an approved, non-built-in tool is deprecated (hidden from the model, kept on
      disk) when it has been idle longer than ``deprecate_idle_s`` (idle = since last use, or
      since approval if never used) **and** used fewer than ``deprecate_below_uses`` times in
      all, or when it failed ``deprecate_after_failures`` times or more with at least half its
      calls failing.
    """

    auto_approve_sandboxed: bool = False
    max_proposals_per_window: int = 20
    window_s: float = 3600.0
    max_pending: int = 10
    deprecate_idle_s: float = 30 * DAY
    deprecate_below_uses: int = 1_000_000
    deprecate_after_failures: int = 10

    def may_auto_approve(self, sandboxed: bool) -> bool:
        """Whether a proposal may skip the person: only sandboxed ones, only when enabled."""
        return bool(self.auto_approve_sandboxed and sandboxed)
