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


def opcode_select(op_logits: torch.Tensor, gate_logits: torch.Tensor, t_op: torch.Tensor | None,
                  t_gate: torch.Tensor | None, clear: int, nop: int, write: int,
                  clear_confidence: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A block's decisions and their straight-through selections.

    op_logits: [..., n]; gate_logits: [...] (the write gate); t_op, t_gate: [...] long teacher
    labels (>= 0 win; -1 free) or None; clear, nop, write: opcode columns; clear_confidence: a
    CLEAR of probability below it becomes a NOP (a clear cannot be undone; 0: off).
    Returns (op [...] long: the argmax, so amended, teacher winning; gate [...] bool:
    gate_logits > 0, teacher winning; sel [..., n] float32: one-hot of op in value, the gradient
    of softmax(op_logits); store [...] float32: gate times sel[write] in value (a write's value is
    stored times it), the gradient of sigmoid(gate_logits) for the gate).
    """
    op = op_logits.argmax(-1)
    if clear_confidence > 0:
        p_clear = op_logits.detach().float().softmax(-1)[..., clear]
        op = torch.where((op == clear) & (p_clear < clear_confidence), nop, op)
    gate = gate_logits > 0
    if t_op is not None:
        op = torch.where(t_op >= 0, t_op, op)
    if t_gate is not None:
        gate = torch.where(t_gate >= 0, t_gate > 0, gate)
    p = op_logits.float().softmax(-1)
    hard = (op.unsqueeze(-1) == torch.arange(op_logits.shape[-1], device=op.device)).float()
    sel = hard + (p - p.detach())
    g = torch.sigmoid(gate_logits.float())
    store = (gate.float() + (g - g.detach())) * sel[..., write]
    return op, gate, sel, store


def swiglu(h: torch.Tensor) -> torch.Tensor:
    """The gated MLP's activation: h [..., 2m] -> silu(h[..., :m]) * h[..., m:], [..., m] in h's dtype."""
    gate, up = h.chunk(2, dim=-1)
    return F.silu(gate) * up
