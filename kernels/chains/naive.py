"""The reference walk of bucket chains: the memory's write policy, one event at a time.

A chain is one bucket of one batch row: its W ways, and the write / clear events that land
in it, in time order. Chains never interact, so each is walked alone. The policy (the
spec; engine.vm.memory.plan applies the same one to a whole batch on the host):

* a write takes the live way of highest cosine if that cosine reaches ``threshold``, else the
  first empty way, else the way of lowest utility (the oldest among equals);
* a clear takes the live way of highest cosine; a clear of a bucket with no live way does nothing;
* ties go to the first way.

A write stores its key, utility, age and occupant id in the way and marks it live; a clear
empties it (key 0, utility 0, age 0, occupant -1).

Reads are entries of the chains too: a read of a bucket at time t is placed in its chain before
the write or clear at time t (a token reads, then writes), and takes the occupants of the
chain's W ways at that point. So one walk decides every slot and answers every read.
"""
from __future__ import annotations

import torch


def walk_chains(starts: torch.Tensor, order: torch.Tensor, write: torch.Tensor, ev_key: torch.Tensor,
                ev_util: torch.Tensor, pos0: torch.Tensor, T: int, S: int, valid: torch.Tensor, keys: torch.Tensor,
                util: torch.Tensor, age: torch.Tensor, occ: torch.Tensor, n_reads: int, n_probes: int,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Walk every chain's entries in order.

    starts: [C+1] long, chain c's entries are ``order[starts[c]:starts[c+1]]``; order: [E] long
    entry ids, each chain's in time order with a read before the write or clear of the same
    time: an id i < P = B * T is the write or clear at flat position i = b * T + t, an id
    i >= P the read probe i - P = n * n_probes + j (the j-th bucket read n probes, the chain's).
    write: [P] bool, the event at a position is a write (else a clear; only positions that
    are entries are looked at); ev_key: [P, dk] float32 unit keys; ev_util: [P] float32;
    pos0: [B] long; a write at position b * T + t stores age pos0[b] + t and occupant S + t.
    valid: [C, W] bool; keys: [C, W, dk] float32, unit norm (zeros where empty); util: [C, W]
    float32; age, occ: [C, W] long: the tables before the walk.

    Returns (final occupants [C, W] long, read occupants [n_reads, n_probes * W] long: the
    occupant of each probed way when the read came, probe-major, -1 where empty or never
    read). Inputs are not modified.
    """
    valid, keys, util, age, occ = valid.clone(), keys.clone(), util.clone(), age.clone(), occ.clone()
    P, W = write.shape[0], valid.shape[1]
    reads = torch.full((n_reads, n_probes * W), -1, dtype=torch.long, device=valid.device)
    bounds, ids = starts.tolist(), order.tolist()
    for c in range(len(bounds) - 1):
        for e in range(bounds[c], bounds[c + 1]):
            i = ids[e]
            if i >= P:
                n, j = divmod(i - P, n_probes)
                reads[n, j * W:(j + 1) * W] = occ[c]
                continue
            live = valid[c]
            cos = torch.where(live, keys[c] @ ev_key[i], torch.full_like(util[c], -float("inf")))
            best = int(cos.argmax())
            if bool(write[i]):
                if bool(live.any()) and float(cos[best]) >= threshold:
                    w = best
                elif not bool(live.all()):
                    w = int((~live).float().argmax())
                else:
                    lowest = util[c] == util[c].min()
                    w = int(torch.where(lowest, age[c], torch.iinfo(torch.long).max).argmin())
                b, t = divmod(i, T)
                valid[c, w], keys[c, w], util[c, w] = True, ev_key[i], ev_util[i]
                age[c, w], occ[c, w] = pos0[b] + t, S + t
            elif bool(live.any()):
                valid[c, best], keys[c, best], util[c, best], age[c, best], occ[c, best] = False, 0.0, 0.0, 0, -1
    return occ, reads
