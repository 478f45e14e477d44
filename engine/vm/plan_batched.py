"""The memory's slot plan on the model's own device: every bucket of every row at once.

:func:`engine.vm.memory.plan` (the reference) walks each row's write and clear events one by
one in a Python loop on the host, so a GPU step waits for the host. Events in different
buckets never interact (a write only looks at its own bucket's ways), so the walk splits into
B x NB independent chains. :func:`plan_batched` sorts the events by (chain, time) and takes
the r-th event of every chain in one batched tensor step, r = 0 .. (longest chain - 1): the
same decisions with a few dozen tensor steps instead of one Python step per event, and no
copy to the host. Reads then find each probed slot's occupant with one ``searchsorted``.
The "chains" walker instead sorts writes, clears and read probes together by (chain, time) and
walks every chain in its own program (kernels.chains), which answers the reads on the way.

Decisions equal the reference's except where a cosine lies within float rounding of the
match threshold (the two sum the dot product in different orders).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from kernels.elementwise import unit_rows

_NEVER = torch.iinfo(torch.long).max


@dataclass
class TensorPlan:
    """:class:`engine.vm.memory.Plan` as tensors on the model's device (same fields, same meaning)."""

    final: torch.Tensor        # [B, NB, W] long
    read_rows: torch.Tensor    # [N] long
    read_pos: torch.Tensor     # [N] long
    read_events: torch.Tensor  # [N, Ps*W] long


def _choose_ways(valid: torch.Tensor, cos: torch.Tensor, utility: torch.Tensor, age: torch.Tensor,
                 threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The write policy for E buckets at once; valid/cos/utility/age: [E, W].

    Returns (way of a write [E], way of a clear [E]): a write takes the live way of highest
    cosine if it reaches ``threshold``, else the first empty way, else the lowest utility (the
    oldest among equals); a clear takes the live way of highest cosine. Ties go to the first
    way, as ``np.argmax`` / ``np.argmin`` break them.
    """
    cosv = torch.where(valid, cos, torch.full_like(cos, -float("inf")))
    best = cosv.argmax(-1)
    matched = valid.any(-1) & (cosv.gather(-1, best[:, None])[:, 0] >= threshold)
    first_empty = (~valid).float().argmax(-1)
    lowest = utility == utility.min(-1, keepdim=True).values
    evict = torch.where(lowest, age, torch.full_like(age, _NEVER)).argmin(-1)
    way = torch.where(matched, best, torch.where(valid.all(-1), evict, first_empty))
    return way, best


@torch.no_grad()
def plan_batched(*, threshold: float, write: torch.Tensor, clear: torch.Tensor, bucket: torch.Tensor,
                 keys: torch.Tensor, utility: torch.Tensor, pos0: torch.Tensor, read_rows: torch.Tensor,
                 read_pos: torch.Tensor, read_probes: torch.Tensor, init_valid: torch.Tensor,
                 init_keys: torch.Tensor, init_utility: torch.Tensor, init_age: torch.Tensor,
                 walker: str = "ranks") -> TensorPlan:
    """Same arguments and decisions as :func:`engine.vm.memory.plan`, as tensors on one device.

    write/clear: [B, T] bool; bucket: [B, T] long; keys: [B, T, dk]; utility: [B, T]; pos0: [B];
    read_rows/read_pos: [N]; read_probes: [N, Ps]; init_valid: [B, NB, W] bool; init_keys:
    [B, NB, W, dk]; init_utility: [B, NB, W]; init_age: [B, NB, W] long.
    ``walker`` "ranks": (longest chain of events in one bucket) batched tensor steps, then one
    sort and one searchsorted for the reads; "chains": :func:`kernels.chains.walk_chains`, every
    chain (its events and the reads that probe it) walked by its own program (one Triton launch
    on a GPU), after one sort.
    """
    B, NB, W = init_valid.shape
    T = write.shape[1]
    S, dev = NB * W, init_valid.device
    C = B * NB  # chains
    kn = unit_rows(keys.float(), 1.0)                               # F.normalize (eps 1e-12), one kernel
    ck = unit_rows(init_keys.float(), 1.0).reshape(C, W, -1)
    slot_ids = torch.arange(C * W, device=dev).remainder_(S).view(C, W)
    occ = torch.where(init_valid.reshape(C, W), slot_ids, -1)  # every slot's occupant at time 0

    if walker == "chains":
        return _plan_chains(write, clear, bucket, kn, utility, pos0, read_rows, read_pos, read_probes, init_valid, ck,
                            init_utility, init_age, occ, threshold)
    span = T + 2
    init_occ = occ.reshape(-1)
    # the ranks walker's tables have a scratch row C that no-op events write to
    valid = torch.cat([init_valid.reshape(C, W), init_valid.new_zeros(1, W)])
    ck = torch.cat([ck, ck.new_zeros(1, *ck.shape[1:])])
    cu = torch.cat([init_utility.float().reshape(C, W), init_utility.new_zeros(1, W, dtype=torch.float)])
    ca = torch.cat([init_age.reshape(C, W), init_age.new_zeros(1, W)])
    occ = torch.cat([occ, occ.new_full((1, W), -1)])
    # events in (chain, time) order; rank = index within the chain
    rows, ts = (write | clear).nonzero(as_tuple=True)          # row-major: time order per row
    chain = rows * NB + bucket[rows, ts]
    chain, order = torch.sort(chain, stable=True)
    rows, ts = rows[order], ts[order]
    _, counts = torch.unique_consecutive(chain, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.arange(len(chain), device=dev) - starts
    by_rank = torch.argsort(rank, stable=True)
    per_rank = torch.bincount(rank, minlength=1).tolist() if len(rank) else []  # the one host sync
    ev_slot, ev_time, ev_occ = [], [], []
    at = 0
    for n in per_rank:
        e = by_rank[at:at + n]
        at += n
        c, b, t = chain[e], rows[e], ts[e]
        is_write = write[b, t]
        k = kn[b, t]
        live = valid[c]
        cos = torch.einsum("ewd,ed->ew", ck[c], k)
        w_write, w_clear = _choose_ways(live, cos, cu[c], ca[c], threshold)
        w = torch.where(is_write, w_write, w_clear)
        # a clear of an empty bucket does nothing: it goes to the scratch chain (no boolean
        # indexing, which would sync with the host at every rank)
        act = is_write | live.any(-1)
        c = torch.where(act, c, C)
        new_occ = torch.where(is_write, S + t, -1)
        occ[c, w] = new_occ
        ck[c, w] = k * is_write[:, None]
        cu[c, w] = torch.where(is_write, utility[b, t].float(), 0.0)
        ca[c, w] = torch.where(is_write, pos0[b] + t, 0)
        valid[c, w] = is_write
        # a no-op's history entry goes past every slot (B * S), so no read ever finds it
        ev_slot.append(torch.where(act, b * S + (c % NB) * W + w, B * S))
        ev_time.append(t + 1)
        ev_occ.append(new_occ)
    occ = occ[:C]
    final = occ.reshape(B, NB, W)
    empty = torch.empty(0, dtype=torch.long, device=dev)
    return _reads(final, init_occ, torch.cat(ev_slot) if ev_slot else empty, torch.cat(ev_time) if ev_time else empty,
                  torch.cat(ev_occ) if ev_occ else empty, read_rows, read_pos, read_probes, B, S, W, span)


def _key_dtype(bound: int) -> torch.dtype:
    """int32 for sort and search keys below ``bound`` where they fit, else int64."""
    return torch.int32 if bound < 2 ** 31 else torch.long


def _plan_chains(write, clear, bucket, kn, utility, pos0, read_rows, read_pos, read_probes, init_valid, ck,
                 init_utility, init_age, occ, threshold) -> TensorPlan:
    """The chains walker: every write, clear and read probe as an entry of its bucket chain, sorted
    once by (chain, time, a read before the write of its time), then kernels.chains.walk_chains
    walks each chain and answers its reads. Every position is an entry, those without a write or
    clear on chain C, which no program walks: no nonzero, so no shape depends on the data (a CUDA
    graph can hold it). Keys are int32 where they fit (half the radix passes of a sort)."""
    from kernels.chains import walk_chains
    B, NB, W = init_valid.shape
    T, dev = write.shape[1], write.device
    C, S, span = B * NB, NB * W, 2 * T
    kdt = _key_dtype((C + 1) * span)
    chain = torch.where(write | clear, torch.arange(0, C, NB, device=dev).unsqueeze(1) + bucket, C)    # [B, T]
    at_write = chain * span + torch.arange(1, span, 2, device=dev)                                     # 2t + 1
    at_read = (read_rows.unsqueeze(1) * NB + read_probes) * span + 2 * read_pos.unsqueeze(1)            # [N, Ps]
    order_keys, order = torch.sort(torch.cat([at_write.reshape(-1), at_read.reshape(-1)]).to(kdt))
    starts = torch.searchsorted(order_keys, torch.arange(0, (C + 1) * span, span, device=dev, dtype=kdt))
    final, events = walk_chains(starts, order, write.reshape(-1), kn.reshape(B * T, -1), utility.reshape(-1), pos0,
                                T, S, init_valid.reshape(C, W), ck, init_utility.float().reshape(C, W),
                                init_age.reshape(C, W), occ, read_probes.shape[0], read_probes.shape[1], threshold)
    return TensorPlan(final.reshape(B, NB, W), read_rows, read_pos, events)


def _reads(final, init_occ, ev_slot, ev_time, ev_occ, read_rows, read_pos, read_probes, B, S, W, span) -> TensorPlan:
    """Which event occupies each probed slot at each read: every slot's history as sorted keys
    (row, slot, time), the initial occupant at time 0, and one searchsorted."""
    dev = final.device
    N = len(read_rows)
    if N == 0:
        events = torch.empty(0, read_probes.shape[1] * W, dtype=torch.long, device=dev)
        return TensorPlan(final, read_rows, read_pos, events)
    kdt = _key_dtype((B * S + 1) * span)
    hist_key = torch.cat([torch.arange(0, B * S * span, span, device=dev), ev_slot * span + ev_time]).to(kdt)
    hist_occ = torch.cat([init_occ, ev_occ])
    hist_key, order = torch.sort(hist_key)
    hist_occ = hist_occ[order]
    slots = (read_probes[:, :, None] * W + torch.arange(W, device=dev)).reshape(N, -1)   # [N, Ps*W]
    query = ((read_rows[:, None] * S + slots) * span + read_pos[:, None] + 1).to(kdt)
    idx = torch.searchsorted(hist_key, query, side="left") - 1   # last event at time <= the read's
    return TensorPlan(final, read_rows, read_pos, hist_occ[idx])
