"""Shared test set-up: an isolated MOSAIC_HOME, Triton's CPU interpreter, one torch thread."""
import os

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
