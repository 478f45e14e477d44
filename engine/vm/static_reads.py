"""Fixed read capacities: a training forward whose shapes never depend on the data.

``MosaicBlock.forward`` gathers memory only at the positions that READ or SCAN. Listing them
with ``nonzero`` gives a data-dependent shape: on a GPU the host waits for the count, and a
CUDA graph cannot hold the step. With a :class:`ReadCapacity` set on the model, each memory
layer lists at most ``reads`` READ and ``scans`` SCAN positions with ``nonzero_static``
(padding at the end, whose outputs are dropped), and the slot planner walks every position
as an event (the "chains" planner, whatever ``MOSAIC_PLANNER`` says). Logits, state and gradients are those of the exact
forward whenever the reads fit; each layer's ``read_overflow`` says, as a device tensor, when
they did not (the forward then ignored the reads past the capacity).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from engine.vm.isa import Opcode

_READ, _SCAN = int(Opcode.READ_MEM), int(Opcode.SCAN)


@dataclass(frozen=True)
class ReadCapacity:
    """At most ``reads`` READ and ``scans`` SCAN positions per memory layer and forward."""

    reads: int
    scans: int

    def __post_init__(self):
        if self.reads < 0 or self.scans < 0:
            raise ValueError(f"read capacities must be >= 0, got reads={self.reads}, scans={self.scans}")


def compact(mask: torch.Tensor, capacity: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flat ids (b * T + t) of the True positions of ``mask`` [B, T], in row-major order.

    capacity None: exactly those, [n] (``nonzero``: a GPU waits for n), and overflow None.
    Else [capacity] long, padded with B * T after the last True position, and a 0-dim bool
    tensor, True where more than ``capacity`` positions were True (the first ``capacity`` kept).
    """
    flat = mask.reshape(-1)
    if capacity is None:
        return flat.nonzero().squeeze(1), None
    ids = torch.nonzero_static(flat, size=capacity, fill_value=flat.shape[0]).squeeze(1)
    return ids, flat.sum() > capacity


def memory_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of ``model`` (a MosaicLM) that have a memory; none for another model (the
    window baseline)."""
    return [blk for blk in getattr(model, "blocks", ()) if getattr(blk, "memory", None) is not None]


def set_read_capacity(model: nn.Module, capacity: ReadCapacity | None) -> None:
    """Every memory layer of ``model`` reads at most ``capacity`` per forward (None: exactly)."""
    for blk in memory_blocks(model):
        blk.read_capacity = capacity
        blk.read_overflow = None


@contextmanager
def read_capacity(model: nn.Module, capacity: ReadCapacity | None):
    """Inside the ``with``: :func:`set_read_capacity`; the exact forward again after it."""
    set_read_capacity(model, capacity)
    try:
        yield
    finally:
        set_read_capacity(model, None)


def read_overflow(model: nn.Module) -> torch.Tensor | None:
    """A 0-dim bool tensor on the model's device: did the last forward of any memory layer hit its
    capacity? None when no capacity was set or no forward ran since. Reading it waits for the device."""
    flags = [blk.read_overflow for blk in memory_blocks(model) if blk.read_overflow is not None]
    if not flags:
        return None
    return torch.stack(flags).any()


class ReadCounter:
    """While attached (a ``with``), the most READ and SCAN positions any memory layer of ``model``
    took in one forward since; :attr:`need` is the capacity at which every such forward fits.
    Counting reads the counts back from the device after each forward."""

    def __init__(self, model: nn.Module):
        self.model, self.reads, self.scans, self.handles = model, 0, 0, []

    def _hook(self, blk, args, out):
        op = out[2]["opcodes"]
        self.reads = max(self.reads, int((op == _READ).sum()))
        self.scans = max(self.scans, int((op == _SCAN).sum()))

    def __enter__(self) -> "ReadCounter":
        self.handles = [blk.register_forward_hook(self._hook) for blk in memory_blocks(self.model)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    @property
    def need(self) -> ReadCapacity:
        return ReadCapacity(self.reads, self.scans)


@torch.no_grad()
def count_reads(model: nn.Module, ids: torch.Tensor, teacher=None) -> ReadCapacity:
    """The most READ and SCAN positions any memory layer takes on ``ids`` [B, T] (one forward,
    no grad, exact): the capacities at which that batch just fits."""
    with ReadCounter(model) as counter:
        model(ids, teacher=teacher)
    return counter.need


def larger(a: ReadCapacity, b: ReadCapacity) -> ReadCapacity:
    """The larger of two capacities, kind by kind."""
    return ReadCapacity(max(a.reads, b.reads), max(a.scans, b.scans))


def padded(capacity: ReadCapacity, headroom: float = 1.5, multiple: int = 64) -> ReadCapacity:
    """``capacity`` with room to spare (training moves the opcodes), rounded up to ``multiple``."""
    def up(n: int) -> int:
        return -(-int(n * headroom + multiple) // multiple) * multiple
    return ReadCapacity(up(capacity.reads), up(capacity.scans))
