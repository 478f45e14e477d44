"""Triton twin of the scan: h_t = a_t * h_{t-1} + b_t over time (dim 1).

One program owns a block of channels of one sequence and walks time with the state in
registers (the fused-recurrent layout of Mamba and fla): one read of a and b, one write
of h, nothing else. The backward walks time in reverse carrying g_t = dL/dh_t +
a_{t+1} g_{t+1}; then db_t = g_t, da_t = g_t h_{t-1}, dh0 = a_0 g_0. Only products of
decays appear (no a^-t factors), so slow registers never overflow.

``a`` may be broadcast over batch and/or time (the registers' fixed decays are [1, 1, N]):
it is read through strides of 0 rather than expanded, and its gradient is summed in the
kernel over time when a is constant in time.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _scan_fwd_kernel(a_ptr, b_ptr, h0_ptr, out_ptr, T, N, sab, sat,
                     HAS_H0: tl.constexpr, BLOCK: tl.constexpr):
    bi = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    if HAS_H0:
        h = tl.load(h0_ptr + bi * N + offs, mask=m, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([BLOCK], dtype=tl.float32)
    base = bi * T * N
    for t in range(T):
        a = tl.load(a_ptr + bi * sab + t * sat + offs, mask=m, other=0.0).to(tl.float32)
        x = tl.load(b_ptr + base + t * N + offs, mask=m, other=0.0).to(tl.float32)
        h = a * h + x
        tl.store(out_ptr + base + t * N + offs, h, mask=m)


@triton.jit
def _scan_bwd_kernel(a_ptr, h0_ptr, out_ptr, gout_ptr, db_ptr, da_ptr, dh0_ptr,
                     T, N, sab, sat,
                     HAS_H0: tl.constexpr, A_TIME_CONST: tl.constexpr, BLOCK: tl.constexpr):
    bi = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    base = bi * T * N
    g = tl.zeros([BLOCK], dtype=tl.float32)
    a_next = tl.zeros([BLOCK], dtype=tl.float32)
    da_sum = tl.zeros([BLOCK], dtype=tl.float32)
    if HAS_H0:
        h0 = tl.load(h0_ptr + bi * N + offs, mask=m, other=0.0).to(tl.float32)
    else:
        h0 = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(T):
        t = T - 1 - i
        g = g * a_next + tl.load(gout_ptr + base + t * N + offs, mask=m, other=0.0).to(tl.float32)
        tl.store(db_ptr + base + t * N + offs, g, mask=m)
        # h_{t-1}, read at a clamped index and replaced by h0 at t == 0
        prev = tl.load(out_ptr + base + tl.maximum(t - 1, 0) * N + offs, mask=m, other=0.0).to(tl.float32)
        prev = tl.where(t > 0, prev, h0)
        if A_TIME_CONST:
            da_sum += g * prev
        else:
            tl.store(da_ptr + base + t * N + offs, g * prev, mask=m)
        a_next = tl.load(a_ptr + bi * sab + t * sat + offs, mask=m, other=0.0).to(tl.float32)
    if A_TIME_CONST:
        tl.store(da_ptr + bi * N + offs, da_sum, mask=m)
    if HAS_H0:
        tl.store(dh0_ptr + bi * N + offs, a_next * g, mask=m)


def _block(N: int) -> int:
    return min(128, triton.next_power_of_2(max(N, 1)))


def _a_strides(a: torch.Tensor, B: int, T: int, N: int) -> tuple[torch.Tensor, int, int]:
    """a as a tensor with unit channel stride and (batch, time) strides, 0 where broadcast."""
    a = a.float()
    while a.dim() < 3:
        a = a.unsqueeze(0)
    if a.shape[-1] != N or a.stride(-1) != 1:
        a = a.expand(*a.shape[:-1], N).contiguous()
    if a.shape[1] == T and a.stride(0) != (T * N if a.shape[0] == B else 0):
        a = a.contiguous()
    sab = 0 if a.shape[0] == 1 else a.stride(0)
    sat = 0 if a.shape[1] == 1 else a.stride(1)
    if a.shape[1] == T and T > 1 and a.stride(1) != N:
        a = a.contiguous()
        sab = 0 if a.shape[0] == 1 else a.stride(0)
        sat = a.stride(1)
    return a, sab, sat


def scan_fwd(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None):
    """Forward: returns (h [B,T,N] float32, a as read, its batch and time strides)."""
    B, T, N = b.shape
    a_r, sab, sat = _a_strides(a, B, T, N)
    out = torch.empty(B, T, N, device=b.device, dtype=torch.float32)
    if out.numel():
        BLOCK = _block(N)
        h0_arg = h0 if h0 is not None else out
        _scan_fwd_kernel[(B, triton.cdiv(N, BLOCK))](a_r, b, h0_arg, out, T, N, sab, sat,
                                                     HAS_H0=h0 is not None, BLOCK=BLOCK)
    return out, a_r, sab, sat


def scan_bwd(a_r, sab, sat, h0, out, gout):
    """Backward: (da [B,T,N] or [B,1,N] when a is constant in time, db [B,T,N], dh0 [B,N] or None)."""
    B, T, N = out.shape
    time_const = sat == 0
    db = torch.empty(B, T, N, device=out.device, dtype=torch.float32)
    da = torch.empty(B, 1 if time_const else T, N, device=out.device, dtype=torch.float32)
    dh0 = torch.empty(B, N, device=out.device, dtype=torch.float32) if h0 is not None else None
    if T == 0 or B == 0 or N == 0:
        return da.zero_(), db, (dh0.zero_() if dh0 is not None else None)
    BLOCK = _block(N)
    _scan_bwd_kernel[(B, triton.cdiv(N, BLOCK))](a_r, h0 if h0 is not None else out, out,
                                                 gout.float().contiguous(), db, da,
                                                 dh0 if dh0 is not None else db, T, N, sab, sat,
                                                 HAS_H0=h0 is not None, A_TIME_CONST=time_const,
                                                 BLOCK=BLOCK)
    return da, db, dh0


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0):
        out, a_r, sab, sat = scan_fwd(a, b, h0)
        ctx.save_for_backward(a_r, h0, out)
        ctx.strides = (sab, sat)
        ctx.a_shape = a.shape
        return out

    @staticmethod
    def backward(ctx, gout):
        a_r, h0, out = ctx.saved_tensors
        da, db, dh0 = scan_bwd(a_r, *ctx.strides, h0, out, gout)
        if ctx.needs_input_grad[0]:
            shape = ctx.a_shape
            while da.dim() > len(shape):
                da = da.sum(0)
            da = da.sum_to_size(shape)
        else:
            da = None
        return da, db, dh0


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` over dim 1, differentiable in a, b and h0.

    a: [B, T, N] or broadcastable to it (e.g. [1, 1, N]); b: [B, T, N]; h0: [B, N] or None
    (zeros). Returns h: [B, T, N] float32. Same contract as :func:`kernels.scan.naive.linear_scan`.
    """
    if b.dim() != 3:
        raise ValueError(f"linear_scan: b must be [B, T, N], got {tuple(b.shape)}")
    b32 = b.float().contiguous()
    h032 = h0.float().contiguous() if h0 is not None else None
    return _LinearScan.apply(a.float(), b32, h032)
