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
"""
from __future__ import annotations

import torch


def walk_chains(starts: torch.Tensor, is_write: torch.Tensor, ev_key: torch.Tensor, ev_util: torch.Tensor,
                ev_age: torch.Tensor, ev_occ: torch.Tensor, valid: torch.Tensor, keys: torch.Tensor,
                util: torch.Tensor, age: torch.Tensor, occ: torch.Tensor,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Walk every chain's events in order.

    starts: [C+1] long, chain c's events are ``starts[c]:starts[c+1]`` of the event arrays;
    is_write: [E] bool; ev_key: [E, dk] float32, unit norm; ev_util: [E] float32; ev_age,
    ev_occ: [E] long (the value a write stores); valid: [C, W] bool; keys: [C, W, dk] float32,
    unit norm (zeros where empty); util: [C, W] float32; age, occ: [C, W] long.

    Returns (final occupants [C, W] long, way of each event [E] long, whether each event
    acted [E] bool); the way of an event that did not act means nothing (0 here, whatever the
    twin computed there). Inputs are not modified.
    """
    valid, keys, util, age, occ = valid.clone(), keys.clone(), util.clone(), age.clone(), occ.clone()
    E = is_write.shape[0]
    way = torch.zeros(E, dtype=torch.long, device=is_write.device)
    act = torch.zeros(E, dtype=torch.bool, device=is_write.device)
    bounds = starts.tolist()
    for c in range(len(bounds) - 1):
        for e in range(bounds[c], bounds[c + 1]):
            live = valid[c]
            cos = torch.where(live, keys[c] @ ev_key[e], torch.full_like(util[c], -float("inf")))
            best = int(cos.argmax())
            if bool(is_write[e]):
                if bool(live.any()) and float(cos[best]) >= threshold:
                    w = best
                elif not bool(live.all()):
                    w = int((~live).float().argmax())
                else:
                    lowest = util[c] == util[c].min()
                    w = int(torch.where(lowest, age[c], torch.iinfo(torch.long).max).argmin())
                valid[c, w], keys[c, w], util[c, w] = True, ev_key[e], ev_util[e]
                age[c, w], occ[c, w] = ev_age[e], ev_occ[e]
            elif bool(live.any()):
                w = best
                valid[c, w], keys[c, w], util[c, w], age[c, w], occ[c, w] = False, 0.0, 0.0, 0, -1
            else:
                continue
            way[e], act[e] = w, True
    return occ, way, act
