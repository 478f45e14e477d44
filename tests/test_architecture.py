"""The import direction holds, and our top-level ``kernels`` package confuses neither transformers nor peft."""
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """prompts, toolsmith, kernels import nothing of ours; engine imports no CLI/TUI (.importlinter)."""
    exe = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run([str(exe), "--config", str(ROOT / ".importlinter")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "broken" in res.stdout and "0 broken" in res.stdout


def test_transformers_does_not_take_our_kernels_for_hub_kernels():
    import kernels
    from transformers.utils import import_utils

    assert kernels.__mosaic_kernels__ is True
    # transformers finds a top-level 'kernels' (ours) but resolves its version through our distribution
    # (mosaic-dvm), which is outside the hub package's accepted range, so it never uses it.
    found, version = import_utils._is_package_available("kernels", return_version=True)
    from importlib.metadata import version as dist_version
    assert version in ("N/A", dist_version("mosaic-dvm"))
    assert import_utils.is_kernels_available() is False
    import transformers.integrations.hub_kernels as hub  # imports cleanly beside ours
    assert not hasattr(kernels, "get_kernel") and not hasattr(kernels, "kernelize")
    assert hub.is_kernels_available() is False
    from kernels.scan import linear_scan  # and ours still works after transformers looked at it
    assert linear_scan(torch.ones(1, 2, 1) * 0.5, torch.ones(1, 2, 1)).shape == (1, 2, 1)


def test_peft_lora_still_wraps_a_linear_beside_our_kernels():
    import kernels  # noqa: F401  (ours, imported first on purpose)
    from peft import LoraConfig, get_peft_model

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(8, 8)

        def forward(self, x):
            return self.proj(x)

    torch.manual_seed(0)
    base = Tiny()
    x = torch.randn(2, 8)
    before = base(x).detach()
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["proj"], lora_dropout=0.0))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert torch.allclose(model(x), before)  # LoRA B starts at zero: same output
    model(x).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
