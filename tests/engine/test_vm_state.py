"""The VM state as one object: fork, reset, save/load (new process), bad files refused, fixed size."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.vm import ModelConfig, MosaicLM, StateError, VMState
from engine.vm.checkpoint import load_model, save_model
from vm_helpers import assert_same_state, busy_teacher, make_model

ROOT = Path(__file__).resolve().parents[2]


def _busy_state(model, B=2, T=40, seed=0):
    ids = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(seed))
    return model(ids, teacher=busy_teacher(B, T, model.config, seed)).state


def test_fork_is_independent_and_reset_empties_in_place():
    model = make_model(0)
    state = _busy_state(model)
    fork = state.fork()
    assert_same_state(fork, state, atol=0.0)
    model.step(torch.tensor([1, 2]), fork)
    assert not torch.equal(fork.layers[0].registers, state.layers[0].registers)
    assert (fork.position == state.position + 1).all()
    addr = fork.layers[0].mem_keys.data_ptr()
    fork.reset()
    assert fork.layers[0].mem_keys.data_ptr() == addr
    assert_same_state(fork, model.init_state(2), atol=0.0)
    assert state.layers[0].mem_valid.any()  # the original is untouched


SCRIPT = r"""
import sys, torch
torch.set_num_threads(int(sys.argv[5]))  # same threads as the parent: bitwise-identical matmuls
from engine.vm import VMState
from engine.vm.checkpoint import load_model
model = load_model(sys.argv[1])
state = VMState.load(sys.argv[2], model.config)
ids = torch.tensor([[int(c) for c in row.split(",")] for row in sys.argv[3].split(";")])
out = [model.step(ids[:, t], state).logits for t in range(ids.shape[1])]
torch.save(torch.stack(out, 1), sys.argv[4])
"""


def test_state_round_trip_in_a_new_process_continues_identically(tmp_path):
    model = make_model(1)
    state = _busy_state(model, seed=1)
    save_model(model, tmp_path / "m.safetensors")
    state.save(tmp_path / "s.safetensors")
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(2))
    here = state.fork()
    expected = torch.stack([model.step(ids[:, t], here).logits for t in range(12)], 1)
    arg = ";".join(",".join(str(int(v)) for v in row) for row in ids)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "m.safetensors"), str(tmp_path / "s.safetensors"),
                    arg, str(tmp_path / "out.pt"), str(torch.get_num_threads())], check=True, env=env, cwd=ROOT, timeout=120)
    got = torch.load(tmp_path / "out.pt")
    assert torch.equal(got, expected)
    assert_same_state(VMState.load(tmp_path / "s.safetensors", model.config), state, atol=0.0)


def test_truncated_or_corrupt_state_is_refused_clearly(tmp_path):
    model = make_model(2)
    state = _busy_state(model, seed=2)
    good = tmp_path / "good.safetensors"
    state.save(good)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(StateError, match="truncated or corrupt"):
        VMState.load(trunc, model.config)
    corrupt = tmp_path / "corrupt.safetensors"
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF  # inside the tensor data: only the checksum notices
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(StateError, match="corrupt"):
        VMState.load(corrupt, model.config)
    with pytest.raises(StateError, match="does not exist"):
        VMState.load(tmp_path / "missing.safetensors", model.config)
    assert good.read_bytes() == data
    assert_same_state(VMState.load(good, model.config), state, atol=0.0)


def test_a_failed_save_leaves_the_previous_good_file_intact(tmp_path, monkeypatch):
    model = make_model(3)
    state = _busy_state(model, seed=3)
    path = tmp_path / "s.safetensors"
    state.save(path)
    before = path.read_bytes()
    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    model.step(torch.tensor([3, 4]), state)
    with pytest.raises(OSError, match="disk full"):
        state.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]  # no temp file left behind


def test_state_of_another_config_is_refused(tmp_path):
    model = make_model(4)
    path = tmp_path / "s.safetensors"
    model.init_state(1).save(path)
    other = model.config.replace(buckets=8)
    with pytest.raises(StateError, match="another model config"):
        VMState.load(path, other)


def test_state_loads_under_other_read_settings_only(tmp_path):
    model = make_model(4)
    cfg = model.config.replace(read_temperature=0.1, clear_confidence=0.8)
    path = tmp_path / "s.safetensors"
    state = _busy_state(MosaicLM(cfg), B=1)
    state.save(path)
    # how the state is read and cleared may change; what it holds and how its keys are kept may not
    for same in (cfg.replace(probes=1), cfg.replace(match_threshold=0.95), cfg.replace(clear_confidence=0.0),
                 cfg.replace(read_temperature=0.2, probes=3, match_threshold=0.5)):
        assert same.fingerprint() != cfg.fingerprint()
        assert_same_state(VMState.load(path, same), state, atol=0.0)
    for other in (cfg.replace(read_temperature=None), cfg.replace(ways=cfg.ways + 1),
                  cfg.replace(key_dim=cfg.key_dim * 2)):
        with pytest.raises(StateError, match="another model config"):
            VMState.load(path, other)


def test_state_with_an_unreadable_saved_config_needs_the_same_fingerprint(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    model = make_model(4)
    path = tmp_path / "s.safetensors"
    model.init_state(1).save(path)
    with safe_open(str(path), framework="pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    for bad in ("{not json", json.dumps({"ways": "many"}), json.dumps([1])):
        save_file(tensors, str(path), metadata=dict(meta, config=bad, fingerprint="0" * 16))
        with pytest.raises(StateError, match="another model config"):
            VMState.load(path, model.config.replace(probes=1))
    save_file(tensors, str(path), metadata=dict(meta, config="{not json"))
    assert VMState.load(path, model.config).position.shape == (1,)  # its own fingerprint still opens it


def test_model_checkpoint_round_trip(tmp_path):
    model = make_model(5)
    save_model(model, tmp_path / "m.safetensors")
    again = load_model(tmp_path / "m.safetensors")
    assert again.config == model.config
    ids = torch.randint(0, 256, (1, 9))
    assert torch.equal(again(ids).logits, model(ids).logits)


def test_forward_made_state_is_contiguous_like_a_fresh_one():
    """Same layouts as init_state: stepping it then matches bitwise whether it was saved or not."""
    model = make_model(6)
    state = _busy_state(model, seed=6)
    fresh = model.init_state(2)
    for (k, t), f in zip(state.named_tensors().items(), fresh.named_tensors().values()):
        assert t.is_contiguous() and t.stride() == f.stride(), k


def test_round_trip_with_memory_in_some_layers_only(tmp_path):
    model = make_model(7, preset="tiny", n_layers=3, memory_layers=(2,))
    state = _busy_state(model, seed=7)
    assert state.layers[0].mem_keys.shape[1] == 0 and state.layers[2].mem_valid.any()
    state.save(tmp_path / "s.safetensors")
    back = VMState.load(tmp_path / "s.safetensors", model.config)
    assert_same_state(back, state, atol=0.0)
    full = MosaicLM(model.config.replace(memory_layers=None)).init_state(2).nbytes()
    assert back.nbytes() == state.nbytes() < full
