"""VMState: everything a MOSAIC model carries between tokens, as one object.

Per layer: registers [B,K,R], conv buffer [B,k-1,d] (the last normalised inputs),
prev_key [B,dk] (the key projection of the previous token: the next write's key),
the memory table mem_keys [B,NB,W,dk], mem_values [B,NB,W,dv], mem_utility
[B,NB,W], mem_age [B,NB,W] (int64: the position of the write), mem_valid [B,NB,W]
bool, and the commitment ledger [B] (int64). Plus position [B] (int64 tokens seen).
Layers without memory hold tables with 0 buckets.

The size is fixed by the config and the batch size: it never grows with history.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from engine.vm.config import ModelConfig

FORMAT = "mosaic-vmstate-1"


class StateError(ValueError):
    """A state file that cannot be used (corrupt, truncated, another config); the message says why."""


@dataclass
class LayerState:
    registers: torch.Tensor
    conv: torch.Tensor
    prev_key: torch.Tensor
    mem_keys: torch.Tensor
    mem_values: torch.Tensor
    mem_utility: torch.Tensor
    mem_age: torch.Tensor
    mem_valid: torch.Tensor
    ledger: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _empty_layer(cfg: ModelConfig, layer: int, batch: int, device) -> LayerState:
    nb = cfg.buckets if cfg.has_memory(layer) else 0
    W = cfg.ways
    f32 = dict(dtype=torch.float32, device=device)
    return LayerState(
        registers=torch.zeros(batch, cfg.timescales, cfg.register_channels, **f32),
        conv=torch.zeros(batch, cfg.conv_kernel - 1, cfg.d_model, **f32),
        prev_key=torch.zeros(batch, cfg.key_dim, **f32),
        mem_keys=torch.zeros(batch, nb, W, cfg.key_dim, **f32),
        mem_values=torch.zeros(batch, nb, W, cfg.value_dim, **f32),
        mem_utility=torch.zeros(batch, nb, W, **f32),
        mem_age=torch.zeros(batch, nb, W, dtype=torch.long, device=device),
        mem_valid=torch.zeros(batch, nb, W, dtype=torch.bool, device=device),
        ledger=torch.zeros(batch, dtype=torch.long, device=device),
    )


class VMState:
    """The VM state of a batch of sequences. ``step`` mutates it in place; ``fork`` copies it."""

    def __init__(self, config: ModelConfig, layers: list[LayerState], position: torch.Tensor):
        self.config = config
        self.layers = layers
        self.position = position

    @classmethod
    def empty(cls, config: ModelConfig, batch_size: int, device=None) -> "VMState":
        """All registers zero, all memory empty, position 0."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        layers = [_empty_layer(config, i, batch_size, device) for i in range(config.n_layers)]
        return cls(config, layers, torch.zeros(batch_size, dtype=torch.long, device=device))

    @classmethod
    def cat(cls, states: list["VMState"]) -> "VMState":
        """One state whose batch is the given states' batches in order (new tensors)."""
        if not states:
            raise ValueError("cat: no states")
        cfg = states[0].config
        if any(s.config != cfg for s in states):
            raise ValueError("cat: states of different configs")
        layers = [LayerState(**{k: torch.cat([s.layers[i].tensors()[k] for s in states])
                                for k in states[0].layers[i].tensors()})
                  for i in range(cfg.n_layers)]
        return cls(cfg, layers, torch.cat([s.position for s in states]))

    # --- basic facts ---------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self.position.shape[0])

    @property
    def device(self) -> torch.device:
        return self.position.device

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Flat ``{"layers.i.name": tensor, "position": tensor}`` (the saved form)."""
        out = {"position": self.position}
        for i, layer in enumerate(self.layers):
            for name, t in layer.tensors().items():
                out[f"layers.{i}.{name}"] = t
        return out

    def nbytes(self) -> int:
        """Bytes held by all state tensors (fixed by config and batch size)."""
        return sum(t.numel() * t.element_size() for t in self.named_tensors().values())

    # --- copies and resets ----------------------------------------------------------------------
    def fork(self) -> "VMState":
        """An independent deep copy (consolidation and evaluation work on forks)."""
        layers = [LayerState(**{k: v.clone() for k, v in layer.tensors().items()}) for layer in self.layers]
        return VMState(self.config, layers, self.position.clone())

    def detach(self) -> "VMState":
        layers = [LayerState(**{k: v.detach() for k, v in layer.tensors().items()}) for layer in self.layers]
        return VMState(self.config, layers, self.position.detach())

    def reset(self) -> None:
        """Back to the empty state, in place (tensor addresses are kept)."""
        for t in self.named_tensors().values():
            t.zero_()

    def copy_(self, other: "VMState") -> None:
        """Overwrite this state with ``other``'s contents, in place (same config and batch size)."""
        mine, theirs = self.named_tensors(), other.named_tensors()
        for k, t in mine.items():
            t.copy_(theirs[k])

    def to(self, device) -> "VMState":
        layers = [LayerState(**{k: v.to(device) for k, v in layer.tensors().items()}) for layer in self.layers]
        return VMState(self.config, layers, self.position.to(device))

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the state as safetensors, atomically; metadata carries the config and a checksum."""
        from safetensors.torch import save_file
        from engine.store.atomic import atomic_write_with

        tensors = {k: t.detach().contiguous().cpu() for k, t in self.named_tensors().items()}
        meta = {
            "format": FORMAT,
            "config": self.config.to_json(),
            "fingerprint": self.config.fingerprint(),
            "sha256": _digest(tensors),
        }
        return atomic_write_with(path, lambda tmp: save_file(tensors, tmp, metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike, config: ModelConfig, device=None) -> "VMState":
        """Read a state saved by :meth:`save` for ``config``.

        Raises StateError with a clear message when the file is missing, truncated,
        corrupt, or belongs to another config.
        """
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise StateError(f"state file {p} does not exist")
        try:
            with safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:
            raise StateError(f"state file {p} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
        if meta.get("format") != FORMAT:
            raise StateError(f"state file {p} is not a MOSAIC VM state (format {meta.get('format')!r})")
        if not saved_for(meta, config):
            saved = meta.get("config", "?")
            raise StateError(
                f"state file {p} belongs to another model config (fingerprint {meta.get('fingerprint')} != "
                f"{config.fingerprint()}); saved config: {saved}")
        if meta.get("sha256") != _digest(tensors):
            raise StateError(f"state file {p} is corrupt (checksum mismatch)")
        batch = int(tensors["position"].shape[0]) if "position" in tensors else 0
        if batch < 1:
            raise StateError(f"state file {p} is corrupt (no position tensor)")
        saved = _saved_config(meta) if meta.get("fingerprint") != config.fingerprint() else None
        for i in dropped_memory(saved, config) if saved is not None else ():
            for name in ("mem_keys", "mem_values", "mem_utility", "mem_age", "mem_valid"):
                k = f"layers.{i}.{name}"
                if k in tensors:  # an empty table: this model has no memory in layer i
                    tensors[k] = tensors[k][:, :0]
        template = cls.empty(config, batch, device="meta")
        for k, t in template.named_tensors().items():
            got = tensors.get(k)
            if got is None or tuple(got.shape) != tuple(t.shape) or got.dtype != t.dtype:
                raise StateError(f"state file {p} is corrupt (tensor {k} missing or misshapen)")
        # Fresh, aligned, writable storage: step mutates it in place, and kernels may pick
        # different (non-bitwise-identical) paths for misaligned buffers.
        own = lambda t: t.to(device).clone()
        layers = []
        for i in range(config.n_layers):
            layers.append(LayerState(**{f.name: own(tensors[f"layers.{i}.{f.name}"]) for f in fields(LayerState)}))
        return cls(config, layers, own(tensors["position"]))


def saved_for(meta: dict, config: ModelConfig) -> bool:
    """Whether a state file's metadata (``VMState.save``) says it holds a state of ``config``: saved
    with the same config, or with one that differs only in read settings (``state_fingerprint``),
    or only in having memory in more layers (``dropped_memory``: those tables are left out)."""
    if meta.get("fingerprint") == config.fingerprint():
        return True
    saved = _saved_config(meta)
    if saved is None:
        return False
    return saved.state_fingerprint() == config.state_fingerprint() or bool(dropped_memory(saved, config))


def dropped_memory(saved: ModelConfig, config: ModelConfig) -> tuple[int, ...]:
    """The layers that have memory in ``saved`` and not in ``config``, where that is the only
    difference in what a state holds (``scripts/drop_memory.py`` made ``config`` from ``saved``);
    else ()."""
    have, keep = saved.memory_layer_ids(), config.memory_layer_ids()
    if saved.n_layers != config.n_layers or not set(keep) < set(have):
        return ()
    if saved.replace(memory_layers=keep).state_fingerprint() != config.state_fingerprint():
        return ()
    return tuple(i for i in have if i not in keep)


def _saved_config(meta: dict) -> ModelConfig | None:
    try:
        return ModelConfig.from_dict(json.loads(meta.get("config") or ""))
    except (ValueError, TypeError):  # not JSON, or not a config (ConfigError is a ValueError)
        return None


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        h.update(k.encode())
        h.update(json.dumps([str(t.dtype), list(t.shape)]).encode())
        h.update(t.cpu().numpy().tobytes())
    return h.hexdigest()
