"""One MOSAIC block's decode step in three Triton launches, plus the LM head.

Eager decoding launches ~250 small kernels per token; inside a CUDA graph each still
costs ~1 µs. These kernels do the same arithmetic in 3 launches per layer:

1. ``decode_in``: rmsnorm, the causal conv, and one GEMV over the concatenated
   [proj ; mlp_in] weights (every program recomputes the norm and the conv of its row,
   then writes one tile of outputs);
2. ``decode_mid``: the gated MLP's output projection and the register update with its
   readout (tiles of d_model);
3. ``decode_out``: one program per sequence: opcode, gates and commitment decisions,
   the memory (router, top-P probes, both reads straight from the table, write / clear /
   evict), the fusion, and every state update of the row (registers, conv buffer,
   prev_key, ledger, table), so no program reads state another program writes.

Shapes follow engine.vm.state (contiguous float32 tables, int64 ages, bool valid as uint8).
The reference is ``MosaicBlock.step_``; decisions use the same first-index tie breaks.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

# The opcode numbers the kernels test for (engine.vm.isa's order; FusedStep checks they agree):
# READ_MEM, WRITE_MEM, CLEAR_MEM, IDLE, GATE_UP, GATE_DOWN, SCAN, COMMIT, and 10 opcodes in all.
OPCODES = (1, 2, 3, 4, 5, 6, 7, 8)
N_OPCODES = 10


@triton.jit
def _decode_in_kernel(x_ptr, norm_ptr, convw_ptr, convbuf_ptr, w_ptr, b_ptr, out_ptr, u_ptr,
                      B, D, NP, NA, KC, eps,
                      BD: tl.constexpr, BN: tl.constexpr, ROWS: tl.constexpr):
    tile = tl.program_id(1)
    od = tl.arange(0, BD)
    md = od < D
    on = tile * BN + tl.arange(0, BN)
    mn = on < NA
    # one weight tile, reused for ROWS sequences
    w = tl.load(w_ptr + on[:, None] * D + od[None, :], mask=mn[:, None] & md[None, :], other=0.0)
    bias = tl.load(b_ptr + on, mask=mn, other=0.0)
    norm = tl.load(norm_ptr + od, mask=md, other=0.0)
    cw_last = tl.load(convw_ptr + od * KC + (KC - 1), mask=md, other=0.0)
    for r in range(ROWS):
        row = tl.program_id(0) * ROWS + r
        okd = md & (od * 0 + row < B)
        x = tl.load(x_ptr + row * D + od, mask=okd, other=0.0)
        u = x * (1.0 / tl.sqrt(tl.sum(x * x, axis=0) / D + eps)) * norm
        c = u * cw_last
        for j in range(KC - 1):
            c += tl.load(convbuf_ptr + (row * (KC - 1) + j) * D + od, mask=okd, other=0.0) * \
                tl.load(convw_ptr + od * KC + j, mask=md, other=0.0)
        tl.store(u_ptr + row * D + od, u, mask=okd & (od * 0 + tile == 0))
        acc = tl.where(on < NP, tl.sum(w * u[None, :], axis=1), tl.sum(w * c[None, :], axis=1))
        tl.store(out_ptr + row * NA + on, acc + bias, mask=mn & (on * 0 + row < B))


@triton.jit
def _decode_mid_kernel(a_ptr, regs_ptr, lam_ptr, mlpw_ptr, mlpb_ptr, row_w_ptr,
                       local_ptr, reg_ptr, snew_ptr,
                       B, D, HID, NA, NP, RI0, KR,
                       BN: tl.constexpr, BH: tl.constexpr, BKR: tl.constexpr, ROWS: tl.constexpr):
    tile = tl.program_id(1)
    on = tile * BN + tl.arange(0, BN)
    mn = on < D
    oh = tl.arange(0, BH)
    mh = oh < HID
    ok = tl.arange(0, BKR)
    mk = ok < KR
    w1 = tl.load(mlpw_ptr + on[:, None] * HID + oh[None, :], mask=mn[:, None] & mh[None, :], other=0.0)
    b1 = tl.load(mlpb_ptr + on, mask=mn, other=0.0)
    w2 = tl.load(row_w_ptr + on[:, None] * KR + ok[None, :], mask=mn[:, None] & mk[None, :], other=0.0)
    lam = tl.load(lam_ptr + ok, mask=mk, other=0.0)
    for r in range(ROWS):
        row = tl.program_id(0) * ROWS + r
        okh = mh & (oh * 0 + row < B)
        okk = mk & (ok * 0 + row < B)
        okn = mn & (on * 0 + row < B)
        g = tl.load(a_ptr + row * NA + NP + oh, mask=okh, other=0.0)  # mlp_in's outputs follow proj's
        up = tl.load(a_ptr + row * NA + NP + HID + oh, mask=okh, other=0.0)
        act = g * tl.sigmoid(g) * up
        tl.store(local_ptr + row * D + on, tl.sum(w1 * act[None, :], axis=1) + b1, mask=okn)
        s = tl.load(regs_ptr + row * KR + ok, mask=okk, other=0.0)
        ri = tl.load(a_ptr + row * NA + RI0 + ok, mask=okk, other=0.0)
        snew = s * lam + (1.0 - lam) * ri
        tl.store(snew_ptr + row * KR + ok, snew, mask=okk & (ok * 0 + tile == 0))
        tl.store(reg_ptr + row * D + on, tl.sum(w2 * snew[None, :], axis=1), mask=okn)


@triton.jit
def _first_argmax(x, idx, BIG: tl.constexpr):
    m = tl.max(x, axis=0)
    return tl.min(tl.where(x == m, idx, BIG), axis=0), m


@triton.jit
def _desc_key(x, idx, BIG: tl.constexpr):
    """An int64 that orders like (x descending, idx ascending): one max gives value and first index."""
    bits = x.to(tl.int32, bitcast=True)
    mono = tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)  # float order as signed int order
    return (mono.to(tl.int64) << 32) | (BIG - 1 - idx).to(tl.int64)


@triton.jit
def _decode_out_kernel(x_ptr, a_ptr, local_ptr, reg_ptr, snew_ptr, u_ptr, y_ptr,
                       regs_ptr, convbuf_ptr, prevkey_ptr, ledger_ptr, pos_ptr,
                       mkeys_ptr, mvals_ptr, mutil_ptr, mage_ptr, mvalid_ptr,
                       routw_ptr, routb_ptr, outw_ptr,
                       op_ptr, rb_ptr, ws_ptr, cs_ptr, ent_ptr, delta_ptr,
                       layer, L, D, KR, KC, NA, OQ, OKN, OV, OOP, OG, OU, OC, OF,
                       NB, W, DK, DV, P, PS, threshold, scale, qscale, cconf,
                       HAS_MEM: tl.constexpr, BD: tl.constexpr, BKR: tl.constexpr, BNB: tl.constexpr,
                       BS: tl.constexpr, BPS: tl.constexpr, BP: tl.constexpr, BW: tl.constexpr,
                       BK: tl.constexpr, BV: tl.constexpr, BKC: tl.constexpr):
    row = tl.program_id(0)
    arow = a_ptr + row * NA
    # --- decisions ---------------------------------------------------------------------------
    oo = tl.arange(0, 16)
    opl = tl.load(arow + OOP + oo, mask=oo < 10, other=float("-inf"))
    op, _m = _first_argmax(opl, oo, 16)
    # a CLEAR below the confidence cconf (its softmax probability) is a NOP
    e = tl.exp(opl - tl.max(opl, axis=0))
    p_clear = tl.sum(tl.where(oo == 3, e, 0.0), axis=0) / tl.sum(e, axis=0)
    op = tl.where((op == 3) & (p_clear < cconf), 0, op)
    gate = tl.load(arow + OG) > 0
    oc = tl.arange(0, 4)
    cl = tl.load(arow + OC + oc, mask=oc < 3, other=float("-inf"))
    carg, _m2 = _first_argmax(cl, oc, 4)
    delta = tl.where(op == 8, carg - 1, 0).to(tl.int64)
    g0 = tl.sigmoid(tl.load(arow + OF))
    g1 = tl.sigmoid(tl.load(arow + OF + 1))
    f_up = (op == 5).to(tl.float32)
    f_down = (op == 6).to(tl.float32)
    g0 = g0 + f_up * (1 - g0) - f_down * g0
    g1 = g1 + f_up * (1 - g1) - f_down * g1
    f_idle = (op == 4).to(tl.float32)
    od = tl.arange(0, BD)
    md = od < D
    upd = tl.load(local_ptr + row * D + od, mask=md, other=0.0) + g0 * tl.load(reg_ptr + row * D + od, mask=md, other=0.0)
    op_out = row * L + layer
    if HAS_MEM:
        ok = tl.arange(0, BK)
        mk = ok < DK
        ov = tl.arange(0, BV)
        mv = ov < DV
        q = tl.load(arow + OQ + ok, mask=mk, other=0.0)
        kn = tl.load(arow + OKN + ok, mask=mk, other=0.0)
        v = tl.load(arow + OV + ov, mask=mv, other=0.0)
        k = tl.load(prevkey_ptr + row * DK + ok, mask=mk, other=0.0)
        # router on the normalised query and write key (F.normalize: x / max(|x|, 1e-12))
        onb = tl.arange(0, BNB)
        mnb = onb < NB
        rw = tl.load(routw_ptr + onb[:, None] * DK + ok[None, :], mask=mnb[:, None] & mk[None, :], other=0.0)
        rbias = tl.load(routb_ptr + onb, mask=mnb, other=0.0)
        qn = q / tl.maximum(tl.sqrt(tl.sum(q * q, axis=0)), 1e-12)
        knn = k / tl.maximum(tl.sqrt(tl.sum(k * k, axis=0)), 1e-12)
        # cosine reads (qscale > 0): the query at unit length times qscale, and the next key kept
        # at unit length (the write key k came in normalised a step ago)
        cosine = qscale > 0
        q = tl.where(cosine, qn * qscale, q)
        kn = tl.where(cosine, kn / tl.maximum(tl.sqrt(tl.sum(kn * kn, axis=0)), 1e-12), kn)
        rl = tl.where(mnb, tl.sum(rw * qn[None, :], axis=1) + rbias, float("-inf"))
        wl = tl.where(mnb, tl.sum(rw * knn[None, :], axis=1) + rbias, float("-inf"))
        z = rl - tl.max(rl, axis=0)
        ez = tl.where(mnb, tl.exp(z), 0.0)
        lp = z - tl.log(tl.sum(ez, axis=0))
        ent = -tl.sum(tl.where(mnb, tl.exp(lp) * lp, 0.0), axis=0)
        # top-PS probes, best first (first index on ties): PS maxima of one packed int64 key
        ops_ = tl.arange(0, BPS)
        probes = tl.zeros([BPS], dtype=tl.int32)
        # (only a SCAN needs more than the plain read's P: the scan read is zeroed otherwise)
        key = tl.where(mnb, _desc_key(rl, onb, BNB), -9223372036854775807)
        n_probes = tl.where(op == 7, PS, P)
        for i in range(PS):
            if i < n_probes:
                kmax = tl.max(key, axis=0)
                best = (BNB - 1 - (kmax & 0xFFFFFFFF)).to(tl.int32)
                probes = tl.where(ops_ == i, best, probes)
                key = tl.where(onb == best, -9223372036854775807, key)
        orb = tl.arange(0, BP)
        tl.store(rb_ptr + op_out * P + orb, tl.sum(tl.where(orb[:, None] == ops_[None, :], probes[None, :], 0), axis=1).to(tl.int64),
                 mask=orb < P)
        # both reads straight from the table; candidate s lives in probe s // W, way s % W
        s = tl.arange(0, BS)
        ms = s < PS * W
        probe_s = tl.sum(tl.where((s // W)[:, None] == ops_[None, :], probes[None, :], 0), axis=1)
        slot = (row * NB + probe_s) * W + s % W
        ms = ms & (s < n_probes * W)
        live = (tl.load(mvalid_ptr + slot, mask=ms, other=0) != 0) & ms
        ck = tl.load(mkeys_ptr + slot[:, None] * DK + ok[None, :], mask=live[:, None] & mk[None, :], other=0.0)
        cv = tl.load(mvals_ptr + slot[:, None] * DV + ov[None, :], mask=live[:, None] & mv[None, :], other=0.0)
        logits = tl.sum(ck * q[None, :], axis=1) * scale
        l_s = tl.where(live, logits, float("-inf"))
        mx = tl.max(l_s, axis=0)
        mx = tl.where(mx > float("-inf"), mx, 0.0)
        e = tl.where(live, tl.exp(l_s - mx), 0.0)
        den = tl.sum(e, axis=0)
        r_s = tl.sum(e[:, None] * cv, axis=0) / tl.where(den > 0, den, 1.0)
        live_p = live & (s < P * W)
        l_p = tl.where(live_p, logits, float("-inf"))
        mx = tl.max(l_p, axis=0)
        mx = tl.where(mx > float("-inf"), mx, 0.0)
        e = tl.where(live_p, tl.exp(l_p - mx), 0.0)
        den = tl.sum(e, axis=0)
        r_p = tl.sum(e[:, None] * cv, axis=0) / tl.where(den > 0, den, 1.0)
        mix = (op == 1).to(tl.float32) * r_p + (op == 7).to(tl.float32) * r_s
        ow = tl.load(outw_ptr + od[:, None] * DV + ov[None, :], mask=md[:, None] & mv[None, :], other=0.0)
        mem = tl.sum(ow * mix[None, :], axis=1)
        upd = upd + g1 * mem
        # write / clear / evict in the write bucket
        wb, _m4 = _first_argmax(wl, onb, BNB)
        wb = wb.to(tl.int64)
        oww = tl.arange(0, BW)
        mw = oww < W
        slot0 = (row * NB + wb) * W
        valid = (tl.load(mvalid_ptr + slot0 + oww, mask=mw, other=0) != 0) & mw
        bk = tl.load(mkeys_ptr + (slot0 + oww)[:, None] * DK + ok[None, :], mask=mw[:, None] & mk[None, :], other=0.0)
        bn = tl.maximum(tl.sqrt(tl.sum(bk * bk, axis=1)), 1e-12)
        cos = tl.where(valid, tl.sum((bk / bn[:, None]) * knn[None, :], axis=1), float("-inf"))
        best_way, best_cos = _first_argmax(cos, oww, BW)
        empty = (~valid) & mw
        any_empty = tl.sum(empty.to(tl.int32), axis=0) > 0
        first_empty = tl.min(tl.where(empty, oww, BW), axis=0)
        butil = tl.load(mutil_ptr + slot0 + oww, mask=mw, other=float("inf"))
        bage = tl.load(mage_ptr + slot0 + oww, mask=mw, other=0)
        lowest = (butil == tl.min(butil, axis=0)) & mw
        age_l = tl.where(lowest, bage, 9223372036854775807)
        evict = tl.min(tl.where(lowest & (age_l == tl.min(age_l, axis=0)), oww, BW), axis=0)
        way = tl.where(best_cos >= threshold, best_way, tl.where(any_empty, first_empty, evict))
        do_write = (op == 2) & gate
        do_clear = (op == 3) & (tl.sum(valid.to(tl.int32), axis=0) > 0)
        way = tl.where(do_clear, best_way, way)
        touched = do_write | do_clear
        slot = slot0 + way
        old_k = tl.load(mkeys_ptr + slot * DK + ok, mask=mk, other=0.0)
        old_v = tl.load(mvals_ptr + slot * DV + ov, mask=mv, other=0.0)
        old_u = tl.load(mutil_ptr + slot)
        old_a = tl.load(mage_ptr + slot)
        old_valid = tl.load(mvalid_ptr + slot)
        util = tl.sigmoid(tl.load(arow + OU))
        pos = tl.load(pos_ptr + row)
        tl.debug_barrier()
        tl.store(mkeys_ptr + slot * DK + ok, tl.where(touched, tl.where(do_write, k, 0.0), old_k), mask=mk)
        tl.store(mvals_ptr + slot * DV + ov, tl.where(touched, tl.where(do_write, v, 0.0), old_v), mask=mv)
        tl.store(mutil_ptr + slot, tl.where(touched, tl.where(do_write, util, 0.0), old_u))
        tl.store(mage_ptr + slot, tl.where(touched, tl.where(do_write, pos, 0), old_a))
        tl.store(mvalid_ptr + slot, tl.where(touched, do_write.to(tl.uint8), old_valid))
        tl.store(prevkey_ptr + row * DK + ok, kn, mask=mk)
        way64 = way.to(tl.int64)
        tl.store(ws_ptr + op_out * 2, tl.where(do_write, wb, -1))
        tl.store(ws_ptr + op_out * 2 + 1, tl.where(do_write, way64, -1))
        tl.store(cs_ptr + op_out * 2, tl.where(do_clear, wb, -1))
        tl.store(cs_ptr + op_out * 2 + 1, tl.where(do_clear, way64, -1))
        tl.store(ent_ptr + op_out, ent)
    else:
        orb = tl.arange(0, BP)
        tl.store(rb_ptr + op_out * P + orb, tl.full([BP], -1, tl.int64), mask=orb < P)
        tl.store(ws_ptr + op_out * 2 + tl.arange(0, 2), tl.full([2], -1, tl.int64))
        tl.store(cs_ptr + op_out * 2 + tl.arange(0, 2), tl.full([2], -1, tl.int64))
        tl.store(ent_ptr + op_out, 0.0)
    # --- fusion and the row's own state -------------------------------------------------------
    x = tl.load(x_ptr + row * D + od, mask=md, other=0.0)
    tl.store(y_ptr + row * D + od, x + (1 - f_idle) * upd, mask=md)
    okr = tl.arange(0, BKR)
    tl.store(regs_ptr + row * KR + okr, tl.load(snew_ptr + row * KR + okr, mask=okr < KR, other=0.0), mask=okr < KR)
    # conv buffer [KC-1, D]: shift one row up, the newest normalised input last
    oc2 = tl.arange(0, BKC)
    mc = oc2 < KC - 1
    nxt = tl.load(convbuf_ptr + (row * (KC - 1) + oc2[:, None] + 1) * D + od[None, :],
                  mask=(oc2[:, None] + 1 < KC - 1) & md[None, :], other=0.0)
    u = tl.load(u_ptr + row * D + od, mask=md, other=0.0)
    new_conv = tl.where(oc2[:, None] == KC - 2, u[None, :], nxt)
    tl.debug_barrier()
    tl.store(convbuf_ptr + (row * (KC - 1) + oc2[:, None]) * D + od[None, :], new_conv, mask=mc[:, None] & md[None, :])
    tl.store(ledger_ptr + row, tl.load(ledger_ptr + row) + delta)
    tl.store(op_ptr + op_out, op.to(tl.int64))
    tl.store(delta_ptr + op_out, delta)


@triton.jit
def _decode_head_kernel(x_ptr, norm_ptr, w_ptr, out_ptr, B, D, V, eps,
                        BD: tl.constexpr, BN: tl.constexpr, ROWS: tl.constexpr):
    on = tl.program_id(1) * BN + tl.arange(0, BN)
    od = tl.arange(0, BD)
    md, mn = od < D, on < V
    w = tl.load(w_ptr + on[:, None] * D + od[None, :], mask=mn[:, None] & md[None, :], other=0.0)
    norm = tl.load(norm_ptr + od, mask=md, other=0.0)
    for r in range(ROWS):
        row = tl.program_id(0) * ROWS + r
        x = tl.load(x_ptr + row * D + od, mask=md & (od * 0 + row < B), other=0.0)
        u = x * (1.0 / tl.sqrt(tl.sum(x * x, axis=0) / D + eps)) * norm
        tl.store(out_ptr + row * V + on, tl.sum(w * u[None, :], axis=1), mask=mn & (on * 0 + row < B))


p2 = triton.next_power_of_2


def _rows(B: int) -> int:
    """Sequences per program in the GEMV kernels: each weight tile is read once per this many."""
    return 1 if B < 8 else 8


def decode_in(x, norm, conv_w, conv_buf, w_cat, b_cat, n_proj, eps, out, u_out, block_n: int = 32):
    """x [B,d] -> out [B, NA] = [proj(u) ; mlp_in(conv(u))], u_out [B,d] = rmsnorm(x).
    conv_w [d, k] (the block's conv[:, 0, :]), conv_buf [B, k-1, d], w_cat [NA, d], b_cat [NA]."""
    B, D = x.shape
    NA = w_cat.shape[0]
    rows = _rows(B)
    _decode_in_kernel[(triton.cdiv(B, rows), triton.cdiv(NA, block_n))](
        x, norm, conv_w, conv_buf, w_cat, b_cat, out, u_out, B, D, n_proj, NA, conv_w.shape[1], float(eps),
        BD=p2(D), BN=block_n, ROWS=rows)


def decode_mid(a, regs, lam, mlp_w, mlp_b, readout_w, n_proj, ri0, local, reg, snew, block_n: int = 8):
    """From a = decode_in's out: local [B,d] = mlp_out(silu(g) * up); snew [B,KR] = lam s + (1-lam) ri;
    reg [B,d] = readout(snew). regs [B,KR] is only read (decode_out commits snew)."""
    B, NA = a.shape
    D, HID = mlp_w.shape
    KR = readout_w.shape[1]
    rows = _rows(B)
    _decode_mid_kernel[(triton.cdiv(B, rows), triton.cdiv(D, block_n))](
        a, regs, lam, mlp_w, mlp_b, readout_w, local, reg, snew, B, D, HID, NA, n_proj, ri0, KR,
        BN=block_n, BH=p2(HID), BKR=p2(KR), ROWS=rows)


def decode_out(layer, x, a, local, reg, snew, u, y, st, pos, mem, offsets, outs, clear_confidence: float = 0.0):
    """Decisions, memory, fusion and the state commit of one layer; see the module docstring.

    st: the LayerState (mutated in place); mem: None or a dict of router_w [NB,dk], router_b [NB],
    out_w [d,dv], NB, W, P, PS, threshold, query_scale (None: dot-product reads; s: cosine reads,
    the query normalised and scaled by s, the next key normalised); offsets: (q, kn, v, op, gate, util, commit, fusion)
    column offsets in ``a``; outs: (opcodes [B,L], read_buckets [B,L,P], write_slot [B,L,2],
    cleared_slot [B,L,2], entropy [B,L], delta [B,L]) written at ``layer``; clear_confidence: a CLEAR
    whose softmax probability is below it becomes a NOP.
    """
    B, D = x.shape
    NA = a.shape[1]
    KR = snew.shape[1]
    KC = st.conv.shape[1] + 1
    op_o, rb_o, ws_o, cs_o, ent_o, delta_o = outs
    L, P = rb_o.shape[1], rb_o.shape[2]
    has_mem = mem is not None
    dummy = x
    if has_mem:
        NB, Wy, DK, DV, PS = mem["NB"], mem["W"], st.mem_keys.shape[-1], st.mem_values.shape[-1], mem["PS"]
        args = (st.mem_keys, st.mem_values, st.mem_utility, st.mem_age, st.mem_valid.view(torch.uint8),
                mem["router_w"], mem["router_b"], mem["out_w"])
        thr, scale = float(mem["threshold"]), float(DK ** -0.5)
        qscale = float(mem.get("query_scale") or 0.0)
    else:
        NB, Wy, DK, DV, PS = 1, 1, 1, 1, 1
        args = (dummy,) * 8
        thr, scale, qscale = 0.0, 1.0, 0.0
    big = has_mem and PS * Wy > 64
    _decode_out_kernel[(B,)](x, a, local, reg, snew, u, y,
                             st.registers, st.conv, st.prev_key if has_mem else dummy, st.ledger, pos, *args,
                             op_o, rb_o, ws_o, cs_o, ent_o, delta_o,
                             layer, L, D, KR, KC, NA, *offsets,
                             NB, Wy, DK, DV, P, PS, thr, scale, qscale, float(clear_confidence),
                             HAS_MEM=has_mem, BD=p2(D), BKR=p2(KR), BNB=p2(NB), BS=p2(PS * Wy), BPS=p2(PS),
                             BP=p2(P), BW=p2(Wy), BK=p2(DK), BV=p2(DV), BKC=p2(max(KC - 1, 1)),
                             num_warps=8 if big else 4)


def decode_head(x, norm, head_w, eps, out, block_n: int = 32):
    """logits [B, V] = head_w @ rmsnorm(x) * norm."""
    B, D = x.shape
    V = head_w.shape[0]
    rows = _rows(B)
    _decode_head_kernel[(triton.cdiv(B, rows), triton.cdiv(V, block_n))](
        x, norm, head_w, out, B, D, V, float(eps), BD=p2(D), BN=block_n, ROWS=rows)
