"""``mosaic train`` and ``mosaic eval`` from the command line (tiny preset, a few steps)."""
import json

import pytest
from typer.testing import CliRunner

from mosaic_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    res = runner.invoke(app, ["train", "--preset", "tiny", "--steps", "3", "--device", "cpu", "--out", str(out),
                              "--seed", "1", "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout.strip().splitlines()[-1])


def test_train_writes_model_checkpoint_and_card(trained):
    out, info = trained
    assert info["steps_done"] == 3 and info["arch"] == "mosaic" and info["seed"] == 1
    for name in ("model.safetensors", "checkpoint.pt", "MODEL.md", "metrics.json"):
        assert (out / name).exists()
    assert "mosaic train" in (out / "MODEL.md").read_text()
    cfg = json.loads((out / "metrics.json").read_text())["train_config"]
    assert cfg["w_match"] == 0.0                                      # off by default
    assert cfg["tools_share"] == 0.15 and cfg["more_phrases"] is False  # stage 9's mix by default


def test_train_match_weight_reaches_the_config(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--preset", "tiny", "--steps", "2", "--device", "cpu", "--out", str(out),
                              "--match-weight", "0.3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "metrics.json").read_text())["train_config"]["w_match"] == 0.3
    res = runner.invoke(app, ["train", "--preset", "tiny", "--out", str(tmp_path / "x"), "--match-weight", "-1"])
    assert res.exit_code == 2 and not (tmp_path / "x").exists()


def test_train_mix_reaches_the_config_the_card_and_the_data(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--preset", "tiny", "--steps", "2", "--device", "cpu", "--out", str(out),
                              "--tools-share", "0.3", "--more-phrases", "--tool-failures", "0.2", "--json"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "metrics.json").read_text())["train_config"]
    assert cfg["tools_share"] == 0.3 and cfg["more_phrases"] is True and cfg["tool_failures"] == 0.2
    card = (out / "MODEL.md").read_text()
    assert "30% of the conversations are about tools, whose requests also use" in card
    assert "20% of tool calls fail and the reply says so" in card
    for bad in (["--tools-share", "1.5"], ["--tool-failures", "-0.1"]):
        res = runner.invoke(app, ["train", "--preset", "tiny", "--out", str(tmp_path / "x"), *bad])
        assert res.exit_code == 2 and not (tmp_path / "x").exists()


def test_train_resume_continues_to_more_steps(trained, tmp_path):
    out, _ = trained
    res = runner.invoke(app, ["train", "--preset", "tiny", "--steps", "5", "--device", "cpu", "--out", str(out),
                              "--seed", "1", "--resume", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["steps_done"] == 5


def test_eval_recall_one_cell_prints_one_object(trained):
    out, _ = trained
    res = runner.invoke(app, ["eval", "recall", "--model", str(out), "--facts", "2", "--distance", "100",
                              "--samples", "1", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert 0.0 <= obj["accuracy"] <= 1.0 and obj["facts"] == 2 and obj["distance"] == 100
    assert obj["model"] == str(out)
    # without --samples one cell is judged over 64 conversations (a grid cell gets 8)
    res = runner.invoke(app, ["eval", "recall", "--model", str(out), "--facts", "2", "--distance", "100", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["answers"] == 64 * 2


def test_eval_recall_table_and_plot(trained, tmp_path):
    out, _ = trained
    plot = tmp_path / "recall.png"
    res = runner.invoke(app, ["eval", "recall", "--model", str(out), "--facts", "1,2", "--distance", "0,50",
                              "--samples", "1", "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert "facts" in res.stdout and "distance" in res.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_eval_impulses_and_tools(trained):
    out, _ = trained
    res = runner.invoke(app, ["eval", "impulses", "--model", str(out), "--samples", "1", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["results"][str(out)]
    assert rep["impulses"] == 6 and 0 <= rep["fitting"] <= 1
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["results"][str(out)]
    assert rep["requests"] == 1 and rep["valid"] in (0.0, 1.0)
    assert rep["calls"] == 1 and rep["call_exact"] in (0.0, 1.0) and len(rep["call_rows"]) == 1
    # the first tool, reverse_string, is asked for as "writes text in reverse order": no cue word
    assert rep["cued"] == 0 and rep["rows"][0]["cue_words"] == [] and rep["passed_uncued"] == rep["passed"]
    # 32 bytes hold no whole definition, so chat's retries (3 by default) rewrite it, in vain
    assert rep["valid"] == 0.0 and rep["retried"]["retries"] == 3 and rep["retried"]["rewritten"] == 1
    assert rep["retried"]["valid"] == 0.0 and rep["retried"]["rows"][0]["attempts"] == 4
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32",
                              "--retries", "0", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["results"][str(out)]["retried"] is None, res.output
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32"])
    assert res.exit_code == 0 and "of the 0 whose wording shares a word" in res.output, res.output
    assert "after up to 3 retries as chat makes them (1 rewritten" in res.output, res.output
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32",
                              "--split", "train"])
    assert res.exit_code == 0 and "1 train requests" in res.output and "shares a word" not in res.output, res.output
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32",
                              "--split", "templates", "--retries", "0"])
    assert res.exit_code == 0 and "1 templates requests" in res.output, res.output
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32",
                              "--split", "more", "--retries", "0"])
    assert res.exit_code == 0 and "1 more requests" in res.output, res.output
    res = runner.invoke(app, ["eval", "tools", "--model", str(out), "--limit", "1", "--max-bytes", "32",
                              "--split", "blind", "--samples", "2", "--retries", "0", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["results"][str(out)]
    assert rep["split"] == "blind" and rep["requests"] == 2 and 0 <= rep["passed"] <= rep["valid"] <= 1
    res = runner.invoke(app, ["eval", "updates", "--model", str(out), "--facts", "2", "--samples", "1", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["results"][str(out)]
    assert rep["answers_updated"] == 1 and rep["answers_unchanged"] == 1 and 0 <= rep["updated"] <= 1
    res = runner.invoke(app, ["eval", "forget", "--model", str(out), "--facts", "2", "--samples", "1", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["results"][str(out)]
    assert rep["answers_forgotten"] == 1 and rep["answers_kept"] == 1 and 0 <= rep["withheld"] <= 1
    res = runner.invoke(app, ["eval", "replies", "--model", str(out), "--facts", "2", "--distance", "50",
                              "--samples", "1"])
    assert res.exit_code == 0 and "value in the reply" in res.output and " -> " in res.output, res.output


@pytest.mark.parametrize("args, message", [
    (["train", "--preset", "huge"], "preset"),
    (["train", "--preset", "tiny", "--arch", "lstm"], "arch"),
    (["eval", "recall", "--model", "/nonexistent/model", "--json"], "no such model"),
    (["eval", "recall", "--facts", "x"], "--facts"),
    (["eval", "recall", "--plot", "out.jpg"], "--plot"),
    (["eval", "replies", "--split", "test"], "--split"),
    (["eval", "tools", "--split", "test"], "--split"),
    (["eval", "forget", "--split", "test"], "--split"),
    (["eval", "updates", "--split", "test"], "--split"),
    (["eval", "replies", "--split", "templates"], "expected heldout or train"),   # a tools-only split
])
def test_bad_input_is_one_error_line_and_nonzero_exit(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code != 0
    assert message in res.output
    assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
