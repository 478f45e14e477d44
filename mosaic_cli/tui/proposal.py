"""A tool proposal as the TUI shows it, gathered from whatever the engine hands over."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def as_dict(obj: Any) -> dict:
    """A plain dict view of a dict, a dataclass or an object with attributes."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")} if hasattr(obj, "__dict__") else {}


@dataclass
class ToolProposal:
    """What the approval dialog shows. ``errors`` is None when nobody reported a validation."""
    name: str
    hash: str | None = None        # approvals are bound to the definition's hash
    description: str = ""
    parameters: dict = field(default_factory=dict)
    source: str = ""
    errors: list[str] | None = None
    sandbox: bool = True
    checked_here: bool = False     # errors came from toolsmith validation run by the TUI

    @property
    def key(self) -> str:
        return self.hash or self.name

    @classmethod
    def gather(cls, *sources: Any) -> "ToolProposal":
        """Merge proposal fields from several sources, earlier ones winning (each a dict, a
        ToolDefinition-like object, or a record with a nested ``definition``)."""
        merged: dict = {}
        for src in sources:
            d = as_dict(src)
            nested = d.get("definition")
            if nested is not None:
                d = {**as_dict(nested), **{k: v for k, v in d.items() if k != "definition"}}
            for k, v in d.items():
                if merged.get(k) in (None, "", [], {}) and v is not None:
                    merged[k] = v
        errors = merged.get("errors", merged.get("validation"))
        if isinstance(errors, dict):
            errors = errors.get("errors")
        if errors is not None and not isinstance(errors, list):
            errors = [errors]
        name = str(merged.get("name") or "?")
        h = merged.get("hash")
        return cls(
            name=name,
            hash=str(h) if h else None,
            description=str(merged.get("description") or ""),
            parameters=dict(merged.get("parameters") or {}),
            # "source" in a ToolProposed payload names the proposer ("model"), not the code
            source=str(merged.get("implementation") or ""),
            errors=[error_line(e) for e in errors] if errors is not None else None,
            sandbox=bool(merged.get("sandbox", True)),
        )

    def check(self) -> None:
        """Fill ``errors`` by running toolsmith's validation here when nobody reported one."""
        if self.errors is not None or not self.source:
            return
        try:
            from toolsmith.definition import ToolDefinition
            defn = ToolDefinition(name=self.name, description=self.description, parameters=self.parameters,
                                  implementation=self.source, sandbox=self.sandbox)
            self.errors = [str(e) for e in defn.validate()]
            self.checked_here = True
        except Exception as exc:   # a validator crash is itself worth showing
            self.errors = [f"validation could not run: {exc}"]
            self.checked_here = True


def error_line(error: Any) -> str:
    """One readable line for a validation error given as text, a {field, message} dict or an object."""
    if isinstance(error, dict) and "message" in error:
        return f"{error.get('field', '?')}: {error['message']}" if error.get("field") else str(error["message"])
    return str(error)
