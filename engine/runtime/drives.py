"""Homeostasis: drives with healthy bands; a drive far enough outside its band becomes an Impulse.

urgency = weight x distance outside the band (0 inside). The loop picks the most
urgent drive over the threshold, respecting a per-drive refractory period so a
drive that stays out of band does not fire on every tick.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping

from engine.runtime.events import PRIORITY_IMPULSE_BASE, PRIORITY_USER, Event


@dataclass(frozen=True)
class DriveBand:
    """The healthy range [low, high] of a metric."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (self.low <= self.high):
            raise ValueError(f"DriveBand needs low <= high, got [{self.low}, {self.high}]")

    def deviation(self, value: float) -> float:
        """Distance of ``value`` outside the band (0 inside)."""
        if value < self.low:
            return self.low - value
        if value > self.high:
            return value - self.high
        return 0.0


@dataclass(frozen=True)
class IntrinsicDrive:
    """A named drive reading ``metric`` from the metrics dict; ``template`` renders its impulse."""

    name: str
    metric: str
    band: DriveBand
    weight: float = 1.0
    template: str = "impulse_generic"

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"drive {self.name}: weight must be >= 0")

    def urgency(self, metrics: Mapping[str, float]) -> float:
        """weight x deviation; a metric the engine does not (yet) report counts as in band."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return 0.0
        return self.weight * self.band.deviation(float(value))


@dataclass(frozen=True)
class DriveReading:
    name: str
    metric: str
    value: float
    low: float
    high: float
    urgency: float

    def as_dict(self) -> dict:
        return {"name": self.name, "metric": self.metric, "value": self.value,
                "low": self.low, "high": self.high, "urgency": self.urgency}


def impulse_priority(urgency: float) -> int:
    """Impulses rank above background events and below a person's message, growing with urgency."""
    return min(PRIORITY_USER - 1, PRIORITY_IMPULSE_BASE + int(round(10 * urgency)))


def default_drives() -> list[IntrinsicDrive]:
    """Sensible bands for the metrics in engine.runtime.metrics (all normalised or in seconds/counts)."""
    return [
        IntrinsicDrive("memory_pressure", "memory_occupancy", DriveBand(0.0, 0.85), 4.0,
                       "impulse_memory_pressure"),
        IntrinsicDrive("low_confidence", "logit_entropy", DriveBand(0.0, 0.85), 2.0,
                       "impulse_low_confidence"),
        IntrinsicDrive("open_commitments", "open_commitments", DriveBand(0.0, 2.0), 0.5,
                       "impulse_open_commitment"),
        IntrinsicDrive("idle", "idle_s", DriveBand(0.0, 600.0), 1.0 / 300.0, "impulse_idle"),
        IntrinsicDrive("unconsolidated", "unconsolidated_writes", DriveBand(0.0, 512.0), 1.0 / 256.0,
                       "impulse_unconsolidated"),
    ]


@dataclass
class HomeostaticLoop:
    """Evaluates drives against metrics; ``check`` returns an Impulse event or None."""

    drives: list[IntrinsicDrive] = field(default_factory=default_drives)
    threshold: float = 0.0
    refractory_s: float = 30.0
    _last_fired: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        names = [d.name for d in self.drives]
        if len(set(names)) != len(names):
            raise ValueError(f"drive names must be unique, got {names}")

    def readings(self, metrics: Mapping[str, float]) -> list[DriveReading]:
        """One reading per drive, in the drives' order."""
        out = []
        for d in self.drives:
            v = metrics.get(d.metric)
            out.append(DriveReading(d.name, d.metric, float("nan") if v is None else float(v),
                                    d.band.low, d.band.high, d.urgency(metrics)))
        return out

    def check(self, metrics: Mapping[str, float], now: float | None = None) -> Event | None:
        """The most urgent drive over the threshold (not in its refractory period) as an Impulse."""
        now = time.monotonic() if now is None else now
        best: tuple[float, IntrinsicDrive, DriveReading] | None = None
        for d, r in zip(self.drives, self.readings(metrics)):
            if r.urgency <= self.threshold:
                continue
            if now - self._last_fired.get(d.name, -math.inf) < self.refractory_s:
                continue
            if best is None or r.urgency > best[0]:
                best = (r.urgency, d, r)
        if best is None:
            return None
        urgency, drive, reading = best
        self._last_fired[drive.name] = now
        return Event("Impulse", {"drive": drive.name, "metric": drive.metric, "value": reading.value,
                                 "low": reading.low, "high": reading.high, "urgency": urgency,
                                 "template": drive.template},
                     sender="homeostasis", priority=impulse_priority(urgency))
