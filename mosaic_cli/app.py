"""The ``mosaic`` command: one Typer app; each command group lives in its own module.

Heavy imports (torch, peft, textual) happen inside commands, so ``--help`` is fast.
"""
from __future__ import annotations

import sys

import typer

app = typer.Typer(
    help="mosaic: an attention-free language model built as a differentiable virtual machine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

# Each module exposes register(app); order sets the order in --help.
from mosaic_cli import (  # noqa: E402
    chat_cmd,
    info_cmd,
    tools_cmd,
    train_cmd,
    eval_cmd,
    bench_cmd,
    adapters_cmd,
)

for _module in (chat_cmd, info_cmd, tools_cmd, train_cmd, eval_cmd, bench_cmd, adapters_cmd):
    _module.register(app)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
