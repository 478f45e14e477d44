"""Validation rules for a tool definition. Each rule reports the field it concerns.

Rules (research/reliability.md §4, intersecting MCP, OpenAI and Strands):
  name        ^[a-z][a-z0-9_]{0,47}$, not a keyword, no reserved prefix, no collision (case-folded)
              with Python builtins, the sandbox's own names, built-in tools or existing tools
  description 1-1024 printable characters; no control, bidi or zero-width characters
  parameters  Draft 2020-12 valid; top level ``type: object`` with ``additionalProperties: false``;
              only basic types and ``enum``; depth <= 3; <= 16 properties per object; no ``$ref``;
              every ``required`` entry in ``properties``
  source      <= 8 KB and 200 lines; no control/bidi/zero-width characters; ASCII identifiers only
              (look-alikes); exactly one top-level ``def <name>(...)`` and nothing else; literal
              defaults only; no decorators; arguments == the schema's properties (optional ones
              need a default); compiles under ``compile_restricted`` (plain ``compile`` when
              privileged)
"""
from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import tokenize
import unicodedata
from typing import Any

from toolsmith.definition import ToolDefinition, ValidationError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
RESERVED_PREFIXES = ("mcp__", "sys_", "mosaic_", "builtin_")
MAX_DESCRIPTION = 1024
MAX_SOURCE_BYTES = 8 * 1024
MAX_SOURCE_LINES = 200
MAX_PROPERTIES = 16
MAX_DEPTH = 3
BASIC_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
# Keywords that only describe or bound plain values. No $ref/$defs, combinators, conditionals,
# or `pattern` (a regex from the model would run in the parent: ReDoS).
ALLOWED_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "description",
    "title", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "$schema",
})
# Names the sandbox puts in a tool's globals (see sandbox runner) and RestrictedPython's magic ones.
SANDBOX_NAMES = frozenset({"math", "json_dumps", "json_loads", "printed", "print"})
# Bidi embeddings/overrides/isolates, marks, zero-width characters and BOM (CVE-2021-42574).
INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                      "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u061c\ufeff\u180e")


def python_builtin_names() -> frozenset[str]:
    return frozenset(n.casefold() for n in dir(builtins))


def validate_definition(defn: ToolDefinition, existing: set[str] | frozenset[str] = frozenset(),
                        reserved: set[str] | frozenset[str] = frozenset()) -> list[ValidationError]:
    """All errors of ``defn``. ``existing``: names of tools already known (a collision is an
    error); ``reserved``: further names to refuse, e.g. the built-in tools."""
    errors: list[ValidationError] = []
    errors += check_name(defn.name, existing, reserved)
    errors += check_description(defn.description)
    errors += check_parameters(defn.parameters)
    errors += check_source(defn.implementation, defn.name, defn.parameters, defn.sandbox)
    return errors


# ---- name ------------------------------------------------------------------------------------
def check_name(name: str, existing: set[str] | frozenset[str] = frozenset(),
               reserved: set[str] | frozenset[str] = frozenset()) -> list[ValidationError]:
    errs: list[ValidationError] = []
    if not name.isascii():
        return [ValidationError("name", "must be ASCII (look-alike characters are refused)")]
    if not NAME_RE.match(name):
        return [ValidationError("name", "must match ^[a-z][a-z0-9_]{0,47}$ "
                                        "(lowercase letter, then up to 47 of a-z 0-9 _)")]
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        errs.append(ValidationError("name", f"{name!r} is a Python keyword"))
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            errs.append(ValidationError("name", f"the prefix {prefix!r} is reserved"))
    folded = name.casefold()
    if folded in python_builtin_names() or folded in SANDBOX_NAMES:
        errs.append(ValidationError("name", f"{name!r} collides with a Python or sandbox builtin"))
    if folded in {r.casefold() for r in reserved}:
        errs.append(ValidationError("name", f"{name!r} collides with a built-in tool"))
    if folded in {e.casefold() for e in existing}:
        errs.append(ValidationError("name", f"a tool named {name!r} already exists"))
    return errs


# ---- description -------------------------------------------------------------------------------
def check_description(text: str) -> list[ValidationError]:
    if not 1 <= len(text) <= MAX_DESCRIPTION:
        return [ValidationError("description", f"must be 1-{MAX_DESCRIPTION} characters, got {len(text)}")]
    for i, ch in enumerate(text):
        if ch in INVISIBLE or not ch.isprintable():
            what = unicodedata.name(ch, f"U+{ord(ch):04X}")
            return [ValidationError("description", f"character {i} ({what}) is a control, bidi or "
                                                   "zero-width character")]
    return []


# ---- parameters ------------------------------------------------------------------------------
def check_parameters(schema: Any) -> list[ValidationError]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return [ValidationError("parameters", "must be a JSON object")]
    errs: list[ValidationError] = []
    if "$ref" in _all_keys(schema):
        return [ValidationError("parameters", "$ref is not allowed")]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        return [ValidationError("parameters" + (f".{where}" if where else ""),
                                f"not a valid JSON Schema: {exc.message}")]
    except RecursionError:
        return [ValidationError("parameters", "nested too deeply")]
    if schema.get("type") != "object":
        errs.append(ValidationError("parameters.type", 'the top level must be {"type": "object"}'))
    if schema.get("additionalProperties") is not False:
        errs.append(ValidationError("parameters.additionalProperties", "must be false at the top level"))
    if not isinstance(schema.get("properties", {}), dict):
        errs.append(ValidationError("parameters.properties", "must be an object"))
        return errs
    for name in schema.get("properties", {}):
        if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name) or name.startswith("_"):
            errs.append(ValidationError(f"parameters.properties.{name[:48]}",
                                        "must be an ASCII Python identifier, not a keyword, not starting with _"))
    errs += _check_node(schema, "parameters", depth=1)
    return errs


def _all_keys(node: Any, depth: int = 0) -> set[str]:
    keys: set[str] = set()
    if depth > 50:
        return keys
    if isinstance(node, dict):
        for k, v in node.items():
            keys.add(k)
            keys |= _all_keys(v, depth + 1)
    elif isinstance(node, list):
        for v in node:
            keys |= _all_keys(v, depth + 1)
    return keys


def _check_node(node: Any, where: str, depth: int) -> list[ValidationError]:
    if not isinstance(node, dict):
        return [ValidationError(where, "each schema must be an object")]
    if depth > MAX_DEPTH:
        return [ValidationError(where, f"nested deeper than {MAX_DEPTH} levels")]
    errs: list[ValidationError] = []
    for key in node:
        if key not in ALLOWED_KEYWORDS:
            errs.append(ValidationError(f"{where}.{key}", "keyword not allowed (basic types and enum only)"))
    typ = node.get("type")
    types = typ if isinstance(typ, list) else [typ]
    if typ is None and "enum" not in node:
        errs.append(ValidationError(f"{where}.type", "every schema needs a type or an enum"))
    elif typ is not None and any(t not in BASIC_TYPES for t in types):
        errs.append(ValidationError(f"{where}.type", f"only {sorted(BASIC_TYPES)}"))
    if "enum" in node and any(isinstance(v, (dict, list)) for v in node["enum"]):
        errs.append(ValidationError(f"{where}.enum", "enum values must be scalars"))
    props = node.get("properties", {})
    if isinstance(props, dict):
        if len(props) > MAX_PROPERTIES:
            errs.append(ValidationError(f"{where}.properties", f"{len(props)} properties; at most {MAX_PROPERTIES}"))
        for name, sub in props.items():
            errs += _check_node(sub, f"{where}.properties.{name[:48]}", depth + 1)
    for req in node.get("required", []):
        if req not in props:
            errs.append(ValidationError(f"{where}.required", f"{req!r} is not in properties"))
    ap = node.get("additionalProperties")
    if isinstance(ap, dict):
        errs += _check_node(ap, f"{where}.additionalProperties", depth + 1)
    if "items" in node:
        items = node["items"]
        if isinstance(items, dict):
            errs += _check_node(items, f"{where}.items", depth + 1)
        else:
            errs.append(ValidationError(f"{where}.items", "must be one schema object"))
    return errs


# ---- source ----------------------------------------------------------------------------------
def check_source(source: str, name: str, parameters: Any, sandbox: bool = True) -> list[ValidationError]:
    """Size, characters, structure, argument match and restricted compilation of ``source``."""
    f = "implementation"
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        return [ValidationError(f, f"{size} bytes; at most {MAX_SOURCE_BYTES}")]
    lines = source.count("\n") + 1
    if lines > MAX_SOURCE_LINES:
        return [ValidationError(f, f"{lines} lines; at most {MAX_SOURCE_LINES}")]
    for i, ch in enumerate(source):
        if ch in INVISIBLE or (unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t"):
            line = source.count("\n", 0, i) + 1
            return [ValidationError(f, f"line {line}: control, bidi or zero-width character "
                                       f"U+{ord(ch):04X}")]
    try:
        tree = ast.parse(source, filename=f"<tool:{name}>")
    except SyntaxError as exc:
        return [ValidationError(f, f"line {exc.lineno}: syntax error: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:  # deep nesting (bpo-32758)
        return [ValidationError(f, f"cannot be parsed: {type(exc).__name__}")]
    errs = _check_identifiers(source)
    errs += _check_structure(tree, name, parameters)
    errs += _check_compiles(source, name, sandbox)
    return errs


def _check_identifiers(source: str) -> list[ValidationError]:
    # The AST has identifiers NFKC-normalised already, so look at the raw tokens.
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and not tok.string.isascii():
                return [ValidationError("implementation", f"line {tok.start[0]}: non-ASCII identifier "
                                                          f"{ascii(tok.string)} (look-alike risk)")]
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse already accepted it; tokenize quirks are not a rule
    return []


def _check_structure(tree: ast.Module, name: str, parameters: Any) -> list[ValidationError]:
    f = "implementation"
    body = tree.body
    defs = [n for n in body if isinstance(n, ast.FunctionDef)]
    errs: list[ValidationError] = []
    for node in body:
        if not isinstance(node, ast.FunctionDef):
            errs.append(ValidationError(f, f"line {node.lineno}: only one function definition may "
                                           f"stand at top level, found {type(node).__name__}"))
    if len(defs) != 1:
        errs.append(ValidationError(f, f"must define exactly one top-level function, found {len(defs)}"))
        return errs
    fn = defs[0]
    if fn.name != name:
        errs.append(ValidationError(f, f"the function is named {fn.name!r}; it must be named {name!r}"))
    if fn.decorator_list:
        errs.append(ValidationError(f, "decorators are not allowed"))
    a = fn.args
    if a.posonlyargs or a.vararg or a.kwarg:
        errs.append(ValidationError(f, "no positional-only, *args or **kwargs parameters"))
    for default in a.defaults + [d for d in a.kw_defaults if d is not None]:
        try:
            ast.literal_eval(default)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            errs.append(ValidationError(f, f"line {default.lineno}: defaults must be literals"))
    for arg in a.posonlyargs + a.args + a.kwonlyargs:
        if arg.annotation is not None and any(isinstance(n, ast.Call) for n in ast.walk(arg.annotation)):
            errs.append(ValidationError(f, f"annotation of {arg.arg!r} must not call anything"))
    if fn.returns is not None and any(isinstance(n, ast.Call) for n in ast.walk(fn.returns)):
        errs.append(ValidationError(f, "the return annotation must not call anything"))
    if isinstance(parameters, dict) and isinstance(parameters.get("properties", {}), dict):
        props = set(parameters.get("properties", {}))
        required = set(parameters.get("required", []))
        args = [x.arg for x in a.args + a.kwonlyargs]
        if set(args) != props:
            missing, extra = sorted(props - set(args)), sorted(set(args) - props)
            errs.append(ValidationError(f, "the function's arguments must be exactly the schema's "
                                           f"properties (missing {missing}, not in schema {extra})"))
        with_default = {x.arg for x in a.args[len(a.args) - len(a.defaults):]}
        with_default |= {x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None}
        for arg in args:
            if arg in props and arg not in required and arg not in with_default:
                errs.append(ValidationError(f, f"optional parameter {arg!r} needs a default value"))
    return errs


def _check_compiles(source: str, name: str, sandbox: bool) -> list[ValidationError]:
    f = "implementation"
    if not sandbox:
        try:
            compile(source, f"<tool:{name}>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return [ValidationError(f, f"does not compile: {exc}")]
        return []
    from RestrictedPython import compile_restricted_exec
    try:
        result = compile_restricted_exec(source, filename=f"<tool:{name}>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return [ValidationError(f, f"does not compile under RestrictedPython: {type(exc).__name__}")]
    return [ValidationError(f, f"RestrictedPython: {msg}") for msg in result.errors]
