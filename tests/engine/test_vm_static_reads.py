"""Fixed read capacities (engine.vm.static_reads) against the exact forward: same logits, state
and gradients while the reads fit, an overflow flag when they do not, and no op whose shape or
control depends on the data (what a CUDA graph of the training step needs)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import kernels.chains
from engine.vm.static_reads import ReadCapacity, compact, count_reads, padded, read_capacity, read_overflow
from vm_helpers import assert_same_state, busy_teacher, make_model


def _run(model, ids, teacher):
    model.zero_grad(set_to_none=True)
    out = model(ids, teacher=teacher)
    (out.logits.float().pow(2).mean() + out.aux["opcode_logits"].pow(2).mean()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), out.state, grads


def _assert_same(a, b):
    (la, sa, ga), (lb, sb, gb) = a, b
    assert torch.equal(la, lb), f"logits: max diff {(la - lb).abs().max()}"
    assert_same_state(sa, sb, atol=0.0)
    # a fixed capacity always reads (padding), so a memory that read nothing has a zero gradient, not None
    assert ga.keys() <= gb.keys() and len(ga) > 10
    for n in gb:
        x, y = ga.get(n, torch.zeros_like(gb[n])), gb[n]
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-7), f"grad {n}: max diff {(x - y).abs().max()}"


@pytest.mark.parametrize("kernels_mode,B,T,seed", [
    ("naive", 1, 1, 0), ("naive", 3, 67, 1), ("naive", 2, 129, 2),
    ("triton", 3, 37, 1),   # the Triton twins through the interpreter (slow: one odd size)
])
def test_capacities_that_fit_give_the_exact_forward(kernels_mode, B, T, seed, monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", kernels_mode)
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(seed))
    model = make_model(seed).train()
    teacher = busy_teacher(B, T, model.config, seed)
    exact = _run(model, ids, teacher)
    need = count_reads(model, ids, teacher)
    assert B * T < 10 or (need.reads > 0 and need.scans > 0)   # the case really reads both ways
    for cap in (need, padded(need), ReadCapacity(need.reads + 3, need.scans + 1)):
        with read_capacity(model, cap):
            got = _run(model, ids, teacher)
            assert not bool(read_overflow(model)), cap
        _assert_same(exact, got)
    assert read_overflow(model) is None   # the exact forward is back after the with


def test_too_small_a_capacity_is_flagged():
    B, T = 2, 61
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(3))
    model = make_model(3).train()
    teacher = busy_teacher(B, T, model.config, 3)
    need = count_reads(model, ids, teacher)
    for cap in (ReadCapacity(need.reads - 1, need.scans), ReadCapacity(need.reads, need.scans - 1),
                ReadCapacity(0, 0)):
        with read_capacity(model, cap):
            model(ids, teacher=teacher)
            assert bool(read_overflow(model)), cap
    with read_capacity(model, need):
        model(ids, teacher=teacher)
        assert not bool(read_overflow(model))


def test_compact_pads_after_the_true_positions():
    mask = torch.tensor([[False, True, False], [True, True, False]])
    ids, over = compact(mask, None)
    assert ids.tolist() == [1, 3, 4] and over is None
    ids, over = compact(mask, 5)
    assert ids.tolist() == [1, 3, 4, 6, 6] and not bool(over)
    ids, over = compact(mask, 2)
    assert ids.tolist() == [1, 3] and bool(over)
    with pytest.raises(ValueError, match="capacities"):
        ReadCapacity(-1, 0)


_DATA_DEPENDENT = ("nonzero.", "_local_scalar_dense", "unique", "bincount", "masked_select", "repeat_interleave.Tensor")


class _Recorder(TorchDispatchMode):
    """The aten ops a region runs, except inside the chain walk (one Triton launch on a GPU; its
    naive reference, which runs here, walks the events on the host by design)."""

    def __init__(self):
        super().__init__()
        self.ops, self.paused = [], False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.paused:
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _ops_of_a_training_step(model, ids, monkeypatch) -> list[str]:
    rec = _Recorder()
    walk = kernels.chains.walk_chains

    def paused_walk(*a, **k):
        rec.paused = True
        try:
            return walk(*a, **k)
        finally:
            rec.paused = False
    monkeypatch.setattr(kernels.chains, "walk_chains", paused_walk)
    with rec:
        out = model(ids)
        out.logits.float().pow(2).mean().backward()
    return rec.ops


def test_with_capacities_no_shape_depends_on_the_data(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "naive")
    B, T = 2, 45
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(4))
    model = make_model(4).train()
    need = count_reads(model, ids)
    assert need.reads > 0 and need.scans > 0
    exact_ops = _ops_of_a_training_step(model, ids, monkeypatch)
    assert any(o.startswith("aten.nonzero.") for o in exact_ops)   # the check can fail
    with read_capacity(model, padded(need)):
        ops = _ops_of_a_training_step(model, ids, monkeypatch)
    bad = sorted({o for o in ops if any(d in o for d in _DATA_DEPENDENT)})
    assert not bad, bad
    assert any("nonzero_static" in o for o in ops)
