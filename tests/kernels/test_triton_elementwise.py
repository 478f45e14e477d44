"""The element-wise ops' Triton twins against their references: outputs and every gradient,
odd sizes, views of wider tensors, a zero row, mixed dtypes."""
import pytest
import torch

from kernels.elementwise import naive
from kernels.elementwise import triton as twin
from kernels.testing import assert_close, grads_of, poison_empty, randn

# the model's opcode columns (engine.vm.isa: IDLE 4, GATE_UP 5, GATE_DOWN 6 of 10)
MODEL_COLS = (5, 6, 4)


def _view(shape: tuple[int, ...], width: int, layout: str, seed: int, dtype=torch.float32) -> tuple:
    """(leaf, view [*shape, width]): the view is the leaf itself ("contig"), a last-dim slice of a
    wider leaf ("sliced", as projections are split), or a transposed leaf whose leading dims do
    not flatten to rows ("transposed", the copy path)."""
    if layout == "contig":
        leaf = randn(*shape, width, seed=seed, dtype=dtype, requires_grad=True)
        return leaf, leaf
    if layout == "sliced":
        leaf = randn(*shape, width + 7, seed=seed, dtype=dtype, requires_grad=True)
        return leaf, leaf[..., 3:3 + width]
    assert len(shape) == 2
    leaf = randn(shape[1], shape[0], width, seed=seed, dtype=dtype, requires_grad=True)
    return leaf, leaf.transpose(0, 1)


def _sel(shape, n, kind, layout, seed):
    """(leaf, make): make() gives sel [*shape, n] from the leaf: random soft values in [0, 1]
    ("soft"), or the straight-through estimator's one-hot value whose gradient reaches a
    softmax ("ste"). A function, so the twin and the reference each get their own graph."""
    leaf, view = _view(shape, n, layout, seed)
    if kind == "soft":
        with torch.no_grad():
            leaf.uniform_(0, 1, generator=torch.Generator().manual_seed(seed))
        return leaf, lambda: view

    def ste():
        soft = view.softmax(-1)
        hard = torch.nn.functional.one_hot(soft.argmax(-1), n).to(soft.dtype)
        return hard + soft - soft.detach()
    return leaf, ste


# (leading shape, d, n, with mem, layout, sel kind, (up, down, idle))
GATED_CASES = [
    ((1, 1), 37, 10, True, "contig", "soft", MODEL_COLS),       # batch 1, length 1
    ((3, 5), 37, 10, False, "sliced", "soft", MODEL_COLS),      # no memory path, views of wider tensors
    ((2, 7), 37, 10, True, "sliced", "ste", MODEL_COLS),        # the STE's one-hot values
    ((2, 7), 37, 10, True, "transposed", "soft", (0, 9, 3)),    # rows that need a copy; edge columns
    # the narrowest sel; soft, since with the STE's values every row would be up, down or idle
    # and all its gate gradients rounding noise
    ((3, 5), 5, 3, False, "contig", "soft", (2, 0, 1)),
    ((2, 9), 128, 10, True, "sliced", "soft", MODEL_COLS),      # the default model's d
]


def _gated_inputs(lead, d, n, with_mem, layout, sel_kind, dtype=torch.float32):
    """(make, leaves, names): make() gives the op's six tensor arguments as views of the leaves."""
    x_leaf, x = _view(lead, d, layout, 1)
    (l_leaf, local), (r_leaf, reg) = _view(lead, d, layout, 2, dtype), _view(lead, d, layout, 3, dtype)
    m_leaf, mem = _view(lead, d, layout, 4, dtype) if with_mem else (None, None)
    s_leaf, sel = _sel(lead, n, sel_kind, layout, 5)
    # the gate logits are a 2-wide slice of a wider projection, whatever the layout
    g_leaf, proj = _view(lead, 11, layout, 6, dtype)
    leaves = [t for t in (x_leaf, l_leaf, r_leaf, m_leaf, s_leaf, g_leaf) if t is not None]
    names = [k for k, t in zip(("x", "local", "reg", "mem", "sel", "gate_logits"),
                               (x_leaf, l_leaf, r_leaf, m_leaf, s_leaf, g_leaf)) if t is not None]
    return (lambda: (x, local, reg, mem, sel(), proj[..., 4:6])), leaves, names


@pytest.mark.parametrize("lead,d,n,with_mem,layout,sel_kind,cols", GATED_CASES,
                         ids=[f"{'x'.join(map(str, c[0]))}-d{c[1]}-n{c[2]}-{'mem' if c[3] else 'nomem'}-{c[4]}-{c[5]}"
                              for c in GATED_CASES])
def test_gated_update_matches_naive(lead, d, n, with_mem, layout, sel_kind, cols):
    make, leaves, names = _gated_inputs(lead, d, n, with_mem, layout, sel_kind)
    cot = randn(*lead, d, seed=9)
    with poison_empty():
        out = twin.gated_update(*make(), *cols)
        grads = grads_of((out * cot).sum(), *leaves)
    ref = naive.gated_update(*make(), *cols)
    ref_grads = grads_of((ref * cot).sum(), *leaves)
    assert out.dtype == ref.dtype
    assert_close("y", out, ref, 1e-6)
    for name, g, rg in zip(names, grads, ref_grads):
        assert_close(f"d{name}", g, rg, 1e-5)


@pytest.mark.parametrize("wanted", ["local", "sel", "gate_logits", "x"])
def test_gated_update_partial_gradients(wanted):
    """Only one input needs a gradient: the kernel skips the others' and that one still matches."""
    make, _, _ = _gated_inputs((2, 3), 13, 10, True, "contig", "soft")
    names = ("x", "local", "reg", "mem", "sel", "gate_logits")
    args = [t.detach().requires_grad_(k == wanted) for k, t in zip(names, make())]
    leaf = args[names.index(wanted)]
    cot = randn(2, 3, 13, seed=9)
    with poison_empty():
        (g,) = grads_of((twin.gated_update(*args, *MODEL_COLS) * cot).sum(), leaf)
    (rg,) = grads_of((naive.gated_update(*args, *MODEL_COLS) * cot).sum(), leaf)
    assert_close(f"d{wanted}", g, rg, 1e-5)


@pytest.mark.parametrize("with_mem", [True, False], ids=["mem", "nomem"])
def test_gated_update_mixed_dtypes(with_mem):
    """bf16 local / reg / mem / gate logits with float32 x and sel (bf16 autocast): y in the promoted
    dtype, every gradient in its input's dtype, close to the reference at bf16's precision."""
    make, leaves, names = _gated_inputs((2, 7), 37, 10, with_mem, "sliced", "soft", dtype=torch.bfloat16)
    cot = randn(2, 7, 37, seed=9)
    with poison_empty():
        out = twin.gated_update(*make(), *MODEL_COLS)
        grads = grads_of((out * cot).sum(), *leaves)
    ref = naive.gated_update(*make(), *MODEL_COLS)
    ref_grads = grads_of((ref * cot).sum(), *leaves)
    assert out.dtype == ref.dtype == torch.float32
    assert_close("y", out, ref, 2e-2)
    for name, g, rg in zip(names, grads, ref_grads):
        assert g.dtype == rg.dtype, f"d{name}: {g.dtype} != {rg.dtype}"
        assert_close(f"d{name}", g, rg, 2e-2)


def test_gated_update_without_grad_saves_nothing(monkeypatch):
    args = _gated_inputs((3, 5), 37, 10, True, "sliced", "ste")[0]()
    monkeypatch.setattr(twin, "_GatedUpdate", None)  # any autograd path would fail
    with torch.no_grad(), poison_empty():
        out = twin.gated_update(*args, *MODEL_COLS)
    assert_close("y", out, naive.gated_update(*args, *MODEL_COLS), 1e-6)


def test_gated_update_rejects_bad_columns():
    args = _gated_inputs((1, 2), 5, 10, False, "contig", "soft")[0]()
    with pytest.raises(ValueError, match="distinct"):
        twin.gated_update(*args, 5, 5, 4)
    with pytest.raises(ValueError, match="distinct"):
        twin.gated_update(*args, 5, 6, 10)


# --- unit_rows -----------------------------------------------------------------------------
UNIT_CASES = [
    ((1, 1), 37, "contig"),
    ((3, 5), 37, "sliced"),
    ((2, 7), 32, "sliced"),       # the default model's key_dim
    ((2, 7), 37, "transposed"),
    ((4,), 1, "contig"),          # one-wide rows: +-1 (or 0) times scale
]
SCALE = 32 ** 0.5 / 0.7


@pytest.mark.parametrize("lead,n,layout", UNIT_CASES,
                         ids=[f"{'x'.join(map(str, c[0]))}-n{c[1]}-{c[2]}" for c in UNIT_CASES])
def test_unit_rows_matches_naive(lead, n, layout):
    leaf, x = _view(lead, n, layout, 1)
    cot = randn(*lead, n, seed=2)
    with poison_empty():
        out = twin.unit_rows(x, SCALE)
        (g,) = grads_of((out * cot).sum(), leaf)
    ref = naive.unit_rows(x, SCALE)
    (rg,) = grads_of((ref * cot).sum(), leaf)
    assert out.dtype == ref.dtype
    assert_close("y", out, ref, 1e-6)
    assert_close("dx", g, rg, 1e-5)


def test_unit_rows_below_eps():
    """A zero row and a row of half eps's length: y = x / eps * scale, and the clamp passes no
    gradient to the norm, so dx = scale * dy / eps there (compared apart from the ordinary rows,
    whose gradients are 12 orders of magnitude smaller)."""
    x = randn(3, 5, 37, seed=1)
    with torch.no_grad():
        x[1, 2] = 0.0
        x[2, 0, :33] *= 0.5e-12 / x[2, 0, :33].norm()  # long enough that a projection term would show
    x = x[..., :33].requires_grad_()
    cot = randn(3, 5, 33, seed=2)
    with poison_empty():
        out = twin.unit_rows(x, SCALE)
        (g,) = grads_of((out * cot).sum(), x)
    ref = naive.unit_rows(x, SCALE)
    (rg,) = grads_of((ref * cot).sum(), x)
    tiny = torch.zeros(3, 5, dtype=torch.bool)
    tiny[1, 2] = tiny[2, 0] = True
    assert_close("y", out, ref, 1e-6)
    assert_close("dx below eps", g[tiny], rg[tiny], 1e-5)
    assert_close("dx", g[~tiny], rg[~tiny], 1e-5)
    assert torch.equal(out[1, 2], torch.zeros(33))


def test_unit_rows_bf16():
    leaf, x = _view((2, 7), 32, "sliced", 1, dtype=torch.bfloat16)
    cot = randn(2, 7, 32, seed=2)
    with poison_empty():
        out = twin.unit_rows(x, SCALE)
        (g,) = grads_of((out * cot).sum(), leaf)
    ref = naive.unit_rows(x, SCALE)
    (rg,) = grads_of((ref * cot).sum(), leaf)
    assert out.dtype == g.dtype == torch.bfloat16
    assert_close("y", out, ref, 2e-2)
    assert_close("dx", g, rg, 2e-2)


def test_unit_rows_without_grad_saves_nothing(monkeypatch):
    """Under no_grad (and on inputs that need no gradient) no autograd node is made."""
    x = randn(3, 5, 32, seed=1, requires_grad=True)
    monkeypatch.setattr(twin, "_UnitRows", None)
    with torch.no_grad(), poison_empty():
        out = twin.unit_rows(x, SCALE)
    assert_close("y", out, naive.unit_rows(x, SCALE), 1e-6)
    assert_close("y detached", twin.unit_rows(x.detach(), 2.0), naive.unit_rows(x.detach(), 2.0), 1e-6)


# --- dispatch ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,expect", [("triton", 1), ("naive", 0)])
def test_public_functions_dispatch(monkeypatch, mode, expect):
    import kernels.elementwise as ew

    monkeypatch.setenv("MOSAIC_KERNELS", mode)
    calls = []
    monkeypatch.setattr(twin, "gated_update", lambda *a: calls.append("g") or naive.gated_update(*a))
    monkeypatch.setattr(twin, "unit_rows", lambda *a: calls.append("u") or naive.unit_rows(*a))
    args = _gated_inputs((1, 2), 5, 10, False, "contig", "soft")[0]()
    ew.gated_update(*args, *MODEL_COLS)
    ew.unit_rows(randn(2, 4), 1.0)
    assert calls == ["g", "u"] * expect


# --- opcode_select -------------------------------------------------------------------------
CLEAR, NOP, WRITE = 2, 0, 1   # the model's columns (engine.vm.isa)


def _select_inputs(lead, n, teacher, seed, dtype=torch.float32):
    """(make, leaves): make() gives (op_logits, gate_logits, t_op, t_gate) as the block passes them:
    both slices of one wider projection (the gate a squeezed column), some rows with CLEAR on top
    but unsure, teacher labels with free (-1) entries."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(*lead, n + 5, generator=g) * 2
    unsure = torch.rand(lead, generator=g) < 0.3
    proj[..., 2 + CLEAR] = torch.where(unsure, proj[..., 2:2 + n].amax(-1) + 0.1, proj[..., 2 + CLEAR])
    proj = proj.to(dtype).requires_grad_()
    t_op = t_gate = None
    if teacher:
        t_op = torch.randint(-1, n, lead, generator=g)
        t_op[torch.rand(lead, generator=g) < 0.5] = -1
        t_gate = torch.randint(-1, 2, lead, generator=g)
    return (lambda: (proj[..., 2:2 + n], proj[..., n + 3], t_op, t_gate)), proj


SELECT_CASES = [((1, 1), 10, False, 0.0), ((3, 7), 10, True, 0.8), ((2, 9), 10, False, 0.8), ((4, 5), 3, True, 0.0)]


@pytest.mark.parametrize("lead,n,teacher,conf", SELECT_CASES,
                         ids=[f"{'x'.join(map(str, c[0]))}-n{c[1]}-{'teacher' if c[2] else 'free'}-c{c[3]}"
                              for c in SELECT_CASES])
def test_opcode_select_matches_naive(lead, n, teacher, conf):
    make, proj = _select_inputs(lead, n, teacher, seed=3)
    cot_sel, cot_store = randn(*lead, n, seed=4), randn(*lead, seed=5)
    with poison_empty():
        op, gate, sel, store = twin.opcode_select(*make(), CLEAR, NOP, WRITE, conf)
        (g,) = grads_of((sel * cot_sel).sum() + (store * cot_store).sum(), proj)
    r_op, r_gate, r_sel, r_store = naive.opcode_select(*make(), CLEAR, NOP, WRITE, conf)
    (rg,) = grads_of((r_sel * cot_sel).sum() + (r_store * cot_store).sum(), proj)
    assert torch.equal(op, r_op), "op"
    assert torch.equal(gate, r_gate), "gate"
    assert sel.dtype == store.dtype == torch.float32
    assert_close("sel", sel, r_sel, 1e-7)
    assert_close("store", store, r_store, 1e-7)
    assert_close("d proj", g, rg, 1e-5)
    if conf and not teacher:
        assert (r_op == NOP).any()   # some unsure CLEAR really became a NOP


def test_opcode_select_bf16_and_no_grad():
    make, proj = _select_inputs((2, 7), 10, True, seed=6, dtype=torch.bfloat16)
    cot = randn(2, 7, 10, seed=7)
    with poison_empty():
        out = twin.opcode_select(*make(), CLEAR, NOP, WRITE, 0.8)
        (g,) = grads_of((out[2] * cot).sum() + out[3].sum(), proj)
    ref = naive.opcode_select(*make(), CLEAR, NOP, WRITE, 0.8)
    (rg,) = grads_of((ref[2] * cot).sum() + ref[3].sum(), proj)
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
    assert g.dtype == torch.bfloat16
    assert_close("d proj bf16", g, rg, 1e-2)
    with torch.no_grad(), poison_empty():
        plain = twin.opcode_select(*make(), CLEAR, NOP, WRITE, 0.8)
    for name, a, b in zip(("op", "gate", "sel", "store"), plain, out):
        assert torch.equal(a, b.detach()), name


# --- swiglu --------------------------------------------------------------------------------
@pytest.mark.parametrize("lead,m,layout", [((1, 1), 37, "contig"), ((3, 5), 37, "sliced"), ((2, 7), 320, "contig"),
                                           ((2, 7), 5, "transposed")])
def test_swiglu_matches_naive(lead, m, layout):
    leaf, h = _view(lead, 2 * m, layout, seed=11)
    cot = randn(*lead, m, seed=12)
    with poison_empty():
        y = twin.swiglu(h)
        (g,) = grads_of((y * cot).sum(), leaf)
    ref = naive.swiglu(h)
    (rg,) = grads_of((ref * cot).sum(), leaf)
    assert_close("y", y, ref, 1e-6)
    assert_close("dh", g, rg, 1e-5)


def test_swiglu_bf16_and_no_grad():
    leaf, h = _view((2, 7), 2 * 37, "sliced", seed=13, dtype=torch.bfloat16)
    cot = randn(2, 7, 37, seed=14)
    with poison_empty():
        y = twin.swiglu(h)
        (g,) = grads_of((y.float() * cot).sum(), leaf)
    ref = naive.swiglu(h)
    (rg,) = grads_of((ref.float() * cot).sum(), leaf)
    assert y.dtype == g.dtype == torch.bfloat16
    assert_close("y bf16", y, ref, 1e-2)
    assert_close("dh bf16", g, rg, 2e-2)
    with torch.no_grad(), poison_empty():
        assert torch.equal(twin.swiglu(h), y.detach())
    with pytest.raises(ValueError, match="even"):
        twin.swiglu(torch.zeros(3, 5))
