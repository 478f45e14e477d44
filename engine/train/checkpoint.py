"""Files a training run writes into its folder, all atomically:

* ``checkpoint.pt``   the resumable training state (model, optimizer, step, clocks, history)
* ``model.safetensors`` (MOSAIC, via engine.vm.checkpoint) or ``model.pt`` (window baseline):
  the trained model that eval and chat load
* ``MODEL.md``        the model card (``modelcard.py``)
* ``metrics.json``    the run's summary and held-out evaluations
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from engine.store.atomic import atomic_write_bytes, atomic_write_text

CHECKPOINT = "checkpoint.pt"
MOSAIC_FILE = "model.safetensors"
WINDOW_FILE = "model.pt"


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be used; the message says why."""


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_training_state(folder: Path, state: dict) -> Path:
    """Write the resumable state atomically (a crash leaves the previous checkpoint intact)."""
    return atomic_write_bytes(Path(folder) / CHECKPOINT, _torch_bytes(state))


def load_training_state(folder: Path) -> dict | None:
    """The saved training state, or None when the folder has none."""
    path = Path(folder) / CHECKPOINT
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from None


def save_trained_model(model, arch: str, folder: Path, seq_len: int) -> Path:
    """The model file for eval and chat: MOSAIC via ``engine.vm.checkpoint.save_model`` (with the
    training length in its metadata), the window baseline as a torch file."""
    folder = Path(folder)
    if arch == "mosaic":
        from engine.vm.checkpoint import save_model
        path = folder / MOSAIC_FILE
        save_model(model, path, extra={"train_seq_len": str(seq_len)})
        return path
    path = folder / WINDOW_FILE
    atomic_write_bytes(path, _torch_bytes({"arch": "window", "config": model.config.to_dict(),
                                           "state_dict": model.state_dict(), "train_seq_len": seq_len}))
    return path


def train_length(model, arch: str, path: str | Path | None, fallback: int = 2048) -> int:
    """The sequence length a model was trained on (metadata of its file), else ``fallback``."""
    if arch == "window":
        return int(model.config.window)
    try:
        from engine.vm.checkpoint import default_model_path, read_metadata
        p = model_file(path) if path is not None else default_model_path()
        return int(read_metadata(p).get("train_seq_len", fallback))
    except Exception:  # noqa: BLE001 - an unknown length only changes the default grid
        return fallback


def model_file(path: str | Path) -> Path:
    """The model file for ``path``: the file itself, or the model inside a training folder."""
    p = Path(path)
    if p.is_dir():
        for name in (MOSAIC_FILE, WINDOW_FILE):
            if (p / name).exists():
                return p / name
        raise CheckpointError(f"no {MOSAIC_FILE} or {WINDOW_FILE} in {p}")
    if not p.exists():
        raise CheckpointError(f"no such model file: {p}")
    return p


def load_trained_model(path: str | Path | None, device: str | torch.device = "cpu"):
    """(model, arch, name) for a training folder, a model file, or None (the default model)."""
    if path is None:
        from engine.vm.checkpoint import resolve_model
        model = resolve_model(None)
        return model.to(device).eval(), "mosaic", "default"
    p = model_file(path)
    if p.suffix == ".pt":
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)  # never unpickle code
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"cannot read {p}: {exc}") from None
        if not isinstance(blob, dict) or blob.get("arch") != "window":
            raise CheckpointError(f"{p} is not a window-baseline model file")
        from engine.train.window import WindowConfig, WindowLM
        model = WindowLM(WindowConfig.from_dict(blob["config"]))
        model.load_state_dict(blob["state_dict"])
        return model.to(device).eval(), "window", str(p.parent.name if p.parent.name else p)
    from engine.vm.checkpoint import load_model
    try:
        model = load_model(p)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot load {p}: {exc}") from None
    return model.to(device).eval(), "mosaic", str(p.parent.name if p.parent.name else p)


def write_metrics(folder: Path, metrics: dict) -> Path:
    return atomic_write_text(Path(folder) / "metrics.json", json.dumps(metrics, indent=2, default=str) + "\n")
