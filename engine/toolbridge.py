"""The engine's side of tools: model turns -> proposals and calls, results -> TOOL_RESULT turns.

Pure functions (no state): ``parse_tool_def``, ``checked_definition``, ``parse_tool_call``,
``format_tool_result``, ``format_run_result``. ``ToolService`` is the small stateful part the
runtime owns: it wraps a ``toolsmith.ToolRegistry`` and returns lifecycle events as plain dicts
``{"type": <event type>, "payload": {...}}`` that the runtime wraps in its own Event envelope:

  ToolProposed   {name, hash, version, source}            a proposal was accepted for a decision
  ToolRejected   {name, hash, status, errors: [{field, message}]}  refused before any person saw it
                 (invalid, duplicate, previously rejected, rate-limited, unparsable)
  ToolApproved   {name, hash, by}                         a person (or the policy) approved that hash
  ToolRegistered {name, hash, version}                    that hash is now the tool's callable version
  ToolDenied     {name, hash, by, reason}                 a person rejected that hash
  ToolCalled     {name, hash, args}                       a call started
  ToolResult     {name, hash, ok, result, error, error_type, duration_ms}
  ToolDeprecated {name, reason}

``ToolService.call`` blocks while the sandbox child runs (bounded by its wall timeout, 5 s by
default): run it off the engine thread if that matters.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prompts import stream
from toolsmith import (RegistryError, RunResult, SandboxLimits, ToolPolicy, ToolRegistry)
from toolsmith.definition import DefinitionError, ToolDefinition

MAX_RESULT_TURN_CHARS = 2000  # what is fed back into the model's stream for one result

Event = dict[str, Any]


class ToolTurnError(ValueError):
    """A TOOL_DEF / TOOL_CALL turn that cannot be parsed; the message says why (one line)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any]


def _turn_text(turn: str, role: str) -> str:
    """The text of a turn, with or without its role byte and END."""
    text = turn[1:] if turn[:1] == role else turn
    return text[:-1] if text.endswith(stream.END) else text


def parse_tool_def(turn: str) -> dict[str, Any]:
    """A TOOL_DEF turn (``"\\x14{...}\\n"`` or just its JSON text) -> the raw proposal dict."""
    text = _turn_text(turn, stream.TOOL_DEF).strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ToolTurnError(f"tool definition is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ToolTurnError("tool definition must be a JSON object")
    return data


def checked_definition(turn: str) -> tuple[ToolDefinition | None, list[str]]:
    """A TOOL_DEF turn (or its JSON text) -> (the definition, []) when it validates, else (None,
    what is wrong, one line each). Names already taken are not checked: whether a valid
    definition may be registered is the registry's decision."""
    try:
        defn = ToolDefinition.from_json(parse_tool_def(turn))
    except ToolTurnError as exc:
        return None, [str(exc)]
    except DefinitionError as exc:
        return None, [str(e) for e in exc.errors]
    errors = [str(e) for e in defn.validate()]
    return (None, errors) if errors else (defn, [])


def parse_tool_call(turn: str) -> ToolCall:
    """A TOOL_CALL turn ``{"name": ..., "args": {...}}`` -> ToolCall."""
    text = _turn_text(turn, stream.TOOL_CALL).strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ToolTurnError(f"tool call is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ToolTurnError('tool call must be {"name": str, "args": {...}}')
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ToolTurnError("tool call args must be a JSON object")
    return ToolCall(data["name"], args)


def format_tool_result(ok: bool, result: Any = None, error: str | None = None) -> str:
    """A whole TOOL_RESULT turn: ``"\\x16{"ok": true, "result": 3}\\n"``. JSON escapes every control
    character, so a result can never forge a role byte; a long result is cut and flagged."""
    body: dict[str, Any] = {"ok": True, "result": result} if ok else {"ok": False, "error": str(error)}
    text = json.dumps(body, ensure_ascii=False)
    if len(text) > MAX_RESULT_TURN_CHARS:
        if ok:
            cut = json.dumps(result, ensure_ascii=False)[:MAX_RESULT_TURN_CHARS - 60]
            body = {"ok": True, "result": cut, "truncated": True}
        else:
            body = {"ok": False, "error": str(error)[:MAX_RESULT_TURN_CHARS - 60], "truncated": True}
        text = json.dumps(body, ensure_ascii=False)
    return stream.turn(stream.TOOL_RESULT, text)


def format_run_result(res: RunResult) -> str:
    return format_tool_result(res.ok, res.result, res.error)


def _event(kind: str, **payload: Any) -> Event:
    return {"type": kind, "payload": payload}


class ToolService:
    """Registry + proposals + approvals + calls, returning event dicts. Thread-safe via the registry."""

    def __init__(self, registry: ToolRegistry | None = None, policy: ToolPolicy | None = None,
                 limits: SandboxLimits = SandboxLimits()):
        self.registry = registry if registry is not None else ToolRegistry(policy=policy or ToolPolicy())
        self.limits = limits

    def startup_events(self) -> list[Event]:
        """Problems found when the registry opened (e.g. a corrupt tools.db moved aside)."""
        return [_event("EngineError", source="toolsmith", error=w) for w in self.registry.warnings]

    # ---- proposals and decisions ----------------------------------------------------------------
    def propose(self, raw: str | dict[str, Any], source: str = "model") -> list[Event]:
        """Submit a proposal (a TOOL_DEF turn, its JSON, or a dict)."""
        if isinstance(raw, str):
            try:
                raw = parse_tool_def(raw)
            except ToolTurnError as exc:
                return [_event("ToolRejected", name=None, hash=None, status="invalid",
                               errors=[{"field": "definition", "message": str(exc)}])]
        out = self.registry.propose(raw, source=source)
        if not out.accepted:
            return [_event("ToolRejected", name=out.name, hash=out.hash, status=out.status,
                           errors=[e.to_json() for e in out.errors or []])]
        events = [_event("ToolProposed", name=out.name, hash=out.hash, version=out.version, source=source)]
        if out.status == "approved":  # the policy approved a sandboxed tool
            events += [_event("ToolApproved", name=out.name, hash=out.hash, by="policy"),
                       _event("ToolRegistered", name=out.name, hash=out.hash, version=out.version)]
        return events

    def approve(self, name: str, hash: str | None = None, by: str = "person") -> list[Event]:
        rec = self.registry.approve(name, hash, by=by)
        return [_event("ToolApproved", name=rec.name, hash=rec.hash, by=by),
                _event("ToolRegistered", name=rec.name, hash=rec.hash, version=rec.version)]

    def deny(self, name: str, hash: str | None = None, reason: str = "", by: str = "person") -> list[Event]:
        rec = self.registry.reject(name, hash, reason=reason, by=by)
        return [_event("ToolDenied", name=rec.name, hash=rec.hash, by=by, reason=reason)]

    def pending_tools(self) -> list[dict[str, Any]]:
        """For Snapshot.pending_tools: ``[{name, hash, description}]``."""
        return [{"name": r.name, "hash": r.hash, "description": r.definition.description}
                for r in self.registry.pending()]

    def visible_tools(self) -> list[dict[str, Any]]:
        """What the model may call: approved and not deprecated."""
        return [{"name": r.name, "description": r.definition.description,
                 "parameters": r.definition.parameters} for r in self.registry.model_tools()]

    # ---- calls ------------------------------------------------------------------------------
    def call(self, name: str, args: dict[str, Any]) -> tuple[list[Event], str]:
        """Run a tool for the model: the events and the TOOL_RESULT turn to feed back."""
        try:
            rec = self.registry.get(name)
            if not rec.current or rec.deprecated:
                raise RegistryError(f"no callable tool named {name!r}")
        except RegistryError as exc:
            err = str(exc)
            return ([_event("ToolResult", name=name, hash=None, ok=False, result=None, error=err,
                            error_type="unknown_tool", duration_ms=0.0)],
                    format_tool_result(False, error=err))
        events = [_event("ToolCalled", name=name, hash=rec.hash, args=args)]
        try:
            res = self.registry.call(name, args, limits=self.limits)
        except RegistryError as exc:  # e.g. deprecated or tampered between the two reads
            res = RunResult(False, error=str(exc), error_type="unknown_tool")
        events.append(_event("ToolResult", name=name, hash=rec.hash, ok=res.ok, result=res.result,
                             error=res.error, error_type=res.error_type,
                             duration_ms=round(res.duration_ms, 2)))
        return events, format_run_result(res)

    def handle_turn(self, turn: str) -> tuple[list[Event], str | None]:
        """Dispatch one model turn (TOOL_DEF or TOOL_CALL; other roles are ignored).

        Returns the events and the turn to feed back into the model's input (a TOOL_RESULT),
        or None when there is nothing to feed back."""
        role = turn[:1]
        if role == stream.TOOL_CALL:
            try:
                call = parse_tool_call(turn)
            except ToolTurnError as exc:
                return ([_event("ToolResult", name=None, hash=None, ok=False, result=None,
                                error=str(exc), error_type="bad_call", duration_ms=0.0)],
                        format_tool_result(False, error=str(exc)))
            return self.call(call.name, call.args)
        if role == stream.TOOL_DEF:
            events = self.propose(turn)
            last = events[-1]
            if last["type"] == "ToolRejected":
                msg = "; ".join(f"{e['field']}: {e['message']}" for e in last["payload"]["errors"])
                return events, format_tool_result(False, error=msg or last["payload"]["status"])
            status = "registered" if last["type"] == "ToolRegistered" else "waiting for approval"
            return events, format_tool_result(True, {"tool": last["payload"]["name"], "status": status})
        return [], None

    def deprecate_idle(self) -> list[Event]:
        return [_event("ToolDeprecated", name=n, reason=r) for n, r in self.registry.deprecate_idle()]

    def deprecate(self, name: str, reason: str = "by request") -> list[Event]:
        self.registry.deprecate(name, reason)
        return [_event("ToolDeprecated", name=name, reason=reason)]
