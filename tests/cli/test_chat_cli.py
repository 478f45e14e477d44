"""``mosaic chat --plain`` and ``mosaic watch --headless`` on a tiny saved model."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mosaic_cli.app import app


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    from engine.vm import ModelConfig, MosaicLM
    from engine.vm.checkpoint import save_model
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(MosaicLM(ModelConfig.preset("tiny")), p)
    return str(p)


def _jsonl(text: str) -> list[dict]:
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    for e in events:
        assert isinstance(e["type"], str) and isinstance(e["ts"], float)
    return events


def _mosaic(*args, stdin="", timeout=120):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([sys.executable, "-c", "from mosaic_cli.app import main; main()", *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def test_chat_plain_prints_one_reply_line_per_user_line(tiny_path):
    res = CliRunner().invoke(app, ["chat", "--plain", "--no-impulses", "--model", tiny_path,
                                   "--max-turn-bytes", "40"], input="hello\n\nwhat is the code\n")
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 2          # the blank line is skipped


def test_no_copy_and_no_hint_hand_the_engine_the_models_own_tool_values_and_names(tiny_path, monkeypatch):
    import mosaic_cli.chat_cmd as chat_cmd
    seen: list[tuple[bool, bool]] = []
    real = chat_cmd._open_engine

    def spy(*args, **config):
        engine, session = real(*args, **config)
        seen.append((engine.config.copy_tool_values, engine.config.hint_tool_names))
        return engine, session

    monkeypatch.setattr(chat_cmd, "_open_engine", spy)
    for flags in ([], ["--no-copy"], ["--no-hint"]):
        res = CliRunner().invoke(app, ["chat", "--plain", "--no-impulses", *flags, "--model", tiny_path,
                                       "--max-turn-bytes", "8"], input="hi\n")
        assert res.exit_code == 0, res.output
    assert seen == [(True, True), (False, True), (True, False)]


def test_plain_chat_names_a_proposed_or_rejected_tool():
    from types import SimpleNamespace as Ev
    from mosaic_cli.chat_cmd import tool_note
    note = tool_note(Ev(type="ToolProposed", payload={"name": "to_upper", "version": 1}))
    assert note == "tool proposed: to_upper v1; review it with `mosaic tools approve to_upper`"
    note = tool_note(Ev(type="ToolRejected", payload={"name": "reverse_text", "status": "invalid", "errors": [
        {"field": "name", "message": "'reverse_text' collides with a built-in tool"}]}))
    assert note == "tool rejected: reverse_text: name: 'reverse_text' collides with a built-in tool"
    assert tool_note(Ev(type="ToolRejected", payload={"name": None, "status": "invalid"})) == \
        "tool rejected: (no name): invalid"
    note = tool_note(Ev(type="ToolDefinitionRetried",
                        payload={"attempt": 2, "errors": ["definition: not JSON"]}))
    assert note == "tool definition did not validate (definition: not JSON); writing it again (retry 2)"
    note = tool_note(Ev(type="ToolNameHinted", payload={"turn": "t1", "name": "to_upper"}))
    assert note == "tool definition named from your words: to_upper (--no-hint: the model names it)"
    assert tool_note(Ev(type="Response", payload={})) is None


def test_plain_chat_prints_a_calls_result_as_the_tool_returned_it():
    from types import SimpleNamespace as Ev
    from mosaic_cli.chat_cmd import tool_note
    ok = tool_note(Ev(type="ToolResult", payload={"name": "to_upper", "ok": True, "result": "GOOD DAY"}))
    assert ok == 'tool to_upper returned "GOOD DAY"'
    assert tool_note(Ev(type="ToolResult", payload={"name": "add", "ok": True, "result": [1, 2.5]})) == \
        "tool add returned [1, 2.5]"
    failed = tool_note(Ev(type="ToolResult", payload={"name": "nosuch", "ok": False, "result": None,
                                                      "error": "no tool named nosuch",
                                                      "error_type": "unknown_tool"}))
    assert failed == "tool nosuch failed (unknown_tool): no tool named nosuch"
    broken = tool_note(Ev(type="ToolResult", payload={"name": None, "ok": False, "result": None,
                                                      "error": "tool call is not valid JSON: ...",
                                                      "error_type": "bad_call"}))
    assert broken == "a tool call failed (bad_call): tool call is not valid JSON: ..."


def test_chat_plain_jsonl_prints_every_event(tiny_path):
    res = CliRunner().invoke(app, ["chat", "--plain", "--jsonl", "--no-impulses", "--model", tiny_path,
                                   "--max-turn-bytes", "20"], input="hello there\n")
    assert res.exit_code == 0, res.output
    events = _jsonl(res.stdout)
    types = [e["type"] for e in events]
    assert "UserMessage" in types and "TurnEnded" in types and types[-1] == "Stopped"
    user = next(e for e in events if e["type"] == "UserMessage")
    assert user["payload"]["text"] == "hello there"
    ended = next(e for e in events if e["type"] == "TurnEnded")
    assert ended["payload"]["turn"] == user["id"]
    assert any(e["type"] == "Token" for e in events) or ended["payload"]["bytes"] == 0


def test_watch_headless_jsonl_duration_consolidates(tiny_path):
    res = CliRunner().invoke(app, ["watch", "--headless", "--jsonl", "--duration", "4", "--model", tiny_path,
                                   "--idle-consolidation-s", "0.2"])
    assert res.exit_code == 0, res.output
    events = _jsonl(res.stdout)
    types = [e["type"] for e in events]
    assert types[0] == "Started" and types[-1] == "Stopped"
    cons = [e for e in events if e["type"] == "Consolidated"]
    assert cons and {"replays", "prunes", "aborted", "seconds"} <= set(cons[0]["payload"])


def test_bad_input_is_one_clear_error_line(tiny_path):
    runner = CliRunner()
    res = runner.invoke(app, ["chat", "--plain", "--session", "../evil", "--model", tiny_path], input="")
    assert res.exit_code != 0 and "bad session name" in res.output
    res = runner.invoke(app, ["watch", "--headless", "--model", "/no/such/model.safetensors"])
    assert res.exit_code != 0 and "error:" in res.output and "Traceback" not in res.output


def test_session_survives_process_restart(tiny_path):
    first = _mosaic("chat", "--plain", "--jsonl", "--no-impulses", "--session", "facts", "--model", tiny_path,
                    "--max-turn-bytes", "30", stdin="remember that the door code is 4417\n")
    assert first.returncode == 0, first.stderr
    saved = [e for e in _jsonl(first.stdout) if e["type"] == "StateSaved"][-1]["payload"]
    second = _mosaic("chat", "--plain", "--jsonl", "--no-impulses", "--session", "facts", "--model", tiny_path,
                     "--max-turn-bytes", "30", stdin="what is the door code?\n")
    assert second.returncode == 0, second.stderr
    loaded = next(e for e in _jsonl(second.stdout) if e["type"] == "SessionLoaded")["payload"]
    assert loaded["generation"] == saved["generation"]
    assert loaded["memory_digest"] == saved["memory_digest"]     # memory tables equal
    assert loaded["position"] == saved["position"] > len("remember that the door code is 4417")
    from engine.store.sessions import Session
    with Session.open("facts") as s:
        texts = [e["payload"]["text"] for e in s.log.read("UserMessage")]
    assert texts == ["remember that the door code is 4417", "what is the door code?"]


def test_sigterm_stops_cleanly_saves_and_exits_zero(tiny_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", "from mosaic_cli.app import main; main()", "watch",
                             "--headless", "--jsonl", "--session", "term", "--model", tiny_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if '"type":"Started"' in line:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    events = _jsonl("".join(lines) + out)
    assert events[-1]["type"] == "Stopped"
    assert any(e["type"] == "StateSaved" and e["payload"]["reason"] == "stop" for e in events)
    from engine.store.sessions import Session
    from engine.vm import ModelConfig, VMState
    with Session.open("term") as s:
        assert s.load(lambda p: VMState.load(p, ModelConfig.preset("tiny"))).state is not None
        assert s.log.count("Stopped") == 1


def test_chat_help_names_the_engines_cap_on_tool_turns():
    # the CLI keeps `--help` fast by not importing the engine, so the number is written in both
    # places: this keeps them equal
    import typer.main

    from engine.runtime.engine import EngineConfig
    from mosaic_cli.app import app
    chat = typer.main.get_command(app).commands["chat"]
    (option,) = [p for p in chat.params if p.name == "max_turn_bytes"]
    assert f"may run to {EngineConfig().max_code_turn_bytes:,})" in option.help


def test_watch_human_line_for_a_consolidation_pass_says_how_many_replays_were_cued():
    from engine.runtime.events import Event
    from mosaic_cli.chat_cmd import _human_line

    ev = Event("Consolidated", {"replays": 3, "cued": 2, "pruned": 1, "aborted": False,
                                "seconds": 0.21})
    line = _human_line(ev)
    assert "Consolidated replays=3 cued=2 pruned=1 " in line and line.endswith("0.21s")
