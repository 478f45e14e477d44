"""Shared test set-up: an isolated MOSAIC_HOME, Triton's CPU interpreter, one torch thread;
``load_script`` for the scripts/ folder's modules."""
import importlib.util
import os
from pathlib import Path

# Must be set before any @triton.jit decorates a kernel.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "mosaic_home"
    monkeypatch.setenv("MOSAIC_HOME", str(home))
    yield home


def pytest_configure(config):
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture
def load_script():
    """``load_script("name")``: the module scripts/name.py (scripts are not a package)."""
    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    return load
