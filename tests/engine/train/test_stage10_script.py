"""scripts/stage10_gpu.sh dry on the CPU (a few steps of short sequences): the baseline phase
stops at its budget with a checkpoint and the same command finishes it, and the stage trains
MOSAIC from the shipped weights on the mix, then the baseline for the same steps, so a script
that would fail on a GPU lease fails here first."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _run(phase, out, runs, budget, steps=None, expect=0):
    env = dict(os.environ, DEVICE="cpu", GRAPH="", WORKERS="0", RUNS=str(runs), PYTHON=sys.executable,
               EXTRA="--seq-len 64 --batch-size 2 --eval-every 0", OMP_NUM_THREADS="1")
    if steps is not None:
        env["STEPS"] = str(steps)
    r = subprocess.run(["bash", str(ROOT / "scripts" / "stage10_gpu.sh"), phase, str(out), str(budget)],
                       capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == expect, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_the_baseline_resumes_after_its_budget_and_the_stage_trains_the_pair_on_the_mix(tmp_path):
    out, runs = tmp_path / "out", tmp_path / "runs"
    said = _run("baseline", out, runs, 10, steps=1_000_000, expect=3)     # the budget stops it
    assert "run the same command again" in said and (runs / "window9" / "checkpoint.pt").exists()
    done = int(re.search(r"interrupted at step (\d+)", said).group(1))
    assert done > 0
    assert f"steps done: {done + 2} of {done + 2}" in _run("baseline", out, runs, 120, steps=done + 2)
    assert (out / "window9" / "model.pt").exists()
    _run("stage", out, runs, 2)
    _run("stage", out, runs, 4)             # again, afresh: MOSAIC for the budget, the baseline as many steps
    for log in ("train_default.log", "train_window.log"):
        assert "saved" in (out / "stage10" / log).read_text()            # not refused as a used folder
    mosaic = json.loads((out / "stage10" / "default" / "metrics.json").read_text())
    window = json.loads((out / "stage10" / "window" / "metrics.json").read_text())
    assert mosaic["train_config"]["tools_share"] == 0.3 and mosaic["train_config"]["more_phrases"]
    assert mosaic["train_config"]["tool_failures"] == 0.1
    assert mosaic["train_config"]["init_from"].endswith("init/default")
    assert window["arch"] == "window" and window["steps_done"] == mosaic["steps_done"] > 0
    assert window["train_config"]["more_phrases"] and window["train_config"]["init_from"].endswith("init/window")


def test_the_pair_copies_nothing_out_when_a_run_fails(tmp_path):
    # an older model in the work folder must not come out as the failed run's
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "default").mkdir(parents=True)
    for name in ("model.safetensors", "metrics.json", "MODEL.md"):
        (work / "default" / name).write_text("old")
    env = dict(os.environ, DEVICE="cpu", GRAPH="", WORKERS="0", WORK=str(work), PYTHON=sys.executable,
               EXTRA="--tools-share 5")                                   # refused by the trainer
    r = subprocess.run(["bash", str(ROOT / "scripts" / "train_pair_gpu.sh"), str(out), "2"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 1 and "the mosaic run failed" in r.stdout, r.stdout[-2000:]
    assert not (out / "default" / "model.safetensors").exists()
