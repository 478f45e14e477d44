"""Reference memory read (float32): masked softmax attention over a few gathered slots."""
from __future__ import annotations

import torch


def read_slots(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Read one value per query from its own gathered slots.

    q: [N, dk] queries; keys: [N, S, dk] and values: [N, S, dv] the slots each query
    may see; mask: [N, S] bool, True where the slot is live. Returns r: [N, dv]:

        w = softmax over live s of (q . keys[s]) / sqrt(dk);  r = sum_s w_s values[s]

    A query with no live slot reads exactly zero (no NaN). Differentiable in q,
    keys and values.
    """
    scale = q.shape[-1] ** -0.5
    scores = (keys @ q.unsqueeze(-1)).squeeze(-1) * scale
    scores = scores.masked_fill(~mask, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = torch.exp(scores - top)  # exp(-inf) = 0 for dead slots
    denom = w.sum(dim=-1, keepdim=True)
    w = w / torch.where(denom > 0, denom, torch.ones_like(denom))
    return (w.unsqueeze(1) @ values).squeeze(1)
