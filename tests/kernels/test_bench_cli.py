"""``mosaic bench`` on a machine without a GPU: the naive path runs, says so, and --json rows parse."""
import json

from typer.testing import CliRunner

from mosaic_cli.app import app


def _rows(result):
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_bench_kernels_json_on_cpu():
    result = CliRunner().invoke(app, ["bench", "kernels", "--json", "--device", "cpu"])
    rows = _rows(result)
    assert {r["op"] for r in rows} == {"scan fwd", "read fwd", "rows fwd+bwd (train SCAN)"}
    for r in rows:
        assert r["path"] == "naive" and r["batch"] > 0 and r["tokens_per_s"] > 0
    assert "no GPU" in result.stderr


def test_bench_decode_json_on_cpu():
    result = CliRunner().invoke(app, ["bench", "decode", "--json", "--device", "cpu", "--tokens", "2"])
    rows = _rows(result)
    paths = {(r["path"], r["batch"]) for r in rows}
    assert ("step naive", 1) in paths and ("step naive", 64) in paths and ("fast (cpu numpy)", 1) in paths
    assert all(r["tokens_per_s"] > 0 for r in rows)
    assert "no GPU" in result.stderr


def test_bench_train_json_on_cpu():
    import os
    planner_before = os.environ.get("MOSAIC_PLANNER")
    result = CliRunner().invoke(app, ["bench", "train", "--json", "--device", "cpu", "--batch", "1", "--length", "16"])
    rows = _rows(result)
    assert [r["path"] for r in rows] == ["mosaic naive", "mosaic naive, host planner", "window transformer (SDPA)"]
    mosaic, host, window = rows
    assert (mosaic["planner"], host["planner"]) == ("device", "host")
    assert abs(window["params"] - mosaic["params"]) / mosaic["params"] < 0.05  # equal size
    assert mosaic["vs_window"] > 0 and host["vs_window"] > 0
    # the planning pass ran inside the step (a positive share of it) and the hook is removed after
    for row in (mosaic, host):
        assert row["plan_us_per_token"] > 0 and 0 < row["plan_share"] < 1
    assert os.environ.get("MOSAIC_PLANNER") == planner_before  # the bench restored it
    import engine.vm.block as block
    assert block.plan_slots.__name__ == "plan_slots" and block.plan_slots.__module__ == "engine.vm.block"


def test_bench_rejects_a_missing_gpu(monkeypatch):
    import engine.bench.common as common

    monkeypatch.setattr(common, "gpu_usable", lambda: False)
    result = CliRunner().invoke(app, ["bench", "decode", "--device", "cuda"])
    assert result.exit_code != 0
    assert "no CUDA GPU" in result.output
