"""The memory read used by every memory layer (dispatching naive / Triton)."""
from __future__ import annotations

import torch

from kernels import backend
from kernels.memory import naive


def read_slots(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked softmax read: q [N, dk], keys [N, S, dk], values [N, S, dv], mask [N, S] bool -> [N, dv].

    See :func:`kernels.memory.naive.read_slots` for the spec.
    """
    twin = backend.use_triton("memory", q)
    if twin is not None:
        return twin.read_slots(q, keys, values, mask)
    return naive.read_slots(q, keys, values, mask)


__all__ = ["read_slots"]
