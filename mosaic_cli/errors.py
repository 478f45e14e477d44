"""One-line errors for the command line: a clear message on stderr and a non-zero exit."""
from __future__ import annotations

import json
import sys
from typing import NoReturn

import typer


def fail(message: str, code: int = 1, as_json: bool = False) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``; with ``as_json`` also
    ``{"ok": false, "error": message}`` on stdout, so a script reading JSON gets an answer."""
    if as_json:
        print_json({"ok": False, "error": message})
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(obj: object) -> None:
    """Print one JSON object on stdout (for ``--json``)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()
