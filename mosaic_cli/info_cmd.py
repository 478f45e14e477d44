"""``mosaic info``: the model, its size, its state, its instruction set, kernels, where files live."""
from __future__ import annotations

from typing import Optional

import typer

from mosaic_cli.errors import fail, print_json


def register(app: typer.Typer) -> None:
    """Add ``info`` to ``app``."""
    app.command("info")(info)


def info(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Model file or name (default: the shipped model)."),
) -> None:
    """Show the model's config, parameter count, state bytes per sequence, opcodes and kernel backend."""
    import torch

    from engine.store.paths import mosaic_home, models_dir, sessions_dir
    from engine.vm.checkpoint import ModelError, default_model_path, resolve_model
    from engine.vm.isa import opcode_table
    from kernels import backend

    try:
        net = resolve_model(model)
    except ModelError as exc:
        fail(str(exc))
    try:
        kern = backend.report()
    except ValueError as exc:
        fail(str(exc))
    cfg = net.config
    source = "fresh default preset (no default model shipped)"
    if model is not None:
        source = str(model)
    elif default_model_path().is_file():
        source = str(default_model_path())
    data = {
        "model": source,
        "config": cfg.to_dict(),
        "params": net.num_parameters(),
        "state_bytes": net.init_state(1, device=torch.device("cpu")).nbytes(),
        "opcodes": [op["name"] for op in opcode_table()],
        "opcode_effects": opcode_table(),
        "kernels": kern,
        "paths": {"mosaic_home": str(mosaic_home()), "models": str(models_dir()),
                  "sessions": str(sessions_dir()), "default_model": str(default_model_path())},
    }
    if json_out:
        print_json(data)
        return
    _print_tables(data)


def _print_tables(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    cfg = data["config"]
    console.print(f"[bold]model[/bold]  {data['model']}")
    console.print(f"parameters {data['params']:,}   state per sequence {data['state_bytes']:,} bytes "
                  f"({data['state_bytes'] / 2**20:.2f} MiB)")
    t = Table(title="config", show_header=False)
    for k, v in cfg.items():
        t.add_row(k, str(v))
    console.print(t)
    ops = Table(title="instruction set")
    for col in ("opcode", "in the block", "in the runtime"):
        ops.add_column(col)
    for op in data["opcode_effects"]:
        ops.add_row(op["name"], op["block"], op["runtime"])
    console.print(ops)
    k = data["kernels"]
    console.print(f"kernels: {k['reason']} (MOSAIC_KERNELS={k['mode']})")
    for name, where in data["paths"].items():
        console.print(f"{name}: {where}")
