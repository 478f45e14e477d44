"""The tool definition: its JSON form, canonical encoding and hash.

A definition is plain data (see the package docstring for the JSON form).
``ToolDefinition.from_json`` checks only the *shape* (an object with the five
fields of the right JSON types); every content rule lives in ``validate.py``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

FIELDS = ("name", "description", "parameters", "implementation", "sandbox")
MAX_PROPOSAL_BYTES = 64 * 1024  # a whole proposal; the source alone is capped lower


@dataclass(frozen=True)
class ValidationError:
    """One problem with a definition: ``field`` names what it concerns (e.g. ``parameters.properties.x``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class DefinitionError(ValueError):
    """A proposal that is not even shaped like a definition; ``errors`` lists why."""

    def __init__(self, errors: list[ValidationError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class ToolDefinition:
    """A tool: ``name``, ``description``, ``parameters`` (a JSON-Schema object), ``implementation``
    (Python source defining one top-level function called ``name``) and ``sandbox`` (False = privileged)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)
    implementation: str
    sandbox: bool = True

    # ---- JSON form -------------------------------------------------------------------------
    @classmethod
    def from_json(cls, raw: str | bytes | dict[str, Any]) -> "ToolDefinition":
        """Parse a definition from JSON text or an already-decoded dict; raises DefinitionError."""
        if isinstance(raw, (str, bytes)):
            if len(raw) > MAX_PROPOSAL_BYTES:
                raise DefinitionError([ValidationError(
                    "definition", f"proposal is {len(raw)} bytes; the limit is {MAX_PROPOSAL_BYTES}")])
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
                raise DefinitionError([ValidationError("definition", f"not valid JSON: {exc}")]) from None
        else:
            data = raw
        if not isinstance(data, dict):
            raise DefinitionError([ValidationError("definition", "must be a JSON object")])
        errors: list[ValidationError] = []
        for key in data:
            if key not in FIELDS:
                errors.append(ValidationError(str(key)[:64], "unknown field"))
        expected = {"name": str, "description": str, "parameters": dict, "implementation": str,
                    "sandbox": bool}
        for key, typ in expected.items():
            if key not in data:
                if key != "sandbox":
                    errors.append(ValidationError(key, "missing"))
            elif not isinstance(data[key], typ):
                errors.append(ValidationError(key, f"must be a JSON {_json_type_name(typ)}"))
        if errors:
            raise DefinitionError(errors)
        try:  # the parameters must survive a JSON round trip (no NaN, no non-str keys)
            params = json.loads(json.dumps(data["parameters"], allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise DefinitionError([ValidationError("parameters", f"not plain JSON: {exc}")]) from None
        return cls(name=data["name"], description=data["description"], parameters=params,
                   implementation=data["implementation"], sandbox=data.get("sandbox", True))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters,
                "implementation": self.implementation, "sandbox": self.sandbox}

    def to_json(self, indent: int | None = None) -> str:
        """The definition as JSON text (``indent`` for people; the canonical form is ``canonical()``)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def canonical(self) -> bytes:
        """Canonical UTF-8 JSON: sorted keys, no spaces. What the hash and the registry store."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    def hash(self) -> str:
        """Stable sha256 (hex) of ``canonical()``; approvals are bound to it."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def validate(self, existing: set[str] | frozenset[str] = frozenset(),
                 reserved: set[str] | frozenset[str] = frozenset()) -> list[ValidationError]:
        """Every rule this definition breaks (empty list = valid); see ``toolsmith.validate``."""
        from toolsmith.validate import validate_definition
        return validate_definition(self, existing=existing, reserved=reserved)


def _json_type_name(typ: type) -> str:
    return {str: "string", dict: "object", bool: "boolean"}[typ]
