"""Timing helpers shared by the benchmarks: medians of many runs, device events on a GPU."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def sync(device: torch.device | str) -> None:
    """Wait for queued work on ``device`` (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device | str = "cpu", *,
                   warmup: int = 3, iters: int = 20, min_time: float = 0.0) -> float:
    """Median wall time of one call of ``fn`` in seconds, after ``warmup`` calls.

    On a GPU each call is bracketed by CUDA events, so the figure is device time of the
    queued work (launches included). ``min_time`` repeats until that many seconds passed.
    """
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    sync(dev)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < iters or time.perf_counter() - start_all < min_time:
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        if len(times) > 100_000:
            break
    return statistics.median(times)


def copy_bandwidth(device: torch.device | str, nbytes: int = 1 << 30) -> float:
    """Measured device-to-device copy bandwidth in bytes/s (bytes read + bytes written)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        nbytes = min(nbytes, 64 << 20)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    t = median_seconds(lambda: dst.copy_(src), dev, warmup=2, iters=10)
    return 2 * nbytes / t


def device_name(device: torch.device | str) -> str:
    """A human name for ``device`` (the GPU's name, or 'cpu (N threads)')."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads)"
