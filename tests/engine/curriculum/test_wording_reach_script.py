"""scripts/tool_wording_reach.py: a held-out wording goes to the tool its words point to."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "tool_wording_reach.py"


def _script():
    spec = importlib.util.spec_from_file_location("tool_wording_reach", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stems_drop_function_words_and_endings():
    mod = _script()
    assert mod.stems("Counts the vowels in a string") == ["count", "vowel", "string"]


def test_held_out_wordings_with_their_tools_words_are_named_right_and_more_wordings_reach_further(capsys):
    mod = _script()
    base, more = mod.reach(False), mod.reach(True)
    rows = {r["tool"]: r for r in base["rows"]}
    assert len(rows) == base["tools"] == 56
    # a wording whose distinctive word only its own tool's training requests use
    assert rows["is_leap_year"]["nearest"] == "is_leap_year"                  # "detects leap years"
    assert more["training_wordings"] > base["training_wordings"]
    assert more["unseen_stems"] < base["unseen_stems"] and more["nearest_right"] >= base["nearest_right"]
    assert mod.main(["--json"]) == 0 and '"nearest_right"' in capsys.readouterr().out
