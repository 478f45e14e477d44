"""scripts/tool_wording_reach.py: a held-out wording goes to the tool its words point to."""


def test_stems_drop_function_words_and_endings(load_script):
    mod = load_script("tool_wording_reach")
    assert mod.stems("Counts the vowels in a string") == ["count", "vowel", "string"]


def test_a_wording_goes_to_its_tools_words_and_more_wordings_reach_further(capsys, load_script):
    mod = load_script("tool_wording_reach")
    base, more = mod.reach(False), mod.reach(True)
    rows = {r["tool"]: r for r in base["rows"]}
    assert len(rows) == base["wordings"] == 56
    # a wording whose distinctive word only its own tool's training requests use
    assert rows["is_leap_year"]["nearest"] == "is_leap_year"                  # "detects leap years"
    assert more["training_wordings"] > base["training_wordings"]
    assert more["unseen_stems"] < base["unseen_stems"] and more["nearest_right"] >= base["nearest_right"]
    assert mod.main(["--json"]) == 0 and '"nearest_right"' in capsys.readouterr().out


def test_blind_takes_every_tools_four_blind_wordings(load_script):
    mod = load_script("tool_wording_reach")
    blind = mod.reach(False, blind=True)
    assert blind["wordings"] == 4 * 56 and blind["blind"]
    assert {r["tool"] for r in blind["rows"]} == {r["tool"] for r in mod.reach(False)["rows"]}
    # tool_phrases.json's words reach the blind wordings too (they were written apart)
    assert mod.reach(True, blind=True)["nearest_right"] > blind["nearest_right"]
