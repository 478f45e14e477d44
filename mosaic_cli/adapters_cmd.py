"""``mosaic adapters list|show|merge|reset`` and ``mosaic eval consolidation`` (the medium timescale).

No logic here: the commands call engine.learn and engine.eval. torch and peft are
imported inside the commands that need them, so ``--help`` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mosaic_cli.errors import fail, print_json

DEFAULT_SESSION = "default"

SessionOpt = typer.Option(DEFAULT_SESSION, "--session", "-s", help="Session name.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object.")


def _store():
    from engine.learn import store
    return store


def _check(session: str) -> None:
    store = _store()
    try:
        store.check_session_name(session)
    except store.AdapterStoreError as exc:
        fail(str(exc))


def list_cmd(session: Optional[str] = typer.Option(None, "--session", "-s",
                                                   help="Only this session (default: every session)."),
             as_json: bool = JsonOpt) -> None:
    """List saved adapter versions per session (* marks the current one)."""
    store = _store()
    if session is not None:
        _check(session)
    names = [session] if session is not None else store.sessions_with_adapters()
    rows = [{"session": n, "versions": store.list_versions(n), "current": store.current_version(n)}
            for n in names]
    if as_json:
        print_json({"sessions": rows})
        return
    if not any(r["versions"] for r in rows):
        typer.echo("no saved adapters" + (f" for session {session!r}" if session else ""))
        return
    for r in rows:
        marks = " ".join(f"v{v}{'*' if v == r['current'] else ''}" for v in r["versions"])
        typer.echo(f"{r['session']}: {marks}")


def show_cmd(session: str = SessionOpt,
             version: Optional[int] = typer.Option(None, "--version", "-v", help="Version (default: current)."),
             as_json: bool = JsonOpt) -> None:
    """Show one adapter version: rank, target layers, counters at save time."""
    store = _store()
    _check(session)
    try:
        info = store.read_meta(session, version)
    except store.AdapterStoreError as exc:
        fail(str(exc))
    if as_json:
        print_json(info)
        return
    meta = info["meta"]
    typer.echo(f"session {info['session']}  version v{info['version']}{'  (current)' if info['current'] else ''}")
    typer.echo(f"  path     {info['path']}")
    typer.echo(f"  rank     {info['rank']}  alpha {info['alpha']}  size {info['bytes']:,} bytes")
    typer.echo(f"  layers   {len(info['targets'])}: {', '.join(info['targets'])}")
    for key in ("updates", "reverts", "refused", "last_update_loss", "tokens_seen"):
        if key in meta:
            typer.echo(f"  {key:<9}{meta[key]}")


def merge_cmd(session: str = SessionOpt,
              version: Optional[int] = typer.Option(None, "--version", "-v", help="Version (default: current)."),
              model: Optional[str] = typer.Option(None, "--model", "-m",
                                                  help="Base model checkpoint (default: the shipped model)."),
              out: Optional[Path] = typer.Option(None, "--out", "-o",
                                                 help="New checkpoint (default: MOSAIC_HOME/models/<session>-v<N>.safetensors)."),
              force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
              as_json: bool = JsonOpt) -> None:
    """Fold an adapter into the base weights and save a new model checkpoint (for the slow timescale)."""
    store = _store()
    _check(session)
    try:
        folder = store.version_dir(session, version)
    except store.AdapterStoreError as exc:
        fail(str(exc))
    from engine.store.paths import models_dir
    n = int(folder.name[1:])
    target = Path(out) if out is not None else models_dir() / f"{session}-v{n}.safetensors"
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it")
    from engine.learn import adapters as lora
    from engine.vm.checkpoint import resolve_model, save_model
    try:
        base = resolve_model(model)
    except (OSError, ValueError) as exc:
        fail(f"cannot load the base model: {str(exc).splitlines()[0] if str(exc) else exc}")
    saved_on = store.read_meta(session, n).get("meta", {}).get("base_fingerprint")
    if saved_on and saved_on != lora.base_digest(base):
        fail(f"the adapters of session {session!r} v{n} were learned on another base model "
             f"(weights {saved_on}); name that model with --model")
    try:
        merged = lora.load(base, folder, trainable=False).merge_and_unload()
    except lora.AdapterError as exc:
        fail(str(exc))
    try:
        save_model(merged, target)
    except OSError as exc:
        fail(f"cannot write {target}: {exc}")
    result = {"session": session, "version": n, "adapter": str(folder), "checkpoint": str(target)}
    if as_json:
        print_json(result)
    else:
        typer.echo(f"merged {session} v{n} into {target}")


def reset_cmd(session: str = SessionOpt,
              yes: bool = typer.Option(False, "--yes", "-y", help="Really delete every saved version."),
              as_json: bool = JsonOpt) -> None:
    """Delete a session's saved adapters (the model then starts from its base weights again)."""
    store = _store()
    _check(session)
    versions = store.list_versions(session)
    if versions and not yes:
        fail(f"this deletes {len(versions)} adapter version(s) of session {session!r}; pass --yes to confirm")
    removed = store.reset(session)
    if as_json:
        print_json({"session": session, "removed": removed})
    else:
        typer.echo(f"removed {removed} adapter version(s) of session {session!r}")


def register(app: typer.Typer) -> None:
    """Add ``mosaic adapters ...`` to ``app``."""
    group = typer.Typer(help="LoRA adapters learned online (the medium timescale): list, show, merge, reset.",
                        no_args_is_help=True)
    group.command("list")(list_cmd)
    group.command("show")(show_cmd)
    group.command("merge")(merge_cmd)
    group.command("reset")(reset_cmd)
    app.add_typer(group, name="adapters")


# ---- mosaic eval consolidation -----------------------------------------------
def _parse_counts(text: str, name: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"{name} takes a number or a comma-separated list of numbers, got {text!r}")
    if not counts or any(c < 1 for c in counts):
        fail(f"{name} must be positive numbers, got {text!r}")
    return counts


def consolidation_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model checkpoint (default: the shipped model)."),
    facts: str = typer.Option("16", "--facts", "-k", help="K facts told once; a list like 4,8,16 sweeps K."),
    passes: int = typer.Option(8, "--passes", help="M idle consolidation passes."),
    seed: int = typer.Option(0, "--seed"),
    lr: float = typer.Option(3e-3, "--lr", help="Adapter learning rate."),
    rank: int = typer.Option(8, "--rank", help="LoRA rank."),
    rehearse: bool = typer.Option(True, "--rehearse/--no-rehearse",
                                  help="Also train each replayed fact as a question and its answer, "
                                       "as the runtime does (--no-rehearse: replay turns only)."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of recall and loss per pass."),
    as_json: bool = JsonOpt,
) -> None:
    """Tell K facts once, consolidate M idle passes, wipe memory, ask again: recall from weights alone."""
    ks = _parse_counts(facts, "--facts")
    if passes < 0:
        fail(f"--passes must be >= 0, got {passes}")
    if plot_path is not None and plot_path.suffix.lower() != ".png":
        fail(f"--plot must name a .png file, got {plot_path}")
    import torch
    from engine.eval.consolidation import ConsolidationSettings, plot, run_consolidation
    from engine.vm.checkpoint import resolve_model

    try:
        net = resolve_model(model)
    except (OSError, ValueError) as exc:
        fail(f"cannot load the model: {str(exc).splitlines()[0] if str(exc) else exc}")
    if torch.cuda.is_available():
        net = net.cuda()
    settings = ConsolidationSettings(passes=passes, seed=seed, lr=lr, rank=rank, rehearse=rehearse)
    say = None if as_json else typer.echo
    result = run_consolidation(net, ks, settings, progress=say)
    if plot_path is not None:
        plot(result, plot_path)
        result["plot"] = str(plot_path)
    if as_json:
        print_json(result)
        return
    typer.echo("recall: exact answers with memory / wiped before consolidation / wiped after it")
    typer.echo(f"{'K':>4} {'memory':>7} {'before':>7} {'after':>7}   {'held-out loss':<21} {'delta':>8} "
               f"{'train-split delta':>18}")
    for run in result["runs"]:
        typer.echo(f"{run['facts']:>4} {run['recall_with_memory']:>7.2f} {run['recall_wiped_before']:>7.2f} "
                   f"{run['recall_after_wipe']:>7.2f}   "
                   f"{run['heldout_loss_before']:.4f} -> {run['heldout_loss_after']:<9.4f}"
                   f"{100 * run['heldout_loss_delta']:>+7.2f}% {100 * run['train_split_loss_delta']:>+17.2f}%")
    for run in result["runs"]:
        right = run["replay_values_correct"]
        typer.echo(f"K={run['facts']}: {run['cues_found']} stored facts' cues found, "
                   f"{'no' if right is None else f'{100 * right:.1f}% of the'} facts replayed right")
    if plot_path is not None:
        typer.echo(f"plot: {plot_path}")


def add_consolidation_command(eval_app: typer.Typer) -> None:
    """Add ``consolidation`` to the ``mosaic eval`` group (called by mosaic_cli/eval_cmd.py)."""
    eval_app.command("consolidation")(consolidation_cmd)
