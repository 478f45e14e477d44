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


def read_rows(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
              mask: torch.Tensor, plain: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reads whose slots are rows of shared tables: the training-time memory path.

    q: [N, dk]; keys: [R, dk] and values: [R, dv] every row any read may see; index: [N, S]
    long, the rows read n sees (probe-major); mask: [N, S] bool, True where live; plain: the
    plain read covers the first ``plain`` slots (<= S). Returns (r_plain [N, dv], r_wide [N, dv]
    over all S slots, or None when plain == S): :func:`read_slots` of the gathered rows.
    Differentiable in q, keys and values (a row read by several queries sums their gradients).
    """
    S = index.shape[1]
    if not 0 < plain <= S:
        raise ValueError(f"plain must be in [1, {S}], got {plain}")
    k = keys.index_select(0, index.reshape(-1)).view(*index.shape, keys.shape[-1])
    v = values.index_select(0, index.reshape(-1)).view(*index.shape, values.shape[-1])
    r_plain = read_slots(q, k[:, :plain], v[:, :plain], mask[:, :plain])
    return r_plain, (read_slots(q, k, v, mask) if plain < S else None)
