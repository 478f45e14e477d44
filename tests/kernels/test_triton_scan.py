"""The scan's Triton twin against its reference: outputs and every gradient, odd shapes."""
import pytest
import torch

from kernels.scan import naive
from kernels.scan import triton as twin
from kernels.testing import assert_close, poison_empty, randn

# (B, T, N, shape of a, with h0)
CASES = [
    (1, 1, 3, "full", True),      # batch 1, length 1
    (2, 37, 5, "chan", True),     # several chunks of 8 and a partial last one (chunk forced below)
    (3, 24, 7, "time_chan", True),   # chunks that divide T exactly
    (2, 29, 6, "full", False),
    (2, 7, 5, "chan", True),      # fixed per-channel decays, as the registers use
    (3, 33, 130, "batch_chan", False),  # N over one channel block, no h0
    (2, 17, 9, "time_chan", True),
    (1, 64, 24, "full", False),
]


@pytest.mark.parametrize("scale", [False, True], ids=["plain", "scaled"])
@pytest.mark.parametrize("B,T,N,a_kind,with_h0", CASES,
                         ids=[f"B{c[0]}-T{c[1]}-N{c[2]}-{c[3]}-{'h0' if c[4] else 'noh0'}" for c in CASES])
def test_linear_scan_matches_naive(B, T, N, a_kind, with_h0, scale):
    """scale: inputs (1 - a_t) b_t, folded into the twin's kernels (the registers' leaky integrators)."""
    a_shape = {"full": (B, T, N), "chan": (1, 1, N), "batch_chan": (B, 1, N), "time_chan": (1, T, N)}[a_kind]
    a = torch.rand(*a_shape, generator=torch.Generator().manual_seed(7)).requires_grad_()
    b = randn(B, T, N, seed=1, requires_grad=True)
    h0 = randn(B, N, seed=2, requires_grad=True) if with_h0 else None
    inputs = [x for x in (a, b, h0) if x is not None]
    names = ["a", "b", "h0"][: len(inputs)]
    cot = randn(B, T, N, seed=3)

    chunk = 8 if T in (37, 24, 29) else None   # else the default (one chunk below 16 steps)
    with poison_empty():
        out = twin.linear_scan(a, b, h0, scale_input=scale, chunk=chunk)
        grads = torch.autograd.grad((out * cot).sum(), inputs)
    ref = naive.linear_scan_loop(a, (1 - a) * b if scale else b, h0)
    ref_grads = torch.autograd.grad((ref * cot).sum(), inputs)

    assert_close("h", out, ref, 1e-5)
    for name, g, rg in zip(names, grads, ref_grads):
        assert_close(f"d{name}", g, rg, 1e-5)


def test_slow_decays_do_not_overflow():
    """lam close to 1 over a long sequence: values stay finite and match the loop."""
    T, N = 300, 4
    a = torch.full((1, 1, N), 0.999)
    b = randn(1, T, N, seed=5)
    out = twin.linear_scan(a, b)
    assert_close("h", out, naive.linear_scan_loop(a, b), 1e-5)


def test_public_function_dispatches_to_twin(monkeypatch):
    import kernels.scan as scan

    monkeypatch.setenv("MOSAIC_KERNELS", "triton")
    calls = []
    monkeypatch.setattr(twin, "linear_scan", lambda *a, **k: calls.append(1) or naive.linear_scan(*a, **k))
    scan.linear_scan(torch.rand(1, 1, 3), randn(2, 4, 3))
    assert calls == [1]


def test_naive_scaled_input_is_the_leaky_integrator():
    a, b, h0 = torch.rand(1, 1, 5), randn(2, 9, 5, seed=4), randn(2, 5, seed=6)
    assert torch.equal(naive.linear_scan(a, b, h0, scale_input=True), naive.linear_scan(a, (1 - a) * b, h0))


@pytest.mark.parametrize("scale", [False, True], ids=["plain", "scaled"])
def test_inputs_read_in_place_from_a_wider_projection(scale):
    """b a last-dim slice of a wider tensor (the registers' input, split off the block's projection):
    read through its strides, no copy; outputs and gradients as the reference's."""
    B, T, N = 2, 29, 6
    a = torch.rand(1, 1, N, generator=torch.Generator().manual_seed(8)).requires_grad_()
    wide = randn(B, T, N + 9, seed=9, requires_grad=True)
    b = wide[..., 4:4 + N]
    h0 = randn(B, N, seed=10, requires_grad=True)
    cot = randn(B, T, N, seed=11)
    with poison_empty():
        out = twin.linear_scan(a, b, h0, scale_input=scale, chunk=8)
        grads = torch.autograd.grad((out * cot).sum(), (a, wide, h0))
    ref = naive.linear_scan_loop(a, (1 - a) * b if scale else b, h0)
    ref_grads = torch.autograd.grad((ref * cot).sum(), (a, wide, h0))
    assert_close("h", out, ref, 1e-5)
    for name, g, rg in zip(("a", "b", "h0"), grads, ref_grads):
        assert_close(f"d{name}", g, rg, 1e-5)
