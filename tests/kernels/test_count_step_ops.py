"""scripts/count_step_ops.py: the op count of a fixed-capacity training step, run as a user runs it."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _count(kernels: str, *extra: str) -> dict:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "count_step_ops.py"), "--kernels", kernels,
                        "--batch", "1", "--length", "24", "--json", *extra], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_counts_ops_by_phase_and_triton_launches():
    twin, naive = _count("triton"), _count("naive")
    for res in (twin, naive):
        assert res["forward"] > 50 and res["backward"] > 50
        assert res["total"] == res["forward"] + res["backward"] + res["triton"] and res["losses"] == 0
        assert {op for op, _ in res["top"]["forward"]}.isdisjoint({"view", "detach", "empty"})  # no kernel
    assert naive["triton"] == 0 and twin["triton"] > 0
    # each twin replaces several reference ops with one launch
    assert twin["forward"] + twin["backward"] < naive["forward"] + naive["backward"] - twin["triton"]


def test_the_trainer_step_counts_its_losses_apart():
    res = _count("triton", "--trainer", "--length", "96")
    assert res["trainer"] and res["losses"] > 50 and res["forward"] > 50
    assert res["total"] == res["forward"] + res["losses"] + res["backward"] + res["triton"]
