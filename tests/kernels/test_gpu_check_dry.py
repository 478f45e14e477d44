"""scripts/gpu_check.py --dry-run on the CPU (Triton's interpreter, tiny sizes, no timings): every
check of the GPU script runs, on a model shaped like the default one (no memory in layer 0), so a
script that would crash on the GPU lease fails here first."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_script_runs_all_its_checks_dry(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), str(tmp_path / "logs"), "--dry-run"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("checks: "))
    done, total = line.split()[1].split("/")
    assert done == total and int(total) >= 50, line
    assert any((tmp_path / "logs").iterdir())
