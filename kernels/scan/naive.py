"""Reference linear recurrence ``h_t = a_t * h_{t-1} + b_t`` (float32), the spec of the scan op."""
from __future__ import annotations

import torch


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None,
                scale_input: bool = False) -> torch.Tensor:
    """All states of the linear recurrence ``h_t = a_t * h_{t-1} + b_t`` over dim 1.

    a: [B, T, N] (or broadcastable to b, e.g. [1, 1, N]) decay factors, expected in [0, 1];
    b: [B, T, N] inputs; h0: [B, N] state before t=0 (zeros if None). Returns h: [B, T, N].
    ``scale_input``: the inputs are (1 - a_t) * b_t (a leaky integrator, the registers' case).

    Only products of decay factors are ever formed (never a division or lam^-t, so
    nothing overflows for small lam), and everything is differentiable by autograd.
    A decay constant over time and batch (a: [1, 1, N], the registers' case) takes a
    chunked path (:func:`_scan_constant`); any other takes a Hillis-Steele scan
    (:func:`_scan_general`). Both equal :func:`linear_scan_loop` up to rounding.
    """
    if scale_input:
        b = (1.0 - a) * b
    if a.dim() == 3 and a.shape[0] == 1 and a.shape[1] == 1:
        return _scan_constant(a[0, 0], b, h0)
    return _scan_general(a, b, h0)


def _scan_general(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """Hillis-Steele inclusive scan over the associative pairs (a, b), composed as
    (a1, b1) then (a2, b2) = (a1*a2, a2*b1 + b2): log2(T) out-of-place passes."""
    B, T, N = b.shape
    a = a.expand(B, T, N)
    if h0 is not None:
        # Fold the carried-in state into the first input.
        b = torch.cat([b[:, :1] + a[:, :1] * h0.unsqueeze(1), b[:, 1:]], dim=1)
    offset = 1
    while offset < T:
        b_prev = b[:, :-offset]
        a_prev = a[:, :-offset]
        b = torch.cat([b[:, :offset], b[:, offset:] + a[:, offset:] * b_prev], dim=1)
        a = torch.cat([a[:, :offset], a[:, offset:] * a_prev], dim=1)
        offset *= 2
    return b


def _scan_constant(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, chunk: int = 64) -> torch.Tensor:
    """The recurrence for one decay vector a: [N] shared by all times and rows.

    Time is cut into chunks of C steps. Inside a chunk, h = L @ b with the decay matrix
    L[t, s] = a^(t-s) (s <= t), built from the powers a^0..a^C by cumulative products;
    the state entering each chunk is carried by a short loop over chunks, and reaches
    position t of its chunk multiplied by a^(t+1).
    """
    B, T, N = b.shape
    C = min(chunk, T)
    pad = (-T) % C
    if pad:
        b = torch.cat([b, b.new_zeros(B, pad, N)], dim=1)
    K = (T + pad) // C
    powers = torch.cumprod(a.unsqueeze(0).expand(C, N), dim=0)         # a^1 .. a^C  [C, N]
    powers0 = torch.cat([torch.ones_like(a).unsqueeze(0), powers], 0)  # a^0 .. a^C  [C+1, N]
    steps = torch.arange(C, device=b.device)
    lag = steps.unsqueeze(1) - steps.unsqueeze(0)                      # t - s  [C, C]
    L = powers0[lag.clamp(min=0)] * (lag >= 0).unsqueeze(-1).to(b.dtype)  # [C, C, N]
    chunks = b.reshape(B, K, C, N)
    inner = torch.einsum("tsn,bksn->bktn", L, chunks)                  # each chunk from a zero start
    ends = inner[:, :, -1]   # one select: per-chunk selects of inner each scatter a full-size grad
    carry = b.new_zeros(B, N) if h0 is None else h0
    starts = []
    for k in range(K):
        starts.append(carry)
        carry = ends[:, k] + powers[-1] * carry
    start = torch.stack(starts, dim=1)                                 # [B, K, N]
    h = inner + powers.view(1, 1, C, N) * start.unsqueeze(2)
    return h.reshape(B, K * C, N)[:, :T]


def linear_scan_loop(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """The same recurrence as a plain loop over time (the obvious spec; used by tests)."""
    B, T, N = b.shape
    a = a.expand(B, T, N)
    h = torch.zeros(B, N, dtype=b.dtype, device=b.device) if h0 is None else h0
    out = []
    for t in range(T):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)
