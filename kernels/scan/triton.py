"""Triton twin of the scan: h_t = a_t * h_{t-1} + b_t over time (dim 1).

Time is cut into chunks of about sqrt(T) steps. One program owns a block of channels of one
chunk of one sequence and walks it with the state in registers from a zero start, keeping the
chunk's last state and the product of its decays; a second kernel carries the state across the
chunks (one short walk per row); a third adds to every step the state that entered its chunk,
decayed to that step. So the longest walk is about 3 sqrt(T) steps instead of T, and a batch
of 16 gives hundreds of programs instead of a few dozen. The backward does the same in reverse
for g_t = dL/dh_t + a_{t+1} g_{t+1}; then db_t = g_t, da_t = g_t h_{t-1}, dh0 = a_0 g_0. Only
products of decays appear (no a^-t factors), so slow registers never overflow.

``a`` may be broadcast over batch and/or time (the registers' fixed decays are [1, 1, N]):
it is read through strides of 0 rather than expanded, and its gradient is summed in the
kernel over time when a is constant in time.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _fwd_local_kernel(a_ptr, b_ptr, out_ptr, end_ptr, prod_ptr, T, N, L, NC, sab, sat, sbb, sbt,
                      SCALE: tl.constexpr, BLOCK: tl.constexpr):
    """Chunk c of row bi from a zero state: h (local) to out, its last h and the product of its a.
    SCALE: the input is (1 - a_t) b_t (a leaky integrator's)."""
    bi, c = tl.program_id(0).to(tl.int64), tl.program_id(2).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    h = tl.zeros([BLOCK], dtype=tl.float32)
    p = tl.full([BLOCK], 1.0, dtype=tl.float32)
    for i in range(L):
        t = c * L + i
        mt = m & (offs * 0 + t < T)   # a block compare (Triton's interpreter masks with blocks only)
        a = tl.load(a_ptr + bi * sab + t * sat + offs, mask=mt, other=1.0).to(tl.float32)
        x = tl.load(b_ptr + bi * sbb + t * sbt + offs, mask=mt, other=0.0).to(tl.float32)
        if SCALE:
            x = (1 - a) * x
        h = a * h + x
        p = p * a
        tl.store(out_ptr + (bi * T + t) * N + offs, h, mask=mt)
    tl.store(end_ptr + (bi * NC + c) * N + offs, h, mask=m)
    tl.store(prod_ptr + (bi * NC + c) * N + offs, p, mask=m)


@triton.jit
def _carry_kernel(init_ptr, end_ptr, prod_ptr, carry_ptr, N, NC,
                  HAS_INIT: tl.constexpr, REVERSE: tl.constexpr, BLOCK: tl.constexpr):
    """The state entering each chunk: carry_c = prod_{c'} * carry_{c'} + end_{c'} over the chunks
    before c (after c, walking back, when REVERSE), starting from init (or zeros)."""
    bi = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    if HAS_INIT:
        h = tl.load(init_ptr + bi * N + offs, mask=m, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(NC):
        c = NC - 1 - i if REVERSE else i
        at = (bi * NC + c) * N + offs
        tl.store(carry_ptr + at, h, mask=m)
        h = tl.load(prod_ptr + at, mask=m, other=0.0) * h + tl.load(end_ptr + at, mask=m, other=0.0)


@triton.jit
def _fwd_fix_kernel(a_ptr, out_ptr, carry_ptr, T, N, L, NC, sab, sat, BLOCK: tl.constexpr):
    """out_t += (a_{c0} ... a_t) * carry_c: the state that entered chunk c, decayed to t."""
    bi, c = tl.program_id(0).to(tl.int64), tl.program_id(2).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    carry = tl.load(carry_ptr + (bi * NC + c) * N + offs, mask=m, other=0.0)
    p = tl.full([BLOCK], 1.0, dtype=tl.float32)
    for i in range(L):
        t = c * L + i
        mt = m & (offs * 0 + t < T)
        p = p * tl.load(a_ptr + bi * sab + t * sat + offs, mask=mt, other=1.0).to(tl.float32)
        at = out_ptr + (bi * T + t) * N + offs
        tl.store(at, tl.load(at, mask=mt, other=0.0) + p * carry, mask=mt)


@triton.jit
def _bwd_local_kernel(a_ptr, gout_ptr, g_ptr, start_ptr, prod_ptr, T, N, L, NC, sab, sat, BLOCK: tl.constexpr):
    """Chunk c walked back from a zero cotangent after it: g_t = gout_t + a_{t+1} g_{t+1} (local) to
    g, its value at the chunk's first step and the product a_{c0+1} ... a_{c1} that carries into it."""
    bi, c = tl.program_id(0).to(tl.int64), tl.program_id(2).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    g = tl.zeros([BLOCK], dtype=tl.float32)
    p = tl.full([BLOCK], 1.0, dtype=tl.float32)
    for i in range(L):
        t = c * L + L - 1 - i
        mt = m & (offs * 0 + t < T)
        # a_{t+1}; past the end nothing flows back (0), and padding past T stays the identity
        a_next = tl.load(a_ptr + bi * sab + (t + 1) * sat + offs, mask=mt & (offs * 0 + t + 1 < T),
                         other=0.0).to(tl.float32)
        a_next = tl.where(t < T, a_next, 1.0)
        g = g * a_next + tl.load(gout_ptr + (bi * T + t) * N + offs, mask=mt, other=0.0).to(tl.float32)
        p = p * a_next
        tl.store(g_ptr + (bi * T + t) * N + offs, g, mask=mt)
    tl.store(start_ptr + (bi * NC + c) * N + offs, g, mask=m)
    tl.store(prod_ptr + (bi * NC + c) * N + offs, p, mask=m)


@triton.jit
def _bwd_fix_kernel(a_ptr, h0_ptr, out_ptr, carry_ptr, g_ptr, da_ptr, dh0_ptr, b_ptr, T, N, L, NC, sab, sat,
                    sbb, sbt, HAS_H0: tl.constexpr, A_TIME_CONST: tl.constexpr, SCALE: tl.constexpr, BLOCK: tl.constexpr):
    """g_t += (a_{t+1} ... a_{c1}) * carry_c; then db_t = g_t (in place), da_t = g_t h_{t-1} (per
    chunk summed over its steps when a is constant in time) and dh0 = a_0 g_0. SCALE (the input
    was (1 - a_t) b_t): db_t = (1 - a_t) g_t and da_t gains - g_t b_t."""
    bi, c = tl.program_id(0).to(tl.int64), tl.program_id(2).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    carry = tl.load(carry_ptr + (bi * NC + c) * N + offs, mask=m, other=0.0)
    if HAS_H0:
        h0 = tl.load(h0_ptr + bi * N + offs, mask=m, other=0.0).to(tl.float32)
    else:
        h0 = tl.zeros([BLOCK], dtype=tl.float32)
    p = tl.full([BLOCK], 1.0, dtype=tl.float32)
    da_sum = tl.zeros([BLOCK], dtype=tl.float32)
    a_t = tl.zeros([BLOCK], dtype=tl.float32)
    g = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(L):
        t = c * L + L - 1 - i
        mt = m & (offs * 0 + t < T)
        a_next = tl.load(a_ptr + bi * sab + (t + 1) * sat + offs, mask=mt & (offs * 0 + t + 1 < T),
                         other=0.0).to(tl.float32)
        p = p * tl.where(t < T, a_next, 1.0)
        at = g_ptr + (bi * T + t) * N + offs
        g = tl.load(at, mask=mt, other=0.0) + p * carry
        a_t = tl.load(a_ptr + bi * sab + t * sat + offs, mask=mt, other=0.0).to(tl.float32)
        # h_{t-1}, read at a clamped index and replaced by h0 at t == 0
        prev = tl.load(out_ptr + (bi * T + tl.maximum(t - 1, 0)) * N + offs, mask=mt, other=0.0)
        prev = tl.where(t > 0, prev, h0)
        da_t = g * prev
        if SCALE:
            tl.store(at, (1 - a_t) * g, mask=mt)
            da_t -= g * tl.load(b_ptr + bi * sbb + t * sbt + offs, mask=mt, other=0.0).to(tl.float32)
        else:
            tl.store(at, g, mask=mt)
        if A_TIME_CONST:
            da_sum += tl.where(mt, da_t, 0.0)
        else:
            tl.store(da_ptr + (bi * T + t) * N + offs, da_t, mask=mt)
    if A_TIME_CONST:
        tl.store(da_ptr + (bi * NC + c) * N + offs, da_sum, mask=m)
    if HAS_H0:
        if c == 0:
            tl.store(dh0_ptr + bi * N + offs, a_t * g, mask=m)


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


def _chunks(T: int, chunk: int | None) -> tuple[int, int]:
    """(steps per chunk, chunks): about sqrt(T) steps, so that the two walks inside a chunk and
    the one across chunks are all short."""
    L = chunk or max(16, triton.next_power_of_2(int(T ** 0.5)))
    L = max(1, min(L, T))
    return L, triton.cdiv(T, L)


def scan_fwd(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, chunk: int | None = None,
             scale: bool = False):
    """Forward (``scale``: inputs (1 - a) b): returns (h [B,T,N] float32, a as read, its batch and
    time strides)."""
    B, T, N = b.shape
    a_r, sab, sat = _a_strides(a, B, T, N)
    out = torch.empty(B, T, N, device=b.device, dtype=torch.float32)
    if out.numel():
        BLOCK = _block(N)
        L, NC = _chunks(T, chunk)
        end = torch.empty(B, NC, N, device=b.device, dtype=torch.float32)
        prod, carry = torch.empty_like(end), torch.empty_like(end)
        grid = (B, triton.cdiv(N, BLOCK), NC)
        _fwd_local_kernel[grid](a_r, b, out, end, prod, T, N, L, NC, sab, sat, b.stride(0), b.stride(1),
                                SCALE=scale, BLOCK=BLOCK)
        _carry_kernel[grid[:2]](h0 if h0 is not None else end, end, prod, carry, N, NC,
                                HAS_INIT=h0 is not None, REVERSE=False, BLOCK=BLOCK)
        _fwd_fix_kernel[grid](a_r, out, carry, T, N, L, NC, sab, sat, BLOCK=BLOCK)
    return out, a_r, sab, sat


def scan_bwd(a_r, sab, sat, h0, out, gout, chunk: int | None = None, b: torch.Tensor | None = None):
    """Backward: (da [B,T,N] or [B,1,N] when a is constant in time, db [B,T,N], dh0 [B,N] or None).
    ``b``: the raw inputs of a forward with ``scale`` (None: unscaled)."""
    B, T, N = out.shape
    time_const = sat == 0
    db = torch.empty(B, T, N, device=out.device, dtype=torch.float32)
    dh0 = torch.empty(B, N, device=out.device, dtype=torch.float32) if h0 is not None else None
    if T == 0 or B == 0 or N == 0:
        da = torch.zeros(B, 1 if time_const else T, N, device=out.device, dtype=torch.float32)
        return da, db, (dh0.zero_() if dh0 is not None else None)
    BLOCK = _block(N)
    L, NC = _chunks(T, chunk)
    start = torch.empty(B, NC, N, device=out.device, dtype=torch.float32)
    prod, carry = torch.empty_like(start), torch.empty_like(start)
    da = torch.empty(B, NC if time_const else T, N, device=out.device, dtype=torch.float32)
    grid = (B, triton.cdiv(N, BLOCK), NC)
    _bwd_local_kernel[grid](a_r, gout.float().contiguous(), db, start, prod, T, N, L, NC, sab, sat, BLOCK=BLOCK)
    _carry_kernel[grid[:2]](start, start, prod, carry, N, NC, HAS_INIT=False, REVERSE=True, BLOCK=BLOCK)
    _bwd_fix_kernel[grid](a_r, h0 if h0 is not None else out, out, carry, db, da,
                          dh0 if dh0 is not None else db, b if b is not None else out, T, N, L, NC, sab, sat,
                          *((b.stride(0), b.stride(1)) if b is not None else (0, 0)), HAS_H0=h0 is not None, A_TIME_CONST=time_const, SCALE=b is not None, BLOCK=BLOCK)
    if time_const:
        da = da.sum(1, keepdim=True)
    return da, db, dh0


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0, chunk, scale):
        out, a_r, sab, sat = scan_fwd(a, b, h0, chunk, scale)
        ctx.save_for_backward(a_r, h0, out, b if scale else None)
        ctx.strides, ctx.chunk = (sab, sat), chunk
        ctx.a_shape = a.shape
        return out

    @staticmethod
    def backward(ctx, gout):
        a_r, h0, out, b = ctx.saved_tensors
        da, db, dh0 = scan_bwd(a_r, *ctx.strides, h0, out, gout, ctx.chunk, b)
        if ctx.needs_input_grad[0]:
            shape = ctx.a_shape
            while da.dim() > len(shape):
                da = da.sum(0)
            da = da.sum_to_size(shape)
        else:
            da = None
        return da, db, dh0, None, None


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None,
                scale_input: bool = False, chunk: int | None = None) -> torch.Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` (``scale_input``: ``+ (1 - a_t) * b_t``) over dim 1,
    differentiable in a, b and h0.

    a: [B, T, N] or broadcastable to it (e.g. [1, 1, N]); b: [B, T, N]; h0: [B, N] or None
    (zeros). Returns h: [B, T, N] float32. Same contract as :func:`kernels.scan.naive.linear_scan`.
    ``chunk``: steps per chunk (default about sqrt(T); tests force small ones).
    """
    if b.dim() != 3:
        raise ValueError(f"linear_scan: b must be [B, T, N], got {tuple(b.shape)}")
    # b is read through its batch and time strides (a slice of the block's projection needs no copy)
    b32 = b.float()
    if b32.stride(-1) != 1:
        b32 = b32.contiguous()
    h032 = h0.float().contiguous() if h0 is not None else None
    return _LinearScan.apply(a.float(), b32, h032, chunk, scale_input)
