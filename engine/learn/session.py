"""One call for the runtime: the learner of a session, with its probes, anchors and replay log.

    learner = learner_for_session(model, "default", on_event=publish)
    # engine thread: learner.observe(ids); learner.maybe_update(); when idle:
    # learner.consolidate(replay_texts); on stop: learner.save("default")
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from engine.learn.guard import Guard
from engine.learn.online import Event, LearnerConfig, OnlineLearner
from engine.learn.replay_log import ReplayLog


def curriculum_texts(n: int, length: int, n_buckets: int, seed: int, split: str) -> list[list[int]]:
    """``n`` curriculum conversations of ``length`` bytes (byte-id lists), deterministic by seed.

    split="heldout" gives probes (never trained on); split="train" gives anchors.
    """
    from engine.curriculum.episodes import training_example

    return [[int(i) for i in training_example(seed + i, length, n_buckets, split=split).ids]
            for i in range(n)]


def learner_for_session(model: nn.Module, session: str | None, *,
                        on_event: Callable[[Event], None] | None = None,
                        config: LearnerConfig | None = None, probes: int = 4, anchors: int = 16,
                        length: int = 256, tolerance: float = 0.05) -> OnlineLearner:
    """The online learner for ``session``: resumes its current adapter (if saved), guards with
    held-out curriculum probes, keeps close to the base on training-split anchors, and logs
    windows and replays to the session's replay log. ``session=None``: nothing persists.
    """
    nb = model.config.buckets
    guard = Guard(curriculum_texts(probes, length, nb, 20_000, "heldout"), tolerance=tolerance)
    kwargs = dict(guard=guard, on_event=on_event,
                  anchors=curriculum_texts(anchors, length, nb, 30_000, "train"),
                  replay_log=ReplayLog(session) if session else None)
    if session is None:
        return OnlineLearner(model, config, **kwargs)
    return OnlineLearner.from_store(model, session, config, **kwargs)
