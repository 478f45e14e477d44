"""The walk of the memory's bucket chains (the write policy of a whole batch), dispatching naive / Triton."""
from __future__ import annotations

import torch

from kernels import backend
from kernels.chains import naive


def walk_chains(starts: torch.Tensor, order: torch.Tensor, write: torch.Tensor, ev_key: torch.Tensor,
                ev_util: torch.Tensor, pos0: torch.Tensor, T: int, S: int, valid: torch.Tensor, keys: torch.Tensor,
                util: torch.Tensor, age: torch.Tensor, occ: torch.Tensor, n_reads: int, n_probes: int,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(final occupants [C, W], read occupants [n_reads, n_probes * W]); see
    :func:`kernels.chains.naive.walk_chains` for the shapes, the entry order and the policy (the spec)."""
    twin = backend.use_triton("chains", valid)
    impl = twin if twin is not None else naive
    return impl.walk_chains(starts, order, write, ev_key, ev_util, pos0, T, S, valid, keys, util, age, occ,
                            n_reads, n_probes, threshold)


__all__ = ["walk_chains"]
