"""Which implementation of a hot op runs: ``MOSAIC_KERNELS=auto|naive|triton``.

Every op lives in ``kernels/<op>/``: ``naive.py`` is the float32 reference (the
spec), ``triton.py`` its Triton twin exposing the *same function names*, and
``__init__.py`` the public function, which asks :func:`use_triton` per call.

``auto`` picks Triton only where a GPU driver exists and the tensors live on it;
``triton`` forces it (on CPU tensors that needs ``TRITON_INTERPRET=1``);
``naive`` never uses it. A Triton module that is missing or fails to import
always falls back to naive.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import torch

MODES = ("auto", "naive", "triton")
_twins: dict[str, ModuleType | None] = {}
_import_errors: dict[str, str] = {}


def mode() -> str:
    """The requested mode from ``MOSAIC_KERNELS`` (default ``auto``); unknown values raise ValueError."""
    value = os.environ.get("MOSAIC_KERNELS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"MOSAIC_KERNELS must be one of {', '.join(MODES)}, got {value!r}")
    return value


def gpu_driver() -> bool:
    """True when a CUDA (or ROCm) driver and device are usable."""
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken driver install counts as none
        return False


def triton_twin(op: str) -> ModuleType | None:
    """``kernels.<op>.triton`` or None when it is missing or fails to import (cached)."""
    if op not in _twins:
        try:
            _twins[op] = importlib.import_module(f"kernels.{op}.triton")
        except Exception as exc:  # ImportError, or triton itself failing to load
            _twins[op] = None
            _import_errors[op] = f"{type(exc).__name__}: {exc}"
    return _twins[op]


def use_triton(op: str, *tensors: torch.Tensor) -> ModuleType | None:
    """The Triton twin module to call for ``op`` on these tensors, or None for naive."""
    m = mode()
    if m == "naive":
        return None
    if m == "auto" and not (gpu_driver() and all(t.is_cuda for t in tensors)):
        return None
    return triton_twin(op)


def report(ops: tuple[str, ...] = ("scan", "memory", "chains", "elementwise")) -> dict:
    """What ``auto`` (or the forced mode) picks here and why, for ``mosaic info`` / ``mosaic bench``.

    Returns ``{"mode", "picked", "reason", "ops": {op: "naive"|"triton"}}``.
    """
    m = mode()
    if m == "naive":
        picked, reason = "naive", "naive: MOSAIC_KERNELS=naive"
    elif m == "auto" and not gpu_driver():
        picked, reason = "naive", "naive: no GPU driver"
    else:
        picked, reason = "triton", ("triton: GPU driver found" if m == "auto" else "triton: MOSAIC_KERNELS=triton")
    per_op = {}
    for op in ops:
        if picked == "triton" and triton_twin(op) is None:
            per_op[op] = "naive"
            reason += f"; {op}: twin unavailable ({_import_errors.get(op, 'missing')}), naive used"
        else:
            per_op[op] = picked
    return {"mode": m, "picked": picked, "reason": reason, "ops": per_op}
