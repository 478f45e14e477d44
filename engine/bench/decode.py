"""``mosaic bench decode``: decoding tokens/s at batch 1 and 64, for each decode path.

Paths: ``step naive`` (eager ``model.step``; it scores its slots itself, so no Triton twin
runs in it), ``graphed naive`` (the naive step captured in one CUDA graph), ``cuda graph +
triton`` (graphed, with the Triton table kernels for the memory), optionally ``cuda graph +
torch.compile``, and ``fast`` (engine.vm.fastpath's pick: on a GPU the fused decode kernels
in a CUDA graph, on a CPU at batch 1 the NumPy step). Every path of one run uses the same
model and random ids; ratios (``vs_step``, ``vs_graphed_naive``) are taken within the run.
"""
from __future__ import annotations

from typing import Callable

import torch

from engine.bench.common import Report, env_set
from engine.bench.timing import copy_bandwidth, device_name, median_seconds


def kernels_mode(mode: str):
    """Set MOSAIC_KERNELS for the duration (the backends read it per call)."""
    return env_set("MOSAIC_KERNELS", mode)


def load_bench_model(model: str | None, device: torch.device):
    """A fresh model of the preset named (default: "default"; random weights time the same),
    or the saved model ``model`` names (engine.vm.checkpoint.resolve_model)."""
    from engine.vm import ModelConfig, MosaicLM
    from engine.vm.config import PRESETS

    name = model or "default"
    if name in PRESETS:
        torch.manual_seed(0)
        m = MosaicLM(ModelConfig.preset(name))
    else:
        from engine.vm.checkpoint import resolve_model
        m = resolve_model(model)
    return m.to(device).eval()


def _time_stepper(step: Callable[[torch.Tensor], object], batch: int, device, tokens: int) -> float:
    """Seconds per step: the median over 3 runs of ``tokens`` back-to-back steps (no sync between)."""
    ids = torch.randint(0, 256, (tokens, batch), device=device)
    for t in range(min(5, tokens)):
        step(ids[t])

    def run():
        for t in range(tokens):
            step(ids[t])
    return median_seconds(run, device, warmup=0, iters=3) / tokens


def step_bytes(net, batch: int) -> int:
    """The fewest bytes one decode step must move: every weight read once (float32), plus per
    sequence and layer the state it reads and writes (registers, conv buffer, prev_key, the
    probed ways' keys / values / valid flags, the written bucket), plus ids and logits."""
    cfg = net.config
    weights = sum(p.numel() for p in net.parameters()) * 4
    per_seq = 8 + cfg.vocab_size * 4
    for i in range(cfg.n_layers):
        per_seq += 2 * 4 * (cfg.timescales * cfg.register_channels + (cfg.conv_kernel - 1) * cfg.d_model)
        if cfg.has_memory(i):
            per_seq += 2 * 4 * cfg.key_dim
            per_seq += cfg.scan_probes * cfg.ways * (4 * (cfg.key_dim + cfg.value_dim) + 1)
            per_seq += cfg.ways * (4 * (cfg.key_dim + 1) + 8 + 1) + 4 * (cfg.key_dim + cfg.value_dim) + 17
    return weights + batch * per_seq


def _row(path: str, batch: int, seconds: float, **extra) -> dict:
    return {"path": path, "batch": batch, "tokens_per_s": batch / seconds, "us_per_step": seconds * 1e6, **extra}


def bench_decode(device: torch.device, model: str | None = None, tokens: int = 64,
                 batches: tuple[int, ...] = (1, 64), compile_path: bool = False) -> Report:
    """Time each decode path at each batch size; see the module docstring.

    ``compile_path`` adds the torch.compile'd step captured in a CUDA graph (GPU only; the
    compilation takes a minute or more)."""
    from engine.vm import fastpath

    report = Report("mosaic bench decode", device_name(device))
    net = load_bench_model(model, device)
    report.notes.append(f"model: {model or 'default'} ({sum(p.numel() for p in net.parameters()):,} parameters; "
                        "a preset name gives fresh random weights, which time the same)")
    gpu = device.type == "cuda"
    if not gpu:
        report.notes.append("no GPU: eager naive step and the CPU fast path only")
    eager_tokens = max(1, min(tokens, 50))  # eager steps are slow: fewer suffice for a median
    bw = copy_bandwidth(device)
    report.notes.append(f"measured copy bandwidth {bw / 1e9:,.0f} GB/s; bytes/token = (weights once + the "
                        "state a token touches) / batch; bw_share = those bytes per second / copy bandwidth")
    for batch in batches:
        base = None
        with torch.no_grad():
            with kernels_mode("naive"):
                state = net.init_state(batch, device=device)
                t = _time_stepper(lambda ids: net.step(ids, state), batch, device, eager_tokens)
                base = t
                report.rows.append(_row("step naive", batch, t, vs_step=1.0))
        graphed_naive = None
        if gpu:
            try:
                with kernels_mode("naive"):
                    g = fastpath.GraphedStep(net, net.init_state(batch, device=device))
                    t = _time_stepper(g.step, batch, device, tokens)
                graphed_naive = t
                report.rows.append(_row("graphed naive", batch, t, vs_step=base / t))
            except Exception as e:
                report.notes.append(f"graphed naive, batch {batch}: {type(e).__name__}: {e}")
        if gpu and compile_path:
            try:
                with kernels_mode("naive"):
                    c = fastpath.CompiledGraphedStep(net, net.init_state(batch, device=device))
                t = _time_stepper(c.step, batch, device, tokens)
                extra = {"vs_step": base / t}
                if graphed_naive:
                    extra["vs_graphed_naive"] = graphed_naive / t
                report.rows.append(_row(f"fast ({c.name})", batch, t, **extra))
            except Exception as e:
                report.notes.append(f"compiled graph, batch {batch}: {type(e).__name__}: {str(e)[:200]}")
        if gpu:  # the intermediate path: graph + Triton memory kernels, the rest unfused
            try:
                g = fastpath.fast_stepper(net, net.init_state(batch, device=device), prefer="triton-graph")
                t = _time_stepper(g.step, batch, device, tokens)
                extra = {"vs_step": base / t}
                if graphed_naive:
                    extra["vs_graphed_naive"] = graphed_naive / t
                report.rows.append(_row(g.name, batch, t, **extra))
            except Exception as e:
                report.notes.append(f"graph + triton, batch {batch}: {type(e).__name__}: {str(e)[:200]}")
        try:
            fast = fastpath.fast_stepper(net, net.init_state(batch, device=device))
            for why in getattr(fast, "skipped", []):
                report.notes.append(f"batch {batch}: fast path skipped {why}")
            if fast.name == "eager":
                report.notes.append(f"batch {batch}: no fast path on {device.type} (the eager step is the best)")
                continue
            t = _time_stepper(fast.step, batch, device, tokens)
            extra = {"vs_step": base / t}
            if graphed_naive:
                extra["vs_graphed_naive"] = graphed_naive / t
            report.rows.append(_row(f"fast ({fast.name})", batch, t, **extra))
        except Exception as e:
            report.notes.append(f"fast path, batch {batch}: {type(e).__name__}: {e}")
    for row in report.rows:
        nbytes = step_bytes(net, row["batch"])
        row["bytes_per_token"] = nbytes / row["batch"]
        row["bw_share"] = nbytes / (row["us_per_step"] * 1e-6) / bw
    return report
