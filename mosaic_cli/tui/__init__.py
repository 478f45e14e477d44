"""The Textual TUI of ``mosaic chat`` and ``mosaic watch``.

``run_chat`` / ``run_watch`` are what ``mosaic_cli/chat_cmd.py`` calls when stdout is a
terminal; ``app.make_app`` is the one factory they and the tests share.
"""
from __future__ import annotations

import sys
from typing import Any


def run(engine: Any, mode: str, session: Any = None) -> None:
    """Run the TUI in ``mode`` until the person quits; the engine is started after the UI
    subscribed to its bus and is always stopped (state saved) on the way out."""
    from mosaic_cli.tui.app import make_app

    app = make_app(engine, mode, session, start=True)
    try:
        app.run()
    finally:
        error = app.stop_engine()   # a no-op when q / Ctrl-C already stopped it
        if error:
            print(error, file=sys.stderr)


def run_chat(engine: Any, session: Any = None) -> None:
    """``mosaic chat`` in a terminal: the input line and the live panels."""
    run(engine, "chat", session)


def run_watch(engine: Any, session: Any = None) -> None:
    """``mosaic watch`` in a terminal: the engine's events and the live panels, nobody talking."""
    run(engine, "watch", session)
