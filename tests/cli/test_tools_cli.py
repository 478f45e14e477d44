"""`mosaic tools ...`: list, show, propose, approve (prompt and --yes), reject, run, deprecate."""
import json

import pytest
import typer
from typer.testing import CliRunner

from mosaic_cli import tools_cmd

DEF = {"name": "double", "description": "Double x.",
       "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"],
                      "additionalProperties": False},
       "implementation": "def double(x):\n    print('doubling')\n    return 2 * x\n", "sandbox": True}


@pytest.fixture
def cli():
    app = typer.Typer()
    tools_cmd.register(app)

    @app.callback()
    def _root() -> None:  # keep `tools` a sub-command even with one group
        pass

    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(app, ["tools", *args], **kw)


@pytest.fixture
def def_file(tmp_path):
    p = tmp_path / "double.json"
    p.write_text(json.dumps(DEF))
    return p


def test_list_shows_builtins(cli):
    res = cli("list", "--json")
    assert res.exit_code == 0
    names = {t["name"] for t in json.loads(res.stdout)["tools"]}
    assert {"add", "word_count"} <= names
    assert "add" in cli("list").stdout


def test_propose_approve_run_cycle(cli, def_file):
    res = cli("propose", str(def_file), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "pending"
    h = json.loads(res.stdout)["hash"]
    dup = cli("propose", str(def_file), "--json")
    assert dup.exit_code == 1 and json.loads(dup.stdout)["status"] == "duplicate"
    run = cli("run", "double", "--args", '{"x": 2}', "--json")
    assert run.exit_code == 1 and json.loads(run.stdout)["ok"] is False  # not approved yet
    res = cli("approve", "double", "--yes", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == {"name": "double", "hash": h, "version": 1,
                                                            "status": "approved"}
    run = cli("run", "double", "--args", '{"x": 21}', "--json")
    out = json.loads(run.stdout)
    assert run.exit_code == 0 and out["ok"] is True and out["result"] == 42 and out["error"] is None
    assert out["printed"] == "doubling\n"
    human = cli("run", "double", "--args", '{"x": 1}')
    assert human.exit_code == 0 and human.stdout.strip().splitlines()[-1] == "2"
    show = cli("show", "double", "--json")
    data = json.loads(show.stdout)
    assert data["uses"] == 2 and data["definition"] == DEF and data["versions"][0]["hash"] == h


def test_run_failure_exits_nonzero_with_json(cli):
    res = cli("run", "add", "--args", '{"a": "x", "b": 1}', "--json")
    out = json.loads(res.stdout)
    assert res.exit_code == 1 and out["ok"] is False and out["error_type"] == "bad_args" and "error" in out
    res = cli("run", "nope", "--args", "{}", "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["error_type"] == "unknown_tool"
    res = cli("run", "add", "--args", "{bad")
    assert res.exit_code == 1 and res.stderr.startswith("error: --args is not valid JSON")


def test_bad_inputs_give_one_error_line(cli, tmp_path):
    for args in [("propose", str(tmp_path / "missing.json")), ("approve", "nope", "--yes"),
                 ("reject", "nope"), ("show", "nope"), ("deprecate", "nope")]:
        res = cli(*args)
        assert res.exit_code == 1 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, args
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**DEF, "name": "Bad Name"}))
    res = cli("propose", str(bad))
    assert res.exit_code == 1 and "name:" in res.stderr


def test_approve_without_a_terminal_needs_yes(cli, def_file):
    cli("propose", str(def_file))
    res = cli("approve", "double")
    assert res.exit_code == 1 and "pass --yes" in res.stderr
    assert json.loads(cli("show", "double", "--json").stdout)["status"] == "pending"


def test_interactive_prompt_shows_everything_and_approves(cli, def_file, monkeypatch):
    monkeypatch.setattr(tools_cmd, "_interactive", lambda: True)
    cli("propose", str(def_file))
    res = cli("approve", "double", input="a\n")
    assert res.exit_code == 0, res.output
    for part in ["Double x.", "def double(x):", '"additionalProperties": false', "all rules pass",
                 "sandboxed", "[a]pprove / [r]eject / [s]kip", "approved double v1"]:
        assert part in res.stdout, part


def test_interactive_reject_and_skip(cli, def_file, monkeypatch):
    monkeypatch.setattr(tools_cmd, "_interactive", lambda: True)
    cli("propose", str(def_file))
    assert "stays pending" in cli("approve", "double", input="s\n").stdout
    res = cli("approve", "double", input="r\ntoo risky\n")
    assert res.exit_code == 0 and "rejected double" in res.stdout
    again = cli("propose", str(def_file), "--json")
    assert again.exit_code == 1 and json.loads(again.stdout)["status"] == "previously_rejected"


def test_interactive_eof_takes_no_decision(cli, def_file, monkeypatch):
    monkeypatch.setattr(tools_cmd, "_interactive", lambda: True)
    cli("propose", str(def_file))
    res = cli("approve", "double", input="")
    assert "approved" not in res.stdout
    assert json.loads(cli("show", "double", "--json").stdout)["status"] == "pending"


def test_privileged_tool_is_flagged_in_the_prompt(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(tools_cmd, "_interactive", lambda: True)
    p = tmp_path / "priv.json"
    p.write_text(json.dumps({**DEF, "name": "pid", "sandbox": False,
                             "implementation": "def pid(x):\n    import os\n    return os.getpid()\n"}))
    cli("propose", str(p))
    res = cli("approve", "pid", input="s\n")
    assert "PRIVILEGED" in res.stdout


def test_reject_deprecate_and_restore(cli, def_file):
    cli("propose", str(def_file))
    res = cli("reject", "double", "--reason", "no", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "rejected"
    res = cli("deprecate", "add", "--json")
    assert json.loads(res.stdout)["status"] == "deprecated"
    visible = json.loads(cli("list", "--json", "--hide-deprecated").stdout)["tools"]
    assert "add" not in {t["name"] for t in visible}
    assert json.loads(cli("approve", "add", "--yes", "--json").stdout)["status"] == "restored"


def test_terminal_output_escapes_control_characters(cli, tmp_path):
    res = cli("run", "reverse_text", "--args", json.dumps({"text": "\x1b[2J\rhi"}))
    assert res.exit_code == 0 and "\x1b" not in res.stdout and "\r" not in res.stdout


def test_corrupt_registry_is_reported(cli, monkeypatch, tmp_path):
    import os
    home = os.environ["MOSAIC_HOME"]
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "tools.db"), "wb") as f:
        f.write(b"\0" * 8192)
    res = cli("list", "--json")
    assert res.exit_code == 0 and "warning:" in res.stderr and "moved it to" in res.stderr


def test_prompt_for_a_new_version_shows_the_diff(cli, def_file, tmp_path, monkeypatch):
    cli("propose", str(def_file))
    cli("approve", "double", "--yes")
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({**DEF, "implementation": "def double(x):\n    return x + x\n"}))
    assert cli("propose", str(v2), "--update").exit_code == 0
    monkeypatch.setattr(tools_cmd, "_interactive", lambda: True)
    res = cli("approve", "double", input="s\n")
    assert "changes against the approved v1" in res.stdout and "+    return x + x" in res.stdout


@pytest.mark.parametrize("args", [("show", "nope"), ("approve", "nope", "--yes"), ("reject", "nope"),
                                  ("deprecate", "nope"), ("run", "add", "--args", "{bad")])
def test_failures_under_json_still_answer_in_json(cli, args):
    res = cli(*args, "--json")
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["error"]
    assert res.stderr.startswith("error: ")
