"""Triton twins of the fused element-wise ops: one kernel forward and one backward per call.

The ops work on rows: the leading dims are flattened to R rows, and one program owns a block
of ROWS rows whole (BD = the row's width rounded up to a power of 2), so the per-row sums of
the backward stay in registers and no [R, d] intermediate reaches memory. Everything is
computed in float32; each output is stored in its own dtype (the promoted dtype for y, each
input's dtype for its gradient), so bf16 autocast callers need no casts around the op.

Inputs are read through a row stride with a unit last-dim stride, so last-dim slices of a
wider projection (the gate logits, a query) are read in place instead of copied.

``gated_update``: the forward saves no intermediate, only (row views of) its inputs but x; the
backward reloads local, reg, mem, sel's three columns and the gate logits, recomputes the gates
and the update, and writes every requested gradient in one pass, sel's as whole rows (zeros
outside the three opcode columns) so that no zero-fill kernel precedes it. dx is dy itself.

``unit_rows``: the backward recomputes the row norm from x instead of saving it.

``swiglu``: the backward writes both halves of h's gradient into one buffer.

``opcode_select``: the forward writes the decisions (op, gate) and the one-hot values; the
backward recomputes the softmax from the logits and applies its backward to d sel, with the
store's cotangent added at the WRITE column.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


# ---------------------------------------------------------------------------------------------
# gated_update
# ---------------------------------------------------------------------------------------------
@triton.jit
def _tile(ptr, rows, cols, stride, m):
    """A [ROWS, BD] float32 tile of rows at ``ptr`` (row stride ``stride``, unit column stride)."""
    return tl.load(ptr + rows[:, None] * stride + cols[None, :], mask=m, other=0.0).to(tl.float32)


@triton.jit
def _gates(sel_ptr, gl_ptr, rows, rm, ss, sg, UP, DOWN, IDLE):
    """Per row: (sigmoid of both gate logits, sel's up / down / idle columns, both gates)."""
    s_up = tl.load(sel_ptr + rows * ss + UP, mask=rm, other=0.0).to(tl.float32)
    s_down = tl.load(sel_ptr + rows * ss + DOWN, mask=rm, other=0.0).to(tl.float32)
    s_idle = tl.load(sel_ptr + rows * ss + IDLE, mask=rm, other=0.0).to(tl.float32)
    sig0 = tl.sigmoid(tl.load(gl_ptr + rows * sg, mask=rm, other=0.0).to(tl.float32))
    sig1 = tl.sigmoid(tl.load(gl_ptr + rows * sg + 1, mask=rm, other=0.0).to(tl.float32))
    # the reference's order: g + s_up * (1 - g) - s_down * g
    g0 = sig0 + s_up * (1 - sig0) - s_down * sig0
    g1 = sig1 + s_up * (1 - sig1) - s_down * sig1
    return sig0, sig1, s_up, s_down, s_idle, g0, g1


@triton.jit
def _gated_fwd_kernel(x_ptr, local_ptr, reg_ptr, mem_ptr, sel_ptr, gl_ptr, y_ptr,
                      R, D, sx, sl, sr, sm, ss, sg, UP, DOWN, IDLE,
                      HAS_MEM: tl.constexpr, ROWS: tl.constexpr, BD: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BD)
    rm = rows < R
    m = rm[:, None] & (cols < D)[None, :]
    sig0, sig1, s_up, s_down, s_idle, g0, g1 = _gates(sel_ptr, gl_ptr, rows, rm, ss, sg, UP, DOWN, IDLE)
    upd = _tile(local_ptr, rows, cols, sl, m) + g0[:, None] * _tile(reg_ptr, rows, cols, sr, m)
    if HAS_MEM:
        upd = upd + g1[:, None] * _tile(mem_ptr, rows, cols, sm, m)
    y = _tile(x_ptr, rows, cols, sx, m) + (1 - s_idle)[:, None] * upd
    tl.store(y_ptr + rows[:, None] * D + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _gated_bwd_kernel(dy_ptr, local_ptr, reg_ptr, mem_ptr, sel_ptr, gl_ptr,
                      dlocal_ptr, dreg_ptr, dmem_ptr, dsel_ptr, dgl_ptr,
                      R, D, N, sdy, sl, sr, sm, ss, sg, UP, DOWN, IDLE,
                      HAS_MEM: tl.constexpr, D_LOCAL: tl.constexpr, D_REG: tl.constexpr, D_MEM: tl.constexpr,
                      D_SEL: tl.constexpr, D_GATE: tl.constexpr,
                      ROWS: tl.constexpr, BD: tl.constexpr, BN: tl.constexpr):
    """Every requested gradient of one block of rows; the gradients' buffers are contiguous."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BD)
    rm = rows < R
    m = rm[:, None] & (cols < D)[None, :]
    out = rows[:, None] * D + cols[None, :]
    sig0, sig1, s_up, s_down, s_idle, g0, g1 = _gates(sel_ptr, gl_ptr, rows, rm, ss, sg, UP, DOWN, IDLE)
    dy = _tile(dy_ptr, rows, cols, sdy, m)
    dyk = dy * (1 - s_idle)[:, None]  # the cotangent of upd
    if D_LOCAL:
        tl.store(dlocal_ptr + out, dyk.to(dlocal_ptr.dtype.element_ty), mask=m)
    if D_REG:
        tl.store(dreg_ptr + out, (dyk * g0[:, None]).to(dreg_ptr.dtype.element_ty), mask=m)
    if HAS_MEM:
        if D_MEM:
            tl.store(dmem_ptr + out, (dyk * g1[:, None]).to(dmem_ptr.dtype.element_ty), mask=m)
    if D_SEL or D_GATE:
        reg = _tile(reg_ptr, rows, cols, sr, m)
        dg0 = tl.sum(dyk * reg, axis=1)
        dg1 = tl.zeros([ROWS], dtype=tl.float32)  # no memory path: gate 1 is unused
        upd = _tile(local_ptr, rows, cols, sl, m) + g0[:, None] * reg
        if HAS_MEM:
            mem = _tile(mem_ptr, rows, cols, sm, m)
            dg1 = tl.sum(dyk * mem, axis=1)
            upd = upd + g1[:, None] * mem
        if D_SEL:
            d_idle = -tl.sum(dy * upd, axis=1)
            d_up = dg0 * (1 - sig0) + dg1 * (1 - sig1)
            d_down = -(dg0 * sig0 + dg1 * sig1)
            # the whole row: zeros outside the three columns, so the buffer needs no zero fill
            ncols = tl.arange(0, BN)[None, :]
            dsel = tl.where(ncols == UP, d_up[:, None],
                            tl.where(ncols == DOWN, d_down[:, None], tl.where(ncols == IDLE, d_idle[:, None], 0.0)))
            tl.store(dsel_ptr + rows[:, None] * N + ncols, dsel.to(dsel_ptr.dtype.element_ty),
                     mask=rm[:, None] & (ncols < N))
        if D_GATE:
            through = 1 - s_up - s_down  # d g / d sigmoid
            dl0 = dg0 * through * sig0 * (1 - sig0)
            dl1 = dg1 * through * sig1 * (1 - sig1)
            two = tl.arange(0, 2)[None, :]
            tl.store(dgl_ptr + rows[:, None] * 2 + two,
                     tl.where(two == 0, dl0[:, None], dl1[:, None]).to(dgl_ptr.dtype.element_ty),
                     mask=rm[:, None] & (two < 2))


def _as_rows(t: torch.Tensor) -> torch.Tensor:
    """t as [R, width] with a unit column stride: a view where the leading dims flatten (a
    last-dim slice of a wider tensor does), else a copy."""
    t2 = t.reshape(-1, t.shape[-1])
    if t2.shape[-1] > 1 and t2.stride(-1) != 1:
        t2 = t2.contiguous()
    return t2


def _launch(R: int, width: int) -> tuple[int, int, int]:
    """(block width, rows per program, warps): about 2048 elements a program, fewer rows when
    there are only a few (an interpreter run of a tiny case should not walk empty rows)."""
    BW = triton.next_power_of_2(max(width, 1))
    ROWS = max(1, min(2048 // BW, triton.next_power_of_2(max(R, 1))))
    return BW, ROWS, 4 if ROWS * BW <= 2048 else 8


def _check_gated(x, local, reg, mem, sel, gate_logits, up, down, idle) -> None:
    for name, t in (("local", local), ("reg", reg), ("mem", mem)):
        if t is not None and t.shape != x.shape:
            raise ValueError(f"gated_update: {name} {tuple(t.shape)} must match x {tuple(x.shape)}")
    if x.dim() == 0 or sel.shape[:-1] != x.shape[:-1] or gate_logits.shape[:-1] != x.shape[:-1]:
        raise ValueError(f"gated_update: sel {tuple(sel.shape)} and gate_logits {tuple(gate_logits.shape)} must "
                         f"share x's leading dims {tuple(x.shape[:-1])}")
    if gate_logits.shape[-1] != 2:
        raise ValueError(f"gated_update: gate_logits must be [..., 2], got {tuple(gate_logits.shape)}")
    n = sel.shape[-1]
    if len({up, down, idle}) != 3 or not all(0 <= c < n for c in (up, down, idle)):
        raise ValueError(f"gated_update: up, down, idle must be distinct columns of sel (width {n}), "
                         f"got {up}, {down}, {idle}")


def gated_fwd(x2, l2, r2, m2, s2, g2, up: int, down: int, idle: int, dtype: torch.dtype) -> torch.Tensor:
    """Forward on row views ([R, d] / [R, n] / [R, 2], unit column stride): y [R, d] in ``dtype``."""
    R, D = x2.shape
    y = torch.empty(R, D, device=x2.device, dtype=dtype)
    if R and D:
        BD, ROWS, warps = _launch(R, D)
        _gated_fwd_kernel[(triton.cdiv(R, ROWS),)](
            x2, l2, r2, m2 if m2 is not None else l2, s2, g2, y, R, D,
            x2.stride(0), l2.stride(0), r2.stride(0), m2.stride(0) if m2 is not None else 0,
            s2.stride(0), g2.stride(0), up, down, idle,
            HAS_MEM=m2 is not None, ROWS=ROWS, BD=BD, num_warps=warps)
    return y


class _GatedUpdate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, local, reg, mem, sel, gate_logits, up, down, idle):
        dtype = _promoted(x, local, reg, mem, sel, gate_logits)
        l2, r2, s2, g2 = _as_rows(local), _as_rows(reg), _as_rows(sel), _as_rows(gate_logits)
        m2 = _as_rows(mem) if mem is not None else None
        y = gated_fwd(_as_rows(x), l2, r2, m2, s2, g2, up, down, idle, dtype)
        ctx.save_for_backward(l2, r2, m2, s2, g2)
        ctx.cols = (up, down, idle)
        ctx.meta = (x.dtype, local.shape, sel.shape, gate_logits.shape)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        l2, r2, m2, s2, g2 = ctx.saved_tensors
        x_dtype, shape, sel_shape, gl_shape = ctx.meta
        nx, nl, nr, nm, ns, ng = ctx.needs_input_grad[:6]
        nm = nm and m2 is not None
        dx = dy.to(x_dtype) if nx else None
        R, D = l2.shape
        N = s2.shape[1]
        dev = dy.device
        dlocal = torch.empty(R, D, device=dev, dtype=l2.dtype) if nl else None
        dreg = torch.empty(R, D, device=dev, dtype=r2.dtype) if nr else None
        dmem = torch.empty(R, D, device=dev, dtype=m2.dtype) if nm else None
        dsel = torch.empty(R, N, device=dev, dtype=s2.dtype) if ns else None
        dgl = torch.empty(R, 2, device=dev, dtype=g2.dtype) if ng else None
        if R and (nl or nr or nm or ns or ng):
            if D == 0:  # no update: sums over an empty row
                for t in (dsel, dgl):
                    if t is not None:
                        t.zero_()
            else:
                dy2 = _as_rows(dy)
                BD, ROWS, warps = _launch(R, D)
                dummy = dy2
                _gated_bwd_kernel[(triton.cdiv(R, ROWS),)](
                    dy2, l2, r2, m2 if m2 is not None else l2, s2, g2,
                    *(t if t is not None else dummy for t in (dlocal, dreg, dmem, dsel, dgl)),
                    R, D, N, dy2.stride(0), l2.stride(0), r2.stride(0), m2.stride(0) if m2 is not None else 0,
                    s2.stride(0), g2.stride(0), *ctx.cols,
                    HAS_MEM=m2 is not None, D_LOCAL=nl, D_REG=nr, D_MEM=nm, D_SEL=ns, D_GATE=ng,
                    ROWS=ROWS, BD=BD, BN=triton.next_power_of_2(N), num_warps=warps)
        view = lambda t, s: t.view(s) if t is not None else None  # noqa: E731
        return (dx, view(dlocal, shape), view(dreg, shape), view(dmem, shape), view(dsel, sel_shape),
                view(dgl, gl_shape), None, None, None)


def _promoted(*tensors: torch.Tensor | None) -> torch.dtype:
    """The dtype the reference's arithmetic promotes these (all floating) tensors to."""
    dtype = None
    for t in tensors:
        if t is not None:
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
    return dtype


def gated_update(x: torch.Tensor, local: torch.Tensor, reg: torch.Tensor, mem: torch.Tensor | None,
                 sel: torch.Tensor, gate_logits: torch.Tensor, up: int, down: int, idle: int) -> torch.Tensor:
    """Same contract as :func:`kernels.elementwise.naive.gated_update`, differentiable in every tensor.

    x, local, reg (, mem): [..., d] of one shape; sel: [..., n]; gate_logits: [..., 2]; up, down,
    idle: distinct columns of sel in [0, n). Any tensor may be a view whose leading dims flatten
    to rows (e.g. a last-dim slice, stride(-1) == 1); others are copied. Returns y: [..., d],
    contiguous, in the promoted dtype of the inputs.
    """
    _check_gated(x, local, reg, mem, sel, gate_logits, up, down, idle)
    tensors = (x, local, reg, mem, sel, gate_logits)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _GatedUpdate.apply(x, local, reg, mem, sel, gate_logits, up, down, idle)
    y = gated_fwd(_as_rows(x), _as_rows(local), _as_rows(reg), _as_rows(mem) if mem is not None else None,
                  _as_rows(sel), _as_rows(gate_logits), up, down, idle, _promoted(*tensors))
    return y.view(x.shape)


# ---------------------------------------------------------------------------------------------
# unit_rows
# ---------------------------------------------------------------------------------------------
@triton.jit
def _unit_fwd_kernel(x_ptr, y_ptr, R, N, sx, scale, ROWS: tl.constexpr, BN: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BN)
    m = (rows < R)[:, None] & (cols < N)[None, :]
    x = _tile(x_ptr, rows, cols, sx, m)
    r = tl.maximum(tl.sqrt(tl.sum(x * x, axis=1)), 1e-12)
    tl.store(y_ptr + rows[:, None] * N + cols[None, :], (x / r[:, None] * scale).to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _unit_bwd_kernel(x_ptr, dy_ptr, dx_ptr, R, N, sx, sdy, scale, ROWS: tl.constexpr, BN: tl.constexpr):
    """dx = scale * (dy - xh * <xh, dy>) / r with r = max(|x|, eps), xh = x / r; below eps the
    clamp passes no gradient to the norm, so the projection term drops and dx = scale * dy / eps."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BN)
    m = (rows < R)[:, None] & (cols < N)[None, :]
    x = _tile(x_ptr, rows, cols, sx, m)
    dy = _tile(dy_ptr, rows, cols, sdy, m)
    nrm = tl.sqrt(tl.sum(x * x, axis=1))
    r = tl.maximum(nrm, 1e-12)
    xh = x / r[:, None]
    # clamp_min passes its gradient where nrm >= eps, as torch's does
    proj = tl.where(nrm >= 1e-12, tl.sum(xh * dy, axis=1), 0.0)
    dx = scale * (dy - xh * proj[:, None]) / r[:, None]
    tl.store(dx_ptr + rows[:, None] * N + cols[None, :], dx.to(dx_ptr.dtype.element_ty), mask=m)


def unit_fwd(x2: torch.Tensor, scale: float) -> torch.Tensor:
    """Forward on a row view x2 [R, n] (unit column stride): y [R, n] in x2's dtype."""
    R, N = x2.shape
    y = torch.empty(R, N, device=x2.device, dtype=x2.dtype)
    if R and N:
        BN, ROWS, warps = _launch(R, N)
        _unit_fwd_kernel[(triton.cdiv(R, ROWS),)](x2, y, R, N, x2.stride(0), float(scale),
                                                  ROWS=ROWS, BN=BN, num_warps=warps)
    return y


class _UnitRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        x2 = _as_rows(x)
        ctx.save_for_backward(x2)
        ctx.scale = scale
        return unit_fwd(x2, scale).view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        (x2,) = ctx.saved_tensors
        R, N = x2.shape
        dx = torch.empty(R, N, device=x2.device, dtype=x2.dtype)
        if R and N:
            dy2 = _as_rows(dy)
            BN, ROWS, warps = _launch(R, N)
            _unit_bwd_kernel[(triton.cdiv(R, ROWS),)](x2, dy2, dx, R, N, x2.stride(0), dy2.stride(0),
                                                      float(ctx.scale), ROWS=ROWS, BN=BN, num_warps=warps)
        return dx.view(dy.shape), None


def unit_rows(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Same contract as :func:`kernels.elementwise.naive.unit_rows`: x [..., n] -> x / max(|x|, 1e-12)
    * scale, contiguous, in x's dtype. x may be a last-dim slice (stride(-1) == 1) read in place.
    Outside autograd (no_grad, or x needs no gradient) nothing is saved for a backward."""
    if x.dim() == 0:
        raise ValueError("unit_rows: x must have at least one dim")
    if torch.is_grad_enabled() and x.requires_grad:
        return _UnitRows.apply(x, float(scale))
    return unit_fwd(_as_rows(x), scale).view(x.shape)


# ---------------------------------------------------------------------------------------------
# opcode_select
# ---------------------------------------------------------------------------------------------
@triton.jit
def _select_probs(opl_ptr, rows, rm, so, N, BN: tl.constexpr):
    """(softmax of each row's opcode logits [ROWS, BN] float32, column ids, column mask)."""
    cols = tl.arange(0, BN)[None, :]
    m = rm[:, None] & (cols < N)
    z = tl.load(opl_ptr + rows[:, None] * so + cols, mask=m, other=float("-inf")).to(tl.float32)
    top = tl.where(rm, tl.max(z, axis=1), 0.0)          # rows past the end: no -inf - -inf
    e = tl.where(m, tl.exp(z - top[:, None]), 0.0)
    return e / tl.where(rm, tl.sum(e, axis=1), 1.0)[:, None], z, cols, m


@triton.jit
def _select_fwd_kernel(opl_ptr, gl_ptr, top_ptr, tgate_ptr, op_ptr, gate_ptr, sel_ptr, store_ptr,
                       R, N, so, sg, CLEAR, NOP, WRITE, cconf,
                       HAS_TOP: tl.constexpr, HAS_TGATE: tl.constexpr, ROWS: tl.constexpr, BN: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    rm = rows < R
    p, z, cols, m = _select_probs(opl_ptr, rows, rm, so, N, BN)
    op = tl.argmax(z, axis=1).to(tl.int64)   # the first of equal maxima, as torch's argmax
    p_clear = tl.sum(tl.where(cols == CLEAR, p, 0.0), axis=1)
    op = tl.where((op == CLEAR) & (p_clear < cconf), NOP, op)
    gate = tl.load(gl_ptr + rows * sg, mask=rm, other=0.0).to(tl.float32) > 0
    if HAS_TOP:
        t = tl.load(top_ptr + rows, mask=rm, other=-1)
        op = tl.where(t >= 0, t, op)
    if HAS_TGATE:
        t = tl.load(tgate_ptr + rows, mask=rm, other=-1)
        gate = tl.where(t >= 0, t > 0, gate)
    tl.store(op_ptr + rows, op, mask=rm)
    tl.store(gate_ptr + rows, gate.to(tl.uint8), mask=rm)
    hard = (cols == op[:, None]).to(tl.float32)
    tl.store(sel_ptr + rows[:, None] * N + cols, hard, mask=m)
    tl.store(store_ptr + rows, gate.to(tl.float32) * (op == WRITE).to(tl.float32), mask=rm)


@triton.jit
def _select_bwd_kernel(opl_ptr, gl_ptr, op_ptr, gate_ptr, dsel_ptr, dstore_ptr, dopl_ptr, dgl_ptr,
                       R, N, so, sg, sds, WRITE,
                       HAS_DSEL: tl.constexpr, HAS_DSTORE: tl.constexpr, ROWS: tl.constexpr, BN: tl.constexpr):
    """d op_logits = p (d sel - <p, d sel>) (softmax backward), with d sel[write] += d store * gate;
    d gate_logits = d store * sel[write] * sigmoid'(gate_logits)."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    rm = rows < R
    p, z, cols, m = _select_probs(opl_ptr, rows, rm, so, N, BN)
    is_write = (tl.load(op_ptr + rows, mask=rm, other=-1) == WRITE).to(tl.float32)
    gate = tl.load(gate_ptr + rows, mask=rm, other=0).to(tl.float32)
    if HAS_DSEL:
        dsel = tl.load(dsel_ptr + rows[:, None] * sds + cols, mask=m, other=0.0).to(tl.float32)
    else:
        dsel = tl.zeros([ROWS, BN], dtype=tl.float32)
    dstore = tl.zeros([ROWS], dtype=tl.float32)
    if HAS_DSTORE:
        dstore = tl.load(dstore_ptr + rows, mask=rm, other=0.0).to(tl.float32)
        dsel = dsel + tl.where(cols == WRITE, (dstore * gate)[:, None], 0.0)
    dz = p * (dsel - tl.sum(p * dsel, axis=1)[:, None])
    tl.store(dopl_ptr + rows[:, None] * N + cols, dz.to(dopl_ptr.dtype.element_ty), mask=m)
    sg_ = tl.sigmoid(tl.load(gl_ptr + rows * sg, mask=rm, other=0.0).to(tl.float32))
    tl.store(dgl_ptr + rows, (dstore * is_write * sg_ * (1 - sg_)).to(dgl_ptr.dtype.element_ty), mask=rm)


def select_fwd(op_logits, gate_logits, t_op, t_gate, clear, nop, write, cconf):
    """Forward: ((op_logits as rows [R, n], gate_logits as [R]: what the backward reads),
    (op, gate, sel, store) in op_logits' leading shape)."""
    o2, g1 = _as_rows(op_logits), gate_logits.reshape(-1)  # the gate: a column, rows one stride apart
    R, N = o2.shape
    dev = o2.device
    op = torch.empty(R, dtype=torch.long, device=dev)
    gate = torch.empty(R, dtype=torch.uint8, device=dev)
    sel = torch.empty(R, N, dtype=torch.float32, device=dev)
    store = torch.empty(R, dtype=torch.float32, device=dev)
    if R:
        BN, ROWS, warps = _launch(R, N)
        top = t_op.reshape(-1).contiguous() if t_op is not None else op
        tgate = t_gate.reshape(-1).contiguous() if t_gate is not None else op
        _select_fwd_kernel[(triton.cdiv(R, ROWS),)](
            o2, g1, top, tgate, op, gate, sel, store, R, N, o2.stride(0), g1.stride(0), clear, nop, write,
            float(cconf), HAS_TOP=t_op is not None, HAS_TGATE=t_gate is not None, ROWS=ROWS, BN=BN,
            num_warps=warps)
    lead = op_logits.shape[:-1]
    return (o2, g1), (op.view(lead), gate.view(torch.bool).view(lead), sel.view(op_logits.shape), store.view(lead))


class _OpcodeSelect(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op_logits, gate_logits, t_op, t_gate, clear, nop, write, cconf):
        (o2, g1), (op, gate, sel, store) = select_fwd(op_logits, gate_logits, t_op, t_gate, clear, nop, write, cconf)
        ctx.save_for_backward(o2, g1, op, gate)
        ctx.meta = (op_logits.shape, op_logits.dtype, gate_logits.shape, gate_logits.dtype, write)
        ctx.mark_non_differentiable(op, gate)
        ctx.set_materialize_grads(False)
        return op, gate, sel, store

    @staticmethod
    def backward(ctx, _dop, _dgate, dsel, dstore):
        o2, g1, op, gate = ctx.saved_tensors
        shape, odt, gshape, gdt, write = ctx.meta
        R, N = o2.shape
        dopl = torch.empty(R, N, dtype=odt, device=o2.device)
        dgl = torch.empty(R, dtype=gdt, device=o2.device)
        if R:
            ds2 = _as_rows(dsel) if dsel is not None else dopl
            dst = dstore.reshape(-1).contiguous() if dstore is not None else dgl
            BN, ROWS, warps = _launch(R, N)
            _select_bwd_kernel[(triton.cdiv(R, ROWS),)](
                o2, g1, op, gate, ds2, dst, dopl, dgl, R, N, o2.stride(0), g1.stride(0), ds2.stride(0), write,
                HAS_DSEL=dsel is not None, HAS_DSTORE=dstore is not None, ROWS=ROWS, BN=BN, num_warps=warps)
        return dopl.view(shape), dgl.view(gshape), None, None, None, None, None, None


def opcode_select(op_logits, gate_logits, t_op, t_gate, clear: int, nop: int, write: int, clear_confidence: float):
    """Same contract as :func:`kernels.elementwise.naive.opcode_select`, one kernel each way:
    op_logits [..., n] (a last-dim slice is read in place), gate_logits [...] (a column of a
    wider tensor: rows one stride apart); gradients to both in their own dtypes."""
    if gate_logits.shape != op_logits.shape[:-1]:
        raise ValueError(f"opcode_select: gate_logits {tuple(gate_logits.shape)} must be op_logits' leading dims "
                         f"{tuple(op_logits.shape[:-1])}")
    cconf = float(clear_confidence) if clear_confidence > 0 else -1.0   # no probability is below -1
    if torch.is_grad_enabled() and (op_logits.requires_grad or gate_logits.requires_grad):
        return _OpcodeSelect.apply(op_logits, gate_logits, t_op, t_gate, clear, nop, write, cconf)
    return select_fwd(op_logits, gate_logits, t_op, t_gate, clear, nop, write, cconf)[1]


# ---------------------------------------------------------------------------------------------
# swiglu
# ---------------------------------------------------------------------------------------------
@triton.jit
def _swiglu_fwd_kernel(h_ptr, y_ptr, R, M, sh, ROWS: tl.constexpr, BM: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BM)
    m = (rows < R)[:, None] & (cols < M)[None, :]
    gate = _tile(h_ptr, rows, cols, sh, m)
    up = _tile(h_ptr + M, rows, cols, sh, m)
    tl.store(y_ptr + rows[:, None] * M + cols[None, :], (gate * tl.sigmoid(gate) * up).to(y_ptr.dtype.element_ty),
             mask=m)


@triton.jit
def _swiglu_bwd_kernel(h_ptr, dy_ptr, dh_ptr, R, M, sh, sdy, ROWS: tl.constexpr, BM: tl.constexpr):
    """d gate = dy * up * silu'(gate), silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x); d up = dy * silu(gate);
    both halves of one [R, 2M] buffer (no concatenation after)."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BM)
    m = (rows < R)[:, None] & (cols < M)[None, :]
    gate = _tile(h_ptr, rows, cols, sh, m)
    up = _tile(h_ptr + M, rows, cols, sh, m)
    dy = _tile(dy_ptr, rows, cols, sdy, m)
    s = tl.sigmoid(gate)
    out = dh_ptr + rows[:, None] * (2 * M) + cols[None, :]
    tl.store(out, (dy * up * s * (1 + gate * (1 - s))).to(dh_ptr.dtype.element_ty), mask=m)
    tl.store(out + M, (dy * gate * s).to(dh_ptr.dtype.element_ty), mask=m)


def swiglu_fwd(h2: torch.Tensor) -> torch.Tensor:
    """Forward on rows h2 [R, 2M] (unit column stride): y [R, M] in h2's dtype."""
    R, M = h2.shape[0], h2.shape[1] // 2
    y = torch.empty(R, M, device=h2.device, dtype=h2.dtype)
    if R and M:
        BM, ROWS, warps = _launch(R, M)
        _swiglu_fwd_kernel[(triton.cdiv(R, ROWS),)](h2, y, R, M, h2.stride(0), ROWS=ROWS, BM=BM, num_warps=warps)
    return y


class _Swiglu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h):
        h2 = _as_rows(h)
        ctx.save_for_backward(h2)
        ctx.shape = h.shape
        return swiglu_fwd(h2).view(*h.shape[:-1], h.shape[-1] // 2)

    @staticmethod
    def backward(ctx, dy):
        (h2,) = ctx.saved_tensors
        R, M = h2.shape[0], h2.shape[1] // 2
        dh = torch.empty(R, 2 * M, device=h2.device, dtype=h2.dtype)
        if R and M:
            dy2 = _as_rows(dy)
            BM, ROWS, warps = _launch(R, M)
            _swiglu_bwd_kernel[(triton.cdiv(R, ROWS),)](h2, dy2, dh, R, M, h2.stride(0), dy2.stride(0),
                                                        ROWS=ROWS, BM=BM, num_warps=warps)
        return dh.view(ctx.shape)


def swiglu(h: torch.Tensor) -> torch.Tensor:
    """Same contract as :func:`kernels.elementwise.naive.swiglu`: h [..., 2m] -> [..., m], contiguous,
    in h's dtype (computed in float32)."""
    if h.dim() == 0 or h.shape[-1] % 2:
        raise ValueError(f"swiglu: the last dim must be even, got shape {tuple(h.shape)}")
    if torch.is_grad_enabled() and h.requires_grad:
        return _Swiglu.apply(h)
    return swiglu_fwd(_as_rows(h)).view(*h.shape[:-1], h.shape[-1] // 2)


# ---------------------------------------------------------------------------------------------
# Self-check, picked up by scripts/gpu_check.py (check_extra_twins)
# ---------------------------------------------------------------------------------------------
def gpu_selfcheck(device) -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """Both twins against their references, outputs and every gradient, at the default model's
    sizes (d 128, 10 opcodes, dk 32; a few rows on a CPU, where the interpreter runs them):
    a list of (name, actual, expected, RMS ratio tolerance)."""
    from kernels.elementwise import naive

    device = torch.device(device)
    B, T = (2, 5) if device.type == "cpu" else (16, 256)
    d, n, dk = 128, 10, 32
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape, dtype=torch.float32, uniform=False):
        t = torch.rand(*shape, generator=gen) if uniform else torch.randn(*shape, generator=gen)
        return t.to(device=device, dtype=dtype).requires_grad_()

    rows = []
    for with_mem, low in ((True, torch.float32), (False, torch.float32), (True, torch.bfloat16)):
        x, sel = rnd(B, T, d), rnd(B, T, n, uniform=True)
        local, reg = rnd(B, T, d, dtype=low), rnd(B, T, d, dtype=low)
        mem = rnd(B, T, d, dtype=low) if with_mem else None
        proj = rnd(B, T, 40, dtype=low)  # the gate logits are a slice of the block's projection
        named = [(k, t) for k, t in (("x", x), ("local", local), ("reg", reg), ("mem", mem), ("sel", sel),
                                     ("proj", proj)) if t is not None]
        cot = torch.randn(B, T, d, generator=gen).to(device)
        got, ref = [(y, torch.autograd.grad((y.float() * cot).sum(), [t for _, t in named]))
                    for y in (f(x, local, reg, mem, sel, proj[..., 20:22], 5, 6, 4)
                              for f in (gated_update, naive.gated_update))]
        # bf16: the reference rounds its intermediates (the gates) to bf16, the twin does not
        tol = 1e-5 if low == torch.float32 else 3e-2
        tag = f"gated_update {'mem' if with_mem else 'no mem'} {str(low).removeprefix('torch.')}"
        rows.append((f"{tag} y", got[0], ref[0], tol))
        rows += [(f"{tag} d{k}", a, e, tol) for (k, _), a, e in zip(named, got[1], ref[1])]

    for low in (torch.float32, torch.bfloat16):
        wide = torch.randn(B, T, 3 * dk, generator=gen)
        wide[0, 0] = 0.0  # a zero row: the eps branch
        wide = wide.to(device=device, dtype=low).requires_grad_()
        x = wide[..., dk:2 * dk]
        cot = torch.randn(B, T, dk, generator=gen).to(device)
        tiny = torch.zeros(B, T, dtype=torch.bool, device=device)
        tiny[0, 0] = True
        got, ref = [(y, torch.autograd.grad((y.float() * cot).sum(), wide)[0][..., dk:2 * dk])
                    for y in (unit_rows(x, 6.0), naive.unit_rows(x, 6.0))]
        tol = 1e-5 if low == torch.float32 else 3e-2
        tag = f"unit_rows {str(low).removeprefix('torch.')}"
        rows += [(f"{tag} y", got[0], ref[0], tol), (f"{tag} dx", got[1][~tiny], ref[1][~tiny], tol),
                 (f"{tag} dx below eps", got[1][tiny], ref[1][tiny], tol)]
        with torch.no_grad():
            rows.append((f"{tag} y no_grad", unit_rows(x, 6.0), naive.unit_rows(x, 6.0), tol))

    # opcode_select: the opcode head (10 columns) and the write gate as slices of one projection,
    # teacher labels on some rows; CLEAR 2, NOP 0, WRITE 1 as in the model
    for low in (torch.float32, torch.bfloat16):
        proj = (torch.randn(B, T, 16, generator=gen) * 2).to(device=device, dtype=low).requires_grad_()
        t_op = torch.randint(-1, n, (B, T), generator=gen).to(device)
        t_gate = torch.randint(-1, 2, (B, T), generator=gen).to(device)
        cot, cot_s = torch.randn(B, T, n, generator=gen).to(device), torch.randn(B, T, generator=gen).to(device)
        outs = []
        for f in (opcode_select, naive.opcode_select):
            op, gate, sel, store = f(proj[..., 2:2 + n], proj[..., 14], t_op, t_gate, 2, 0, 1, 0.8)
            (d,) = torch.autograd.grad((sel * cot).sum() + (store * cot_s).sum(), proj)
            outs.append((op, gate, sel, store, d))
        tol = 1e-5 if low == torch.float32 else 3e-2
        tag = f"opcode_select {str(low).removeprefix('torch.')}"
        rows += [(f"{tag} {k}", a, e, 0.0 if k in ("op", "gate") else tol)
                 for k, a, e in zip(("op", "gate", "sel", "store", "d proj"), *outs)]

    # swiglu at the default model's MLP width (320), as the output of mlp_in
    for low in (torch.float32, torch.bfloat16):
        h = torch.randn(B, T, 640, generator=gen).to(device=device, dtype=low).requires_grad_()
        cot = torch.randn(B, T, 320, generator=gen).to(device)
        got, ref = [(y, torch.autograd.grad((y.float() * cot).sum(), h)[0]) for y in (swiglu(h), naive.swiglu(h))]
        tol = 1e-5 if low == torch.float32 else 3e-2
        tag = f"swiglu {str(low).removeprefix('torch.')}"
        rows += [(f"{tag} y", got[0], ref[0], tol), (f"{tag} dh", got[1], ref[1], tol)]
    return rows
