"""The memory read's Triton twin against its reference: outputs and every gradient."""
import pytest
import torch

from kernels.memory import naive
from kernels.memory import triton as twin
from kernels.testing import assert_close, poison_empty, randn

# (N queries, S candidate slots, dk, dv, which mask)
CASES = [
    (1, 1, 3, 5, "all"),          # one query, one slot
    (5, 9, 7, 6, "random"),       # odd sizes, some rows fully masked
    (3, 64, 32, 64, "full"),      # full buckets: every way of 8 buckets x 8 ways live
    (4, 24, 16, 48, "none"),      # nothing live anywhere: zeros, zero gradients
    (2, 130, 8, 8, "random"),     # a wide SCAN over many buckets
]


def _mask(kind: str, N: int, S: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    if kind in ("all", "full"):
        return torch.ones(N, S, dtype=torch.bool)
    if kind == "none":
        return torch.zeros(N, S, dtype=torch.bool)
    m = torch.rand(N, S, generator=g) > 0.4
    m[0] = False  # one query with no live slot
    return m


@pytest.mark.parametrize("N,S,dk,dv,kind", CASES, ids=[f"N{c[0]}-S{c[1]}-dk{c[2]}-dv{c[3]}-{c[4]}" for c in CASES])
def test_read_slots_matches_naive(N, S, dk, dv, kind):
    q = randn(N, dk, seed=1, requires_grad=True)
    k = randn(N, S, dk, seed=2, requires_grad=True)
    v = randn(N, S, dv, seed=3, requires_grad=True)
    mask = _mask(kind, N, S)
    cot = randn(N, dv, seed=4)

    with poison_empty():
        out = twin.read_slots(q, k, v, mask)
        grads = torch.autograd.grad((out * cot).sum(), (q, k, v))
    ref = naive.read_slots(q, k, v, mask)
    ref_grads = torch.autograd.grad((ref * cot).sum(), (q, k, v))

    assert_close("r", out, ref, 1e-5)
    for name, g, rg in zip(("q", "keys", "values"), grads, ref_grads):
        assert_close(f"d{name}", g, rg, 1e-5)
    if kind == "none":
        assert torch.equal(out, torch.zeros_like(out))


def test_large_logits_stay_finite():
    q = randn(2, 8, seed=1) * 100
    k = randn(2, 5, 8, seed=2) * 100
    v = randn(2, 5, 4, seed=3)
    mask = torch.ones(2, 5, dtype=torch.bool)
    assert_close("r", twin.read_slots(q, k, v, mask), naive.read_slots(q, k, v, mask), 1e-5)


# --- the decode-time memory step: route, both reads, write / clear / evict -------------------
from engine.vm import ModelConfig  # noqa: E402
from engine.vm.fastpath import triton_memory_step_  # noqa: E402
from engine.vm.memory import Memory  # noqa: E402
from engine.vm.state import VMState  # noqa: E402


def _layer_state(cfg, B):
    return VMState.empty(cfg, B).layers[0]


@pytest.mark.parametrize("B,buckets,ways,dk,dv,same_utility", [
    (1, 1, 1, 3, 5, False),     # batch 1, a single slot: every write past the first evicts
    (5, 3, 3, 5, 7, False),     # odd sizes: buckets fill, evictions, clears, overwrites
    (4, 4, 8, 32, 64, True),    # equal utilities: the oldest age breaks the tie
], ids=["B1-1x1", "B5-3x3", "B4-4x8-ties"])
def test_memory_step_twin_matches_naive(B, buckets, ways, dk, dv, same_utility):
    cfg = ModelConfig.preset("tiny").replace(buckets=buckets, ways=ways, key_dim=dk, value_dim=dv,
                                             probes=1, scan_probes=buckets)
    torch.manual_seed(0)
    mem = Memory(16, buckets, ways, dk, dv, 1, buckets, 0.9)
    ref, got = _layer_state(cfg, B), _layer_state(cfg, B)
    g = torch.Generator().manual_seed(1)
    rows = torch.arange(B)
    evictions = clears = overwrites = 0
    with poison_empty():
        for t in range(40):
            q, k = torch.randn(B, dk, generator=g), torch.randn(B, dk, generator=g)
            if t % 4 == 3:  # a near-copy of a stored key: the overwrite path
                k = ref.mem_keys[rows, 0, 0] + 1e-3 * k
            v = torch.randn(B, dv, generator=g)
            u = torch.full((B,), 0.5) if same_utility else torch.rand(B, generator=g)
            pos = torch.full((B,), t, dtype=torch.long)
            op = torch.randint(0, 4, (B,), generator=g)
            write = (op >= 1) if t < 25 else (op == 2)  # fill first, then mix in clears
            clear = (op == 0) & (t >= 25)
            full_before = ref.mem_valid.all(-1).any().item()
            M1, i1 = mem.step_(ref, q, k, v, u, pos, (op == 1).float(), (op == 3).float(), write, clear, None)
            M2, i2 = triton_memory_step_(mem, got, q, k, v, u, pos, (op == 1).float(), (op == 3).float(),
                                         write, clear, None)
            assert_close(f"M at t={t}", M2, M1, 1e-5)
            assert_close(f"router_entropy at t={t}", i2["router_entropy"], i1["router_entropy"], 1e-5)
            for name in ("read_buckets", "write_slot", "cleared_slot"):
                assert torch.equal(i2[name], i1[name]), f"{name} at t={t}: {i2[name]} != {i1[name]}"
            for name, a in ref.tensors().items():
                b = got.tensors()[name]
                if a.is_floating_point():
                    assert_close(f"{name} at t={t}", b, a, 1e-6)
                else:
                    assert torch.equal(a, b), f"{name} at t={t} differs"
            clears += int((i1["cleared_slot"][:, 0] >= 0).sum())
            evictions += int(full_before and write.any())
            overwrites += int(t % 4 == 3 and write.any())
    assert clears > 0 and evictions > 0 and overwrites > 0, (clears, evictions, overwrites)


def test_table_read_empty_table_reads_zero():
    B, NB, W, dk, dv = 2, 4, 2, 8, 4
    r_p, r_s = twin.table_read(randn(B, dk), torch.tensor([[0, 1, 2], [3, 2, 1]]),
                               randn(B, NB, W, dk, seed=1), randn(B, NB, W, dv, seed=2),
                               torch.zeros(B, NB, W, dtype=torch.bool), 1)
    assert torch.equal(r_p, torch.zeros(B, dv)) and torch.equal(r_s, torch.zeros(B, dv))


# --- reads of rows of shared tables (training) -----------------------------------------------
ROW_CASES = [
    (1, 1, 1, 1, 3, 5, "all"),          # one read of one row
    (7, 9, 3, 40, 7, 6, "random"),      # odd sizes; a plain read and a wide one; rows shared
    (5, 64, 64, 300, 32, 64, "random"), # plain only (the READ groups of the model)
    (4, 256, 64, 97, 32, 64, "random"), # a SCAN: 32 probes x 8 ways over few rows (many shared)
    (3, 24, 8, 50, 16, 48, "none"),     # nothing live: zeros, zero gradients
]


@pytest.mark.parametrize("N,S,plain,R,dk,dv,kind", ROW_CASES, ids=[f"N{c[0]}-S{c[1]}-p{c[2]}-R{c[3]}-{c[6]}"
                                                                   for c in ROW_CASES])
def test_read_rows_matches_naive(N, S, plain, R, dk, dv, kind):
    q = randn(N, dk, seed=1, requires_grad=True)
    k = randn(R, dk, seed=2, requires_grad=True)
    v = randn(R, dv, seed=3, requires_grad=True)
    index = torch.randint(0, R, (N, S), generator=torch.Generator().manual_seed(5))
    mask = _mask(kind, N, S)
    cots = randn(N, dv, seed=4), randn(N, dv, seed=6)

    def loss(outs):
        return sum((o * c).sum() for o, c in zip(outs, cots) if o is not None)
    with poison_empty():
        out = twin.read_rows(q, k, v, index, mask, plain)
        grads = torch.autograd.grad(loss(out), (q, k, v))
    ref = naive.read_rows(q, k, v, index, mask, plain)
    ref_grads = torch.autograd.grad(loss(ref), (q, k, v))
    assert (out[1] is None) == (ref[1] is None) == (plain == S)
    for name, o, r in zip(("r_plain", "r_wide"), out, ref):
        if r is not None:
            assert_close(name, o, r, 1e-5)
    for name, g, rg in zip(("q", "keys", "values"), grads, ref_grads):
        assert_close(f"d{name}", g, rg, 1e-5)
    if kind == "none":
        assert torch.equal(out[0], torch.zeros_like(out[0]))


def test_read_rows_only_the_wide_read_used():
    """A graph that uses the wide read alone gives the plain one no cotangent (None in backward)."""
    q, k, v = randn(3, 8, seed=1, requires_grad=True), randn(20, 8, seed=2, requires_grad=True), randn(20, 4, seed=3)
    index = torch.randint(0, 20, (3, 16), generator=torch.Generator().manual_seed(2))
    mask = _mask("random", 3, 16)
    g = torch.autograd.grad(twin.read_rows(q, k, v, index, mask, 8)[1].sum(), (q, k))
    rg = torch.autograd.grad(naive.read_rows(q, k, v, index, mask, 8)[1].sum(), (q, k))
    for name, a, b in zip(("dq", "dkeys"), g, rg):
        assert_close(name, a, b, 1e-5)
    with pytest.raises(ValueError, match="plain"):
        naive.read_rows(q, k, v, index, mask, 17)


# --- read_mix: both reads weighted by the READ / SCAN selections, in read_rows' kernels --------
READ, SCAN, OPS = 3, 5, 8  # the weights are columns of a selection matrix, as the model passes them


def _mix_inputs(N, S, R, dk, dv, kind):
    q = randn(N, dk, seed=1, requires_grad=True)
    k = randn(R, dk, seed=2, requires_grad=True)
    v = randn(R, dv, seed=3, requires_grad=True)
    index = torch.randint(0, R, (N, S), generator=torch.Generator().manual_seed(5))
    sel = randn(N, OPS, seed=7)
    sel[N // 2, READ] = 0.0  # straight-through selections are mostly exact zeros and ones
    sel[N - 1, SCAN] = 1.0
    return q, k, v, index, _mask(kind, N, S), sel.requires_grad_()


@pytest.mark.parametrize("N,S,plain,R,dk,dv,kind", ROW_CASES, ids=[f"N{c[0]}-S{c[1]}-p{c[2]}-R{c[3]}-{c[6]}"
                                                                   for c in ROW_CASES])
def test_read_mix_matches_naive(N, S, plain, R, dk, dv, kind):
    q, k, v, index, mask, sel = _mix_inputs(N, S, R, dk, dv, kind)
    cot = randn(N, dv, seed=4)
    wide = plain < S

    def run(read_mix):
        out = read_mix(q, k, v, index, mask, plain, sel[:, READ], sel[:, SCAN] if wide else None)
        return out, torch.autograd.grad((out * cot).sum(), (q, k, v, sel))
    with poison_empty():
        out, grads = run(twin.read_mix)
    ref, ref_grads = run(naive.read_mix)
    assert_close("mixed", out, ref, 1e-5)
    for name, g, rg in zip(("q", "keys", "values"), grads[:3], ref_grads[:3]):
        assert_close(f"d{name}", g, rg, 1e-5)
    dsel, ref_dsel = grads[3], ref_grads[3]
    assert_close("dw_plain", dsel[:, READ], ref_dsel[:, READ], 1e-5)
    if wide:
        assert_close("dw_wide", dsel[:, SCAN], ref_dsel[:, SCAN], 1e-5)
    others = [c for c in range(OPS) if c != READ and (c != SCAN or not wide)]
    assert torch.equal(dsel[:, others], torch.zeros(N, len(others))), "gradient outside the weights' columns"
    if kind == "none":
        assert torch.equal(out, torch.zeros_like(out))
        assert torch.equal(dsel, torch.zeros_like(dsel))


def test_read_mix_naive_is_the_callers_math():
    """The reference is bit for bit what Memory.mix_rows computed around read_rows."""
    N, S, plain, R, dk, dv = 7, 9, 3, 40, 7, 6
    q, k, v, index, mask, sel = _mix_inputs(N, S, R, dk, dv, "random")
    r_p, r_w = naive.read_rows(q, k, v, index, mask, plain)
    assert torch.equal(naive.read_mix(q, k, v, index, mask, plain, sel[:, READ], sel[:, SCAN]),
                       sel[:, READ].unsqueeze(-1) * r_p + sel[:, SCAN].unsqueeze(-1) * r_w)
    r_p, _ = naive.read_rows(q, k, v, index, mask, S)
    assert torch.equal(naive.read_mix(q, k, v, index, mask, S, sel[:, READ], None), sel[:, READ].unsqueeze(-1) * r_p)


def test_read_mix_dispatch(monkeypatch):
    import kernels.memory as km
    q, k, v, index, mask, sel = _mix_inputs(3, 16, 20, 8, 4, "random")
    args = (q, k, v, index, mask, 8, sel[:, READ], sel[:, SCAN])
    monkeypatch.setenv("MOSAIC_KERNELS", "triton")
    got = km.read_mix(*args)
    monkeypatch.setenv("MOSAIC_KERNELS", "naive")
    assert torch.equal(km.read_mix(*args), naive.read_mix(*args))
    assert_close("mixed", got, naive.read_mix(*args), 1e-5)


@pytest.mark.parametrize("impl", [naive, twin], ids=["naive", "triton"])
def test_read_mix_wants_w_wide_exactly_with_a_wide_read(impl):
    q, k, v, index, mask, sel = _mix_inputs(3, 16, 20, 8, 4, "random")
    w = sel[:, READ]
    with pytest.raises(ValueError, match="w_wide"):
        impl.read_mix(q, k, v, index, mask, 16, w, sel[:, SCAN])   # plain == S: no wide read
    with pytest.raises(ValueError, match="w_wide"):
        impl.read_mix(q, k, v, index, mask, 8, w, None)            # plain < S: the wide read's weight
    with pytest.raises(ValueError, match="w_plain"):
        impl.read_mix(q, k, v, index, mask, 16, sel[:2, READ], None)
    with pytest.raises(ValueError, match="plain"):
        impl.read_mix(q, k, v, index, mask, 17, w, None)
