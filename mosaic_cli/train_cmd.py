"""``mosaic train``: offline training of MOSAIC (or the window baseline) on the curriculum.

The logic lives in ``engine.train`` (also runnable as ``python -m engine.train``); this module
only parses options and prints."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from mosaic_cli.errors import fail, print_json


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train)


def train(
    preset: str = typer.Option("tiny", "--preset", help="tiny | default | base (model shape + hyper-parameters)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: the preset's)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda if present)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --out."),
    arch: str = typer.Option("mosaic", "--arch", help="mosaic | window (the windowed-attention baseline)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: MOSAIC_HOME/models/<preset>-<arch>)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the model and the data."),
    time_budget: Optional[float] = typer.Option(
        None, "--time-budget", min=0,
        help="Seconds; stop and save when spent. The step count still ends the run if it comes first: "
             "pass a large --steps to train for the whole budget."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=16),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Data-loader processes."),
    from_session: Optional[str] = typer.Option(None, "--from-session",
                                               help="Also train on this session's replay log (a quarter of each batch)."),
    lr: Optional[float] = typer.Option(None, "--lr", min=0, help="Peak learning rate (default: the preset's)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from these weights (model file or run folder; "
                                                            "fresh optimizer and schedule)."),
    match_weight: Optional[float] = typer.Option(
        None, "--match-weight", min=0,
        help="Weight of the match loss, which pulls an update's key onto the old value's (default 0: off)."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph",
                                    help="Replay each step from CUDA graphs: the same steps with far fewer "
                                         "kernel launches (one GPU; not under torchrun)."),
    tools_share: Optional[float] = typer.Option(
        None, "--tools-share", min=0, max=0.99,
        help="Share of conversations about tools (default 0.15: what the default model trained on)."),
    more_phrases: bool = typer.Option(
        False, "--more-phrases",
        help="Tool requests also use the curriculum's blind-written wordings (tool_phrases.json)."),
    tool_failures: Optional[float] = typer.Option(
        None, "--tool-failures", min=0, max=1,
        help="Share of tool calls whose result is a failure (no such tool, or it raised), answered by "
             "a reply that says so (default 0: what the default model trained on)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as one JSON object."),
) -> None:
    """Train on the synthetic curriculum: progress with loss and tokens/s, held-out checks,
    an atomic resumable checkpoint, the model and its MODEL.md card in the run folder.
    Multi-GPU / multi-process: ``torchrun --nproc_per_node N -m engine.train ...``."""
    from engine.train.config import TrainConfigError, train_preset
    try:
        cfg = train_preset(preset, steps=steps, arch=arch, seed=seed, time_budget=time_budget,
                           batch_size=batch_size, seq_len=seq_len, workers=workers, from_session=from_session,
                           lr=lr, init_from=str(init) if init else None, w_match=match_weight,
                           cuda_graph=True if cuda_graph else None, tools_share=tools_share,
                           more_phrases=True if more_phrases else None, tool_failures=tool_failures)
    except TrainConfigError as exc:
        fail(str(exc))
    from engine.train.__main__ import default_out
    from engine.train.checkpoint import CheckpointError
    from engine.train.loop import train as run
    folder = out or default_out(preset, arch)
    command = "mosaic train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    try:
        info = run(cfg, folder, device=device, resume=resume, command=command,
                   log=lambda s: typer.echo(s, err=True))
    except (ValueError, CheckpointError) as exc:
        fail(str(exc))
    if as_json:
        print_json(info)
    else:
        typer.echo(f"saved {folder}: {info['steps_done']} steps, {info['wall_s']} s, "
                   f"{info['tokens_per_s']:,.0f} tokens/s, final loss {info['final_loss']}")
