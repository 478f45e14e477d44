"""Adapters on disk: versions, the current pointer, reload in a new process, the replay log."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from engine.learn import store
from engine.learn.online import LearnerConfig, OnlineLearner
from engine.learn.replay_log import ReplayLog, log_path, read_replay_log, replay_examples



def trained(model, chat_ids, rounds=2):
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=2e-2))
    for _ in range(rounds):
        for ids in chat_ids:
            learner.observe(ids)
            learner.maybe_update()
    assert learner.counters.updates >= 2
    return learner


def test_save_writes_peft_format_versions_and_an_atomic_current_pointer(model, chat_ids):
    learner = trained(model, chat_ids)
    v = learner.snapshot()["adapter_version"]
    folder = learner.save("s1")
    assert folder.name == f"v{v}"
    assert {"adapter_model.safetensors", "adapter_config.json", store.META_FILE} <= {p.name for p in folder.iterdir()}
    assert store.current_version("s1") == v and store.list_versions("s1") == [v]
    # no temporaries left behind, and the saved file holds only LoRA tensors
    assert not [p for p in store.adapters_dir("s1").iterdir() if p.name.startswith(".")]
    from safetensors.torch import load_file
    assert all("lora_" in k for k in load_file(folder / "adapter_model.safetensors"))
    info = store.read_meta("s1")
    assert info["current"] and info["meta"]["updates"] == learner.counters.updates
    # more learning, a second version; the first stays as it was
    first = (folder / "adapter_model.safetensors").read_bytes()
    learner.consolidate(["\x17the door code is 4417\n"], passes=1)
    second = learner.save("s1")
    assert second != folder and store.current_version("s1") == learner.snapshot()["adapter_version"]
    assert (folder / "adapter_model.safetensors").read_bytes() == first
    assert store.reset("s1") == 2 and store.list_versions("s1") == [] and store.current_version("s1") is None


def test_save_and_reload_in_a_new_process_gives_the_same_logits(model, chat_ids, tmp_path):
    learner = trained(model, chat_ids)
    torch.save(learner.peft_model.get_base_model().state_dict(), tmp_path / "full.pt")
    learner.save("s2")
    ids = torch.tensor([list(b"\x11what is the door code?\n\x12the door code is ")])
    with torch.no_grad():
        expected = model(ids).logits
    torch.save(ids, tmp_path / "ids.pt")
    # the child builds the base model, loads the stored adapter and writes its logits
    script = textwrap.dedent(f"""
        import torch
        from engine.learn.online import OnlineLearner, LearnerConfig
        from engine.vm import ModelConfig, MosaicLM
        torch.manual_seed(99)  # other random weights: the base comes from the file
        model = MosaicLM(ModelConfig.preset("tiny")).eval()
        full = torch.load({str(tmp_path / 'full.pt')!r})
        base = {{k.replace('.base_layer', ''): v for k, v in full.items() if 'lora_' not in k}}
        model.load_state_dict(base)
        learner = OnlineLearner.from_store(model, 's2', LearnerConfig())
        assert learner.params, 'reloaded adapter must be trainable'
        with torch.no_grad():
            out = model(torch.load({str(tmp_path / 'ids.pt')!r})).logits
        torch.save({{'logits': out, 'version': learner.snapshot()['adapter_version']}}, {str(tmp_path / 'out.pt')!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    got = torch.load(tmp_path / "out.pt")
    assert got["version"] == learner.snapshot()["adapter_version"]
    assert torch.equal(got["logits"], expected)


def test_store_errors_are_clear():
    with pytest.raises(store.AdapterStoreError, match="bad session name"):
        store.adapters_dir("../etc")
    with pytest.raises(store.AdapterStoreError, match="no saved adapters"):
        store.version_dir("nobody")


def test_replay_log_round_trip_skips_a_torn_line(model):
    log = ReplayLog("s3")
    learner = OnlineLearner(model, LearnerConfig(window=16), replay_log=log)
    learner.observe(b"\x11remember that the door code is 4417\n")  # 38 bytes -> 2 windows
    learner.add_replays(["\x17the door code is 4417\n"])
    with open(log_path("s3"), "a") as fh:
        fh.write('{"kind": "window", "ids": [1, 2')  # a crash mid-append
    seqs = read_replay_log("s3")
    assert seqs[:2] == [list(b"\x11remember that t"), list(b"he door code is ")]
    assert seqs[2] == list(b"\x17the door code i")  # replays are cut into windows too
    assert bytes(sum(seqs[4:], [])) == b"\x11what is the door code?\n\x12the door code is 4417.\n"  # rehearsal
    assert len(seqs) == 7
    ex = replay_examples("s3", max_len=8)
    assert all(len(e["ids"]) <= 8 and e["opcode"] == [-1] * len(e["ids"]) for e in ex)
    assert sum(len(e["ids"]) for e in ex) == sum(len(s) for s in seqs)
    assert read_replay_log("empty") == []
    assert json.loads(log_path("s3").read_text().splitlines()[0])["kind"] == "window"


def test_replay_log_as_fixed_length_curriculum_examples():
    from engine.curriculum import collate
    from engine.learn.replay_log import replay_curriculum_examples

    log = ReplayLog("s4")
    log.append(list(b"\x11remember that the door code is 4417\n"))
    log.append(list(b"\x17the door code is 4417\n"), "replay")
    exs = replay_curriculum_examples("s4", 16)
    text = b"\x11remember that the door code is 4417\n\x17the door code is 4417\n"
    total = len(text)
    assert len(exs) == -(-total // 16) and all(len(e) == 16 for e in exs)
    joined = b"".join(bytes(e.ids.tolist()) for e in exs)
    assert joined[:total] == text and set(joined[total:]) <= {ord("\n")}
    assert float(sum(e.loss_weight.sum() for e in exs)) == total - len(exs)
    batch = collate(exs)
    assert batch["ids"].shape == (len(exs), 16) and (batch["opcode"] == -1).all()
    assert replay_curriculum_examples("nobody", 16) == []


def test_learner_for_session_resumes_the_saved_adapter_and_logs(model, chat_ids):
    from engine.learn.session import learner_for_session

    seen = []
    learner = learner_for_session(model, "s5", on_event=seen.append,
                                  config=LearnerConfig(update_every=32, window=32, lr=1e-2))
    assert learner.guard.heldout and learner.anchors
    for ids in chat_ids * 2:
        learner.observe(ids)
        learner.maybe_update()
    assert seen and {e["type"] for e in seen} <= {"AdapterUpdated", "AdapterReverted"}
    learner.save("s5")
    state = learner.adapter_state()
    assert read_replay_log("s5")  # windows were logged
    from engine.vm import ModelConfig, MosaicLM
    fresh = MosaicLM(ModelConfig.preset("tiny")).eval()
    fresh.load_state_dict({k.replace(".base_layer", "").replace("base_model.model.", ""): v
                           for k, v in learner.peft_model.state_dict().items() if "lora_" not in k})
    again = learner_for_session(fresh, "s5")
    assert again.snapshot()["adapter_version"] == learner.snapshot()["adapter_version"]
    for k, v in again.adapter_state().items():
        assert torch.equal(v, state[k]), k


def test_adapters_refuse_a_base_model_they_were_not_learned_on(model, chat_ids):
    from engine.learn.adapters import AdapterError, base_digest
    from engine.vm import ModelConfig, MosaicLM

    def small_model(seed):
        torch.manual_seed(seed)
        return MosaicLM(ModelConfig.preset("tiny")).eval()
    before = base_digest(model)
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32))
    assert base_digest(learner.peft_model) == before     # attaching adapters does not change the base
    learner.save("s6")
    assert store.read_meta("s6")["meta"]["base_fingerprint"] == before
    other = small_model(seed=1)                           # same shapes, other weights
    with pytest.raises(AdapterError, match="another base model"):
        OnlineLearner.from_store(other, "s6")
    OnlineLearner.from_store(small_model(seed=0), "s6")   # the same base: accepted
