"""The medium timescale: PEFT LoRA adapters learned online, guarded by probes, saved per session.

    online.py      OnlineLearner, LearnerConfig: observe / maybe_update / consolidate / snapshot
    guard.py       Guard: the probe set scored before and after each update
    adapters.py    which layers get LoRA, attach / load / snapshot / merged copy (PEFT)
    store.py       versions on disk: sessions/<name>/adapters/v<N>/ + current
    replay_log.py  the session's replay log -> training examples for ``mosaic train --from-session``
    session.py     learner_for_session(model, name, on_event=...): the runtime's one call

Names are imported lazily so that ``engine.learn.store`` stays light (no torch, no peft).
"""
from __future__ import annotations

_EXPORTS = {
    "OnlineLearner": "engine.learn.online",
    "LearnerConfig": "engine.learn.online",
    "Guard": "engine.learn.guard",
    "LoraSettings": "engine.learn.adapters",
    "AdapterError": "engine.learn.adapters",
    "AdapterStoreError": "engine.learn.store",
    "replay_examples": "engine.learn.replay_log",
    "read_replay_log": "engine.learn.replay_log",
    "ReplayLog": "engine.learn.replay_log",
    "replay_curriculum_examples": "engine.learn.replay_log",
    "learner_for_session": "engine.learn.session",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine.learn' has no attribute {name!r}")
