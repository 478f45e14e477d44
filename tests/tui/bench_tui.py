"""Benchmark (not a test): engine tokens/s with the TUI attached against headless, in the same run,
and the UI's frame rate.

    .venv/bin/python tests/tui/bench_tui.py [--window 10] [--real] [--real-window 20]

Part 1, fake engines stepping at a fixed pace (5 ms): a headless engine and a TUI-attached one
run side by side over the same interval; the TUI is plain, or has a slow widget that sleeps
80 ms per render (blocks the UI loop), or one that busy-loops 80 ms per render (also holds the GIL).
Part 2 (--real): two real engines (engine.runtime.Engine, ModelConfig 'default' preset,
untrained) fed user lines back to back, one headless, one under the TUI.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("MOSAIC_HOME", tempfile.mkdtemp(prefix="mosaic-bench-"))

from fake_engine import FakeEngine  # noqa: E402
from textual.widgets import Static  # noqa: E402

from mosaic_cli.tui.app import make_app  # noqa: E402


class SlowPanel(Static):
    def __init__(self, block_s: float, busy: bool) -> None:
        super().__init__("slow")
        self.block_s, self.busy, self.renders = block_s, busy, 0

    def on_mount(self) -> None:
        self.set_interval(1 / 20, self.refresh)

    def render(self) -> str:
        if self.busy:
            end = time.perf_counter() + self.block_s
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(self.block_s)
        self.renders += 1
        return f"slow {self.renders}"


async def fake_run(slow: str, window: float, period: float = 0.005) -> dict:
    headless = FakeEngine(step_period=period, seed=1)
    attached = FakeEngine(step_period=period, seed=2)
    app = make_app(attached, "watch", start=True)
    async with app.run_test(size=(100, 30)) as pilot:
        if slow != "none":
            await app.query_one("#right").mount(SlowPanel(0.08, busy=slow == "busy"))
        headless.start()
        await asyncio.sleep(1.0)
        h0, a0, f0, t0, c0 = headless.steps, attached.steps, app.frames_drawn, app.tokens_seen, time.perf_counter()
        await asyncio.sleep(window)
        h1, a1, f1, t1, c1 = headless.steps, attached.steps, app.frames_drawn, app.tokens_seen, time.perf_counter()
        headless.stop()
        await pilot.press("q")
    dt = c1 - c0
    return {"slow": slow, "headless_steps_s": (h1 - h0) / dt, "tui_steps_s": (a1 - a0) / dt,
            "ratio": (a1 - a0) / max(h1 - h0, 1), "ui_frames_s": (f1 - f0) / dt, "tokens_drained_s": (t1 - t0) / dt}


async def real_run(window: float) -> dict:
    import threading

    import torch
    from engine.runtime import Engine, EngineConfig
    from engine.vm import ModelConfig, MosaicLM

    torch.set_num_threads(1)

    def engine() -> Engine:
        torch.manual_seed(0)
        model = MosaicLM(ModelConfig.preset("default")).eval()
        return Engine(model, config=EngineConfig(max_turn_bytes=120, impulses=False, consolidate_after_idle_s=3600))

    headless, attached = engine(), engine()
    stop = threading.Event()

    def feed(e: Engine) -> None:   # keep each engine busy: a new user line whenever its inbox is empty
        while not stop.is_set():
            if e.pending() == 0:
                e.submit_user("remember that the door code is 4417, and tell me about the weather")
            time.sleep(0.01)

    app = make_app(attached, "chat", start=True)
    async with app.run_test(size=(100, 30)) as pilot:
        headless.start()
        feeders = [threading.Thread(target=feed, args=(e,), daemon=True) for e in (headless, attached)]
        for f in feeders:
            f.start()
        await asyncio.sleep(3.0)
        h0, a0, f0, c0 = headless.counters["tokens"], attached.counters["tokens"], app.frames_drawn, time.perf_counter()
        await asyncio.sleep(window)
        h1, a1, f1, c1 = headless.counters["tokens"], attached.counters["tokens"], app.frames_drawn, time.perf_counter()
        stop.set()
        headless.stop()
        await pilot.press("ctrl+c")
    dt = c1 - c0
    return {"slow": "real engine", "headless_steps_s": (h1 - h0) / dt, "tui_steps_s": (a1 - a0) / dt,
            "ratio": (a1 - a0) / max(h1 - h0, 1), "ui_frames_s": (f1 - f0) / dt, "tokens_drained_s": float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--real-window", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each case")
    ap.add_argument("--only-real", action="store_true")
    args = ap.parse_args()
    rows = [] if args.only_real else [asyncio.run(fake_run(slow, args.window))
                                      for slow in ("none", "sleep", "busy") for _ in range(args.repeat)]
    if args.real or args.only_real:
        rows += [asyncio.run(real_run(args.real_window)) for _ in range(args.repeat)]
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<12} {'headless/s':>10} {'tui/s':>8} {'ratio':>6} {'ui fps':>7} {'tokens->ui/s':>12}")
    for r in rows:
        print(f"{r['slow']:<12} {r['headless_steps_s']:10.1f} {r['tui_steps_s']:8.1f} {r['ratio']:6.3f} "
              f"{r['ui_frames_s']:7.1f} {r['tokens_drained_s']:12.1f}")


if __name__ == "__main__":
    main()
