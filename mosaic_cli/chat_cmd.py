"""``mosaic chat`` and ``mosaic watch``: the fronts of the runtime (engine.runtime).

With a terminal and without ``--plain`` / ``--headless`` they open the TUI
(``mosaic_cli.tui.run_chat`` / ``run_watch``) when it is available; otherwise a plain
front: ``chat --plain`` reads a person's lines from stdin and prints the replies,
``watch --headless`` prints the engine's events. ``--jsonl`` prints every event as one
JSON object per line (at least ``type`` and ``ts``). Ctrl-C or SIGTERM stops the engine,
which saves the session and flushes its log, and the command exits 0.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any, Optional

import typer

from mosaic_cli.errors import fail


def _load_model(path: str | None) -> Any:
    try:
        from engine.vm.checkpoint import resolve_model
    except ImportError:
        resolve_model = None
    if resolve_model is not None:
        try:
            return resolve_model(path)
        except Exception as exc:   # ModelError and friends carry a clear one-line message
            fail(str(exc).splitlines()[0] if str(exc) else f"cannot load model {path!r}: {type(exc).__name__}")
    from engine.vm import ModelConfig, MosaicLM
    if path:
        fail(f"cannot load model {path!r}: engine.vm.checkpoint is not available")
    typer.echo("warning: no default model shipped; using a fresh, untrained one", err=True)
    return MosaicLM(ModelConfig.preset("default"))


def _tool_service() -> Any:
    try:
        from engine.toolbridge import ToolService
        return ToolService()
    except Exception as exc:  # tools are optional for chatting
        typer.echo(f"warning: tools unavailable ({type(exc).__name__}: {exc})", err=True)
        return None


def _learner(model: Any, session_name: str | None) -> Any:
    """The medium timescale: LoRA adapters of this session, resumed if saved (None on failure)."""
    try:
        from engine.learn.session import learner_for_session
        return learner_for_session(model, session_name)
    except Exception as exc:  # chatting must not depend on the learner
        typer.echo(f"warning: online learning unavailable ({type(exc).__name__}: {exc})", err=True)
        return None


def _open_engine(session_name: str | None, model_path: str | None, learn: bool = True,
                 **config: Any) -> tuple[Any, Any]:
    from engine.runtime import Engine, EngineConfig
    from engine.store.sessions import Session, SessionError

    session = None
    if session_name is not None:  # first: a bad or busy session fails before any model work
        try:
            session = Session.open(session_name)
        except SessionError as exc:
            fail(str(exc))
        for warning in session.warnings:
            typer.echo(f"warning: {warning}", err=True)
    model = _load_model(model_path)
    model.eval()
    # Adapters wrap the model before the engine (or any captured fast path) sees it.
    learner = _learner(model, session_name) if learn else None
    try:
        engine = Engine(model, session=session, config=EngineConfig(**config), tools=_tool_service(),
                        learner=learner)
    except Exception as exc:
        if session is not None:
            session.close()
        fail(f"cannot start the engine: {type(exc).__name__}: {exc}")
    return engine, session


class _JsonlPrinter:
    """Bus subscriber: every event as one JSON line on stdout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, ev: Any) -> None:
        line = ev.dumps() + "\n"
        with self._lock:
            sys.stdout.write(line)
            sys.stdout.flush()


def _human_line(ev: Any) -> str | None:
    p = ev.payload
    stamp = time.strftime("%H:%M:%S", time.localtime(ev.ts))
    if ev.type == "Token":
        return None
    if ev.type == "Response":
        return f"{stamp} Response{' (self)' if p.get('self_activated') else ''}: {p.get('text', '')}"
    if ev.type == "Impulse":
        return f"{stamp} Impulse {p.get('drive')} urgency={p.get('urgency', 0):.3f} -> {p.get('target')}"
    if ev.type == "Consolidated":
        return (f"{stamp} Consolidated replays={p.get('replays')} cued={p.get('cued', 0)} "
                f"pruned={p.get('pruned')} {'aborted ' if p.get('aborted') else ''}{p.get('seconds')}s")
    if ev.type == "EngineError":
        return f"{stamp} EngineError in {p.get('where')}: {p.get('error')}"
    short = ", ".join(f"{k}={v}" for k, v in p.items() if not isinstance(v, (list, dict)))[:160]
    return f"{stamp} {ev.type} {short}"


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _install_signals() -> dict[int, Any]:
    """SIGTERM behaves like Ctrl-C (a clean stop); returns the handlers to restore."""
    old = {signal.SIGINT: signal.getsignal(signal.SIGINT), signal.SIGTERM: signal.getsignal(signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return old


def _shutdown(engine: Any, session: Any, old_handlers: dict[int, Any]) -> int:
    """Stop the engine (it saves), close the session; 0 if everything was flushed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # a second Ctrl-C must not cut the save short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ok = engine.stop(timeout=15.0)
        learner = getattr(engine, "learner", None)
        if ok and session is not None and learner is not None and hasattr(learner, "save"):
            try:
                learner.save(session.name)
            except Exception as exc:
                typer.echo(f"error: saving the adapters failed: {exc}", err=True)
                ok = False
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    if session is not None:
        try:
            session.close()
        except Exception as exc:
            typer.echo(f"error: closing the session failed: {exc}", err=True)
            ok = False
    if not ok:
        typer.echo("error: the engine did not stop in time; the last changes may not be saved", err=True)
    return 0 if ok else 1


def _tui(mode: str) -> Any:
    try:
        from mosaic_cli import tui
    except ImportError:
        return None
    return getattr(tui, "run_chat" if mode == "chat" else "run_watch", None)


def tool_note(ev: Any) -> str | None:
    """The one line ``--plain`` prints on stderr for a tool proposal's fate or a call's result (None
    for other events): the result as the tool returned it, whatever the reply makes of it."""
    p = ev.payload
    if ev.type == "ToolProposed":
        return (f"tool proposed: {p.get('name')} v{p.get('version')}; review it with "
                f"`mosaic tools approve {p.get('name')}`")
    if ev.type == "ToolRejected":
        why = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in p.get("errors") or []) or p.get("status")
        return f"tool rejected: {p.get('name') or '(no name)'}: {why}"
    if ev.type == "ToolNameHinted":
        return f"tool definition named from your words: {p.get('name')} (--no-hint: the model names it)"
    if ev.type == "ToolDefinitionRetried":
        why = "; ".join(p.get("errors") or []) or "invalid"
        return f"tool definition did not validate ({why}); writing it again (retry {p.get('attempt')})"
    if ev.type == "ToolResult":
        if p.get("ok"):
            return f"tool {p.get('name')} returned {json.dumps(p.get('result'))[:300]}"
        who = f"tool {p.get('name')}" if p.get("name") else "a tool call"   # None: the call did not parse
        return f"{who} failed ({p.get('error_type') or 'error'}): {str(p.get('error'))[:300]}"
    return None


def _plain_chat(engine: Any, jsonl: bool) -> None:
    done: dict[str, Any] = {}
    replies: dict[str, str] = {}
    cond = threading.Condition()
    out_lock = threading.Lock()

    def on_event(ev: Any) -> None:
        if ev.type == "Response":
            if ev.payload.get("self_activated"):
                if not jsonl:
                    with out_lock:
                        sys.stdout.write(f"* {ev.payload.get('text', '')}\n")
                        sys.stdout.flush()
            else:
                with cond:
                    replies[ev.payload.get("reply_to", "")] = ev.payload.get("text", "")
        elif ev.type == "TurnEnded":
            with cond:
                done[ev.payload.get("turn", "")] = ev
                cond.notify_all()
        elif not jsonl and (note := tool_note(ev)):
            with out_lock:  # stderr: stdout stays one reply line per user line
                sys.stderr.write(note + "\n")
                sys.stderr.flush()

    for kind in ("Response", "TurnEnded", "ToolProposed", "ToolRejected", "ToolDefinitionRetried",
                 "ToolNameHinted", "ToolResult"):
        engine.bus.subscribe(kind, on_event)
    if jsonl:
        engine.bus.subscribe("*", _JsonlPrinter())
    engine.start()
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            sys.stdout.write("> ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        ev = engine.submit_user(text)
        with cond:
            while ev.id not in done:
                if not engine.running:
                    return
                cond.wait(0.2)
        if not jsonl:
            with out_lock:
                sys.stdout.write(replies.pop(ev.id, "") + "\n")
                sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add ``chat`` and ``watch``."""

    @app.command()
    def chat(
        plain: bool = typer.Option(False, "--plain", help="line REPL on stdin/stdout instead of the TUI"),
        jsonl: bool = typer.Option(False, "--jsonl", help="print every event as one JSON line (with --plain)"),
        session: Optional[str] = typer.Option(None, "--session", help="keep state and log under this name"),
        model: Optional[str] = typer.Option(None, "--model", help="model file (default: the shipped model)"),
        temperature: float = typer.Option(0.0, min=0.0, help="0 = greedy"),
        max_turn_bytes: int = typer.Option(200, min=1, help="cap on one reply (a tool definition or call may run to 2,048)"),
        impulses: bool = typer.Option(True, "--impulses/--no-impulses", help="let drives wake the model"),
        learn: bool = typer.Option(True, "--learn/--no-learn", help="online LoRA learning (medium timescale)"),
        copy: bool = typer.Option(True, "--copy/--no-copy", help="tool calls copy their argument values from "
                                  "your line, replies the tool's result (--no-copy: the model's own bytes)"),
        hint: bool = typer.Option(True, "--hint/--no-hint",
                                  help="a tool definition begins with the name of the known tool nearest "
                                  "your line's words (--no-hint: the model names it)"),
    ) -> None:
        """Chat with the model (TUI in a terminal; --plain: a user line in, the reply out)."""
        engine, sess = _open_engine(session, model, learn, temperature=temperature,
                                    max_turn_bytes=max_turn_bytes, impulses=impulses, copy_tool_values=copy,
                                    hint_tool_names=hint)
        old = _install_signals()
        try:
            runner = None if (plain or jsonl or not sys.stdout.isatty() or not sys.stdin.isatty()) else _tui("chat")
            if runner is not None:
                runner(engine, sess)
            else:
                _plain_chat(engine, jsonl)
        except KeyboardInterrupt:
            pass
        raise typer.Exit(_shutdown(engine, sess, old))

    @app.command()
    def watch(
        headless: bool = typer.Option(False, "--headless", help="print events instead of the TUI"),
        jsonl: bool = typer.Option(False, "--jsonl", help="one JSON object per event"),
        duration: Optional[float] = typer.Option(None, "--duration", min=0.0, help="stop after S seconds"),
        session: Optional[str] = typer.Option(None, "--session", help="keep state and log under this name"),
        model: Optional[str] = typer.Option(None, "--model", help="model file (default: the shipped model)"),
        idle_consolidation_s: float = typer.Option(5.0, min=0.0, help="quiet seconds before consolidating"),
        learn: bool = typer.Option(True, "--learn/--no-learn", help="online LoRA learning (medium timescale)"),
    ) -> None:
        """Run the engine with nobody talking: impulses, self-activation, idle consolidation."""
        engine, sess = _open_engine(session, model, learn, consolidate_after_idle_s=idle_consolidation_s,
                                    consolidate_every_s=max(idle_consolidation_s, 1.0) * 2)
        old = _install_signals()
        try:
            runner = None if (headless or jsonl or not sys.stdout.isatty()) else _tui("watch")
            if runner is not None:
                runner(engine, sess)
            else:
                if jsonl:
                    engine.bus.subscribe("*", _JsonlPrinter())
                else:
                    def human(ev: Any) -> None:
                        line = _human_line(ev)
                        if line:
                            sys.stdout.write(line + "\n")
                            sys.stdout.flush()
                    engine.bus.subscribe("*", human)
                engine.start()
                deadline = None if duration is None else time.monotonic() + duration
                while engine.running and (deadline is None or time.monotonic() < deadline):
                    time.sleep(0.05 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
        except KeyboardInterrupt:
            pass
        raise typer.Exit(_shutdown(engine, sess, old))
