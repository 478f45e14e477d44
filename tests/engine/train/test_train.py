"""The trainer's machinery on the tiny preset: the loss falls, runs are deterministic, a resumed
run equals an uninterrupted one, DDP runs on 2 gloo processes, the baseline trains too."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.train import checkpoint as ckpt
from engine.train.config import TrainConfigError, train_preset
from engine.train.loop import aux_weights, lr_at, teacher_p, train

REPO = Path(__file__).resolve().parents[3]


def _quiet(_msg):
    pass


def _params(folder):
    st = ckpt.load_training_state(folder)
    return st["model"]


def test_a_few_seconds_of_training_lower_the_loss(tmp_path):
    cfg = train_preset("tiny", steps=40, log_every=1, eval_every=0, seq_len=128)
    lines = []
    info = train(cfg, tmp_path / "run", device="cpu", log=lines.append, progress_bar=False)
    losses = [float(l.split("loss=")[1].split()[0]) for l in lines if l.startswith("step ")]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)
    # ce of the next byte alone falls too (not only the auxiliary terms)
    ces = [float(l.split("ce=")[1].split()[0]) for l in lines if l.startswith("step ")]
    assert sum(ces[-5:]) / 5 < sum(ces[:5]) / 5 - 0.3
    out = tmp_path / "run"
    for name in ("checkpoint.pt", "model.safetensors", "MODEL.md", "metrics.json"):
        assert (out / name).exists(), name
    card = (out / "MODEL.md").read_text()
    for word in ("command", "steps", "wall time", "hardware", "data"):
        assert word in card
    assert info["steps_done"] == 40 and info["tokens"] == 40 * cfg.batch_size * cfg.seq_len
    from engine.vm.checkpoint import load_model
    model = load_model(out / "model.safetensors")
    assert model.config.d_model == 32


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    cfg = train_preset("tiny", steps=4, eval_every=0, seq_len=64, batch_size=2)
    train(cfg, tmp_path / "a", device="cpu", log=_quiet, progress_bar=False)
    train(cfg, tmp_path / "b", device="cpu", log=_quiet, progress_bar=False)
    train(cfg.replace(seed=1), tmp_path / "c", device="cpu", log=_quiet, progress_bar=False)
    a, b, c = _params(tmp_path / "a"), _params(tmp_path / "b"), _params(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    cfg = train_preset("tiny", steps=6, eval_every=0, seq_len=64, batch_size=2)
    train(cfg, tmp_path / "full", device="cpu", log=_quiet, progress_bar=False)
    part = tmp_path / "part"
    _train_until(cfg, part, 3)  # interrupted after step 3 (checkpoint written at every step)
    assert ckpt.load_training_state(part)["step"] == 3
    info = train(cfg, part, device="cpu", resume=True, log=_quiet, progress_bar=False)
    assert info["steps_done"] == 6
    full, resumed = _params(tmp_path / "full"), _params(part)
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def _train_until(cfg, folder, stop):
    """Train ``cfg`` but stop after ``stop`` steps (as a crash or Ctrl-C after a checkpoint would)."""
    import engine.train.loop as loop
    real = loop.batch_stream

    def limited(*a, **kw):
        it = real(*a, **kw)
        for i, b in enumerate(it):
            if i >= stop:
                raise KeyboardInterrupt
            yield b
    loop.batch_stream = limited
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg.replace(checkpoint_every=1), folder, device="cpu", log=_quiet, progress_bar=False)
    finally:
        loop.batch_stream = real


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    cfg = train_preset("tiny", steps=1, eval_every=0, seq_len=64, batch_size=1)
    train(cfg, tmp_path / "r", device="cpu", log=_quiet, progress_bar=False)
    with pytest.raises(ckpt.CheckpointError, match="another model"):
        train(cfg.replace(arch="window"), tmp_path / "r", device="cpu", resume=True, log=_quiet, progress_bar=False)


def test_window_baseline_trains_with_the_same_command(tmp_path):
    cfg = train_preset("tiny", steps=15, arch="window", log_every=1, eval_every=0, seq_len=64)
    lines = []
    info = train(cfg, tmp_path / "w", device="cpu", log=lines.append, progress_bar=False)
    losses = [float(l.split("loss=")[1].split()[0]) for l in lines if l.startswith("step ")]
    assert losses[-1] < losses[0]
    model, arch, _ = ckpt.load_trained_model(tmp_path / "w")
    assert arch == "window" and model.config.window == 64
    from engine.vm import ModelConfig, MosaicLM
    mosaic = MosaicLM(ModelConfig.preset("tiny")).num_parameters()
    assert abs(model.num_parameters() - mosaic) / mosaic < 0.25  # equal size, give or take
    assert info["arch"] == "window"


def test_time_budget_stops_and_saves(tmp_path):
    cfg = train_preset("tiny", steps=10_000, eval_every=0, seq_len=64, batch_size=1, time_budget=1.0)
    info = train(cfg, tmp_path / "t", device="cpu", log=_quiet, progress_bar=False)
    assert info["stopped_by_time"] and 0 < info["steps_done"] < 10_000
    assert (tmp_path / "t" / "model.safetensors").exists()


def test_schedule_anneals_teacher_and_aux_weights():
    cfg = train_preset("tiny")
    assert teacher_p(cfg, 0.0) == 1.0 and teacher_p(cfg, 0.5) == 0.0 and teacher_p(cfg, 0.9) == 0.0
    w0, w1 = aux_weights(cfg, 0.0), aux_weights(cfg, 1.0)
    assert w1["opcode"] == pytest.approx(cfg.w_opcode * cfg.opcode_floor) and w0["opcode"] == cfg.w_opcode
    assert w1["infonce"] == pytest.approx(cfg.w_infonce * cfg.aux_floor) and w0["infonce"] == cfg.w_infonce
    assert teacher_p(cfg, cfg.teacher_hold) == 1.0 and 0 < teacher_p(cfg, 0.3) < 1
    assert w1["bucket"] == 0.0
    assert lr_at(cfg, 0, 0.0) < lr_at(cfg, cfg.warmup, 0.0)
    assert lr_at(cfg, 100, 1.0) == pytest.approx(cfg.lr * cfg.min_lr_ratio)


def test_bad_settings_are_refused_with_the_field_named():
    with pytest.raises(TrainConfigError, match="preset"):
        train_preset("huge")
    with pytest.raises(TrainConfigError, match="arch"):
        train_preset("tiny", arch="lstm")
    with pytest.raises(TrainConfigError, match="seq_len"):
        train_preset("tiny", seq_len=4)
    with pytest.raises(TrainConfigError, match="w_match"):
        train_preset("tiny", w_match=-0.5)
    with pytest.raises(TrainConfigError, match="tools_share"):
        train_preset("tiny", tools_share=1.0)


def test_ddp_on_two_gloo_cpu_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MOSAIC_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "engine.train", "--preset", "tiny", "--steps", "3", "--device", "cpu", "--seq-len", "64",
           "--batch-size", "2", "--eval-every", "0", "--out", str(tmp_path / "ddp"), "--json",
           "--time-budget", "600"]  # a budget makes the ranks agree on the clock every step
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["world_size"] == 2 and info["steps_done"] == 3
    assert info["tokens"] == 3 * 2 * 64 * 2
    # the same steps in one process see only rank 0's data: the averaged gradients differ
    single = train(train_preset("tiny", steps=3, seq_len=64, batch_size=2, eval_every=0, time_budget=600),
                   tmp_path / "one",
                   device="cpu", log=_quiet, progress_bar=False)
    assert single["world_size"] == 1
    a, b = _params(tmp_path / "ddp"), _params(tmp_path / "one")
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_run_into_the_same_folder_is_refused_unless_resumed(tmp_path):
    from engine.train.checkpoint import CheckpointError
    cfg = train_preset("tiny", steps=2, eval_every=0)
    train(cfg, tmp_path / "run", device="cpu", progress_bar=False)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a training run"):
        train(cfg, tmp_path / "run", device="cpu", progress_bar=False)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before


def test_train_from_session_mixes_its_replay_log_into_each_batch(tmp_path):
    from engine.learn.replay_log import ReplayLog, replay_curriculum_examples
    from engine.train.data import make_batch
    text = list(b"\x11remember that the green kite code is 90210\n\x12ok, noted.\n" * 12)
    ReplayLog("mine").append(text)
    extra = replay_curriculum_examples("mine", 64)
    plain = make_batch(5, 4, 64, 8, seed=0, rank=0)
    mixed = make_batch(5, 4, 64, 8, seed=0, rank=0, extra=extra, extra_share=0.25)
    assert torch.equal(mixed["ids"][:3], plain["ids"][:3])          # the curriculum rows are unchanged
    assert bytes(mixed["ids"][3].tolist()) in {bytes(e.ids.tolist()) for e in extra}
    cfg = train_preset("tiny", steps=2, seq_len=64, eval_every=0, from_session="mine")
    info = train(cfg, tmp_path / "run", device="cpu", progress_bar=False)
    assert info["steps_done"] == 2
    with pytest.raises(ValueError, match="no replay log"):
        train(cfg.replace(from_session="empty"), tmp_path / "run2", device="cpu", progress_bar=False)


def test_the_mix_of_the_config_shapes_the_training_batches(tmp_path, monkeypatch):
    from engine.curriculum.mix import Mix
    from engine.train import loop
    from engine.train.data import make_batch
    # a run trains on the batches of its config's mix: another mix, other bytes
    default, tools = make_batch(2, 4, 256, 8, seed=0, rank=0), make_batch(2, 4, 256, 8, 0, 0, mix=Mix(0.9))
    assert not torch.equal(default["ids"], tools["ids"])
    seen = []
    real = loop.batch_stream
    monkeypatch.setattr(loop, "batch_stream", lambda *a, **k: seen.append(k["mix"]) or real(*a, **k))
    cfg = train_preset("tiny", steps=1, seq_len=64, eval_every=0, tools_share=0.4, more_phrases=True,
                       tool_failures=0.2)
    train(cfg, tmp_path / "run", device="cpu", log=_quiet, progress_bar=False)
    assert seen == [Mix(tools=0.4, more_phrases=True, failures=0.2)]
    defaults = train_preset("default")                  # the config's defaults are the curriculum's
    assert Mix(defaults.tools_share, defaults.more_phrases, defaults.tool_failures) == Mix()


@pytest.mark.parametrize("arch", ["mosaic", "window"])
def test_init_starts_a_second_stage_from_trained_weights(tmp_path, arch):
    from engine.train.loop import build_model, init_weights
    cfg = train_preset("tiny", steps=3, arch=arch, eval_every=0, seq_len=64, batch_size=2)
    train(cfg, tmp_path / "one", device="cpu", log=_quiet, progress_bar=False)
    trained, _, _ = ckpt.load_trained_model(tmp_path / "one")
    fresh = build_model(cfg.replace(seed=5))[0]
    init_weights(fresh, arch, tmp_path / "one")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))
    # the second stage trains on from there (another seed: other data) into its own folder
    info = train(cfg.replace(seed=1, init_from=str(tmp_path / "one")), tmp_path / "two", device="cpu",
                 log=_quiet, progress_bar=False)
    assert info["steps_done"] == 3
    assert [s["seed"] for s in info["stages"]] == [0] and info["init_from"] == str(tmp_path / "one")
    assert "Training stages" in (tmp_path / "two" / "MODEL.md").read_text()
    two, _, _ = ckpt.load_trained_model(tmp_path / "two")
    assert not all(torch.equal(a, b) for a, b in zip(two.state_dict().values(), trained.state_dict().values()))
    other = "window" if arch == "mosaic" else "mosaic"
    with pytest.raises(ckpt.CheckpointError, match="cannot start"):
        init_weights(build_model(cfg.replace(arch=other))[0], other, tmp_path / "one")


def test_init_refuses_weights_of_another_shape(tmp_path):
    from engine.train.loop import build_model, init_weights
    cfg = train_preset("tiny", steps=1, eval_every=0, seq_len=64, batch_size=1)
    train(cfg, tmp_path / "one", device="cpu", log=_quiet, progress_bar=False)
    bigger = train_preset("default", steps=1)
    with pytest.raises(ckpt.CheckpointError, match="shapes differ"):
        init_weights(build_model(bigger)[0], "mosaic", tmp_path / "one")


def test_match_loss_pulls_an_updates_key_onto_the_old_one():
    from types import SimpleNamespace

    from engine.curriculum import collate, update_example
    from engine.train.losses import compute_losses
    exs = [update_example(seed, 4, 8) for seed in range(3)]
    n = min(len(e) for e in exs)
    batch = {k: torch.from_numpy(v) for k, v in collate([e.truncated(n) for e in exs]).items()}
    assert int(batch["super_mask"].sum()) == 3 * 2  # two of four facts updated per conversation
    B, T, L, dk = 3, n, 2, 16

    def losses(keys):
        aux = {"opcode_logits": torch.zeros(B, T, L, 10), "keys": keys, "queries": torch.zeros(B, T, L, dk),
               "router_write_logits": torch.zeros(B, T, L, 8), "router_read_logits": torch.zeros(B, T, L, 8)}
        out = SimpleNamespace(logits=torch.zeros(B, T, 256), aux=aux)
        return compute_losses(out, batch, {"match": 1.0}, [0, 1])

    torch.manual_seed(0)
    keys = torch.randn(B, T, L, dk, requires_grad=True)
    loss, parts = losses(keys)
    (loss - parts["lm"]).backward()
    touched = keys.grad.abs().sum((2, 3)) > 0                     # [B, T]
    writes = torch.zeros(B, T, dtype=torch.bool)
    writes.scatter_(1, batch["write_idx"], batch["write_mask"])
    assert touched.any() and not (touched & ~writes).any()          # only WRITE keys get a gradient
    # the new first-byte key set to the old one: cosine 1 and a smaller term
    aligned = keys.detach().clone()
    for b, j in batch["super_mask"].nonzero().tolist():
        new, old = batch["write_idx"][b, batch["super_col"][b, j]], batch["write_idx"][b, batch["super_target"][b, j]]
        aligned[b, new] = aligned[b, old] * 3.0                     # length does not matter, direction does
    _, best = losses(aligned)
    assert float(best["match_cos"]) == pytest.approx(1.0, abs=1e-5) and float(parts["match_cos"]) < 0.5
    assert float(best["match"]) < float(parts["match"])
    # no update in the batch: the term is absent, not zero-filled
    batch["super_mask"][:] = False
    assert "match" not in losses(keys.detach())[1]


def test_a_window_stage_continues_the_baseline_at_its_own_size(tmp_path):
    """The baseline a further stage starts from keeps its shape even where the preset's MOSAIC
    twin (which sizes a fresh baseline) has changed since."""
    from engine.train.loop import build_model
    cfg = train_preset("tiny", steps=1, arch="window", eval_every=0, seq_len=64, batch_size=1)
    train(cfg, tmp_path / "one", device="cpu", log=_quiet, progress_bar=False)
    trained, _, _ = ckpt.load_trained_model(tmp_path / "one")
    fresh = build_model(train_preset("default", arch="window", seq_len=96))[0]
    assert fresh.config.d_model != trained.config.d_model
    again = build_model(train_preset("default", arch="window", seq_len=96, init_from=str(tmp_path / "one")))[0]
    assert again.config == dataclasses.replace(trained.config, window=96)


def test_heldout_check_reports_impulses():
    """The held-out check reports MOSAIC's impulse answers as ``mosaic eval impulses`` scores them
    (the balanced share over 4 impulses of each kind); the window baseline has no opcodes."""
    from engine.eval.impulses import evaluate_impulses
    from engine.train.loop import build_model, heldout_check

    cfg = train_preset("tiny", seq_len=64, batch_size=2)
    model, _, _, n_buckets = build_model(cfg)
    h = heldout_check(model, cfg, n_buckets, torch.device("cpu"))
    assert set(h) == {"ce", "answer_byte_acc", "opcode_acc", "impulses"}
    assert h["impulses"] == round(evaluate_impulses(model, "mosaic", samples=4, n_buckets=n_buckets)["balanced"], 4)
    window, _, _, _ = build_model(cfg.replace(arch="window"))
    assert "impulses" not in heldout_check(window, cfg.replace(arch="window"), n_buckets, torch.device("cpu"))
