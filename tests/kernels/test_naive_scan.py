"""The reference scan on hand-computed cases, against a plain loop, and stable for small lambda."""
import pytest
import torch

from kernels.scan import linear_scan
from kernels.scan.naive import linear_scan as naive_scan, linear_scan_loop


def test_hand_computed():
    a = torch.tensor([[[0.5], [0.5], [0.5]]])
    b = torch.tensor([[[1.0], [2.0], [4.0]]])
    h0 = torch.tensor([[8.0]])
    # h1 = .5*8+1 = 5, h2 = .5*5+2 = 4.5, h3 = .5*4.5+4 = 6.25
    assert torch.equal(naive_scan(a, b, h0), torch.tensor([[[5.0], [4.5], [6.25]]]))
    assert torch.equal(naive_scan(a, b), torch.tensor([[[1.0], [2.5], [5.25]]]))


@pytest.mark.parametrize("B,T,N", [(1, 1, 1), (2, 7, 3), (3, 64, 5), (1, 129, 2)])
def test_matches_loop_with_broadcast_and_varying_decay(B, T, N):
    g = torch.Generator().manual_seed(T)
    b = torch.randn(B, T, N, generator=g)
    h0 = torch.randn(B, N, generator=g)
    for a in (torch.rand(B, T, N, generator=g), torch.rand(1, 1, N, generator=g)):
        assert torch.allclose(naive_scan(a, b, h0), linear_scan_loop(a, b, h0), atol=1e-5)


def test_tiny_decay_over_long_sequences_stays_finite():
    """lam = 0.001 over 4096 steps: no lam^-t factors, so nothing overflows."""
    a = torch.full((1, 1, 2), 1e-3)
    b = torch.ones(1, 4096, 2)
    h = naive_scan(a, b, torch.full((1, 2), 1e30))
    assert torch.isfinite(h).all()
    assert torch.allclose(h[0, -1], torch.full((2,), 1.0 / (1 - 1e-3)), rtol=1e-5)


def test_gradients_match_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 13, 3, generator=g).requires_grad_()
    b = torch.randn(2, 13, 3, generator=g).requires_grad_()
    h0 = torch.randn(2, 3, generator=g).requires_grad_()
    w = torch.randn(2, 13, 3, generator=g)
    ga = torch.autograd.grad((naive_scan(a, b, h0) * w).sum(), (a, b, h0))
    gl = torch.autograd.grad((linear_scan_loop(a, b, h0) * w).sum(), (a, b, h0))
    for x, y in zip(ga, gl):
        assert torch.allclose(x, y, atol=1e-5)


def test_public_function_uses_naive_on_cpu(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "auto")
    a, b = torch.rand(1, 5, 2), torch.randn(1, 5, 2)
    assert torch.equal(linear_scan(a, b), naive_scan(a, b))


@pytest.mark.parametrize("T", [1, 63, 64, 65, 200])
def test_constant_decay_path_matches_general_path_and_loop(T):
    from kernels.scan.naive import _scan_constant, _scan_general
    g = torch.Generator().manual_seed(T)
    a = torch.rand(1, 1, 4, generator=g).requires_grad_()
    b = torch.randn(2, T, 4, generator=g).requires_grad_()
    h0 = torch.randn(2, 4, generator=g).requires_grad_()
    w = torch.randn(2, T, 4, generator=g)
    outs = [f(a, b, h0) for f in (lambda *x: _scan_constant(x[0][0, 0], *x[1:]), _scan_general, linear_scan_loop)]
    grads = [torch.autograd.grad((o * w).sum(), (a, b, h0)) for o in outs]
    for o, gr in zip(outs[:2], grads[:2]):
        assert torch.allclose(o, outs[2], atol=1e-5)
        for x, y in zip(gr, grads[2]):
            assert torch.allclose(x, y, atol=1e-4)
