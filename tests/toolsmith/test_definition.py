"""ToolDefinition: JSON form, canonical hash, shape errors; ToolBuilder."""
import json

import pytest

from toolsmith import BUILTIN_TOOLS, DefinitionError, ToolBuilder, ToolDefinition

from toolsmith_helpers import make_def


@pytest.fixture
def valid_def() -> ToolDefinition:
    return ToolDefinition.from_json(make_def())


def test_json_round_trip_and_stable_hash(valid_def):
    again = ToolDefinition.from_json(valid_def.to_json())
    assert again == valid_def
    assert again.hash() == valid_def.hash()
    # key order and whitespace do not change the hash; one byte of source does
    shuffled = json.dumps(dict(reversed(list(valid_def.to_dict().items()))), indent=3)
    assert ToolDefinition.from_json(shuffled).hash() == valid_def.hash()
    changed = make_def(body="return 2 * x ")
    assert ToolDefinition.from_json(changed).hash() != valid_def.hash()
    assert len(valid_def.hash()) == 64


def test_sandbox_defaults_to_true():
    d = make_def()
    del d["sandbox"]
    assert ToolDefinition.from_json(d).sandbox is True


@pytest.mark.parametrize("raw, field", [
    ("not json", "definition"),
    ("[1, 2]", "definition"),
    ("{" * 100000, "definition"),           # too big / absurdly nested
    (json.dumps({**make_def(), "extra": 1}), "extra"),
    (json.dumps({k: v for k, v in make_def().items() if k != "name"}), "name"),
    (json.dumps({**make_def(), "parameters": "object"}), "parameters"),
    (json.dumps({**make_def(), "sandbox": "yes"}), "sandbox"),
    (json.dumps({**make_def(), "implementation": 5}), "implementation"),
])
def test_shape_errors_name_the_field(raw, field):
    with pytest.raises(DefinitionError) as info:
        ToolDefinition.from_json(raw)
    assert field in {e.field for e in info.value.errors}


def test_builder_returns_definition_or_errors():
    ok = ToolBuilder().build(json.dumps(make_def()))
    assert ok.ok and ok.definition.name == "double" and ok.errors == []
    bad = ToolBuilder().build(make_def(name="Double"))
    assert not bad.ok and bad.definition is None and bad.errors[0].field == "name"
    assert bad.hash is not None
    junk = ToolBuilder().build("{{{")
    assert not junk.ok and junk.hash is None


def test_builder_refuses_existing_and_reserved_names():
    res = ToolBuilder(existing={"double"}).build(make_def())
    assert any("already exists" in e.message for e in res.errors)
    res = ToolBuilder(reserved={"double"}).build(make_def())
    assert any("built-in tool" in e.message for e in res.errors)


def test_builtin_tools_pass_validation():
    for tool in BUILTIN_TOOLS:
        assert tool.validate() == [], tool.name
