"""``MosaicLM.forward(keep_state=False)``, the training forward: the same logits, aux and
gradients as the forward that keeps its final state, no state returned, and the cached empty
state it starts from never changes."""
import torch

from engine.vm.static_reads import count_reads, padded, read_capacity
from vm_helpers import busy_teacher, make_model


def _run(model, ids, teacher, keep_state):
    model.zero_grad(set_to_none=True)
    out = model(ids, teacher=teacher, keep_state=keep_state)
    aux = {k: v.detach().clone() for k, v in out.aux.items()}
    (out.logits.float().pow(2).mean() + out.aux["opcode_logits"].pow(2).mean()
     + out.aux["queries"].pow(2).mean()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, aux, grads


def _assert_same(a, b):
    (oa, aa, ga), (ob, ab, gb) = a, b
    assert torch.equal(oa.logits, ob.logits), f"logits: max diff {(oa.logits - ob.logits).abs().max()}"
    assert aa.keys() == ab.keys()
    for k in aa:
        assert torch.equal(aa[k], ab[k]), f"aux {k} differs"
    assert ga.keys() == gb.keys() and len(ga) > 10
    for n in ga:
        assert torch.equal(ga[n], gb[n]), f"grad {n}: max diff {(ga[n] - gb[n]).abs().max()}"


def test_a_forward_without_state_matches_the_one_with_it():
    model = make_model(3).train()
    B, T = 2, 37
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(1))
    teacher = busy_teacher(B, T, model.config, seed=2)
    kept = _run(model, ids, teacher, True)
    dropped = _run(model, ids, teacher, False)
    assert kept[0].state is not None and dropped[0].state is None
    _assert_same(kept, dropped)
    # and at fixed read capacities (the graphed training step)
    with read_capacity(model, padded(count_reads(model, ids, teacher))):
        _assert_same(_run(model, ids, teacher, True), _run(model, ids, teacher, False))


def test_the_cached_empty_state_stays_empty():
    model = make_model(4).train()
    ids = torch.randint(0, 256, (3, 29), generator=torch.Generator().manual_seed(5))
    teacher = busy_teacher(3, 29, model.config, seed=6)
    model(ids, teacher=teacher, keep_state=False)
    fresh = model._fresh_state(3, ids.device)
    before = {k: v.clone() for k, v in fresh.named_tensors().items()}
    for _ in range(2):
        _run(model, ids, teacher, False)
    assert model._fresh_state(3, ids.device) is fresh, "the empty state is made once per batch shape"
    empty = model.init_state(3).named_tensors()
    for k, v in fresh.named_tensors().items():
        assert torch.equal(v, before[k]) and torch.equal(v, empty[k]), f"{k} changed"
    # a new batch shape gets its own, and the first stays (a captured graph may read it)
    model(ids[:1], keep_state=False)
    assert model._fresh_state(1, ids.device).batch_size == 1
    assert model._fresh_state(3, ids.device) is fresh
