"""Every opcode does what DESIGN.md's table says, checked on hand-made states, one block, one token."""
import pytest
import torch

from engine.vm import ModelConfig, MosaicLM, Opcode, Teacher, VMState

B = 2


def _setup(seed=0, **changes):
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("tiny").replace(**({"ways": 4, "buckets": 6, "probes": 2, "scan_probes": 5} | changes))
    model = MosaicLM(cfg).eval()
    state = model.init_state(B)
    st = state.layers[0]
    st.registers.normal_()  # non-zero registers so the fused contribution is visible
    st.conv.normal_()
    st.prev_key.normal_()
    x = torch.randn(B, cfg.d_model)
    return model, model.blocks[0], state, st, x


def _fill(st, buckets, seed=1):
    """Make every way of ``buckets`` valid with random content."""
    g = torch.Generator().manual_seed(seed)
    for b in buckets:
        st.mem_keys[:, b] = torch.randn(st.mem_keys[:, b].shape, generator=g)
        st.mem_values[:, b] = torch.randn(st.mem_values[:, b].shape, generator=g)
        st.mem_utility[:, b] = torch.rand(st.mem_utility[:, b].shape, generator=g)
        st.mem_age[:, b] = torch.arange(st.mem_age.shape[-1])
        st.mem_valid[:, b] = True


def _run(blk, st, x, op, gate=-1, bucket=-1, pos=10):
    """Run the block's step on a copy of ``st``; returns (y, new layer state, info, delta)."""
    from engine.vm.state import LayerState
    s = LayerState(**{k: v.clone() for k, v in st.tensors().items()})
    full = lambda v: torch.full((B,), v, dtype=torch.long)
    y, o, info, delta = blk.step_(x.clone(), s, full(pos), full(int(op)), full(gate), full(bucket))
    assert torch.equal(o, full(int(op)))
    return y, s, info, delta


def test_read_mem_gates_the_memory_read():
    model, blk, state, st, x = _setup()
    empty = state.layers[0]
    full_st = state.fork().layers[0]
    _fill(full_st, range(6))
    y_nop_full = _run(blk, full_st, x, Opcode.NOP)[0]
    y_nop_empty = _run(blk, empty, x, Opcode.NOP)[0]
    assert torch.equal(y_nop_full, y_nop_empty)            # not selected: no contribution at all
    y_read_full = _run(blk, full_st, x, Opcode.READ_MEM)[0]
    y_read_empty = _run(blk, empty, x, Opcode.READ_MEM)[0]
    assert torch.equal(y_read_empty, y_nop_empty)          # nothing live: a read adds exactly zero
    assert (y_read_full - y_nop_full).abs().max() > 1e-4   # selected: the read enters the fusion


def test_write_mem_writes_only_when_the_gate_is_open():
    model, blk, state, st, x = _setup()
    for op, gate, writes in [(Opcode.WRITE_MEM, 1, True), (Opcode.WRITE_MEM, 0, False), (Opcode.NOP, 1, False),
                             (Opcode.READ_MEM, 1, False)]:
        y, s, info, _ = _run(blk, st, x, op, gate=gate, bucket=3, pos=17)
        if not writes:
            assert not s.mem_valid.any() and (info["write_slot"] == -1).all()
            continue
        assert s.mem_valid.sum() == B and s.mem_valid[:, 3, 0].all()  # first empty way of the teacher's bucket
        assert torch.equal(info["write_slot"], torch.tensor([[3, 0]] * B))
        assert torch.allclose(s.mem_keys[:, 3, 0], st.prev_key)       # the key of the previous token
        assert (s.mem_age[:, 3, 0] == 17).all()
        assert ((s.mem_utility[:, 3, 0] > 0) & (s.mem_utility[:, 3, 0] < 1)).all()
        assert s.mem_values[:, 3, 0].abs().sum() > 0
        assert not torch.allclose(s.prev_key, st.prev_key)            # the next key is this token's


def test_clear_mem_invalidates_the_best_matching_slot():
    model, blk, state, st, x = _setup()
    _fill(st, [4])
    st.mem_keys[:, 4, 2] = st.prev_key * 3.0   # same direction as the clearing key: cosine 1
    y, s, info, _ = _run(blk, st, x, Opcode.CLEAR_MEM, bucket=4)
    assert torch.equal(s.mem_valid[:, 4], torch.tensor([[True, True, False, True]] * B))
    assert s.mem_keys[:, 4, 2].abs().sum() == 0 and s.mem_values[:, 4, 2].abs().sum() == 0
    assert torch.equal(info["cleared_slot"], torch.tensor([[4, 2]] * B))
    for w in (0, 1, 3):
        assert torch.equal(s.mem_keys[:, 4, w], st.mem_keys[:, 4, w])
    # clearing an empty bucket is a no-op
    y, s, info, _ = _run(blk, st, x, Opcode.CLEAR_MEM, bucket=1)
    assert torch.equal(s.mem_valid, st.mem_valid) and (info["cleared_slot"] == -1).all()


@pytest.mark.parametrize("confidence,clears", [(0.0, True), (0.5, True), (0.7, False)])
def test_an_unsure_clear_is_a_nop(confidence, clears):
    """The opcode head picks CLEAR with probability 0.6: carried out only below that confidence."""
    model, blk, state, st, x = _setup(clear_confidence=confidence)
    lo = blk.sizes[0] + blk.sizes[1] + blk.sizes[2]
    with torch.no_grad():
        blk.proj.weight[lo:lo + 10] = 0.0
        logits = torch.full((10,), -30.0)
        logits[int(Opcode.CLEAR_MEM)], logits[int(Opcode.WRITE_MEM)] = 0.0, -0.4055  # p = 0.6 / 0.4
        blk.proj.bias[lo:lo + 10] = logits
    _fill(st, range(6))
    st.mem_keys[:, 4, 2] = st.prev_key
    from engine.vm.state import LayerState
    s = LayerState(**{k: v.clone() for k, v in st.tensors().items()})
    free = torch.full((B,), -1, dtype=torch.long)
    _, op, info, _ = blk.step_(x.clone(), s, torch.full((B,), 10), free, free, torch.full((B,), 4))
    want = Opcode.CLEAR_MEM if clears else Opcode.NOP
    assert (op == int(want)).all()
    assert bool((info["cleared_slot"][:, 0] >= 0).all()) == clears
    assert bool(s.mem_valid.all()) != clears
    # a teacher's CLEAR is carried out whatever the confidence
    _, op, info, _ = _run(blk, st, x, Opcode.CLEAR_MEM, bucket=4)
    assert (info["cleared_slot"][:, 0] == 4).all()


def test_gate_up_and_gate_down_raise_and_lower_the_fused_contribution():
    model, blk, state, st, x = _setup()   # memory empty: the fused part is g_reg * registers' readout
    y_up = _run(blk, st, x, Opcode.GATE_UP)[0]
    y_nop = _run(blk, st, x, Opcode.NOP)[0]
    y_down = _run(blk, st, x, Opcode.GATE_DOWN)[0]
    full = y_up - y_down                  # gate 1 minus gate 0: the whole register contribution
    assert full.abs().max() > 1e-4
    ratio = (y_nop - y_down) / full       # the model's own gate, strictly between 0 and 1
    g = ratio[:, full[0].abs().argmax()]
    assert ((g > 0) & (g < 1)).all()
    assert torch.allclose(y_nop - y_down, g.unsqueeze(-1) * full, atol=1e-5)


def test_idle_leaves_the_residual_stream_unchanged():
    model, blk, state, st, x = _setup()
    _fill(st, range(6))
    y, s, _, _ = _run(blk, st, x, Opcode.IDLE)
    assert torch.equal(y, x)
    # whole model: IDLE in every layer => logits of the embedding alone
    ids = torch.tensor([65, 66])
    out = model.step(ids, state.fork(), Teacher(opcodes=torch.full((B,), int(Opcode.IDLE))))
    assert torch.allclose(out.logits, model._logits(model.embed(ids)))


def test_scan_reads_beyond_the_plain_read_probes():
    model, blk, state, st, x = _setup()
    _, _, info, _ = _run(blk, st, x, Opcode.NOP)
    probed = info["read_buckets"]          # the plain read's top-P buckets, per row
    for b in range(B):                     # fill every bucket the plain read does NOT probe
        for bucket in range(6):
            if bucket not in probed[b].tolist():
                st.mem_keys[b, bucket].normal_()
                st.mem_values[b, bucket].normal_()
                st.mem_valid[b, bucket] = True
    y_nop = _run(blk, st, x, Opcode.NOP)[0]
    y_read = _run(blk, st, x, Opcode.READ_MEM)[0]
    y_scan = _run(blk, st, x, Opcode.SCAN)[0]
    assert torch.equal(y_read, y_nop)                   # the plain read finds nothing in its buckets
    assert (y_scan - y_nop).abs().max() > 1e-4          # the scan reaches the others


@pytest.mark.parametrize("bias,delta", [([0.0, 0.0, 50.0], 1), ([50.0, 0.0, 0.0], -1), ([0.0, 50.0, 0.0], 0)])
def test_commit_moves_the_ledger_by_the_commitment_head(bias, delta):
    model, blk, state, st, x = _setup()
    commit_cols = slice(sum(blk.sizes[:6]), sum(blk.sizes[:7]))
    with torch.no_grad():
        blk.proj.bias[commit_cols] = torch.tensor(bias)
    st.ledger.fill_(5)
    _, s, _, d = _run(blk, st, x, Opcode.COMMIT)
    assert (s.ledger == 5 + delta).all() and (d == delta).all()
    _, s, _, d = _run(blk, st, x, Opcode.NOP)           # not selected: the ledger stays
    assert (s.ledger == 5).all() and (d == 0).all()


def test_respond_and_nop_have_no_block_effect():
    model, blk, state, st, x = _setup()
    _fill(st, range(6))
    y_nop, s_nop, _, _ = _run(blk, st, x, Opcode.NOP)
    y_resp, s_resp, _, _ = _run(blk, st, x, Opcode.RESPOND)
    assert torch.equal(y_nop, y_resp)
    assert torch.equal(s_nop.mem_valid, st.mem_valid) and torch.equal(s_nop.mem_keys, st.mem_keys)
    assert all(torch.equal(a, b) for a, b in zip(s_nop.tensors().values(), s_resp.tensors().values()))


def _full_bucket(st, bucket, utility, age):
    g = torch.Generator().manual_seed(5)
    W = st.mem_valid.shape[-1]
    keys = torch.randn(W, st.mem_keys.shape[-1], generator=g)
    keys -= (keys @ st.prev_key[0]).unsqueeze(-1) * st.prev_key[0] / st.prev_key[0].dot(st.prev_key[0])
    st.prev_key[1] = st.prev_key[0]
    st.mem_keys[:, bucket] = keys          # orthogonal to the write key: no match
    st.mem_values[:, bucket] = 1.0
    st.mem_utility[:, bucket] = torch.tensor(utility)
    st.mem_age[:, bucket] = torch.tensor(age)
    st.mem_valid[:, bucket] = True


def test_full_bucket_evicts_its_lowest_utility_way():
    model, blk, state, st, x = _setup()
    _full_bucket(st, 2, utility=[0.9, 0.2, 0.05, 0.7], age=[1, 2, 3, 4])
    _, s, info, _ = _run(blk, st, x, Opcode.WRITE_MEM, gate=1, bucket=2, pos=50)
    assert torch.equal(info["write_slot"], torch.tensor([[2, 2]] * B))
    assert (s.mem_age[:, 2] == torch.tensor([1, 2, 50, 4])).all()


def test_eviction_ties_go_to_the_oldest_and_a_match_overwrites():
    model, blk, state, st, x = _setup()
    _full_bucket(st, 2, utility=[0.3, 0.1, 0.1, 0.7], age=[1, 9, 4, 2])
    _, s, info, _ = _run(blk, st, x, Opcode.WRITE_MEM, gate=1, bucket=2, pos=50)
    assert torch.equal(info["write_slot"], torch.tensor([[2, 2]] * B))   # equal utility: older age 4 goes
    st.mem_keys[:, 2, 3] = st.prev_key * 0.5                             # cosine 1 with the write key
    _, s, info, _ = _run(blk, st, x, Opcode.WRITE_MEM, gate=1, bucket=2, pos=50)
    assert torch.equal(info["write_slot"], torch.tensor([[2, 3]] * B))   # the match wins over eviction


def test_forward_and_step_agree_on_hand_made_states():
    """The integer pass of forward makes the same choices on these states (evict / tie / match)."""
    model, blk, state, st, x = _setup()
    _full_bucket(st, 2, utility=[0.3, 0.1, 0.1, 0.7], age=[1, 9, 4, 2])
    _fill(st, [0, 5])
    ids = torch.randint(0, 256, (B, 9), generator=torch.Generator().manual_seed(3))
    ops = torch.full((B, 9), int(Opcode.WRITE_MEM))
    ops[:, 4] = int(Opcode.CLEAR_MEM)
    t = Teacher(opcodes=ops, write_gate=torch.ones(B, 9, dtype=torch.long), bucket=torch.full((B, 9), 2))
    out = model(ids, state=state, teacher=t)
    stepped = state.fork()
    for i in range(9):
        model.step(ids[:, i], stepped, t.at(i))
    from vm_helpers import assert_same_state
    assert_same_state(out.state, stepped)
