"""The whole model on the Triton twins against the naive kernels: same logits, state, gradients."""
import pytest
import torch

from engine.vm import ModelConfig, MosaicLM, Teacher
from kernels import backend
from kernels.testing import assert_close


def _model(seed=0, **changes):
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("tiny").replace(**changes)
    model = MosaicLM(cfg).eval()
    with torch.no_grad():  # spread the heads so decisions vary and reads move the logits
        for blk in model.blocks:
            blk.proj.weight.mul_(20.0)
            if blk.memory is not None:
                blk.memory.out.weight.mul_(50.0)
    return model


def _teacher(B, T, cfg, seed):
    """Mostly writes (full buckets, evictions), with clears, reads and scans."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([1, 3, 6, 1.5, 0.5, 0.5, 0.5, 1.5, 1, 0.5])
    ops = torch.multinomial(weights, B * T, replacement=True, generator=g).view(B, T)
    gate = torch.ones(B, T, dtype=torch.long)
    bucket = torch.randint(0, cfg.buckets, (B, T), generator=g)
    return Teacher(opcodes=ops, write_gate=gate, bucket=bucket)


def _run(mode, monkeypatch, fn, expect=("scan", "memory", "gated", "unit", "select")):
    """fn() under MOSAIC_KERNELS=mode; on triton, asserts that the expected twins really ran."""
    monkeypatch.setenv("MOSAIC_KERNELS", mode)
    if mode != "triton":
        return fn()
    calls = {"scan": 0, "memory": 0, "gated": 0, "unit": 0, "select": 0}
    for op, key, name in (("scan", "scan", "linear_scan"), ("memory", "memory", "read_mix"),
                          ("elementwise", "gated", "gated_update"), ("elementwise", "unit", "unit_rows"),
                          ("elementwise", "select", "opcode_select")):
        twin = backend.triton_twin(op)
        real = getattr(twin, name)

        def counted(*a, _real=real, _op=key, **k):
            calls[_op] += 1
            return _real(*a, **k)
        monkeypatch.setattr(twin, name, counted)
    result = fn()
    monkeypatch.undo()
    assert all(calls[op] > 0 for op in expect), calls
    return result


def _same_state(name, got, ref):
    for k, a in ref.named_tensors().items():
        b = got.named_tensors()[k]
        if a.is_floating_point():
            assert_close(f"{name} {k}", b, a, 1e-5)
        else:
            assert torch.equal(a, b), f"{name} {k} differs"


@pytest.mark.parametrize("B,T,temperature", [(1, 1, None), (2, 13, None), (2, 13, 0.1)],
                         ids=["B1-T1", "B2-T13", "B2-T13-cosine"])
def test_forward_and_gradients_triton_vs_naive(monkeypatch, B, T, temperature):
    model = _model(read_temperature=temperature)  # cosine reads: queries and keys through unit_rows
    cfg = model.config
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(3))
    teacher = _teacher(B, T, cfg, seed=4)
    state = model.init_state(B)
    with torch.no_grad():  # carry in a non-empty state, so h0 and initial slots are exercised
        model.step(torch.randint(0, 256, (B,)), state)
    cot = torch.randn(B, T, 256, generator=torch.Generator().manual_seed(5))

    results = {}
    for mode in ("triton", "naive"):
        def go():
            model.zero_grad(set_to_none=True)
            out = model(ids, state=state, teacher=teacher)
            (out.logits * cot).sum().backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            return out, grads
        results[mode] = _run(mode, monkeypatch, go, expect=("scan", "memory", "gated", "unit", "select") if T > 1
                               else ("scan", "gated", "unit", "select"))
    (ref, ref_g), (got, got_g) = results["naive"], results["triton"]
    assert_close("logits", got.logits, ref.logits, 1e-5)
    _same_state("state", got.state, ref.state)
    assert ref_g.keys() == got_g.keys()
    for name in ref_g:
        assert_close(f"grad {name}", got_g[name], ref_g[name], 1e-4)


def test_auto_without_gpu_driver_picks_naive(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "auto")
    monkeypatch.setattr(backend, "gpu_driver", lambda: False)
    rep = backend.report()
    assert rep["picked"] == "naive" and rep["ops"] == {"scan": "naive", "memory": "naive", "chains": "naive", "elementwise": "naive"}
    assert "no GPU driver" in rep["reason"]
    assert backend.use_triton("scan", torch.zeros(1)) is None
