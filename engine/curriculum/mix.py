"""What training conversations hold beside their seed: the styles' shares and the tool options.

``Mix()`` is the curriculum stages 5 to 9 of the default model trained on; every other mix is
an option of ``mosaic train`` (``--tools-share``, ``--more-phrases``, ``--tool-failures``).
"""
from __future__ import annotations

from dataclasses import dataclass

# (style, weight): most sequences are fact-heavy; the rest teach tools, impulses, commitments.
# "burst" tells many facts back to back and then asks them all: the many-competing-facts case
# that interleaved telling and asking rarely builds up.
STYLES = (("facts", 0.25), ("burst", 0.3), ("mixed", 0.2), ("tools", 0.15), ("agent", 0.1))

P_GREETING = 0.3  # share of conversations that open with a greeting
_TOOLS_SHARE = dict(STYLES)["tools"]


@dataclass(frozen=True)
class Mix:
    """``tools``: the share of conversations in the "tools" style (requests for tools answered by
    definitions, calls and their results; the other styles keep their proportions to one
    another); ``more_phrases``: tool requests also use the blind-written wordings of
    ``tools.MORE_PHRASES`` (half of them still one of the first paraphrases); ``failures``: the
    share of tool calls whose result is a failure (no such tool, or the tool raised), answered
    by a reply that says so."""
    tools: float = _TOOLS_SHARE
    more_phrases: bool = False
    failures: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.tools < 1:
            raise ValueError(f"tools share: must be in [0, 1), got {self.tools}")
        if not 0 <= self.failures <= 1:
            raise ValueError(f"tool failures: must be in [0, 1], got {self.failures}")

    def styles(self) -> tuple[tuple[str, float], ...]:
        """(style, weight) pairs; STYLES itself for the default share (the same draws)."""
        if self.tools == _TOOLS_SHARE:
            return STYLES
        scale = (1 - self.tools) / (1 - _TOOLS_SHARE)
        return tuple((s, self.tools if s == "tools" else w * scale) for s, w in STYLES)
