"""Helpers for testing a kernel twin against its reference.

The comparison follows flash-linear-attention: the error is reported as the RMS of the
difference over the RMS of the reference, and the failing tensor is named. Outputs that
a kernel must fill are pre-filled with NaN, so an element it never writes fails.
"""
from __future__ import annotations

import torch


def rms(x: torch.Tensor) -> float:
    """Root mean square of ``x`` in float64 (0.0 for an empty tensor)."""
    if x.numel() == 0:
        return 0.0
    return x.detach().double().pow(2).mean().sqrt().item()


def error_ratio(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """RMS(actual - expected) / RMS(expected); an absolute RMS when the reference is ~0."""
    diff = rms(actual.detach().double() - expected.detach().double())
    base = rms(expected)
    return diff / base if base > 1e-12 else diff


def assert_close(name: str, actual: torch.Tensor, expected: torch.Tensor, ratio: float = 1e-4) -> None:
    """Fail, naming ``name``, when shapes differ, ``actual`` holds NaN/inf the reference
    does not, or the RMS error ratio exceeds ``ratio``."""
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {tuple(actual.shape)} != reference {tuple(expected.shape)}")
    a, e = actual.detach().float().cpu(), expected.detach().float().cpu()
    bad = ~torch.isfinite(a) & torch.isfinite(e)
    if bad.any():
        raise AssertionError(f"{name}: {int(bad.sum())} non-finite element(s) (unwritten output?) "
                             f"first at {tuple(bad.nonzero()[0].tolist())}")
    err = error_ratio(a, e)
    max_diff = (a - e).abs().max().item() if a.numel() else 0.0
    if not err <= ratio:
        raise AssertionError(f"{name}: RMS error ratio {err:.3e} > {ratio:.1e} (max abs diff {max_diff:.3e})")


def nan_like(x: torch.Tensor) -> torch.Tensor:
    """A tensor shaped like ``x`` filled with NaN (for outputs a kernel must fill)."""
    return torch.full_like(x, float("nan"))


def nan_empty(*shape: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``torch.empty`` that is filled with NaN, so unwritten output shows up in tests."""
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def seeded(seed: int, device=None) -> torch.Generator:
    """A generator with a fixed seed on ``device`` (CPU by default)."""
    g = torch.Generator(device=device or "cpu")
    g.manual_seed(seed)
    return g


def randn(*shape: int, seed: int = 0, device=None, requires_grad: bool = False,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal input of ``shape``, reproducible by ``seed``."""
    x = torch.randn(*shape, generator=seeded(seed), dtype=torch.float32).to(device=device, dtype=dtype)
    return x.requires_grad_(requires_grad)


def grads_of(loss: torch.Tensor, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``loss`` w.r.t. ``inputs`` (zeros where an input got none)."""
    gs = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, gs)]


class poison_empty:
    """Context manager: while active, floating ``torch.empty`` / ``empty_like`` results are
    NaN-filled, so any output element a kernel fails to write shows up as NaN (fla's trick)."""

    def __enter__(self):
        self._empty, self._empty_like = torch.empty, torch.empty_like

        def empty(*args, **kwargs):
            t = self._empty(*args, **kwargs)
            if t.is_floating_point():
                t.fill_(float("nan"))
            return t

        def empty_like(*args, **kwargs):
            t = self._empty_like(*args, **kwargs)
            if t.is_floating_point():
                t.fill_(float("nan"))
            return t

        torch.empty, torch.empty_like = empty, empty_like
        return self

    def __exit__(self, *exc):
        torch.empty, torch.empty_like = self._empty, self._empty_like
        return False
