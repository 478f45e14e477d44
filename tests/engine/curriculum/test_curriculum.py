"""The curriculum: its labels agree with its text, it is deterministic, its splits are disjoint,
and every tool it teaches validates with toolsmith and passes its own tests in the sandbox."""
import json

import numpy as np
import pytest

import prompts
from prompts import stream
from engine.curriculum import (IMPULSE_KINDS, collate, impulse_example, recall_example, training_batch,
                               training_example)
from engine.curriculum import example as E
from engine.curriculum import tools as toolset
from engine.curriculum import vocab

NB = 256
STYLES = ("facts", "mixed", "tools", "agent")


def _examples(n=12, length=1024):
    return [training_example(s, length, NB, style=STYLES[s % 4]) for s in range(n)]


def test_opcodes_match_the_vm_instruction_set():
    from engine.vm import Opcode
    assert [op.name for op in Opcode] == list(E.OPCODE_NAMES)
    assert [int(op) for op in Opcode] == list(range(10))


def test_examples_have_the_requested_length_and_parse_as_turns():
    for ex in _examples(6, 700):
        assert len(ex) == 700
        text = ex.text()
        turns = stream.split_turns(text)
        assert turns, "no complete turn"
        assert text[0] in stream.ROLES  # a stream starts with a role byte
        assert all(role in stream.ROLE_BYTES for role, _ in turns)


def test_write_labels_are_exactly_the_told_value_bytes_and_their_end():
    n_ends = 0
    for ex in _examples():
        b_writes = np.flatnonzero(ex.opcode == E.WRITE_MEM)
        assert (ex.write_gate[b_writes] == 1).all()
        assert (ex.write_gate[ex.opcode != E.WRITE_MEM] == 0).all()
        assert (ex.bucket[b_writes] >= 0).all() and (ex.bucket[b_writes] < NB).all()
        text = bytes(ex.ids.tolist())
        # each run of WRITE positions is a value told in a user turn (a fact, or an argument a
        # tool call will repeat) or a tool result, or the name a tool definition chooses (the model
        # writes it: LM weight on it, none on told values), followed by its end marker: the byte
        # after the value, in the next offset's bucket (only a run cut off by the example's end has none)
        runs = np.split(b_writes, np.flatnonzero(np.diff(b_writes) != 1) + 1) if len(b_writes) else []
        for run in runs:
            if run[-1] == len(ex) - 1 and chr(ex.ids[run[-1]]).isalnum():
                continue  # cut inside the value
            run, end = run[:-1], run[-1]
            assert len(run) >= 1
            value = bytes(ex.ids[run].tolist()).decode()
            line_start = text.rfind(b"\n", 0, run[0]) + 1
            role = chr(ex.ids[line_start])
            assert role in (stream.USER, stream.TOOL_RESULT, stream.TOOL_DEF), (role, value)
            assert "\n" not in value
            assert " " not in value or role != stream.TOOL_DEF  # arguments and results may have spaces
            assert chr(ex.ids[end]) in '\n,"}(\' ?.', (value, chr(ex.ids[end]))
            group_offset0 = ex.bucket[run[0]]
            assert ex.bucket[end] == (group_offset0 + min(len(run), E.MAX_OFFSET - 1)) % NB
            n_ends += 1
            if role == stream.TOOL_DEF:  # a function or parameter name, repeated later
                assert text[run[0] - 1:run[0]] == b'"' and (ex.loss_weight[run - 1] > 0).all()
                rest = text[run[-1] + 1:]  # (the example may be cut before the implementation)
                if b'"implementation": "def ' in rest:
                    assert rest.count(value.encode()) >= 1
            else:
                assert (ex.loss_weight[run - 1] == 0).all()
    assert n_ends > 20


def test_read_labels_predict_the_paired_write_byte():
    n_reads = 0
    for ex in _examples():
        reads = np.flatnonzero(ex.opcode == E.READ_MEM)
        for t in reads:
            p = ex.pair[t]
            assert 0 <= p < t
            assert ex.opcode[p] == E.WRITE_MEM
            if ex.opcode[p + 1] == E.WRITE_MEM:     # a value byte (an end marker is the run's last)
                assert ex.ids[p] == ex.ids[t + 1]      # the next byte is the one written there
            else:                                   # the value ends here: a non-value byte follows
                assert not chr(ex.ids[t + 1]).isalnum() and ex.opcode[t - 1] == E.READ_MEM
            assert ex.bucket[t] == ex.bucket[p]         # same compositional bucket
            assert ex.loss_weight[t] > 1.0              # answers weighted up
            n_reads += 1
        assert (ex.pair[ex.opcode != E.READ_MEM] == -1).all()
    assert n_reads > 50


def test_pairs_point_at_the_latest_value_after_an_update():
    import random
    from engine.curriculum.conversation import Conversation
    for seed in range(6):  # both update phrasings occur (with and without naming the old value)
        conv = Conversation(random.Random(seed), "train", NB)
        fact = conv.tell()
        old = fact.value
        conv.small_talk()
        conv.update(fact)
        conv.ask(fact)
        ex = conv.b.build()
        reads = np.flatnonzero(ex.opcode == E.READ_MEM)
        answer = bytes(ex.ids[reads + 1].tolist()).decode()
        assert answer == fact.value + "." and fact.value != old
        new_writes = ex.pair[reads]
        assert bytes(ex.ids[new_writes].tolist()).decode() == fact.value + "\n"  # and its end
        first_told = int(np.flatnonzero(ex.opcode == E.WRITE_MEM)[0])
        assert new_writes.min() > first_told + len(old)  # not the first telling
        cleared = bytes(ex.ids[ex.opcode == E.CLEAR_MEM].tolist()).decode()
        assert cleared in ("", old + ",")  # named: the old value and its end marker are cleared
        # the new value's first written byte supersedes the old value's, and nothing else does
        (at,) = np.flatnonzero(ex.supersedes >= 0)
        assert at == new_writes.min() and ex.supersedes[at] == first_told
        assert ex.opcode[at] == ex.opcode[first_told] == E.WRITE_MEM
        assert chr(ex.ids[at]) == fact.value[0] and chr(ex.ids[first_told]) == old[0]


def test_forgotten_values_are_cleared_byte_by_byte():
    seen = 0
    for s in range(40):
        ex = training_example(s, 2048, NB, style="facts")
        clears = np.flatnonzero(ex.opcode == E.CLEAR_MEM)
        for t in clears:
            seen += 1
            assert ex.bucket[t] >= 0
            line_start = bytes(ex.ids.tolist()).rfind(b"\n", 0, t) + 1
            assert chr(ex.ids[line_start]) == stream.USER
    assert seen > 0


def test_turn_opcodes_follow_the_stream_conventions():
    from engine.curriculum.mix import Mix
    failing = [training_example(s, 1024, NB, style="tools", mix=Mix(failures=0.5)) for s in range(4)]
    for ex in _examples() + failing:
        ids = ex.ids
        for t in range(len(ex)):
            if ids[t] == ord(stream.BOT):
                assert ex.opcode[t] == E.RESPOND
            if ex.opcode[t] == E.RESPOND:
                assert ids[t] == ord(stream.BOT)
            if ex.opcode[t] in (E.IDLE, E.COMMIT):
                assert ids[t] == ord(stream.END)
            if ex.opcode[t] == E.COMMIT:
                assert ex.commit[t] in (E.COMMIT_OPEN, E.COMMIT_CLOSE)
            else:
                assert ex.commit[t] == E.COMMIT_NEUTRAL
        # every END of a model turn is IDLE or COMMIT
        starts = [0] + [t + 1 for t in np.flatnonzero(ids == ord(stream.END))[:-1]]
        for s in starts:
            end = s + int(np.argmax(ids[s:] == ord(stream.END)))
            if ids[end] != ord(stream.END):
                continue
            if chr(ids[s]) in E.MODEL_TURN_ROLES:
                assert ex.opcode[end] in (E.IDLE, E.COMMIT)


def test_world_role_bytes_are_not_predicted():
    for ex in _examples():
        nxt = ex.ids[1:]
        world = np.isin(nxt, [ord(stream.USER), ord(stream.IMPULSE), ord(stream.TOOL_RESULT)])
        assert (ex.loss_weight[:-1][world] == 0).all()
        assert ex.loss_weight[-1] == 0


def test_deterministic_by_seed():
    a = training_batch(3, 4, 512, NB, seed=1)
    b = training_batch(3, 4, 512, NB, seed=1)
    c = training_batch(3, 4, 512, NB, seed=2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["ids"], c["ids"])
    assert not np.array_equal(a["ids"], training_batch(4, 4, 512, NB, seed=1)["ids"])


def test_heldout_keys_and_templates_are_disjoint_from_training():
    assert not set(vocab.TRAIN_NOUNS) & set(vocab.HELDOUT_NOUNS)
    for table in (vocab.TELL, vocab.ASK, vocab.FORGET, vocab.UPDATE, vocab.PROMISE, toolset.REQUEST):
        assert not set(table["train"]) & set(table["heldout"])
    assert not set(vocab.tasks("train")) & set(vocab.tasks("heldout"))
    train_text = " ".join(training_example(s, 1024, NB).text() for s in range(40))
    for noun in vocab.HELDOUT_NOUNS:
        assert f" {noun} " not in train_text.replace(".", " ").replace("?", " ").replace(",", " ")
    for t in vocab.TELL["heldout"]:
        assert t.split("{k}")[0].strip() not in train_text
    held = recall_example(0, 8, 200, NB)
    told = [w for w in held.text().split() if w in vocab.NOUNS]
    assert told and set(told) <= set(vocab.HELDOUT_NOUNS)


def test_recall_example_answers_and_distance():
    ex = recall_example(5, 6, 600, NB)
    assert len(ex.meta["answers"]) == 6
    assert ex.meta["distance"] >= 600
    for start, end in ex.meta["answers"]:
        assert (ex.opcode[start - 1:end] == E.READ_MEM).all()
        for t in range(start - 1, end - 1):
            assert ex.ids[ex.pair[t]] == ex.ids[t + 1]
        # the last value byte reads the told value's end marker: the byte after it, in the
        # next offset's bucket, which is no value byte
        marker = ex.pair[end - 1]
        assert marker == ex.pair[end - 2] + 1 and ex.opcode[marker] == E.WRITE_MEM
        assert ex.ids[marker] == ord(stream.END) and ex.ids[end] == ord(".")


def test_impulses_are_rendered_by_the_prompts_templates():
    for kind in IMPULSE_KINDS:
        ex = impulse_example(2, kind, NB)
        turns = [t for r, t in stream.split_turns(ex.text()) if r == "impulse"]
        assert len(turns) == 1
        name = {"generic": "impulse_generic"}.get(kind, f"impulse_{kind}")
        head = prompts.get(name).split("$")[0]
        assert turns[0].startswith(head)
        checks = ex.meta["impulse"]["checks"]
        ops = {op for _, op in checks}
        if kind not in ("low_confidence", "open_commitment"):
            assert checks[0][1] == E.IDLE and ex.meta["impulse"]["reply_at"] == -1
        else:
            assert E.RESPOND in ops and ex.meta["impulse"]["reply_at"] >= 0
        if kind == "open_commitment":
            assert E.COMMIT in ops
        if kind == "low_confidence":
            assert prompts.get("clarify") in ex.text()


def test_collate_builds_infonce_indices_consistent_with_pairs():
    exs = _examples(4, 1024)
    b = collate(exs)
    for i, ex in enumerate(exs):
        for j in np.flatnonzero(b["read_mask"][i]):
            t = b["read_idx"][i, j]
            w = b["write_idx"][i, b["read_target"][i, j]]
            assert ex.pair[t] == w and w < t
        sup = {int(t): int(ex.supersedes[t]) for t in np.flatnonzero(ex.supersedes >= 0)}
        got = {int(b["write_idx"][i, b["super_col"][i, j]]): int(b["write_idx"][i, b["super_target"][i, j]])
               for j in np.flatnonzero(b["super_mask"][i])}
        assert got == sup   # every update's first write, pointing at the one it supersedes
    assert b["super_mask"].any()  # training conversations do update facts
    with pytest.raises(ValueError):
        collate([exs[0], exs[1].truncated(100)])


def test_tool_family_is_large_and_definitions_have_the_exact_form():
    assert len(toolset.TOOLS) >= 40
    assert {t.family for t in toolset.TOOLS} == {"text", "numbers", "lists", "dates", "units"}
    for t in toolset.TOOLS:
        d = json.loads(toolset.definition_json(t))
        assert set(d) == {"name", "description", "parameters", "implementation", "sandbox"}
        assert d["sandbox"] is True and d["parameters"]["additionalProperties"] is False
        src = d["implementation"]
        assert "import" not in src and "__" not in src and " _" not in src
        assert sum(line.startswith("def ") for line in src.splitlines()) == 1
        assert src.startswith(f"def {t.name}(")
        assert len(toolset.phrases(t, "train")) >= 2 and toolset.phrases(t, "heldout")


def test_cue_words_are_the_held_out_words_only_the_tools_own_training_requests_share():
    cues = {t.name: toolset.cue_words(t) for t in toolset.TOOLS}
    assert cues["is_leap_year"] == {"leap"}          # "detects leap years"
    assert cues["to_upper"] == frozenset()            # "shouts a string in capitals": synonyms only
    for t in toolset.TOOLS:
        held = toolset.phrases(t, "heldout")[0].lower()
        for w in cues[t.name]:
            assert w in held and any(w in p.lower() for p in toolset.phrases(t, "train"))
            assert not any(w in p.lower().replace("?", " ").split()
                           for u in toolset.TOOLS if u is not t for p in toolset.phrases(u, "train"))
    # a word shared with another tool's training requests is no cue to this one
    a, b = toolset.BY_NAME["km_to_miles"], toolset.BY_NAME["miles_to_km"]
    assert "km" not in toolset.cue_words(a) and "km" in toolset.cue_words(a, [a])


def test_the_templates_split_frames_training_paraphrases_in_held_out_templates():
    import random
    tool = toolset.BY_NAME["to_upper"]
    for seed in range(20):
        text = toolset.request_text(tool, random.Random(seed), "templates")
        frame = next(f for f in toolset.REQUEST["heldout"] if text.startswith(f.split("{p}")[0]))
        assert text[len(frame.split("{p}")[0]):].rstrip("?") in toolset.phrases(tool, "train")


def test_more_phrases_widen_only_the_training_requests_and_never_hold_the_held_out_one():
    import random
    assert set(toolset.MORE_PHRASES) == set(toolset.BY_NAME)
    for t in toolset.TOOLS:
        base, more = toolset.phrases(t, "train"), toolset.phrases(t, "train", more=True)
        assert base == t.phrases[:-1] and more[:len(base)] == base          # stage 9's unchanged
        assert toolset.phrases(t, "heldout", more=True) == t.phrases[-1:]
        assert t.phrases[-1] not in more and len(set(more)) == len(more)
        assert more[len(base):] == toolset.added_phrases(t)
        assert set(toolset.added_phrases(t)) == set(toolset.MORE_PHRASES[t.name]) - {t.phrases[-1]}
    # a blind-written wording that is word for word a held-out one stays out of training
    dropped = [t.name for t in toolset.TOOLS if t.phrases[-1] in toolset.MORE_PHRASES[t.name]]
    assert dropped and all(len(toolset.phrases(toolset.BY_NAME[n], "train", True))
                           < len(toolset.BY_NAME[n].phrases) - 1 + len(toolset.MORE_PHRASES[n]) for n in dropped)
    tool = toolset.BY_NAME["to_upper"]
    added = set(toolset.MORE_PHRASES["to_upper"])
    said = {toolset.request_text(tool, random.Random(i), "train", more=True) for i in range(300)}
    assert any(p in r for r in said for p in added)
    assert not any(p in toolset.request_text(tool, random.Random(i), "train") for i in range(300) for p in added)


def test_the_more_split_asks_in_the_blind_written_wordings_alone():
    import random
    for tool in toolset.TOOLS:
        added = set(toolset.added_phrases(tool))
        for seed in range(5):
            text = toolset.request_text(tool, random.Random(seed), "more")
            frame = next(f for f in toolset.REQUEST["train"] if text.startswith(f.split("{p}")[0]))
            assert text[len(frame.split("{p}")[0]):].rstrip("?") in added


def test_blind_wordings_are_four_per_tool_and_none_is_a_training_or_held_out_wording():
    import re
    words = lambda p: frozenset(re.findall(r"[a-z0-9]+", p.lower()))
    assert set(toolset.BLIND_PHRASES) == set(toolset.BY_NAME)
    # every wording any split or mix may train on, or the held-out split asks in, as word sets
    known = {words(p) for t in toolset.TOOLS for p in t.phrases + toolset.MORE_PHRASES[t.name]}
    for t in toolset.TOOLS:
        blind = toolset.BLIND_PHRASES[t.name]
        assert len(blind) == 4 and len({words(p) for p in blind}) == 4
        for p in blind:
            assert p.isascii() and p == p.strip() and not set(p) & set("?\"'_") and 3 <= len(p.split()) <= 14
            assert words(p) not in known, (t.name, p)


def test_the_blind_split_takes_each_tools_blind_wordings_in_turn_in_the_held_out_templates():
    import random
    for tool in toolset.TOOLS:
        got = []
        for index in range(8):
            text = toolset.request_text(tool, random.Random(index), "blind", index=index)
            frame = next(f for f in toolset.REQUEST["heldout"] if text.startswith(f.split("{p}")[0]))
            got.append(text[len(frame.split("{p}")[0]):].rstrip("?"))
        assert got == list(toolset.BLIND_PHRASES[tool.name]) * 2
    from engine.curriculum.episodes import tool_request_prompt
    asked = {tool_request_prompt(toolset.BY_NAME["to_upper"], seed, "blind")[0] for seed in range(4)}
    assert len(asked) == 4


def test_a_mix_sets_the_share_of_conversations_about_tools_and_their_wordings():
    from collections import Counter

    from engine.curriculum.mix import STYLES, Mix
    assert Mix().styles() is STYLES                        # the default draws as before
    for share in (0.0, 0.3, 0.6):
        weights = dict(Mix(share).styles())
        assert weights["tools"] == share and sum(weights.values()) == pytest.approx(1.0)
        assert weights["facts"] / weights["burst"] == pytest.approx(dict(STYLES)["facts"] / dict(STYLES)["burst"])
    with pytest.raises(ValueError, match="tools share"):
        Mix(1.0)
    styles = lambda mix: Counter(training_example(i, 256, NB, mix=mix).meta["style"] for i in range(300))
    assert styles(Mix(0.0))["tools"] == 0 and styles(Mix(0.6))["tools"] > 2 * styles(Mix())["tools"]
    # the default mix is the curriculum stage 9 trained on, byte for byte: this batch's arrays
    # hashed the same on the code before Mix existed (1421f37)
    import hashlib
    batch = training_batch(3, 8, 1536, 64, seed=5)
    digest = hashlib.sha256(b"".join(v.tobytes() for _, v in sorted(batch.items()))).hexdigest()
    assert digest.startswith("4b04d96d075160fb")
    added = [p for ps in toolset.MORE_PHRASES.values() for p in ps]
    def wordings(mix):
        return sum(any(p in training_example(i, 1536, NB, style="tools", mix=mix).text() for p in added)
                   for i in range(12))
    assert wordings(Mix(more_phrases=True)) > 0 and wordings(Mix()) == 0


def test_every_tool_validates_with_toolsmith_and_passes_its_tests_in_the_sandbox():
    from toolsmith.definition import ToolDefinition
    from toolsmith.sandbox import run_source
    names = set()
    for t in toolset.TOOLS:
        defn = ToolDefinition.from_json(toolset.definition_json(t))
        assert defn.validate(existing=names) == [], t.name
        names.add(t.name)
        for args, expected in t.tests:
            assert toolset.results_match(toolset.run_reference(t, args), expected), (t.name, args)
        # the sandbox runs every tool once (all test cases would take ~10 s)
        args, expected = t.tests[0]
        res = run_source(defn.implementation, defn.name, args)
        assert res.ok and toolset.results_match(res.result, expected), (t.name, res.to_json())


def test_tool_calls_are_woven_into_replies():
    seen = 0
    for s in range(30):
        ex = training_example(s, 2048, NB, style="tools")
        turns = stream.split_turns(ex.text())
        for i, (role, text) in enumerate(turns[:-2]):
            if role == "tool_call":
                call = json.loads(text)
                assert call["name"] in toolset.BY_NAME
                assert turns[i + 1][0] == "tool_result"
                result = json.loads(turns[i + 1][1])
                assert result["ok"] is True
                expected = toolset.run_reference(toolset.BY_NAME[call["name"]], call["args"])
                assert toolset.results_match(result["result"], expected)
                shown = result["result"] if isinstance(result["result"], str) else json.dumps(result["result"])
                assert turns[i + 2][0] == "bot" and shown in turns[i + 2][1]
                seen += 1
            if role == "tool_def":
                defn = json.loads(text)
                assert defn == toolset.BY_NAME[defn["name"]].definition()
    assert seen > 3


def test_a_mix_with_failures_answers_a_failed_call_by_saying_it_gave_no_result():
    from engine.curriculum.mix import Mix
    from engine.toolbridge import format_tool_result
    with pytest.raises(ValueError, match="tool failures"):
        Mix(failures=1.5)
    kinds = set()
    for s in range(20):
        ex = training_example(s, 2048, NB, style="tools", mix=Mix(failures=1.0))
        turns = stream.split_turns(ex.text())
        for i, (role, text) in enumerate(turns[:-2]):
            if role != "tool_result":
                continue
            result = json.loads(text)
            assert result["ok"] is False and turns[i - 1][0] == "tool_call"
            # the world's bytes are the runtime's own rendering of that failure
            rendered = format_tool_result(False, error=result["error"])
            assert stream.ROLE_BYTES[role] + text + stream.END == rendered
            missing = "no tool named" in result["error"] or "no callable" in result["error"] \
                or "deprecated" in result["error"]
            kind = "missing" if missing else "failed"
            assert turns[i + 1][0] == "bot" and turns[i + 1][1] in toolset.FAILURE_REPLIES[kind]
            kinds.add(kind)
        # the result's role byte is the world's: not predicted
        world = np.isin(ex.ids[1:], [ord(stream.TOOL_RESULT)])
        assert (ex.loss_weight[:-1][world] == 0).all()
    assert kinds == {"missing", "failed"}
    # without failures every call succeeds (test_tool_calls_are_woven_into_replies), and a share
    # fails in between
    def failed(mix):
        return sum(text.startswith('{"ok": false') for s in range(20) for role, text
                   in stream.split_turns(training_example(s, 2048, NB, style="tools", mix=mix).text())
                   if role == "tool_result")
    assert failed(Mix()) == 0 and 0 < failed(Mix(failures=0.3)) < failed(Mix(failures=1.0))


def test_a_failed_calls_error_text_is_the_runtimes(tmp_path):
    import random

    from engine.toolbridge import ToolService
    from toolsmith.registry import ToolRegistry
    # what chat feeds back when the model calls a tool nobody approved, among the curriculum's
    tool = toolset.BY_NAME["add_numbers"]
    _, turn = ToolService(ToolRegistry(tmp_path / "tools.db")).call(tool.name, {"a": 1, "b": 2})
    error = json.loads(turn[1:-1])["error"]
    texts = {toolset.failure(tool, random.Random(i)) for i in range(200)}
    assert ("missing", error) in texts and {kind for kind, _ in texts} == {"missing", "failed"}


def test_more_phrases_keep_half_the_requests_in_the_first_paraphrases():
    import random
    for tool in (toolset.BY_NAME["to_upper"], toolset.BY_NAME["factorial"]):
        said = [toolset.request_text(tool, random.Random(i), "train", more=True) for i in range(600)]
        first = sum(any(p in r for p in toolset.phrases(tool, "train")) for r in said)
        assert 0.4 < first / len(said) < 0.6     # uniform over all the wordings would give ~15%


def test_end_markers_stay_off_model_turn_ends_and_go_with_a_forgotten_value():
    b = E.Builder(NB)
    b.open_turn(stream.BOT)
    b.write("f1", "door code", "4417")   # a value at the very end of a model turn
    b.close_turn(model_turn=True)        # its END keeps IDLE: no end marker there
    end = len(b) - 1
    assert b.opcode[end] == E.IDLE and b.write_gate[end] == 0 and "f1" not in b.ends
    b.open_turn(stream.BOT)
    b.read("f1", "door code", "4417")
    assert b.opcode[-1] == E.FREE        # no marker to read: the model decides
    b.plain(".")
    b.close_turn(model_turn=True)
    b.open_turn(stream.USER)
    b.write("f2", "gate pin", "90")
    b.close_turn(model_turn=False)       # a world turn's END is the marker
    marker = len(b) - 1
    assert b.opcode[marker] == E.WRITE_MEM and b.ends["f2"] == marker
    b.open_turn(stream.USER)
    b.clear("f2", "gate pin", "90")
    b.close_turn(model_turn=False)
    assert b.opcode[-1] == E.CLEAR_MEM and b.bucket[-1] == b.bucket[marker]
    assert "f2" not in b.ends and "f2" not in b.writes


def test_some_conversations_open_with_a_greeting_answered_without_memory():
    greetings = {line for line, _ in vocab.GREETINGS}
    opened = 0
    for s in range(40):
        ex = training_example(s, 512, NB)
        role, first = stream.split_turns(ex.text())[0]
        if role == stream.ROLES[stream.USER] and first in greetings:
            opened += 1
            reply_end = ex.text().index("\n", ex.text().index(stream.BOT))
            assert not np.isin(ex.opcode[:reply_end], (E.READ_MEM, E.WRITE_MEM)).any()
    assert 4 <= opened <= 24  # about 30%


def test_tool_call_arguments_are_written_in_the_request_and_read_in_the_call():
    import random

    from engine.curriculum import tools as toolset
    from engine.curriculum.conversation import Conversation
    labelled = 0
    for i, tool in enumerate(toolset.TOOLS):
        conv = Conversation(random.Random(i), "train", NB)
        conv.tool_call(tool)
        ex = conv.b.build()
        text = ex.text()
        call_at = text.index(stream.TOOL_CALL)
        call = text[call_at + 1:text.index("\n", call_at)]
        assert call == json.dumps({"name": tool.name, "args": json.loads(call)["args"]})
        # every READ inside the call is paired with a WRITE in the user's request before it
        for t in np.flatnonzero(ex.opcode == E.READ_MEM):
            if call_at <= t < call_at + 1 + len(call):
                p = ex.pair[t]
                assert 0 < p < call_at  # written in the request
                assert text[p] == text[t + 1] or not text[t + 1].isalnum()  # a value byte, or its end
                labelled += 1
    assert labelled > 100


def test_update_example_asks_every_fact_and_marks_the_updated_ones():
    from engine.curriculum import update_example
    for seed in range(4):
        ex = update_example(seed, 6, NB)
        assert update_example(seed, 6, NB).text() == ex.text()  # deterministic by seed
        answers = ex.meta["answers"]
        assert len(answers) == 6 and sum(u for _, _, u in answers) == 3
        # an answer reads the value's latest writing: the updates all come after the six tellings
        told_at = {u: [int(ex.pair[s - 1]) for s, _, v in answers if v == u] for u in (True, False)}
        assert min(told_at[True]) > max(told_at[False])
        text = ex.text()
        for start, end, _ in answers:
            assert text[int(ex.pair[start - 1])] == text[start]   # the first byte read is the one written
        # the value each updated fact had before: told earlier in the conversation, not the answer
        for (start, end, updated), old, named in zip(answers, ex.meta["old_values"], ex.meta["old_named"]):
            assert (old is not None) == updated and (not named or updated)
            if updated:
                assert old != text[start:end] and f" {old}" in text[:start]
                # an update that names the old value repeats it: told, then named
                assert (text[:start].count(old) >= 2) == named
