"""The set-associative memory of one layer: one shared router, slot policy, reads and writes.

Table per sequence: ``buckets`` x ``ways`` slots of (key, value, utility, age, valid).

* Router: ONE linear map on the L2-normalised, detached key or query. The write
  bucket is argmax(router(k)); a read probes the top ``probes`` buckets of
  router(q), a SCAN the top ``scan_probes``. A teacher bucket label wins: it
  becomes the write bucket, and the first read probe (the rest are the best
  other buckets, so no bucket is probed twice).
* Write policy in the bucket: the valid way whose key has the highest cosine
  with k, if that cosine >= ``match_threshold``; else the first empty way; else
  the way with the lowest utility (the oldest age breaks ties). The slot then
  holds (k, v, sigmoid(utility head), position, valid).
* Clear: the valid way with the highest cosine to k is emptied (all zeros).
* Read: masked softmax of q . k / sqrt(dk) over the live ways of the probed
  buckets, weighted values, projected back to d_model (kernels.memory).

Two paths with the same decisions: :meth:`Memory.step_` mutates the table for one
token of a batch; :func:`plan` is the no-grad integer pass of ``forward``, which
decides every write's slot and lists each read's live write events, so that the
reads themselves are differentiable gathers of the sequence's own projections.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.vm.exact import decision_linear
from kernels.elementwise import unit_rows
from kernels.memory import read_mix

_BIG_AGE = torch.iinfo(torch.long).max


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table`` [R, ...] rows at ``index`` [...] (any shape) -> [..., ...].

    index_select on a flat row view: whole rows are copied at once, much faster on the
    CPU than multi-tensor advanced indexing, and its backward is an index_add.
    """
    rest = table.shape[1:]
    return table.reshape(table.shape[0], -1).index_select(0, index.reshape(-1)).view(*index.shape, *rest)


def gather_buckets(table: torch.Tensor, rows: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
    """``table`` [B, NB, ...] at (rows, buckets) (broadcastable index tensors) -> [..., ...]."""
    B, NB = table.shape[:2]
    return gather_rows(table.reshape(B * NB, *table.shape[2:]), rows * NB + buckets)


class Memory(nn.Module):
    def __init__(self, d_model: int, buckets: int, ways: int, key_dim: int, value_dim: int,
                 probes: int, scan_probes: int, match_threshold: float, read_temperature: float | None = None):
        super().__init__()
        self.NB, self.W, self.dk, self.dv = buckets, ways, key_dim, value_dim
        self.Ps = scan_probes
        self.router = nn.Linear(key_dim, buckets)
        self.out = nn.Linear(value_dim, d_model, bias=False)  # no bias: no read => exactly zero output
        self.register_buffer("probe_mask", torch.zeros(scan_probes * ways, dtype=torch.bool), persistent=False)
        self.set_reads(probes, read_temperature, match_threshold)

    def set_reads(self, probes: int, read_temperature: float | None, match_threshold: float) -> None:
        """The read settings, which shape no weight: buckets a READ probes (<= scan_probes), dot-product
        (None) or cosine / t reads, and the write policy's match threshold (a cosine)."""
        self.P = probes
        self.probe_mask.copy_(torch.arange(self.Ps * self.W) < probes * self.W)
        self.threshold = float(match_threshold)
        # cosine reads: queries scaled so that the kernels' q . k / sqrt(dk) is cos(q, k) / t
        self.query_scale = None if read_temperature is None else self.dk ** 0.5 / float(read_temperature)

    def read_space(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries and write keys [..., dk] as the reads score them: unchanged (dot-product reads),
        or for cosine reads ``read_temperature`` t: (q / |q| * sqrt(dk) / t, k / |k|).

        Keys are stored at unit length, so every read kernel computes cos(q, k) / t with no change;
        routing and the write policy normalise both anyway, so they decide exactly as before.
        """
        if self.query_scale is None:
            return q, k
        return unit_rows(q, self.query_scale), unit_rows(k, 1.0)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Router logits [..., NB] of keys or queries x [..., dk] (normalised, detached)."""
        return decision_linear(self.router, unit_rows(x.detach(), 1.0))

    @staticmethod
    def force(logits: torch.Tensor, bucket: torch.Tensor | None) -> torch.Tensor:
        """Logits with the teacher's bucket (where >= 0) raised to +inf, so it wins argmax/top-k."""
        if bucket is None:
            return logits
        ids = torch.arange(logits.shape[-1], device=logits.device)
        hit = bucket.unsqueeze(-1) == ids  # -1 (free) matches nothing
        return logits.masked_fill(hit, float("inf"))

    def mix_rows(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor,
                 live: torch.Tensor, sel_read: torch.Tensor, sel_scan: torch.Tensor | None) -> torch.Tensor:
        """Memory contribution [N, d] = W_o (sel_read * read_P + sel_scan * read_scan) of N reads
        whose slots are rows of the tables keys [R, dk] / values [R, dv] (forward's sequence).

        q [N, dk]; index [N, S] rows, live [N, S]: the slots of the probes, probe-major. SCAN:
        S = Ps*W and both reads (the plain one over the first P*W slots). READ: S = P*W and
        sel_scan None: where SCAN is not selected its term is exactly zero in value, so forward
        skips the wide read there (4x fewer slots); only the STE gradient toward choosing SCAN
        at a READ is given up. The weighting happens inside the read (kernels.memory.read_mix).
        """
        return self.out(read_mix(q, keys, values, index, live, self.P * self.W, sel_read, sel_scan))

    def mix_pair(self, q, keys, values, live, sel_read, sel_scan) -> torch.Tensor:
        """Both reads for decoding (:meth:`mix_rows`'s math over gathered slots), scoring them once.

        Same math as two ``read_slots`` calls (plain read over the first P*W slots,
        scan over all), in about a third of the ops: the scores and their exp are
        shared, and both weightings go through one batched product with the values.
        """
        scores = (keys @ q.unsqueeze(-1)).squeeze(-1) * (q.shape[-1] ** -0.5)   # [B, S]
        scores = scores.masked_fill(~live, float("-inf"))
        top = scores.amax(-1, keepdim=True)
        e = torch.exp(scores - torch.where(torch.isfinite(top), top, 0.0))    # dead slots: 0
        w = torch.stack([e * self.probe_mask, e], dim=1)                        # [B, 2, S]
        denom = w.sum(-1, keepdim=True)
        w = w / torch.where(denom > 0, denom, 1.0)
        r = w @ values                                                          # [B, 2, dv]
        return self.out(sel_read.unsqueeze(-1) * r[:, 0] + sel_scan.unsqueeze(-1) * r[:, 1])

    # ------------------------------------------------------------------------------------------
    def step_(self, st, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, utility: torch.Tensor,
              pos: torch.Tensor, sel_read: torch.Tensor, sel_scan: torch.Tensor,
              do_write: torch.Tensor, clear: torch.Tensor, bucket: torch.Tensor | None):
        """One token for a batch: read, then write or clear, mutating the table ``st`` in place.

        q, k: [B, dk] query and write key; v: [B, dv]; utility: [B] (sigmoid); pos: [B] long;
        sel_read/sel_scan: [B] opcode selections; do_write/clear: [B] bool (opcode WRITE and
        gate open / opcode CLEAR); bucket: [B] teacher bucket (-1 free) or None.
        Returns (M [B, d], info) with info: read_buckets [B, P], write_slot [B, 2],
        cleared_slot [B, 2], router_entropy [B].
        """
        B = q.shape[0]
        rows = torch.arange(B, device=q.device)
        unit = F.normalize(torch.stack([q, k], dim=1), dim=-1)  # what route() feeds the router
        logits = decision_linear(self.router, unit)  # [B, 2, NB]
        read_logits, write_logits = logits[:, 0], logits[:, 1]
        lp = read_logits.log_softmax(-1)
        entropy = -(lp.exp() * lp).sum(-1)
        probes = self.force(read_logits, bucket).topk(self.Ps, dim=-1).indices  # [B, Ps]
        NB = self.NB
        at = rows.unsqueeze(1) * NB + probes  # flat (row, bucket) ids
        keys = gather_rows(st.mem_keys.view(B * NB, self.W, self.dk), at).flatten(1, 2)      # [B, Ps*W, dk]
        values = gather_rows(st.mem_values.view(B * NB, self.W, self.dv), at).flatten(1, 2)  # [B, Ps*W, dv]
        live = gather_rows(st.mem_valid.view(B * NB, self.W), at).flatten(1, 2)
        M = self.mix_pair(q, keys, values, live, sel_read, sel_scan)

        # --- write / clear: the same policy as plan(), vectorised over the batch ----------------
        wb = self.force(write_logits, bucket).argmax(-1)  # [B]
        at = rows * NB + wb
        bk = gather_rows(st.mem_keys.view(B * NB, self.W, self.dk), at)          # [B, W, dk]
        bv = gather_rows(st.mem_values.view(B * NB, self.W, self.dv), at)        # [B, W, dv]
        bvalid = gather_rows(st.mem_valid.view(B * NB, self.W), at)              # [B, W]
        butil = gather_rows(st.mem_utility.view(B * NB, self.W), at)
        bage = gather_rows(st.mem_age.view(B * NB, self.W), at)
        cos = (F.normalize(bk, dim=-1) @ unit[:, 1].unsqueeze(-1)).squeeze(-1)
        best_cos, best_way = cos.masked_fill(~bvalid, float("-inf")).max(-1)
        empty = ~bvalid
        first_empty = empty.to(torch.uint8).argmax(-1)
        lowest = butil == butil.min(-1, keepdim=True).values
        evict = torch.where(lowest, bage, torch.full_like(bage, _BIG_AGE)).argmin(-1)
        way = torch.where(best_cos >= self.threshold, best_way, torch.where(empty.any(-1), first_empty, evict))
        do_clear = clear & bvalid.any(-1)
        way = torch.where(do_clear, best_way, way)
        # One slot per row is rewritten: the write's content, zeros for a clear, else itself.
        keep = ~(do_write | do_clear)
        w1, kf = do_write.unsqueeze(-1), keep.to(k.dtype)
        new_key = torch.where(w1, k, bk[rows, way] * kf.unsqueeze(-1))
        new_val = torch.where(w1, v, bv[rows, way] * kf.unsqueeze(-1))
        new_util = torch.where(do_write, utility, butil[rows, way] * kf)
        new_age = torch.where(do_write, pos, bage[rows, way] * keep)
        new_valid = do_write | (keep & bvalid[rows, way])
        idx = (rows, wb, way)
        st.mem_keys.index_put_(idx, new_key)
        st.mem_values.index_put_(idx, new_val)
        st.mem_utility.index_put_(idx, new_util)
        st.mem_age.index_put_(idx, new_age)
        st.mem_valid.index_put_(idx, new_valid)
        slot = torch.stack([wb, way], dim=-1)
        none = torch.full_like(slot, -1)
        info = {
            "read_buckets": probes[:, : self.P],
            "write_slot": torch.where(do_write.unsqueeze(-1), slot, none),
            "cleared_slot": torch.where(do_clear.unsqueeze(-1), slot, none),
            "router_entropy": entropy,
        }
        return M, info


# ----------------------------------------------------------------------------------------------
# The no-grad integer pass of forward
# ----------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Decisions of one layer's memory over a sequence (integers only).

    Event ids index the table ``[initial slots (NB*W, slot-major) ; sequence positions (T)]``;
    -1 = empty. ``final``: [B, NB, W] occupant of every slot after the sequence.
    ``read_rows``/``read_pos``: [N] (batch row, position) of each read (READ or SCAN);
    ``read_events``: [N, Ps*W] occupant of every probed way at that read (probe-major).
    """

    final: np.ndarray
    read_rows: np.ndarray
    read_pos: np.ndarray
    read_events: np.ndarray


def choose_way(valid: np.ndarray, cos: np.ndarray, utility: np.ndarray, age: np.ndarray,
               threshold: float) -> tuple[int, bool]:
    """The write policy for one bucket: (way, matched). valid/cos/utility/age: [W]."""
    cosv = np.where(valid, cos, -np.inf)
    best = int(np.argmax(cosv))
    if valid.any() and cosv[best] >= threshold:
        return best, True
    if not valid.all():
        return int(np.argmin(valid)), False
    lowest = utility == utility.min()
    return int(np.argmin(np.where(lowest, age, np.iinfo(np.int64).max))), False


def plan(*, threshold: float, write: np.ndarray, clear: np.ndarray, bucket: np.ndarray, keys: np.ndarray,
         utility: np.ndarray, pos0: np.ndarray, read_rows: np.ndarray, read_pos: np.ndarray,
         read_probes: np.ndarray, init_valid: np.ndarray, init_keys: np.ndarray, init_utility: np.ndarray,
         init_age: np.ndarray) -> Plan:
    """Walk the sequence's memory events in order and decide every slot, exactly as ``step_`` would.

    write/clear: [B, T] bool events; bucket: [B, T] write/clear bucket; keys: [B, T, dk] write
    keys (raw); utility: [B, T] float; pos0: [B] position of t=0; read_rows/read_pos: [N] reads;
    read_probes: [N, Ps] probed buckets of each read; init_*: the table carried in [B, NB, W(, dk)].
    Cost: a Python step per write/clear event, one searchsorted for all reads.
    """
    B, NB, W = init_valid.shape
    T = write.shape[1]
    S = NB * W
    span = T + 2
    final = np.empty((B, NB, W), dtype=np.int64)
    read_events = np.empty((len(read_rows), read_probes.shape[1] * W), dtype=np.int64)
    kn = keys / np.maximum(np.linalg.norm(keys, axis=-1, keepdims=True), 1e-12)
    ikn = init_keys / np.maximum(np.linalg.norm(init_keys, axis=-1, keepdims=True), 1e-12)
    slot_ids = np.arange(S, dtype=np.int64)
    for b in range(B):
        valid = init_valid[b].copy()
        occ = np.where(valid, slot_ids.reshape(NB, W), -1)
        ck, cu, ca = ikn[b].copy(), init_utility[b].copy(), init_age[b].copy()
        ev_key = [slot_ids * span]          # every slot's initial occupant at time 0
        ev_occ = [occ.reshape(-1).copy()]
        ek, eo = [], []
        for t in np.flatnonzero(write[b] | clear[b]):
            nb = int(bucket[b, t])
            cos = ck[nb] @ kn[b, t]
            if write[b, t]:
                w, _ = choose_way(valid[nb], cos, cu[nb], ca[nb], threshold)
                occ[nb, w] = S + t
                ck[nb, w], cu[nb, w], ca[nb, w], valid[nb, w] = kn[b, t], utility[b, t], pos0[b] + t, True
            else:
                if not valid[nb].any():
                    continue
                w = int(np.argmax(np.where(valid[nb], cos, -np.inf)))
                occ[nb, w] = -1
                ck[nb, w], cu[nb, w], ca[nb, w], valid[nb, w] = 0.0, 0.0, 0, False
            ek.append((nb * W + w) * span + t + 1)
            eo.append(occ[nb, w])
        final[b] = occ
        sel = np.flatnonzero(read_rows == b)
        if len(sel) == 0:
            continue
        keys_sorted = np.concatenate(ev_key + [np.asarray(ek, dtype=np.int64)])
        occ_sorted = np.concatenate(ev_occ + [np.asarray(eo, dtype=np.int64)])
        order = np.argsort(keys_sorted, kind="stable")
        keys_sorted, occ_sorted = keys_sorted[order], occ_sorted[order]
        slots = (read_probes[sel][:, :, None] * W + np.arange(W)).reshape(len(sel), -1)  # [n, Ps*W]
        query = slots * span + read_pos[sel][:, None] + 1  # last event at time <= t, i.e. before the read
        idx = np.searchsorted(keys_sorted, query, side="left") - 1
        read_events[sel] = occ_sorted[idx]
    return Plan(final=final, read_rows=read_rows, read_pos=read_pos, read_events=read_events)
