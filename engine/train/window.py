"""The baseline: an equal-size byte transformer whose attention sees only the last ``window``
tokens (the training length). Trained and evaluated by the same commands as MOSAIC.

Rotary positions make the window slide: a sequence of any length is processed in
chunks whose queries attend to at most ``window`` keys (their own and the ``window - 1``
before it). Layers stack, as in any sliding-window transformer: a prediction over a whole
stream can depend on the ``n_layers * (window - 1)`` bytes before it, though beyond the first
``window`` only through what earlier positions passed on. ``prefill`` and ``step`` decode with a
cache of each layer's last ``window - 1`` keys and values: the same function as ``forward``.
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

    def forward(self, x: torch.Tensor, window: int, kv: list | None = None) -> torch.Tensor:
        """x [B, T, d] -> [B, T, d]; ``kv``: a list that receives this layer's keys (rotated) and values
        [B, H, T, hd] (for :meth:`WindowLM.prefill`)."""
        B, T, d = x.shape
        u = F.rms_norm(x, (d,), self.n1, self.eps)
        q, k, v = self.qkv(u).view(B, T, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        pos = torch.arange(T, device=x.device)
        q, k = _rope(q, pos), _rope(k, pos)
        if kv is not None:
            kv.append((k, v))
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
        return self._mlp(x)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        g, up = self.mlp_in(F.rms_norm(x, (x.shape[-1],), self.n2, self.eps)).chunk(2, dim=-1)
        return x + self.mlp_out(F.silu(g) * up)

    def step(self, x: torch.Tensor, pos: torch.Tensor, cache: "WindowCache", i: int) -> torch.Tensor:
        """One position per row: x [B, d] at absolute positions ``pos`` [B], attending to itself and
        the ``window - 1`` keys before it kept in ``cache`` (layer ``i``), which it then joins."""
        B, d = x.shape
        u = F.rms_norm(x, (d,), self.n1, self.eps)
        q, k, v = self.qkv(u).view(B, 3, self.h, 1, d // self.h).unbind(1)   # each [B, H, 1, hd]
        at = pos.view(B, 1, 1)
        q, k = _rope(q, at), _rope(k, at)
        keys, vals = torch.cat([cache.k[i], k], 2), torch.cat([cache.v[i], v], 2)
        mask = torch.cat([cache.valid, cache.valid.new_ones(B, 1)], 1)[:, None, None, :]
        att = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask)   # [B, H, 1, hd]
        cache.k[i], cache.v[i] = keys[:, :, 1:], vals[:, :, 1:]
        return self._mlp(x + self.o(att.reshape(B, d)))


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

    def forward(self, ids: torch.Tensor, state=None, teacher=None, kv: list | None = None,
                keep_state: bool = True) -> WindowOutput:
        """ids [B, T] -> logits [B, T, 256]; ``state``, ``teacher`` and ``keep_state`` (MosaicLM's
        call) are accepted and ignored."""
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, self.config.window, kv)
        return WindowOutput(logits=self._logits(x))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.rms_norm(x, (x.shape[-1],), self.norm, self.config.norm_eps))

    @torch.no_grad()
    def prefill(self, prompts: list[torch.Tensor], chains: list[list[int]] | None = None
                ) -> tuple[torch.Tensor, "WindowCache"]:
        """Each prompt (a LongTensor [T_i], T_i >= 1) read by :meth:`forward`: the logits of its last
        byte [B, 256] and a cache of every layer's last ``window - 1`` keys and values, from which
        :meth:`step` goes on exactly as ``forward`` over the longer sequence would.

        ``chains`` (``engine.eval.common.prefix_chains``): groups of prompt indices whose prompts all
        begin the group's first; each group is read in one pass over that first prompt, and the
        others are cut from it (attention is causal). Default: every prompt on its own."""
        W, B = self.config.window, len(prompts)
        if any(ids.shape[0] == 0 for ids in prompts):
            raise ValueError("prompts: every prompt needs at least one byte")
        chains = [[b] for b in range(B)] if chains is None else chains
        if sorted(i for c in chains for i in c) != list(range(B)):
            raise ValueError("chains: every prompt must be in exactly one chain")
        cache = WindowCache.empty(self.config, B, self.device, self.embed.weight.dtype)
        last = torch.zeros(B, self.head.out_features, device=self.device, dtype=self.embed.weight.dtype)
        for chain in chains:
            head = prompts[chain[0]]
            kv: list = []
            logits = self(head[None].to(self.device), kv=kv).logits[0]
            for b in chain:
                T = prompts[b].shape[0]
                if T > head.shape[0] or not torch.equal(prompts[b], head[:T]):
                    raise ValueError(f"chains: prompt {b} does not begin prompt {chain[0]}")
                last[b] = logits[T - 1]
                cache.pos[b] = T
                n = min(W - 1, T)
                if n == 0:  # a window of one byte keeps no past
                    continue
                for i, (k, v) in enumerate(kv):
                    cache.k[i][b, :, -n:], cache.v[i][b, :, -n:] = k[0, :, T - n:T], v[0, :, T - n:T]
                cache.valid[b, -n:] = True
        return last, cache

    @torch.no_grad()
    def step(self, ids: torch.Tensor, cache: "WindowCache") -> torch.Tensor:
        """The next byte of every row: ids [B] -> logits [B, 256]; ``cache`` moves on by one."""
        x = self.embed(ids.to(self.device))
        for i, layer in enumerate(self.layers):
            x = layer.step(x, cache.pos, cache, i)
        cache.valid = torch.cat([cache.valid, cache.valid.new_ones(ids.shape[0], 1)], 1)[:, 1:]  # as the keys
        cache.pos = cache.pos + 1
        return self._logits(x)


@dataclass
class WindowCache:
    """What :meth:`WindowLM.step` needs of the past: per layer the last ``window - 1`` rotated keys
    and values [B, H, window - 1, hd] (left-padded; ``valid`` [B, window - 1] marks real ones) and
    each row's next absolute position ``pos`` [B]."""
    k: list[torch.Tensor]
    v: list[torch.Tensor]
    valid: torch.Tensor
    pos: torch.Tensor

    @classmethod
    def empty(cls, cfg: WindowConfig, batch: int, device, dtype=torch.float32) -> "WindowCache":
        shape = (batch, cfg.n_heads, cfg.window - 1, cfg.d_model // cfg.n_heads)
        return cls([torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)],
                   [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)],
                   torch.zeros(batch, cfg.window - 1, dtype=torch.bool, device=device),
                   torch.zeros(batch, dtype=torch.long, device=device))


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
