"""Model checkpoints: safetensors weights with the config JSON in the metadata, written atomically."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from engine.vm.config import ConfigError, ModelConfig
from engine.vm.model import MosaicLM

FORMAT = "mosaic-model-1"


class ModelError(ValueError):
    """A model file that cannot be used; the message says which and why."""


def default_model_path() -> Path:
    """engine/assets/default.safetensors: the model shipped in the package (may not exist yet)."""
    return Path(__file__).resolve().parent.parent / "assets" / "default.safetensors"


def save_model(model: MosaicLM, path: str | os.PathLike, extra: dict[str, str] | None = None) -> Path:
    """Write weights + config (and optional string metadata, e.g. a model card) atomically."""
    from safetensors.torch import save_file
    from engine.store.atomic import atomic_write_with

    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": model.config.to_json(), **(extra or {})}
    return atomic_write_with(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a model file (config JSON, card, ...)."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:
        raise ModelError(f"model file {path} is truncated or corrupt ({type(exc).__name__}: {exc})") from None


def load_model(path: str | os.PathLike, device=None) -> MosaicLM:
    """A MosaicLM from a file written by :func:`save_model`; clear ModelError on any problem."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file {p} does not exist")
    meta = read_metadata(p)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ModelError(f"model file {p} is not a MOSAIC model (no config in its metadata)")
    try:
        import json
        cfg = ModelConfig.from_dict(json.loads(meta["config"]))
    except (ConfigError, ValueError) as exc:
        raise ModelError(f"model file {p} has an invalid config: {exc}") from None
    try:
        tensors = load_file(str(p))
    except Exception as exc:
        raise ModelError(f"model file {p} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    model = MosaicLM(cfg)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"model file {p} does not match its config: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model.to(device) if device is not None else model


def resolve_model(name_or_path: str | os.PathLike | None = None, device=None, warn=True) -> MosaicLM:
    """The model a command should use.

    None -> the shipped default model, or (if none is shipped yet) a fresh
    ``ModelConfig.preset("default")`` model with a fixed seed and a warning on stderr.
    A path to an existing file -> that file. A bare name -> MOSAIC_HOME/models/<name>.safetensors
    or engine/assets/<name>.safetensors. Anything else -> ModelError.
    """
    if name_or_path is None:
        path = default_model_path()
        if path.is_file():
            return load_model(path, device)
        if warn:
            print("warning: no trained default model is shipped yet; using a freshly initialised "
                  "'default' model (its output is noise)", file=sys.stderr)
        with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
            torch.manual_seed(0)
            model = MosaicLM(ModelConfig.preset("default")).eval()
        return model.to(device) if device is not None else model
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return load_model(p, device)
    text = str(name_or_path)
    if os.sep not in text and not text.endswith(".safetensors"):
        from engine.store.paths import models_dir
        for cand in (models_dir() / f"{text}.safetensors", default_model_path().parent / f"{text}.safetensors"):
            if cand.is_file():
                return load_model(cand, device)
        raise ModelError(f"no model named {text!r} (looked in {models_dir()} and {default_model_path().parent})")
    raise ModelError(f"model file {p} does not exist")
