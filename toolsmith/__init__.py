"""toolsmith: tool definitions, validation, approval, the registry and the two-layer sandbox.

Imports nothing of mosaic's (stdlib, RestrictedPython, jsonschema, platformdirs).

The tool definition JSON form (the curriculum generates exactly this; the model writes it in a
TOOL_DEF turn; ``mosaic tools propose FILE`` reads it)::

    {
      "name": "add",                                   # ^[a-z][a-z0-9_]{0,47}$, not a keyword or builtin
      "description": "Add two numbers.",               # 1-1024 printable characters
      "parameters": {                                  # a JSON-Schema object (Draft 2020-12):
        "type": "object",                              #   top level type object,
        "properties": {"a": {"type": "number"},        #   basic types + enum, depth <= 3,
                       "b": {"type": "number"}},       #   <= 16 properties, no $ref
        "required": ["a", "b"],
        "additionalProperties": false                  #   required at the top level
      },
      "implementation": "def add(a, b):\\n    return a + b\\n",
                                                       # Python source: exactly one top-level
                                                       # function named like the tool, whose
                                                       # arguments are the schema's properties
                                                       # (optional ones with a literal default);
                                                       # <= 8 KB, <= 200 lines, RestrictedPython
      "sandbox": true                                  # false = privileged: always needs a person
    }

Inside the sandbox a tool sees an allow-list of builtins (numbers, strings, containers, sorted,
min/max/sum, exceptions), ``math`` (a namespace copy), ``json_dumps``/``json_loads`` and
``print`` (collected, also readable as ``printed``); arguments and result are plain JSON.

Public API::

    ToolDefinition.from_json(str | dict) / .to_json() / .hash() / .validate(existing, reserved)
    ToolBuilder(existing, reserved).build(raw) -> BuildResult(definition | None, errors)
    ToolRegistry(path=None, policy=ToolPolicy()) : propose / approve / reject / call / deprecate ...
    run_source(source, name, args, restricted=True, limits=SandboxLimits()) -> RunResult
"""
from toolsmith.builder import BuildResult, ToolBuilder
from toolsmith.builtin import BUILTIN_NAMES, BUILTIN_TOOLS
from toolsmith.definition import DefinitionError, ToolDefinition, ValidationError
from toolsmith.policy import ToolPolicy
from toolsmith.registry import (ProposalOutcome, RegistryError, ToolRecord, ToolRegistry,
                                default_db_path, mosaic_home)
from toolsmith.sandbox import RunResult, SandboxLimits, run_source

__all__ = [
    "BUILTIN_NAMES", "BUILTIN_TOOLS", "BuildResult", "DefinitionError", "ProposalOutcome",
    "RegistryError", "RunResult", "SandboxLimits", "ToolBuilder", "ToolDefinition", "ToolPolicy",
    "ToolRecord", "ToolRegistry", "ValidationError", "default_db_path", "mosaic_home", "run_source",
]
