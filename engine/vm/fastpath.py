"""Decode paths without per-op launch overhead.

- ``GraphedStep``: CUDA-graph capture of the whole ``model.step`` at a fixed batch. The
  ids and the state live in static buffers; each call copies the ids in and replays the
  graph, which updates the state in place. One replay costs about one launch.
- ``TritonGraphedStep``: the same, with the memory step on the Triton table kernels.
- ``FusedStep`` / ``GraphedFusedStep``: the step on kernels.decode's fused kernels
  (3 launches per layer), eager or captured in a CUDA graph: the GPU default.
- ``CompiledGraphedStep``: torch.compile of the step, captured (opt-in: slow to build).
- ``CpuStep``: batch 1 on the CPU, in NumPy (the CPU default).
- ``fast_stepper(model, state)``: picks the best path for the state's device and batch.

Every path gives the same logits and state as ``model.step`` (tests/kernels/test_fastpath.py).
"""
from __future__ import annotations

import os
import types
from typing import Any, Callable

import numpy as np
import torch

from engine.vm.isa import Opcode


def _tensor_slots(obj: Any, prefix: str = "state", seen: set[int] | None = None) -> list[tuple[Any, Any, str]]:
    """Every tensor reachable from ``obj`` through attributes, lists and dicts, as
    (container, key, dotted name); ``key`` is an attribute name, list index or dict key."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    out: list[tuple[Any, Any, str]] = []
    if isinstance(obj, dict):
        items = list(obj.items())
        getter_kind = "item"
    elif isinstance(obj, (list, tuple)):
        items = list(enumerate(obj))
        getter_kind = "item"
    elif hasattr(obj, "__dict__"):
        items = list(vars(obj).items())
        getter_kind = "attr"
    else:
        return out
    for k, v in items:
        name = f"{prefix}.{k}" if getter_kind == "attr" else f"{prefix}[{k!r}]"
        if isinstance(v, torch.Tensor):
            out.append((obj, (getter_kind, k), name))
        elif isinstance(v, (dict, list)) or (hasattr(v, "__dict__") and not isinstance(v, (torch.nn.Module, type))):
            out.extend(_tensor_slots(v, name, seen))
    return out


def _get(container: Any, key: tuple[str, Any]) -> torch.Tensor:
    kind, k = key
    return getattr(container, k) if kind == "attr" else container[k]


def _set(container: Any, key: tuple[str, Any], value: torch.Tensor) -> None:
    kind, k = key
    if kind == "attr":
        setattr(container, k, value)
    else:
        container[k] = value


def state_tensors(state: Any) -> dict[str, torch.Tensor]:
    """Name -> tensor for every tensor in ``state`` (registers, tables, counters, ...)."""
    return {name: _get(c, k) for c, k, name in _tensor_slots(state)}


class GraphedStep:
    """``model.step`` captured in one CUDA graph for the batch of ``state``.

    The graph owns ``state`` (updated in place by every call) and a static ids buffer.
    ``step(ids [B] long)`` returns the step output whose tensors are static buffers,
    valid until the next call (clone what you keep). Where ``model.step`` rebinds a state
    tensor instead of writing into it, the capture copies the new value back into the
    original buffer, so the state stays at fixed addresses.
    """

    name = "cuda graph"

    def __init__(self, model: torch.nn.Module, state: Any, warmup: int = 2,
                 step_fn: Callable[[torch.Tensor, Any], Any] | None = None):
        dev = next(model.parameters()).device
        if dev.type != "cuda":
            raise RuntimeError("GraphedStep needs a CUDA model")
        self.model, self.state, self.device = model, state, dev
        step_fn = step_fn or model.step
        self.batch = int(state.batch_size)
        self.ids = torch.zeros(self.batch, dtype=torch.long, device=dev)
        slots = _tensor_slots(state)
        backup = {name: _get(c, k).clone() for c, k, name in slots}
        try:
            # Warm-up on a side stream (as torch's docs require) so lazy inits happen outside capture.
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(warmup):
                    self._run_and_pin(step_fn, slots)
            torch.cuda.current_stream(dev).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph), torch.no_grad():
                self.out = self._run_and_pin(step_fn, slots)
        finally:  # the warm-up stepped the state and the capture ran nothing: restore it as given
            torch.cuda.synchronize(dev)
            for c, k, name in slots:
                _get(c, k).copy_(backup[name])
            torch.cuda.synchronize(dev)

    def _run_and_pin(self, step_fn, slots):
        before = {name: _get(c, k) for c, k, name in slots}
        out = step_fn(self.ids, self.state)
        for c, k, name in slots:
            new = _get(c, k)
            if new is not before[name]:
                before[name].copy_(new)
                _set(c, k, before[name])
        return out

    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> Any:
        """One decode step for ids [B]; returns the (static) step output."""
        self.ids.copy_(ids, non_blocking=True)
        self.graph.replay()
        return self.out


# ---------------------------------------------------------------------------------------------
# CPU, batch 1: the step in NumPy over a snapshot of the weights
# ---------------------------------------------------------------------------------------------
_NOP = int(Opcode.NOP)
_READ, _WRITE, _CLEAR, _IDLE = int(Opcode.READ_MEM), int(Opcode.WRITE_MEM), int(Opcode.CLEAR_MEM), int(Opcode.IDLE)
_UP, _DOWN, _SCAN, _COMMIT = int(Opcode.GATE_UP), int(Opcode.GATE_DOWN), int(Opcode.SCAN), int(Opcode.COMMIT)


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _normalize(x: np.ndarray) -> np.ndarray:
    """F.normalize along the last axis (eps 1e-12)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(1e-12))


class _LayerWeights:
    """One block's weights as float32 NumPy arrays, matrices stored [in, out] for x @ W."""

    def __init__(self, blk):
        self.norm = _np(blk.norm)
        self.conv = _np(blk.conv[:, 0, :]).T.copy()  # [k, d]
        self.mlp_in_w, self.mlp_in_b = _np(blk.mlp_in.weight).T.copy(), _np(blk.mlp_in.bias)
        self.mlp_out_w, self.mlp_out_b = _np(blk.mlp_out.weight).T.copy(), _np(blk.mlp_out.bias)
        self.proj_w, self.proj_b = _np(blk.proj.weight).T.copy(), _np(blk.proj.bias)
        ends = np.cumsum(blk.sizes)
        self.slices = [slice(int(a), int(b)) for a, b in zip([0, *ends[:-1]], ends)]
        self.lam = _np(blk.registers.decay())[:, None]  # [K, 1]
        self.readout = _np(blk.registers.readout.weight).T.copy()
        self.eps = np.float32(blk.eps)
        self.hidden = blk.mlp_out.in_features
        self.clear_confidence = float(blk.clear_confidence)
        self.mem = blk.memory
        if blk.memory is not None:
            m = blk.memory
            self.router_w, self.router_b = _np(m.router.weight).T.copy(), _np(m.router.bias)
            self.out_w = _np(m.out.weight).T.copy()
            self.P, self.Ps, self.W, self.threshold = m.P, m.Ps, m.W, np.float32(m.threshold)
            self.scale = np.float32(m.dk ** -0.5)
            self.query_scale = None if m.query_scale is None else np.float32(m.query_scale)


def _plain_linear(module: torch.nn.Module) -> bool:
    return all(type(m) in (torch.nn.Linear,) for m in module.modules() if isinstance(m, torch.nn.Linear))


class _WeightWatch:
    """Cheap per-step check of a model's weights: the sum of the parameters' in-place versions
    (an optimiser step bumps it), and that no module was swapped (an adapter wraps a Linear)."""

    def __init__(self, model: torch.nn.Module):
        self.params = list(model.parameters())
        self.slots = [(parent, name, child) for parent in model.modules()
                      for name, child in parent._modules.items() if isinstance(child, torch.nn.Linear)]

    def version(self) -> int:
        for parent, name, child in self.slots:
            if parent._modules.get(name) is not child:
                raise RuntimeError("an adapter was attached to the model: build the fast path again")
        return sum(p._version for p in self.params)


class CpuStep:
    """``model.step`` at batch 1 on the CPU, in NumPy over a snapshot of the weights.

    Eager PyTorch spends most of a batch-1 step in per-op overhead (~3,000 aten calls per
    token for the default model). NumPy calls cost a fraction of that, and the step skips
    work whose result is exactly zero (the memory read when the opcode is neither READ nor
    SCAN; the table write when nothing is written or cleared). The state is the caller's
    VMState, mutated in place through NumPy views of its tensors. The weights are
    re-read whenever a parameter changed in place (an optimiser step) since the last call.
    Returns the same StepOutput as ``model.step`` (teacher labels are not supported here).
    """

    name = "cpu numpy"

    def __init__(self, model: torch.nn.Module, state: Any):
        if state.batch_size != 1 or state.device.type != "cpu":
            raise ValueError("CpuStep runs batch 1 on the CPU")
        if not _plain_linear(model):
            raise ValueError("CpuStep needs plain nn.Linear layers (an adapter is attached)")
        self.model, self.state = model, state
        self.watch = _WeightWatch(model)
        self._state_views: dict[int, dict] = {}
        self._load()

    def _versions(self) -> int:
        return self.watch.version()

    def _load(self) -> None:
        m = self.model
        self.embed = _np(m.embed.weight)
        self.norm = _np(m.norm)
        self.head = _np(m.head.weight).T.copy()
        self.eps = np.float32(m.config.norm_eps)
        self.layers = [_LayerWeights(b) for b in m.blocks]
        self.version = self._versions()
        self.P = m.config.probes

    def _rms(self, x, w, eps):
        return x / np.sqrt(np.dot(x, x) / np.float32(x.shape[0]) + eps) * w

    def _views(self, i: int, ls) -> dict:
        """NumPy views of layer i's state tensors (re-made if a tensor was replaced)."""
        cached = self._state_views.get(i)
        if cached is None or any(getattr(ls, k) is not t for k, (t, _) in cached.items()):
            cached = {k: (getattr(ls, k), getattr(ls, k).numpy()[0])
                      for k in ("conv", "registers", "prev_key", "mem_keys", "mem_values", "mem_utility",
                                "mem_age", "mem_valid")}
            self._state_views[i] = cached
        return {k: v for k, (_, v) in cached.items()}

    def step(self, ids: torch.Tensor):
        """ids: LongTensor [1] -> StepOutput (logits [1, 256], opcodes [1, L], info)."""
        from engine.vm.model import StepOutput

        if self._versions() != self.version:
            self._load()
        st = self.state
        pos = int(st.position[0])
        x = self.embed[int(ids.reshape(-1)[0])].copy()
        L = len(self.layers)
        ops = np.zeros(L, dtype=np.int64)
        deltas = np.zeros(L, dtype=np.int64)
        rb = np.full((L, self.P), -1, dtype=np.int64)
        ws = np.full((L, 2), -1, dtype=np.int64)
        cs = np.full((L, 2), -1, dtype=np.int64)
        ent = np.zeros(L, dtype=np.float32)
        for i, (w, ls) in enumerate(zip(self.layers, st.layers)):
            x, ops[i], deltas[i] = self._layer(w, ls, x, pos, i, rb, ws, cs, ent)
        st.position.add_(1)
        logits = self._rms(x, self.norm, self.eps) @ self.head
        info = {"read_buckets": torch.from_numpy(rb).unsqueeze(0), "write_slot": torch.from_numpy(ws).unsqueeze(0),
                "cleared_slot": torch.from_numpy(cs).unsqueeze(0), "router_entropy": torch.from_numpy(ent).unsqueeze(0),
                "commit_delta": torch.from_numpy(deltas).unsqueeze(0)}
        return StepOutput(logits=torch.from_numpy(logits).unsqueeze(0), opcodes=torch.from_numpy(ops).unsqueeze(0),
                          info=info)

    def _layer(self, w: _LayerWeights, ls, x, pos, i, rb, ws, cs, ent):
        views = self._views(i, ls)
        u = self._rms(x, w.norm, w.eps)
        conv = views["conv"]  # [k-1, d] view of the state
        c = (conv * w.conv[:-1]).sum(0) + u * w.conv[-1]
        conv[:-1] = conv[1:]
        conv[-1] = u
        h = c @ w.mlp_in_w + w.mlp_in_b
        g, up = h[:w.hidden], h[w.hidden:]
        local = (g * _sigmoid(g) * up) @ w.mlp_out_w + w.mlp_out_b
        p = u @ w.proj_w + w.proj_b
        q, kn, v, opl, gl, ul, cl, fl, ri = (p[sl] for sl in w.slices)
        op = int(np.argmax(opl))
        if op == _CLEAR and w.clear_confidence > 0:  # MosaicBlock._decide: an unsure CLEAR is a NOP
            if 1.0 / np.exp(opl - opl[_CLEAR]).sum() < w.clear_confidence:
                op = _NOP
        regs = views["registers"]  # [K, R]
        regs *= w.lam
        regs += (1.0 - w.lam) * ri.reshape(regs.shape)
        reg = regs.reshape(-1) @ w.readout
        delta = int(np.argmax(cl)) - 1 if op == _COMMIT else 0
        if delta:
            ls.ledger.add_(delta)
        mem = None
        if w.mem is not None:
            if w.query_scale is not None:  # Memory.read_space: cosine reads
                q, kn = _normalize(q) * w.query_scale, _normalize(kn)
            mem = self._memory(w, views, q, kn, v, ul, gl, op, pos, i, rb, ws, cs, ent)
        gates = _sigmoid(fl)
        if op == _UP:
            gates = gates + (1 - gates)
        elif op == _DOWN:
            gates = gates - gates
        if op == _IDLE:
            return x, op, delta
        upd = local + gates[0] * reg
        if mem is not None:
            upd = upd + gates[1] * mem
        return x + upd, op, delta

    def _memory(self, w, views, q, kn, v, ul, gl, op, pos, i, rb, ws, cs, ent):
        k = views["prev_key"].copy()
        views["prev_key"][:] = kn
        logits = _normalize(np.stack([q, k])) @ w.router_w + w.router_b
        rl, wl = logits[0], logits[1]
        z = rl - rl.max()
        lp = z - np.log(np.exp(z).sum())
        ent[i] = -(np.exp(lp) * lp).sum()
        if w.Ps < rl.shape[0]:  # the top Ps, best first (as topk)
            top = np.argpartition(-rl, w.Ps - 1)[: w.Ps]
            probes = top[np.argsort(-rl[top], kind="stable")]
        else:
            probes = np.argsort(-rl, kind="stable")
        rb[i] = probes[: w.P]
        keys, vals = views["mem_keys"], views["mem_values"]
        valid, util, age = views["mem_valid"], views["mem_utility"], views["mem_age"]
        mem = None
        if op in (_READ, _SCAN):
            ck = keys[probes].reshape(-1, keys.shape[-1])
            live = valid[probes].reshape(-1)
            if op == _READ:  # only the plain read's probes count
                n = w.P * w.W
                ck, live, cv = ck[:n], live[:n], vals[probes[: w.P]].reshape(n, -1)
            else:
                cv = vals[probes].reshape(-1, vals.shape[-1])
            if live.any():
                s = (ck @ q) * w.scale
                top = s[live].max()
                e = np.where(live, np.exp(np.where(live, s - top, 0.0)), 0.0).astype(np.float32)
                r = (e / e.sum()) @ cv
            else:
                r = np.zeros(vals.shape[-1], dtype=np.float32)
            mem = r @ w.out_w
        else:
            mem = np.zeros(w.out_w.shape[1], dtype=np.float32)
        do_write = op == _WRITE and gl[0] > 0
        if do_write or op == _CLEAR:
            wb = int(np.argmax(wl))
            bvalid = valid[wb]
            cos = np.where(bvalid, _normalize(keys[wb]) @ _normalize(k), -np.inf)
            best = int(np.argmax(cos))
            if do_write:
                if bvalid.any() and cos[best] >= w.threshold:
                    way = best
                elif not bvalid.all():
                    way = int(np.argmin(bvalid))
                else:
                    bu = util[wb]
                    way = int(np.argmin(np.where(bu == bu.min(), age[wb], np.iinfo(np.int64).max)))
                keys[wb, way], vals[wb, way] = k, v
                util[wb, way], age[wb, way], valid[wb, way] = _sigmoid(ul[0]), pos, True
                ws[i] = (wb, way)
            elif bvalid.any():
                keys[wb, best], vals[wb, best] = 0.0, 0.0
                util[wb, best], age[wb, best], valid[wb, best] = 0.0, 0, False
                cs[i] = (wb, best)
        return mem


# ---------------------------------------------------------------------------------------------
# GPU: the memory step on the Triton table kernels, and the choice of path
# ---------------------------------------------------------------------------------------------
def triton_memory_step_(mem, st, q, k, v, utility, pos, sel_read, sel_scan, do_write, clear, bucket):
    """Drop-in for ``Memory.step_`` (same arguments and results) on the Triton table kernels:
    routing stays in PyTorch; both reads run in one kernel straight from the table, and the
    write / clear / evict policy with its table update in another (instead of ~60 small ops)."""
    from kernels.memory import triton as tw

    logits = mem.route(torch.stack([q, k], dim=1))
    read_logits, write_logits = logits[:, 0], logits[:, 1]
    lp = read_logits.log_softmax(-1)
    entropy = -(lp.exp() * lp).sum(-1)
    probes = mem.force(read_logits, bucket).topk(mem.Ps, dim=-1).indices
    r_p, r_s = tw.table_read(q, probes, st.mem_keys, st.mem_values, st.mem_valid, mem.P)
    M = mem.out(sel_read.unsqueeze(-1) * r_p + sel_scan.unsqueeze(-1) * r_s)
    wb = mem.force(write_logits, bucket).argmax(-1)
    wslot, cslot = tw.table_write_(st.mem_keys, st.mem_values, st.mem_utility, st.mem_age, st.mem_valid,
                                   wb, k, v, utility, pos, do_write, clear, mem.threshold)
    info = {"read_buckets": probes[:, : mem.P], "write_slot": wslot, "cleared_slot": cslot,
            "router_entropy": entropy}
    return M, info


class _patched_memory:
    """While active, every memory layer of ``model`` steps through :func:`triton_memory_step_`."""

    def __init__(self, model):
        self.mems = [b.memory for b in model.blocks if getattr(b, "memory", None) is not None]

    def __enter__(self):
        for m in self.mems:
            m.step_ = types.MethodType(triton_memory_step_, m)
        return self

    def __exit__(self, *exc):
        for m in self.mems:
            m.__dict__.pop("step_", None)
        return False


class EagerStep:
    """Plain ``model.step`` with the same interface as the fast paths."""

    name = "eager"

    def __init__(self, model, state):
        self.model, self.state = model, state

    def step(self, ids: torch.Tensor):
        return self.model.step(ids, self.state)


class TritonGraphedStep(GraphedStep):
    """The whole step captured in one CUDA graph, with the Triton kernels (scan, reads, the
    fused table read and table write) in place of the naive ops."""

    name = "cuda graph + triton"

    def __init__(self, model, state, warmup: int = 2):
        old = os.environ.get("MOSAIC_KERNELS")
        os.environ["MOSAIC_KERNELS"] = "triton"
        try:
            with _patched_memory(model):
                super().__init__(model, state, warmup=warmup)
        finally:
            if old is None:
                os.environ.pop("MOSAIC_KERNELS", None)
            else:
                os.environ["MOSAIC_KERNELS"] = old


class CompiledGraphedStep(GraphedStep):
    """``torch.compile`` of ``model.step`` (inductor fuses the small ops into a few Triton
    kernels), then captured in one CUDA graph. Compiling takes a minute or more."""

    name = "cuda graph + torch.compile"

    def __init__(self, model, state, warmup: int = 3):
        compiled = torch.compile(model.step, dynamic=False, fullgraph=False)
        super().__init__(model, state, warmup=warmup, step_fn=compiled)


def fast_stepper(model, state, prefer: str | None = None):
    """The fastest decode path for ``state``'s device and batch, falling back step by step.

    CUDA: GraphedFusedStep, else TritonGraphedStep, else GraphedStep (naive kernels), else eager.
    CPU at batch 1: CpuStep, else eager. ``prefer`` ('fused', 'graph', 'triton-graph', 'compile',
    'cpu', 'eager') forces one
    ('compile' builds for a minute or more, so it is never picked by default).
    Every path exposes ``.step(ids) -> StepOutput``, ``.state`` and ``.name``; on a GPU also
    ``.skipped``, why the faster paths before it could not be built.
    """
    dev = state.device
    if prefer == "eager":
        return EagerStep(model, state)
    if dev.type == "cuda":
        tries = {"graph": [GraphedStep], "triton-graph": [TritonGraphedStep], "compile": [CompiledGraphedStep],
                 "fused": [GraphedFusedStep]}.get(prefer, [GraphedFusedStep, TritonGraphedStep, GraphedStep])
        skipped: list[str] = []
        for cls in tries:
            try:
                s = cls(model, state)
                s.skipped = skipped
                return s
            except Exception as e:  # not capturable / not compilable here: try the next path
                if prefer:
                    raise
                skipped.append(f"{cls.name}: {type(e).__name__}: {str(e)[:300]}")
        s = EagerStep(model, state)
        s.skipped = skipped
        return s
    if state.batch_size == 1 and prefer in (None, "cpu"):
        try:
            return CpuStep(model, state)
        except ValueError:
            if prefer:
                raise
    return EagerStep(model, state)


# ---------------------------------------------------------------------------------------------
# GPU: the whole step on the fused decode kernels (3 launches per layer), then graphed
# ---------------------------------------------------------------------------------------------
class FusedStep:
    """``model.step`` on kernels.decode's fused kernels: per layer one launch for the norm, conv
    and input projections, one for the MLP output and registers, one for decisions, memory,
    fusion and the state update; the LM head in one more. Eager here; ``GraphedFusedStep``
    captures it. The state is the caller's VMState, mutated in place. Weight copies (the
    concatenated input projection, the decays) are refreshed in place when a parameter changed.
    Teacher labels are not supported (decoding needs none).
    """

    name = "fused triton (eager)"

    def __init__(self, model, state):
        from kernels.decode import triton as kd

        ours = tuple(int(o) for o in (Opcode.READ_MEM, Opcode.WRITE_MEM, Opcode.CLEAR_MEM, Opcode.IDLE,
                                      Opcode.GATE_UP, Opcode.GATE_DOWN, Opcode.SCAN, Opcode.COMMIT))
        if ours != kd.OPCODES or len(Opcode) != kd.N_OPCODES:
            raise RuntimeError("kernels.decode's opcode numbers disagree with engine.vm.isa")
        if not _plain_linear(model):
            raise ValueError("FusedStep needs plain nn.Linear layers (an adapter is attached)")
        self.model, self.state = model, state
        self.watch = _WeightWatch(model)
        cfg = model.config
        B, dev, d = state.batch_size, state.device, cfg.d_model
        L = cfg.n_layers
        self.layers = []
        for blk in model.blocks:
            sz = blk.sizes
            off = [0]
            for n in sz[:-1]:
                off.append(off[-1] + n)
            n_proj = sum(sz)
            lay = {
                "blk": blk, "n_proj": n_proj, "ri0": off[8],
                "offsets": (off[0], off[1], off[2], off[3], off[4], off[5], off[6], off[7]),
                "w_cat": torch.empty(n_proj + blk.mlp_in.out_features, d, device=dev),
                "b_cat": torch.empty(n_proj + blk.mlp_in.out_features, device=dev),
                "lam": torch.empty(cfg.timescales * cfg.register_channels, device=dev),
                "a": torch.empty(B, n_proj + blk.mlp_in.out_features, device=dev),
                "mem": None,
            }
            if blk.memory is not None:
                m = blk.memory
                lay["mem"] = {"router_w": m.router.weight, "router_b": m.router.bias, "out_w": m.out.weight,
                              "NB": m.NB, "W": m.W, "PS": m.Ps, "threshold": m.threshold,
                              "query_scale": m.query_scale}
            self.layers.append(lay)
        # On a GPU small tiles spread the GEMVs over many SMs; on the CPU (Triton's interpreter,
        # in tests) fewer, larger programs run much faster.
        gpu = dev.type == "cuda"
        self.bn_in = 32 if gpu else 256
        self.bn_mid = 8 if gpu else 1 << max(d - 1, 0).bit_length()
        f32 = dict(device=dev, dtype=torch.float32)
        self.x = [torch.empty(B, d, **f32), torch.empty(B, d, **f32)]
        self.u, self.local, self.reg = (torch.empty(B, d, **f32) for _ in range(3))
        self.snew = torch.empty(B, cfg.timescales * cfg.register_channels, **f32)
        self.logits = torch.empty(B, cfg.vocab_size, **f32)
        i64 = dict(device=dev, dtype=torch.long)
        self.outs = (torch.empty(B, L, **i64), torch.empty(B, L, cfg.probes, **i64), torch.empty(B, L, 2, **i64),
                     torch.empty(B, L, 2, **i64), torch.empty(B, L, **f32), torch.empty(B, L, **i64))
        self.refresh()

    def _versions(self) -> int:
        return self.watch.version()

    @torch.no_grad()
    def refresh(self) -> None:
        """Re-copy the derived weights in place (captured graphs keep their addresses)."""
        for lay in self.layers:
            blk = lay["blk"]
            n = lay["n_proj"]
            lay["w_cat"][:n].copy_(blk.proj.weight)
            lay["w_cat"][n:].copy_(blk.mlp_in.weight)
            lay["b_cat"][:n].copy_(blk.proj.bias)
            lay["b_cat"][n:].copy_(blk.mlp_in.bias)
            lay["lam"].copy_(blk.registers.decay().repeat_interleave(blk.registers.R))
        self.version = self._versions()

    def stale(self) -> bool:
        return self._versions() != self.version

    @torch.no_grad()
    def run(self, ids: torch.Tensor):
        """The launches of one step (capturable); returns the StepOutput over static buffers."""
        from kernels.decode import triton as kd
        from engine.vm.model import StepOutput

        m, st = self.model, self.state
        x, y = self.x
        torch.index_select(m.embed.weight, 0, ids, out=x)
        for i, (lay, ls) in enumerate(zip(self.layers, st.layers)):
            blk = lay["blk"]
            kd.decode_in(x, blk.norm, blk.conv[:, 0, :], ls.conv, lay["w_cat"], lay["b_cat"], lay["n_proj"],
                         blk.eps, lay["a"], self.u, block_n=self.bn_in)
            kd.decode_mid(lay["a"], ls.registers, lay["lam"], blk.mlp_out.weight, blk.mlp_out.bias,
                          blk.registers.readout.weight, lay["n_proj"], lay["ri0"], self.local, self.reg, self.snew,
                          block_n=self.bn_mid)
            kd.decode_out(i, x, lay["a"], self.local, self.reg, self.snew, self.u, y, ls, st.position,
                          lay["mem"], lay["offsets"], self.outs, blk.clear_confidence)
            x, y = y, x
        st.position.add_(1)
        kd.decode_head(x, m.norm, m.head.weight, m.config.norm_eps, self.logits)
        op, rb, ws, cs, ent, delta = self.outs
        return StepOutput(logits=self.logits, opcodes=op,
                          info={"read_buckets": rb, "write_slot": ws, "cleared_slot": cs,
                                "router_entropy": ent, "commit_delta": delta})

    def step(self, ids: torch.Tensor):
        if self.stale():
            self.refresh()
        return self.run(ids)


class GraphedFusedStep(GraphedStep):
    """FusedStep captured in one CUDA graph: ~3 launches per layer replayed as one."""

    name = "cuda graph + fused triton"

    def __init__(self, model, state, warmup: int = 2):
        if state.device.type != "cuda":
            raise RuntimeError("GraphedFusedStep needs a CUDA model")
        self.fused = FusedStep(model, state)
        super().__init__(model, state, warmup=warmup, step_fn=lambda ids, st: self.fused.run(ids))

    @torch.no_grad()
    def step(self, ids: torch.Tensor):
        if self.fused.stale():
            self.fused.refresh()
        return super().step(ids)
