"""Checkpoints, model resolution, and ``mosaic info``."""
import json

import pytest
import torch
from typer.testing import CliRunner

from engine.vm import ModelConfig, MosaicLM
from engine.vm.checkpoint import ModelError, default_model_path, load_model, resolve_model, save_model


def test_resolve_model_paths_names_and_fallback(tmp_path, monkeypatch, capsys):
    from engine.store.paths import models_dir
    model = MosaicLM(ModelConfig.preset("tiny"))
    save_model(model, models_dir() / "mine.safetensors")
    assert resolve_model("mine").config == model.config
    assert resolve_model(str(models_dir() / "mine.safetensors")).config == model.config
    with pytest.raises(ModelError, match="no model named 'nothere'"):
        resolve_model("nothere")
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "x" / "missing.safetensors"))
    monkeypatch.setattr("engine.vm.checkpoint.default_model_path", lambda: tmp_path / "none.safetensors")
    fresh = resolve_model(None)
    assert fresh.config == ModelConfig.preset("default")
    assert "warning" in capsys.readouterr().err


def test_truncated_model_file_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(MosaicLM(ModelConfig.preset("tiny")), path)
    data = path.read_bytes()
    path.write_bytes(data[:100])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        load_model(path)


def test_default_model_path_is_in_the_package():
    assert default_model_path().parts[-3:] == ("engine", "assets", "default.safetensors")


def _app():
    import typer
    from mosaic_cli import info_cmd
    app = typer.Typer()
    info_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps 'info' a named subcommand
    return app


def test_info_json(tmp_path):
    path = tmp_path / "m.safetensors"
    model = MosaicLM(ModelConfig.preset("tiny"))
    save_model(model, path)
    res = CliRunner().invoke(_app(), ["info", "--json", "--model", str(path)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["params"] == model.num_parameters()
    assert data["state_bytes"] == model.init_state(1).nbytes()
    assert data["opcodes"][:3] == ["NOP", "READ_MEM", "WRITE_MEM"] and len(data["opcodes"]) == 10
    assert data["kernels"]["picked"] in ("naive", "triton") and data["kernels"]["reason"]
    assert data["config"]["d_model"] == 32


def test_info_tables_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "naive")
    path = tmp_path / "m.safetensors"
    save_model(MosaicLM(ModelConfig.preset("tiny")), path)
    res = CliRunner().invoke(_app(), ["info", "--model", str(path)])
    assert res.exit_code == 0 and "WRITE_MEM" in res.stdout and "naive" in res.stdout
    res = CliRunner().invoke(_app(), ["info", "--model", str(tmp_path / "missing.safetensors")])
    assert res.exit_code == 1 and "does not exist" in res.output
    res = CliRunner().invoke(_app(), ["info", "--bogus"])
    assert res.exit_code == 2


def test_set_read_rewrites_only_the_read_settings(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from engine.vm.checkpoint import read_metadata
    script = Path(__file__).resolve().parents[2] / "scripts" / "set_read.py"
    src, out = tmp_path / "m.safetensors", tmp_path / "p.safetensors"
    cfg = ModelConfig.preset("tiny")
    save_model(MosaicLM(cfg), src, {"train_seq_len": "64"})
    res = subprocess.run([sys.executable, str(script), str(src), str(out), "--probes", "3", "--temperature", "0.1",
                          "--threshold", "0.95", "--ways", "5", "--clear-confidence", "0.8"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    a, b = load_model(src), load_model(out)
    assert a.config == cfg
    assert b.config == cfg.replace(probes=3, read_temperature=0.1, match_threshold=0.95, ways=5, clear_confidence=0.8)
    assert all(blk.clear_confidence == 0.8 for blk in b.blocks)
    assert b.init_state(1).layers[0].mem_keys.shape[2] == 5  # the memory table follows the config
    assert all(torch.equal(t, b.state_dict()[k]) for k, t in a.state_dict().items())
    assert read_metadata(out)["train_seq_len"] == "64"
    back = subprocess.run([sys.executable, str(script), str(out), str(tmp_path / "d.safetensors"), "--temperature", "dot"],
                          capture_output=True, text=True)
    assert back.returncode == 0, back.stderr
    assert load_model(tmp_path / "d.safetensors").config == cfg.replace(probes=3, match_threshold=0.95, ways=5,
                                                                        clear_confidence=0.8)
    for argv, start in ((["--probes", "99"], "error: probes"), (["--temperature", "0"], "error: read_temperature"),
                        (["--ways", "0"], "error: ways"), (["--clear-confidence", "1"], "error: clear_confidence"),
                        ([], "error: nothing to change")):
        bad = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "x.safetensors"), *argv],
                             capture_output=True, text=True)
        assert bad.returncode in (1, 2) and bad.stderr.startswith(start) and len(bad.stderr.splitlines()) == 1
        assert not (tmp_path / "x.safetensors").exists()
