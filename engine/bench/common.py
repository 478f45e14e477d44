"""What every benchmark returns, and how it picks its device."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import torch


@dataclass
class Report:
    """A benchmark's result: one dict per measured row (always with 'path', 'batch' and
    'tokens_per_s' where a token rate applies), plus notes such as 'no GPU: naive path'."""

    title: str
    device_name: str
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            for k in row:
                if k not in cols and k != "device":
                    cols.append(k)
        return cols


def gpu_usable() -> bool:
    """True where torch sees a CUDA device."""
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def pick_device(name: str | None) -> torch.device:
    """The device named (validated), or cuda when usable, else cpu."""
    if name is None:
        return torch.device("cuda" if gpu_usable() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: {e}") from None
    if dev.type == "cuda" and not gpu_usable():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is usable here")
    if dev.type not in ("cuda", "cpu"):
        raise ValueError(f"device {name!r} is not supported (use cpu or cuda)")
    return dev


def triton_usable(device: torch.device) -> bool:
    """True where Triton kernels can run on ``device`` (a CUDA GPU with triton installed)."""
    if device.type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def env_set(name: str, value: str):
    """Set the environment variable ``name`` to ``value`` for the duration (the code it steers reads
    it per call: MOSAIC_KERNELS, MOSAIC_PLANNER); its earlier value, or absence, is restored."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
