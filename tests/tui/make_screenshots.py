"""Write docs/screenshots/{chat,watch}.svg: the TUI at 100x30 over the real engine.

    .venv/bin/python tests/tui/make_screenshots.py

The model is the shipped default model (engine/assets/default.safetensors, see MODEL.md).
"""
from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("MOSAIC_HOME", tempfile.mkdtemp(prefix="mosaic-shots-"))

import torch  # noqa: E402
from tui_helpers import wait_for  # noqa: E402

from engine.runtime import Engine, EngineConfig  # noqa: E402
from engine.runtime.events import Event  # noqa: E402
from engine.store.sessions import Session  # noqa: E402
from engine.toolbridge import ToolService  # noqa: E402
from engine.vm.checkpoint import resolve_model  # noqa: E402
from mosaic_cli.tui.app import make_app  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZE = (100, 30)
TOOL = {"name": "shout", "description": "Upper-case a text and add an exclamation mark.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                       "required": ["text"], "additionalProperties": False},
        "implementation": "def shout(text):\n    return text.upper() + '!'\n", "sandbox": True}


def engine(session: Session | None, tools: ToolService | None = None) -> Engine:
    torch.manual_seed(0)
    model = resolve_model(None).eval()
    return Engine(model, session=session, tools=tools,
                  config=EngineConfig(max_turn_bytes=60, impulses=False, consolidate_after_idle_s=3600))


async def chat() -> None:
    session = Session.open("demo")
    eng = engine(session)
    app = make_app(eng, "chat", session=session, start=True)
    async with app.run_test(size=SIZE) as pilot:
        for line in ("remember that the door code is 4417", "how are you today?", "what is the door code?"):
            app.query_one("#prompt").value = line
            turns = eng.counters["turns"]
            await pilot.press("enter")
            await wait_for(pilot, lambda: eng.counters["turns"] > turns, timeout=120)
        await pilot.pause(0.5)
        app.save_screenshot("chat.svg", str(OUT))
        await pilot.press("ctrl+c")
    session.close()


async def watch() -> None:
    tools = ToolService()
    eng = engine(None, tools)
    app = make_app(eng, "watch", start=True)
    async with app.run_test(size=SIZE) as pilot:
        for item in tools.propose(TOOL, source="model"):
            eng.submit(Event(item["type"], item["payload"], sender="tools"))
        await wait_for(pilot, lambda: len(app.screen_stack) > 1, timeout=30)
        await pilot.press("escape")                       # leave it pending
        eng.submit(Event("Impulse", {"drive": "low_confidence", "metric": "logit_entropy", "value": 0.97,
                                     "low": 0.0, "high": 0.85, "urgency": 0.24,
                                     "template": "impulse_low_confidence"}, sender="homeostasis"))
        await wait_for(pilot, lambda: eng.counters["self_activations"] >= 1 and eng.counters["turns"] >= 1,
                       timeout=120)
        await pilot.pause(0.3)
        app.save_screenshot("watch.svg", str(OUT))
        await pilot.press("q")


if __name__ == "__main__":
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    asyncio.run(chat())
    asyncio.run(watch())
    print(f"wrote {OUT / 'chat.svg'} and {OUT / 'watch.svg'}")
