"""Every validation rule with a failing example, each reporting the field it concerns."""
import pytest

from toolsmith import ToolDefinition
from toolsmith_helpers import make_def

OBJ = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"],
       "additionalProperties": False}


def errors_of(d, **kw):
    return ToolDefinition.from_json(d).validate(**kw)


def params(props, required=(), **extra):
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False, **extra}


def test_valid_definition_has_no_errors():
    assert errors_of(make_def()) == []
    # optional argument with a default, keyword-only argument, nested array of objects
    p = params({"x": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
                "mode": {"enum": ["a", "b"]}}, ["x"])
    d = make_def(params=p, args="x, tags=None, *, mode='a'", body="return [x, tags, mode]")
    assert errors_of(d) == []


# ---- name ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "1tool", "my tool", "a" * 49, "os.system", "../x", "Double",
                                  "ｓｅａｒｃｈ", "s\u0435arch", "search\u200b", "_private"])
def test_name_rule(name):
    d = make_def()
    d["name"] = name
    errs = errors_of(d)
    assert errs and errs[0].field == "name"


@pytest.mark.parametrize("name, why", [
    ("print", "builtin"), ("eval", "builtin"), ("len", "builtin"), ("printed", "builtin"),
    ("math", "builtin"), ("class", "keyword"), ("match", "keyword"),
    ("mcp__x", "reserved"), ("sys_exec", "reserved"),
])
def test_name_collisions_keywords_and_prefixes(name, why):
    errs = errors_of(make_def(name=name))
    assert any(e.field == "name" and why in e.message for e in errs), errs


def test_name_collides_with_existing_and_builtin_tools_case_folded():
    errs = errors_of(make_def(name="search"), existing={"Search"})
    assert any(e.field == "name" and "already exists" in e.message for e in errs)
    errs = errors_of(make_def(name="add"), reserved={"add"})
    assert any(e.field == "name" and "built-in tool" in e.message for e in errs)


# ---- description -------------------------------------------------------------------------------
@pytest.mark.parametrize("desc", ["", "x" * 1025, "x" * 1_000_000, "evil \u202e txt", "line\nbreak",
                                  "ansi \x1b[31m red", "zero\u200bwidth", "bom\ufeff", "nul\x00"])
def test_description_rule(desc):
    errs = errors_of(make_def(description=desc))
    assert [e.field for e in errs] == ["description"]


# ---- parameters --------------------------------------------------------------------------------
@pytest.mark.parametrize("schema, field", [
    ({"type": "string"}, "parameters.type"),
    ({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
     "parameters.additionalProperties"),
    ({**OBJ, "additionalProperties": True}, "parameters.additionalProperties"),
    ({**OBJ, "properties": {"x": {"$ref": "#"}}}, "parameters"),
    ({**OBJ, "$defs": {"a": {"type": "string"}}}, "parameters.$defs"),
    ({**OBJ, "required": ["x", "y"]}, "parameters.required"),
    ({**OBJ, "properties": {"x": {"type": "integer", "pattern": "(a+)+$"}}}, "parameters.properties.x.pattern"),
    ({**OBJ, "properties": {"x": {"anyOf": [{"type": "integer"}]}}}, "parameters.properties.x.anyOf"),
    ({**OBJ, "properties": {"x": {"type": "date"}}}, "parameters.properties.x.type"),  # not Draft 2020-12
    ({**OBJ, "properties": {"x": {}}}, "parameters.properties.x.type"),
    ({**OBJ, "properties": {"x": {"enum": [[1]]}}}, "parameters.properties.x.enum"),
    ({**OBJ, "properties": {"x": {"type": "object", "properties": {"y": {"type": "object", "properties": {
        "z": {"type": "integer"}}}}}}}, "parameters.properties.x.properties.y.properties.z"),  # depth 4
    ({**OBJ, "required": [], "properties": {f"p{i}": {"type": "integer"} for i in range(17)}},
     "parameters.properties"),
    ({**OBJ, "required": [], "properties": {f"p{i}": {"type": "integer"} for i in range(1000)}},
     "parameters.properties"),
    ({**OBJ, "properties": {"x": {"type": "integer"}, "not ok": {"type": "string"}}}, "parameters.properties.not ok"),
    ({**OBJ, "properties": {"x": {"type": "integer"}, "lambda": {"type": "string"}}}, "parameters.properties.lambda"),
])
def test_parameters_rule(schema, field):
    errs = errors_of(make_def(params=schema))
    assert any(e.field == field for e in errs), errs


# ---- implementation --------------------------------------------------------------------------
@pytest.mark.parametrize("src, words", [
    ("def double(x):\n    return 1\n" + "#" * 9000, "bytes"),
    ("def double(x):\n" + "    y = 1\n" * 200 + "    return y\n", "lines"),
    ("x = " + "+0" * 200000 + "\n", "bytes"),
    ("def double(x):\n    return " + "-" * 5000 + "1\n", "cannot be parsed"),
    ("def double(x:\n", "syntax error"),
    ("def double(x):\n    return 1\ndef other(x):\n    return 2\n", "exactly one"),
    ("print(1)\ndef double(x):\n    return 1\n", "only one function definition"),
    ("import os\ndef double(x):\n    return 1\n", "only one function definition"),
    ('"""doc"""\ndef double(x):\n    return 1\n', "only one function definition"),
    ("def triple(x):\n    return 1\n", "must be named 'double'"),
    ("async def double(x):\n    return 1\n", "exactly one"),
    ("@staticmethod\ndef double(x):\n    return 1\n", "decorators"),
    ("def double(x, *rest):\n    return 1\n", "positional-only, *args"),
    ("def double(x, **kw):\n    return 1\n", "positional-only, *args"),
    ("def double(x, /):\n    return 1\n", "positional-only, *args"),
    ("def double(x=len('a')):\n    return 1\n", "defaults must be literals"),
    ("def double(x: open('/etc/passwd')):\n    return 1\n", "annotation"),
    ("def double(y):\n    return 1\n", "exactly the schema's properties"),
    ("def double(x, y=1):\n    return 1\n", "exactly the schema's properties"),
    ("def double(x):\n    return __import__('os')\n", "RestrictedPython"),
    ("def double(x):\n    return x.__class__\n", "RestrictedPython"),
    ("def double(x):\n    return eval('1')\n", "RestrictedPython"),
    ("def double(x):\n    return \u0435val('1')\n", "non-ASCII identifier"),
    ("def double(x):\n    return ｅｖａｌ('1')\n", "non-ASCII identifier"),
    ("def double(x):\n    s = 'a\u202eb'\n    return s\n", "bidi"),
    ("def double(x):\n    s = 'a\x1b[2Jb'\n    return s\n", "control"),
])
def test_implementation_rule(src, words):
    d = make_def()
    d["implementation"] = src
    errs = errors_of(d)
    assert errs and all(e.field == "implementation" for e in errs), errs
    assert any(words in e.message for e in errs), errs


def test_optional_parameter_needs_a_default():
    p = params({"x": {"type": "integer"}, "y": {"type": "integer"}}, ["x"])
    errs = errors_of(make_def(params=p, args="x, y"))
    assert any("needs a default" in e.message for e in errs)


def test_privileged_source_is_compiled_plainly():
    # an import is fine for a privileged tool (a person approves it); syntax still checked
    d = make_def(body="import os\nreturn os.getpid()", sandbox=False)
    assert errors_of(d) == []
    d = make_def(body="return __import__('os').getpid()", sandbox=True)
    assert errors_of(d)


def test_all_errors_reported_together():
    d = make_def(name="Bad Name", description="", params={"type": "string"})
    fields = {e.field for e in errors_of(d)}
    assert {"name", "description", "parameters.type"} <= fields


@pytest.mark.parametrize("body", [
    "return " + "not " * 1900 + "1",
    "return x" + ".a" * 3900,
    "return " + "~" * 7000 + "1",
    "return " + "[" * 2000 + "]" * 2000,
    "return " + "lambda: " * 900 + "1",
    "return x" + "[0]" * 2600,
])
def test_nesting_bombs_within_the_size_cap_are_refused_and_the_parent_survives(body):
    # ast.parse / compile can exhaust the C stack on deep nesting (bpo-32758); under the 8 KB cap
    # every such input must come back as an ordinary error.
    d = make_def(name="t", body=body)
    assert len(d["implementation"].encode()) <= 8192
    errs = errors_of(d)
    assert errs and errs[0].field == "implementation"
