"""``mosaic adapters ...`` and ``mosaic eval consolidation`` through the command line."""
from __future__ import annotations

import json

import torch
import typer
from typer.testing import CliRunner

from engine.learn import store
from engine.learn.online import LearnerConfig, OnlineLearner
from mosaic_cli.adapters_cmd import add_consolidation_command
from mosaic_cli.app import app

runner = CliRunner()


def saved_session(model, chat_ids, name="chat1", versions=2):
    learner = OnlineLearner(model, LearnerConfig(update_every=32, window=32, lr=2e-2))
    for _ in range(versions):
        for ids in chat_ids:
            learner.observe(ids)
            learner.maybe_update()
        learner.save(name)
    return learner


def run(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_list_show_reset(model, chat_ids):
    learner = saved_session(model, chat_ids)
    versions = store.list_versions("chat1")
    assert len(versions) == 2
    code, out = run("adapters", "list", "--json")
    assert code == 0
    assert json.loads(out) == {"sessions": [{"session": "chat1", "versions": versions, "current": versions[-1]}]}
    code, out = run("adapters", "list")
    assert code == 0 and f"v{versions[-1]}*" in out
    code, out = run("adapters", "show", "--session", "chat1", "--json")
    info = json.loads(out)
    assert code == 0 and info["version"] == versions[-1] and info["current"]
    assert info["meta"]["updates"] == learner.counters.updates and info["rank"] == 8
    assert any(t.endswith("mlp_in") for t in info["targets"])
    code, out = run("adapters", "show", "--session", "chat1", "--version", str(versions[0]))
    assert code == 0 and f"v{versions[0]}" in out
    # reset asks for --yes, and keeps everything without it
    code, out = run("adapters", "reset", "--session", "chat1")
    assert code != 0 and "--yes" in out and store.list_versions("chat1") == versions
    code, out = run("adapters", "reset", "--session", "chat1", "--yes", "--json")
    assert code == 0 and json.loads(out) == {"session": "chat1", "removed": 2}
    assert store.list_versions("chat1") == []


def test_bad_input_gives_one_clear_line():
    code, out = run("adapters", "show", "--session", "nobody")
    assert code == 1 and out.strip() == "error: session 'nobody' has no saved adapters"
    code, out = run("adapters", "show", "--session", "../x")
    assert code == 1 and out.startswith("error: bad session name")
    code, out = run("adapters", "merge", "--session", "nobody")
    assert code == 1 and "no saved adapters" in out


def test_merge_writes_a_checkpoint_with_the_adapted_logits(model, chat_ids, tmp_path):
    from engine.vm.checkpoint import load_model, save_model

    base_path = tmp_path / "base.safetensors"
    save_model(model, base_path)
    learner = saved_session(model, chat_ids, versions=1)
    ids = torch.tensor([chat_ids[3]])
    with torch.no_grad():
        adapted = model(ids).logits
    out = tmp_path / "merged.safetensors"
    code, text = run("adapters", "merge", "--session", "chat1", "--model", str(base_path),
                     "--out", str(out), "--json")
    assert code == 0, text
    assert json.loads(text)["checkpoint"] == str(out)
    merged = load_model(out).eval()
    with torch.no_grad():
        got = merged(ids).logits
    assert torch.allclose(got, adapted, atol=1e-5, rtol=1e-5)
    code, text = run("adapters", "merge", "--session", "chat1", "--model", str(base_path), "--out", str(out))
    assert code == 1 and "--force" in text
    assert learner.counters.updates >= 1


def test_eval_consolidation_json_and_plot(model, tmp_path):
    from engine.vm.checkpoint import save_model

    path = tmp_path / "m.safetensors"
    save_model(model, path)
    eval_app = typer.Typer()
    add_consolidation_command(eval_app)
    eval_app.command("noop")(lambda: None)  # a group, as eval_cmd.py makes it
    png = tmp_path / "c.png"
    result = runner.invoke(eval_app, ["consolidation", "--model", str(path), "--facts", "2,3",
                                      "--passes", "2", "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert 0.0 <= data["recall_after_wipe"] <= 1.0
    assert isinstance(data["heldout_loss_delta"], float)
    assert [r["facts"] for r in data["runs"]] == [2, 3]
    assert [len(r["curve"]) for r in data["runs"]] == [2, 2]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["settings"]["rehearse"] is True   # as the runtime learns
    plain = runner.invoke(eval_app, ["consolidation", "--model", str(path), "--facts", "1",
                                     "--passes", "0", "--no-rehearse", "--json"])
    assert plain.exit_code == 0 and json.loads(plain.output)["settings"]["rehearse"] is False
    table = runner.invoke(eval_app, ["consolidation", "--model", str(path), "--facts", "1", "--passes", "0"])
    assert table.exit_code == 0 and "stored facts' cues found" in table.output, table.output
    bad = runner.invoke(eval_app, ["consolidation", "--facts", "x"])
    assert bad.exit_code == 1 and "--facts" in bad.output
