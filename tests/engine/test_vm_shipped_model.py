"""The shipped default model: it loads, it is the `default` preset, and on a real conversation its
trained heads keep stepping, the CPU fast path and the parallel forward in exact agreement
(random-init parity tests cannot reach the saturated utilities and sharp opcodes of a trained model)."""
import torch

from engine.curriculum.episodes import recall_example
from engine.vm import ModelConfig
from engine.vm.checkpoint import default_model_path, load_model
from engine.vm.fastpath import CpuStep


def test_the_default_model_ships_and_is_the_default_preset():
    assert default_model_path().is_file()
    model = load_model(default_model_path())
    assert model.config == ModelConfig.preset("default")


def test_trained_model_step_fast_path_and_forward_agree_on_a_conversation():
    model = load_model(default_model_path()).eval()
    ex = recall_example(3, 4, 300, model.config.buckets)
    ids = torch.tensor([[int(i) for i in ex.ids]])
    with torch.no_grad():
        out = model(ids)
        state, fast_state = model.init_state(1), model.init_state(1)
        fast = CpuStep(model, fast_state)
        for t in range(ids.shape[1]):
            s = model.step(ids[:, t], state)
            f = fast.step(ids[:, t])
            for name, got in (("step", s), ("fast", f)):
                assert torch.equal(got.opcodes[0], out.aux["opcodes"][0, t]), (name, t)
                assert (got.logits - out.logits[:, t]).abs().max() <= 1e-4, (name, t)
    for i, (a, b, c) in enumerate(zip(state.layers, fast_state.layers, out.state.layers)):
        assert a.mem_values.numel() > 0 or not model.config.has_memory(i)
        if not model.config.has_memory(i):
            continue
        assert torch.equal(a.mem_valid, c.mem_valid) and torch.equal(b.mem_valid, c.mem_valid)
        assert torch.equal(a.mem_age, c.mem_age) and torch.equal(b.mem_age, c.mem_age)
        assert (a.mem_values - c.mem_values).abs().max() <= 1e-4
