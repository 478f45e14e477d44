"""Fixtures for the learner's tests: a small model and a chat-like byte stream."""
from __future__ import annotations

import pytest
import torch

from prompts import stream


def small_model(seed: int = 0):
    """A fresh ``ModelConfig.preset("tiny")`` MosaicLM in eval mode, seeded."""
    from engine.vm import ModelConfig, MosaicLM

    torch.manual_seed(seed)
    model = MosaicLM(ModelConfig.preset("tiny"))
    model.eval()
    return model


CHAT = [
    (stream.user("remember that the door code is 4417"), stream.bot("ok, the door code is 4417.")),
    (stream.user("my sister is called Maren"), stream.bot("noted: your sister is Maren.")),
    (stream.user("the boat leaves at 7:40 from pier 3"), stream.bot("ok.")),
    (stream.user("what is the door code?"), stream.bot("the door code is 4417.")),
]

HELDOUT = [
    stream.user("the train to Lund leaves at 9:15") + stream.bot("ok."),
    stream.user("what colour is the sky?") + stream.bot("blue, mostly."),
]


def ids_of(text: str) -> list[int]:
    return list(text.encode("utf-8"))


@pytest.fixture
def model():
    return small_model()


@pytest.fixture
def chat_ids() -> list[list[int]]:
    return [ids_of(u + b) for u, b in CHAT]


@pytest.fixture
def heldout_ids() -> list[list[int]]:
    return [ids_of(t) for t in HELDOUT]
