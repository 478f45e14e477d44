"""engine.tool_names: the index that names a definition from its request's words, and the hint."""
from engine.curriculum import tools as toolset
from engine.curriculum.episodes import tool_request_prompt
from engine.eval.tools import request_of
from engine.tool_names import HEAD, NameHint, ToolIndex, curriculum_index, hint_for, stems, wording_of

CATALOGUE = {
    "to_upper": ["makes every letter a capital", "shouts a text"],
    "to_lower": ["turns capital letters into small ones", "puts every capital letter in lower case"],
    "add_numbers": ["adds two numbers", "sums a pair of numbers"],
}


def test_stems_drop_function_words_and_cut_common_suffixes():
    assert stems("The numbers of a list, counting words") == ["number", "list", "count", "word"]
    assert stems("it is in the") == []


def test_the_wording_is_what_follows_the_tool_frame():
    assert wording_of("could you put together a tool that adds two numbers?") == " adds two numbers?"
    assert wording_of("I would like a TOOL WHICH shouts") == " shouts"
    assert wording_of("adds two numbers") == "adds two numbers"      # no frame: all of it


def test_the_index_ranks_by_shared_rare_words_and_keeps_words_that_belong_together():
    index = ToolIndex(CATALOGUE)
    assert index.nearest("a tool that sums numbers")[0] == "add_numbers"
    # as bags, to_lower's wordings hold "capital" and "letter" as often as to_upper's; the single
    # wording that holds both settles it
    ranked = index.ranked("makes every letter a capital")
    assert [name for name, _ in ranked[:2]] == ["to_upper", "to_lower"] and ranked[0][1] > ranked[1][1]
    assert all(0.0 <= score <= 2.0 + 1e-9 for _, score in ranked)
    assert index.nearest("a tool that translates poems") is None      # no word of it is known


def test_the_curriculum_index_names_its_own_training_wordings():
    index = curriculum_index()
    rows = [(t.name, w) for t in toolset.TOOLS for w in toolset.phrases(t, "train", more=True)]
    right = sum(index.nearest(f"make a tool that {w}")[0] == name for name, w in rows)
    # a wording in the index is its own nearest single wording; only word-order twins and wordings
    # another tool's bag outweighs miss
    assert right / len(rows) > 0.97, right / len(rows)


def test_the_hint_forces_the_head_byte_by_byte_then_lets_go():
    hint = NameHint("to_upper")
    head = HEAD + 'to_upper"'
    for i in range(len(head)):
        assert hint.allowed(head[:i]) == {ord(head[i])}
    assert hint.allowed(head) is None and hint.allowed(head + ', "description"') is None
    assert hint_for("can you make a tool that makes every letter a capital?").name == "to_upper"
    assert hint_for("a tool that juggles quokkas") is None


def test_a_request_prefix_gives_back_the_persons_line():
    tool = toolset.TOOLS[3]
    prefix, _ = tool_request_prompt(tool, 0, "blind")
    line = request_of(prefix)
    assert line in prefix and "\n" not in line and toolset.BLIND_PHRASES[tool.name][0] in line
