"""Helpers for the toolsmith tests (imported by name: tests/ has no packages): short limits and a
definition factory."""
from __future__ import annotations

from toolsmith import SandboxLimits, ToolDefinition

# Short CPU limits keep the resource-bomb tests quick; the wall limit is generous because the
# test machine is shared (CPU seconds, not wall seconds, are what the bombs burn).
FAST = SandboxLimits(cpu_s=1, wall_s=15.0, memory_bytes=256 * 1024 * 1024)


def make_def(name: str = "double", body: str = "return 2 * x", params: dict | None = None,
             args: str = "x", sandbox: bool = True, description: str = "Double x.") -> dict:
    """A definition dict whose function ``name(args)`` has ``body`` (indented for you)."""
    if params is None:
        params = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"],
                  "additionalProperties": False}
    lines = body.split("\n")
    src = f"def {name}({args}):\n" + "\n".join("    " + ln for ln in lines) + "\n"
    return {"name": name, "description": description, "parameters": params,
            "implementation": src, "sandbox": sandbox}
