"""The chain walker's Triton twin against its reference: final occupants and the occupants every
read probe finds (no gradients: the plan is discrete)."""
import pytest
import torch
import torch.nn.functional as F

from kernels.chains import naive
from kernels.chains import triton as twin


def _inputs(seed, C, W, dk, B, T, n_reads, n_probes, p_event, fill):
    """Random chains of B rows x T positions (C = B * NB chains) with reads that probe n_probes
    distinct buckets of their row, entries ordered as the planner orders them."""
    g = torch.Generator().manual_seed(seed)
    NB = C // B
    event = torch.rand(B, T, generator=g) < p_event
    write = event & (torch.rand(B, T, generator=g) < 0.7)
    bucket = torch.randint(0, NB, (B, T), generator=g)
    chain = torch.where(event, torch.arange(B).unsqueeze(1) * NB + bucket, C)
    base = F.normalize(torch.randn(3, dk, generator=g), dim=-1)
    ev_key = F.normalize(torch.randn(B * T, dk, generator=g), dim=-1)
    rep = torch.rand(B * T, generator=g) < 0.5                      # repeated keys: matches and hit clears
    ev_key[rep] = base[torch.randint(0, 3, (int(rep.sum()),), generator=g)]
    ev_util = torch.tensor([0.25, 0.5, 0.75])[torch.randint(0, 3, (B * T,), generator=g)]   # ties
    pos0 = torch.randint(0, 5, (B,), generator=g)
    rows, pos = torch.randint(0, B, (n_reads,), generator=g), torch.randint(0, T, (n_reads,), generator=g)
    probes = torch.stack([torch.randperm(NB, generator=g)[:n_probes] for _ in range(n_reads)]) if n_reads else \
        torch.zeros(0, n_probes, dtype=torch.long)
    span = 2 * T
    keys_all = torch.cat([(chain * span + 2 * torch.arange(T) + 1).reshape(-1),
                          ((rows[:, None] * NB + probes) * span + 2 * pos[:, None]).reshape(-1)])
    sorted_keys, order = torch.sort(keys_all)
    starts = torch.searchsorted(sorted_keys, torch.arange(C + 1) * span)
    valid = torch.rand(C, W, generator=g) < fill
    keys = F.normalize(torch.randn(C, W, dk, generator=g), dim=-1) * valid[..., None]
    util = torch.tensor([0.25, 0.5])[torch.randint(0, 2, (C, W), generator=g)] * valid
    age = torch.randint(0, 3, (C, W), generator=g) * valid
    occ = torch.where(valid, torch.arange(C * W).reshape(C, W), -1)
    return (starts, order, write.reshape(-1), ev_key, ev_util, pos0, T, 1000, valid, keys, util, age, occ,
            n_reads, n_probes)


@pytest.mark.parametrize("seed,C,W,dk,B,T,n_reads,n_probes,p_event,fill", [
    (0, 1, 1, 3, 1, 1, 1, 1, 1.0, 0.0),       # one chain, one way, one event, one read
    (1, 14, 3, 5, 2, 31, 9, 3, 0.8, 0.5),     # odd sizes
    (2, 10, 4, 8, 2, 45, 12, 5, 0.9, 1.0),    # full from the start: evictions; reads probe every bucket
    (3, 9, 2, 7, 3, 11, 0, 2, 0.0, 0.4),      # no events, no reads
])
def test_triton_walk_matches_the_reference(seed, C, W, dk, B, T, n_reads, n_probes, p_event, fill):
    args = _inputs(seed, C, W, dk, B, T, n_reads, n_probes, p_event, fill)
    occ_n, reads_n = naive.walk_chains(*args, threshold=0.9)
    occ_t, reads_t = twin.walk_chains(*args, threshold=0.9)
    assert torch.equal(occ_t, occ_n), "final occupants"
    assert torch.equal(reads_t, reads_n), "read occupants"
    if fill == 1.0:
        assert (occ_n >= 1000).any()   # the case really writes over full buckets
    if n_reads > 5:
        assert (reads_n >= 1000).any()  # and some read finds a write of the sequence
