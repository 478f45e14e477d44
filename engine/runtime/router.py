"""The impulse router: which part of the agent answers an impulse.

Targets: ``model`` (self-activation: the impulse is rendered into an IMPULSE turn
and the model's opcodes decide what follows), ``consolidation`` (an idle pass
now), ``learner`` (the medium-timescale hook; falls back to consolidation when no
learner is attached). The choice is by drive, and by urgency for drives that
escalate (memory pressure is first tidied by consolidation; only when it is
severe does the model itself get woken; a long idle stretch is first used for consolidation and
only after that wakes the model).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from engine.runtime.events import Event


class Target(str, Enum):
    MODEL = "model"
    CONSOLIDATION = "consolidation"
    LEARNER = "learner"


@dataclass(frozen=True)
class Route:
    """``target`` for this drive; ``escalate_to`` once urgency reaches ``escalate_at``."""

    target: Target
    escalate_at: float | None = None
    escalate_to: Target = Target.MODEL


def default_routes() -> dict[str, Route]:
    return {
        "memory_pressure": Route(Target.CONSOLIDATION, escalate_at=0.4, escalate_to=Target.MODEL),
        "low_confidence": Route(Target.MODEL),
        "open_commitments": Route(Target.MODEL),
        "idle": Route(Target.CONSOLIDATION, escalate_at=1.0, escalate_to=Target.MODEL),
        "unconsolidated": Route(Target.LEARNER, escalate_at=None),
    }


@dataclass
class ImpulseRouter:
    routes: dict[str, Route] = field(default_factory=default_routes)
    default: Target = Target.MODEL
    learner_attached: bool = False

    def route(self, impulse: Event) -> Target:
        """The target for an Impulse event (payload: drive, urgency)."""
        drive = impulse.payload.get("drive", "")
        urgency = float(impulse.payload.get("urgency", 0.0))
        r = self.routes.get(drive)
        target = self.default if r is None else r.target
        if r is not None and r.escalate_at is not None and urgency >= r.escalate_at:
            target = r.escalate_to
        if target is Target.LEARNER and not self.learner_attached:
            target = Target.CONSOLIDATION
        return target
