"""SIGKILL a real child process at random moments, many times: the session always loads, and
every generation a child reported as saved (and the event log behind it) is still there."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.runtime.snapshot import state_digest
from engine.store.sessions import Session
from engine.vm import ModelConfig, VMState

CHILD = Path(__file__).parent / "crash_child.py"
CFG = ModelConfig.preset("tiny")
ROUNDS = 25
BUDGET_S = 45.0


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _run_and_kill(zyg, rng: random.Random, out: Path) -> list[dict]:
    zyg.stdin.write(f"go crashy {out}\n")
    zyg.stdin.flush()
    pid = int(zyg.stdout.readline())
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0.0, 0.3))           # sometimes while it starts or loads
    else:
        deadline = time.monotonic() + 30
        while "READY" not in _lines(out) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.8))           # mostly while it saves turn after turn
    os.kill(pid, signal.SIGKILL)
    zyg.stdin.write(f"wait {pid}\n")
    zyg.stdin.flush()
    status = int(zyg.stdout.readline())
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return [json.loads(line) for line in _lines(out) if line.startswith("{")]


def test_sigkill_never_loses_reported_saves(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    zyg = subprocess.Popen([sys.executable, str(CHILD), "zygote"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
    rng = random.Random(20260126)
    reported: dict | None = None      # the newest StateSaved any child printed
    kills = with_saves = 0
    t0 = time.monotonic()
    try:
        while kills < ROUNDS and time.monotonic() - t0 < BUDGET_S:
            events = _run_and_kill(zyg, rng, tmp_path / f"round{kills}.jsonl")
            kills += 1
            saves = [e for e in events if e["type"] == "StateSaved"]
            with_saves += bool(saves)
            if saves:
                reported = saves[-1]["payload"]
            with Session.open("crashy") as s:            # the lock of the killed child is gone
                loaded = s.load(lambda p: VMState.load(p, CFG))
                if reported is None:
                    continue
                assert loaded is not None and loaded.state is not None, "session failed to load"
                assert not loaded.moved_aside, loaded.moved_aside    # a kill never damages a generation
                assert loaded.generation >= reported["generation"]
                pos = int(loaded.state.position[0])
                if loaded.generation == reported["generation"]:
                    assert pos == reported["position"]
                    assert state_digest(loaded.state) == reported["memory_digest"]
                    assert loaded.runtime["ledger"]["opens"] >= reported["open_commitments"]
                else:
                    assert pos > reported["position"]
                assert s.log.count() >= reported["events_logged"]
                facts = [e["payload"]["text"] for e in s.log.read("UserMessage")]
                # told in order across all the killed runs; none went missing
                assert facts == [f"fact {i}: key{i} is {i * 7}" for i in range(len(facts))]
    finally:
        zyg.stdin.close()
        zyg.wait(timeout=30)
    assert kills >= 10 and with_saves >= 5, (kills, with_saves)
