"""The batched (device) slot planner against the reference host planner: same decisions."""
import numpy as np
import pytest
import torch

from engine.vm.memory import plan
from engine.vm.plan_batched import plan_batched
from vm_helpers import assert_same_state, busy_teacher, make_model


def _inputs(seed, B, NB, W, T, dk, Ps, n_reads, p_event=0.5, fill=0.5):
    g = torch.Generator().manual_seed(seed)
    ev = torch.rand(B, T, generator=g) < p_event
    write = ev & (torch.rand(B, T, generator=g) < 0.8)
    clear = ev & ~write
    bucket = torch.randint(0, NB, (B, T), generator=g)
    # a few repeated keys so that writes match a live way (cosine 1 >= threshold) and clears hit
    base = torch.randn(4, dk, generator=g)
    keys = torch.randn(B, T, dk, generator=g)
    rep = torch.rand(B, T, generator=g) < 0.4
    keys[rep] = base[torch.randint(0, 4, (int(rep.sum()),), generator=g)] * (1 + torch.rand(int(rep.sum()), 1, generator=g))
    # utilities and ages with ties, so that eviction exercises both tie breaks
    utility = torch.tensor([0.25, 0.5, 0.75])[torch.randint(0, 3, (B, T), generator=g)]
    pos0 = torch.randint(0, 50, (B,), generator=g)
    init_valid = torch.rand(B, NB, W, generator=g) < fill
    init_keys = torch.randn(B, NB, W, dk, generator=g) * init_valid[..., None]
    init_utility = torch.tensor([0.25, 0.5])[torch.randint(0, 2, (B, NB, W), generator=g)] * init_valid
    init_age = torch.randint(0, 3, (B, NB, W), generator=g) * init_valid
    rows = torch.randint(0, B, (n_reads,), generator=g)
    pos = torch.randint(0, T, (n_reads,), generator=g)
    probes = torch.stack([torch.randperm(NB, generator=g)[:Ps] for _ in range(n_reads)]
                         or [torch.empty(0, Ps, dtype=torch.long)]).reshape(n_reads, Ps)
    return dict(threshold=0.9, write=write, clear=clear, bucket=bucket, keys=keys, utility=utility, pos0=pos0,
                read_rows=rows, read_pos=pos, read_probes=probes, init_valid=init_valid, init_keys=init_keys,
                init_utility=init_utility, init_age=init_age)


@pytest.mark.parametrize("seed,B,NB,W,T,dk,Ps,n_reads,p_event,fill", [
    (0, 1, 1, 1, 1, 3, 1, 1, 1.0, 0.0),      # batch 1, length 1, one slot
    (1, 3, 5, 3, 37, 7, 2, 29, 0.6, 0.5),    # odd sizes
    (2, 2, 3, 2, 101, 5, 3, 64, 0.9, 1.0),   # full buckets from the start: evictions
    (3, 4, 7, 4, 53, 8, 4, 0, 0.4, 0.3),     # no reads
    (4, 2, 4, 3, 64, 6, 4, 40, 0.0, 0.6),    # no events: reads see the initial table
])
@pytest.mark.parametrize("walker,kernels", [("ranks", "naive"), ("chains", "naive"), ("chains", "triton")])
def test_batched_plan_takes_the_reference_decisions(seed, B, NB, W, T, dk, Ps, n_reads, p_event, fill,
                                                    walker, kernels, monkeypatch):
    # "chains" with triton: the Triton walker (through the interpreter on a CPU, see conftest)
    monkeypatch.setenv("MOSAIC_KERNELS", kernels)
    if kernels == "triton":
        from kernels import backend
        assert backend.triton_twin("chains") is not None, backend._import_errors.get("chains")
    args = _inputs(seed, B, NB, W, T, dk, Ps, n_reads, p_event, fill)
    ref = plan(**{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in args.items()})
    got = plan_batched(**args, walker=walker)
    np.testing.assert_array_equal(got.final.numpy(), ref.final, err_msg="final occupants")
    np.testing.assert_array_equal(got.read_events.numpy(), ref.read_events, err_msg="read events")
    assert got.read_events.shape == (n_reads, Ps * W)
    if p_event > 0.5:  # the case really evicts and matches
        assert (ref.final >= NB * W).any()


def test_the_model_gives_the_same_logits_state_and_gradients_with_either_planner(monkeypatch):
    B, T = 3, 67
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(7))
    results = {}
    for planner in ("host", "device", "chains"):
        monkeypatch.setenv("MOSAIC_PLANNER", planner)
        model = make_model(11).train()
        teacher = busy_teacher(B, T, model.config, 11)
        out = model(ids, teacher=teacher)
        out.logits.float().pow(2).mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[planner] = (out.logits.detach(), out.state, grads)
    l_h, s_h, g_h = results["host"]
    for planner in ("device", "chains"):
        l_d, s_d, g_d = results[planner]
        assert torch.equal(l_h, l_d), planner
        assert_same_state(s_h, s_d, atol=0.0)
        assert g_h.keys() == g_d.keys() and len(g_h) > 10
        for name in g_h:
            assert torch.equal(g_h[name], g_d[name]), (planner, name)
