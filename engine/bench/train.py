"""``mosaic bench train``: training tokens/s of MOSAIC against an equal-size windowed transformer.

One training step = forward over [batch, length] byte ids, next-byte cross-entropy,
backward, AdamW update. MOSAIC runs with the naive kernels and (on a GPU) the Triton
twins; the baseline is the trainer's own window transformer (engine.train.window), sized
to MOSAIC's width, depth and parameter count, attention through PyTorch's SDPA over a
window equal to the training length.
All paths share device, precision (float32, TF32 matmuls on a GPU), batch, length and optimizer
(AdamW, the fused one on a GPU).
MOSAIC rows also give the time of the slot-planning pass per token and as a share of the step
(batched on the device by default; ``MOSAIC_PLANNER=host`` times the NumPy reference walk, while
the device waits for the host; on a GPU ``MOSAIC_PLANNER=chains`` the Triton chain walker).
On a GPU both models also run their whole step as one CUDA graph (engine.train.graph_step; MOSAIC
with fixed read capacities, engine.vm.static_reads), and ``vs_window`` compares every MOSAIC
row with the faster of the baseline's two paths.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from engine.bench.common import Report, env_set, triton_usable
from engine.bench.decode import kernels_mode, load_bench_model
from engine.bench.timing import device_name, median_seconds
from engine.train.window import WindowLM, matched_window_config


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _train_step_fn(net: torch.nn.Module, ids: torch.Tensor, logits_of):
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=ids.is_cuda)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = logits_of(net, ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
    return step


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """A training forward's logits: no final state (MosaicLM's keep_state; the baseline ignores it)."""
    return model(ids, keep_state=False).logits


def planner_mode(planner: str):
    """Inside the ``with``: ``MOSAIC_PLANNER`` = ``planner`` (device | host | chains); restored after."""
    return env_set("MOSAIC_PLANNER", planner)


@contextmanager
def timed_planning():
    """Inside the ``with``: a one-element list accumulating the seconds the blocks spend in the
    slot-planning pass (``engine.vm.block.plan_slots``); the blocks' own reference is restored after."""
    import engine.vm.block as block
    spent, orig = [0.0], block.plan_slots

    def timed(**kw):
        t = time.perf_counter()
        try:
            return orig(**kw)
        finally:
            spent[0] += time.perf_counter() - t
    block.plan_slots = timed
    try:
        yield spent
    finally:
        block.plan_slots = orig


def bench_train(device: torch.device, model: str | None = None, batch: int | None = None,
                length: int | None = None, iters: int | None = None) -> Report:
    """Time training steps of each path; see the module docstring."""
    gpu = device.type == "cuda"
    batch = batch or (16 if gpu else 2)
    length = length or (512 if gpu else 128)
    iters = iters or (10 if gpu else 3)
    report = Report("mosaic bench train", device_name(device))
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        report.notes.append("no GPU: naive kernels only, small batch and length, no CUDA-graph rows")
    report.notes.append(f"batch {batch} x length {length}; float32 (TF32 matmuls on GPU); AdamW")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (batch, length + 1), generator=g).to(device)
    tokens = batch * length

    net = load_bench_model(model, device).train()
    size = n_params(net)
    kernels = ["naive"] + (["triton"] if gpu and triton_usable(device) else [])
    # every kernel path with the batched planner; the fastest one also with the host walk and
    # (on a GPU) with the chains walker, one Triton program per bucket chain
    modes = [(k, "device") for k in kernels] + [(kernels[-1], "host")] + ([(kernels[-1], "chains")] if gpu else [])
    times: dict[str, float] = {}
    for mode, planner in modes:
        path = f"mosaic {mode}" + {"host": ", host planner", "chains": ", chains planner"}.get(planner, "")
        try:
            with kernels_mode(mode), planner_mode(planner):
                step = _train_step_fn(net, ids, _logits)
                t = median_seconds(step, device, warmup=2, iters=iters)
                with timed_planning() as planning:
                    step()
            times[path] = t
            report.rows.append({"path": path, "batch": batch, "length": length, "planner": planner,
                                "params": size, "tokens_per_s": tokens / t, "ms_per_step": t * 1e3,
                                "plan_us_per_token": planning[0] / tokens * 1e6, "plan_share": planning[0] / t})
        except Exception as e:
            report.notes.append(f"{path}: {type(e).__name__}: {e}")
    if gpu:
        try:
            with kernels_mode(kernels[-1]):
                t, fits = _time_graphed_mosaic(net, ids, device, iters)
            path = f"mosaic {kernels[-1]}, CUDA graph"
            times[path] = t
            report.rows.append({"path": path, "batch": batch, "length": length, "planner": "chains",
                                "params": size, "tokens_per_s": tokens / t, "ms_per_step": t * 1e3})
            if not fits:
                report.notes.append(f"{path}: some reads went past the fixed capacities (those were dropped)")
        except Exception as e:
            report.notes.append(f"mosaic, CUDA graph: {type(e).__name__}: {e}")
    base = None
    try:
        base = WindowLM(matched_window_config(net.config, window=length)).to(device).train()
        t = median_seconds(_train_step_fn(base, ids, _logits), device, warmup=2, iters=iters)
        times["window"] = t
        report.rows.append({"path": "window transformer (SDPA)", "batch": batch, "length": length,
                            "params": n_params(base), "tokens_per_s": tokens / t, "ms_per_step": t * 1e3})
    except Exception as e:
        report.notes.append(f"window transformer: {type(e).__name__}: {e}")
    if gpu and base is not None:
        try:
            t = median_seconds(_graphed(base, ids, _logits), device, warmup=2, iters=iters)
            times["window graph"] = t
            report.rows.append({"path": "window transformer (SDPA), CUDA graph", "batch": batch,
                                "length": length, "params": n_params(base), "tokens_per_s": tokens / t,
                                "ms_per_step": t * 1e3})
        except Exception as e:
            report.notes.append(f"window transformer, CUDA graph: {type(e).__name__}: {e}")
    # against the faster of the baseline's two paths
    best = min((v for k, v in times.items() if k.startswith("window")), default=None)
    if best is not None:
        for row in report.rows:
            if row["path"].startswith("mosaic"):
                row["vs_window"] = best / (tokens / row["tokens_per_s"])
    return report


def _graphed(net: torch.nn.Module, ids: torch.Tensor, logits_of, extra=None):
    """The training step of :func:`_train_step_fn` captured as a CUDA graph (engine.train.graph_step):
    a no-argument callable that replays it. ``extra(net)``, run inside the captured forward,
    returns tensors that each replay refreshes (kept in the callable's ``outputs``)."""
    from engine.train.graph_step import GraphedStep
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True, capturable=True)
    outputs: list = []

    def loss_of(x):
        logits = logits_of(net, x[:, :-1])
        if extra is not None:
            outputs[:] = [extra(net)]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))

    graphed = GraphedStep(loss_of, opt, (ids,))

    def step():
        graphed.graph.replay()
    step.outputs = outputs
    return step


def _time_graphed_mosaic(net, ids: torch.Tensor, device: torch.device, iters: int) -> tuple[float, bool]:
    """Seconds per replayed MOSAIC training step at fixed read capacities (the batch's own counts
    with room to spare; they imply the chains planner); and whether every replay's reads fit."""
    from engine.vm.static_reads import count_reads, padded, read_capacity, read_overflow
    cap = padded(count_reads(net, ids[:, :-1]))
    with read_capacity(net, cap):
        step = _graphed(net, ids, _logits, extra=read_overflow)
        overflow = torch.zeros((), dtype=torch.bool, device=device)

        def timed():
            step()
            overflow.logical_or_(step.outputs[0])
        t = median_seconds(timed, device, warmup=2, iters=iters)
    return t, not bool(overflow)
