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
    check_plain(S, plain)
    k = keys.index_select(0, index.reshape(-1)).view(*index.shape, keys.shape[-1])
    v = values.index_select(0, index.reshape(-1)).view(*index.shape, values.shape[-1])
    r_plain = read_slots(q, k[:, :plain], v[:, :plain], mask[:, :plain])
    return r_plain, (read_slots(q, k, v, mask) if plain < S else None)


def check_plain(S: int, plain: int) -> None:
    """ValueError unless 0 < plain <= S (the plain read's slot count of S slots)."""
    if not 0 < plain <= S:
        raise ValueError(f"plain must be in [1, {S}], got {plain}")


def check_mix(S: int, plain: int, N: int, w_plain: torch.Tensor, w_wide: torch.Tensor | None) -> None:
    """:func:`read_mix`'s argument checks (shared by the Triton twin): ValueError unless 0 < plain <= S,
    w_plain is [N] and w_wide is [N] exactly when there is a wide read (plain < S), None otherwise."""
    check_plain(S, plain)
    if w_plain is None:
        raise ValueError("read_mix: w_plain is required")
    if (w_wide is None) != (plain == S):
        raise ValueError(f"read_mix: w_wide must be given exactly when plain < S (plain {plain}, S {S}), "
                         f"got {'None' if w_wide is None else 'a tensor'}")
    for name, w in (("w_plain", w_plain), ("w_wide", w_wide)):
        if w is not None and tuple(w.shape) != (N,):
            raise ValueError(f"read_mix: {name} must be [N] = [{N}], got {list(w.shape)}")


def read_mix(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
             mask: torch.Tensor, plain: int, w_plain: torch.Tensor, w_wide: torch.Tensor | None) -> torch.Tensor:
    """The two reads of :func:`read_rows` mixed by per-read weights: the memory layer's read.

    w_plain, w_wide: [N] (the READ / SCAN selections; w_wide None exactly when plain == S, i.e.
    there is no wide read, else ValueError). Returns mixed [N, dv] =
    w_plain[:, None] * r_plain (+ w_wide[:, None] * r_wide), in that order. Differentiable in q,
    keys, values, w_plain and w_wide.
    """
    check_mix(index.shape[1], plain, index.shape[0], w_plain, w_wide)
    r_plain, r_wide = read_rows(q, keys, values, index, mask, plain)
    mixed = w_plain.unsqueeze(-1) * r_plain
    if w_wide is not None:
        mixed = mixed + w_wide.unsqueeze(-1) * r_wide
    return mixed
