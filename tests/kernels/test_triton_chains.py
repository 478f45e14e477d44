"""The chain walker's Triton twin against its reference: final occupants, the way of every
event that acted, and which events acted (no gradients: the plan is discrete)."""
import pytest
import torch
import torch.nn.functional as F

from kernels.chains import naive
from kernels.chains import triton as twin


def _inputs(seed, C, W, dk, E, fill):
    g = torch.Generator().manual_seed(seed)
    counts = torch.multinomial(torch.ones(C), E, replacement=True, generator=g).bincount(minlength=C) if E else \
        torch.zeros(C, dtype=torch.long)
    starts = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    is_write = torch.rand(E, generator=g) < 0.7
    base = F.normalize(torch.randn(3, dk, generator=g), dim=-1)
    ev_key = F.normalize(torch.randn(E, dk, generator=g), dim=-1)
    rep = torch.rand(E, generator=g) < 0.5                      # repeated keys: matches and hit clears
    ev_key[rep] = base[torch.randint(0, 3, (int(rep.sum()),), generator=g)]
    ev_util = torch.tensor([0.25, 0.5, 0.75])[torch.randint(0, 3, (E,), generator=g)]   # ties
    ev_age = torch.randint(0, 5, (E,), generator=g)
    ev_occ = torch.arange(E) + 1000
    valid = torch.rand(C, W, generator=g) < fill
    keys = F.normalize(torch.randn(C, W, dk, generator=g), dim=-1) * valid[..., None]
    util = torch.tensor([0.25, 0.5])[torch.randint(0, 2, (C, W), generator=g)] * valid
    age = torch.randint(0, 3, (C, W), generator=g) * valid
    occ = torch.where(valid, torch.arange(C * W).reshape(C, W), -1)
    return starts, is_write, ev_key, ev_util, ev_age, ev_occ, valid, keys, util, age, occ


@pytest.mark.parametrize("seed,C,W,dk,E,fill", [
    (0, 1, 1, 3, 1, 0.0),      # one chain, one way, one event
    (1, 7, 3, 5, 61, 0.5),     # odd sizes
    (2, 5, 4, 8, 90, 1.0),     # full from the start: evictions
    (3, 9, 2, 7, 0, 0.4),      # no events
])
def test_triton_walk_matches_the_reference(seed, C, W, dk, E, fill):
    args = _inputs(seed, C, W, dk, E, fill)
    occ_n, way_n, act_n = naive.walk_chains(*args, threshold=0.9)
    occ_t, way_t, act_t = twin.walk_chains(*args, threshold=0.9)
    assert torch.equal(occ_t, occ_n), "final occupants"
    assert torch.equal(act_t, act_n), "acted"
    assert torch.equal(way_t[act_n], way_n[act_n]), "ways"
    if fill == 1.0:
        assert (occ_n >= 1000).any()   # the case really writes over full buckets
