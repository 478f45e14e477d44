"""Stepping token by token == forward over the sequence == forward in chunks carrying state.

Same logits (<= 1e-4), same opcodes, same final state (registers, conv, keys, values,
utility, age, valid, ledger, position), with teacher schedules that fill buckets,
force evictions, clear slots and scan, and with the model's own free decisions.
"""
import pytest
import torch

from engine.vm import Opcode
from vm_helpers import assert_same_state, busy_teacher, make_model, step_through

TOL = 1e-4


def _ids(B, T, seed):
    return torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(1000 + seed))


@pytest.mark.parametrize("seed,B,T,temperature", [(0, 3, 61, None), (1, 2, 97, None), (2, 1, 71, None),
                                                   (3, 4, 50, None), (10, 3, 57, 0.1)])
def test_step_equals_forward_with_busy_teacher(seed, B, T, temperature):
    model = make_model(seed, read_temperature=temperature)
    cfg = model.config
    ids = _ids(B, T, seed)
    teacher = busy_teacher(B, T, cfg, seed)
    out = model(ids, teacher=teacher)
    state = model.init_state(B)
    logits, ops, infos = step_through(model, ids, state, teacher)

    assert (logits - out.logits).abs().max().item() <= TOL
    assert torch.equal(ops, out.aux["opcodes"])
    assert_same_state(out.state, state)

    # the schedule really exercised the machine: more writes than slots (so evictions), clears, scans
    writes = torch.stack([i["write_slot"][..., 0] >= 0 for i in infos], 1)   # [B, T, L]
    clears = torch.stack([i["cleared_slot"][..., 0] >= 0 for i in infos], 1)
    assert (writes.sum(1) > cfg.buckets * cfg.ways).all()
    assert clears.any()
    assert (ops == int(Opcode.SCAN)).any() and (ops == int(Opcode.READ_MEM)).any()
    assert state.layers[0].mem_valid.any()


@pytest.mark.parametrize("seed,temperature", [(4, None), (5, None), (6, None), (11, 0.25)])
def test_step_equals_forward_free_running(seed, temperature):
    model = make_model(seed, read_temperature=temperature)
    B, T = 2, 45
    ids = _ids(B, T, seed)
    out = model(ids)
    state = model.init_state(B)
    logits, ops, _ = step_through(model, ids, state)
    assert (logits - out.logits).abs().max().item() <= TOL
    assert torch.equal(ops, out.aux["opcodes"])
    assert len(torch.unique(ops)) >= 5  # free decisions vary, so many opcodes take part
    assert_same_state(out.state, state)


@pytest.mark.parametrize("seed,cuts", [(7, (1, 20)), (8, (13,)), (9, (5, 6, 40))])
def test_chunks_carry_state_exactly(seed, cuts):
    model = make_model(seed)
    B, T = 2, 53
    ids = _ids(B, T, seed)
    teacher = busy_teacher(B, T, model.config, seed)
    whole = model(ids, teacher=teacher)

    state, pieces, ops = model.init_state(B), [], []
    bounds = (0,) + cuts + (T,)
    for a, b in zip(bounds[:-1], bounds[1:]):
        out = model(ids[:, a:b], state=state, teacher=teacher.slice(a, b))
        pieces.append(out.logits)
        ops.append(out.aux["opcodes"])
        state = out.state
    assert (torch.cat(pieces, 1) - whole.logits).abs().max().item() <= TOL
    assert torch.equal(torch.cat(ops, 1), whole.aux["opcodes"])
    assert_same_state(state, whole.state)

    # and stepping on from a forward-made state continues exactly like forward
    more = _ids(B, 17, seed + 50)
    t2 = busy_teacher(B, 17, model.config, seed + 50)
    cont = model(more, state=whole.state, teacher=t2)
    stepped = whole.state.fork()
    logits, _, _ = step_through(model, more, stepped, t2)
    assert (logits - cont.logits).abs().max().item() <= TOL
    assert_same_state(cont.state, stepped)


def test_forward_does_not_modify_its_input_state():
    model = make_model(10)
    ids = _ids(2, 30, 10)
    state = model(ids, teacher=busy_teacher(2, 30, model.config, 10)).state
    before = state.fork()
    model(_ids(2, 25, 11), state=state, teacher=busy_teacher(2, 25, model.config, 11))
    assert_same_state(before, state, atol=0.0)


def test_parity_with_memory_in_some_layers_only():
    model = make_model(12, preset="tiny", n_layers=3, memory_layers=(1,))
    B, T = 2, 40
    ids = _ids(B, T, 12)
    teacher = busy_teacher(B, T, model.config, 12)
    out = model(ids, teacher=teacher)
    state = model.init_state(B)
    logits, ops, _ = step_through(model, ids, state, teacher)
    assert (logits - out.logits).abs().max().item() <= TOL
    assert torch.equal(ops, out.aux["opcodes"])
    assert_same_state(out.state, state)
    assert out.aux["keys"][:, :, 0].abs().sum() == 0 and out.aux["keys"][:, :, 1].abs().sum() > 0


def test_memory_reads_move_the_logits():
    """Parity would be vacuous if reads contributed nothing: they do."""
    model = make_model(13)
    B, T = 2, 60
    ids = _ids(B, T, 13)
    teacher = busy_teacher(B, T, model.config, 13, free=0.0)
    with_reads = model(ids, teacher=teacher).logits
    ops = teacher.opcodes.clone()
    ops[(ops == int(Opcode.READ_MEM)) | (ops == int(Opcode.SCAN))] = int(Opcode.NOP)
    no_reads = model(ids, teacher=type(teacher)(ops, teacher.write_gate, teacher.bucket)).logits
    assert (with_reads - no_reads).abs().max().item() > 1e-2


def test_cosine_reads_score_cosine_over_temperature_and_keep_unit_keys():
    """read_temperature t: a read weighs its slots by softmax(cos(q, k) / t), where the dot-product
    read of the same weights weighs them by q . k / sqrt(dk); the stored keys are unit vectors."""
    from kernels.memory import naive
    B, T = 2, 60
    ids = _ids(B, T, 12)
    plain, cosine = make_model(12), make_model(12, read_temperature=0.05)
    cosine.load_state_dict(plain.state_dict())
    teacher = busy_teacher(B, T, plain.config, 12)  # full buckets: reads weigh many slots
    out_p, out_c = plain(ids, teacher=teacher), cosine(ids, teacher=teacher)
    assert (out_p.logits - out_c.logits).abs().max() > 1e-3  # same weights, other reads
    for layer in out_c.state.layers:
        norms = layer.mem_keys[layer.mem_valid].norm(dim=-1)
        assert norms.numel() and torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    mem = cosine.blocks[0].memory
    q, k = torch.randn(5, mem.dk) * 3, torch.randn(5, 7, mem.dk) * 2
    v, live = torch.randn(5, 7, mem.dv), torch.rand(5, 7) > 0.3
    live[:, 0] = True
    qs, ks = mem.read_space(q, k)
    want = torch.nn.functional.cosine_similarity(q.unsqueeze(1), k, dim=-1) / 0.05
    w = torch.softmax(want.masked_fill(~live, float("-inf")), -1)
    torch.testing.assert_close(naive.read_slots(qs, ks, v, live), (w.unsqueeze(-1) * v).sum(1), rtol=1e-5, atol=1e-5)
