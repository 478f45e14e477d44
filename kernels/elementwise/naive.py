"""Reference fused element-wise ops of the training forward (the spec of the elementwise op).

Both are the model's own PyTorch code, kept in its operation order, so the naive path computes
exactly what the model always has; their Triton twins must agree with these up to rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gated_update(x: torch.Tensor, local: torch.Tensor, reg: torch.Tensor, mem: torch.Tensor | None,
                 sel: torch.Tensor, gate_logits: torch.Tensor, up: int, down: int, idle: int) -> torch.Tensor:
    """The residual update of one block: x plus the local, register and memory paths, gated.

    x, local, reg: [..., d]; mem: [..., d] or None (a layer without memory); sel: [..., n] the
    opcode selection (one-hot in value, soft in gradient); gate_logits: [..., 2] (register,
    memory). Columns ``up`` / ``down`` of sel push both gates towards 1 / 0, and ``idle`` turns
    the whole update off. Returns y: [..., d] in the promoted dtype of the inputs.
    """
    g = torch.sigmoid(gate_logits)
    g = g + sel[..., up:up + 1] * (1 - g) - sel[..., down:down + 1] * g
    upd = local + g[..., 0:1] * reg
    if mem is not None:
        upd = upd + g[..., 1:2] * mem
    return x + (1 - sel[..., idle:idle + 1]) * upd


def unit_rows(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Rows of x: [..., n] scaled to length ``scale``: ``x / max(|x|, 1e-12) * scale``, x's dtype."""
    y = F.normalize(x, dim=-1)
    return y if scale == 1.0 else y * scale
