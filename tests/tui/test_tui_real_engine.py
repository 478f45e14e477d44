"""The TUI over the real engine.runtime.Engine (tiny, untrained model; a real session and a real
toolsmith ToolService in the test's MOSAIC_HOME)."""
from __future__ import annotations

import torch
from tui_helpers import log_text, wait_for

from engine.runtime import Engine, EngineConfig
from engine.store.sessions import Session
from engine.toolbridge import ToolService
from engine.vm import ModelConfig, MosaicLM
from mosaic_cli.tui.app import make_app
from mosaic_cli.tui.widgets.tool_modal import KEY_GRACE_S, ToolProposalScreen

TOOL = {"name": "shout", "description": "Upper-case a text.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                       "required": ["text"], "additionalProperties": False},
        "implementation": "def shout(text):\n    return text.upper()\n", "sandbox": True}


def tiny_engine(session: Session | None = None, tools=None) -> Engine:
    torch.manual_seed(0)
    model = MosaicLM(ModelConfig.preset("tiny")).eval()
    config = EngineConfig(max_turn_bytes=24, impulses=False, consolidate_after_idle_s=3600)
    return Engine(model, session=session, config=config, tools=tools)


async def test_chat_over_the_real_engine_shows_its_state_and_saves_on_quit():
    session = Session.open("tui-real")
    engine = tiny_engine(session)
    app = make_app(engine, "chat", session=session, start=True)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            app.query_one("#prompt").value = "hello"
            await pilot.press("enter")
            assert "you › hello" in log_text(app)
            # the untrained model's turn ends (with or without a reply) and snapshots arrive
            assert await wait_for(pilot, lambda: engine.counters["turns"] >= 1 and app.frames_drawn > 0)
            assert await wait_for(pilot, lambda: app.opcode_view.steps != [])
            cfg = engine.model_config
            assert len(app.registers_view.registers) == cfg.n_layers
            assert app.registers_view.registers[0].shape == (cfg.timescales, cfg.register_channels)
            assert app.memory_view.valid[0].shape == (cfg.buckets, cfg.ways)
            assert len(app.opcode_view.steps[-1]) == cfg.n_layers
            assert {d["name"] for d in app.drive_view.drives} >= {"memory_pressure", "idle"}
            assert app.status_line.last is not None and "session tui-real" in app.status_line.last.plain
            await pilot.press("ctrl+c")
        assert not engine.running
        assert session.generations(), "quitting saved a generation of the session"
    finally:
        session.close()


async def test_a_layer_without_memory_shows_as_such_and_the_others_still_draw():
    """The shipped model has no memory in layer 0 (an empty table in every snapshot)."""
    torch.manual_seed(0)
    model = MosaicLM(ModelConfig.preset("tiny").replace(memory_layers=(1,))).eval()
    engine = Engine(model, config=EngineConfig(max_turn_bytes=24, impulses=False, consolidate_after_idle_s=3600))
    app = make_app(engine, "chat", start=True)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#prompt").value = "hello"
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: engine.counters["turns"] >= 1 and app.frames_drawn > 0)
        view = app.memory_view
        assert view.valid[0].size == 0 and view.valid[1].shape == (4, 2)
        assert app.selected_layer == 1 and not view.no_memory() and len(view.build(60).segment_lines()) == 2
        await pilot.press("f3")        # layer 1 -> all layers: the mean over the layers with memory
        assert app.selected_layer is None and len(view.build(60).segment_lines()) == 2
        await pilot.press("f3")        # -> layer 0
        await pilot.pause()
        assert app.selected_layer == 0 and view.no_memory()
        assert "layer 0 has no memory" in "".join(seg.text for line in view.lines(60) for seg in line)
        await pilot.press("ctrl+c")
    assert not engine.running


async def test_a_real_proposal_approved_in_the_modal_is_registered():
    tools = ToolService()
    engine = tiny_engine(tools=tools)
    app = make_app(engine, "watch", start=True)
    async with app.run_test(size=(100, 30)) as pilot:
        for event in tools.propose(TOOL, source="model"):      # as if the model had proposed it
            engine.submit(engine_event(event))
        assert await wait_for(pilot, lambda: isinstance(app.screen, ToolProposalScreen))
        proposal = app.screen.proposal
        assert proposal.name == "shout" and "text.upper()" in proposal.source
        assert proposal.errors == []                             # validated by toolsmith
        await pilot.pause(KEY_GRACE_S)                           # keys right after opening are ignored
        await pilot.press("a")
        await app.workers.wait_for_complete()
        assert await wait_for(pilot, lambda: "registered shout" in log_text(app))
        assert tools.registry.get("shout").current
        await pilot.press("q")
    assert not engine.running


def engine_event(item: dict):
    from engine.runtime.events import Event
    return Event(item["type"], item["payload"], sender="tools")
