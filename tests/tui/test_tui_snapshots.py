"""Snapshot tests (pytest-textual-snapshot): the main screen and the tool dialog at fixed sizes.

The app comes from the same ``make_app`` the CLI uses, over a scripted fake engine: no engine
thread, the refresh timer off (fps=0), one frame drawn by hand, so every run draws the same.
Update after reading the report: ``pytest tests/tui/test_tui_snapshots.py --snapshot-update``.
"""
from __future__ import annotations

from fake_engine import FakeEngine

from mosaic_cli.tui.app import make_app


def scripted_app(mode: str = "chat", theme: str | None = None):
    engine = FakeEngine(seed=1)
    app = make_app(engine, mode, session="demo", fps=0)

    async def run_before(pilot) -> None:
        if theme:
            app.theme = theme
        engine.run_steps(60)
        await pilot.press(*"the door code is 4417", "enter")
        engine.impulse("memory_pressure", urgency=0.35)
        engine.run_steps(4)
        app.refresh_frame()
        await pilot.pause()

    return app, engine, run_before


def test_main_screen_chat_100x30(snap_compare):
    app, _, run_before = scripted_app()
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_main_screen_chat_80x24_light(snap_compare):
    app, _, run_before = scripted_app(theme="textual-light")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_tool_proposal_modal_100x30(snap_compare):
    app, engine, run_before = scripted_app()

    async def open_proposal(pilot) -> None:
        await run_before(pilot)
        engine.propose_tool("word_count")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_proposal)
