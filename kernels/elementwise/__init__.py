"""Fused element-wise ops of the training forward (dispatching naive / Triton).

Each is a handful of tiny PyTorch kernels forward and a few dozen backward; its Triton twin is
one kernel each way, which is what a CUDA-graphed training step's launch count needs.
"""
from __future__ import annotations

import torch

from kernels import backend
from kernels.elementwise import naive


def gated_update(x: torch.Tensor, local: torch.Tensor, reg: torch.Tensor, mem: torch.Tensor | None,
                 sel: torch.Tensor, gate_logits: torch.Tensor, up: int, down: int, idle: int) -> torch.Tensor:
    """``x + (1 - sel_idle) * (local + g0 * reg + g1 * mem)`` with the gates g = sigmoid(gate_logits)
    pushed to 1 by sel_up and to 0 by sel_down.

    x, local, reg: [..., d]; mem: [..., d] or None; sel: [..., n] (float, differentiable);
    gate_logits: [..., 2]; up, down, idle: distinct columns of sel. Returns y: [..., d] in the
    promoted dtype of the inputs. See :func:`kernels.elementwise.naive.gated_update` for the spec.
    """
    tensors = (x, local, reg, sel, gate_logits) if mem is None else (x, local, reg, mem, sel, gate_logits)
    twin = backend.use_triton("elementwise", *tensors)
    if twin is not None:
        return twin.gated_update(x, local, reg, mem, sel, gate_logits, up, down, idle)
    return naive.gated_update(x, local, reg, mem, sel, gate_logits, up, down, idle)


def unit_rows(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``F.normalize(x, dim=-1) * scale``: x [..., n] -> [..., n] in x's dtype.

    See :func:`kernels.elementwise.naive.unit_rows` for the spec.
    """
    twin = backend.use_triton("elementwise", x)
    if twin is not None:
        return twin.unit_rows(x, scale)
    return naive.unit_rows(x, scale)


def opcode_select(op_logits: torch.Tensor, gate_logits: torch.Tensor, t_op: torch.Tensor | None,
                  t_gate: torch.Tensor | None, clear: int, nop: int, write: int,
                  clear_confidence: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(op [...] long, gate [...] bool, sel [..., n] float32, store [...] float32) of op_logits
    [..., n] and gate_logits [...]: the argmax opcode (an unsure CLEAR made a NOP) and the gate,
    teacher labels t_op / t_gate [...] (or None) winning; sel its straight-through one-hot, store
    the gate times sel[write]. See :func:`kernels.elementwise.naive.opcode_select` for the spec.
    """
    twin = backend.use_triton("elementwise", op_logits)
    impl = twin if twin is not None else naive
    return impl.opcode_select(op_logits, gate_logits, t_op, t_gate, clear, nop, write, clear_confidence)


def swiglu(h: torch.Tensor) -> torch.Tensor:
    """silu(h[..., :m]) * h[..., m:] of h [..., 2m] -> [..., m] in h's dtype. See
    :func:`kernels.elementwise.naive.swiglu` for the spec."""
    twin = backend.use_triton("elementwise", h)
    if twin is not None:
        return twin.swiglu(h)
    return naive.swiglu(h)


__all__ = ["gated_update", "opcode_select", "swiglu", "unit_rows"]
