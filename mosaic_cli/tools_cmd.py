"""``mosaic tools``: the tool lifecycle outside the TUI (list, show, propose, approve, reject, run,
deprecate). Every command takes ``--json``; bad input is one ``error:`` line and exit 1."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from mosaic_cli.errors import fail, print_json

tools_app = typer.Typer(help="Tools the model built or may call: review, approve, run.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``tools`` command group to ``app``."""
    app.add_typer(tools_app, name="tools")


# ---- helpers ---------------------------------------------------------------------------------
def _registry():
    from toolsmith import ToolRegistry
    try:
        reg = ToolRegistry()
    except Exception as exc:  # noqa: BLE001 - e.g. unwritable MOSAIC_HOME: one clear line
        fail(f"cannot open the tool registry: {exc}")
    for warning in reg.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return reg


def _interactive() -> bool:
    """Whether a person can answer a prompt here (tests patch this)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _safe(text: str) -> str:
    """Make text harmless on a terminal: control characters (ANSI escapes, \\r tricks) shown escaped."""
    return "".join(ch if ch in "\n\t" or (ch.isprintable() and ch not in "\u202a\u202b\u202c\u202d\u202e"
                                          "\u2066\u2067\u2068\u2069\u200b\u200c\u200d\ufeff")
                   else ascii(ch)[1:-1] for ch in text)


def _console():
    from rich.console import Console
    return Console(highlight=False, soft_wrap=False)


def _validation_errors(reg, rec) -> list:
    """Re-check a stored definition the way a new proposal would be checked (for display)."""
    from toolsmith import BUILTIN_NAMES, ToolBuilder
    taken = {r.name for r in reg.list() if r.name != rec.name}
    reserved = set() if rec.builtin else set(BUILTIN_NAMES)
    return ToolBuilder(existing=taken, reserved=reserved).build(rec.definition).errors


def _show_definition(console, reg, rec) -> None:
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.text import Text

    d = rec.definition
    head = Text()
    head.append(f"{_safe(d.name)}", style="bold")
    head.append(f"  version {rec.version}  {rec.status}  hash {rec.hash[:16]}\n")
    head.append(_safe(d.description) + "\n")
    if d.sandbox:
        head.append("sandboxed: RestrictedPython inside a resource-limited process\n", style="green")
    else:
        head.append("PRIVILEGED (sandbox: false): plain Python with only process limits\n", style="bold red")
    console.print(Panel(head, title="tool definition", expand=False))
    console.print(Panel(Text(_safe(json.dumps(d.parameters, indent=2, ensure_ascii=False))),
                        title="parameters (JSON Schema)", expand=False))
    console.print(Panel(Syntax(_safe(d.implementation), "python", line_numbers=True, word_wrap=True),
                        title="implementation", expand=False))
    _show_diff(console, reg, rec)
    errors = _validation_errors(reg, rec)
    if errors:
        msg = Text("\n".join(_safe(str(e)) for e in errors), style="red")
        console.print(Panel(msg, title="validation: FAILED", expand=False))
    else:
        console.print(Panel(Text("all rules pass", style="green"), title="validation", expand=False))


def _show_diff(console, reg, rec) -> None:
    """For a new version of an approved tool: what changed against the approved definition."""
    import difflib

    from rich.panel import Panel
    from rich.syntax import Syntax
    from toolsmith import RegistryError
    if rec.current:
        return
    try:
        approved = reg.get(rec.name)
    except RegistryError:
        return
    if not approved.current or approved.hash == rec.hash:
        return
    old = approved.definition.to_json(indent=2).splitlines() + approved.definition.implementation.splitlines()
    new = rec.definition.to_json(indent=2).splitlines() + rec.definition.implementation.splitlines()
    diff = "\n".join(difflib.unified_diff(old, new, f"v{approved.version} (approved)",
                                          f"v{rec.version} (proposed)", lineterm=""))
    console.print(Panel(Syntax(_safe(diff), "diff", word_wrap=True),
                        title=f"changes against the approved v{approved.version}", expand=False))


def _find_pending(reg, name: str, hash_: str | None):
    recs = [r for r in reg.pending() if r.name == name and (hash_ is None or r.hash.startswith(hash_))]
    if not recs:
        return None
    if len(recs) > 1:
        fail(f"{name!r} has {len(recs)} pending versions; choose one with --hash")
    return recs[0]


# ---- commands --------------------------------------------------------------------------------
@tools_app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON."),
             hide_deprecated: bool = typer.Option(False, "--hide-deprecated", help="Only what the model sees.")) -> None:
    """List tools: approved, pending and deprecated ones."""
    from toolsmith import RegistryError
    reg = _registry()
    try:
        recs = reg.list(include_deprecated=not hide_deprecated)
    except RegistryError as exc:
        fail(str(exc), as_json=json_out)
    if json_out:
        print_json({"tools": [r.to_json() for r in recs]})
        return
    from rich.table import Table
    table = Table("name", "version", "status", "sandbox", "uses", "failures", "description")
    for r in recs:
        status = "deprecated" if r.deprecated else ("builtin" if r.builtin else r.status)
        table.add_row(_safe(r.name), str(r.version), status, "yes" if r.definition.sandbox else "NO",
                      str(r.uses), str(r.failures), _safe(r.definition.description[:60]))
    _console().print(table)


@tools_app.command("show")
def show_cmd(name: str, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show a tool's definition, state and versions."""
    from toolsmith import RegistryError
    reg = _registry()
    try:
        rec = reg.get(name)
        versions = reg.versions(name)
    except RegistryError as exc:
        fail(str(exc), as_json=json_out)
    if json_out:
        print_json({**rec.to_json(), "definition": rec.definition.to_dict(),
                    "versions": [{"version": v.version, "hash": v.hash, "status": v.status,
                                  "decided_by": v.decided_by} for v in versions]})
        return
    console = _console()
    _show_definition(console, reg, rec)
    console.print(f"uses {rec.uses}, failures {rec.failures}, deprecated: {rec.deprecated}; versions: "
                  + ", ".join(f"v{v.version} {v.status} {v.hash[:12]}" for v in versions))


@tools_app.command("propose")
def propose_cmd(file: str = typer.Argument(..., help="A tool definition JSON file ('-' = stdin)."),
                update: bool = typer.Option(False, "--update", help="Submit a new version of an existing tool."),
                json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Propose a tool definition; it waits for approval."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}", as_json=json_out)
    reg = _registry()
    out = reg.propose(text, source="person", update=update)
    if json_out:
        print_json(out.to_json())
        if not out.accepted:
            raise typer.Exit(1)
        return
    if not out.accepted:
        fail(f"{out.status}: " + "; ".join(_safe(str(e)) for e in out.errors or []))
    typer.echo(f"proposed {out.name} v{out.version} ({out.hash[:16]}): {out.status}; "
               f"review it with `mosaic tools approve {out.name}`")


@tools_app.command("approve")
def approve_cmd(name: str, hash_: Optional[str] = typer.Option(None, "--hash", help="Approve exactly this hash."),
                yes: bool = typer.Option(False, "--yes", "-y", help="Approve without a prompt (scripts)."),
                json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Review and approve a pending tool (the approval is bound to the definition's hash)."""
    from toolsmith import RegistryError
    reg = _registry()
    rec = _find_pending(reg, name, hash_)
    if rec is None:
        try:
            current = reg.get(name)
        except RegistryError as exc:
            fail(str(exc), as_json=json_out)
        if current.deprecated and current.current:
            reg.restore(name)
            _report({"name": name, "hash": current.hash, "status": "restored"}, json_out,
                     f"restored deprecated tool {name}")
            return
        fail(f"{name!r} has no pending proposal", as_json=json_out)
    if not yes:
        if not _interactive():
            fail("approval needs a person: run this in a terminal, or pass --yes", as_json=json_out)
        console = _console()
        _show_definition(console, reg, rec)
        try:
            choice = typer.prompt("[a]pprove / [r]eject / [s]kip", default="s").strip().lower()
        except (KeyboardInterrupt, EOFError, typer.Abort):
            fail("no decision taken; the proposal stays pending", as_json=json_out)
        if choice.startswith("r"):
            try:
                reason = typer.prompt("reason", default="")
            except (KeyboardInterrupt, EOFError, typer.Abort):
                fail("no decision taken; the proposal stays pending", as_json=json_out)
            rec2 = reg.reject(name, rec.hash, reason=reason)
            _report({"name": name, "hash": rec2.hash, "status": "rejected"}, json_out,
                    f"rejected {name} ({rec2.hash[:16]})")
            return
        if not choice.startswith("a"):
            _report({"name": name, "hash": rec.hash, "status": "pending"}, json_out,
                    f"{name} stays pending")
            return
    try:
        done = reg.approve(name, rec.hash, by="person")  # exactly the hash that was shown
    except RegistryError as exc:
        fail(str(exc), as_json=json_out)
    _report({"name": name, "hash": done.hash, "version": done.version, "status": "approved"}, json_out,
            f"approved {name} v{done.version} ({done.hash[:16]})")


@tools_app.command("reject")
def reject_cmd(name: str, hash_: Optional[str] = typer.Option(None, "--hash", help="Reject exactly this hash."),
               reason: str = typer.Option("", "--reason", help="Why (kept in the history)."),
               json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Reject a pending tool; the same definition cannot be proposed again."""
    from toolsmith import RegistryError
    reg = _registry()
    try:
        rec = reg.reject(name, hash_, reason=reason)
    except RegistryError as exc:
        fail(str(exc), as_json=json_out)
    _report({"name": name, "hash": rec.hash, "status": "rejected"}, json_out,
            f"rejected {name} ({rec.hash[:16]})")


@tools_app.command("run")
def run_cmd(name: str, args: str = typer.Option("{}", "--args", help="Arguments as a JSON object."),
            timeout: float = typer.Option(5.0, "--timeout", help="Wall-clock limit in seconds."),
            json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Run an approved tool in the sandbox (exit 1 when it fails)."""
    from toolsmith import RegistryError, SandboxLimits
    try:
        parsed = json.loads(args)
    except ValueError as exc:
        fail(f"--args is not valid JSON: {exc}", as_json=json_out)
    if not isinstance(parsed, dict):
        fail("--args must be a JSON object", as_json=json_out)
    if not 0 < timeout <= 3600:  # also refuses inf and nan
        fail("--timeout must be a number of seconds between 0 and 3600", as_json=json_out)
    reg = _registry()
    limits = SandboxLimits(wall_s=timeout, cpu_s=max(1, int(timeout)))
    try:
        res = reg.call(name, parsed, limits=limits, allow_deprecated=True)
    except RegistryError as exc:
        if json_out:
            print_json({"ok": False, "result": None, "error": str(exc), "error_type": "unknown_tool"})
            raise typer.Exit(1)
        fail(str(exc), as_json=json_out)
    if json_out:
        print_json(res.to_json())
    elif res.ok:
        if res.printed:
            typer.echo(_safe(res.printed).rstrip("\n"))
        typer.echo(_safe(json.dumps(res.result, ensure_ascii=False)))
    else:
        typer.echo(f"error: {_safe(res.error or 'failed')} [{res.error_type}]", err=True)
    if not res.ok:
        raise typer.Exit(1)


@tools_app.command("deprecate")
def deprecate_cmd(name: str, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Hide a tool from the model (kept on disk; `approve` restores it)."""
    from toolsmith import RegistryError
    reg = _registry()
    try:
        rec = reg.deprecate(name, "by a person")
    except RegistryError as exc:
        fail(str(exc), as_json=json_out)
    _report({"name": name, "hash": rec.hash, "status": "deprecated"}, json_out, f"deprecated {name}")


def _report(obj: dict[str, Any], json_out: bool, text: str) -> None:
    if json_out:
        print_json(obj)
    else:
        typer.echo(_safe(text))
