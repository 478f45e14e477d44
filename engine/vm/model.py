"""MosaicLM: byte embedding, N MOSAIC blocks, LM head; ``forward`` (a sequence) and ``step`` (one token)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.vm.block import MosaicBlock
from engine.vm.config import ModelConfig
from engine.vm.state import VMState


@dataclass
class Teacher:
    """Teacher labels that override the model's own decisions where >= 0 (-1 = free).

    For ``forward``: tensors [B, T]; for ``step``: [B]. ``opcodes``: an Opcode value (all
    layers); ``write_gate``: 0/1; ``bucket``: the write bucket and the first read probe of
    every memory layer. Gradients still flow through the model's own heads by the STE.
    """

    opcodes: torch.Tensor | None = None
    write_gate: torch.Tensor | None = None
    bucket: torch.Tensor | None = None

    def at(self, t: int) -> "Teacher":
        """The labels of position t (for stepping through a sequence)."""
        pick = lambda x: None if x is None else x[:, t]
        return Teacher(pick(self.opcodes), pick(self.write_gate), pick(self.bucket))

    def slice(self, a: int, b: int) -> "Teacher":
        pick = lambda x: None if x is None else x[:, a:b]
        return Teacher(pick(self.opcodes), pick(self.write_gate), pick(self.bucket))

    def _check(self, shape: tuple[int, ...], device) -> "Teacher":
        out = {}
        for name in ("opcodes", "write_gate", "bucket"):
            x = getattr(self, name)
            if x is None:
                out[name] = None
                continue
            x = torch.as_tensor(x, device=device).long()
            if tuple(x.shape) != tuple(shape):
                raise ValueError(f"teacher.{name}: expected shape {tuple(shape)}, got {tuple(x.shape)}")
            out[name] = x
        return Teacher(**out)


    def _check_ranges(self, buckets: int) -> None:
        """Labels outside their range raise one clear ValueError (forward only: it syncs)."""
        limits = {"opcodes": 10, "write_gate": 2, "bucket": buckets}
        for name, high in limits.items():
            x = getattr(self, name)
            if x is not None and x.numel() and (int(x.min()) < -1 or int(x.max()) >= high):
                raise ValueError(f"teacher.{name}: labels must be -1 (free) or in [0, {high}), "
                                 f"got values in [{int(x.min())}, {int(x.max())}]")


@dataclass
class ForwardOutput:
    logits: torch.Tensor                    # [B, T, 256]
    state: VMState | None                   # after the sequence, detached (None: keep_state=False)
    aux: dict[str, torch.Tensor] = field(default_factory=dict)  # per-layer, stacked on dim 2


@dataclass
class StepOutput:
    logits: torch.Tensor                    # [B, 256]
    opcodes: torch.Tensor                   # [B, L] long
    info: dict[str, torch.Tensor] = field(default_factory=dict)


class MosaicLM(nn.Module):
    """The MOSAIC language model. See DESIGN.md §3 and docs/INTERFACES.md."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(MosaicBlock(config, i) for i in range(config.n_layers))
        self.norm = nn.Parameter(torch.ones(config.d_model))
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.embed.weight, std=1.0)
        # Residual output projections start small so a fresh deep stack stays near identity.
        scale = (2 * self.config.n_layers) ** -0.5
        for blk in self.blocks:
            for lin in (blk.mlp_out, blk.registers.readout) + ((blk.memory.out,) if blk.memory else ()):
                lin.weight.data.mul_(scale)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def init_state(self, batch_size: int, device=None) -> VMState:
        """A fresh VMState for ``batch_size`` sequences: registers zero, memory empty."""
        return VMState.empty(self.config, batch_size, device=self.device if device is None else device)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.rms_norm(x, (x.shape[-1],), self.norm, self.config.norm_eps))

    def forward(self, ids: torch.Tensor, state: VMState | None = None, teacher: Teacher | None = None,
                keep_state: bool = True) -> ForwardOutput:
        """A whole sequence, parallel over time; the input ``state`` is not modified.

        ids: LongTensor [B, T]. Returns logits [B, T, 256], the state after the sequence
        (detached; None with ``keep_state=False``, which training uses: it skips gathering the
        final memory tables and copying registers that nothing reads) and aux: opcode_logits
        [B,T,L,10], opcodes [B,T,L], write_gate_logits [B,T,L], utility_logits [B,T,L],
        commit_logits [B,T,L,3], keys/queries [B,T,L,dk], router_write_logits/router_read_logits
        [B,T,L,NB] (zeros for layers without memory).
        """
        if ids.dim() != 2:
            raise ValueError(f"ids: expected [B, T], got shape {tuple(ids.shape)}")
        B, T = ids.shape
        if T == 0:
            raise ValueError("ids: empty sequence")
        if state is None:
            state = self.init_state(B) if keep_state else self._fresh_state(B, ids.device)
        if state.batch_size != B:
            raise ValueError(f"state has batch size {state.batch_size}, ids have {B}")
        t = Teacher() if teacher is None else teacher._check((B, T), ids.device)
        if not (ids.is_cuda and torch.cuda.is_current_stream_capturing()):  # a CUDA graph cannot read back
            t._check_ranges(self.config.buckets)
        # index_select: its backward is one index_add, where the embedding's sorts the ids on a GPU
        x = self.embed.weight.index_select(0, ids.reshape(-1)).view(B, T, -1)
        layers, auxes = [], []
        for blk, st in zip(self.blocks, state.layers):
            x, new, aux = blk(x, st, state.position, t.opcodes, t.write_gate, t.bucket, keep_state=keep_state)
            layers.append(new)
            auxes.append(aux)
        logits = self._logits(x)
        aux = {}
        for name in auxes[0]:
            parts = [a[name] for a in auxes]
            if name.startswith("router"):
                nb = max(p.shape[-1] for p in parts)
                parts = [p if p.shape[-1] == nb else p.new_zeros(B, T, nb) for p in parts]
            aux[name] = torch.stack(parts, dim=2)
        new_state = VMState(self.config, layers, state.position + T) if keep_state else None
        return ForwardOutput(logits=logits, state=new_state, aux=aux)

    def _fresh_state(self, batch: int, device) -> VMState:
        """An empty state for a forward that keeps none, made once per (batch, device) and only
        ever read (forward does not modify its input state, and with keep_state=False it returns
        none that could alias it): a training step then allocates no zeroed tables. Entries are
        kept for the model's life: a captured CUDA graph reads them at fixed addresses."""
        cache = self.__dict__.setdefault("_fresh", {})
        key = (batch, str(device))
        if key not in cache:
            cache[key] = self.init_state(batch, device=device)
        return cache[key]

    @torch.no_grad()
    def step(self, ids: torch.Tensor, state: VMState, teacher: Teacher | None = None) -> StepOutput:
        """One token per sequence; mutates ``state`` in place (O(1) work and memory).

        ids: LongTensor [B]; teacher: labels of shape [B] or None. Returns logits [B, 256],
        opcodes [B, L] and info: read_buckets [B,L,P], write_slot / cleared_slot [B,L,2]
        (bucket, way; -1 if none), router_entropy [B,L], commit_delta [B,L].
        """
        B = ids.shape[0]
        if ids.dim() != 1 or B != state.batch_size:
            raise ValueError(f"ids: expected shape [{state.batch_size}] (the state's batch), got {tuple(ids.shape)}")
        t = Teacher() if teacher is None else teacher._check((B,), ids.device)
        x = self.embed(ids)
        pos = state.position
        ops, infos, deltas = [], [], []
        for blk, st in zip(self.blocks, state.layers):
            x, op, info, delta = blk.step_(x, st, pos, t.opcodes, t.write_gate, t.bucket)
            ops.append(op)
            infos.append(info)
            deltas.append(delta)
        state.position.add_(1)
        logits = self._logits(x)
        info = _stack_info(infos, B, self.config.probes, ids.device)
        info["commit_delta"] = torch.stack(deltas, dim=1)
        return StepOutput(logits=logits, opcodes=torch.stack(ops, dim=1), info=info)


def _stack_info(infos: list, B: int, P: int, device) -> dict[str, torch.Tensor]:
    """Stack per-layer step info on dim 1, filling layers without memory with -1 / 0."""
    blank = {
        "read_buckets": torch.full((B, P), -1, dtype=torch.long, device=device),
        "write_slot": torch.full((B, 2), -1, dtype=torch.long, device=device),
        "cleared_slot": torch.full((B, 2), -1, dtype=torch.long, device=device),
        "router_entropy": torch.zeros(B, device=device),
    }
    return {k: torch.stack([(i[k] if i is not None else blank[k]) for i in infos], dim=1) for k in blank}
