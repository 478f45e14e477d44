"""ToolBuilder: a raw proposal (dict or JSON text) -> a validated ToolDefinition, or its errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolsmith.definition import DefinitionError, ToolDefinition, ValidationError


@dataclass
class BuildResult:
    """``definition`` is set only when ``errors`` is empty."""

    definition: ToolDefinition | None
    errors: list[ValidationError] = field(default_factory=list)
    hash: str | None = None  # the hash of the definition, even an invalid one (None if unparsable)

    @property
    def ok(self) -> bool:
        return self.definition is not None and not self.errors


class ToolBuilder:
    """Builds definitions against the names already taken (``existing``) and reserved (built-ins)."""

    def __init__(self, existing: set[str] | frozenset[str] = frozenset(),
                 reserved: set[str] | frozenset[str] = frozenset()):
        self.existing = set(existing)
        self.reserved = set(reserved)

    def build(self, raw: str | bytes | dict[str, Any] | ToolDefinition) -> BuildResult:
        """Parse and validate ``raw``; never raises for bad input."""
        try:
            defn = raw if isinstance(raw, ToolDefinition) else ToolDefinition.from_json(raw)
        except DefinitionError as exc:
            return BuildResult(None, list(exc.errors))
        errors = defn.validate(existing=self.existing, reserved=self.reserved)
        return BuildResult(None if errors else defn, errors, defn.hash())
