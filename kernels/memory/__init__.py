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


def read_rows(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
              mask: torch.Tensor, plain: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Plain (first ``plain`` slots) and wide (all S) reads of rows of shared tables: q [N, dk],
    keys [R, dk], values [R, dv], index [N, S] long, mask [N, S] bool -> ([N, dv], [N, dv] or None).

    See :func:`kernels.memory.naive.read_rows` for the spec.
    """
    twin = backend.use_triton("memory", q)
    if twin is not None:
        return twin.read_rows(q, keys, values, index, mask, plain)
    return naive.read_rows(q, keys, values, index, mask, plain)


def read_mix(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
             mask: torch.Tensor, plain: int, w_plain: torch.Tensor, w_wide: torch.Tensor | None) -> torch.Tensor:
    """:func:`read_rows`' two reads mixed by per-read weights w_plain, w_wide [N] (w_wide None exactly
    when plain == S): mixed [N, dv] = w_plain[:, None] * r_plain (+ w_wide[:, None] * r_wide).

    See :func:`kernels.memory.naive.read_mix` for the spec.
    """
    twin = backend.use_triton("memory", q)
    if twin is not None:
        return twin.read_mix(q, keys, values, index, mask, plain, w_plain, w_wide)
    return naive.read_mix(q, keys, values, index, mask, plain, w_plain, w_wide)


__all__ = ["read_mix", "read_rows", "read_slots"]
