"""The reference memory read on hand-computed cases."""
import math

import torch

from kernels.memory import read_slots
from kernels.memory.naive import read_slots as naive_read


def test_hand_computed_softmax_read():
    q = torch.tensor([[2.0, 0.0, 0.0, 0.0]])            # dk = 4: scale 1/2
    keys = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [5.0, 0, 0, 0]]])
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])          # the third slot is dead
    # scores 1 and 0 -> weights e/(e+1), 1/(e+1)
    e = math.e
    expect = torch.tensor([[e / (e + 1), 1 / (e + 1)]])
    assert torch.allclose(naive_read(q, keys, values, mask), expect, atol=1e-6)


def test_no_live_slot_reads_exact_zero_with_zero_gradients():
    q = torch.randn(2, 3, requires_grad=True)
    keys = torch.randn(2, 4, 3, requires_grad=True)
    values = torch.randn(2, 4, 5, requires_grad=True)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[1, 2] = True
    out = naive_read(q, keys, values, mask)
    assert torch.equal(out[0], torch.zeros(5))
    assert torch.allclose(out[1], values[1, 2])         # one live slot: weight exactly 1
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.equal(q.grad[0], torch.zeros(3))
    assert torch.equal(values.grad[0], torch.zeros(4, 5)) and torch.equal(keys.grad[0], torch.zeros(4, 3))


def test_huge_scores_stay_finite():
    q = torch.full((1, 2), 1e4)
    keys = torch.tensor([[[1e4, 0.0], [0.0, 1e4]]])
    values = torch.tensor([[[1.0], [3.0]]])
    out = naive_read(q, keys, values, torch.ones(1, 2, dtype=torch.bool))
    assert torch.allclose(out, torch.tensor([[2.0]]))


def test_public_function_dispatches_to_naive_on_cpu(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "naive")
    q, k, v = torch.randn(3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 2)
    m = torch.rand(3, 5) > 0.3
    assert torch.equal(read_slots(q, k, v, m), naive_read(q, k, v, m))
