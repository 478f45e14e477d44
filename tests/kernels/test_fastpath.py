"""The fast decode paths give the same logits, opcodes, info and state as ``model.step``."""
import pytest
import torch

from engine.vm import ModelConfig, MosaicLM, Opcode
from engine.vm import fastpath
from kernels.testing import assert_close


def _model(preset="default", seed=0, **changes):
    torch.manual_seed(seed)
    model = MosaicLM(ModelConfig.preset(preset).replace(**changes)).eval()
    with torch.no_grad():  # spread the heads so every opcode occurs, and reads move the logits
        for blk in model.blocks:
            blk.proj.weight.mul_(20.0)
            if blk.memory is not None:
                blk.memory.out.weight.mul_(50.0)
    return model


def _compare(model, fast, ref_state, ids, seen_ops):
    for t in range(ids.shape[0]):
        ref = model.step(ids[t], ref_state)
        got = fast.step(ids[t])
        assert_close(f"logits at t={t}", got.logits, ref.logits, 1e-5)
        assert torch.equal(got.opcodes, ref.opcodes), f"opcodes at t={t}: {got.opcodes} != {ref.opcodes}"
        for k, v in ref.info.items():
            if v.is_floating_point():
                assert_close(f"info {k} at t={t}", got.info[k], v, 1e-5)
            else:
                assert torch.equal(got.info[k], v), f"info {k} at t={t}: {got.info[k]} != {v}"
        seen_ops.update(ref.opcodes.flatten().tolist())
    for k, a in ref_state.named_tensors().items():
        b = fast.state.named_tensors()[k]
        if a.is_floating_point():
            assert_close(f"state {k}", b, a, 1e-5)
        else:
            assert torch.equal(a, b), f"state {k} differs"


@pytest.mark.parametrize("preset,changes", [("tiny", {}), ("default", {}), ("tiny", {"read_temperature": 0.1})],
                         ids=["tiny", "default", "tiny-cosine-reads"])
def test_cpu_step_matches_model_step(preset, changes):
    model = _model(preset, **changes)
    ids = torch.randint(0, 256, (120, 1), generator=torch.Generator().manual_seed(1))
    fast = fastpath.CpuStep(model, model.init_state(1))
    seen: set[int] = set()
    _compare(model, fast, model.init_state(1), ids, seen)
    assert seen == set(range(10)), f"opcodes never exercised: {set(range(10)) - seen}"
    first = min(i for i in range(model.config.n_layers) if model.config.has_memory(i))
    assert int(fast.state.layers[first].mem_valid.sum()) > 0


def test_cpu_step_rereads_weights_after_an_update():
    model = _model("tiny", seed=2)
    fast = fastpath.CpuStep(model, model.init_state(1))
    ref_state = model.init_state(1)
    ids = torch.randint(0, 256, (20, 1), generator=torch.Generator().manual_seed(3))
    _compare(model, fast, ref_state, ids[:10], set())
    with torch.no_grad():
        model.head.weight.mul_(-2.0)  # an in-place update, as an optimiser step makes
        model.blocks[0].mlp_in.weight.add_(0.1)
    _compare(model, fast, ref_state, ids[10:], set())


def test_fast_stepper_picks_per_device_and_batch():
    model = _model("tiny")
    assert isinstance(fastpath.fast_stepper(model, model.init_state(1)), fastpath.CpuStep)
    assert isinstance(fastpath.fast_stepper(model, model.init_state(3)), fastpath.EagerStep)
    assert isinstance(fastpath.fast_stepper(model, model.init_state(1), prefer="eager"), fastpath.EagerStep)
    with pytest.raises(ValueError, match="batch 1"):
        fastpath.CpuStep(model, model.init_state(2))
    with pytest.raises(RuntimeError, match="CUDA"):
        fastpath.GraphedStep(model, model.init_state(1))


def test_eager_stepper_is_model_step():
    model = _model("tiny")
    ids = torch.randint(0, 256, (8, 2), generator=torch.Generator().manual_seed(4))
    _compare(model, fastpath.EagerStep(model, model.init_state(2)), model.init_state(2), ids, set())


def test_graph_capture_sees_every_state_tensor():
    """The capture pins what it finds by walking the state: that must be every tensor."""
    model = _model("tiny")
    state = model.init_state(2)
    found = {id(t) for t in fastpath.state_tensors(state).values()}
    assert found == {id(t) for t in state.named_tensors().values()}


WRITE, CLEAR = Opcode.WRITE_MEM, Opcode.CLEAR_MEM


# --- the fused Triton decode step (through the interpreter on the CPU) -----------------------
def _busy_model(seed, **changes):
    """Spread heads, opcode biases towards WRITE and CLEAR: buckets fill, evict, get cleared."""
    torch.manual_seed(seed)
    model = MosaicLM(ModelConfig.preset("tiny").replace(**changes)).eval()
    with torch.no_grad():
        for blk in model.blocks:
            blk.proj.weight.mul_(20.0)
            ops0 = blk.sizes[0] + blk.sizes[1] + blk.sizes[2]
            blk.proj.bias[ops0 + 2] += 1.0   # WRITE
            blk.proj.bias[ops0 + 3] += 0.3   # CLEAR
            blk.proj.bias[ops0 + 10] += 2.0  # write gate open
            if blk.memory is not None:
                blk.memory.out.weight.mul_(50.0)
    return model


@pytest.mark.parametrize("B,changes,busy,T", [
    (1, {}, False, 30),                           # batch 1, every opcode
    (3, {}, True, 30),                            # full buckets, evictions, clears
    (2, {"memory_layers": (1,)}, False, 30),      # a layer without memory
    (1, {"buckets": 1, "ways": 1, "probes": 1, "scan_probes": 1}, True, 30),  # one slot: always evicting
    (9, {}, False, 6),                            # 8 sequences per GEMV program, and a ragged 9th
    (3, {"read_temperature": 0.1}, True, 30),     # cosine reads, full buckets
    # the shipped model's memory shape: 12 probes x 16 ways = 192 slots a read (not a power of 2)
    (2, {"buckets": 64, "ways": 16, "probes": 12, "scan_probes": 16, "read_temperature": 0.1}, False, 12),
], ids=["B1-all-ops", "B3-busy", "B2-mem-in-layer-1", "B1-one-slot", "B9-ragged-rows", "B3-cosine-reads",
        "B2-shipped-memory-shape"])
def test_fused_step_matches_model_step(B, changes, busy, T):
    model = _busy_model(5, **changes) if busy or changes else _model("tiny", seed=5)
    fast = fastpath.FusedStep(model, model.init_state(B))
    ids = torch.randint(0, 256, (T, B), generator=torch.Generator().manual_seed(6))
    seen: set[int] = set()
    ref_state = model.init_state(B)
    writes_to_full = 0
    for t in range(ids.shape[0]):
        last = ref_state.layers[-1]
        full = last.mem_valid.all(-1).clone()  # [B, NB] buckets full before this token
        _compare(model, fast, ref_state, ids[t:t + 1], seen)
        wrote = last.mem_age.eq(t).any(-1) & last.mem_valid.any(-1)  # [B, NB] buckets written at t
        writes_to_full += int((wrote & full).sum())
    if busy:
        assert writes_to_full > 0, "no write ever went into a full bucket (no eviction tested)"
        assert int(WRITE) in seen and int(CLEAR) in seen
    else:
        assert len(seen) >= 8, seen  # (B9 over 6 tokens: 108 decisions)


class _ClearDecisions:
    """Counts, from the reference's own opcode logits, CLEARs the argmax picks that the
    confidence keeps and that it turns into NOPs (so a test knows both cases occurred)."""

    def __init__(self, model):
        self.kept = self.demoted = 0
        self.hooks = []
        for blk in model.blocks:
            lo = blk.sizes[0] + blk.sizes[1] + blk.sizes[2]
            self.hooks.append(blk.proj.register_forward_hook(
                lambda mod, inp, out, lo=lo, c=blk.clear_confidence: self._count(out[..., lo:lo + 10], c)))

    def _count(self, opl, c):
        p = opl.softmax(-1)[..., int(CLEAR)]
        pick = opl.argmax(-1) == int(CLEAR)
        self.kept += int((pick & (p >= c)).sum())
        self.demoted += int((pick & (p < c)).sum())

    def close(self):
        for h in self.hooks:
            h.remove()


@pytest.mark.parametrize("path", ["cpu", "fused"])
def test_fast_paths_carry_out_only_confident_clears(path):
    model = _busy_model(11, clear_confidence=0.45)
    B = 1 if path == "cpu" else 3
    fast = (fastpath.CpuStep if path == "cpu" else fastpath.FusedStep)(model, model.init_state(B))
    ids = torch.randint(0, 256, (40, B), generator=torch.Generator().manual_seed(12))
    count = _ClearDecisions(model)
    seen: set[int] = set()
    try:
        _compare(model, fast, model.init_state(B), ids, seen)
    finally:
        count.close()
    assert count.kept > 0 and count.demoted > 0, (count.kept, count.demoted)
    assert int(CLEAR) in seen


def test_fused_step_rereads_weights_after_an_update():
    model = _model("tiny", seed=7)
    fast = fastpath.FusedStep(model, model.init_state(1))
    ref_state = model.init_state(1)
    ids = torch.randint(0, 256, (8, 1), generator=torch.Generator().manual_seed(8))
    _compare(model, fast, ref_state, ids[:4], set())
    with torch.no_grad():
        model.blocks[1].proj.weight.mul_(-1.0)
        model.blocks[0].registers.theta.add_(0.5)
    _compare(model, fast, ref_state, ids[4:], set())


def test_fast_paths_refuse_a_model_that_got_an_adapter():
    model = _model("tiny", seed=9)
    fast = fastpath.CpuStep(model, model.init_state(1))
    fast.step(torch.tensor([65]))

    class Adapted(torch.nn.Linear):  # stands in for a LoRA-wrapped layer
        pass

    old = model.head
    model.head = Adapted(old.in_features, old.out_features, bias=False)
    model.head.extra = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(RuntimeError, match="adapter"):
        fast.step(torch.tensor([66]))
