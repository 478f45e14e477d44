"""Dropping a layer's memory (engine.vm.convert, scripts/drop_memory.py): where that memory adds
nothing the copy computes the same logits, opcodes and remaining state, bit for bit; where it
adds something the check says so; states saved before the drop load into the copy."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.vm import ConfigError, StateError, VMState
from engine.vm.checkpoint import load_model, save_model
from engine.vm.convert import drop_memory, memory_contribution
from vm_helpers import assert_same_state, busy_teacher, make_model, step_through

ROOT = Path(__file__).resolve().parents[2]


def _silent_layer0(seed: int, **changes):
    """A model with memory in all 3 layers whose layer-0 memory reads reach the residual stream
    through a zero readout: dropping that memory must change nothing."""
    model = make_model(seed, n_layers=3, **changes)
    with torch.no_grad():
        model.blocks[0].memory.out.weight.zero_()
    return model


def _teacher(model, B, T, seed):
    # mostly WRITE, so layer 0's table fills (the state to load has something to leave out)
    return busy_teacher(B, T, model.config, seed, free=0.5)


@pytest.mark.parametrize("B,T", [(1, 1), (2, 37), (3, 61)])
def test_a_silent_memory_dropped_changes_nothing(B, T):
    model = _silent_layer0(1)
    new = drop_memory(model, [0])
    assert new.config.memory_layers == (1, 2) and new.blocks[0].memory is None
    cfg = model.config
    dropped = 2 * cfg.key_dim + cfg.value_dim
    assert new.blocks[0].proj.out_features == model.blocks[0].proj.out_features - dropped
    assert sum(p.numel() for p in new.parameters()) < sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(T))
    with torch.no_grad():
        a, b = model(ids), new(ids)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.aux["opcodes"], b.aux["opcodes"])
    for la, lb in zip(a.state.layers[1:], b.state.layers[1:]):
        assert torch.equal(la.mem_values, lb.mem_values) and torch.equal(la.mem_valid, lb.mem_valid)
    assert torch.equal(a.state.layers[0].registers, b.state.layers[0].registers)
    assert b.state.layers[0].mem_keys.shape[1] == 0
    # stepping agrees too, and with the whole-stream forward
    sa, sb = model.init_state(B), new.init_state(B)
    la, _, _ = step_through(model, ids, sa)
    lb, _, _ = step_through(new, ids, sb)
    assert torch.equal(la, lb)
    assert (lb - b.logits).abs().max() <= 1e-4
    assert memory_contribution(model, ids, [0])["max_logit_diff"] == 0.0
    assert memory_contribution(model, ids, [0], new)["max_logit_diff"] == 0.0


def test_a_memory_that_reads_something_is_reported():
    model = make_model(2, n_layers=3)
    ids = torch.randint(0, 256, (2, 80), generator=torch.Generator().manual_seed(0))
    got = memory_contribution(model, ids, [0])
    assert got["reads"] > 0 and got["max_logit_diff"] > 0 and 0 < got["changed_positions"] <= 1
    assert got["positions"] == 160 and model.blocks[0].memory is not None  # the model is untouched


def test_only_layers_with_memory_can_be_dropped_and_some_must_stay():
    model = make_model(3, n_layers=3, memory_layers=(0, 2))
    with pytest.raises(ConfigError, match="layer 1 has no memory"):
        drop_memory(model, [1])
    with pytest.raises(ConfigError, match="no memory"):
        drop_memory(model, [0, 2])
    assert drop_memory(model, [0]).config.memory_layers == (2,)


def test_a_state_saved_before_the_drop_loads_into_the_copy(tmp_path):
    model = _silent_layer0(4)
    B, T = 2, 50
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(4))
    state = model(ids, teacher=_teacher(model, B, T, 4)).state
    assert state.layers[0].mem_valid.any() and state.layers[1].mem_valid.any()
    state.save(tmp_path / "s.safetensors")
    new = drop_memory(model, [0])
    back = VMState.load(tmp_path / "s.safetensors", new.config)
    assert back.nbytes() < state.nbytes() and back.layers[0].mem_keys.shape[1] == 0
    expect = new.init_state(B)
    for i, layer in enumerate(state.layers):
        for name, t in layer.tensors().items():
            if i == 0 and name.startswith("mem_"):
                continue
            getattr(expect.layers[i], name).copy_(t)
    expect.position.copy_(state.position)
    assert_same_state(back, expect, atol=0.0)
    # and the copy steps on from it exactly as the original does from the full state
    nxt = torch.tensor([7, 9])
    assert torch.equal(model.step(nxt, state).logits, new.step(nxt, back).logits)


def test_a_state_with_less_memory_or_another_shape_is_still_refused(tmp_path):
    model = _silent_layer0(5)
    new = drop_memory(model, [0])
    new.init_state(1).save(tmp_path / "fewer.safetensors")
    with pytest.raises(StateError, match="another model config"):
        VMState.load(tmp_path / "fewer.safetensors", model.config)
    wider = _silent_layer0(5, ways=3)
    wider.init_state(1).save(tmp_path / "wider.safetensors")
    with pytest.raises(StateError, match="another model config"):
        VMState.load(tmp_path / "wider.safetensors", new.config)


def _script(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "drop_memory.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_the_script_writes_a_copy_only_where_nothing_changes(tmp_path):
    silent, busy = _silent_layer0(6), make_model(6, n_layers=3)
    save_model(silent, tmp_path / "silent.safetensors", {"card": "kept"})
    save_model(busy, tmp_path / "busy.safetensors")
    args = ["--layers", "0", "--check", "2", "--length", "256"]
    r = _script(tmp_path / "busy.safetensors", tmp_path / "out.safetensors", *args)
    assert r.returncode == 1 and "changes the logits" in r.stderr and not (tmp_path / "out.safetensors").exists()
    assert '"max_logit_diff": 0.0' not in r.stdout
    r = _script(tmp_path / "busy.safetensors", tmp_path / "out.safetensors", *args, "--force")
    assert r.returncode == 0 and load_model(tmp_path / "out.safetensors").config.memory_layers == (1, 2)
    r = _script(tmp_path / "silent.safetensors", tmp_path / "quiet.safetensors", *args)
    assert r.returncode == 0, r.stderr
    assert '"max_logit_diff": 0.0' in r.stdout and "state per sequence" in r.stdout
    from engine.vm.checkpoint import read_metadata
    assert read_metadata(tmp_path / "quiet.safetensors")["card"] == "kept"
    r = _script(tmp_path / "silent.safetensors", tmp_path / "x.safetensors", "--layers", "5")
    assert r.returncode == 1 and r.stderr.startswith("error: memory_layers: layer 5")
    r = _script(tmp_path / "missing.safetensors", tmp_path / "x.safetensors", "--layers", "0")
    assert r.returncode == 1 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
