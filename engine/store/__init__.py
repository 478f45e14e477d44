"""Persistence: where files live, atomic writes, sessions and the event log."""
from engine.store.atomic import atomic_write_bytes, atomic_write_text
from engine.store.paths import mosaic_home

__all__ = ["atomic_write_bytes", "atomic_write_text", "mosaic_home"]
