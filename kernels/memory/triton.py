"""Triton twins of the memory ops.

``read_slots``: the memory read (training and decoding). Each query attends over its own small
set of gathered candidate slots (the live write events of its probed buckets), masked:
out = softmax(scale * q.k_s over valid s) @ v. One program per query; the candidates
(a few dozen) sit in registers, so the forward and the backward are one pass each and
no [N, S] intermediate reaches memory. A query with no valid candidate reads zeros.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.memory import naive


@triton.jit
def _read_fwd_kernel(q_ptr, k_ptr, v_ptr, mask_ptr, out_ptr, lse_ptr,
                     S, DK, DV, scale,
                     BS: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    n = tl.program_id(0)
    os_ = tl.arange(0, BS)
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    ms, mk, mv = os_ < S, ok < DK, ov < DV
    q = tl.load(q_ptr + n * DK + ok, mask=mk, other=0.0).to(tl.float32)
    k = tl.load(k_ptr + n * S * DK + os_[:, None] * DK + ok[None, :],
                mask=ms[:, None] & mk[None, :], other=0.0).to(tl.float32)
    live = tl.load(mask_ptr + n * S + os_, mask=ms, other=0) != 0
    live = live & ms
    logits = tl.sum(k * q[None, :], axis=1) * scale
    logits = tl.where(live, logits, float("-inf"))
    mx = tl.max(logits, axis=0)
    any_live = mx > float("-inf")
    mx = tl.where(any_live, mx, 0.0)
    e = tl.where(live, tl.exp(logits - mx), 0.0)
    den = tl.sum(e, axis=0)
    p = e / tl.where(any_live, den, 1.0)
    v = tl.load(v_ptr + n * S * DV + os_[:, None] * DV + ov[None, :],
                mask=ms[:, None] & mv[None, :], other=0.0).to(tl.float32)
    out = tl.sum(p[:, None] * v, axis=0)
    tl.store(out_ptr + n * DV + ov, out, mask=mv)
    tl.store(lse_ptr + n, tl.where(any_live, mx + tl.log(tl.where(any_live, den, 1.0)), float("-inf")))


@triton.jit
def _read_bwd_kernel(q_ptr, k_ptr, v_ptr, mask_ptr, lse_ptr, dout_ptr,
                     dq_ptr, dk_ptr, dv_ptr,
                     S, DK, DV, scale,
                     BS: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    n = tl.program_id(0)
    os_ = tl.arange(0, BS)
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    ms, mk, mv = os_ < S, ok < DK, ov < DV
    q = tl.load(q_ptr + n * DK + ok, mask=mk, other=0.0).to(tl.float32)
    k = tl.load(k_ptr + n * S * DK + os_[:, None] * DK + ok[None, :],
                mask=ms[:, None] & mk[None, :], other=0.0).to(tl.float32)
    v = tl.load(v_ptr + n * S * DV + os_[:, None] * DV + ov[None, :],
                mask=ms[:, None] & mv[None, :], other=0.0).to(tl.float32)
    live = (tl.load(mask_ptr + n * S + os_, mask=ms, other=0) != 0) & ms
    lse = tl.load(lse_ptr + n)
    lse = tl.where(lse > float("-inf"), lse, 0.0)
    logits = tl.sum(k * q[None, :], axis=1) * scale
    p = tl.where(live, tl.exp(logits - lse), 0.0)
    do = tl.load(dout_ptr + n * DV + ov, mask=mv, other=0.0).to(tl.float32)
    dv = p[:, None] * do[None, :]
    dp = tl.sum(v * do[None, :], axis=1)
    ds = p * (dp - tl.sum(p * dp, axis=0)) * scale
    dq = tl.sum(ds[:, None] * k, axis=0)
    dk = ds[:, None] * q[None, :]
    tl.store(dq_ptr + n * DK + ok, dq, mask=mk)
    tl.store(dk_ptr + n * S * DK + os_[:, None] * DK + ok[None, :], dk, mask=ms[:, None] & mk[None, :])
    tl.store(dv_ptr + n * S * DV + os_[:, None] * DV + ov[None, :], dv, mask=ms[:, None] & mv[None, :])


def _blocks(S: int, DK: int, DV: int) -> tuple[int, int, int]:
    p2 = lambda n: triton.next_power_of_2(max(n, 1))  # noqa: E731
    return p2(S), p2(DK), p2(DV)


def read_fwd(q, keys, values, mask, scale):
    """q [N,dk], keys [N,S,dk], values [N,S,dv], mask [N,S] -> (out [N,dv], lse [N])."""
    N, S, DK = keys.shape
    DV = values.shape[-1]
    out = torch.empty(N, DV, device=q.device, dtype=torch.float32)
    lse = torch.empty(N, device=q.device, dtype=torch.float32)
    if N == 0:
        return out, lse
    if S == 0:
        return out.zero_(), lse.fill_(float("-inf"))
    BS, BK, BV = _blocks(S, DK, DV)
    _read_fwd_kernel[(N,)](q, keys, values, mask, out, lse, S, DK, DV, float(scale),
                           BS=BS, BK=BK, BV=BV, num_warps=4 if BS <= 64 else 8)
    return out, lse


def read_bwd(q, keys, values, mask, lse, dout, scale):
    """Gradients (dq, dkeys, dvalues) of ``read_fwd`` for the cotangent dout [N,dv]."""
    N, S, DK = keys.shape
    DV = values.shape[-1]
    dq = torch.empty(N, DK, device=q.device, dtype=torch.float32)
    dk = torch.empty(N, S, DK, device=q.device, dtype=torch.float32)
    dv = torch.empty(N, S, DV, device=q.device, dtype=torch.float32)
    if N == 0 or S == 0:
        return dq.zero_(), dk, dv
    BS, BK, BV = _blocks(S, DK, DV)
    _read_bwd_kernel[(N,)](q, keys, values, mask, lse, dout.float().contiguous(), dq, dk, dv,
                           S, DK, DV, float(scale), BS=BS, BK=BK, BV=BV, num_warps=4 if BS <= 64 else 8)
    return dq, dk, dv


class _GatheredRead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, keys, values, mask, scale):
        out, lse = read_fwd(q, keys, values, mask, scale)
        ctx.save_for_backward(q, keys, values, mask, lse)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, dout):
        q, keys, values, mask, lse = ctx.saved_tensors
        dq, dk, dv = read_bwd(q, keys, values, mask, lse, dout, ctx.scale)
        return dq, dk, dv, None, None


def read_slots(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               mask: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Masked softmax read over gathered candidates, differentiable in q, keys, values.

    q: [N, dk]; keys: [N, S, dk]; values: [N, S, dv]; mask: [N, S] bool (True = live).
    scale: logit scale, default dk ** -0.5. Returns out: [N, dv] float32 (zeros where
    a row has no live candidate). Same contract as :func:`kernels.memory.naive.read_slots`.
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    return _GatheredRead.apply(q.float().contiguous(), keys.float().contiguous(),
                               values.float().contiguous(), mask.to(torch.int8).contiguous(), scale)


# ---------------------------------------------------------------------------------------------
# Decode: read straight from the table, and the write / clear / evict policy, one program per row
# ---------------------------------------------------------------------------------------------
@triton.jit
def _table_read_kernel(q_ptr, probes_ptr, keys_ptr, values_ptr, valid_ptr, rp_ptr, rs_ptr,
                       NB, W, DK, DV, PS, PW, scale,
                       BS: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    b = tl.program_id(0)
    s = tl.arange(0, BS)
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    ms, mk, mv = s < PS * W, ok < DK, ov < DV
    probe = tl.load(probes_ptr + b * PS + s // W, mask=ms, other=0)
    slot = (b * NB + probe) * W + s % W  # [BS] flat slot index, probe-major
    live = (tl.load(valid_ptr + slot, mask=ms, other=0) != 0) & ms
    q = tl.load(q_ptr + b * DK + ok, mask=mk, other=0.0).to(tl.float32)
    k = tl.load(keys_ptr + slot[:, None] * DK + ok[None, :], mask=live[:, None] & mk[None, :], other=0.0)
    v = tl.load(values_ptr + slot[:, None] * DV + ov[None, :], mask=live[:, None] & mv[None, :], other=0.0)
    logits = tl.sum(k.to(tl.float32) * q[None, :], axis=1) * scale
    v = v.to(tl.float32)
    # the wide (SCAN) read over every probed way
    l_s = tl.where(live, logits, float("-inf"))
    mx = tl.max(l_s, axis=0)
    mx = tl.where(mx > float("-inf"), mx, 0.0)
    e = tl.where(live, tl.exp(l_s - mx), 0.0)
    den = tl.sum(e, axis=0)
    tl.store(rs_ptr + b * DV + ov, tl.sum(e[:, None] * v, axis=0) / tl.where(den > 0, den, 1.0), mask=mv)
    # the plain read over the first PW (= probes * ways) candidates
    live_p = live & (s < PW)
    l_p = tl.where(live_p, logits, float("-inf"))
    mx = tl.max(l_p, axis=0)
    mx = tl.where(mx > float("-inf"), mx, 0.0)
    e = tl.where(live_p, tl.exp(l_p - mx), 0.0)
    den = tl.sum(e, axis=0)
    tl.store(rp_ptr + b * DV + ov, tl.sum(e[:, None] * v, axis=0) / tl.where(den > 0, den, 1.0), mask=mv)


def table_read(q: torch.Tensor, probes: torch.Tensor, mem_keys: torch.Tensor, mem_values: torch.Tensor,
               mem_valid: torch.Tensor, plain_probes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both decode reads straight from the table (no gathered copies), forward only.

    q: [B, dk]; probes: [B, Ps] bucket ids, best first; mem_keys [B, NB, W, dk],
    mem_values [B, NB, W, dv], mem_valid [B, NB, W] bool. Returns (r_plain [B, dv] over the
    first ``plain_probes`` buckets, r_scan [B, dv] over all Ps), each the masked softmax read
    of :func:`kernels.memory.naive.read_slots` over those buckets' live ways.
    """
    B, NB, W, DK = mem_keys.shape
    DV = mem_values.shape[-1]
    PS = probes.shape[1]
    rp = torch.empty(B, DV, device=q.device, dtype=torch.float32)
    rs = torch.empty(B, DV, device=q.device, dtype=torch.float32)
    if B == 0:
        return rp, rs
    p2 = triton.next_power_of_2
    _table_read_kernel[(B,)](q.float().contiguous(), probes.contiguous(), mem_keys, mem_values,
                             mem_valid.view(torch.uint8), rp, rs, NB, W, DK, DV, PS, plain_probes * W,
                             float(DK ** -0.5), BS=p2(PS * W), BK=p2(DK), BV=p2(DV),
                             num_warps=4 if PS * W <= 64 else 8)
    return rp, rs


@triton.jit
def _table_write_kernel(keys_ptr, values_ptr, util_ptr, age_ptr, valid_ptr,
                        bucket_ptr, k_ptr, v_ptr, u_ptr, pos_ptr, write_ptr, clear_ptr,
                        wslot_ptr, cslot_ptr, NB, W, DK, DV, threshold,
                        BW: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    b = tl.program_id(0)
    ow = tl.arange(0, BW)
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    mw, mk, mv = ow < W, ok < DK, ov < DV
    nb = tl.load(bucket_ptr + b)
    slot0 = (b * NB + nb) * W
    valid = (tl.load(valid_ptr + slot0 + ow, mask=mw, other=0) != 0) & mw
    bk = tl.load(keys_ptr + (slot0 + ow)[:, None] * DK + ok[None, :], mask=mw[:, None] & mk[None, :], other=0.0)
    bk = bk.to(tl.float32)
    k = tl.load(k_ptr + b * DK + ok, mask=mk, other=0.0).to(tl.float32)
    # cosine as F.normalize does it: x / max(|x|, 1e-12)
    bn = tl.maximum(tl.sqrt(tl.sum(bk * bk, axis=1)), 1e-12)
    kn = tl.maximum(tl.sqrt(tl.sum(k * k, axis=0)), 1e-12)
    cos = tl.sum((bk / bn[:, None]) * (k / kn)[None, :], axis=1)
    cos = tl.where(valid, cos, float("-inf"))
    best_cos = tl.max(cos, axis=0)
    best_way = tl.min(tl.where(cos == best_cos, ow, BW), axis=0)  # first maximum
    empty = (~valid) & mw
    any_empty = tl.sum(empty.to(tl.int32), axis=0) > 0
    first_empty = tl.min(tl.where(empty, ow, BW), axis=0)
    util = tl.load(util_ptr + slot0 + ow, mask=mw, other=float("inf"))
    age = tl.load(age_ptr + slot0 + ow, mask=mw, other=0)
    lowest = (util == tl.min(util, axis=0)) & mw
    big = 9223372036854775807
    age_l = tl.where(lowest, age, big)
    min_age = tl.min(age_l, axis=0)
    evict = tl.min(tl.where(lowest & (age_l == min_age), ow, BW), axis=0)
    way = tl.where(best_cos >= threshold, best_way, tl.where(any_empty, first_empty, evict))
    do_write = tl.load(write_ptr + b) != 0
    any_valid = tl.sum(valid.to(tl.int32), axis=0) > 0
    do_clear = (tl.load(clear_ptr + b) != 0) & any_valid
    way = tl.where(do_clear, best_way, way)
    touched = do_write | do_clear
    slot = slot0 + way
    # the touched slot gets the new entry on a write, zeros on a clear; otherwise its old
    # contents are stored back (one program per row, so nothing else writes there)
    old_k = tl.load(keys_ptr + slot * DK + ok, mask=mk, other=0.0)
    new_k = tl.where(do_write, k, 0.0)
    tl.store(keys_ptr + slot * DK + ok, tl.where(touched, new_k, old_k), mask=mk)
    old_v = tl.load(values_ptr + slot * DV + ov, mask=mv, other=0.0)
    new_v = tl.where(do_write, tl.load(v_ptr + b * DV + ov, mask=mv, other=0.0).to(tl.float32), 0.0)
    tl.store(values_ptr + slot * DV + ov, tl.where(touched, new_v, old_v), mask=mv)
    new_u = tl.where(do_write, tl.load(u_ptr + b).to(tl.float32), 0.0)
    tl.store(util_ptr + slot, tl.where(touched, new_u, tl.load(util_ptr + slot)))
    new_a = tl.where(do_write, tl.load(pos_ptr + b), 0)
    tl.store(age_ptr + slot, tl.where(touched, new_a, tl.load(age_ptr + slot)))
    old_valid = tl.load(valid_ptr + slot)
    tl.store(valid_ptr + slot, tl.where(touched, do_write.to(tl.uint8), old_valid))
    tl.store(wslot_ptr + b * 2, tl.where(do_write, nb, -1))
    tl.store(wslot_ptr + b * 2 + 1, tl.where(do_write, way.to(tl.int64), -1))
    tl.store(cslot_ptr + b * 2, tl.where(do_clear, nb, -1))
    tl.store(cslot_ptr + b * 2 + 1, tl.where(do_clear, way.to(tl.int64), -1))


def table_write_(mem_keys: torch.Tensor, mem_values: torch.Tensor, mem_utility: torch.Tensor,
                 mem_age: torch.Tensor, mem_valid: torch.Tensor, bucket: torch.Tensor, k: torch.Tensor,
                 v: torch.Tensor, utility: torch.Tensor, pos: torch.Tensor, do_write: torch.Tensor,
                 clear: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The decode write / clear / evict of one token for a batch, in place on the table.

    Tables as in VMState (keys [B,NB,W,dk] f32, values [B,NB,W,dv] f32, utility [B,NB,W] f32,
    age [B,NB,W] int64, valid [B,NB,W] bool; all contiguous). bucket [B] long (the write bucket);
    k [B,dk], v [B,dv], utility [B], pos [B] long, do_write / clear [B] bool.
    Policy (engine.vm.memory's): the valid way of highest cosine if >= threshold, else the
    first empty way, else the lowest utility (oldest age breaks ties); a clear empties the
    valid way of highest cosine. Returns (write_slot [B,2], cleared_slot [B,2]) long, -1 = none.
    """
    B, NB, W, DK = mem_keys.shape
    DV = mem_values.shape[-1]
    wslot = torch.empty(B, 2, device=k.device, dtype=torch.long)
    cslot = torch.empty(B, 2, device=k.device, dtype=torch.long)
    if B == 0:
        return wslot, cslot
    for name, t in (("mem_keys", mem_keys), ("mem_values", mem_values), ("mem_utility", mem_utility),
                    ("mem_age", mem_age), ("mem_valid", mem_valid)):
        if not t.is_contiguous():
            raise ValueError(f"table_write_: {name} must be contiguous (it is written in place)")
    p2 = triton.next_power_of_2
    _table_write_kernel[(B,)](mem_keys, mem_values, mem_utility, mem_age, mem_valid.view(torch.uint8),
                              bucket.contiguous(), k.float().contiguous(), v.float().contiguous(),
                              utility.float().contiguous(), pos.contiguous(),
                              do_write.to(torch.uint8).contiguous(), clear.to(torch.uint8).contiguous(),
                              wslot, cslot, NB, W, DK, DV, float(threshold),
                              BW=p2(W), BK=p2(DK), BV=p2(DV), num_warps=1)
    return wslot, cslot


# ---------------------------------------------------------------------------------------------
# Training: reads of rows of shared tables (no gathered copies), plain and wide in one pass
# ---------------------------------------------------------------------------------------------
@triton.jit
def _softmax_read(logits, live, v):
    """(out [BV], lse) of the masked softmax read of v [BS, BV] by logits [BS]; zeros and -inf
    where nothing is live."""
    l = tl.where(live, logits, float("-inf"))
    mx = tl.max(l, axis=0)
    any_live = mx > float("-inf")
    mx = tl.where(any_live, mx, 0.0)
    e = tl.where(live, tl.exp(l - mx), 0.0)
    den = tl.where(any_live, tl.sum(e, axis=0), 1.0)
    out = tl.sum(e[:, None] * v, axis=0) / den
    return out, tl.where(any_live, mx + tl.log(den), float("-inf"))


@triton.jit
def _rows_slots(q_ptr, k_ptr, v_ptr, idx_ptr, mask_ptr, n, S, DK, DV, scale,
                BS: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    """Read n's slots: (offsets s, ok, ov; masks mk, mv; live [BS]; rows [BS]; q [BK]; k [BS, BK];
    v [BS, BV]; scores [BS]). Only live rows are loaded: a dead slot costs no memory traffic."""
    s = tl.arange(0, BS)
    ok = tl.arange(0, BK)
    ov = tl.arange(0, BV)
    ms, mk, mv = s < S, ok < DK, ov < DV
    live = (tl.load(mask_ptr + n * S + s, mask=ms, other=0) != 0) & ms
    row = tl.load(idx_ptr + n * S + s, mask=ms, other=0)
    q = tl.load(q_ptr + n * DK + ok, mask=mk, other=0.0)
    k = tl.load(k_ptr + row[:, None] * DK + ok[None, :], mask=live[:, None] & mk[None, :], other=0.0)
    v = tl.load(v_ptr + row[:, None] * DV + ov[None, :], mask=live[:, None] & mv[None, :], other=0.0)
    return s, ok, ov, mk, mv, live, row, q, k, v, tl.sum(k * q[None, :], axis=1) * scale


@triton.jit
def _rows_fwd_kernel(q_ptr, k_ptr, v_ptr, idx_ptr, mask_ptr, rp_ptr, rw_ptr, lsep_ptr, lsew_ptr, wp_ptr, ww_ptr,
                     S, PLAIN, DK, DV, swp, sww, scale,
                     WIDE: tl.constexpr, MIX: tl.constexpr, BS: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    """Both reads of read n. MIX: rp_ptr gets w_plain[n] r_plain (+ w_wide[n] r_wide), rw_ptr nothing."""
    n = tl.program_id(0).to(tl.int64)
    s, ok, ov, mk, mv, live, row, q, k, v, logits = _rows_slots(q_ptr, k_ptr, v_ptr, idx_ptr, mask_ptr, n, S, DK,
                                                                DV, scale, BS, BK, BV)
    out, lse = _softmax_read(logits, live & (s < PLAIN), v)
    tl.store(lsep_ptr + n, lse)
    if MIX:
        out = tl.load(wp_ptr + n * swp) * out
    if WIDE:
        out_w, lse = _softmax_read(logits, live, v)
        tl.store(lsew_ptr + n, lse)
        if MIX:
            out = out + tl.load(ww_ptr + n * sww) * out_w
        else:
            tl.store(rw_ptr + n * DV + ov, out_w, mask=mv)
    tl.store(rp_ptr + n * DV + ov, out, mask=mv)


@triton.jit
def _softmax_probs(logits, live, lse, dp):
    """(p [BS], delta = sum_s p_s dp_s) of :func:`_softmax_read` saved as lse, for dp_s = <v_s, d out>:
    d logits = p (dp - delta), d v = p d out, and delta = <d out, out>."""
    lse = tl.where(lse > float("-inf"), lse, 0.0)
    p = tl.where(live, tl.exp(logits - lse), 0.0)
    return p, tl.sum(p * dp, axis=0)


@triton.jit
def _rows_bwd_kernel(q_ptr, k_ptr, v_ptr, idx_ptr, mask_ptr, lsep_ptr, lsew_ptr, drp_ptr, drw_ptr, wp_ptr, ww_ptr,
                     dq_ptr, dk_ptr, dv_ptr, dwp_ptr, dww_ptr,
                     S, PLAIN, DK, DV, swp, sww, scale,
                     WIDE: tl.constexpr, MIX: tl.constexpr, BS: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    """Gradients of read n. MIX: drp_ptr holds d mixed, which is each read's cotangent scaled by its
    weight (folded into p); d w = <d mixed, r> of each read is its delta, written to dwp_ptr / dww_ptr."""
    n = tl.program_id(0).to(tl.int64)
    s, ok, ov, mk, mv, live, row, q, k, v, logits = _rows_slots(q_ptr, k_ptr, v_ptr, idx_ptr, mask_ptr, n, S, DK,
                                                                DV, scale, BS, BK, BV)
    km, vm = live[:, None] & mk[None, :], live[:, None] & mv[None, :]
    do = tl.load(drp_ptr + n * DV + ov, mask=mv, other=0.0)
    dp = tl.sum(v * do[None, :], axis=1)
    p, delta = _softmax_probs(logits, live & (s < PLAIN), tl.load(lsep_ptr + n), dp)
    if MIX:
        tl.store(dwp_ptr + n, delta)
        p = p * tl.load(wp_ptr + n * swp)
    ds = p * (dp - delta)
    if WIDE:
        if MIX:  # the wide read's cotangent is d mixed too: its dp is the plain read's
            do_w, dp_w = do, dp
        else:
            do_w = tl.load(drw_ptr + n * DV + ov, mask=mv, other=0.0)
            dp_w = tl.sum(v * do_w[None, :], axis=1)
        p_w, delta = _softmax_probs(logits, live, tl.load(lsew_ptr + n), dp_w)
        if MIX:
            tl.store(dww_ptr + n, delta)
            p_w = p_w * tl.load(ww_ptr + n * sww)
        ds += p_w * (dp_w - delta)
        if MIX:  # one outer product with d mixed serves both reads
            p += p_w
    dv = p[:, None] * do[None, :]
    if WIDE:
        if not MIX:
            dv += p_w[:, None] * do_w[None, :]
    ds = ds * scale
    tl.store(dq_ptr + n * DK + ok, tl.sum(ds[:, None] * k, axis=0), mask=mk)
    # rows shared by several reads sum their gradients; dead slots add nothing
    tl.atomic_add(dk_ptr + row[:, None] * DK + ok[None, :], ds[:, None] * q[None, :], mask=km)
    tl.atomic_add(dv_ptr + row[:, None] * DV + ov[None, :], dv, mask=vm)


def _rows_launch(S: int, DK: int, DV: int) -> dict:
    BS, BK, BV = _blocks(S, DK, DV)
    return dict(BS=BS, BK=BK, BV=BV, num_warps=4 if BS <= 64 else 8)


def _weight(w: torch.Tensor | None, dummy: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(tensor, element stride) of a [N] weight read in place (a column of the selections), or a
    dummy with stride 0 where there is none."""
    return (dummy, 0) if w is None else (w, w.stride(0))


class _RowsRead(torch.autograd.Function):
    """read_rows (w_plain None): (r_plain, r_wide); read_mix: w_plain r_plain (+ w_wide r_wide)."""

    @staticmethod
    def forward(ctx, q, keys, values, index, mask, plain, scale, w_plain=None, w_wide=None):
        N, S = index.shape
        DK, DV = keys.shape[-1], values.shape[-1]
        wide, mix = plain < S, w_plain is not None
        dev = q.device
        rp = torch.empty(N, DV, device=dev, dtype=torch.float32)
        rw = torch.empty(N, DV if wide and not mix else 0, device=dev, dtype=torch.float32)
        lse = torch.empty(2, N, device=dev, dtype=torch.float32)
        if N:
            (wp, swp), (ww, sww) = _weight(w_plain, lse), _weight(w_wide, lse)
            _rows_fwd_kernel[(N,)](q, keys, values, index, mask, rp, rw, lse[0], lse[1], wp, ww, S, plain, DK, DV,
                                   swp, sww, float(scale), WIDE=wide, MIX=mix, **_rows_launch(S, DK, DV))
        ctx.save_for_backward(q, keys, values, index, mask, lse, w_plain, w_wide)
        ctx.plain, ctx.scale, ctx.wide, ctx.mix = plain, scale, wide, mix
        ctx.set_materialize_grads(False)
        return rp if mix else (rp, rw)

    @staticmethod
    def backward(ctx, drp, drw=None):
        q, keys, values, index, mask, lse, w_plain, w_wide = ctx.saved_tensors
        N, S = index.shape
        DK, DV = keys.shape[-1], values.shape[-1]
        dq = torch.empty_like(q)  # every read's row is written (the tables' rows are added to)
        dk, dv = torch.zeros_like(keys), torch.zeros_like(values)
        dwp = None if w_plain is None else torch.empty_like(w_plain, memory_format=torch.contiguous_format)
        dww = None if w_wide is None else torch.empty_like(w_wide, memory_format=torch.contiguous_format)
        if N == 0 or (drp is None and drw is None):
            dq, dwp, dww = (None if g is None else g.zero_() for g in (dq, dwp, dww))
            return dq, dk, dv, None, None, None, None, dwp, dww
        drp = torch.zeros(N, DV, device=q.device) if drp is None else drp.float().contiguous()
        drw = (torch.zeros(N, DV, device=q.device) if drw is None else drw.float().contiguous()) \
            if ctx.wide and not ctx.mix else drp
        (wp, swp), (ww, sww) = _weight(w_plain, lse), _weight(w_wide, lse)
        _rows_bwd_kernel[(N,)](q, keys, values, index, mask, lse[0], lse[1], drp, drw, wp, ww, dq, dk, dv,
                               lse if dwp is None else dwp, lse if dww is None else dww,
                               S, ctx.plain, DK, DV, swp, sww, float(ctx.scale), WIDE=ctx.wide, MIX=ctx.mix,
                               **_rows_launch(S, DK, DV))
        return dq, dk, dv, None, None, None, None, dwp, dww


def _rows_apply(q, keys, values, index, mask, plain, *weights):
    # a bool mask is read as bytes in place (no conversion kernel)
    live = (mask if mask.dtype == torch.bool else mask != 0).contiguous().view(torch.uint8)
    return _RowsRead.apply(q.float().contiguous(), keys.float().contiguous(), values.float().contiguous(),
                           index.contiguous(), live, plain, q.shape[-1] ** -0.5,
                           *(None if w is None else w.float() for w in weights))


def read_rows(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
              mask: torch.Tensor, plain: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Same contract as :func:`kernels.memory.naive.read_rows`: one program per read loads only its
    live rows, computes the plain and (plain < S) the wide read from one set of scores, and its
    backward adds each live row's gradient into the tables atomically."""
    S = index.shape[1]
    naive.check_plain(S, plain)
    rp, rw = _rows_apply(q, keys, values, index, mask, plain)
    return rp, (rw if plain < S else None)


def read_mix(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
             mask: torch.Tensor, plain: int, w_plain: torch.Tensor, w_wide: torch.Tensor | None) -> torch.Tensor:
    """Same contract as :func:`kernels.memory.naive.read_mix`, in :func:`read_rows`'s two kernels: the
    forward writes only the mix (and the log-sum-exps), the backward takes d mix and writes every
    read's d w_plain / d w_wide (<d mix, r>) itself. The weights are read in place (any stride)."""
    naive.check_mix(index.shape[1], plain, index.shape[0], w_plain, w_wide)
    return _rows_apply(q, keys, values, index, mask, plain, w_plain, w_wide)


# ---------------------------------------------------------------------------------------------
# Self-check, picked up by scripts/gpu_check.py (check_extra_twins)
# ---------------------------------------------------------------------------------------------
def gpu_selfcheck(device) -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """read_mix and read_rows against their references, outputs and every gradient, at the default
    model's sizes (dk 32, dv 64; SCAN reads 16 probes x 16 ways of which 12 plain, READ 12 probes,
    over tables of shared rows; a few reads on a CPU, where the interpreter runs them): a list of
    (name, actual, expected, RMS ratio tolerance). The weights are columns of a selection matrix,
    mostly exact zeros and ones, as the model passes them."""
    device = torch.device(device)
    N, R, S, plain = (3, 40, 16, 12) if device.type == "cpu" else (2048, 8192, 256, 192)
    dk, dv, n_ops, READ, SCAN = 32, 64, 10, 3, 5
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen).to(device).requires_grad_()

    rows = []
    for tag, s_n in (("SCAN", S), ("READ", plain)):
        q, k, v = rnd(N, dk), rnd(R, dk), rnd(R, dv)
        index = torch.randint(0, R, (N, s_n), generator=gen).to(device)
        live = (torch.rand(N, s_n, generator=gen) > 0.3).to(device)
        live[0] = False  # a read with nothing live
        sel = torch.rand(N, n_ops, generator=gen).round()
        sel[1:, SCAN] = torch.rand(N - 1, generator=gen)
        sel = sel.to(device).requires_grad_()
        w_wide = sel[:, SCAN] if tag == "SCAN" else None
        cot = torch.randn(N, dv, generator=gen).to(device)
        got, ref = [(y, torch.autograd.grad((y * cot).sum(), (q, k, v, sel)))
                    for y in (f(q, k, v, index, live, plain, sel[:, READ], w_wide) for f in (read_mix, naive.read_mix))]
        rows.append((f"read_mix {tag} mixed", got[0], ref[0], 1e-4))
        rows += [(f"read_mix {tag} d{name}", a, e, 1e-4) for name, a, e in zip(("q", "keys", "values"), got[1], ref[1])]
        rows += [(f"read_mix {tag} d{name}", got[1][3][:, c], ref[1][3][:, c], 1e-4)
                 for name, c in (("w_plain", READ), ("w_wide", SCAN)) if c == READ or w_wide is not None]
        if tag == "SCAN":  # read_rows shares the kernels (MIX off)
            got, ref = [(y, torch.autograd.grad(sum((r * c).sum() for r, c in zip(y, (cot, cot.flip(0)))), (q, k, v)))
                        for y in (f(q, k, v, index, live, plain) for f in (read_rows, naive.read_rows))]
            rows += [(f"read_rows {tag} r_{name}", a, e, 1e-4) for name, a, e in zip(("plain", "wide"), got[0], ref[0])]
            rows += [(f"read_rows {tag} d{name}", a, e, 1e-4) for name, a, e in zip(("q", "keys", "values"), got[1],
                                                                                      ref[1])]
    return rows
