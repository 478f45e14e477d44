"""The guard: a probe set scored before and after each adapter update.

Probes are byte sequences: held-out curriculum-like examples (what the model
must not forget) plus the session's own recent facts (what it is learning).
The score is the mean next-byte cross-entropy over them. An update is reverted
by the learner when the total probe loss gets worse than ``before * (1 + tolerance)``,
or when the held-out part drifts above ``reference * (1 + tolerance)``, where the
reference is the held-out loss the guard first measured: a budget for forgetting
over the whole session, so many small accepted updates cannot add up to more.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def sequence_loss(model: nn.Module, ids: Sequence[int] | torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-byte cross-entropy of one sequence, from a fresh state.

    ids: [T] byte ids (T >= 2); weights: optional [T-1] per-target weights.
    Returns a 0-d tensor (with gradients if grad mode is on).
    """
    x = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    device = _device_of(model)
    x = x.to(device)
    logits = model(x).logits  # [1, T, 256]
    losses = F.cross_entropy(logits[0, :-1].float(), x[0, 1:], reduction="none")  # [T-1]
    if weights is None:
        return losses.mean()
    w = weights.to(losses)
    return (losses * w).sum() / w.sum().clamp_min(1e-8)


def batch_loss(model: nn.Module, windows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Mean next-byte loss over ``windows`` (each a list of byte ids), batched by equal length.

    Every target byte counts once, so long windows weigh more than short ones.
    Returns a 0-d tensor.
    """
    device = _device_of(model)
    by_len: dict[int, list[Sequence[int]]] = {}
    for w in windows:
        if len(w) >= 2:
            by_len.setdefault(len(w), []).append(w)
    if not by_len:
        raise ValueError("no window has 2 or more bytes to learn from")
    total = torch.zeros((), device=device)
    count = 0
    for length, group in sorted(by_len.items()):
        x = torch.tensor(group, dtype=torch.long, device=device)  # [B, T]
        logits = model(x).logits  # [B, T, 256]
        total = total + F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1), reduction="sum")
        count += x.shape[0] * (length - 1)
    return total / count


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@dataclass(frozen=True)
class ProbeScore:
    """Mean probe losses: ``total`` is what the guard compares; parts for the report."""

    total: float
    heldout: float | None
    facts: float | None

    def to_dict(self) -> dict:
        return {"total": self.total, "heldout": self.heldout, "facts": self.facts}


class Guard:
    """Scores the probe set and decides whether an update may stay.

    heldout: byte sequences the model must keep predicting well.
    max_facts: how many of the session's recent facts to keep as probes.
    tolerance: relative worsening of the total probe loss that is still accepted.
    """

    def __init__(self, heldout: Iterable[Sequence[int]] = (), *, max_facts: int = 16,
                 tolerance: float = 0.02) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.heldout: list[list[int]] = [list(p) for p in heldout if len(p) >= 2]
        self.facts: deque[list[int]] = deque(maxlen=max_facts)
        self.tolerance = tolerance
        self.reference: float | None = None  # held-out loss at the first score (the base)

    def add_fact(self, ids: Sequence[int]) -> None:
        """Remember a recent fact of the session (byte ids) as a probe."""
        if len(ids) >= 2:
            self.facts.append(list(ids))

    @property
    def empty(self) -> bool:
        return not self.heldout and not self.facts

    @torch.no_grad()
    def score(self, model: nn.Module) -> ProbeScore:
        """Mean loss of the held-out probes and of the fact probes; total = mean of the parts present."""
        heldout = float(batch_loss(model, self.heldout)) if self.heldout else None
        facts = float(batch_loss(model, list(self.facts))) if self.facts else None
        parts = [v for v in (heldout, facts) if v is not None]
        total = sum(parts) / len(parts) if parts else 0.0
        if self.reference is None and heldout is not None and math.isfinite(heldout):
            self.reference = heldout
        return ProbeScore(total=total, heldout=heldout, facts=facts)

    def accepts(self, before: ProbeScore, after: ProbeScore) -> bool:
        """True if ``after`` is finite, its total not worse than ``before`` beyond the tolerance,
        and its held-out part within the tolerance of the reference (the forgetting budget)."""
        if not math.isfinite(after.total):
            return False
        if after.total > before.total * (1.0 + self.tolerance) + 1e-9:
            return False
        if after.heldout is not None and self.reference is not None:
            return after.heldout <= self.reference * (1.0 + self.tolerance) + 1e-9
        return True
