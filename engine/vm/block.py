"""One MOSAIC block: local mixer, registers, memory, heads and the opcode that controls them.

Per token t:  u = rmsnorm(x);  one fused projection of u gives the query, the
*next* write key, the value, opcode logits, write-gate, utility and commitment
logits, the two fusion-gate logits and the registers' input. Then

    y = x + (1 - sel[IDLE]) * (local(u) + g_reg' * R + g_mem' * M)
    g'  = g + sel[GATE_UP] (1 - g) - sel[GATE_DOWN] g          (for g_reg and g_mem)
    M   = W_o (sel[READ] read_P + sel[SCAN] read_scan)

with sel = onehot(opcode) + softmax - softmax.detach() (straight-through: the value
is exactly the one-hot). The write key at t is the key projection of u_{t-1}
(kept in the state as prev_key), the value that of u_t.

``step_`` and ``forward`` give the same values. Two choices of the parallel path:
registers keep integrating at IDLE tokens (IDLE suppresses the residual update
only); and forward gathers memory only where READ or SCAN is selected (elsewhere
the read's term is exactly zero in value), the plain read over its P probes and
SCAN over all P_scan, so the STE gradient toward *choosing* a read exists only
at positions that read (teacher labels and the CE loss teach the rest).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from engine.vm.config import ModelConfig
from engine.vm.exact import decision_linear
from engine.vm.isa import N_OPCODES, Opcode
from engine.vm.memory import Memory, plan
from engine.vm.plan_batched import TensorPlan, plan_batched
from engine.vm.registers import Registers
from engine.vm.state import LayerState
from engine.vm.static_reads import compact
from kernels.elementwise import gated_update, opcode_select, swiglu

NOP = int(Opcode.NOP)
READ, WRITE, CLEAR, IDLE = int(Opcode.READ_MEM), int(Opcode.WRITE_MEM), int(Opcode.CLEAR_MEM), int(Opcode.IDLE)
UP, DOWN, SCAN, COMMIT = int(Opcode.GATE_UP), int(Opcode.GATE_DOWN), int(Opcode.SCAN), int(Opcode.COMMIT)


def plan_slots(static: bool = False, **kw) -> TensorPlan:
    """The memory's slot plan (:func:`engine.vm.memory.plan`'s arguments, as tensors), by
    ``MOSAIC_PLANNER``: "device" (default) batched on the tensors' own device one event rank at
    a time; "chains" every bucket chain walked by its own program (kernels.chains: one Triton
    launch on a GPU); "host" the NumPy reference walk. ``static`` (fixed read capacities) always
    takes "chains", the one walk whose shapes do not depend on the data."""
    planner = "chains" if static else os.environ.get("MOSAIC_PLANNER", "device")
    if planner != "host":
        return plan_batched(**kw, walker="chains" if planner == "chains" else "ranks")
    dev = kw["init_valid"].device
    pl = plan(**{k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})
    return TensorPlan(*(torch.from_numpy(getattr(pl, f)).to(dev)
                        for f in ("final", "read_rows", "read_pos", "read_events")))


class MosaicBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        d = cfg.d_model
        self.d, self.eps, self.k = d, cfg.norm_eps, cfg.conv_kernel
        self.has_memory = cfg.has_memory(layer)
        mk, mv = (cfg.key_dim, cfg.value_dim) if self.has_memory else (0, 0)
        # q, next key, value, opcodes, write gate, utility, commitment, fusion gates, register input
        self.sizes = [mk, mk, mv, N_OPCODES, 1, 1, 3, 2, cfg.timescales * cfg.register_channels]
        self.norm = nn.Parameter(torch.ones(d))
        self.conv = nn.Parameter(torch.randn(d, 1, cfg.conv_kernel) / cfg.conv_kernel)
        self.mlp_in = nn.Linear(d, 2 * cfg.mlp_hidden)
        self.mlp_out = nn.Linear(cfg.mlp_hidden, d)
        self.proj = nn.Linear(d, sum(self.sizes))
        self.registers = Registers(d, cfg.timescales, cfg.register_channels, cfg.lambdas())
        self.memory = Memory(d, cfg.buckets, cfg.ways, cfg.key_dim, cfg.value_dim, cfg.probes,
                             cfg.scan_probes, cfg.match_threshold, cfg.read_temperature) if self.has_memory else None
        self.dk, self.dv = cfg.key_dim, cfg.value_dim
        self.clear_confidence = float(cfg.clear_confidence)
        # forward's reads: exact (None; a GPU waits for the count) or at most a fixed number per
        # kind, so that no shape depends on the data (engine.vm.static_reads); then read_overflow
        # is a bool tensor, True where the last forward had more reads than that
        self.read_capacity = None
        self.read_overflow: torch.Tensor | None = None

    # --- shared pieces -------------------------------------------------------------------------
    def _mlp(self, c: torch.Tensor) -> torch.Tensor:
        return self.mlp_out(swiglu(self.mlp_in(c)))   # silu(gate half) * up half

    def _decide(self, op_logits, gate_logits, t_op, t_gate):
        """(op [...] long, gate [...] bool, sel [..., n], store [...]): kernels.elementwise.opcode_select.

        The opcode is the argmax, except that a CLEAR whose probability is below
        ``clear_confidence`` becomes a NOP (a clear cannot be undone); teacher labels (>= 0) win.
        sel is its straight-through one-hot, store the write gate times sel[WRITE]."""
        return opcode_select(op_logits, gate_logits, t_op, t_gate, CLEAR, NOP, WRITE, self.clear_confidence)

    @staticmethod
    def _fuse(x, local, reg, mem, sel, gate_logits):
        """y = x + (1 - sel[IDLE]) * (local + g_reg' * reg + g_mem' * mem): kernels.elementwise.gated_update."""
        return gated_update(x, local, reg, mem, sel, gate_logits, UP, DOWN, IDLE)

    # --- one token -----------------------------------------------------------------------------
    @torch.no_grad()
    def step_(self, x: torch.Tensor, st: LayerState, pos: torch.Tensor, t_op=None, t_gate=None, t_bucket=None):
        """One token for a batch: x [B, d] -> y [B, d]; mutates ``st`` in place.

        pos: [B] long position of this token; t_*: [B] teacher labels (-1 free) or None.
        Returns (y, opcode [B], info dict of [B, ...] tensors or None for a layer without memory,
        commit_delta [B]).
        """
        u = F.rms_norm(x, (self.d,), self.norm, self.eps)
        window = torch.cat([st.conv, u.unsqueeze(1)], dim=1)  # [B, k, d]
        c = (window * self.conv[:, 0, :].t()).sum(1)
        st.conv.copy_(window[:, 1:])
        local = self._mlp(c)
        q, kn, v, opl, gl, ul, cl, fl, ri = decision_linear(self.proj, u).split(self.sizes, dim=-1)
        op, gate, sel, _ = self._decide(opl, gl[:, 0], t_op, t_gate)
        self.registers.step_(ri, st.registers)
        reg = self.registers.readout(st.registers.flatten(1))
        delta = torch.where(op == COMMIT, cl.argmax(-1) - 1, 0)
        st.ledger.add_(delta)
        mem, info = None, None
        if self.memory is not None:
            q, kn = self.memory.read_space(q, kn)
            k = st.prev_key.clone()
            st.prev_key.copy_(kn)
            mem, info = self.memory.step_(st, q, k, v, torch.sigmoid(ul[:, 0]), pos, sel[:, READ], sel[:, SCAN],
                                          (op == WRITE) & gate, op == CLEAR, t_bucket)
        y = self._fuse(x, local, reg, mem, sel, fl)
        return y, op, info, delta

    # --- a whole sequence ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, st: LayerState, pos0: torch.Tensor, t_op=None, t_gate=None, t_bucket=None,
                keep_state: bool = True):
        """A sequence for a batch: x [B, T, d] -> y [B, T, d], parallel over time.

        st: the LayerState before the sequence (not modified); pos0: [B] position of t=0;
        t_*: [B, T] teacher labels or None. Returns (y, new LayerState (detached; None when
        ``keep_state`` is False), aux dict).
        """
        B, T, d = x.shape
        u = F.rms_norm(x, (d,), self.norm, self.eps)
        ucat = torch.cat([st.conv, u], dim=1)  # [B, k-1+T, d]
        c = F.conv1d(ucat.transpose(1, 2), self.conv, groups=d).transpose(1, 2)
        local = self._mlp(c)
        q, kn, v, opl, gl, ul, cl, fl, ri = decision_linear(self.proj, u).split(self.sizes, dim=-1)
        gl, ul = gl.squeeze(-1), ul.squeeze(-1)  # views: a select's backward would scatter into zeros
        op, gate, sel, store = self._decide(opl, gl, t_op, t_gate)
        s = self.registers.scan(ri, st.registers)  # [B, T, K*R]
        reg = self.registers.readout(s)
        new = None
        if keep_state:
            delta = torch.where(op == COMMIT, cl.argmax(-1) - 1, 0)
            new = LayerState(
                registers=s[:, -1].detach().reshape(st.registers.shape).clone(memory_format=torch.contiguous_format),
                conv=ucat[:, T:].detach().clone(memory_format=torch.contiguous_format),
                prev_key=st.prev_key.clone(),
                mem_keys=st.mem_keys, mem_values=st.mem_values, mem_utility=st.mem_utility,
                mem_age=st.mem_age, mem_valid=st.mem_valid,
                ledger=st.ledger + delta.sum(1),
            )
        aux = {"opcode_logits": opl, "opcodes": op, "write_gate_logits": gl, "utility_logits": ul,
               "commit_logits": cl}
        mem = None
        if self.memory is not None:
            q, kn = self.memory.read_space(q, kn)
            keys = torch.cat([st.prev_key.unsqueeze(1), kn[:, :-1]], dim=1)  # write key of t = key proj of u_{t-1}
            mem, table = self._memory_forward(q, keys, v, ul, store, op, gate, sel, st, pos0, t_bucket, aux,
                                              keep_state)
            if keep_state:
                new.prev_key = kn[:, -1].detach().clone(memory_format=torch.contiguous_format)
                new.mem_keys, new.mem_values, new.mem_utility, new.mem_age, new.mem_valid = table
        else:
            z = x.new_zeros(B, T)
            aux.update(keys=x.new_zeros(B, T, self.dk), queries=x.new_zeros(B, T, self.dk),
                       router_write_logits=x.new_zeros(B, T, 0), router_read_logits=x.new_zeros(B, T, 0))
            aux["write_gate_logits"], aux["utility_logits"] = z, z
        y = self._fuse(x, local, reg, mem, sel, fl)
        return y, new, aux

    def _memory_forward(self, q, keys, v, util_logits, store, op, gate, sel, st, pos0, t_bucket, aux,
                        keep_state=True):
        """Memory of a sequence: plan slots without grad, then differentiable reads of the rows they name.

        Returns (M [B, T, d], final table (keys, values, utility, age, valid); None without ``keep_state``).
        """
        m = self.memory
        B, T, _ = q.shape
        NB, W = m.NB, m.W
        read_logits, write_logits = m.route(q), m.route(keys)
        aux.update(keys=keys, queries=q, router_write_logits=write_logits, router_read_logits=read_logits)
        utility = torch.sigmoid(util_logits)
        stored = v * store.unsqueeze(-1)   # a write's value, times its gate and sel[WRITE] (straight-through)
        with torch.no_grad():
            bucket = m.force(write_logits, t_bucket).argmax(-1)
            # READ positions, then SCAN positions, as flat ids b * T + t (padding: B * T)
            cap = self.read_capacity
            f_read, over_read = compact(op == READ, None if cap is None else cap.reads)
            f_scan, over_scan = compact(op == SCAN, None if cap is None else cap.scans)
            self.read_overflow = None if cap is None else over_read | over_scan
            n_read, flat_pos = f_read.shape[0], torch.cat([f_read, f_scan])
            real = flat_pos < B * T
            # padding reads distinct positions (no two of its outputs or gradients meet) and no slot
            at = torch.where(real, flat_pos, torch.arange(flat_pos.shape[0], device=q.device) % (B * T))
            rows, pos = at // T, at % T
            tb = None if t_bucket is None else t_bucket.reshape(-1)[at]
            probes = m.force(read_logits.reshape(B * T, -1)[at], tb).topk(m.Ps, dim=-1).indices
            pl = plan_slots(static=cap is not None, threshold=m.threshold, write=(op == WRITE) & gate,
                            clear=op == CLEAR, bucket=bucket, keys=keys.detach(), utility=utility.detach(), pos0=pos0,
                            read_rows=rows, read_pos=pos, read_probes=probes, init_valid=st.mem_valid,
                            init_keys=st.mem_keys, init_utility=st.mem_utility, init_age=st.mem_age)
        span = NB * W + T
        all_keys = torch.cat([st.mem_keys.reshape(B, NB * W, -1), keys], dim=1).reshape(B * span, -1)
        all_vals = torch.cat([st.mem_values.reshape(B, NB * W, -1), stored], dim=1).reshape(B * span, -1)
        M = None
        if flat_pos.shape[0]:
            events = pl.read_events                                           # [N, Ps*W]
            q_at, sel_at = q.reshape(B * T, -1).index_select(0, at), sel.reshape(B * T, -1).index_select(0, at)
            outs = []
            for wide, part in ((False, slice(0, n_read)), (True, slice(n_read, None))):
                if rows[part].shape[0] == 0:
                    continue
                # READ reads its P probes only; SCAN all Ps (and both reads)
                e = events[part] if wide else events[part, : m.P * W]
                index = rows[part].unsqueeze(1) * span + e.clamp(min=0)
                live = (e >= 0) & real[part].unsqueeze(1)
                s = sel_at[part]
                outs.append(m.mix_rows(q_at[part], all_keys, all_vals, index, live, s[:, READ],
                                       s[:, SCAN] if wide else None))
            # padding reads no live slot, so its outputs are exactly zero: added at its stand-in
            # positions they change nothing (and no spare row needs cutting off, a scatter in backward)
            mix = torch.cat(outs)  # the readout's dtype (bf16 under autocast), q's is float32
            M = mix.new_zeros(B * T, m.out.out_features).index_add(0, at, mix).view(B, T, -1)
        if not keep_state:
            return M, None
        # the final table, gathered from the events that occupy each slot
        with torch.no_grad():
            fin = pl.final.reshape(B, NB * W)
            valid = fin >= 0
            flat = torch.arange(B, device=q.device).unsqueeze(1) * span + fin.clamp(min=0)
            all_util = torch.cat([st.mem_utility.reshape(B, -1), utility], dim=1).reshape(-1)
            ages = pos0.unsqueeze(1) + torch.arange(T, device=q.device)
            all_age = torch.cat([st.mem_age.reshape(B, -1), ages], dim=1).reshape(-1)
            vm = valid.unsqueeze(-1)
            table = (
                torch.where(vm, all_keys[flat], 0.0).reshape_as(st.mem_keys).detach(),
                torch.where(vm, all_vals[flat], 0.0).reshape_as(st.mem_values).detach(),
                torch.where(valid, all_util[flat], 0.0).reshape_as(st.mem_utility).detach(),
                torch.where(valid, all_age[flat], 0).reshape_as(st.mem_age),
                valid.reshape_as(st.mem_valid).clone(),
            )
        return M, table
