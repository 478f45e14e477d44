"""``mosaic bench kernels``: each hot op, reference against its Triton twin, same run.

For each op and size: the reference's and the twin's median time, their ratio, the
bytes the op must move at least (each input read once, each output written once) and
the share of the device's measured copy bandwidth the twin reaches. Without a GPU only
the reference runs, and the report says so.
"""
from __future__ import annotations

from typing import Callable

import torch

from engine.bench.common import Report, triton_usable
from engine.bench.timing import copy_bandwidth, device_name, median_seconds

F32 = 4


def _scan_case(B: int, T: int, N: int, device, backward: bool):
    a = torch.rand(1, 1, N, device=device) * 0.5 + 0.5
    b = torch.randn(B, T, N, device=device, requires_grad=backward)
    h0 = torch.randn(B, N, device=device)
    cot = torch.randn(B, T, N, device=device)
    nbytes = F32 * (2 * B * T * N + B * N + N)  # read b, write h (+ h0, a)
    if backward:
        nbytes += F32 * 3 * B * T * N  # read h and dL/dh, write db

    def run(fn):
        def go():
            h = fn(a, b, h0)
            if backward:
                torch.autograd.grad(h, b, cot)
        return go
    return run, nbytes, B * T


def _read_case(N: int, S: int, dk: int, dv: int, device, backward: bool):
    q = torch.randn(N, dk, device=device, requires_grad=backward)
    k = torch.randn(N, S, dk, device=device, requires_grad=backward)
    v = torch.randn(N, S, dv, device=device, requires_grad=backward)
    mask = torch.rand(N, S, device=device) > 0.3
    cot = torch.randn(N, dv, device=device)
    nbytes = F32 * (N * dk + N * S * (dk + dv) + N * dv) + N * S
    if backward:
        nbytes *= 2

    def run(fn):
        def go():
            r = fn(q, k, v, mask)
            if backward:
                torch.autograd.grad(r, (q, k, v), cot)
        return go
    return run, nbytes, N


def _rows_case(N: int, S: int, plain: int, R: int, dk: int, dv: int, device, backward: bool):
    """Reads of rows of shared tables (training's memory path): N reads of S rows out of R, 30% dead."""
    q = torch.randn(N, dk, device=device, requires_grad=backward)
    k = torch.randn(R, dk, device=device, requires_grad=backward)
    v = torch.randn(R, dv, device=device, requires_grad=backward)
    index = torch.randint(0, R, (N, S), device=device)
    mask = torch.rand(N, S, device=device) > 0.3
    cots = [torch.randn(N, dv, device=device) for _ in range(2)]
    # the live rows read once, index and mask read once, queries read and outputs written
    nbytes = F32 * (N * dk + int(0.7 * N * S) * (dk + dv) + 2 * N * dv) + N * S * 9
    if backward:
        nbytes *= 2

    def run(fn):
        def go():
            outs = [o for o in fn(q, k, v, index, mask, plain) if o is not None]
            if backward:
                torch.autograd.grad(outs, (q, k, v), cots[:len(outs)])
        return go
    return run, nbytes, N


def _cases(device: torch.device, small: bool):
    """(op, shape label, builder) for the sizes the default model uses."""
    if small:  # CPU: keep it quick
        return [
            ("scan fwd", "B2 T128 N256", lambda: _scan_case(2, 128, 256, device, False)),
            ("read fwd", "N256 S64 dk32 dv64", lambda: _read_case(256, 64, 32, 64, device, False)),
            ("rows fwd+bwd (train SCAN)", "N128 S256 p64 R4096", lambda: _rows_case(128, 256, 64, 4096, 32, 64,
                                                                                   device, True)),
        ]
    return [
        ("scan fwd", "B16 T512 N256", lambda: _scan_case(16, 512, 256, device, False)),
        ("scan fwd+bwd", "B16 T512 N256", lambda: _scan_case(16, 512, 256, device, True)),
        ("read fwd (decode b64)", "N64 S64 dk32 dv64", lambda: _read_case(64, 64, 32, 64, device, False)),
        ("read fwd (train)", "N8192 S64 dk32 dv64", lambda: _read_case(8192, 64, 32, 64, device, False)),
        ("read fwd+bwd (train)", "N8192 S64 dk32 dv64", lambda: _read_case(8192, 64, 32, 64, device, True)),
        ("read fwd (scan)", "N8192 S256 dk32 dv64", lambda: _read_case(8192, 256, 32, 64, device, False)),
        # training's reads of the sequence's rows: B16 x T512 of the default model, ~10% READ / SCAN
        ("rows fwd+bwd (train READ)", "N832 S64 R40960", lambda: _rows_case(832, 64, 64, 40960, 32, 64,
                                                                           device, True)),
        ("rows fwd+bwd (train SCAN)", "N832 S256 p64 R40960", lambda: _rows_case(832, 256, 64, 40960, 32, 64,
                                                                                device, True)),
    ]


def _impls(op: str) -> tuple[Callable, Callable | None]:
    if op.startswith("scan"):
        from kernels.scan import naive
        try:
            from kernels.scan import triton as tw
            return naive.linear_scan, tw.linear_scan
        except Exception:
            return naive.linear_scan, None
    from kernels.memory import naive
    name = "read_rows" if op.startswith("rows") else "read_slots"
    try:
        from kernels.memory import triton as tw
        return getattr(naive, name), getattr(tw, name)
    except Exception:
        return getattr(naive, name), None


def _memory_step_rows(device: torch.device, iters: int) -> list[dict]:
    """The decode-time memory step of one default-preset layer (route, both reads, write /
    clear / evict) at batch 1 and 64: Memory.step_ (naive ops) against the Triton table kernels."""
    from engine.vm import ModelConfig
    from engine.vm.fastpath import triton_memory_step_
    from engine.vm.memory import Memory
    from engine.vm.state import VMState

    cfg = ModelConfig.preset("default")
    mem = Memory(cfg.d_model, cfg.buckets, cfg.ways, cfg.key_dim, cfg.value_dim, cfg.probes,
                 cfg.scan_probes, cfg.match_threshold, cfg.read_temperature).to(device)
    rows = []
    for B in (1, 64):
        st = VMState.empty(cfg, B, device=device).layers[0]
        st.mem_valid.fill_(True)  # full buckets: every write evicts or overwrites
        st.mem_keys.normal_()
        st.mem_values.normal_()
        st.mem_utility.uniform_()
        args = (torch.randn(B, cfg.key_dim, device=device), torch.randn(B, cfg.key_dim, device=device),
                torch.randn(B, cfg.value_dim, device=device), torch.rand(B, device=device),
                torch.zeros(B, dtype=torch.long, device=device), torch.ones(B, device=device),
                torch.zeros(B, device=device), torch.ones(B, dtype=torch.bool, device=device),
                torch.zeros(B, dtype=torch.bool, device=device), None)
        with torch.no_grad():
            t_ref = median_seconds(lambda: mem.step_(st, *args), device, iters=iters)
            t_tw = median_seconds(lambda: triton_memory_step_(mem, st, *args), device, iters=iters)
        # bytes touched: probed ways' keys+values+valid, the written bucket, the new entry
        per_row = 4 * (cfg.scan_probes * cfg.ways * (cfg.key_dim + cfg.value_dim)
                       + cfg.ways * (cfg.key_dim + 2) + cfg.key_dim + cfg.value_dim)
        rows.append({"op": "memory step (decode)",
                     "shape": f"B{B} {cfg.buckets}x{cfg.ways} dk{cfg.key_dim} dv{cfg.value_dim}", "path": "triton",
                     "batch": B, "naive_us": t_ref * 1e6, "triton_us": t_tw * 1e6, "speedup": t_ref / t_tw,
                     "tokens_per_s": B / t_tw, "bytes": B * per_row})
    return rows


def bench_kernels(device: torch.device, iters: int = 20) -> Report:
    """Time every op's reference and (on a GPU) its Triton twin; see the module docstring."""
    report = Report("mosaic bench kernels", device_name(device))
    gpu = triton_usable(device)
    bw = copy_bandwidth(device)
    report.notes.append(f"measured copy bandwidth: {bw / 1e9:,.0f} GB/s")
    if not gpu:
        report.notes.append("no GPU: only the naive reference runs (Triton twins need a GPU driver)")
    for op, shape, build in _cases(device, small=not gpu):
        run, nbytes, items = build()
        ref_fn, tw_fn = _impls(op)
        row: dict = {"op": op, "shape": shape, "path": "naive", "batch": items}
        t_ref = median_seconds(run(ref_fn), device, iters=iters)
        row["naive_us"] = t_ref * 1e6
        row["tokens_per_s"] = items / t_ref
        if gpu and tw_fn is not None:
            try:
                t_tw = median_seconds(run(tw_fn), device, iters=iters)
                row.update(path="triton", triton_us=t_tw * 1e6, speedup=t_ref / t_tw,
                           tokens_per_s=items / t_tw, bytes=nbytes,
                           bw_share=nbytes / t_tw / bw)
            except Exception as e:  # report, keep going
                report.notes.append(f"{op} {shape}: triton failed: {type(e).__name__}: {e}")
        else:
            row.update(bytes=nbytes, bw_share=nbytes / t_ref / bw)
        report.rows.append(row)
    if gpu:
        try:
            for row in _memory_step_rows(device, iters):
                row["bw_share"] = row["bytes"] / (row["triton_us"] * 1e-6) / bw
                report.rows.append(row)
        except Exception as e:
            report.notes.append(f"memory step: {type(e).__name__}: {e}")
    return report
