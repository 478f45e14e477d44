"""engine.call_copy: a tool call's argument values are written as spans of the request."""
from __future__ import annotations

import json
import random
import re

import pytest
import torch

from engine.call_copy import CallCopier, ResultCopier, restrict
from prompts.stream import shown_result

HEAD = '{"name": "some_tool", "args": {'
WORDS = ("dog", "fovos", "a", "Zas", "river-bank", "it's", "x1", "don", "donkey")


def _request(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 5))]
    nums = [str(rng.randint(-50, 5000)) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.5:
        nums.append(f"{rng.randint(0, 99)}.{rng.randint(0, 99)}")
    parts = [f"'{' '.join(words)}'", *nums, "please?"]
    rng.shuffle(parts)
    return " ".join(parts)


def _write(copier: CallCopier, text: str, rng: random.Random, stop: set[int],
           among: set[int] | None = None, limit: int = 200) -> str:
    """Append random bytes the copier allows (and ``among`` keeps) until one of ``stop``; returns
    what was written, the stop byte included."""
    out = ""
    for _ in range(limit):
        allowed = copier.allowed(text + out)
        assert allowed, (text + out, copier.source)
        b = rng.choice(sorted(allowed & among if among is not None else allowed))
        if b in stop:
            return out + chr(b)
        out += chr(b)
    raise AssertionError(f"no end after {limit} bytes: {out!r}")


@pytest.mark.parametrize("seed", range(40))
def test_a_string_value_written_under_the_mask_is_a_whole_span_of_the_request(seed):
    rng = random.Random(seed)
    src = _request(rng)
    copier = CallCopier(src)
    assert copier.allowed(HEAD + '"text": "') is None       # the first character is the model's
    # a model that begins a word of the request
    first = rng.choice([m.group()[0] for m in re.finditer(r"[^\s'\"]+", src)])
    value = first + _write(copier, HEAD + '"text": "' + first, rng, {ord('"')})[:-1]
    assert value and value in src
    # it starts a word and ends where no letter or digit follows, at one place at least
    spans = [m.start() for m in re.finditer(re.escape(value), src)]
    assert any((i == 0 or not src[i - 1].isalnum()) and
               (i + len(value) == len(src) or not src[i + len(value)].isalnum()) for i in spans)


NUMBER_START = set(b"0123456789-")
NUMBER_END = set(b",}] \n")


def _number(copier: CallCopier, text: str, rng: random.Random) -> str:
    """A number value written under the mask after ``text`` (where a value starts), by a model that
    begins one of the request's numbers where the mask leaves the first digit free."""
    allowed = copier.allowed(text)
    first = chr(rng.choice(sorted({ord(n[0]) for n in re.findall(r"-?\d+", copier.source)}))) \
        if allowed is None else _write(copier, text, rng, NUMBER_START, among=NUMBER_START)
    return first + _write(copier, text + first, rng, NUMBER_END)[:-1]


@pytest.mark.parametrize("seed", range(40))
def test_a_number_value_written_under_the_mask_is_a_whole_number_of_the_request(seed):
    rng = random.Random(seed)
    src = _request(rng) + f" {rng.randint(0, 999)}"
    numbers = re.findall(r"-?\d+(?:\.\d+)?", src)
    copier = CallCopier(src)
    value = _number(copier, HEAD + '"n": ', rng)
    assert value in numbers
    # in a list, each item after a comma is again a whole number of the request
    text = HEAD + '"xs": [' + value + ", "
    assert _number(copier, text, rng) in numbers


def test_where_no_value_is_written_nothing_is_masked():
    c = CallCopier("please make 'good day' upper case")
    head = '{"name": "to_upper", '
    for text in ("", '{"na', head + '"ar', head + '"args": {"te', head + '"args": {"text": "good day"}',
                 head + '"args": {"text": "good day"}}'):
        assert c.allowed(text) is None, text
    # no number in the request: a value may start however the model likes
    assert c.allowed('{"name": "to_upper", "args": {"text": ') is None


def test_the_mask_follows_the_request_and_lets_go_of_a_value_it_cannot_continue():
    c = CallCopier("please make 'good day' upper case")
    head = '{"name": "to_upper", "args": {"text": "'
    assert c.allowed(head + "goo") == {ord("d")}
    assert c.allowed(head + "good") == {ord(" ")}                     # quoted: it ends at its quote
    assert c.allowed(head + "good day") == {ord('"')}
    free = CallCopier("please make good day upper case")
    assert free.allowed(head + "good") == {ord(" "), ord('"')}       # go on, or close at a word's end
    assert ord('"') not in c.allowed(head + "goo")                    # never inside a word
    assert c.allowed(head + "gox") is None                            # not in the request: free
    assert c.allowed(head + 'g\\"') is None                           # escapes: free
    assert c.allowed(head) is None                     # the first character is free (a value from memory)
    assert c.allowed(head + "u") == {ord("p")}         # "upper": a word of the request goes on
    n = CallCopier("what is 138 plus 583?")
    nums = '{"name": "add_numbers", "args": {"a": '
    assert n.allowed(nums) is None                  # any value, a number the request does not hold too
    assert n.allowed(nums + "7") is None and n.allowed(nums + "1") == {ord("3")}
    assert n.allowed(nums + "13") == {ord("8")}                       # no early end inside a number
    assert ord(",") in n.allowed(nums + "138") and ord("8") not in n.allowed(nums + "138")
    assert n.allowed(nums + "138, \"b\": 5") == {ord("8")}


def test_restrict_masks_everything_outside_the_allowed_bytes():
    logits = torch.randn(2, 256)
    assert restrict(logits, None) is logits
    out = restrict(logits, {3, 200})
    assert torch.equal(out[:, [3, 200]], logits[:, [3, 200]])
    keep = torch.zeros(256, dtype=torch.bool)
    keep[[3, 200]] = True
    assert torch.isinf(out[:, ~keep]).all() and (out[:, ~keep] < 0).all()
    assert out.argmax(-1).tolist() == [3 if logits[i, 3] > logits[i, 200] else 200 for i in range(2)]


def test_a_call_written_under_the_mask_parses_when_the_model_closes_it():
    c = CallCopier("in 'dog fovos' replace 'dog' with 'zas', 3 times")
    text = '{"name": "replace_word", "args": {"text": "'
    for part in ("dog fovos", '", "old": "', "dog", '", "times": ', "3", "}}"):
        for ch in part:
            allowed = c.allowed(text)
            assert allowed is None or ord(ch) in allowed, (text, ch)
            text += ch
    assert json.loads(text)["args"] == {"text": "dog fovos", "old": "dog", "times": 3}


def _reply(copier: ResultCopier, written: str, reads: list[bool], rng: random.Random) -> str:
    """A reply written under the mask: ``written`` is what the model would write (any byte where
    the mask leaves it free), ``reads`` whether its opcode at each byte is READ_MEM."""
    out, i = "", 0
    while i < len(written):
        allowed = copier.allowed(out, reads[min(len(out), len(reads)) - 1] if out else False)
        out += written[i] if allowed is None else chr(rng.choice(sorted(allowed)))
        i += 1
    return out


@pytest.mark.parametrize("seed", range(30))
def test_a_reply_that_turns_to_reading_memory_shows_the_result_whole(seed):
    rng = random.Random(seed)
    result = _request(rng)
    lead = rng.choice(("done: ", "the result is ", "here it is: "))
    garbled = "".join(rng.choice("abcXYZ 12") for _ in range(len(result)))
    # READ_MEM from the lead-in's last byte on (the curriculum's labels), or later, mid-value
    late = rng.randint(0, 3)
    reads = [False] * (len(lead) - 1 + late) + [True] * (len(result) + 5)
    written = lead + result[:late] + garbled + ". ok"
    reply = _reply(ResultCopier(result), written, reads, rng)
    # the whole result, then the curriculum's end of a reply (".", END): nothing more of the value
    shown = [lead + result + ".\n", lead + result[:late] + result + ".\n"]
    end = next(len(s) for s in shown if reply.startswith(s))
    assert reply[end:] == written[end:]                   # free after it (chat stops at END)


def test_the_result_is_copied_from_where_the_reply_turns_to_reading_memory():
    r = ResultCopier("YAD DOOG")
    assert r.allowed("done:", False) is None                 # not reading: free
    assert r.allowed("done: ", True) == {ord("Y")}           # the copy begins at the result's start
    assert r.allowed("done: YA", False) == {ord("D")}        # and goes on whatever the opcode
    assert r.allowed("done: YAD DOOG", True) == {ord(".")}  # then the reply ends as the curriculum's
    assert r.allowed("done: YAD DOOG.", False) == {ord("\n")}
    assert r.allowed("done: YAD DOOG.\n", True) is None and r.done
    assert r.allowed("done: YAD DOOG.\nx", True) is None     # one copy per reply
    resumed = ResultCopier("YAD DOOG")                       # the reply wrote its start already
    assert resumed.allowed("done: YA", True) == {ord("D")}
    assert ResultCopier("YAD DOOG").allowed("done: DYA", True) == {ord("Y")}   # mid-word: from the start
    assert ResultCopier("café").allowed("done: ", True) is None                # non-ASCII: free
    assert shown_result("text") == "text" and shown_result(3.5) == "3.5" and shown_result([1, 2]) == "[1, 2]"


def test_an_array_copies_the_requests_list_in_its_order():
    c = CallCopier("add up 37, 49, 5, 17 for 2 days")
    head = '{"name": "sum_list", "args": {"numbers": ['
    assert c.allowed(head) == {ord("3")} | set(b'"[{tfn ')            # the first item: where the list begins
    assert c.allowed(head + "37, ") == {ord("4")} | set(b'"[{tfn ')   # then the next one
    assert c.allowed(head + "37, 4") == {ord("9")}
    assert c.allowed(head + "37, 49, 5") == set(b", ")     # 5, not 5x: it ends, and the list goes on
    # out of the request's order (only where the model left the mask: a value it wrote freely)
    assert c.allowed(head + "49, ") == {ord("5")} | set(b'"[{tfn ')
    assert c.allowed(head + "17, 37, ") >= {ord("4"), ord("2")}       # not the request's order: any
    words = CallCopier("how often does 'stone' occur in river, paper, apple, stone, apple?")
    head = '{"name": "count_items", "args": {"items": ['
    assert words.allowed(head + '"') == {ord("r")}                    # not 'stone', 'occur' nor 'how'
    assert words.allowed(head + '"river", "') == {ord("p")}
    assert words.allowed(head + '"river", "paper", "apple", "stone", "') == {ord("a")}
    assert words.allowed(head + '"river", "paper", "apple", "stone", "apple') == {ord('"'), ord("?")}
    assert words.allowed(head + '"stone", "') == {ord("o"), ord("a")}  # after either "stone"
    # no list in the request: the first value may start at any word
    assert CallCopier("reverse 'dog'").allowed(head + '"') == {ord("r"), ord("d")}
    assert CallCopier("sort 5 3 9").allowed('{"name": "s", "args": {"xs": [') == {ord("5")} | set(b'"[{tfn ')


def test_an_array_ends_where_the_requests_list_ends():
    words = CallCopier("reverse the list dog, fovos and zas please")
    head = '{"name": "reverse_list", "args": {"items": ['
    assert words.allowed(head + '"dog"') == {ord(",")}               # the list goes on: so does the array
    assert words.allowed(head + '"dog", "fovos", "zas"') == {ord("]")}
    assert words.allowed(head + '"dog", "fovos", "zas" ') == {ord("]")}
    assert words.allowed(head + '"zas"') == {ord("]")}                # ended, wherever it began
    nums = CallCopier("what is the average of 37, 49, 5 and 17?")
    head = '{"name": "average", "args": {"numbers": ['
    assert nums.allowed(head + "37, 49, 5") == set(b", ")            # not closed before the list ends
    assert nums.allowed(head + "37, 49, 5, 17") == set(b"}] \n")      # no comma after the last
    spaced = CallCopier("sort 5 3 9")
    head = '{"name": "sort_ascending", "args": {"numbers": ['
    assert ord(",") in spaced.allowed(head + "5") and ord(",") not in spaced.allowed(head + "5, 3, 9")
    # outside an array a number ends as before
    assert ord(",") in CallCopier("what is 4 to the power of 2?").allowed('{"name": "p", "args": {"base": 4')


def test_the_args_keys_are_the_named_tools_parameters_each_once():
    params = {"replace_word": ["text", "old", "new"], "to_upper": ["text"]}
    c = CallCopier("in 'dog fovos' replace 'dog' with 'zas'", params)
    head = '{"name": "replace_word", "args": {"'
    assert c.allowed(head) == {ord("t"), ord("o"), ord("n")}
    assert c.allowed(head + "ol") == {ord("d")} and c.allowed(head + "old") == {ord('"')}
    assert c.allowed(head + 'text": "dog fovos", "') == {ord("o"), ord("n")}     # each once
    assert c.allowed(head + "item") is None                  # nothing left to match: the model's bytes
    # a tool the copier has no parameters for, or none named: keys as the model writes them
    assert c.allowed('{"name": "nosuch", "args": {"') is None
    assert CallCopier("x").allowed(head) is None
    # keys of a nested object are not the tool's parameters
    assert c.allowed(head + 'text": {"') is None


def test_the_args_object_ends_once_every_parameter_is_given():
    params = {"reverse_list": ["items"], "repeat_text": ["text", "times"]}
    lists = CallCopier("reverse the list apple, stone and river", params)
    head = '{"name": "reverse_list", "args": {"items": ["apple", "stone", "river"]'
    assert lists.allowed(head) == {ord("}")} and lists.allowed(head + " ") == {ord("}")}
    rep = CallCopier("repeat 'zunibo' 3 times", params)
    head = '{"name": "repeat_text", "args": {"text": "zunibo"'
    assert rep.allowed(head) is None                              # "times" is still to come
    assert rep.allowed(head + ', "times": 3') >= {ord("}")}            # a number ends as before
    assert rep.allowed(head + ', "times": 3 ') == {ord("}")}          # then the object does


def test_a_list_result_is_copied_from_its_opening_bracket_without_reading_memory():
    r = ResultCopier('["zas", "fovos", "dog"]')
    assert r.allowed("here it is: ", False) is None
    assert r.allowed("here it is: [", False) == {ord('"')}          # the bracket begins the copy
    assert r.allowed('here it is: ["zas", "fovos", "dog"]', False) == {ord(".")}
    assert r.allowed('here it is: ["zas", "fovos", "dog"].\n', False) is None and r.done
    assert ResultCopier("dog fovos").allowed("done: do", False) is None   # a word's start is not enough
    assert ResultCopier('{"a": 1}').allowed("it is {", False) == {ord('"')}
