"""Where a user's data lives: ``MOSAIC_HOME`` (default: the platform's user data folder)."""
from __future__ import annotations

import os
from pathlib import Path


def mosaic_home() -> Path:
    """The root of all user data; created on first use. Tests point ``MOSAIC_HOME`` at a temp folder."""
    env = os.environ.get("MOSAIC_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        from platformdirs import user_data_dir
        root = Path(user_data_dir("mosaic", appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    d = mosaic_home() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def sessions_dir() -> Path:
    d = mosaic_home() / "sessions"
    d.mkdir(parents=True, exist_ok=True)
    return d
