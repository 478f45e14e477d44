"""``mosaic eval recall|replies|updates|forget|tools|impulses``: quality benchmarks, a table (or one JSON object) and a plot.

The logic lives in ``engine.eval.run`` (also runnable as ``python -m engine.eval``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mosaic_cli.errors import fail, print_json

eval_app = typer.Typer(help="Quality benchmarks: recall, replies, updates, forget, tools, impulses, consolidation.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command group to ``app``."""
    app.add_typer(eval_app, name="eval")


def _ints(text: Optional[str], what: str) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"--{what}: expected integers separated by commas, got {text!r}")
    if not vals or any(v < 0 for v in vals):
        fail(f"--{what}: expected non-negative integers, got {text!r}")
    return vals


def _guard(fn):
    from engine.train.checkpoint import CheckpointError
    try:
        return fn()
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))


MODEL = typer.Option(None, "--model", help="A training folder or model file (default: the shipped model).")
BASELINE = typer.Option(None, "--baseline", help="A second model (e.g. --arch window) printed beside the first.")
DEVICE = typer.Option(None, "--device", help="cpu, cuda ... (default: cuda if present).")
JSON = typer.Option(False, "--json", help="One JSON object on stdout.")


def split_option(what: str, more: str = ""):
    """``--split heldout|train``; ``what`` names what the training split uses, ``more`` other splits."""
    return typer.Option("heldout", "--split", help=f"heldout (the evaluation), or train: the training {what}, "
                                                   f"to see how much of a miss is the unseen wording{more}.")


def check_split(split: str, allowed: tuple[str, ...] = ("heldout", "train")) -> None:
    if split not in allowed:
        fail(f"--split: expected {', '.join(allowed[:-1])} or {allowed[-1]}, got {split!r}")


@eval_app.command("recall")
def recall(
    model: Optional[Path] = MODEL,
    baseline: Optional[Path] = BASELINE,
    facts: Optional[str] = typer.Option(None, "--facts", help="Fact counts, e.g. 16 or 1,4,16,64."),
    distance: Optional[str] = typer.Option(None, "--distance", help="Distances in bytes, e.g. 2000 or 500,4000."),
    samples: Optional[int] = typer.Option(
        None, "--samples", min=1,
        help="Conversations per cell (default: 64 for one cell, 8 per cell of a grid; at 8 a cell of 16 "
             "facts swings by a few points from one seed to the next)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG plot here."),
    device: Optional[str] = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Exact-match recall against facts held (1-64) and distance (up to 8x the training length)."""
    from engine.eval import run
    fs, ds = _ints(facts, "facts"), _ints(distance, "distance")
    if samples is None:
        samples = 64 if fs and ds and len(fs) == 1 and len(ds) == 1 else 8
    if fs and min(fs) < 1:
        fail("--facts: at least 1 fact")
    if plot is not None and plot.suffix.lower() != ".png":
        fail(f"--plot: expected a .png file, got {plot}")
    rep = _guard(lambda: run.recall(model, baseline, fs, ds, samples, device, plot,
                                    progress=None if as_json else lambda r: typer.echo(
                                        f"  {r['model']}: facts={r['facts']} distance={r['distance']} "
                                        f"accuracy={r['accuracy']:.3f}", err=True)))
    if as_json:
        cells = [c for rows in rep["results"].values() for c in rows]
        if len(cells) == 1:  # one model, one cell: the object itself
            print_json(cells[0])
        else:
            print_json(rep)
        return
    typer.echo(run.recall_table(rep))
    if plot:
        typer.echo(f"plot: {plot}")


@eval_app.command("updates")
def updates(
    model: Optional[Path] = MODEL,
    baseline: Optional[Path] = BASELINE,
    facts: int = typer.Option(6, "--facts", min=1, help="Facts told; half of them get a new value."),
    samples: int = typer.Option(16, "--samples", min=1, help="Conversations."),
    split: str = split_option("keys and templates"),
    device: Optional[str] = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Exact-match recall after updates: facts told, half given new values ("the code changed to
    9902"), then all asked; the updated ones must come back with their new value."""
    from engine.eval import run
    check_split(split)
    rep = _guard(lambda: run.updates(model, baseline, facts, samples, device, split))
    if as_json:
        print_json(rep)
        return
    for name, r in rep["results"].items():
        typer.echo(f"{name}: updated facts {100 * r['updated']:.1f}% of {r['answers_updated']}, "
                   f"facts left alone {100 * r['unchanged']:.1f}% of {r['answers_unchanged']}")


@eval_app.command("replies")
def replies(
    model: Optional[Path] = MODEL,
    baseline: Optional[Path] = BASELINE,
    facts: int = typer.Option(16, "--facts", min=1, help="Facts held."),
    distance: int = typer.Option(2000, "--distance", min=0, help="Bytes between the last telling and the first question."),
    samples: int = typer.Option(8, "--samples", min=1, help="Conversations (every fact is asked once in each)."),
    split: str = split_option("keys and templates"),
    device: Optional[str] = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Recall as a chat shows it: the model writes its whole reply to each recall question
    (``mosaic eval recall`` gives the reply's words up to the value and checks the value). Share
    of replies that hold the value, and that also name the key as it was told."""
    from engine.eval import run
    check_split(split)
    rep = _guard(lambda: run.replies(model, baseline, facts, distance, samples, device, split))
    if as_json:
        print_json(rep)
        return
    for name, r in rep["results"].items():
        typer.echo(f"{name}: value in the reply {100 * r['value_given']:.1f}%, key and value "
                   f"{100 * r['key_and_value']:.1f}% of {r['answers']} replies")
        for ex in r["examples"]:
            typer.echo(f"  {ex['key']}: {ex['value']}  ->  {ex['reply']}")


@eval_app.command("forget")
def forget(
    model: Optional[Path] = MODEL,
    baseline: Optional[Path] = BASELINE,
    facts: int = typer.Option(6, "--facts", min=2, help="Facts told; half of them are forgotten."),
    samples: int = typer.Option(16, "--samples", min=1, help="Conversations."),
    split: str = split_option("keys and templates (\"forget that the X is V\")"),
    device: Optional[str] = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Forgetting: facts told, half forgotten ("you can drop it: the X is V"), then all asked.
    A forgotten fact's reply (written by the model) must not give the value (withheld) and
    should say it is unknown (declined); the others must come back exactly (kept). For MOSAIC
    also the share of the forgotten values' bytes at which each memory layer CLEARs (cleared)."""
    from engine.eval import run
    check_split(split)
    rep = _guard(lambda: run.forget(model, baseline, facts, samples, device, split))
    if as_json:
        print_json(rep)
        return
    for name, r in rep["results"].items():
        cleared = "; cleared " + ", ".join(f"{100 * v:.1f}% in layer {k}" for k, v in r["cleared"].items()) \
            if r.get("cleared") else ""
        typer.echo(f"{name}: forgotten facts withheld {100 * r['withheld']:.1f}%, declined {100 * r['declined']:.1f}% "
                   f"of {r['answers_forgotten']}; facts kept {100 * r['kept']:.1f}% of {r['answers_kept']}{cleared}")


@eval_app.command("tools")
def tools(
    model: Optional[Path] = MODEL,
    baseline: Optional[Path] = BASELINE,
    samples: int = typer.Option(1, "--samples", min=1, help="Requests per tool."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N tools."),
    max_new: int = typer.Option(1600, "--max-bytes", min=16, help="Longest definition generated."),
    split: str = split_option("paraphrases and templates", "; or templates: the held-out templates around "
                              "the training paraphrases (the wording's frame alone unseen); or more: the "
                              "curriculum's blind-written wordings (tool_phrases.json) in the training "
                              "templates, unseen unless the model trained with --more-phrases; or blind: "
                              "four more held-out wordings per tool (tool_heldout.json, written blind, "
                              "never trained on) in the held-out templates, --samples 4 takes each once"),
    retries: Optional[int] = typer.Option(
        None, "--retries", min=0, help="Rewrites of a definition that does not validate, sampled, as chat "
        "makes them (default: chat's tool_def_retries); 0 measures the first definition only."),
    device: Optional[str] = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Share of held-out tool requests whose generated definition validates, that name the
    requested tool, and whose tool passes the request's test cases in toolsmith's sandbox; and
    share of requests to use a tool (fresh arguments) whose generated call names it and carries
    exactly those arguments, by the model alone and with string and number arguments copied from
    the request as chat writes them; and share of replies after the right call and its result that
    show the result, both ways; and share of replies after a failed result (no such tool, or it
    raised) that say so. The shares are of the first (greedy) definition; "retried"
    gives them after chat's retries of definitions that do not validate, and "hinted" as chat
    writes definitions: named from the request's words (the nearest known tool), then retried."""
    from engine.eval import run
    from engine.runtime.engine import EngineConfig
    check_split(split, ("heldout", "train", "templates", "more", "blind"))
    cfg = EngineConfig()
    n_retries = cfg.tool_def_retries if retries is None else retries
    rep = _guard(lambda: run.tools(model, baseline, samples, max_new, device, limit, split,
                                   n_retries, cfg.tool_retry_temperature))
    if as_json:
        print_json(rep)
        return
    for name, r in rep["results"].items():
        cues = (f" ({100 * r['passed_cued']:.1f}% of the {r['cued']} whose wording shares a word with the "
                f"tool's training requests, {100 * r['passed_uncued']:.1f}% of the rest)") if split == "heldout" else ""
        typer.echo(f"{name}: {r['requests']} {split} requests, valid {100 * r['valid']:.1f}%, right tool "
                   f"{100 * r['named']:.1f}%, passed tests {100 * r['passed']:.1f}%{cues}; {r['calls']} calls, "
                   f"right tool {100 * r['call_named']:.1f}%, exact arguments {100 * r['call_exact']:.1f}% "
                   f"({100 * r['call_copied_exact']:.1f}% copied from the request as chat writes them); "
                   f"{r['replies']} replies after a result show it {100 * r['result_shown']:.1f}% "
                   f"({100 * r['result_shown_copied']:.1f}% as chat writes them); {r['failures']} replies "
                   f"after a failed result say so {100 * r['failure_replied']:.1f}%")
        if r.get("retried"):
            a = r["retried"]
            typer.echo(f"{name}: after up to {a['retries']} retries as chat makes them ({a['rewritten']} "
                       f"rewritten at temperature {a['temperature']:g}): valid {100 * a['valid']:.1f}%, "
                       f"right tool {100 * a['named']:.1f}%, passed tests {100 * a['passed']:.1f}%")
        h = r["hinted"]
        typer.echo(f"{name}: as chat writes definitions, named from the request's words "
                   f"({100 * h['hinted']:.1f}% given a name, {100 * h['hint_right']:.1f}% the requested "
                   f"tool's), then retried: valid {100 * h['valid']:.1f}%, right tool "
                   f"{100 * h['named']:.1f}%, passed tests {100 * h['passed']:.1f}%")


@eval_app.command("impulses")
def impulses(
    model: Optional[Path] = MODEL,
    baseline: Optional[Path] = BASELINE,
    samples: int = typer.Option(16, "--samples", min=1, help="Impulses per kind."),
    device: Optional[str] = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Share of impulses answered with the fitting opcodes (by kind)."""
    from engine.eval import run
    rep = _guard(lambda: run.impulses(model, baseline, samples, device))
    if as_json:
        print_json(rep)
        return
    for name, r in rep["results"].items():
        kinds = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["by_kind"].items())
        typer.echo(f"{name}: fitting {100 * r['fitting']:.1f}% of {r['impulses']}, balanced {100 * r['balanced']:.1f}% "
                   f"(always idling would score {100 * r['always_idle']:.1f}%) ({kinds})")


def _add_consolidation() -> None:
    # The consolidation measure belongs to the medium timescale; its command lives with the adapters.
    from mosaic_cli.adapters_cmd import add_consolidation_command
    add_consolidation_command(eval_app)


_add_consolidation()
