"""Triton twin of :func:`kernels.chains.naive.walk_chains`: one program per chain.

The program keeps its chain's W ways (validity, keys, utility, age, occupant) in registers and
walks the chain's events in time order, so a whole batch's slot plan is one launch, with no
host round trip per event or per event rank.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_NEVER = tl.constexpr(9223372036854775807)  # an age no slot reaches (int64 max)


@triton.jit
def _walk_kernel(starts_ptr, write_ptr, ekey_ptr, eutil_ptr, eage_ptr, eocc_ptr,
                 valid_ptr, keys_ptr, util_ptr, age_ptr, occ_ptr, way_ptr, act_ptr,
                 threshold, W, DK, BW: tl.constexpr, BK: tl.constexpr):
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
        wr = tl.load(write_ptr + e) != 0
        k = tl.load(ekey_ptr + e * DK + ok, mask=mk, other=0.0)
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
        acted = wr | (n_live > 0)
        sel = (ow == w) & acted
        valid = tl.where(sel, wr.to(tl.int32), valid)
        keys = tl.where(sel[:, None], tl.where(wr, k[None, :], 0.0), keys)
        util = tl.where(sel, tl.where(wr, tl.load(eutil_ptr + e), 0.0), util)
        age = tl.where(sel, tl.where(wr, tl.load(eage_ptr + e), 0), age)
        occ = tl.where(sel, tl.where(wr, tl.load(eocc_ptr + e), -1), occ)
        tl.store(way_ptr + e, w.to(tl.int64))
        tl.store(act_ptr + e, acted.to(tl.int8))
    tl.store(occ_ptr + c * W + ow, occ, mask=mw)


def walk_chains(starts, is_write, ev_key, ev_util, ev_age, ev_occ, valid, keys, util, age, occ, threshold):
    """Same arguments, results and policy as :func:`kernels.chains.naive.walk_chains`."""
    C, W = valid.shape
    DK = keys.shape[-1]
    E = is_write.shape[0]
    dev = valid.device
    out_occ = occ.clone().contiguous()
    way = torch.full((E,), -1, dtype=torch.long, device=dev)
    act = torch.zeros(E, dtype=torch.int8, device=dev)
    if C == 0:
        return out_occ, way, act.bool()
    _walk_kernel[(C,)](starts.contiguous(), is_write.to(torch.int8).contiguous(), ev_key.float().contiguous(),
                       ev_util.float().contiguous(), ev_age.contiguous(), ev_occ.contiguous(),
                       valid.to(torch.int8).contiguous(), keys.float().contiguous(), util.float().contiguous(),
                       age.contiguous(), out_occ, way, act, float(threshold), W, DK,
                       BW=triton.next_power_of_2(W), BK=triton.next_power_of_2(DK))
    return out_occ, way, act.bool()
