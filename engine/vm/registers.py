"""The registers: K leaky integrators of R channels per layer, s_k <- lam_k s_k + (1 - lam_k) W_in u.

lam = sigmoid(theta) stays in (0, 1) and the (1 - lam) input factor keeps every
register a convex mix of inputs, so they stay bounded. The input projection
W_in u is part of the block's fused projection; this module holds the decay
rates and the readout, and runs the recurrence both ways: one step, or a whole
sequence as a stable parallel scan (kernels.scan).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from kernels.scan import linear_scan


class Registers(nn.Module):
    def __init__(self, d_model: int, timescales: int, channels: int, lambdas: tuple[float, ...]):
        super().__init__()
        self.K, self.R = timescales, channels
        theta = torch.tensor([math.log(l / (1.0 - l)) for l in lambdas], dtype=torch.float32)
        self.theta = nn.Parameter(theta)  # lam = sigmoid(theta), one per timescale
        self.readout = nn.Linear(timescales * channels, d_model, bias=False)

    def decay(self) -> torch.Tensor:
        """lam: [K]."""
        return torch.sigmoid(self.theta)

    def scan(self, inp: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
        """All register states of a sequence.

        inp: [B, T, K*R] (W_in u); s0: [B, K, R] state before the sequence.
        Returns s: [B, T, K*R] with s_t = lam * s_{t-1} + (1 - lam) * inp_t.
        """
        lam = self.decay().repeat_interleave(self.R)  # [K*R]
        B, T, _ = inp.shape
        return linear_scan(lam.view(1, 1, -1), inp, s0.reshape(B, -1), scale_input=True)  # + (1 - lam) inp

    def step_(self, inp: torch.Tensor, s: torch.Tensor) -> None:
        """One token, in place: inp [B, K*R], s [B, K, R] (mutated)."""
        lam = self.decay().unsqueeze(-1)  # [K, 1]
        s.mul_(lam).add_((1.0 - lam) * inp.view_as(s))
