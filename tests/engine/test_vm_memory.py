"""Memory pieces: the decode-time pair read equals two reference reads; gathers; the plan's policy."""
import numpy as np
import torch

from engine.vm.memory import Memory, choose_way, gather_buckets


def test_pair_read_equals_the_training_reads():
    torch.manual_seed(0)
    mem = Memory(d_model=16, buckets=6, ways=3, key_dim=8, value_dim=5, probes=2, scan_probes=4, match_threshold=0.9)
    B, S = 5, 4 * 3
    q, keys, values = torch.randn(B, 8), torch.randn(B, S, 8) * 3, torch.randn(B, S, 5)
    live = torch.rand(B, S) > 0.4
    live[0] = False                 # nothing live
    live[1, :6] = False             # only scan slots live: the plain read sees nothing
    live[2] = True
    sel_r = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    sel_s = 1.0 - sel_r
    a = mem.mix_pair(q, keys, values, live, sel_r, sel_s)
    # the training path reads the same slots as rows of one table
    b = mem.mix_rows(q, keys.reshape(B * S, 8), values.reshape(B * S, 5), torch.arange(B * S).view(B, S), live,
                     sel_r, sel_s)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.equal(a[0], torch.zeros(16))
    only_read = mem.mix_pair(q, keys, values, live, torch.ones(B), torch.zeros(B))
    assert torch.equal(only_read[1], torch.zeros(16))  # the live slots lie beyond the P probes


def test_gather_buckets_matches_advanced_indexing():
    t = torch.randn(3, 7, 2, 4)
    rows = torch.tensor([[0], [1], [2]])
    buckets = torch.tensor([[6, 0], [3, 3], [1, 5]])
    assert torch.equal(gather_buckets(t, rows, buckets), t[rows, buckets])


def test_choose_way_policy():
    cos = np.array([0.1, 0.95, 0.2, 0.99])
    util = np.array([0.5, 0.2, 0.2, 0.9])
    age = np.array([4, 9, 3, 1])
    full = np.ones(4, bool)
    assert choose_way(full, cos, util, age, 0.9) == (3, True)          # best match above threshold
    assert choose_way(full, cos, util, age, 0.999) == (2, False)      # lowest utility, oldest of the tie
    part = np.array([True, True, False, False])
    assert choose_way(part, cos, util, age, 0.999) == (2, False)      # first empty way
    assert choose_way(part, cos, util, age, 0.9) == (1, True)         # a valid match beats an empty way
    assert choose_way(np.zeros(4, bool), cos, util, age, 0.5) == (0, False)
