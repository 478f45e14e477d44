"""Pilot tests: the TUI driven by keys against a fake engine that follows the Runtime contract."""
from __future__ import annotations

import json

from fake_engine import FakeEngine
from tui_helpers import log_text, plain, rendered_text, wait_for

from mosaic_cli.tui.app import make_app
from mosaic_cli.tui.widgets.drives import IMPULSE_FRAMES
from mosaic_cli.tui.widgets.help import HelpScreen
from mosaic_cli.tui.widgets.tool_modal import KEY_GRACE_S, ToolProposalScreen

SIZE = (100, 30)


async def _dialog_opens(pilot, app) -> bool:
    """Whether a proposal's dialog comes up: its details are gathered on a worker thread and it
    opens from the UI thread after (a bound for a loaded machine, not a timing assertion)."""
    return await wait_for(pilot, lambda: isinstance(app.screen, ToolProposalScreen))


async def test_typing_a_message_gets_a_reply_from_the_engine_thread():
    engine = FakeEngine(step_period=0.002)
    app = make_app(engine, "chat", start=True)
    async with app.run_test(size=SIZE) as pilot:
        # Each pilot key press waits (up to ~1 s) for the process to look idle, which it never does
        # with an engine thread stepping; so type the line directly and press one key.
        app.query_one("#prompt").value = "hello there"
        await pilot.press("enter")
        assert "you › hello there" in log_text(app)
        assert app.query_one("#prompt").value == ""
        # the reply streams token by token from the engine's thread, then the Response lands
        assert await wait_for(pilot, lambda: "(reply complete)" in log_text(app))
        assert engine.thread is not None and engine.thread.is_alive()
        await pilot.press("ctrl+c")
    assert engine.stopped


async def test_a_scripted_reply_is_logged_and_the_reply_line_empties():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"the door code is 4417", "enter")
        await pilot.pause()
        text = log_text(app)
        assert "you › the door code is 4417" in text
        assert "mosaic › you said: the door code is 4417" in text
        app.refresh_frame()
        assert app.reply_line.text() == ""


async def test_an_impulse_lights_its_drive_then_fades():
    engine = FakeEngine()
    app = make_app(engine, "watch", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        engine.run_steps(10)
        app.refresh_frame()
        before = rendered_text(app.drive_view)
        assert "↯" not in before and "memory_pressure" in before
        engine.impulse("memory_pressure", urgency=0.9)
        await pilot.pause()
        assert "memory_pressure" in app.drive_view.flashes
        lit = rendered_text(app.drive_view)
        assert "↯memory_pressure" in lit.replace(" ", "")
        assert "impulse memory_pressure urgency 0.90" in log_text(app)
        for _ in range(IMPULSE_FRAMES):
            app.refresh_frame()
        assert "↯" not in rendered_text(app.drive_view)


async def test_a_proposal_opens_the_modal_and_approving_registers_the_tool():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        h = engine.propose_tool("word_count")
        assert await _dialog_opens(pilot, app)
        assert app.screen.proposal.name == "word_count" and app.screen.proposal.hash == h
        assert "def word_count" in app.screen.proposal.source
        await pilot.press("a")                    # too soon after the dialog opened: ignored
        await pilot.pause()
        assert isinstance(app.screen, ToolProposalScreen) and "word_count" not in engine.tools.registered
        await pilot.pause(KEY_GRACE_S)
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ToolProposalScreen)
        assert "word_count" in engine.tools.registered
        assert "registered word_count" in log_text(app)
        app.refresh_frame()
        assert app.tools_list.keys == ()


async def test_a_proposal_is_looked_up_off_the_ui_thread():
    import threading
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    seen = []
    lookup = engine.tools.get
    engine.tools.get = lambda key: (seen.append(threading.current_thread()), lookup(key))[1]
    async with app.run_test(size=SIZE) as pilot:
        ui = threading.current_thread()
        engine.propose_tool("word_count")
        assert await _dialog_opens(pilot, app)
        assert "def word_count" in app.screen.proposal.source
        assert seen and all(t is not ui for t in seen)   # the service (SQLite in the real engine) never on the UI thread


async def test_a_proposal_does_not_pop_up_while_the_person_is_typing():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h", "e", "l")
        engine.propose_tool("word_count")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("a")                    # meant for the chat line
        await pilot.pause()
        assert not isinstance(app.screen, ToolProposalScreen)
        assert app.query_one("#prompt").value == "hela"
        assert "word_count" not in engine.tools.registered
        await pilot.press("f4")                   # the person opens it when ready
        assert await _dialog_opens(pilot, app)


async def test_rejecting_by_button_denies_the_tool_and_view_shows_the_full_source():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    long_source = "def padded(text: str) -> str:\n" + "".join(f"    x{i} = {i}\n" for i in range(30)) + \
                  "    return text\n"
    async with app.run_test(size=SIZE) as pilot:
        h = engine.propose_tool("padded", source=long_source)
        assert await _dialog_opens(pilot, app)
        modal = app.screen
        assert "more lines" in plain(modal.source())
        await pilot.press("v")
        assert modal.full and modal.query_one("#dialog").has_class("full")
        shown = plain(modal.source())
        assert "return text" in shown and "more lines" not in shown
        await pilot.click("#reject")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert h in engine.tools.rejected and "padded" not in engine.tools.registered
        assert "denied padded" in log_text(app)


async def test_a_proposal_with_validation_errors_shows_them():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        engine.propose_tool("bad_tool", errors=[{"field": "implementation", "message": "imports are not allowed"}])
        assert await _dialog_opens(pilot, app)
        text = plain(app.screen.validation())
        assert "1 validation problem" in text and "implementation: imports are not allowed" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ToolProposalScreen)
        assert app.tools_list.keys, "closing without a decision keeps the proposal pending"
        await pilot.press("f4")                     # reopens the highlighted pending proposal
        assert await _dialog_opens(pilot, app)
        assert app.screen.proposal.name == "bad_tool"


async def test_a_failed_approval_is_reported_and_nothing_is_registered():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        engine.propose_tool("word_count")
        assert await _dialog_opens(pilot, app)
        engine.tools.proposed.clear()               # the service no longer knows the proposal
        await pilot.pause(KEY_GRACE_S)
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "approve word_count failed" in log_text(app)
        assert engine.tools.registered == {}


async def test_q_quits_and_saves_the_session_in_watch_mode():
    engine = FakeEngine(session="quitter")
    app = make_app(engine, "watch", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert engine.stopped
    assert json.loads(engine.saved_to.read_text())["steps"] == engine.steps
    assert engine.saved_to.parent.name == "quitter"


async def test_in_chat_q_is_typed_and_ctrl_c_quits_and_saves():
    engine = FakeEngine()
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert app.query_one("#prompt").value == "q"
        assert not engine.stopped
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert engine.stopped and engine.saved_to.exists()


async def test_the_layer_selector_cycles_all_and_each_layer():
    engine = FakeEngine(layers=3)
    app = make_app(engine, "chat", fps=0)
    async with app.run_test(size=SIZE) as pilot:
        engine.run_steps(20)
        app.refresh_frame()
        assert app.selected_layer == 2          # starts on the layer whose opcodes the runtime reads
        assert "layer 2" in str(app.registers_view.border_title)
        seen = []
        for _ in range(4):
            await pilot.press("f3")
            seen.append(app.selected_layer)
        assert seen == [None, 0, 1, 2]
        await pilot.press("f2")
        assert app.selected_layer == 1
        assert app.memory_view.selected == 1 and app.registers_view.selected == 1
        assert "memory · layer 1" in str(app.memory_view.border_title)


async def test_memory_flashes_on_read_and_write_then_fade():
    engine = FakeEngine(layers=1, buckets=8, ways=2)
    app = make_app(engine, "watch", fps=0)
    async with app.run_test(size=SIZE):
        engine.run_steps(1)
        app.refresh_frame()
        engine.reads[0].append((3, -1))          # a read probes a whole bucket
        engine.writes[0].append((5, 1))
        engine.publish_snapshot()
        app.refresh_frame()
        flashes = app.memory_view.flashes
        assert flashes[(0, 3, 0)][1] == "read" and flashes[(0, 3, 1)][1] == "read"
        assert flashes[(0, 5, 1)][1] == "write"
        for _ in range(10):
            app.refresh_frame()
        assert app.memory_view.flashes == {}


async def test_help_screen_and_theme_toggle():
    engine = FakeEngine()
    app = make_app(engine, "watch", fps=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        dark = app.current_theme.dark
        await pilot.press("f5")
        assert app.current_theme.dark != dark
