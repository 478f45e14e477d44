"""Conversions of a trained MosaicLM that keep its weights: dropping a layer's memory.

A layer whose memory never contributes (its reads find nothing, so ``M(u)`` is exactly zero)
costs state and time for nothing. ``drop_memory`` removes that layer's memory table and the
projection rows that fed it (query, write key, value); every other weight is copied unchanged,
so wherever the dropped memory's output was zero the converted model computes the same logits,
opcodes and remaining state, bit for bit. ``memory_contribution`` measures whether that holds
on given byte streams before anyone ships a conversion.
"""
from __future__ import annotations

import torch

from engine.vm.config import ConfigError
from engine.vm.model import MosaicLM


def _kept_layers(model: MosaicLM, drop: list[int]) -> tuple[int, ...]:
    have = model.config.memory_layer_ids()
    for i in drop:
        if i not in have:
            raise ConfigError(f"memory_layers: layer {i} has no memory to drop (layers with memory: {list(have)})")
    kept = tuple(i for i in have if i not in drop)
    if not kept:
        raise ConfigError("memory_layers: dropping every memory leaves a model with no memory")
    return kept


def drop_memory(model: MosaicLM, layers: list[int]) -> MosaicLM:
    """A new model (same device, eval or train mode as ``model``) without the memory of
    ``layers``: its config's ``memory_layers`` loses them, each such block loses its
    ``memory`` module and the first ``2 * key_dim + value_dim`` output rows of ``proj``
    (query, next key, value: ``MosaicBlock.sizes``). Raises ConfigError for a layer without
    memory, or when no memory would be left."""
    cfg = model.config.replace(memory_layers=_kept_layers(model, list(layers)))
    cut = 2 * cfg.key_dim + cfg.value_dim
    state = {}
    for name, t in model.state_dict().items():
        parts = name.split(".")
        if parts[0] == "blocks" and int(parts[1]) in layers:
            if parts[2] == "memory":
                continue
            if parts[2] == "proj":  # weight [rows, d] or bias [rows]: the memory's rows come first
                t = t[cut:]
        state[name] = t
    device = next(model.parameters()).device
    new = MosaicLM(cfg).to(device)
    new.load_state_dict(state, strict=True)
    return new.train(model.training)


@torch.no_grad()
def memory_contribution(model: MosaicLM, ids: torch.Tensor, layers: list[int],
                        dropped: MosaicLM | None = None) -> dict:
    """How much the memory of ``layers`` adds on the streams ``ids`` [B, T] (long, bytes): ``model``
    against ``dropped`` (default: ``drop_memory(model, layers)``) over the same whole-stream forward.
    ``max_logit_diff`` (0.0 means the conversion changes nothing there), ``changed_positions``
    (share of positions whose logits differ at all), ``reads`` (READ/SCAN cycles of those layers)."""
    from engine.vm.isa import Opcode

    dropped = drop_memory(model, layers) if dropped is None else dropped
    was, was_dropped = model.training, dropped.training
    model.eval(), dropped.eval()
    try:
        out, other = model(ids), dropped(ids)
    finally:
        model.train(was), dropped.train(was_dropped)
    diff = (out.logits - other.logits).abs().amax(-1)  # [B, T]
    ops = out.aux["opcodes"][..., list(layers)]
    reads = int(((ops == int(Opcode.READ_MEM)) | (ops == int(Opcode.SCAN))).sum())
    return {"layers": list(layers), "max_logit_diff": float(diff.max()),
            "changed_positions": float((diff > 0).float().mean()), "reads": reads, "positions": int(diff.numel())}
