"""Logits that hard decisions are taken from, in float32 whether or not autocast is on."""
from __future__ import annotations

import torch
from torch import nn


def decision_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` in float32: x [..., in] -> [..., out] float32, also under autocast.

    Opcodes, write gates and buckets are argmaxes and signs of these logits. Under bf16 autocast
    a linear's output is rounded to 8 significant bits (steps of 1/64 near 2.6, where a trained
    layer 0 scores WRITE and IDLE within 0.01 of each other), which flips near-ties. A model
    trained that way learns decisions that its float32 forward, the one chat and the evals run,
    does not take: on the model shipped before stage 7 (MODEL.md), 2-3% of a layer's opcodes and
    4-6% of its write buckets differed, and two GPU stages under autocast lost the opcodes that
    answer impulses in float32 while keeping them under bf16.
    """
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return layer(x.float())  # the module itself: a wrapper (LoRA) keeps its term
    return layer(x)
