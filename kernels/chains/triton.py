"""Triton twin of :func:`kernels.chains.naive.walk_chains`: one program per chain.

The program keeps its chain's W ways (validity, keys, utility, age, occupant) in registers and
walks the chain's entries in order: writes and clears update the ways, reads copy the current
occupants out. So a whole batch's slot plan and every read's slots are one launch, with no host
round trip per event or per event rank.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_NEVER = tl.constexpr(9223372036854775807)  # an age no slot reaches (int64 max)


@triton.jit
def _walk_kernel(starts_ptr, order_ptr, write_ptr, ekey_ptr, eutil_ptr, pos0_ptr,
                 valid_ptr, keys_ptr, util_ptr, age_ptr, occ_ptr, reads_ptr,
                 threshold, P, T, S, W, DK, NPROBE, BW: tl.constexpr, BK: tl.constexpr):
    c = tl.program_id(0).to(tl.int64)
    ow = tl.arange(0, BW)
    ok = tl.arange(0, BK)
    mw, mk = ow < W, ok < DK
    valid = tl.load(valid_ptr + c * W + ow, mask=mw, other=0).to(tl.int32)
    keys = tl.load(keys_ptr + (c * W + ow)[:, None] * DK + ok[None, :], mask=mw[:, None] & mk[None, :], other=0.0)
    util = tl.load(util_ptr + c * W + ow, mask=mw, other=float("inf"))   # padding is never the lowest
    age = tl.load(age_ptr + c * W + ow, mask=mw, other=0)
    occ = tl.load(occ_ptr + c * W + ow, mask=mw, other=-1)
    lo = tl.load(starts_ptr + c)
    hi = tl.load(starts_ptr + c + 1)
    for e in range(lo, hi):
        i = tl.load(order_ptr + e)
        if i >= P:  # a read: the ways' occupants as they are now (before a write of the same time)
            r = i - P
            tl.store(reads_ptr + (r // NPROBE) * (NPROBE * W) + (r % NPROBE) * W + ow, occ, mask=mw)
        else:
            wr = tl.load(write_ptr + i) != 0
            k = tl.load(ekey_ptr + i * DK + ok, mask=mk, other=0.0)
            live = (valid != 0) & mw
            cos = tl.where(live, tl.sum(keys * k[None, :], axis=1), float("-inf"))
            best_cos = tl.max(cos, axis=0)
            best = tl.argmax(cos, axis=0)
            n_live = tl.sum(live.to(tl.int32), axis=0)
            empty = (valid == 0) & mw
            n_empty = tl.sum(empty.to(tl.int32), axis=0)
            first_empty = tl.argmax(empty.to(tl.int32), axis=0)
            lowest = (util == tl.min(util, axis=0)) & mw
            evict = tl.argmin(tl.where(lowest, age, _NEVER), axis=0)
            matched = (n_live > 0) & (best_cos >= threshold)
            w_write = tl.where(matched, best, tl.where(n_empty > 0, first_empty, evict))
            w = tl.where(wr, w_write, best)
            sel = (ow == w) & (wr | (n_live > 0))   # a clear of an empty bucket does nothing
            t = i % T
            valid = tl.where(sel, wr.to(tl.int32), valid)
            keys = tl.where(sel[:, None], tl.where(wr, k[None, :], 0.0), keys)
            util = tl.where(sel, tl.where(wr, tl.load(eutil_ptr + i), 0.0), util)
            age = tl.where(sel, tl.where(wr, tl.load(pos0_ptr + i // T) + t, 0), age)
            occ = tl.where(sel, tl.where(wr, S + t, -1), occ)
    tl.store(occ_ptr + c * W + ow, occ, mask=mw)


def walk_chains(starts, order, write, ev_key, ev_util, pos0, T, S, valid, keys, util, age, occ, n_reads, n_probes,
                threshold):
    """Same arguments, results and policy as :func:`kernels.chains.naive.walk_chains`."""
    C, W = valid.shape
    DK = keys.shape[-1]
    dev = valid.device
    out_occ = occ.clone().contiguous()
    reads = torch.full((n_reads, n_probes * W), -1, dtype=torch.long, device=dev)
    if C == 0:
        return out_occ, reads
    _walk_kernel[(C,)](starts.contiguous(), order.contiguous(), write.to(torch.int8).contiguous(),
                       ev_key.float().contiguous(), ev_util.float().contiguous(), pos0.contiguous(),
                       valid.to(torch.int8).contiguous(), keys.float().contiguous(), util.float().contiguous(),
                       age.contiguous(), out_occ, reads, float(threshold), write.shape[0], T, S, W, DK, n_probes,
                       BW=triton.next_power_of_2(W), BK=triton.next_power_of_2(DK))
    return out_occ, reads
