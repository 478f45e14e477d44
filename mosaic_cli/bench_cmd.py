"""``mosaic bench kernels|decode|train``: speed benchmarks, printed as ratios against the reference.

The measuring lives in ``engine.bench``; this module only parses options and prints.
"""
from __future__ import annotations

from typing import Optional

import typer

from mosaic_cli.errors import fail, print_json

bench_app = typer.Typer(help="Speed benchmarks: kernels, decoding and training, against the reference.",
                        no_args_is_help=True)

_DEVICE_HELP = "torch device (default: cuda if a GPU is usable, else cpu)."


def _report(report, as_json: bool) -> None:
    if as_json:
        import sys
        for note in report.notes:  # notes (e.g. "no GPU: naive path") go to stderr, rows to stdout
            sys.stderr.write(f"note: {note}\n")
        for row in report.rows:
            print_json({**row, "device": report.device_name})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    table = Table(title=f"{report.title} on {report.device_name}")
    cols = report.columns()
    for c in cols:
        table.add_column(c, justify="left" if c in ("path", "op", "model") else "right")
    for row in report.rows:
        table.add_row(*(_fmt(row.get(c)) for c in cols))
    console.print(table)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def _resolve_device(device: Optional[str]):
    from engine.bench.common import pick_device

    try:
        return pick_device(device)
    except ValueError as e:
        fail(str(e))


@bench_app.command("kernels")
def kernels_cmd(json_: bool = typer.Option(False, "--json", help="one JSON row per line"),
                device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP)) -> None:
    """Each kernel op, reference against Triton, with bytes moved and bandwidth share."""
    from engine.bench.kernels import bench_kernels

    _report(bench_kernels(_resolve_device(device)), json_)


@bench_app.command("decode")
def decode_cmd(json_: bool = typer.Option(False, "--json", help="one JSON row per line"),
               device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP),
               model: Optional[str] = typer.Option(None, "--model", help="a preset (tiny, default, base: fresh weights) or a saved model's name or path"),
               tokens: int = typer.Option(64, "--tokens", min=1, help="timed steps per path"),
               compile_: bool = typer.Option(False, "--compile", help="also time torch.compile + CUDA graph (GPU; slow to build)")) -> None:
    """Decoding tokens/s at batch 1 and 64: plain step, graphed naive step, fast path."""
    from engine.bench.decode import bench_decode

    _report(bench_decode(_resolve_device(device), model=model, tokens=tokens, compile_path=compile_), json_)


@bench_app.command("train")
def train_cmd(json_: bool = typer.Option(False, "--json", help="one JSON row per line"),
              device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP),
              model: Optional[str] = typer.Option(None, "--model", help="a preset (tiny, default, base) or a saved model"),
              batch: int = typer.Option(0, "--batch", min=0, help="sequences per step (0: 16 on GPU, 2 on CPU)"),
              length: int = typer.Option(0, "--length", min=0, help="training length (0: 512 on GPU, 128 on CPU)")) -> None:
    """Training tokens/s: MOSAIC (naive and Triton) against an equal-size windowed transformer."""
    from engine.bench.train import bench_train

    _report(bench_train(_resolve_device(device), model=model, batch=batch or None, length=length or None), json_)


def register(app: typer.Typer) -> None:
    """Add ``mosaic bench`` to ``app``."""
    app.add_typer(bench_app, name="bench")
