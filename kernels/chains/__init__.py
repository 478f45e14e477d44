"""The walk of the memory's bucket chains (the write policy of a whole batch), dispatching naive / Triton."""
from __future__ import annotations

import torch

from kernels import backend
from kernels.chains import naive


def walk_chains(starts: torch.Tensor, is_write: torch.Tensor, ev_key: torch.Tensor, ev_util: torch.Tensor,
                ev_age: torch.Tensor, ev_occ: torch.Tensor, valid: torch.Tensor, keys: torch.Tensor,
                util: torch.Tensor, age: torch.Tensor, occ: torch.Tensor,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(final occupants [C, W], way of each event [E], whether it acted [E]); see
    :func:`kernels.chains.naive.walk_chains` for the shapes and the policy (the spec)."""
    twin = backend.use_triton("chains", valid)
    if twin is not None:
        return twin.walk_chains(starts, is_write, ev_key, ev_util, ev_age, ev_occ, valid, keys, util, age, occ,
                                threshold)
    return naive.walk_chains(starts, is_write, ev_key, ev_util, ev_age, ev_occ, valid, keys, util, age, occ,
                             threshold)


__all__ = ["walk_chains"]
