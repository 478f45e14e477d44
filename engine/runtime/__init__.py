"""The autonomous runtime: events, the priority bus, drives, the impulse router, the engine thread,
idle consolidation, the commitment ledger and throttled snapshots (DESIGN.md section 4)."""
from engine.runtime.events import Event
from engine.runtime.bus import EventBus
from engine.runtime.drives import DriveBand, HomeostaticLoop, IntrinsicDrive, default_drives
from engine.runtime.ledger import CommitmentLedger
from engine.runtime.router import ImpulseRouter, Route, Target
from engine.runtime.consolidation import ConsolidationConfig, Consolidator
from engine.runtime.snapshot import Snapshot
from engine.runtime.engine import Engine, EngineConfig

__all__ = ["Event", "EventBus", "DriveBand", "IntrinsicDrive", "HomeostaticLoop", "default_drives",
           "CommitmentLedger", "ImpulseRouter", "Route", "Target", "ConsolidationConfig", "Consolidator",
           "Snapshot", "Engine", "EngineConfig"]
