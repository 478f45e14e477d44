"""The slow timescale: offline training of MOSAIC (or the window baseline) on the curriculum.

``python -m engine.train --preset tiny`` or ``mosaic train --preset tiny`` (the same code).
"""
from engine.train.config import ARCHS, TRAIN_PRESETS, TrainConfig, TrainConfigError, train_preset

__all__ = ["TrainConfig", "TrainConfigError", "TRAIN_PRESETS", "ARCHS", "train_preset", "train"]


def train(*args, **kwargs):
    """See :func:`engine.train.loop.train` (imported lazily: torch is heavy)."""
    from engine.train.loop import train as _train
    return _train(*args, **kwargs)
