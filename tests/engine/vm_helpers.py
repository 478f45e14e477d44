"""Shared helpers for the VM tests: random models, teacher schedules, state comparison."""
from __future__ import annotations

import torch

from engine.vm import ModelConfig, MosaicLM, Opcode, Teacher


def make_model(seed: int, preset: str = "tiny", **changes) -> MosaicLM:
    torch.manual_seed(seed)
    cfg = ModelConfig.preset(preset).replace(**changes) if changes else ModelConfig.preset(preset)
    model = MosaicLM(cfg).eval()
    # A fresh model's heads are near zero; spread them so free decisions vary from token to token.
    with torch.no_grad():
        for blk in model.blocks:
            blk.proj.weight.mul_(20.0)
            if blk.memory is not None:  # and make memory reads move the logits visibly
                blk.memory.out.weight.mul_(50.0)
    return model


def busy_teacher(B: int, T: int, cfg: ModelConfig, seed: int, free: float = 0.25) -> Teacher:
    """Mostly WRITE (fills buckets, forces evictions), with CLEAR, READ, SCAN, the rest, some free."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([1, 3, 6, 1.5, 0.5, 0.5, 0.5, 1.5, 1, 0.5])
    ops = torch.multinomial(weights, B * T, replacement=True, generator=g).view(B, T)
    ops[torch.rand(B, T, generator=g) < free] = -1
    gate = torch.randint(-1, 2, (B, T), generator=g)
    gate[ops == int(Opcode.WRITE_MEM)] = torch.where(torch.rand(B, T, generator=g) < 0.85, 1, -1)[ops == int(Opcode.WRITE_MEM)]
    bucket = torch.randint(0, cfg.buckets, (B, T), generator=g)
    bucket[torch.rand(B, T, generator=g) < free] = -1
    return Teacher(opcodes=ops, write_gate=gate, bucket=bucket)


def step_through(model: MosaicLM, ids: torch.Tensor, state, teacher: Teacher | None = None):
    """Step token by token; returns (logits [B,T,V], opcodes [B,T,L], list of info dicts)."""
    logits, ops, infos = [], [], []
    for t in range(ids.shape[1]):
        out = model.step(ids[:, t], state, None if teacher is None else teacher.at(t))
        logits.append(out.logits)
        ops.append(out.opcodes)
        infos.append(out.info)
    return torch.stack(logits, 1), torch.stack(ops, 1), infos


def assert_same_state(a, b, atol: float = 1e-5) -> None:
    ta, tb = a.named_tensors(), b.named_tensors()
    assert ta.keys() == tb.keys()
    for k in ta:
        x, y = ta[k], tb[k]
        assert x.shape == y.shape and x.dtype == y.dtype, k
        if x.dtype.is_floating_point:
            diff = (x - y).abs().max().item() if x.numel() else 0.0
            assert diff <= atol, f"{k}: max abs diff {diff}"
        else:
            assert torch.equal(x, y), f"{k} differs"
