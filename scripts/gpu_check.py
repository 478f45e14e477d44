#!/usr/bin/env python3
"""One run on a borrowed GPU: checks first, timings second, a short table last.

    python3 scripts/gpu_check.py LOGDIR [--budget SECONDS]

1. checks: each Triton twin against its naive reference on CUDA (outputs and every
   gradient; float32, and bfloat16 inputs where the model may feed them), the whole
   model with MOSAIC_KERNELS=triton against naive (forward logits, step logits, state),
   and each fast decode path against model.step;
2. timings: kernels (reference vs twin, bandwidth share), decoding at batch 1 and 64
   (eager, graphed naive, fast path), training tokens/s against a windowed SDPA
   transformer (each eager and as one CUDA graph, batch 16 and 64);
3. a table with the GPU's name.

Every section runs in its own try/except: a failure is logged and the run goes on.
LOGDIR receives gpu_check.log (everything), results.json (every row) and table.txt.
Runs with the GPU machine's own python3 (torch + triton; no mosaic_cli imports).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DRY = "--dry-run" in sys.argv  # exercise the script on a CPU: interpreter, tiny sizes, no timings
if DRY:
    os.environ["TRITON_INTERPRET"] = "1"
else:
    os.environ.pop("TRITON_INTERPRET", None)
PRESET = "tiny" if DRY else "default"


def model_config():
    """The preset's config; a dry run's tiny one has no memory in layer 0, like the default."""
    from engine.vm import ModelConfig
    cfg = ModelConfig.preset(PRESET)
    return cfg.replace(memory_layers=(1,)) if DRY else cfg

import torch  # noqa: E402

T0 = time.time()
LOG = None
RESULTS: dict = {"checks": [], "rows": [], "errors": [], "notes": []}


def log(msg: str = "") -> None:
    line = f"[{time.time() - T0:6.1f}s] {msg}"
    print(line, flush=True)
    if LOG is not None:
        LOG.write(line + "\n")
        LOG.flush()


OUT_DIR: Path | None = None


def section(name: str, fn, *args, **kwargs):
    log(f"== {name}")
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # keep going: one broken part must not hide the rest
        log(f"!! {name} failed: {type(e).__name__}: {e}")
        LOG.write(traceback.format_exc())
        RESULTS["errors"].append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
        return None
    finally:  # what was measured so far survives a kill
        if OUT_DIR is not None:
            (OUT_DIR / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))


def check(name: str, actual: torch.Tensor, expected: torch.Tensor, ratio: float) -> bool:
    from kernels.testing import error_ratio

    a, e = actual.detach().float(), expected.detach().float()
    finite = bool(torch.isfinite(a).all() or not torch.isfinite(e).all())
    err = error_ratio(a, e) if a.shape == e.shape else float("inf")
    ok = finite and err <= ratio
    RESULTS["checks"].append({"name": name, "ok": ok, "err": err, "tol": ratio})
    log(f"   {'ok ' if ok else 'BAD'} {name}: rms ratio {err:.2e} (tol {ratio:.0e}){'' if finite else ' NON-FINITE'}")
    return ok


# ---------------------------------------------------------------------------------- checks
def check_scan(dev):
    from kernels.scan import naive, triton as tw

    cases = [(1, 1, 5, torch.float32), (3, 257, 256, torch.float32),
             (16, 512, 256, torch.float32), (4, 300, 256, torch.bfloat16)]
    if DRY:
        cases = [(1, 1, 5, torch.float32), (2, 9, 7, torch.float32)]
    # scaled: inputs (1 - a) b folded into the kernels, as the registers call it
    for (B, T, N, dtype), scale in [(c, False) for c in cases] + [(c, True) for c in cases[1:3]]:
        a = (torch.rand(1, 1, N, device=dev) * 0.5 + 0.5).requires_grad_()
        b = torch.randn(B, T, N, device=dev, dtype=dtype).requires_grad_()
        h0 = torch.randn(B, N, device=dev).requires_grad_()
        cot = torch.randn(B, T, N, device=dev)
        out = tw.linear_scan(a, b, h0, scale_input=scale)
        g = torch.autograd.grad((out * cot).sum(), (a, b, h0))
        bf = b.detach().float().requires_grad_()
        x = (1 - a) * bf if scale else bf
        ref = naive.linear_scan_loop(a, x, h0) if T <= 64 else naive.linear_scan(a, x, h0)
        rg = torch.autograd.grad((ref * cot).sum(), (a, bf, h0))
        tol = 1e-4
        tag = f"scan{' scaled' if scale else ''} B{B} T{T} N{N} {str(dtype)[6:]}"
        check(f"{tag} h", out, ref, tol)
        for n, x, y in zip(("da", "db", "dh0"), g, rg):
            # a gradient w.r.t. a bf16 input is itself rounded to bf16 (8 bits of mantissa)
            check(f"{tag} {n}", x, y, 1e-2 if x.dtype == torch.bfloat16 else tol)


def check_read(dev):
    from kernels.memory import naive, triton as tw

    cases = [(1, 1, 3, 5, torch.float32), (7, 64, 32, 64, torch.float32),
             (4096, 64, 32, 64, torch.float32), (333, 256, 32, 64, torch.float32),
             (512, 64, 32, 64, torch.bfloat16)]
    if DRY:
        cases = [(1, 1, 3, 5, torch.float32), (3, 9, 5, 6, torch.float32)]
    for (N, S, dk, dv, dtype) in cases:
        q = torch.randn(N, dk, device=dev, dtype=dtype).requires_grad_()
        k = torch.randn(N, S, dk, device=dev, dtype=dtype).requires_grad_()
        v = torch.randn(N, S, dv, device=dev, dtype=dtype).requires_grad_()
        mask = torch.rand(N, S, device=dev) > 0.3
        mask[0] = False
        cot = torch.randn(N, dv, device=dev)
        out = tw.read_slots(q, k, v, mask)
        g = torch.autograd.grad((out * cot).sum(), (q, k, v))
        qf, kf, vf = (x.detach().float().requires_grad_() for x in (q, k, v))
        ref = naive.read_slots(qf, kf, vf, mask)
        rg = torch.autograd.grad((ref * cot).sum(), (qf, kf, vf))
        tag = f"read N{N} S{S} {str(dtype)[6:]}"
        tol = 1e-4
        check(f"{tag} r", out, ref, tol)
        for n, x, y in zip(("dq", "dkeys", "dvalues"), g, rg):
            check(f"{tag} {n}", x.float(), y, 1e-2 if x.dtype == torch.bfloat16 else tol)


def check_memory_step(dev):
    """The decode memory step on the Triton table kernels against Memory.step_, with full
    buckets, evictions, overwrites and clears, at batch 1 and 64."""
    from engine.vm.fastpath import triton_memory_step_
    from engine.vm.memory import Memory
    from engine.vm.state import VMState

    # memory in every layer: the default preset has none in layer 0, whose state this check uses
    cfg = model_config().replace(buckets=4, probes=2, scan_probes=4, memory_layers=None)
    torch.manual_seed(0)
    mem = Memory(cfg.d_model, cfg.buckets, cfg.ways, cfg.key_dim, cfg.value_dim, cfg.probes,
                 cfg.scan_probes, cfg.match_threshold).to(dev)
    for B in ((1, 3) if DRY else (1, 64)):
        ref = VMState.empty(cfg, B, device=dev).layers[0]
        got = VMState.empty(cfg, B, device=dev).layers[0]
        rows = torch.arange(B, device=dev)
        worst, bad = 0.0, []
        for t in range(12 if DRY else 60):
            q, k = torch.randn(B, cfg.key_dim, device=dev), torch.randn(B, cfg.key_dim, device=dev)
            if t % 4 == 3:
                k = ref.mem_keys[rows, 0, 0] + 1e-3 * k
            v = torch.randn(B, cfg.value_dim, device=dev)
            u = torch.rand(B, device=dev)
            pos = torch.full((B,), t, dtype=torch.long, device=dev)
            op = torch.randint(0, 4, (B,), device=dev)
            write = (op >= 1) if t < 40 else (op == 2)
            clear = (op == 0) & (t >= 40)
            with torch.no_grad():
                M1, i1 = mem.step_(ref, q, k, v, u, pos, (op == 1).float(), (op == 3).float(), write, clear, None)
                M2, i2 = triton_memory_step_(mem, got, q, k, v, u, pos, (op == 1).float(), (op == 3).float(),
                                             write, clear, None)
            from kernels.testing import error_ratio
            worst = max(worst, error_ratio(M2, M1))
            for name in ("read_buckets", "write_slot", "cleared_slot"):
                if not torch.equal(i1[name], i2[name]):
                    bad.append(f"{name}@{t}")
            for name, a in ref.tensors().items():
                b = got.tensors()[name]
                if (not torch.allclose(a.float(), b.float(), atol=1e-5)) if a.is_floating_point() else not torch.equal(a, b):
                    bad.append(f"{name}@{t}")
        ok = worst <= 1e-4 and not bad
        RESULTS["checks"].append({"name": f"memory step B{B}", "ok": ok, "err": worst, "bad": bad[:5]})
        log(f"   {'ok ' if ok else 'BAD'} memory step B{B}: M rms ratio {worst:.2e}{'; ' + ', '.join(bad[:5]) if bad else ''}")


def check_extra_twins(dev):
    """Any further twin exposing a ``gpu_selfcheck(device) -> list[(name, actual, expected, tol)]``."""
    import importlib
    import pkgutil

    import kernels
    for mod in pkgutil.iter_modules(kernels.__path__):
        if not mod.ispkg or mod.name in ("scan",):
            continue
        try:
            tw = importlib.import_module(f"kernels.{mod.name}.triton")
        except Exception as e:
            log(f"   kernels.{mod.name}.triton: not importable ({type(e).__name__}: {e})")
            continue
        fn = getattr(tw, "gpu_selfcheck", None)
        if fn is None:
            continue
        for name, a, e, tol in fn(dev):
            check(f"{mod.name}: {name}", a, e, tol)


def build_model(dev, spread=False):
    from engine.vm import MosaicLM

    torch.manual_seed(0)
    net = MosaicLM(model_config()).to(dev).eval()
    if spread:  # spread the heads so every opcode occurs and reads move the logits
        with torch.no_grad():
            for blk in net.blocks:
                blk.proj.weight.mul_(20.0)
                if blk.memory is not None:
                    blk.memory.out.weight.mul_(50.0)
    return net


def busy_teacher(B, T, cfg, dev):
    from engine.vm import Teacher

    g = torch.Generator().manual_seed(4)
    weights = torch.tensor([1, 3, 6, 1.5, 0.5, 0.5, 0.5, 1.5, 1, 0.5])
    ops = torch.multinomial(weights, B * T, replacement=True, generator=g).view(B, T)
    bucket = torch.randint(0, cfg.buckets, (B, T), generator=g)
    return Teacher(opcodes=ops.to(dev), write_gate=torch.ones(B, T, dtype=torch.long, device=dev),
                   bucket=bucket.to(dev))


def _with_mode(mode, fn):
    from engine.bench.decode import kernels_mode
    with kernels_mode(mode):
        return fn()


def check_planner(dev):
    """The chains walker (kernels.chains: Triton on a GPU) against the rank-batched planner on the
    same device: the same slot plan (final occupants and every read's events), random inputs with
    repeated keys (matches, clears that hit) and full buckets (evictions)."""
    import torch.nn.functional as F

    from engine.vm.plan_batched import plan_batched
    g = torch.Generator().manual_seed(5)
    for B, NB, W, T, dk, n_reads in ((1, 1, 1, 1, 3, 1), (3, 5, 3, 37, 7, 29), (4, 64, 8, 384, 32, 300)):
        ev = torch.rand(B, T, generator=g) < 0.6
        write = ev & (torch.rand(B, T, generator=g) < 0.8)
        keys = torch.randn(B, T, dk, generator=g)
        rep = torch.rand(B, T, generator=g) < 0.4
        keys[rep] = torch.randn(3, dk, generator=g)[torch.randint(0, 3, (int(rep.sum()),), generator=g)]
        valid = torch.rand(B, NB, W, generator=g) < 0.7
        args = dict(threshold=0.9, write=write, clear=ev & ~write, bucket=torch.randint(0, NB, (B, T), generator=g),
                    keys=keys, utility=torch.rand(B, T, generator=g).round(decimals=1),
                    pos0=torch.randint(0, 50, (B,), generator=g), read_rows=torch.randint(0, B, (n_reads,), generator=g),
                    read_pos=torch.randint(0, T, (n_reads,), generator=g),
                    read_probes=torch.stack([torch.randperm(NB, generator=g)[:min(4, NB)] for _ in range(n_reads)]),
                    init_valid=valid, init_keys=F.normalize(torch.randn(B, NB, W, dk, generator=g), dim=-1) * valid[..., None],
                    init_utility=torch.rand(B, NB, W, generator=g).round(decimals=1) * valid,
                    init_age=torch.randint(0, 3, (B, NB, W), generator=g) * valid)
        args = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v) for k, v in args.items()}
        ranks = plan_batched(**args, walker="ranks")
        chains = _with_mode("triton", lambda: plan_batched(**args, walker="chains"))
        for what in ("final", "read_events"):
            same = torch.equal(getattr(chains, what), getattr(ranks, what))
            RESULTS["checks"].append({"name": f"planner chains vs ranks {what} B{B} NB{NB} T{T}", "ok": same})
            log(f"   {'ok ' if same else 'BAD'} planner chains vs ranks {what} B{B} NB{NB} T{T}")


def check_model(dev):
    """Teacher-forced opcodes and buckets, so float rounding cannot flip a decision."""
    net = build_model(dev, spread=True)
    B, T = (2, 12) if DRY else (3, 96)
    ids = torch.randint(0, 256, (B, T), device=dev)
    teacher = busy_teacher(B, T, net.config, dev)
    with torch.no_grad():
        outs = {m: _with_mode(m, lambda: net(ids, teacher=teacher)) for m in ("naive", "triton")}
    check("model forward logits triton vs naive", outs["triton"].logits, outs["naive"].logits, 1e-4)
    sn, st = outs["naive"].state.named_tensors(), outs["triton"].state.named_tensors()
    for k in sn:
        if sn[k].is_floating_point():
            check(f"forward state {k}", st[k], sn[k], 1e-4)
        else:
            same = torch.equal(st[k], sn[k])
            RESULTS["checks"].append({"name": f"forward state {k}", "ok": same})
            if not same:
                log(f"   BAD forward state {k} differs")
    # stepping through the same ids on both backends
    states, logits = {}, {}
    with torch.no_grad():
        for m in ("naive", "triton"):
            def run():
                s = net.init_state(B, device=dev)
                ls = [net.step(ids[:, t], s, teacher.at(t)).logits for t in range(min(T, 32))]
                return s, torch.stack(ls, 1)
            states[m], logits[m] = _with_mode(m, run)
    check("model step logits triton vs naive", logits["triton"], logits["naive"], 1e-4)
    check("step vs forward logits (naive)", logits["naive"], outs["naive"].logits[:, :min(T, 32)], 1e-4)
    # training gradients on both backends
    grads = {}
    for m in ("naive", "triton"):
        net.zero_grad(set_to_none=True)
        def run():
            out = net(ids, teacher=teacher)
            out.logits.float().square().mean().backward()
        _with_mode(m, run)
        grads[m] = {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}
    worst = max(((n, __import__("kernels.testing", fromlist=["x"]).error_ratio(grads["triton"][n], g))
                 for n, g in grads["naive"].items()), key=lambda x: x[1])
    ok = worst[1] <= 1e-3
    RESULTS["checks"].append({"name": "model grads triton vs naive (worst)", "ok": ok, "err": worst[1], "param": worst[0]})
    log(f"   {'ok ' if ok else 'BAD'} model grads triton vs naive: worst {worst[0]} rms ratio {worst[1]:.2e}")
    net.zero_grad(set_to_none=True)


def check_autocast_decisions(dev):
    """Training runs under bf16 autocast, chat and the evals in float32: the logits that decisions
    are taken from stay float32 (engine.vm.exact), so layer 0, whose input is the same in both,
    must decide exactly alike; the layers above may differ only where their inputs do."""
    net = build_model(dev, spread=True)
    B, T = (2, 24) if DRY else (4, 512)
    ids = torch.randint(0, 256, (B, T), device=dev, generator=torch.Generator(device=dev).manual_seed(3))
    with torch.no_grad():
        ref = net(ids, keep_state=False).aux
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            got = net(ids, keep_state=False).aux
    same = torch.equal(got["opcode_logits"][:, :, 0], ref["opcode_logits"][:, :, 0]) and \
        torch.equal(got["opcodes"][:, :, 0], ref["opcodes"][:, :, 0])
    RESULTS["checks"].append({"name": "autocast: layer 0 decision logits exact", "ok": same})
    log(f"   {'ok ' if same else 'BAD'} autocast: layer 0 opcode logits and opcodes exact")
    for layer in range(ref["opcodes"].shape[2]):
        diff = float((got["opcodes"][:, :, layer] != ref["opcodes"][:, :, layer]).float().mean())
        log(f"   info: layer {layer} opcodes differing under autocast: {diff:.3%}")


def check_graphed_train(dev):
    """Fixed read capacities (engine.vm.static_reads) against the exact forward on the GPU (logits,
    state, gradients), then the CUDA-graphed training step (engine.train.graph_step) against the same
    steps run eagerly: the losses and every parameter's change over five steps, new inputs copied
    in before each replay."""
    import copy

    import torch.nn.functional as F

    from engine.bench.decode import kernels_mode
    from engine.train.graph_step import GraphedStep
    from engine.vm.static_reads import count_reads, padded, read_capacity, read_overflow
    from kernels.testing import error_ratio

    net = build_model(dev, spread=True).train()
    B, T = 3, 96
    ids = torch.randint(0, 256, (B, T), device=dev)
    teacher = busy_teacher(B, T, net.config, dev)

    def run(capacity):
        net.zero_grad(set_to_none=True)
        with kernels_mode("triton"), read_capacity(net, capacity):
            out = net(ids, teacher=teacher)
            out.logits.float().square().mean().backward()
            over = read_overflow(net)
        return out, {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}, over

    exact, g_exact, _ = run(None)
    cap = padded(count_reads(net, ids, teacher))
    fixed, g_fixed, over = run(cap)   # fixed capacities take the chains planner
    log(f"   capacities {cap} for reads of {B}x{T}; overflow {bool(over)}")
    check("fixed capacities vs exact: logits", fixed.logits, exact.logits, 1e-5)
    sx, sf = exact.state.named_tensors(), fixed.state.named_tensors()
    same = all(torch.equal(sx[k], sf[k]) if not sx[k].is_floating_point() else error_ratio(sf[k], sx[k]) <= 1e-5
               for k in sx)
    RESULTS["checks"].append({"name": "fixed capacities vs exact: state", "ok": same and not bool(over)})
    log(f"   {'ok ' if same else 'BAD'} fixed capacities vs exact: state")
    worst = max((error_ratio(g_fixed[n], g) if g.abs().max() > 0 else float(g_fixed[n].abs().max()), n)
                for n, g in g_exact.items())
    ok = worst[0] <= 1e-4
    RESULTS["checks"].append({"name": "fixed capacities vs exact: grads (worst)", "ok": ok, "err": worst[0]})
    log(f"   {'ok ' if ok else 'BAD'} fixed capacities vs exact: grads, worst {worst[1]} {worst[0]:.2e}")

    # the graphed step against eager steps from the same weights
    torch.manual_seed(1)
    base = build_model(dev).train()
    batches = [torch.randint(0, 256, (4, 129), device=dev) for _ in range(5)]

    def loss_of(m):
        def f(x):
            logits = m(x[:, :-1]).logits
            return F.cross_entropy(logits.reshape(-1, 256).float(), x[:, 1:].reshape(-1))
        return f
    eager = copy.deepcopy(base)
    opt = torch.optim.AdamW(eager.parameters(), lr=1e-3)
    eager_losses = []
    for x in batches[:1] * 3 + batches[3:]:   # the graph's three warm-up steps take its example batch
        opt.zero_grad()
        loss = loss_of(eager)(x)
        loss.backward()
        opt.step()
        eager_losses.append(loss.item())
    graphed = copy.deepcopy(base)
    gopt = torch.optim.AdamW(graphed.parameters(), lr=1e-3, capturable=True)
    cap = padded(count_reads(graphed, batches[0][:, :-1]), headroom=3.0)
    flags = []

    def graphed_loss(x):
        loss = loss_of(graphed)(x)
        flags[:] = [read_overflow(graphed)]
        return loss
    with kernels_mode("triton"), read_capacity(graphed, cap):
        step = GraphedStep(graphed_loss, gopt, (batches[0],), warmup=3)
        graph_losses = []
        for x in batches[3:]:
            loss = step(x).item()
            graph_losses.append(float("nan") if bool(flags[0]) else loss)   # reads past the capacity: fail
    check("graphed step losses vs eager", torch.tensor(graph_losses), torch.tensor(eager_losses[3:]), 1e-4)
    worst = max((error_ratio(pg - pb, pe - pb), n) for (n, pb), pe, pg in
                zip(base.named_parameters(), eager.parameters(), graphed.parameters()))
    ok = worst[0] <= 1e-3
    RESULTS["checks"].append({"name": "graphed step parameter changes vs eager (worst)", "ok": ok, "err": worst[0]})
    log(f"   {'ok ' if ok else 'BAD'} graphed step parameter changes vs eager: worst {worst[1]} {worst[0]:.2e}")


def time_train_loop(dev, steps: int = 80):
    """The real trainer (engine.train.loop: default preset, curriculum batches, teacher labels,
    auxiliary losses, bf16 autocast) for ``steps`` steps, eager and with --cuda-graph, same seed:
    tokens/s of the last logged interval, the logged losses side by side, the graph's captures."""
    import re
    import tempfile

    from engine.train.config import train_preset
    from engine.train.loop import train

    runs = {}
    for graph in (False, True):
        lines = []
        cfg = train_preset("default", steps=steps, eval_every=10 ** 6, cuda_graph=graph)
        with tempfile.TemporaryDirectory() as tmp, _env("MOSAIC_PLANNER", "chains"):
            info = train(cfg, Path(tmp) / "run", device=str(dev), log=lines.append, progress_bar=False)
        logged = [(int(m.group(1)), float(m.group(2)), float(m.group(3).replace(",", "")))
                  for m in (re.search(r"step (\d+)/\d+ loss=([\d.]+).*tok/s=([\d,]+)", x) for x in lines) if m]
        runs[graph] = logged
        name = "trainer, CUDA graph" if graph else "trainer, eager (chains planner)"
        row = {"bench": "train-loop", "path": name, "batch": cfg.batch_size, "length": cfg.seq_len,
               "tokens_per_s": logged[-1][2] if logged else 0.0, "final_loss": info.get("final_loss"),
               "cuda_graph": info.get("cuda_graph")}
        RESULTS["rows"].append(row)
        log("   " + json.dumps(row, default=str))
    for (s0, l0, _), (s1, l1, _) in zip(runs[False], runs[True]):
        log(f"   step {s0}: loss eager {l0:.4f}, graph {l1:.4f}")


def _logged_losses(lines):
    import re
    found = (re.search(r"step (\d+)/\d+ loss=([\d.]+)", x) for x in lines)
    return [(int(m.group(1)), float(m.group(2))) for m in found if m]


def check_trainer_graph(dev, steps: int = 40):
    """--cuda-graph beyond the default run: the window baseline eager and graphed (logged losses),
    and a graphed MOSAIC run interrupted after half its steps and resumed (its final loss against
    an uninterrupted graphed run's)."""
    import tempfile

    import engine.train.loop as loop
    from engine.train.config import train_preset

    def run(cfg, folder, resume=False):
        lines = []
        info = loop.train(cfg, folder, device=str(dev), resume=resume, log=lines.append, progress_bar=False)
        return info, lines

    with tempfile.TemporaryDirectory() as tmp, _env("MOSAIC_PLANNER", "chains"):
        tmp = Path(tmp)
        losses = {}
        for graph in (False, True):
            cfg = train_preset("default", arch="window", steps=steps, eval_every=10 ** 6, cuda_graph=graph)
            info, lines = run(cfg, tmp / f"window-{graph}")
            losses[graph] = _logged_losses(lines)
            log(f"   window {'graphed' if graph else 'eager'}: {losses[graph]}, {info['tokens_per_s']:,.0f} tokens/s "
                "(whole run)")
        diffs = [abs(a[1] - b[1]) / max(abs(a[1]), 1e-9) for a, b in zip(losses[False], losses[True])]
        ok = bool(diffs) and max(diffs) <= 1e-2
        RESULTS["checks"].append({"name": "trainer --cuda-graph, window baseline: losses vs eager", "ok": ok,
                                  "err": max(diffs, default=float("nan"))})
        log(f"   {'ok ' if ok else 'BAD'} window graphed vs eager losses: worst relative difference "
            f"{max(diffs, default=float('nan')):.2e}")
        cfg = train_preset("default", steps=steps, eval_every=10 ** 6, cuda_graph=True)
        full, _ = run(cfg, tmp / "full")
        real = loop.batch_stream

        def limited(*a, **kw):
            for i, b in enumerate(real(*a, **kw)):
                if i >= steps // 2:
                    raise KeyboardInterrupt
                yield b
        loop.batch_stream = limited
        try:
            run(cfg.replace(checkpoint_every=steps // 2), tmp / "part")
        except KeyboardInterrupt:
            pass
        finally:
            loop.batch_stream = real
        resumed, _ = run(cfg, tmp / "part", resume=True)
    err = abs(resumed["final_loss"] - full["final_loss"]) / abs(full["final_loss"])
    ok = resumed["steps_done"] == steps and err <= 1e-2
    RESULTS["checks"].append({"name": "trainer --cuda-graph: resumed run vs uninterrupted", "ok": ok, "err": err})
    log(f"   {'ok ' if ok else 'BAD'} graphed run resumed at step {steps // 2}: final loss {resumed['final_loss']} "
        f"against {full['final_loss']} uninterrupted")


def _env(name, value):
    from engine.bench.common import env_set
    return env_set(name, value)


def check_fastpath(dev):
    """Each fast path against eager model.step (naive kernels), free running, 24 tokens."""
    from engine.vm import fastpath

    net = build_model(dev, spread=True)
    prefs = [None, "fused-eager"] if DRY else ["graph", "triton-graph", "fused-eager", "fused"]
    for B in ((1, 2) if DRY else (1, 64)):
        for prefer in prefs:
            try:
                _check_one_fastpath(net, dev, B, prefer)
            except Exception as e:
                log(f"   !! fast path {prefer} B{B}: {type(e).__name__}: {e}")
                LOG.write(traceback.format_exc())
                RESULTS["checks"].append({"name": f"fast path {prefer} B{B}", "ok": False, "err": str(e)[:200]})


def _check_one_fastpath(net, dev, B, prefer):
    from engine.bench.decode import kernels_mode
    from engine.vm import fastpath

    ids = torch.randint(0, 256, (24, B), device=dev)
    with torch.no_grad(), kernels_mode("naive"):
        ref_state = net.init_state(B, device=dev)
        ref = torch.stack([net.step(ids[t], ref_state).logits for t in range(24)])
        if prefer == "fused-eager":
            fast = fastpath.FusedStep(net, net.init_state(B, device=dev))
        else:
            fast = fastpath.fast_stepper(net, net.init_state(B, device=dev), prefer=prefer)
        got = torch.stack([fast.step(ids[t]).logits.clone() for t in range(24)])
    check(f"fast path ({fast.name}) logits B{B}", got, ref, 1e-4)
    rs, fs = ref_state.named_tensors(), fast.state.named_tensors()
    bad = [k for k in rs if not (torch.allclose(fs[k].float(), rs[k].float(), rtol=1e-3, atol=1e-4))]
    RESULTS["checks"].append({"name": f"fast path ({fast.name}) state B{B}", "ok": not bad, "bad": bad[:5]})
    log(f"   {'ok ' if not bad else 'BAD'} fast path ({fast.name}) state B{B}{'' if not bad else ': ' + ', '.join(bad[:5])}")


# ---------------------------------------------------------------------------------- timings
def time_report(fn, *args, **kwargs):
    rep = fn(*args, **kwargs)
    for n in rep.notes:
        log(f"   note: {n}")
        RESULTS["notes"].append(f"{rep.title}: {n}")
    for r in rep.rows:
        log("   " + json.dumps(r, default=lambda x: round(x, 4) if isinstance(x, float) else str(x)))
        RESULTS["rows"].append({"bench": rep.title.split()[-1], **r})
    return rep


def _fused_breakdown(dev):
    """Device time of each fused kernel kind (all layers), each captured alone in a CUDA graph."""
    from engine.bench.common import Report
    from engine.bench.decode import load_bench_model
    from engine.bench.timing import median_seconds
    from engine.vm import fastpath
    from kernels.decode import triton as kd

    rep = Report("mosaic bench fused", torch.cuda.get_device_name(dev))
    net = load_bench_model(None, dev)
    for B in (1, 64):
        fs = fastpath.FusedStep(net, net.init_state(B, device=dev))
        ids = torch.randint(0, 256, (B,), device=dev)
        st, x, y = fs.state, fs.x[0], fs.x[1]
        fs.run(ids)
        lays = list(zip(fs.layers, st.layers))
        parts = {
            "embed": lambda: torch.index_select(net.embed.weight, 0, ids, out=x),
            "decode_in (all layers)": lambda: [kd.decode_in(x, l["blk"].norm, l["blk"].conv[:, 0, :], ls.conv, l["w_cat"],
                                                            l["b_cat"], l["n_proj"], l["blk"].eps, l["a"], fs.u,
                                                            block_n=fs.bn_in) for l, ls in lays],
            "decode_mid (all layers)": lambda: [kd.decode_mid(l["a"], ls.registers, l["lam"], l["blk"].mlp_out.weight,
                                                              l["blk"].mlp_out.bias, l["blk"].registers.readout.weight,
                                                              l["n_proj"], l["ri0"], fs.local, fs.reg, fs.snew,
                                                              block_n=fs.bn_mid) for l, ls in lays],
            "decode_out (all layers)": lambda: [kd.decode_out(i, x, l["a"], fs.local, fs.reg, fs.snew, fs.u, y, ls,
                                                              st.position, l["mem"], l["offsets"], fs.outs)
                                                for i, (l, ls) in enumerate(lays)],
            "head": lambda: kd.decode_head(x, net.norm, net.head.weight, net.config.norm_eps, fs.logits),
            "whole step": lambda: fs.run(ids),
        }
        for name, fn in parts.items():
            with torch.no_grad():
                fn()
                torch.cuda.synchronize()
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    fn()
            t = median_seconds(g.replay, dev, warmup=3, iters=50)
            rep.rows.append({"path": f"fused {name}", "batch": B, "tokens_per_s": B / t, "us_per_step": t * 1e6})
    return rep


def _decode_base(dev):
    from engine.bench.decode import bench_decode

    rep = bench_decode(dev, model="base", tokens=200)
    for r in rep.rows:
        r["path"] = f"base: {r['path']}"
    rep.title = "mosaic bench decode-base"
    return rep


def _compiled_decode(dev):
    """Only the torch.compile + CUDA graph rows (its own report, after everything else)."""
    from engine.bench.common import Report
    from engine.bench.decode import _row, _time_stepper, kernels_mode, load_bench_model
    from engine.vm import fastpath

    rep = Report("mosaic bench decode", torch.cuda.get_device_name(dev))
    net = load_bench_model(None, dev)
    for B in (1, 64):
        with kernels_mode("naive"):
            c = fastpath.CompiledGraphedStep(net, net.init_state(B, device=dev))
        t = _time_stepper(c.step, B, dev, 200)
        base = [r for r in RESULTS["rows"] if r.get("path") == "graphed naive" and r.get("batch") == B]
        extra = {"vs_graphed_naive": base[0]["us_per_step"] * 1e-6 / t} if base else {}
        rep.rows.append(_row(f"fast ({c.name})", B, t, **extra))
    return rep


def _profile_train(dev):
    """Where a MOSAIC training step spends its time (Triton kernels, the bench's batch and length),
    run eagerly two ways: the device planner with exact reads, and the chains planner at fixed read
    capacities (the kernels the CUDA-graphed step replays). The profiler's table by device time to
    profile_train[_fixed].txt, and in the log each step's wall time against the summed device time
    of its kernels and their count. A step whose kernels sum to far less than its wall time is
    bound by launches and host work; the kernels' sum bounds what a graph of it can reach."""
    from contextlib import ExitStack

    from torch.profiler import ProfilerActivity, profile

    from engine.bench.decode import kernels_mode, load_bench_model
    from engine.bench.train import _logits, _train_step_fn, planner_mode
    from engine.vm.static_reads import count_reads, padded, read_capacity

    gpu = dev.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = True
    net = load_bench_model(None, dev).train()
    ids = torch.randint(0, 256, (16, 513) if gpu else (2, 65), device=dev)
    RESULTS["profile_train"] = {}
    for name, planner, fixed in (("device planner", "device", False), ("fixed", "chains", True)):
        with ExitStack() as stack:
            stack.enter_context(kernels_mode("triton" if gpu else "naive"))
            stack.enter_context(planner_mode(planner))
            if fixed:
                stack.enter_context(read_capacity(net, padded(count_reads(net, ids[:, :-1]))))
            step = _train_step_fn(net, ids, _logits)
            for _ in range(2):
                step()
            sync()
            steps = 3
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
            with profile(activities=acts) as prof:
                t = time.perf_counter()
                for _ in range(steps):
                    step()
                sync()
                wall = (time.perf_counter() - t) / steps
        events = prof.key_averages()
        key = "self_cpu_time_total" if not gpu else (
            "self_cuda_time_total" if hasattr(events[0], "self_cuda_time_total") else "self_device_time_total")
        table = events.table(sort_by=key, row_limit=40)
        if OUT_DIR is not None:
            (OUT_DIR / f"profile_train{'_fixed' if fixed else ''}.txt").write_text(table + "\n")
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy = sum(e.time_range.elapsed_us() for e in kernels) / steps
        log(f"   {name}: train step wall {wall * 1e3:.1f} ms, kernels {len(kernels) / steps:,.0f} per step, "
            f"summed kernel time {busy / 1e3:.1f} ms ({busy / max(wall * 1e6, 1e-9):.0%} of the wall time)")
        RESULTS["profile_train"][name] = {"wall_ms": wall * 1e3, "kernels_per_step": len(kernels) / steps,
                                          "kernel_ms": busy / 1e3}
        for line in table.splitlines()[:25]:
            log("   " + line)


def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logdir")
    ap.add_argument("--budget", type=float, default=230.0, help="seconds; timing sections are skipped past it")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--train-only", action="store_true",
                    help="only the whole-model checks, the training timings and the training profile "
                         "(a quick re-measure after a change to the training path)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile + CUDA graph decode (slow to build)")
    ap.add_argument("--dry-run", action="store_true", help="on a CPU: the checks through Triton's interpreter, tiny sizes")
    args = ap.parse_args()
    global OUT_DIR
    out = Path(args.logdir)
    out.mkdir(parents=True, exist_ok=True)
    OUT_DIR = out
    LOG = open(out / "gpu_check.log", "w")
    if DRY:
        dev = torch.device("cpu")
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        log("no CUDA device: nothing to check here (use --dry-run on a CPU)")
        return 2
    else:
        dev = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = False  # checks in true float32
        torch.backends.cudnn.allow_tf32 = False
    import triton
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (dry run)"
    RESULTS["gpu"] = name
    log(f"GPU {name}; torch {torch.__version__}; triton {triton.__version__}")
    from engine.bench.timing import copy_bandwidth
    bw = section("copy bandwidth", copy_bandwidth, dev)
    if bw:
        RESULTS["copy_bw_GBps"] = bw / 1e9
        log(f"   copy bandwidth {bw / 1e9:,.0f} GB/s")

    if args.train_only and not DRY:
        from engine.bench.train import bench_train
        section("check model triton vs naive", check_model, dev)
        section("check planner chains vs ranks", check_planner, dev)
        section("check graphed training step", check_graphed_train, dev)
        section("check decisions under autocast", check_autocast_decisions, dev)
        section("time train", time_report, bench_train, dev)
        section("time train, batch 64", time_report, bench_train, dev, batch=64)
        section("time train, the default preset's batch and length", time_report, bench_train, dev,
                **_preset_shape())
        section("time the trainer, eager and graphed", time_train_loop, dev)
        section("check the graphed trainer: window baseline, resume", check_trainer_graph, dev)
        section("profile a training step", _profile_train, dev)
        return _finish(out)
    section("check scan twin", check_scan, dev)
    section("check read twin", check_read, dev)
    section("check memory step twin", check_memory_step, dev)
    section("check other twins", check_extra_twins, dev)
    section("check model triton vs naive", check_model, dev)
    section("check planner chains vs ranks", check_planner, dev)
    section("check fast decode paths", check_fastpath, dev)
    section("check decisions under autocast", check_autocast_decisions, dev)
    if DRY:
        return _finish(out)
    section("check graphed training step", check_graphed_train, dev)
    torch.cuda.synchronize()

    def left():
        return args.budget - (time.time() - T0)

    from engine.bench.kernels import bench_kernels
    from engine.bench.decode import bench_decode
    from engine.bench.train import bench_train
    section("time kernels", time_report, bench_kernels, dev)
    if left() > 40:
        section("time decode", time_report, bench_decode, dev, tokens=200)
    else:
        log("skipping decode timing: out of budget")
    if left() > 30 and not args.skip_train:
        section("time train", time_report, bench_train, dev)
        section("time train, batch 64", time_report, bench_train, dev, batch=64)
        section("time train, the default preset's batch and length", time_report, bench_train, dev,
                **_preset_shape())
        section("time the trainer, eager and graphed", time_train_loop, dev)
        section("check the graphed trainer: window baseline, resume", check_trainer_graph, dev)
    else:
        log("skipping train timing: out of budget")
    if left() > 30 and not args.skip_train:
        section("profile a training step", _profile_train, dev)
    if left() > 45:
        section("time fused kernels one by one", time_report, _fused_breakdown, dev)
    if left() > 60:  # the ~3M-parameter preset, the size of the anchors
        section("time decode (base preset)", time_report, _decode_base, dev)

    if args.compile and left() > 120:
        section("time decode, torch.compile + graph", time_report, _compiled_decode, dev)
    elif args.compile:
        log("skipping the compiled decode path: out of budget")

    log("done")
    return _finish(out)


def _preset_shape() -> dict:
    """The default training preset's batch and sequence length (the trainer's real step)."""
    from engine.train.config import TRAIN_PRESETS
    return {"batch": TRAIN_PRESETS["default"]["batch_size"], "length": TRAIN_PRESETS["default"]["seq_len"]}


def _finish(out: Path) -> int:
    """Write results.json and table.txt, print the table; 0 when every check passed and nothing broke."""
    (out / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))
    table = summary_table(RESULTS)
    (out / "table.txt").write_text(table + "\n")
    print("\n" + table)
    return 0 if not RESULTS["errors"] and all(c["ok"] for c in RESULTS["checks"]) else 1


def targets(res: dict) -> list[str]:
    """The issue's targets against the best measured decode path (one line each)."""
    out = []
    for bench in ("decode", "decode-base"):
        dec = [r for r in res["rows"] if r["bench"] == bench and "fast" in str(r.get("path", ""))]
        b1 = [r for r in dec if r["batch"] == 1]
        if b1:
            best = min(b1, key=lambda r: r["us_per_step"])
            out.append(f"target {bench} b1 <= 70 us/token: {best['us_per_step']:.1f} us ({best['path']}); "
                       f">= 10x graphed naive: {best.get('vs_graphed_naive', float('nan')):.1f}x")
        b64 = [r for r in dec if r["batch"] == 64]
        if b64:
            best = max(b64, key=lambda r: r["tokens_per_s"])
            out.append(f"target {bench} b64 >= 500,000 tokens/s: {best['tokens_per_s']:,.0f} ({best['path']})")
    tr = [r for r in res["rows"] if r["bench"] == "train" and "vs_window" in r]
    for shape in dict.fromkeys((r["batch"], r.get("length")) for r in tr):
        best = max((r for r in tr if (r["batch"], r.get("length")) == shape), key=lambda r: r["vs_window"])
        out.append(f"target train >= windowed SDPA transformer, {shape[0]} x {shape[1]}: "
                   f"{best['vs_window']:.2f}x ({best['path']})")
    return out


def summary_table(res: dict) -> str:
    lines = [f"GPU: {res.get('gpu', '?')}   copy bandwidth: {res.get('copy_bw_GBps', 0):,.0f} GB/s"]
    checks = res["checks"]
    bad = [c["name"] for c in checks if not c["ok"]]
    lines.append(f"checks: {len(checks) - len(bad)}/{len(checks)} ok" + (f"; FAILED: {', '.join(bad[:8])}" if bad else ""))
    lines.append(f"{'bench':11} {'path':44} {'batch':>6} {'tokens/s':>12} {'us/step':>9}  ratios")
    for r in res["rows"]:
        ratio = ""
        for k in ("speedup", "vs_graphed_naive", "vs_step", "vs_window", "bw_share"):
            if k in r and r[k] is not None:
                ratio += f"{k}={r[k]:.3g} "
        label = r.get("path", "") if r["bench"] != "kernels" else f"{r.get('op')} {r.get('path')}"
        if r["bench"] == "train" and r.get("length"):
            label = f"{label} @{r['length']}"
        us = r.get("us_per_step", r.get("triton_us", r.get("naive_us", r.get("ms_per_step", 0) * 1e3)))
        lines.append(f"{r['bench']:11} {label[:44]:44} {r.get('batch', ''):>6} {r.get('tokens_per_s', 0):>12,.0f} "
                     f"{us:>9.1f}  {ratio}")
    lines.extend(targets(res))
    for e in res["errors"]:
        lines.append(f"error: {e[:160]}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
