"""The mosaic TUI: one screen of live panels over a running engine.

The engine reaches the UI in two ways only, and neither can block it:
  * its bus calls ``forward_event`` on the publishing thread, which only posts a message
    (``App.post_message`` is thread-safe and never waits) or, for the per-byte Token events,
    appends to a bounded deque that the next frame drains;
  * a UI timer (``fps`` times a second) reads ``engine.latest_snapshot()``, an immutable
    object, and repaints the heavy panels only when a new snapshot arrived.
So a slow panel delays the next frame, never the next engine step.
"""
from __future__ import annotations

import time
from collections import deque
from functools import partial
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Input, OptionList

from mosaic_cli.tui.messages import EngineEvent, UiNote
from mosaic_cli.tui.proposal import ToolProposal
from mosaic_cli.tui.widgets.chat import ERROR, SYSTEM, TOOL, EventLog, ReplyLine, payload_text
from mosaic_cli.tui.widgets.drives import DriveBands
from mosaic_cli.tui.widgets.help import HelpScreen
from mosaic_cli.tui.widgets.memory import MemoryView
from mosaic_cli.tui.widgets.opcodes import OpcodeTrace
from mosaic_cli.tui.widgets.proposals import PendingTools, proposal_key
from mosaic_cli.tui.widgets.registers import RegistersView
from mosaic_cli.tui.widgets.status import StatusLine
from mosaic_cli.tui.widgets.tool_modal import ToolProposalScreen

MODES = ("chat", "watch")
DECIDED = ("ToolRegistered", "ToolRejected", "ToolApproved", "ToolDenied")


class MosaicApp(App):
    """``mosaic chat`` (input line + panels) and ``mosaic watch`` (event log + panels)."""

    CSS_PATH = "mosaic.tcss"
    TITLE = "mosaic"
    BINDINGS = [
        Binding("ctrl+c", "quit", "Quit", priority=True),
        Binding("q", "quit", "Quit", show=False),
        Binding("f1,question_mark", "help", "Help"),
        Binding("f2,left_square_bracket", "layer(-1)", "Layer-"),
        Binding("f3,right_square_bracket", "layer(1)", "Layer+"),
        Binding("f4,t", "open_tool", "Tools"),
        Binding("f5", "toggle_theme", "Theme"),
        Binding("escape", "leave_input", "Leave input", show=False),
    ]

    def __init__(self, engine: Any, mode: str = "chat", session: Any = None, *,
                 start: bool = False, fps: float = 12.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        super().__init__()
        self.engine = engine
        self.mode = mode
        self.session = session
        self.start_engine = start
        self.fps = fps
        self.selected_layer: int | None = None    # None = all layers
        self.layer_chosen = False                 # the first snapshot picks the last layer
        self.last_snapshot: Any = None
        self.snapshot_error = ""
        self.frames_drawn = 0                     # frames that painted a new snapshot
        self.frame_times: deque[float] = deque(maxlen=64)
        self.events_seen = 0
        self.tokens_seen = 0
        self.token_queue: deque[Any] = deque(maxlen=4096)
        self.proposals: dict[str, dict] = {}      # key or name -> ToolProposed payload
        self.undecided: dict[str, dict] = {}      # proposals seen as events and not yet decided
        self.decided: set[str] = set()            # hashes seen approved / rejected / denied
        self.engine_stopped = False
        self.sub_title = mode

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield StatusLine(self.mode, id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield EventLog(self.mode, id="log", classes="panel")
                yield ReplyLine(id="reply")
                yield PendingTools(id="tools", classes="panel")
                yield DriveBands(id="drives", classes="panel")
                if self.mode == "chat":
                    yield Input(placeholder="say something (Enter sends)", id="prompt")
            with VerticalScroll(id="right"):
                yield RegistersView(id="registers", classes="panel")
                yield MemoryView(id="memory", classes="panel")
                yield OpcodeTrace(id="opcodes", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        # Keep references: a timer firing during shutdown must not query the DOM.
        self.status_line = self.query_one(StatusLine)
        self.event_log = self.query_one(EventLog)
        self.reply_line = self.query_one(ReplyLine)
        self.tools_list = self.query_one(PendingTools)
        self.registers_view = self.query_one(RegistersView)
        self.memory_view = self.query_one(MemoryView)
        self.opcode_view = self.query_one(OpcodeTrace)
        self.drive_view = self.query_one(DriveBands)
        self.event_log.border_title = "chat" if self.mode == "chat" else "events"
        self.drive_view.border_title = "drives"
        self.tools_list.display = False
        self.reply_line.display = False
        self.set_layer_titles()
        self.seed_pending()
        self.engine.bus.subscribe("*", self.forward_event)
        if self.start_engine and not getattr(self.engine, "running", False):
            self.engine.start()
        if self.fps > 0:
            self.set_interval(1 / self.fps, self.refresh_frame)
        self.refresh_frame()
        self.show_pending()
        if self.mode == "chat":
            self.query_one("#prompt", Input).focus()
        else:
            self.event_log.focus()

    # ---------------------------------------------------- engine -> UI, thread side
    def forward_event(self, event: Any) -> None:
        """Bus callback, called on the publishing thread; returns at once and never waits.

        Token events (one per generated byte, hundreds a second) only go onto a bounded deque
        that the next frame drains: the reply line needs them at frame rate, and a message per
        byte would keep the UI's queue busy for nothing. Every other event is posted."""
        if getattr(event, "type", None) == "Token":
            self.token_queue.append(event)   # deque.append is atomic; a full deque drops the oldest
            return
        try:
            self.post_message(EngineEvent(event))
        except RuntimeError:   # the loop closed while we were shutting down
            pass

    # ------------------------------------------------------ engine -> UI, UI side
    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        self.events_seen += 1
        kind = getattr(event, "type", "")
        payload = getattr(event, "payload", {}) or {}
        if kind == "Token":   # only when posted directly; forward_event queues them
            self.reply_line.token(payload)
            return
        if kind in ("Response", "TurnEnded", "ToolDefinitionRetried"):   # a retry streams a new turn
            self.drain_tokens()
            self.reply_line.clear()
            self.reply_line.flush()
        elif kind == "Impulse":
            drive = payload_text(payload, "drive", "name")
            if drive:
                self.drive_view.impulse(drive)
        elif kind == "ToolProposed" and isinstance(payload, dict):
            key = proposal_key(payload)
            self.proposals[key] = payload
            self.proposals.setdefault(str(payload.get("name", key)), payload)
            self.undecided[key] = payload
            self.show_pending()
            if self.person_is_typing():
                # a dialog popping up now would take their next keys
                self.notify(f"tool proposal {payload.get('name', key)!s}: press F4 to review")
            # the runtime's event names the tool; its record (SQLite) says the rest: read on a worker
            self.load_proposal(key, open_when="idle")
        elif kind in DECIDED and isinstance(payload, dict):
            if payload.get("hash"):
                self.decided.add(str(payload["hash"]))   # the snapshot's pending list may lag behind
            for key in (payload.get("hash"), payload.get("name")):
                self.undecided.pop(str(key), None)
            self.show_pending()
        self.event_log.event(event)

    def on_ui_note(self, message: UiNote) -> None:
        self.event_log.add(Text(message.text, ERROR if message.error else TOOL))

    def refresh_frame(self) -> None:
        """Timer callback: read the latest snapshot and repaint what changed."""
        try:
            snap = self.engine.latest_snapshot()
        except Exception as exc:   # a broken snapshot must not take the UI down (logged once per message)
            snap = None
            if str(exc) != self.snapshot_error:
                self.snapshot_error = str(exc)
                self.event_log.add(Text(f"snapshot failed: {exc}", ERROR))
        if snap is not None and snap is not self.last_snapshot:
            self.last_snapshot = snap
            self.apply_snapshot(snap)
            self.frames_drawn += 1
            self.frame_times.append(time.monotonic())
        self.memory_view.tick()
        self.drive_view.tick()
        self.drain_tokens()
        self.reply_line.flush()
        self.show_status()

    def drain_tokens(self) -> None:
        """Move queued Token events into the reply line (UI thread)."""
        while self.token_queue:
            try:
                event = self.token_queue.popleft()
            except IndexError:
                break
            self.tokens_seen += 1
            self.reply_line.token(getattr(event, "payload", {}) or {})

    def apply_snapshot(self, snap: Any, touch: bool = True) -> None:
        """Push one snapshot into every panel; ``touch`` starts the read/write flashes it reports
        (False when only the layer selection changed)."""
        registers = getattr(snap, "registers", None) or []
        if not self.layer_chosen and registers:
            self.selected_layer = len(registers) - 1
            self.layer_chosen = True
        layer = self.selected_layer
        self.registers_view.show(registers, layer)
        self.memory_view.show(getattr(snap, "memory_valid", None), getattr(snap, "memory_utility", None), layer)
        if touch:
            self.memory_view.touch(getattr(snap, "memory_reads", None), getattr(snap, "memory_writes", None))
        self.opcode_view.show(getattr(snap, "opcodes", None), layer)
        self.drive_view.show(getattr(snap, "drives", None))
        self.set_layer_titles()
        self.show_pending()

    def show_pending(self) -> None:
        pending = [p for p in getattr(self.last_snapshot, "pending_tools", None) or []
                   if str(p.get("hash")) not in self.decided]
        keys = {proposal_key(p) for p in pending} | {str(p.get("name")) for p in pending}
        pending += [p for k, p in self.undecided.items() if k not in keys and str(p.get("name")) not in keys]
        self.tools_list.show(pending)

    def ui_fps(self) -> float | None:
        """Frames painted per second over the recent window (None when the timer is off)."""
        if self.fps <= 0 or len(self.frame_times) < 2:
            return None
        span = self.frame_times[-1] - self.frame_times[0]
        return (len(self.frame_times) - 1) / span if span > 0 else None

    def show_status(self) -> None:
        snap = self.last_snapshot
        session = getattr(snap, "session", None) or getattr(self.session, "name", self.session)
        status = "stopped" if self.engine_stopped else (getattr(snap, "status", None) or "starting")
        self.status_line.show(status, getattr(snap, "tokens_per_s", None),
                              getattr(snap, "adapter_version", None), session,
                              self.layer_label(), self.ui_fps())

    # ------------------------------------------------------------ layer selector
    def n_layers(self) -> int:
        return len(getattr(self.last_snapshot, "registers", None) or [])

    def layer_label(self) -> str:
        if self.selected_layer is None:
            return "all"
        return f"{self.selected_layer}/{max(self.n_layers() - 1, 0)}"

    def set_layer_titles(self) -> None:
        label = "all layers" if self.selected_layer is None else f"layer {self.selected_layer}"
        self.registers_view.border_title = " · ".join(x for x in ("registers", label, self.registers_view.scale) if x)
        self.memory_view.border_title = " · ".join(x for x in ("memory", label, self.memory_view.scale) if x)
        self.opcode_view.border_title = "opcodes · last layer acts"

    def action_layer(self, delta: int) -> None:
        """Cycle the heatmaps through all layers, 0, 1, …, L-1 (and back)."""
        order: list[int | None] = [None, *range(self.n_layers())]
        i = order.index(self.selected_layer) if self.selected_layer in order else 0
        self.selected_layer = order[(i + delta) % len(order)]
        self.layer_chosen = True
        self.set_layer_titles()
        if self.last_snapshot is not None:
            self.apply_snapshot(self.last_snapshot, touch=False)
        self.show_status()

    # ------------------------------------------------------------------ chat
    @on(Input.Submitted, "#prompt")
    def send_line(self, message: Input.Submitted) -> None:
        """Send the typed line to the engine."""
        text = message.value.strip()
        message.input.clear()
        if not text:
            return
        if self.engine_stopped:
            self.event_log.add(Text("the engine is stopped", ERROR))
            return
        self.event_log.user_line(text)
        self.engine.submit_user(text)

    def action_leave_input(self) -> None:
        self.event_log.focus()

    # ----------------------------------------------------------------- tools
    def tool_service(self) -> Any:
        return getattr(self.engine, "tools", None)

    def action_open_tool(self) -> None:
        """Open the highlighted (else the first) pending proposal."""
        keys = self.tools_list.keys
        if not keys:
            self.notify("no pending tool proposals")
            return
        index = self.tools_list.highlighted or 0
        self.open_proposal(keys[min(index, len(keys) - 1)])

    @on(OptionList.OptionSelected, "#tools")
    def proposal_picked(self, message: OptionList.OptionSelected) -> None:
        """Open the proposal picked in the list."""
        self.open_proposal(str(message.option.id))

    def person_is_typing(self) -> bool:
        return isinstance(self.focused, Input) and bool(self.focused.value)

    def load_proposal(self, key: str, open_when: str) -> None:
        """Gather proposal ``key`` on a worker thread (the tool service's record lives in SQLite,
        and validation compiles the source), then, back on the UI thread, note its description
        and open its dialog: ``open_when`` "now" (the person asked) or "idle" (only if nobody is
        typing, no other screen is up and the proposal is still undecided)."""
        inputs = (self.proposals.get(key) or {}, self.tools_list.proposals.get(key) or {}, self.tool_service())
        self.run_worker(partial(self.gather_in_worker, key, inputs, open_when), thread=True, group="proposals")

    def gather_in_worker(self, key: str, inputs: tuple, open_when: str) -> None:
        proposal = self.proposal_details(key, *inputs)
        self.call_from_thread(self.proposal_loaded, key, proposal, open_when)

    def proposal_loaded(self, key: str, proposal: ToolProposal, open_when: str) -> None:
        """UI thread: a gathered proposal fills in what its event left out and may open."""
        payload = self.proposals.get(key)
        if payload is not None and not payload.get("description") and proposal.description:
            payload = {**payload, "description": proposal.description}
            self.proposals[key] = payload
            if key in self.undecided:
                self.undecided[key] = payload
                self.show_pending()
        idle = len(self.screen_stack) == 1 and not self.person_is_typing() and key in self.undecided
        if open_when == "now" or (open_when == "idle" and idle):
            self.push_screen(ToolProposalScreen(proposal), partial(self.decide_tool, proposal))

    def proposal_details(self, key: str, payload: dict, listed: dict, service: Any) -> ToolProposal:
        """Everything known about proposal ``key`` (any thread): the ToolProposed payload, the tool
        service's record (``get(key)`` on a simple service, ``registry.get(name, hash)`` on
        engine.toolbridge's ToolService), the snapshot's pending entry ``listed``; validated here
        with toolsmith if nobody said."""
        name = str(payload.get("name") or listed.get("name") or key)
        h = payload.get("hash") or listed.get("hash")
        record = None
        lookups = [partial(getattr(service, n), key) for n in ("get", "show", "proposal")
                   if callable(getattr(service, n, None))]
        registry = getattr(service, "registry", None)
        if callable(getattr(registry, "get", None)):
            lookups.append(partial(registry.get, name, h))
        for lookup in lookups:
            try:
                record = lookup()
            except Exception:
                record = None
            if record is not None:
                break
        proposal = ToolProposal.gather(payload, record, listed, {"name": name, "hash": h})
        proposal.check()
        return proposal

    def open_proposal(self, key: str) -> None:
        self.load_proposal(key, open_when="now")

    def decide_tool(self, proposal: ToolProposal, decision: str | None) -> None:
        """Hand the person's decision to the tool service on a worker thread (it may touch SQLite)."""
        if decision not in ("approve", "reject"):
            return
        service = self.tool_service()
        names = ("approve",) if decision == "approve" else ("reject", "deny")
        fn = next((getattr(service, n) for n in names if callable(getattr(service, n, None))), None)
        if fn is None:
            self.event_log.add(Text(f"this engine has no tool service to {decision} {proposal.name}", ERROR))
            return
        self.event_log.add(Text(f"⚙ {decision} {proposal.name}…", SYSTEM))
        self.run_worker(partial(self.call_tool_service, fn, proposal, decision), thread=True, group="tools")

    def call_tool_service(self, fn: Any, proposal: ToolProposal, decision: str) -> None:
        """Worker thread: ``fn(name, hash)``; event dicts it returns ({type, payload}, as
        engine.toolbridge.ToolService does) go to the engine so they are logged and broadcast."""
        try:
            result = fn(proposal.name, proposal.hash) if proposal.hash else fn(proposal.name)
        except Exception as exc:
            self.post_message(UiNote(f"✗ {decision} {proposal.name} failed: {exc}", error=True))
            return
        # the UI thread iterates `undecided`: change it there, never from this worker
        self.call_from_thread(self.forget_undecided, proposal)
        for item in result if isinstance(result, list) else []:
            if isinstance(item, dict) and "type" in item:
                self.forward_decision(item)

    def forget_undecided(self, proposal: ToolProposal) -> None:
        """UI thread: a decided proposal leaves the pending list."""
        self.undecided.pop(proposal.key, None)
        self.undecided.pop(proposal.name, None)
        self.show_pending()

    def forward_decision(self, item: dict) -> None:
        """Put one lifecycle event dict on the engine's way (its inbox records and publishes it);
        an engine without ``submit`` gets it shown in the log directly."""
        submit = getattr(self.engine, "submit", None)
        try:
            from engine.runtime.events import Event
            event = Event(str(item["type"]), dict(item.get("payload") or {}), sender="tui")
        except Exception:
            event = None
        if callable(submit) and event is not None:
            submit(event)
        elif event is not None:
            self.post_message(EngineEvent(event))

    def seed_pending(self) -> None:
        """Proposals left pending from an earlier session (asked once, at start)."""
        service = self.tool_service()
        for name in ("pending_tools", "pending"):
            fn = getattr(service, name, None)
            if callable(fn):
                try:
                    records = fn()
                except Exception:
                    return
                for record in records or []:
                    p = ToolProposal.gather(record)
                    self.undecided.setdefault(p.key, {"name": p.name, "hash": p.hash, "description": p.description})
                return

    # --------------------------------------------------------- help, theme, quit
    def help_keys(self) -> list[tuple[str, str]]:
        return [("Ctrl-C / q", "quit (saves the session); q works outside the input line"),
                ("F1 / ?", "this help"),
                ("F2 / [   F3 / ]", "heatmap layer: previous / next (all, 0 … L-1)"),
                ("F4 / t", "open the highlighted tool proposal"),
                ("F5", "dark / light theme"),
                ("Tab / Esc", "move focus between panels / leave the input line"),
                ("in a proposal", "a approve · r reject · v view in full · Esc close")]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"
        if self.last_snapshot is not None:   # heatmaps pick their empty-cell colour by theme
            self.apply_snapshot(self.last_snapshot, touch=False)

    def stop_engine(self) -> str | None:
        """Stop the engine once (it saves its state). Returns the error text of a failed stop
        (never raises: the person is on the way out and must get their terminal back)."""
        if self.engine_stopped:
            return None
        self.engine_stopped = True
        try:
            self.engine.stop()
        except Exception as exc:
            return f"stopping the engine failed: {exc}"
        return None

    async def action_quit(self) -> None:
        """Stop the engine (saving the session), then leave."""
        error = self.stop_engine()
        self.exit(message=error)


def make_app(engine: Any, mode: str = "chat", session: Any = None, *, start: bool = False,
             fps: float = 12.0) -> MosaicApp:
    """The one factory the CLI and the tests share.

    ``engine`` follows the Runtime contract (docs/INTERFACES.md): ``bus.subscribe``,
    ``latest_snapshot()``, ``submit_user``, ``start``, ``stop``; optionally ``tools`` with
    ``approve(key)`` / ``reject(key)``. ``start=True`` starts the engine after the UI has
    subscribed (so no event is missed); ``fps=0`` turns the refresh timer off (snapshot tests
    call ``refresh_frame()`` themselves).
    """
    return MosaicApp(engine, mode, session, start=start, fps=fps)
