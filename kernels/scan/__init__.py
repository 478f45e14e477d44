"""The linear-recurrence scan used by the registers (dispatching naive / Triton)."""
from __future__ import annotations

import torch

from kernels import backend
from kernels.scan import naive


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None,
                scale_input: bool = False) -> torch.Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` over dim 1; a, b: [B, T, N] (a broadcastable), h0: [B, N] or None.
    ``scale_input``: ``+ (1 - a_t) * b_t`` instead (inside the twin's kernels, no extra ops).

    Returns h: [B, T, N]. See :func:`kernels.scan.naive.linear_scan` for the spec.
    """
    twin = backend.use_triton("scan", b)
    if twin is not None:
        return twin.linear_scan(a, b, h0, scale_input=scale_input)
    return naive.linear_scan(a, b, h0, scale_input=scale_input)


__all__ = ["linear_scan"]
