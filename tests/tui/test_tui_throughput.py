"""A slow UI must never slow the engine.

Two fake engines step at the same fixed pace in the same process over the same interval: one
headless, one attached to the TUI, whose UI loop a deliberately slow widget keeps blocked. The
pace catches up scheduler jitter (up to 10 periods) but drops steps beyond that, so anything that
held the attached engine back for longer (one slow render is 16 periods) shows as missing steps. Counts are compared, not wall times,
and both engines see the same machine load, so the check holds on a busy 2-core machine.
"""
from __future__ import annotations

import asyncio
import time

from fake_engine import FakeEngine
from textual.widgets import Static

from mosaic_cli.tui.app import make_app

PERIOD = 0.005   # 200 steps a second per engine
WINDOW = 3.0     # seconds of stepping compared


class SlowPanel(Static):
    """Blocks the UI loop for ``block_s`` on every render, and asks for a render 20 times a second."""

    def __init__(self, block_s: float) -> None:
        super().__init__("slow")
        self.block_s = block_s
        self.renders = 0

    def on_mount(self) -> None:
        self.set_interval(1 / 20, self.refresh)

    def render(self) -> str:
        time.sleep(self.block_s)      # the UI thread stalls; the GIL is free for the engines
        self.renders += 1
        return f"slow panel: {self.renders} renders"


async def test_engine_step_rate_with_a_slow_tui_matches_headless():
    headless = FakeEngine(step_period=PERIOD, seed=1)
    attached = FakeEngine(step_period=PERIOD, seed=2)
    app = make_app(attached, "watch", start=True)
    async with app.run_test(size=(100, 30)) as pilot:
        slow = SlowPanel(block_s=0.08)
        await app.query_one("#right").mount(slow)
        headless.start()
        await asyncio.sleep(0.5)                      # both engines running, the UI busy
        h0, a0, f0 = headless.steps, attached.steps, app.frames_drawn
        await asyncio.sleep(WINDOW)                   # the UI loop runs (slowly) meanwhile
        h1, a1, f1 = headless.steps, attached.steps, app.frames_drawn
        headless.stop()
        await pilot.press("q")
    head, tui = h1 - h0, a1 - a0
    print(f"steps in {WINDOW} s: headless {head}, attached {tui} (ratio {tui / max(head, 1):.3f}); "
          f"UI frames {f1 - f0}, slow renders {slow.renders}")
    assert slow.renders >= 3, "the slow widget must actually have blocked the UI"
    assert f1 - f0 >= 1, "the UI must still have drawn engine frames"
    assert head > 0.5 * WINDOW / PERIOD, "the baseline engine barely ran"
    assert abs(tui - head) <= 0.10 * head, f"attached {tui} steps vs headless {head}"
    assert attached.stopped, "quitting stopped (and saved) the attached engine"


def test_the_measure_catches_a_subscriber_that_blocks():
    """The same pacing shows a slowdown when a subscriber does block the engine (so the
    comparison above could fail)."""
    free = FakeEngine(step_period=PERIOD, seed=1)
    blocked = FakeEngine(step_period=PERIOD, seed=2)
    blocked.bus.subscribe("Token", lambda event: time.sleep(3 * PERIOD))
    free.start()
    blocked.start()
    time.sleep(0.3)
    f0, b0 = free.steps, blocked.steps
    time.sleep(1.5)
    f1, b1 = free.steps, blocked.steps
    free.stop()
    blocked.stop()
    assert (b1 - b0) < 0.6 * (f1 - f0)
