"""The training losses: next-byte cross-entropy plus auxiliary losses from the teacher labels.

All inputs are tensors already on the device; nothing here reads a value back to the host.
Auxiliary terms (each weighted by the annealed weights of the schedule):

* opcode    CE of every layer's opcode logits against the opcode label (non-NOP labels x5)
* gate      BCE of the memory layers' write-gate logits against the write-gate label
* bucket    CE of the router on WRITE/CLEAR (write router) and READ (read router) positions
            against the compositional bucket label
* distill   KL(write router at the paired write (detached) || read router at the read)
* balance   KL(mean write-router distribution over WRITE positions || uniform)
* infonce   each READ query against *all* WRITE keys before it in the sequence; the positive
            is the paired write (the same fact and byte offset)
* commit    CE of the commitment head at COMMIT positions (close / open)
* match     at the first-byte WRITE of an updated fact's new value: its key against the keys of
            all earlier WRITEs (InfoNCE, the positive is the old value's first byte) plus
            1 - cos(new key, old key): an unnamed update replaces the old slot only if the
            two keys are at least the match threshold close
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.curriculum.example import CLEAR_MEM, COMMIT, NOP, READ_MEM, WRITE_MEM

AUX_NAMES = ("opcode", "gate", "bucket", "distill", "balance", "infonce", "commit", "match")


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(values, device, dtype=None) -> torch.Tensor:
    """``torch.tensor(values)`` on ``device``, made once: copying from the host while a CUDA graph
    is being captured is not allowed (the first, eager, step makes it)."""
    key = (tuple(values) if isinstance(values, (list, tuple)) else values, str(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, device=device, dtype=dtype)
    return _CONSTANTS[key]


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def lm_loss(logits: torch.Tensor, ids: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted next-byte CE. logits [B,T,V], ids [B,T], weight [B,T] (weight[t] for predicting ids[t+1]).
    Returns (weighted loss, plain mean CE over all targets)."""
    ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                         reduction="none").view(ids.shape[0], -1)
    w = weight[:, :-1]
    return (ce * w).sum() / w.sum().clamp(min=1e-6), ce.mean()


def compute_losses(out, batch: dict[str, torch.Tensor], weights: dict[str, float | torch.Tensor],
                   mem_layers: list[int], tau: float = 0.1, active: frozenset[str] | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached parts.

    out: model output with ``logits`` [B,T,256] and ``aux`` (INTERFACES.md; empty for the
    window baseline); batch: the collated tensors of ``engine.curriculum.collate``;
    weights: the current weight of each auxiliary term; mem_layers: indices of layers with memory.
    active: the terms to compute, whatever their weight (a CUDA graph: weights are 0-dim tensors
    then, and the match term is computed even for a batch without updates); None: those whose
    weight is > 0.
    """
    ids = batch["ids"]
    loss, ce = lm_loss(out.logits, ids, batch["loss_weight"])
    parts: dict[str, torch.Tensor] = {"lm": loss.detach(), "ce": ce.detach()}
    aux = out.aux
    if not aux:
        return loss, parts
    total = loss

    def on(name: str) -> bool:
        return name in active if active is not None else weights.get(name, 0) > 0
    op_label = batch["opcode"]
    B, T = ids.shape
    L = aux["opcode_logits"].shape[2]

    if on("opcode"):
        logits = aux["opcode_logits"].float()
        lab = op_label.unsqueeze(2).expand(B, T, L)
        ce_op = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1).clamp(min=0),
                                reduction="none").view(B, T, L)
        # COMMIT closes a reply in place of the usual IDLE, and only a few replies in a thousand
        # carry it: without a larger weight the head learns to idle there
        w = torch.where(op_label == NOP, 1.0, torch.where(op_label == COMMIT, 25.0, 5.0))
        w = w.unsqueeze(2).expand(B, T, L) * (lab >= 0)
        term = (ce_op * w).sum() / w.sum().clamp(min=1.0)
        parts["opcode"] = term.detach()
        total = total + weights["opcode"] * term
        # for the progress line: how often the last layer's own decision matches the label
        parts["op_acc"] = _masked_mean((aux["opcode_logits"][..., -1, :].argmax(-1) == op_label).float(),
                                         op_label > NOP).detach()  # the head itself, not the teacher

    if not mem_layers:
        return total, parts
    ml = _constant(list(mem_layers), ids.device)

    if on("gate") and "write_gate_logits" in aux:
        gl = aux["write_gate_logits"].index_select(2, ml).float()
        lab = batch["write_gate"].unsqueeze(2).expand_as(gl)
        bce = F.binary_cross_entropy_with_logits(gl, lab.clamp(min=0).float(), reduction="none",
                                                 pos_weight=_constant(5.0, gl.device))
        term = _masked_mean(bce, lab >= 0)
        parts["gate"] = term.detach()
        total = total + weights["gate"] * term

    rw = aux["router_write_logits"].index_select(2, ml).float()  # [B,T,M,NB]
    rr = aux["router_read_logits"].index_select(2, ml).float()
    NB = rw.shape[-1]
    bucket = batch["bucket"]
    is_w = ((op_label == WRITE_MEM) | (op_label == CLEAR_MEM)) & (bucket >= 0)
    is_r = (op_label == READ_MEM) & (bucket >= 0)

    if on("bucket"):
        def bucket_ce(logits, mask):
            lab = bucket.clamp(min=0).unsqueeze(2).expand(logits.shape[:3])
            ce_b = F.cross_entropy(logits.reshape(-1, NB), lab.reshape(-1), reduction="none").view(lab.shape)
            return _masked_mean(ce_b, mask.unsqueeze(2).expand_as(ce_b))
        term = 0.5 * (bucket_ce(rw, is_w) + bucket_ce(rr, is_r))
        parts["bucket"] = term.detach()
        total = total + weights["bucket"] * term

    rows = torch.arange(B, device=ids.device).unsqueeze(1)
    read_idx, read_mask = batch["read_idx"], batch["read_mask"]
    write_idx, write_mask = batch["write_idx"], batch["write_mask"]
    pair_pos = torch.gather(write_idx, 1, batch["read_target"])  # [B,R] position of each read's write

    if on("distill"):
        target = rw[rows, pair_pos].detach().softmax(-1)           # [B,R,M,NB]
        logp = rr[rows, read_idx].log_softmax(-1)
        kl = (target * (target.clamp(min=1e-9).log() - logp)).sum(-1)  # [B,R,M]
        term = _masked_mean(kl, read_mask.unsqueeze(2).expand_as(kl))
        parts["distill"] = term.detach()
        total = total + weights["distill"] * term

    if on("balance"):
        p = rw.softmax(-1)                                          # [B,T,M,NB]
        m = (op_label == WRITE_MEM).float().unsqueeze(-1).unsqueeze(-1)
        mean_p = (p * m).sum((0, 1)) / m.sum((0, 1)).clamp(min=1.0)  # [M,NB]
        term = (mean_p * (mean_p.clamp(min=1e-9).log() + math.log(NB))).sum(-1).mean()
        parts["balance"] = term.detach()
        total = total + weights["balance"] * term

    use_match = on("match") and "super_mask" in batch and (active is not None or bool(batch["super_mask"].any()))
    if on("infonce") or use_match:  # both compare against every write key
        k = F.normalize(aux["keys"][rows, write_idx].index_select(2, ml).float(), dim=-1)    # [B,W,M,dk]

    if on("infonce"):
        q = F.normalize(aux["queries"][rows, read_idx].index_select(2, ml).float(), dim=-1)  # [B,R,M,dk]
        sim = torch.einsum("brmd,bwmd->bmrw", q, k) / tau
        allowed = write_mask.unsqueeze(1) & (write_idx.unsqueeze(1) < read_idx.unsqueeze(2))  # [B,R,W]
        sim = sim.masked_fill(~allowed.unsqueeze(1), -1e4)
        tgt = batch["read_target"].unsqueeze(1).expand(B, sim.shape[1], -1)
        nce = F.cross_entropy(sim.reshape(-1, sim.shape[-1]), tgt.reshape(-1), reduction="none").view(tgt.shape)
        rm = read_mask.unsqueeze(1).expand_as(nce)
        term = _masked_mean(nce, rm)
        parts["infonce"] = term.detach()
        parts["nce_acc"] = _masked_mean((sim.argmax(-1) == tgt).float(), rm).detach()
        total = total + weights["infonce"] * term

    if use_match:
        sc, st, sm = batch["super_col"], batch["super_target"], batch["super_mask"]       # [B,S]
        kn = k[rows, sc]                                                                   # [B,S,M,dk]
        sim = torch.einsum("bsmd,bwmd->bmsw", kn, k)                                         # cosines
        earlier = write_mask.unsqueeze(1) & (write_idx.unsqueeze(1) < write_idx[rows, sc].unsqueeze(2))  # [B,S,W]
        logits = (sim / tau).masked_fill(~earlier.unsqueeze(1), -1e4)
        tgt = st.unsqueeze(1).expand(B, sim.shape[1], -1)
        nce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none").view(tgt.shape)
        pos = sim.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)                                 # [B,M,S]
        smask = sm.unsqueeze(1).expand_as(nce)
        term = _masked_mean(nce + (1.0 - pos), smask)
        parts["match"] = term.detach()
        parts["match_cos"] = _masked_mean(pos, smask).detach()
        total = total + weights["match"] * term

    if on("commit") and "commit_logits" in aux:
        cl = aux["commit_logits"].float()                            # [B,T,L,3]
        lab = batch["commit"].unsqueeze(2).expand(B, T, cl.shape[2])
        ce_c = F.cross_entropy(cl.reshape(-1, 3), lab.reshape(-1), reduction="none",
                               ignore_index=-1).view(lab.shape)              # -1: unlabelled (e.g. replay logs)
        term = _masked_mean(ce_c, (op_label == COMMIT).unsqueeze(2).expand_as(ce_c))
        parts["commit"] = term.detach()
        total = total + weights["commit"] * term
    return total, parts
