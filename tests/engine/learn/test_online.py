"""The online learner: adapters change, the base never does; exact zero-init, merge, revert, refusal."""
from __future__ import annotations

import math

import pytest
import torch

from engine.learn import adapters as lora
from engine.learn.guard import Guard
from engine.learn.online import LearnerConfig, OnlineLearner

PROBE = torch.tensor([list(b"\x11what is the door code?\n\x12the door code is 4417.\n")])


def logits(model, ids=PROBE):
    with torch.no_grad():
        return model(ids).logits


def clone_base(learner):
    return {n: t.detach().clone() for n, t in lora.base_params(learner.peft_model).items()}


def chat(learner, chat_ids, rounds=3):
    events = []
    for _ in range(rounds):
        for ids in chat_ids:
            learner.observe(ids)
            events += learner.maybe_update()
    return events


def test_chat_changes_adapters_and_keeps_every_base_weight_bit_identical(model, chat_ids, heldout_ids):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = []
    learner = OnlineLearner(model, LearnerConfig(update_every=48, window=48, lr=1e-2),
                            guard=Guard(heldout_ids, tolerance=10.0), on_event=seen.append)
    assert all(p.requires_grad is False for p in lora.base_params(learner.peft_model).values()
               if isinstance(p, torch.nn.Parameter))
    adapter0 = learner.adapter_state()
    base0 = clone_base(learner)
    events = chat(learner, chat_ids)
    updated = [e for e in events if e["type"] == "AdapterUpdated"]
    assert len(updated) >= 3 and seen == events
    assert learner.snapshot()["adapter_version"] == len(updated)
    assert math.isfinite(learner.snapshot()["last_update_loss"])
    # adapter weights moved (B starts at zero, so any step changes it)
    adapter1 = learner.adapter_state()
    assert any(not torch.equal(adapter0[k], adapter1[k]) for k in adapter0)
    # every base weight and buffer bit-identical, and the same tensors as before wrapping
    for name, t in lora.base_params(learner.peft_model).items():
        assert torch.equal(t, base0[name]), name
    wrapped = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
               for n, p in learner.peft_model.named_parameters() if "lora_" not in n}
    assert set(wrapped) == set(before)
    for name, p in wrapped.items():
        assert torch.equal(p, before[name]), name
    # and the live model (the object the runtime holds) now answers differently
    with learner.peft_model.disable_adapter():
        base_out = logits(model)
    assert not torch.equal(logits(model), base_out)


def test_zero_initialised_adapter_gives_exactly_the_base_logits(model):
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(1))
    base = logits(model, ids)
    learner = OnlineLearner(model, LearnerConfig())
    assert learner.params  # adapters are there
    assert torch.equal(logits(model, ids), base)
    assert torch.equal(logits(learner.peft_model, ids), base)


def test_merged_and_unmerged_give_the_same_logits(model, chat_ids):
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=2e-2))
    chat(learner, chat_ids, rounds=2)
    base0 = clone_base(learner)
    merged = lora.merged_copy(learner.peft_model)
    assert not lora.is_attached(merged)
    assert torch.allclose(logits(merged), logits(model), atol=1e-5, rtol=1e-5)
    with learner.peft_model.disable_adapter():
        assert not torch.allclose(logits(merged), logits(model), atol=1e-5)
    for name, t in lora.base_params(learner.peft_model).items():  # the live model was not merged
        assert torch.equal(t, base0[name]), name


def test_a_revert_restores_the_previous_adapter_and_optimizer_exactly(model, chat_ids, heldout_ids):
    guard = Guard(heldout_ids, tolerance=10.0)
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=1e-2), guard=guard)
    chat(learner, chat_ids, rounds=1)
    assert learner.counters.updates >= 1
    adapter = learner.adapter_state()
    optim = {k: {n: v.clone() if torch.is_tensor(v) else v for n, v in s.items()}
             for k, s in learner.optimizer.state_dict()["state"].items()}
    version = learner.snapshot()["adapter_version"]
    # a wild step on noise: the held-out probes get worse, beyond a zero tolerance
    guard.tolerance = 0.0
    for g in learner.optimizer.param_groups:
        g["lr"] = 1.0
    noise = torch.randint(0, 256, (4, 48), generator=torch.Generator().manual_seed(3)).tolist()
    seen = []
    learner.on_event = seen.append
    event = learner.update([noise, noise])
    assert event["type"] == "AdapterReverted" and seen == [event]
    assert event["probe_after"]["total"] > event["probe_before"]["total"]
    now = learner.adapter_state()
    assert now.keys() == adapter.keys()
    for k in adapter:
        assert torch.equal(now[k], adapter[k]), k
    state = learner.optimizer.state_dict()["state"]
    for k, s in optim.items():
        for n, v in s.items():
            assert torch.equal(torch.as_tensor(state[k][n]), torch.as_tensor(v)), (k, n)
    snap = learner.snapshot()
    assert snap["reverts"] == 1 and snap["adapter_version"] == version


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_an_update_with_a_non_finite_loss_is_refused_and_reported(model, chat_ids, bad):
    seen = []
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=1e-2), on_event=seen.append)
    chat(learner, chat_ids, rounds=1)
    adapter = learner.adapter_state()
    version = learner.snapshot()["adapter_version"]
    head = lora.unwrap(learner.peft_model).head
    hook = head.register_forward_hook(lambda mod, inp, out: out * bad)
    try:
        event = learner.update([chat_ids])
    finally:
        hook.remove()
    assert event["type"] == "AdapterRefused" and seen[-1] == event
    assert event["loss"] is None and event["reason"].startswith("loss is")
    for k, v in learner.adapter_state().items():
        assert torch.equal(v, adapter[k]), k
    snap = learner.snapshot()
    assert snap["refused"] == 1 and snap["adapter_version"] == version


def test_consolidation_lowers_the_loss_on_its_replays(model):
    fact = "\x17the door code is 4417\n"
    learner = OnlineLearner(model, LearnerConfig(window=64, lr=2e-2))
    before = float(learner_loss(learner, fact))
    events = learner.consolidate([fact] * 4, passes=6)
    assert [e["type"] for e in events] == ["AdapterUpdated"] * 6
    assert float(learner_loss(learner, fact)) < before
    # the same replay is kept once, with its rehearsal as a question and answer
    assert learner.snapshot()["buffered_replays"] == 2
    learner.consolidate([fact, "\x17the gate code is 77\n"], passes=0)
    assert learner.snapshot()["buffered_replays"] == 4


def learner_loss(learner, text):
    from engine.learn.guard import sequence_loss
    with torch.no_grad():
        return sequence_loss(learner.peft_model, list(text.encode()))


def test_observe_rejects_non_bytes_and_bad_targets_fail_clearly(model):
    learner = OnlineLearner(model, LearnerConfig())
    with pytest.raises(ValueError, match="byte ids"):
        learner.observe([300])
    with pytest.raises(lora.AdapterError, match="no linear layer matches"):
        lora.resolve_targets(model, ("no_such_layer",))


def test_step_and_forward_agree_with_trained_adapters(model, chat_ids):
    """LoRA sits on linear layers only: the integer slot pass and step/forward parity survive it."""
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=2e-2))
    chat(learner, chat_ids, rounds=2)
    ids = torch.tensor([chat_ids[0] + chat_ids[3]])
    with torch.no_grad():
        full = model(ids).logits[0]
        state = model.init_state(1)
        stepped = torch.stack([model.step(ids[:, t], state).logits[0] for t in range(ids.shape[1])])
    assert torch.allclose(stepped, full, atol=1e-4, rtol=1e-4)
    with learner.peft_model.disable_adapter(), torch.no_grad():
        assert not torch.allclose(model(ids).logits[0], full, atol=1e-4)


def test_guard_keeps_a_forgetting_budget_from_its_first_score():
    from engine.learn.guard import ProbeScore

    guard = Guard([[1, 2, 3]], tolerance=0.05)
    guard.reference = 2.0
    before = ProbeScore(total=2.0, heldout=2.08, facts=None)
    assert guard.accepts(before, ProbeScore(total=2.09, heldout=2.09, facts=None))
    # each step within 5% of the one before, but past 5% of the reference: refused
    assert not guard.accepts(before, ProbeScore(total=2.11, heldout=2.11, facts=None))
    # facts may improve the total while the held-out part drifts: still refused
    assert not guard.accepts(ProbeScore(3.0, 2.0, 4.0), ProbeScore(2.5, 2.2, 2.8))
    assert not guard.accepts(before, ProbeScore(total=float("nan"), heldout=None, facts=None))


def test_anchor_kl_is_zero_for_a_new_adapter_and_grows_with_training(model, chat_ids, heldout_ids):
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=2e-2), anchors=heldout_ids)
    with torch.no_grad():
        assert float(learner._anchor_kl(heldout_ids)) == 0.0
    chat(learner, chat_ids, rounds=2)
    with torch.no_grad():
        assert float(learner._anchor_kl(heldout_ids)) > 0.0


def test_the_adapters_start_from_the_learners_seed_whatever_the_global_generator_did():
    from engine.vm import ModelConfig, MosaicLM

    def small_model():
        return MosaicLM(ModelConfig.preset("tiny")).eval()

    inits = []
    for noise in (0, 5):
        model = small_model()
        torch.manual_seed(1234)
        torch.rand(noise)  # the global generator in another place
        learner = OnlineLearner(model, LearnerConfig(seed=3))
        inits.append([p.detach().clone() for p in learner.params])
        after = torch.rand(1)
        torch.manual_seed(1234)
        torch.rand(noise)
        assert torch.equal(after, torch.rand(1))  # and the global generator is left as it was
    assert all(torch.equal(a, b) for a, b in zip(*inits))
    other = OnlineLearner(small_model(), LearnerConfig(seed=4))
    assert not all(torch.equal(a, b.detach()) for a, b in zip(inits[0], other.params))
