"""A few vetted tools the model can call from the start. They are ordinary sandboxed definitions,
reviewed here in code, registered as approved by ``builtin`` and never deprecated."""
from __future__ import annotations

from toolsmith.definition import ToolDefinition


def _num(desc: str) -> dict:
    return {"type": "number", "description": desc}


BUILTIN_TOOLS: tuple[ToolDefinition, ...] = (
    ToolDefinition(
        name="add",
        description="Add two numbers and return the sum.",
        parameters={"type": "object", "properties": {"a": _num("first addend"), "b": _num("second addend")},
                    "required": ["a", "b"], "additionalProperties": False},
        implementation="def add(a, b):\n    return a + b\n",
    ),
    ToolDefinition(
        name="multiply",
        description="Multiply two numbers and return the product.",
        parameters={"type": "object", "properties": {"a": _num("first factor"), "b": _num("second factor")},
                    "required": ["a", "b"], "additionalProperties": False},
        implementation="def multiply(a, b):\n    return a * b\n",
    ),
    ToolDefinition(
        name="word_count",
        description="Count the words (runs of non-space characters) in a text.",
        parameters={"type": "object", "properties": {"text": {"type": "string", "maxLength": 100000}},
                    "required": ["text"], "additionalProperties": False},
        implementation="def word_count(text):\n    return len(text.split())\n",
    ),
    ToolDefinition(
        name="reverse_text",
        description="Return the text with its characters in reverse order.",
        parameters={"type": "object", "properties": {"text": {"type": "string", "maxLength": 100000}},
                    "required": ["text"], "additionalProperties": False},
        implementation="def reverse_text(text):\n    return text[::-1]\n",
    ),
    ToolDefinition(
        name="sort_numbers",
        description="Sort a list of numbers, ascending unless descending is true.",
        parameters={"type": "object",
                    "properties": {"numbers": {"type": "array", "items": {"type": "number"}, "maxItems": 10000},
                                   "descending": {"type": "boolean"}},
                    "required": ["numbers"], "additionalProperties": False},
        implementation=("def sort_numbers(numbers, descending=False):\n"
                        "    return sorted(numbers, reverse=descending)\n"),
    ),
)

BUILTIN_NAMES = frozenset(t.name for t in BUILTIN_TOOLS)
