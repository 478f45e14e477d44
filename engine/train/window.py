"""The baseline: an equal-size byte transformer whose attention sees only the last ``window``
tokens (the training length). Trained and evaluated by the same commands as MOSAIC.

Rotary positions make the window slide: a sequence of any length is processed in
chunks whose queries attend to at most ``window`` keys (their own and the ``window - 1``
before it). Layers stack, as in any sliding-window transformer: a prediction over a whole
stream can depend on the ``n_layers * (window - 1)`` bytes before it, though beyond the first
``window`` only through what earlier positions passed on. Greedy generation
(``engine.eval.common.greedy_generate``) re-reads only the last ``window`` bytes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WindowConfig:
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden: int = 640
    window: int = 2048
    vocab_size: int = 256
    norm_eps: float = 1e-6

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WindowConfig":
        return cls(**d)


@dataclass
class WindowOutput:
    logits: torch.Tensor                                        # [B, T, 256]
    state: None = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)  # none: no opcodes, no memory


def _rope(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding. x [B, H, T, hd], pos [T] (absolute positions)."""
    hd = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
    ang = pos.float()[:, None] * inv[None, :]             # [T, hd/2]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class _Layer(nn.Module):
    def __init__(self, cfg: WindowConfig):
        super().__init__()
        d = cfg.d_model
        self.h, self.eps = cfg.n_heads, cfg.norm_eps
        self.n1 = nn.Parameter(torch.ones(d))
        self.n2 = nn.Parameter(torch.ones(d))
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.mlp_in = nn.Linear(d, 2 * cfg.mlp_hidden, bias=False)
        self.mlp_out = nn.Linear(cfg.mlp_hidden, d, bias=False)

    def forward(self, x: torch.Tensor, window: int) -> torch.Tensor:
        B, T, d = x.shape
        u = F.rms_norm(x, (d,), self.n1, self.eps)
        q, k, v = self.qkv(u).view(B, T, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        pos = torch.arange(T, device=x.device)
        q, k = _rope(q, pos), _rope(k, pos)
        if T <= window:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # chunks of queries, each seeing only the last `window` keys
            outs = []
            for s in range(0, T, window):
                e = min(T, s + window)
                ks = max(0, s - window + 1)
                qi = torch.arange(s, e, device=x.device)[:, None]
                kj = torch.arange(ks, e, device=x.device)[None, :]
                mask = (kj <= qi) & (qi - kj < window)
                outs.append(F.scaled_dot_product_attention(q[:, :, s:e], k[:, :, ks:e], v[:, :, ks:e], attn_mask=mask))
            att = torch.cat(outs, dim=2)
        x = x + self.o(att.transpose(1, 2).reshape(B, T, d))
        g, up = self.mlp_in(F.rms_norm(x, (d,), self.n2, self.eps)).chunk(2, dim=-1)
        return x + self.mlp_out(F.silu(g) * up)


class WindowLM(nn.Module):
    """Byte transformer with sliding-window attention; ``forward(ids)`` like MosaicLM's."""

    def __init__(self, config: WindowConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.n_layers))
        self.norm = nn.Parameter(torch.ones(config.d_model))
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
        for layer in self.layers:
            for lin in (layer.o, layer.mlp_out):
                lin.weight.data.mul_((2 * config.n_layers) ** -0.5)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def forward(self, ids: torch.Tensor, state=None, teacher=None) -> WindowOutput:
        """ids [B, T] -> logits [B, T, 256]; ``state`` and ``teacher`` are accepted and ignored."""
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, self.config.window)
        x = F.rms_norm(x, (x.shape[-1],), self.norm, self.config.norm_eps)
        return WindowOutput(logits=self.head(x))


def matched_window_config(model_cfg, window: int) -> WindowConfig:
    """A window transformer with the MOSAIC config's width and depth and about its parameter
    count (the MLP width absorbs the difference)."""
    from engine.vm import MosaicLM
    target = MosaicLM(model_cfg).num_parameters()
    d, L = model_cfg.d_model, model_cfg.n_layers
    heads = max(1, d // 64) if d >= 64 else max(1, d // 16)
    fixed = 2 * 256 * d + d + L * (4 * d * d + 2 * d)   # embed, head, norms, attention
    hidden = max(d // 2, round((target - fixed) / (3 * d * L)))
    return WindowConfig(d_model=d, n_layers=L, n_heads=heads, mlp_hidden=int(hidden), window=window)
