"""kernels.backend: mode parsing, what auto picks and why, fallback when a twin is missing."""
import pytest
import torch

from kernels import backend


def test_modes(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "naive")
    assert backend.use_triton("scan", torch.zeros(1)) is None
    assert backend.report()["reason"].startswith("naive: MOSAIC_KERNELS=naive")
    monkeypatch.setenv("MOSAIC_KERNELS", "bogus")
    with pytest.raises(ValueError, match="MOSAIC_KERNELS must be one of"):
        backend.mode()


def test_auto_without_gpu_driver_is_naive(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "auto")
    monkeypatch.setattr(backend, "gpu_driver", lambda: False)
    assert backend.use_triton("memory", torch.zeros(1)) is None
    rep = backend.report()
    assert rep["picked"] == "naive" and rep["reason"] == "naive: no GPU driver"
    assert rep["ops"] == {"scan": "naive", "memory": "naive", "chains": "naive", "elementwise": "naive"}


def test_missing_twin_falls_back_to_naive(monkeypatch):
    monkeypatch.setenv("MOSAIC_KERNELS", "triton")
    monkeypatch.setattr(backend, "_twins", {"scan": None})
    monkeypatch.setattr(backend, "_import_errors", {"scan": "ImportError: no triton"})
    assert backend.use_triton("scan", torch.zeros(1)) is None
    from kernels.scan import linear_scan
    from kernels.scan.naive import linear_scan as naive_scan
    a, b = torch.rand(1, 4, 2), torch.randn(1, 4, 2)
    assert torch.equal(linear_scan(a, b), naive_scan(a, b))
    assert "scan: twin unavailable" in backend.report()["reason"]
