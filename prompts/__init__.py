"""Text templates and the stream format: the one thing the curriculum and the runtime share.

Stdlib only. ``render(name, **vars)`` fills a template from ``prompts/templates``;
``prompts.stream`` says how turns are written into the byte stream.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from string import Template

__all__ = ["get", "render", "names"]


@lru_cache(maxsize=None)
def get(name: str) -> str:
    """Return the raw text of template ``name`` (file ``templates/<name>.txt``)."""
    path = resources.files(__package__).joinpath("templates", f"{name}.txt")
    if not path.is_file():
        raise KeyError(f"no prompt template named {name!r}")
    return path.read_text(encoding="utf-8").rstrip("\n")


def render(name: str, **values: object) -> str:
    """Fill template ``name`` with ``values`` (``$name`` placeholders); a missing value raises KeyError."""
    return Template(get(name)).substitute({k: str(v) for k, v in values.items()})


def names() -> list[str]:
    """All template names, sorted."""
    folder = resources.files(__package__).joinpath("templates")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))
