"""Greedy generation reads its prompts in parallel passes, a shared prefix once: the same
continuations and states as stepping every prompt byte by byte (the reference)."""
import pytest
import torch

from engine.eval.common import greedy_generate, greedy_steps, prefill
from engine.vm import VMState
from vm_helpers import assert_same_state, make_model


def _prompts(seed: int) -> list[bytes]:
    g = torch.Generator().manual_seed(seed)
    a = bytes(torch.randint(0, 256, (301,), generator=g).tolist())
    b = bytes(torch.randint(0, 256, (67,), generator=g).tolist())
    # nested prefixes of two streams, a repeated prompt, one byte, one prompt of its own
    return [a[:17], b[:1], a[:301], a[:101], b, a[:101], a[:18], bytes([7, 9, 11])]


@pytest.mark.parametrize("seed", [0, 1])
def test_prefilled_generation_matches_stepping(seed):
    model = make_model(seed)
    prompts = _prompts(seed)
    stop = int(torch.randint(0, 256, (1,), generator=torch.Generator().manual_seed(seed + 9)))
    fast = greedy_generate(model, "mosaic", prompts, max_new=23, stop=stop)
    assert fast == greedy_steps(model, prompts, max_new=23, stop=stop)
    assert all(len(o) <= 23 and stop not in o for o in fast)


def test_prefill_leaves_each_prompt_in_the_state_stepping_leaves():
    model = make_model(3)
    prompts = _prompts(3)
    state, last = prefill(model, prompts)
    assert state.batch_size == len(prompts) and last.shape == (len(prompts), 256)
    for i, p in enumerate(prompts):
        ref = model.init_state(1)
        for byte in p:
            logits = model.step(torch.tensor([byte]), ref).logits
        one = VMState(state.config, [type(layer)(**{k: v[i:i + 1] for k, v in layer.tensors().items()})
                                     for layer in state.layers], state.position[i:i + 1])
        assert_same_state(one, ref, atol=1e-4)
        assert torch.allclose(last[i], logits[0], atol=1e-4)


def test_cat_keeps_order_and_refuses_mixed_configs():
    model = make_model(4)
    a, b = model.init_state(2), model.init_state(1)
    model.step(torch.tensor([1, 2]), a)
    both = VMState.cat([a, b])
    assert both.batch_size == 3 and both.position.tolist() == [1, 1, 0]
    assert torch.equal(both.layers[0].registers[:2], a.layers[0].registers)
    other = make_model(4, ways=3).init_state(1)
    with pytest.raises(ValueError, match="different configs"):
        VMState.cat([b, other])
    with pytest.raises(ValueError, match="at least one byte"):
        prefill(model, [b"ab", b""])
