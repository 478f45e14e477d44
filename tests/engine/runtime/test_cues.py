"""Stored facts' cues: the tape of the recent stream, the cue before a value, cued replays."""
from __future__ import annotations

import torch

from engine.runtime.consolidation import ConsolidationConfig, Consolidator
from engine.runtime.cues import Tape, book_from_dict, book_to_dict, cue_book, cue_of, fact_cues
from runtime_fakes import tiny_model

TOLD = (b"\x11hello\n\x12hi.\n\x11remember that the door code is 4417\n\x12ok.\n"
        b"\x11the blue bike is kv92\n\x12ok.\n")


def test_the_tape_keeps_the_last_bytes_at_their_positions():
    tape = Tape(capacity=8)
    tape.put(100, b"abcdef")
    assert (tape.start, tape.end) == (100, 106)
    assert tape.before(104, 3) == b"bcd" and tape.before(101, 5) == b"a" and tape.before(100, 4) == b""
    tape.put(106, b"ghij")                     # past the capacity: the oldest bytes go
    assert (tape.start, tape.end, bytes(tape.data)) == (102, 110, b"cdefghij")
    assert tape.before(112, 5) == b"hij" and tape.before(200, 3) == b""   # only what the tape holds
    tape.put(50, b"xy")                        # a jump (a loaded session): the tape starts again
    assert (tape.start, tape.end, tape.before(52, 9)) == (50, 52, b"xy")
    tape.put(52, b"zzz")
    tape.rewind(53)                            # a rewound state: the bytes from 53 on are gone
    assert (tape.start, tape.end, bytes(tape.data)) == (50, 53, b"xyz")
    tape.rewind(10)                            # before the tape's start: it starts again there
    assert (tape.start, tape.end) == (10, 10)


def test_the_cue_is_the_key_clause_just_before_the_value():
    assert cue_of(b"\x11remember that the door code is ") == "the door code is "
    assert cue_of(b"\x11keep in mind that the blue yacht is ") == "the blue yacht is "
    assert cue_of(b"the old code is 12\n\x11the door code is ") == "the door code is "   # this turn only
    for text in (b"\x11the door code is 12", b"\x11remember that ", b"\x11my bike is ", b"\x11the  is ",
                 b"the door code is \n\x11", b"\x11other is "):
        assert cue_of(text) is None, text


def _state_with_runs(runs: dict[int, list[int]]):
    """A tiny model's state whose memory layer ``li`` holds one slot written at each position."""
    state = tiny_model().init_state(1)
    with torch.no_grad():
        for li, positions in runs.items():
            layer = state.layers[li]
            flat_valid, flat_age = layer.mem_valid[0].view(-1), layer.mem_age[0].view(-1)
            for i, p in enumerate(positions):
                flat_valid[i], flat_age[i] = True, p
    return state


def test_fact_cues_come_from_runs_of_written_positions_newest_first():
    door, bike = TOLD.index(b"4417"), TOLD.index(b"kv92")
    tape = Tape()
    tape.put(0, TOLD)
    mem = [li for li, layer in enumerate(tiny_model().init_state(1).layers) if layer.mem_valid.numel()]
    # the door code in one layer; the bike in another and partly in the first; a stray slot
    # after "hello" (no "the <key> is " before it) gives no cue
    state = _state_with_runs({mem[0]: [door, door + 1, door + 2, door + 3, bike + 2, 3],
                              mem[-1]: [bike, bike + 1, bike + 2, bike + 3]})
    assert fact_cues(state, tape) == ["the blue bike is ", "the door code is "]
    shifted = Tape()
    shifted.put(door + 1, TOLD[door + 1:])     # the door code's telling is gone from the tape
    assert fact_cues(state, shifted) == ["the blue bike is "]


def test_a_pass_with_cues_replays_each_cue_in_turn_and_makes_no_cue_free_recall():
    model = tiny_model()
    state = model.init_state(1)
    with torch.no_grad():
        state.layers[-1].mem_valid[0, 0, 0] = True
    cues = ["the door code is ", "the blue bike is ", "the gate pin is "]
    cons = Consolidator(model, ConsolidationConfig(replays=5, cued_replays=2, replay_bytes=6))
    asked = []
    cons._cued_recall = lambda base, cue, abort, res: asked.append(cue) or cue + "42"
    passes = [cons.run(state, cues=cues) for _ in range(3)]
    assert asked == cues + cues                 # two per pass, every cue in turn
    assert [p.replays for p in passes[:2]] == [["the door code is 42", "the blue bike is 42"],
                                                ["the gate pin is 42", "the door code is 42"]]
    assert [p.cued for p in passes] == [2, 2, 2]
    free = cons.run(state)                      # no cue known: cue-free recalls, as before
    assert len(asked) == 6 and free.steps > 0 and free.cued == 0


def test_a_cued_recall_writes_after_the_cue_on_a_fork():
    model = tiny_model()
    state = model.init_state(1)
    with torch.no_grad():
        state.layers[-1].mem_valid[0, 0, 0] = True
    before = {k: t.clone() for k, t in state.named_tensors().items()}
    res = Consolidator(model, ConsolidationConfig(cued_replays=1, replay_bytes=6)).run(
        state, cues=["the door code is "])
    assert res.steps >= len("\x17the door code is ")
    assert all(r.startswith("the door code is ") and len(r) > len("the door code is ") for r in res.replays)
    assert res.cued == len(res.replays) and res.to_payload("idle")["cued"] == res.cued
    assert all(torch.equal(t, before[k]) for k, t in state.named_tensors().items())   # only read


def test_the_tape_round_trips_and_a_bad_one_is_dropped_not_fatal():
    tape = Tape()
    tape.put(40, b"the door code is 4417")
    back = Tape.from_dict(tape.to_dict(), end=61)
    assert (back.start, bytes(back.data)) == (40, b"the door code is 4417")
    for bad in (None, {}, {"start": "x", "data": ""}, {"start": 40, "data": "%%%"}, ["a"],
                tape.to_dict()):                # the last: it does not end at the state's position
        empty = Tape.from_dict(bad, end=70)
        assert (empty.start, empty.end) == (70, 70)


def test_a_session_keeps_its_tape_so_cues_survive_a_restart():
    from engine.runtime.engine import Engine, EngineConfig
    from engine.store.sessions import Session

    model = tiny_model()
    text = "\x11remember that the door code is 4417\n"
    quiet = EngineConfig(impulses=False, consolidate_after_idle_s=3600.0, consolidate_every_s=3600.0)
    with Session.open("taped") as session:
        eng = Engine(model, session=session, config=quiet)
        eng._feed(text)
        eng.start()
        assert eng.stop()
    with Session.open("taped") as session:
        again = Engine(model, session=session, config=quiet)
        end = int(again.state.position[0])
        assert end == len(text.encode()) and again._tape.before(end, 100) == text.encode()


def test_the_cue_book_keeps_a_cue_after_its_telling_leaves_the_tape():
    door, bike = TOLD.index(b"4417"), TOLD.index(b"kv92")
    mem = [li for li, layer in enumerate(tiny_model().init_state(1).layers) if layer.mem_valid.numel()]
    state = _state_with_runs({mem[0]: [door, door + 1, bike, bike + 1]})
    tape = Tape()
    tape.put(0, TOLD)
    book = cue_book(state, tape)
    assert book == {door: "the door code is ", bike: "the blue bike is "}
    later = Tape(capacity=16)
    later.put(0, TOLD + b"\x11" + b"chat " * 40)        # both tellings are gone from this tape
    assert fact_cues(state, later) == []
    assert fact_cues(state, later, book) == ["the blue bike is ", "the door code is "]
    assert cue_book(state, later, book) == book
    # a fact memory no longer holds leaves the book
    only_door = _state_with_runs({mem[0]: [door, door + 1]})
    assert cue_book(only_door, later, book) == {door: "the door code is "}
    # a tape that starts inside the clause gives no (shorter) cue of its own
    cut = Tape()
    start = TOLD.index(b"door code is ")
    cut.put(start, TOLD[start:])
    assert cue_of(cut.before(door, 96)) is None and cue_book(only_door, cut) == {}
    told = b"\x11remember that the code of the door is 4417\n"
    value = told.index(b"4417")
    one = _state_with_runs({mem[0]: [value, value + 1]})
    whole, cut = Tape(), Tape()
    whole.put(0, told)
    start = told.index(b"the door is ")
    cut.put(start, told[start:])
    assert cue_book(one, whole) == {value: "the code of the door is "}
    assert cue_of(cut.before(value, 96)) == "the door is "   # what a cut clause would give ...
    assert cue_book(one, cut) == {}                           # ... so it is not read
    assert cue_book(one, cut, cue_book(one, whole)) == {value: "the code of the door is "}


def test_the_cue_book_round_trips_and_bad_entries_are_dropped():
    book = {40: "the door code is ", 7: "the blue bike is "}
    assert book_from_dict(book_to_dict(book)) == book
    for bad in (None, [], "x", {"a": "the door code is "}, {"5": 3}, {"5": "door code"}, {"-1": "the x is "}):
        assert book_from_dict(bad) == {}, bad
    assert book_from_dict({"5": "the x is ", "y": "the z is "}) == {5: "the x is "}


def test_a_session_keeps_its_cue_book_across_a_restart():
    from engine.runtime.engine import Engine, EngineConfig
    from engine.store.sessions import Session

    model = tiny_model()
    text = "\x11remember that the door code is 4417\n"
    door = text.encode().index(b"4417")
    quiet = EngineConfig(impulses=False, consolidate_after_idle_s=3600.0, consolidate_every_s=3600.0)
    with Session.open("booked") as session:
        eng = Engine(model, session=session, config=quiet)
        eng._feed(text)
        with torch.no_grad():                    # memory holds just the door code's value
            for layer in eng.state.layers:
                layer.mem_valid.zero_()
            li = next(i for i, layer in enumerate(eng.state.layers) if layer.mem_valid.numel())
            eng.state.layers[li].mem_valid[0, 0, 0], eng.state.layers[li].mem_age[0, 0, 0] = True, door
        eng._cues = {door: "the door code is ", len(text) + 5: "the later one is "}
        eng._tape = Tape()                       # the telling has left the tape
        eng._tape.put(len(text.encode()), b"")
        eng.start()
        assert eng.stop()
    with Session.open("booked") as session:
        again = Engine(model, session=session, config=quiet)
        assert again._cues == {door: "the door code is "}     # no stored fact began at the other
        assert fact_cues(again.state, again._tape, again._cues) == ["the door code is "]
