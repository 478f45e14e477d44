"""The engine thread on the real tiny MosaicLM: turns, impulses, consolidation, faults, stop, restart."""
import dataclasses

import pytest
import torch

from engine.runtime import DriveBand, Engine, EngineConfig, IntrinsicDrive
from engine.runtime.consolidation import ConsolidationConfig, Consolidator
from engine.runtime.snapshot import SnapshotBuilder, state_digest
from engine.store.sessions import Session
from runtime_fakes import Recorder, ScriptedModel, tiny_model

QUIET = dict(impulses=False, consolidate_after_idle_s=3600.0, consolidate_every_s=3600.0)


def _engine(model, session=None, **kw):
    cfg = EngineConfig(**{**QUIET, **kw})
    eng = Engine(model, session=session, config=cfg)
    return eng, Recorder(eng.bus)


def _turn_end(rec, turn_id, timeout=60):
    return rec.wait_for(lambda e: e.type == "TurnEnded" and e.payload["turn"] == turn_id, timeout)


def _fill_memory(state, seed=0):
    """Put recognisable contents in every memory layer: half the slots low-utility (prunable)."""
    g = torch.Generator().manual_seed(seed)
    for layer in state.layers:
        if layer.mem_valid.numel() == 0:
            continue
        layer.mem_keys.copy_(torch.randn(layer.mem_keys.shape, generator=g))
        layer.mem_values.copy_(torch.randn(layer.mem_values.shape, generator=g))
        layer.mem_valid.copy_(torch.rand(layer.mem_valid.shape, generator=g) < 0.6)
        layer.mem_utility.copy_(torch.where(torch.rand(layer.mem_utility.shape, generator=g) < 0.5,
                                            torch.tensor(0.01), torch.tensor(0.9)))


def test_user_line_gets_a_response_and_a_snapshot():
    eng, rec = _engine(ScriptedModel(tiny_model(), reply="\x12hello back\n"))
    eng.start()
    try:
        ev = eng.submit_user("hi there")
        end = _turn_end(rec, ev.id)
        resp = rec.wait_for(lambda e: e.type == "Response")
        assert resp.payload["text"] == "hello back" and resp.payload["reply_to"] == ev.id
        assert end.payload["replied"] and end.payload["role"] == "bot"
        assert len([t for t in rec.of("Token") if t.payload["turn"] == ev.id]) == len("\x12hello back\n")
        snap = eng.latest_snapshot()
        assert snap is not None
        cfg = eng.model.config
        assert len(snap.registers) == cfg.n_layers and len(snap.registers[0]) == cfg.timescales
        assert len(snap.memory_valid[0]) == cfg.buckets and len(snap.memory_valid[0][0]) == cfg.ways
        assert all(len(step) == cfg.n_layers for step in snap.opcodes)
        assert {d["name"] for d in snap.drives} >= {"low_confidence", "memory_pressure"}
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.status = "x"  # type: ignore[misc]
    finally:
        assert eng.stop()


def test_snapshot_builder_throttles():
    b = SnapshotBuilder(n_layers=2, hz=20.0)
    assert b.due(0.0)
    b._last_build = 100.0
    assert not b.due(100.01) and not b.due(100.049) and b.due(100.051)


def test_drive_out_of_band_produces_impulse_and_self_activated_turn():
    drive = IntrinsicDrive("low_confidence", "logit_entropy", DriveBand(0.0, 0.5), 2.0, "impulse_low_confidence")
    eng, rec = _engine(ScriptedModel(tiny_model(), reply="\x12I am unsure\n"), impulses=True, drives=[drive])
    eng.start()
    try:
        eng.metrics.inject("logit_entropy", 0.95)     # the drive leaves its band
        imp = rec.wait_for(lambda e: e.type == "Impulse")
        assert imp.payload["drive"] == "low_confidence" and imp.payload["target"] == "model"
        assert imp.payload["urgency"] == pytest.approx(0.9)
        act = rec.wait_for(lambda e: e.type == "SelfActivated")
        assert act.payload["impulse"] == imp.id
        end = _turn_end(rec, imp.id)
        assert end.payload["origin"] == "self" and end.payload["replied"]
        resp = rec.wait_for(lambda e: e.type == "Response")
        assert resp.payload["self_activated"] and resp.payload["text"] == "I am unsure"
        assert [t for t in rec.of("Token") if t.payload["turn"] == imp.id]
        assert len(rec.of("Impulse")) == 1                 # refractory: one impulse, not one per tick
    finally:
        assert eng.stop()


def test_self_activated_turn_without_respond_stays_internal():
    drive = IntrinsicDrive("idle", "idle_s", DriveBand(0.0, 0.0), 1.0, "impulse_idle")
    eng, rec = _engine(ScriptedModel(tiny_model(), reply="\x12note to self\n", first_op=0),
                       impulses=True, drives=[drive])
    eng.router.routes = {}         # default target: the model
    eng.start()
    try:
        imp = rec.wait_for(lambda e: e.type == "Impulse")
        end = _turn_end(rec, imp.id)
        assert not end.payload["replied"] and end.payload["internal_text"] == "note to self"
        assert not rec.of("Response")
    finally:
        assert eng.stop()


def test_consolidation_runs_when_quiet_and_changes_only_reported_prunes():
    model = tiny_model()
    eng, rec = _engine(model, consolidate_after_idle_s=0.0, consolidate_every_s=0.0,
                       consolidation=ConsolidationConfig(replays=2, replay_bytes=16, prune_min_utility=0.05))
    _fill_memory(eng.state)
    before = eng.state.fork()
    eng.start()
    try:
        done = rec.wait_for(lambda e: e.type == "Consolidated" and not e.payload["aborted"])
    finally:
        assert eng.stop()
    prunes = {tuple(p) for p in done.payload["prunes"]}
    # only the first completed pass may have pruned: later ones see those slots already gone
    all_prunes = {tuple(p) for e in rec.of("Consolidated") for p in e.payload["prunes"]}
    assert prunes and done.payload["replays"] >= 1 and done.payload["seconds"] > 0
    for li, (a, b) in enumerate(zip(before.layers, eng.state.layers)):
        mask = torch.zeros_like(a.mem_valid[0])
        for l2, bk, w in all_prunes:
            if l2 == li:
                mask[bk, w] = True
        assert not b.mem_valid[0][mask].any()                       # reported prunes applied
        assert bool(a.mem_valid[0][mask].all())
        assert (a.mem_utility[0][mask] < 0.05).all()               # ... and only low-utility ones
        keep = ~mask
        assert torch.equal(a.mem_valid[0][keep], b.mem_valid[0][keep])
        assert torch.equal(a.mem_utility[0][keep], b.mem_utility[0][keep])
        assert torch.equal(a.mem_keys, b.mem_keys) and torch.equal(a.mem_values, b.mem_values)
        assert torch.equal(a.mem_age, b.mem_age) and torch.equal(a.registers, b.registers)
    assert torch.equal(before.position, eng.state.position)         # replay ran on forks only


def test_consolidator_never_touches_the_state_it_is_given():
    model = tiny_model()
    state = model.init_state(1)
    _fill_memory(state)
    digest = state_digest(state)
    res = Consolidator(model, ConsolidationConfig(replays=2, replay_bytes=8)).run(state)
    assert state_digest(state) == digest and res.prunes and not res.aborted


def test_no_consolidation_while_events_are_pending():
    eng, rec = _engine(ScriptedModel(tiny_model()), consolidate_after_idle_s=0.0, consolidate_every_s=0.0,
                       consolidation=ConsolidationConfig(replays=1, replay_bytes=8))
    ids = [eng.submit_user(f"message number {i}").id for i in range(6)]   # all pending at start
    eng.start()
    try:
        last = _turn_end(rec, ids[-1])
        rec.wait_for(lambda e: e.type == "Consolidated")
    finally:
        assert eng.stop()
    for c in rec.of("Consolidated"):
        started = c.ts - c.payload["seconds"]
        assert started >= last.ts or c.payload["aborted"]
    ends = [e for e in rec.of("TurnEnded") if e.payload["turn"] in ids]
    assert len(ends) == 6


def _store_something(eng) -> None:
    """One valid, useful slot: replay only runs when memory holds something. Set before the
    engine thread owns the state."""
    with torch.no_grad():
        eng.state.layers[-1].mem_valid[0, 0, 0] = True
        eng.state.layers[-1].mem_utility[0, 0, 0] = 1.0


def test_a_pending_event_aborts_a_consolidation_pass():
    eng, rec = _engine(ScriptedModel(tiny_model()), consolidate_after_idle_s=0.0, consolidate_every_s=0.0,
                       consolidation=ConsolidationConfig(replays=200, replay_bytes=64))
    _store_something(eng)
    eng.start()
    try:
        rec.wait_for(lambda e: (eng.latest_snapshot() is not None
                                and eng.latest_snapshot().status == "consolidating"))
        ev = eng.submit_user("are you there")
        _turn_end(rec, ev.id)
        aborted = rec.wait_for(lambda e: e.type == "Consolidated")
        assert aborted.payload["aborted"] and aborted.payload["pruned"] == 0
    finally:
        assert eng.stop()


@pytest.mark.parametrize("prefill", [True, False])
def test_step_exception_becomes_an_event_and_the_engine_goes_on(prefill):
    model = ScriptedModel(tiny_model())
    with Session.open("faults") as session:
        eng, rec = _engine(model, session=session, prefill=prefill)
        eng.start()
        try:
            model.fail_next = 1
            bad = eng.submit_user("this one fails")
            end = _turn_end(rec, bad.id)
            assert end.payload.get("error")
            err = rec.wait_for(lambda e: e.type == "EngineError")
            assert "injected" in err.payload["error"]
            good = eng.submit_user("this one works")
            _turn_end(rec, good.id)
            assert rec.wait_for(lambda e: e.type == "Response" and e.payload["reply_to"] == good.id)
            assert eng.running
        finally:
            assert eng.stop()
        logged = session.log.read("EngineError")
        assert logged and "injected" in logged[0]["payload"]["error"]


def test_consolidation_exception_becomes_an_event():
    eng, rec = _engine(tiny_model(), consolidate_after_idle_s=0.0, consolidate_every_s=0.0)

    def broken(*a, **k):
        raise ValueError("consolidation broke")

    eng.consolidator.run = broken
    eng.start()
    try:
        err = rec.wait_for(lambda e: e.type == "EngineError" and e.payload["where"] == "consolidation")
        assert "consolidation broke" in err.payload["error"]
        ev = eng.submit_user("still alive?")
        _turn_end(rec, ev.id)
        assert eng.running
    finally:
        assert eng.stop()


def test_stop_joins_within_bound_during_a_long_turn():
    eng, rec = _engine(ScriptedModel(tiny_model(), reply="\x12" + "a" * 50_000 + "\n"),
                       max_turn_bytes=100_000)
    eng.start()
    eng.submit_user("talk forever")
    rec.wait_for(lambda e: e.type == "Token")
    assert eng.stop(timeout=5.0)          # joined: the turn checks the stop flag every step
    assert not eng.running
    assert rec.of("Stopped")


def test_told_fact_ledger_and_registers_survive_restart():
    model = ScriptedModel(tiny_model(), reply="\x12I will remember\n", commit=+1)
    with Session.open("facts") as session:
        eng, rec = _engine(model, session=session)
        eng.start()
        ev = eng.submit_user("the door code is 4417")
        _turn_end(rec, ev.id)
        assert eng.stop()
        saved = rec.of("StateSaved")[-1]
        assert rec.of("CommitmentOpened")
        old = eng.state
    with Session.open("facts") as session:
        eng2, rec2 = _engine(model, session=session)
        eng2.bus.drain()
        loaded = rec2.of("SessionLoaded")[0]
        assert loaded.payload["memory_digest"] == saved.payload["memory_digest"]
        assert eng2.generation == saved.payload["generation"]
        assert state_digest(eng2.state) == saved.payload["memory_digest"] == state_digest(old)
        for a, b in zip(old.layers, eng2.state.layers):
            for name, t in a.tensors().items():
                assert torch.equal(t, getattr(b, name)), name
        assert int(eng2.state.position[0]) == saved.payload["position"] > len("the door code is 4417")
        assert eng2.ledger.open_count == 1
        texts = [e["payload"]["text"] for e in session.log.read("UserMessage")]
        assert texts == ["the door code is 4417"]


def test_tool_call_turn_goes_to_the_tool_service_and_its_result_is_fed_back():
    from engine.toolbridge import ToolService
    call = '\x15{"name": "nosuchtool", "args": {"a": 1}}\n'
    model = ScriptedModel(tiny_model(), reply=[call, "\x12done\n"])
    eng, rec = _engine(model)
    eng.tools = ToolService()
    eng.start()
    try:
        ev = eng.submit_user("add one and two")
        _turn_end(rec, ev.id)
        res = rec.wait_for(lambda e: e.type == "ToolResult")
        assert res.payload["ok"] is False and res.payload["error_type"] == "unknown_tool"
        resp = rec.wait_for(lambda e: e.type == "Response")
        assert resp.payload["text"] == "done"       # the model's turn after the TOOL_RESULT turn
        assert model.n_scripts == 2                  # the result turn was fed (its END started script 2)
    finally:
        assert eng.stop()


def _definition_turn():
    """A curriculum tool that is no built-in, and its definition as a whole TOOL_DEF turn."""
    from engine.curriculum import tools as toolset
    from toolsmith import BUILTIN_NAMES
    tool = next(t for t in toolset.TOOLS if t.name not in BUILTIN_NAMES)
    return tool, "\x14" + toolset.definition_json(tool) + "\n"


def _tool_engine(replies, op_override=None, **kw):
    """A started engine with a ToolService whose model spells ``replies``, one per model turn (and
    takes the opcodes ``op_override`` gives: see ScriptedModel)."""
    from engine.toolbridge import ToolService
    model = ScriptedModel(tiny_model(), reply=replies, op_override=op_override)
    eng, rec = _engine(model, **{"max_turn_bytes": 40, **kw})
    eng.tools = ToolService()
    eng.start()
    return model, eng, rec


def _proposal_fate(eng, rec, text):
    ev = eng.submit_user(text)
    _turn_end(rec, ev.id)
    return ev, rec.wait_for(lambda e: e.type in ("ToolProposed", "ToolRejected"))


def test_a_tool_definition_is_not_cut_at_the_reply_cap():
    tool, definition = _definition_turn()
    assert len(definition) > 200
    model, eng, rec = _tool_engine([definition, "\x12proposed\n"])
    try:
        _, proposed = _proposal_fate(eng, rec, "make a tool that reverses text")
        assert proposed.type == "ToolProposed", proposed.payload
        assert proposed.payload["name"] == tool.name
        resp = rec.wait_for(lambda e: e.type == "Response")
        assert resp.payload["text"] == "proposed"
        # as the curriculum teaches: the definition is followed by the model's own words, no
        # TOOL_RESULT turn in between (the person sees ToolProposed / ToolRejected)
        assert model.roles_seen[-3:] == [0x11, 0x14, 0x12]
    finally:
        assert eng.stop()


BROKEN = '\x14{"name": "broken_tool", "implementation": "def broken_tool(:"}\n'


def test_a_definition_that_does_not_validate_is_written_again_from_the_state_before_it():
    tool, good = _definition_turn()
    model, eng, rec = _tool_engine([BROKEN, good, "\x12proposed\n"])
    try:
        ev, proposed = _proposal_fate(eng, rec, "make a tool that reverses text")
        assert proposed.type == "ToolProposed" and proposed.payload["name"] == tool.name
        retried = rec.of("ToolDefinitionRetried")
        assert [e.payload["attempt"] for e in retried] == [1] and retried[0].payload["errors"]
        assert retried[0].payload["bytes"] == len(BROKEN) and retried[0].payload["turn"] == ev.id
        assert rec.wait_for(lambda e: e.type == "Response").payload["text"] == "proposed"
        assert model.roles_seen[-4:] == [0x11, 0x14, 0x14, 0x12]     # both definitions were stepped
    finally:
        assert eng.stop()
    # the stream keeps the second definition only: the state and the tape were rewound together
    told = bytes(eng._tape.data)
    assert good.encode() in told and b"broken_tool" not in told
    assert int(eng.state.position[0]) == eng._tape.end


class _StaticLogits(ScriptedModel):
    """Its steps return their logits in one buffer, as the CUDA-graph fast path does."""

    def step(self, ids, state):
        from types import SimpleNamespace
        out = super().step(ids, state)
        if not hasattr(self, "buf"):
            self.buf = out.logits.clone()
        self.buf.copy_(out.logits)
        return SimpleNamespace(logits=self.buf, opcodes=out.opcodes, info=out.info)


def test_a_retry_starts_from_the_logits_before_the_definition_not_from_a_reused_buffer():
    from engine.toolbridge import ToolService
    # stepped input (no prefill): the logits that chose the definition's role byte live in the
    # buffer, which the broken definition's END overwrites with those of the words after it
    model = _StaticLogits(tiny_model(), reply=[BROKEN, "\x12sorry\n"])
    eng, rec = _engine(model, max_turn_bytes=40, tool_def_retries=1, prefill=False)
    eng.tools = ToolService()
    eng.start()
    try:
        _, fate = _proposal_fate(eng, rec, "make a tool")
        assert fate.type == "ToolRejected" and len(rec.of("ToolDefinitionRetried")) == 1
        assert model.roles_seen.count(0x14) == 2      # the retry wrote a definition again
    finally:
        assert eng.stop()


def test_definition_retries_stop_at_the_limit_and_can_be_turned_off():
    for retries in (2, 0):
        model, eng, rec = _tool_engine([BROKEN] * (retries + 1) + ["\x12sorry\n"], tool_def_retries=retries)
        try:
            _, rejected = _proposal_fate(eng, rec, "make a tool")
            assert rejected.type == "ToolRejected" and rejected.payload["status"] == "invalid"
            attempts = [e.payload["attempt"] for e in rec.of("ToolDefinitionRetried")]
            assert attempts == list(range(1, retries + 1))
            assert model.roles_seen.count(0x14) == retries + 1
            assert rec.wait_for(lambda e: e.type == "Response").payload["text"] == "sorry"
        finally:
            assert eng.stop()


def test_a_definition_begins_with_the_name_hinted_from_the_request_unless_turned_off():
    from engine.tool_names import HEAD
    tool, definition = _definition_turn()            # the model would define reverse_string ...
    asked = "could you put together a tool that adds two numbers?"     # ... asked for add_numbers
    for hint in (True, False):
        model, eng, rec = _tool_engine([definition, "\x12proposed\n"], hint_tool_names=hint,
                                       tool_def_retries=0)
        try:
            ev = eng.submit_user(asked)
            _turn_end(rec, ev.id)
            defs = [t for t in rec.of("Token") if t.payload["turn"] == ev.id]
            written = bytes(t.payload["byte"] for t in defs).decode()
            hinted = rec.of("ToolNameHinted")
            if hint:
                assert [e.payload for e in hinted] == [{"turn": ev.id, "name": "add_numbers"}]
                assert written.startswith("\x14" + HEAD + 'add_numbers"')
            else:
                assert hinted == [] and written.startswith("\x14" + HEAD + tool.name + '"')
        finally:
            assert eng.stop()


class _FakeLearner:
    """The OnlineLearner surface the engine uses (observe / maybe_update / add_replays / consolidate)."""

    def __init__(self):
        self.seen, self.replays, self.version = [], [], 0

    def observe(self, ids):
        self.seen.extend(ids)

    def maybe_update(self):
        self.version += 1
        return [{"type": "AdapterUpdated", "source": "online", "version": self.version, "loss": 1.0}]

    def add_replays(self, replays):
        self.replays.extend(replays)

    def consolidate(self, replays=(), passes=1):
        return [{"type": "AdapterReverted", "source": "consolidation", "version": self.version}]


def test_learner_hook_sees_turn_bytes_and_replays():
    learner = _FakeLearner()
    eng = Engine(ScriptedModel(tiny_model()), config=EngineConfig(
        **{**QUIET, "consolidate_after_idle_s": 0.0, "consolidate_every_s": 0.0},
        consolidation=ConsolidationConfig(replays=2, replay_bytes=8, temperature=1.0)), learner=learner)
    rec = Recorder(eng.bus)
    _store_something(eng)
    eng.start()
    try:
        ev = eng.submit_user("learn this")
        _turn_end(rec, ev.id)
        upd = rec.wait_for(lambda e: e.type == "AdapterUpdated")
        assert upd.payload["version"] == 1 and upd.sender == "learner"
        rec.wait_for(lambda e: e.type == "Consolidated" and e.payload["replays"] > 0)
    finally:
        assert eng.stop()
    assert bytes(learner.seen).startswith(b"\x11learn this\n\x12ok\n")
    assert learner.replays and eng.latest_snapshot().adapter_version == "1"
    # whole REPLAY turns, as the curriculum writes them (the consolidator keeps bare texts)
    assert all(r.startswith("\x17") and r.endswith("\n") and "\n" not in r[:-1] for r in learner.replays)


def test_session_of_another_model_is_refused_not_discarded():
    from engine.store.sessions import SessionMismatchError
    from engine.vm import ModelConfig, MosaicLM
    with Session.open("mine") as session:
        eng, rec = _engine(tiny_model(), session=session)
        eng.start()
        assert eng.stop()
    other = MosaicLM(ModelConfig.preset("tiny").replace(d_model=48))
    with Session.open("mine") as session:
        with pytest.raises(SessionMismatchError, match="another model config"):
            Engine(other, session=session)
        assert session.generations() and not (session.path / "corrupt").exists()


def test_session_opens_after_a_read_setting_changed():
    from engine.vm import MosaicLM
    model = tiny_model()
    with Session.open("mine") as session:
        eng, rec = _engine(model, session=session)
        eng._feed("\x11remember that the door code is 4417\n")
        eng.start()
        assert eng.stop()
        saved = eng.state.position.clone()
    reread = MosaicLM(model.config.replace(match_threshold=0.95, clear_confidence=0.5))
    reread.load_state_dict(model.state_dict())
    with Session.open("mine") as session:
        eng, _ = _engine(reread, session=session)
        assert torch.equal(eng.state.position, saved) and int(saved[0]) > 0


def test_prefill_and_stepping_leave_the_same_state():
    model = tiny_model()
    a, _ = _engine(model, prefill=True)
    b, _ = _engine(model, prefill=False)
    text = "\x11remember that the door code is 4417 and the gate code is 9931\n"
    ops_a, ops_b = a._feed(text), b._feed(text)       # engines not started: this thread owns them
    assert ops_a == ops_b
    assert torch.equal(a.state.position, b.state.position)
    for la, lb in zip(a.state.layers, b.state.layers):
        assert torch.equal(la.mem_valid, lb.mem_valid) and torch.equal(la.mem_age, lb.mem_age)
        for name in ("registers", "conv", "mem_keys", "mem_values", "mem_utility"):
            assert torch.allclose(getattr(la, name), getattr(lb, name), atol=1e-4), name
    assert torch.allclose(a._last_logits, b._last_logits, atol=1e-4)
    assert a.counters["tokens"] == b.counters["tokens"] == len(text.encode())
    assert a.counters["writes"] <= b.counters["writes"]   # prefill counts slots, stepping counts writes
    # both keep the stream on the tape at the state's positions (the stored facts' cues come from it)
    end = int(a.state.position[0])
    assert a._tape.end == b._tape.end == end
    assert a._tape.before(end, 1000) == b._tape.before(end, 1000) == text.encode()
    a._feed("\x12ok\n")
    b._feed("\x12ok\n")
    assert a._tape.before(end + 4, 8) == b._tape.before(end + 4, 8) == (text + "\x12ok\n").encode()[-8:]


def test_consolidation_replays_only_what_memory_holds():
    model = tiny_model()
    state = model.init_state(1)
    empty = Consolidator(model, ConsolidationConfig(replays=3, replay_bytes=8)).run(state)
    assert empty.valid_slots == 0 and empty.replays == []
    with torch.no_grad():
        state.layers[-1].mem_valid[0, 0, 0] = True
    held = Consolidator(model, ConsolidationConfig(replays=3, replay_bytes=8)).run(state)
    assert held.valid_slots == 1 and held.steps > 0


def test_idle_time_deprecates_unused_tools():
    from engine.toolbridge import ToolService
    from toolsmith import ToolPolicy
    tools = ToolService(policy=ToolPolicy(deprecate_idle_s=0.0))
    tool = {"name": "shout", "description": "Upper-case a text.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                           "required": ["text"], "additionalProperties": False},
            "implementation": "def shout(text):\n    return text.upper()\n", "sandbox": True}
    proposed = tools.propose(tool, source="person")
    h = next(e["payload"]["hash"] for e in proposed if e["type"] == "ToolProposed")
    tools.approve("shout", h)
    eng = Engine(tiny_model(), config=EngineConfig(**QUIET), tools=tools)
    rec = Recorder(eng.bus)
    eng.start()
    try:
        dep = rec.wait_for(lambda e: e.type == "ToolDeprecated")
        assert dep.payload["name"] == "shout"
    finally:
        assert eng.stop()
    # hidden from the model, kept on disk
    assert "shout" not in {r.name for r in tools.registry.model_tools()}
    assert tools.registry.get("shout").name == "shout"


def _tool_round(copy: bool, reply: str = "\x12done\n", key: str = "text", **kw):
    """A model that writes a call whose argument drifts ("GOXD DXY" for "GOOD DAY") under ``key``
    and then ``reply``: the ToolCalled and ToolResult payloads and the reply, with or without the
    copy."""
    call = '\x15{"name": "reverse_text", "args": {"%s": "GOXD DXY"}}\n' % key
    model, eng, rec = _tool_engine([call, reply], copy_tool_values=copy, **kw)
    try:
        ev = eng.submit_user("please reverse 'GOOD DAY' for me")
        _turn_end(rec, ev.id)
        return (rec.wait_for(lambda e: e.type == "ToolCalled").payload,
                rec.wait_for(lambda e: e.type == "ToolResult").payload,
                rec.wait_for(lambda e: e.type == "Response").payload["text"])
    finally:
        assert eng.stop()


def test_a_call_copies_its_argument_from_the_persons_line():
    called, result, _ = _tool_round(copy=True)
    assert called["args"] == {"text": "GOOD DAY"} and result["ok"] and result["result"] == "YAD DOOG"
    called, result, _ = _tool_round(copy=False)        # the model's own bytes, as written
    assert called["args"] == {"text": "GOXD DXY"} and result["result"] == "YXD DXOG"


def test_a_calls_keys_are_the_registered_tools_parameters():
    called, result, _ = _tool_round(copy=True, key="item")     # reverse_text's one parameter: text
    assert called["args"] == {"text": "GOOD DAY"} and result["result"] == "YAD DOOG"
    _, result, _ = _tool_round(copy=False, key="item")
    assert not result["ok"] and result["error_type"] == "bad_args"


def test_a_reply_recalls_the_tools_result_where_its_opcode_reads_memory():
    from engine.runtime.engine import OP_READ
    # READ_MEM on the space before the result and on its letters (as the curriculum labels them):
    # each next byte is recalled; the lower-case lead-in is written freely
    reads = lambda b: OP_READ if chr(b) in " YAXDOG" else None  # noqa: E731
    reply = "\x12done: YAX DOOG.\n"
    *_, text = _tool_round(copy=True, reply=reply, op_override=reads)
    assert text == "done: YAD DOOG."
    *_, text = _tool_round(copy=False, reply=reply, op_override=reads)
    assert text == "done: YAX DOOG."
    # a model that goes on after the value: the reply ends after it, as the curriculum's do
    *_, text = _tool_round(copy=True, reply="\x12done: YAX DOOG SILVER.\n", op_override=reads)
    assert text == "done: YAD DOOG."
    # no READ_MEM step: nothing is recalled, nothing is masked
    *_, text = _tool_round(copy=True, reply=reply, op_override=lambda b: 0 if b >= 0x20 else None)
    assert text == "done: YAX DOOG."
