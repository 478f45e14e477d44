"""MODEL.md: the card written next to a trained model (command, data, steps, time, hardware, evals)."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from engine.store.atomic import atomic_write_text


def hardware(device: torch.device, world_size: int = 1) -> str:
    """A one-line description of what trained the model."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world_size} x {name} (torch {torch.__version__})"
    return (f"{world_size} x CPU process, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()} "
            f"(torch {torch.__version__})")


def _table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def _mix(train_config: dict) -> str:
    share, more = train_config.get("tools_share", 0.15), train_config.get("more_phrases", False)
    failures = train_config.get("tool_failures", 0.0)
    return (f" {share:.0%} of the conversations are about tools"
            + (", whose requests also use the blind-written wordings of tool_phrases.json" if more else "")
            + (f"; {failures:.0%} of tool calls fail and the reply says so." if failures else "."))


def render_card(info: dict, evals: dict | None = None) -> str:
    """The card's Markdown. ``info``: the run summary the trainer keeps (command, arch, preset,
    params, steps, tokens, wall_s, hardware, train config, model config, held-out history);
    ``evals``: optional results of ``mosaic eval`` to list (recall cells, tools, impulses)."""
    lines = [f"# {info.get('name', 'mosaic model')}", "",
             f"- **command**: `{info.get('command', '?')}`",
             f"- **architecture**: {info.get('arch')} (preset `{info.get('preset')}`), "
             f"{info.get('params', 0):,} parameters",
             f"- **data**: the synthetic curriculum of `engine.curriculum` (seed {info.get('seed')}): facts told, "
             "asked, updated and forgotten among distractor talk; tool requests and calls; impulses; "
             "commitments; cue-free replay. Training split only; evaluation uses the held-out key "
             "vocabulary and templates." + _mix(info.get("train_config") or {}),
             f"- **sequence length**: {info.get('seq_len')} bytes, batch {info.get('batch_size')} per process",
             f"- **steps**: {info.get('steps_done')} of {info.get('steps')} planned"
             + (f" (stopped by the {info.get('time_budget')} s time budget)" if info.get("stopped_by_time") else ""),
             f"- **tokens seen**: {info.get('tokens', 0):,}",
             f"- **wall time**: {info.get('wall_s', 0):.1f} s ({info.get('tokens_per_s', 0):,.0f} tokens/s)",
             f"- **hardware**: {info.get('hardware')}",
             f"- **final training loss**: {info.get('final_loss')}", ""]
    stages = info.get("stages") or []
    if stages:  # a --init run: the weights it started from were trained by these commands
        lines += ["## Training stages (this run started from the weights of the stage before it)", ""]
        for i, s in enumerate(stages + [info], 1):
            lines.append(f"{i}. `{s.get('command')}`: {s.get('steps_done')} steps of {s.get('batch_size')} x "
                         f"{s.get('seq_len')} bytes (seed {s.get('seed')}), {s.get('tokens', 0):,} bytes, "
                         f"{s.get('wall_s', 0):.0f} s on {s.get('hardware')}")
        total = sum(s.get("tokens") or 0 for s in stages + [info])
        lines += ["", f"In all: {total:,} training bytes.", ""]
    hist = info.get("heldout") or []
    if hist:
        lines += ["## Held-out checks during training", "",
                  _table(hist, ["step", "ce", "answer_byte_acc", "opcode_acc"]
                         + (["impulses"] if "impulses" in hist[-1] else [])), ""]
    if evals:
        lines += ["## Evaluation", ""]
        rec = evals.get("recall")
        if rec:
            lines += ["Exact-match recall (held-out keys and templates) by facts held and distance in bytes:", "",
                      _table(rec, ["facts", "distance", "accuracy", "model"]), ""]
        for key in ("tools", "impulses"):
            if evals.get(key):
                lines += [f"**{key}**: `{evals[key]}`", ""]
    lines += ["## Configs", "", "```json", json.dumps(info.get("model_config"), indent=1), "```", "",
              "```json", json.dumps(info.get("train_config"), indent=1), "```", ""]
    return "\n".join(lines)


def write_card(folder: Path, info: dict, evals: dict | None = None) -> Path:
    return atomic_write_text(Path(folder) / "MODEL.md", render_card(info, evals))


def refresh_card(run_dir: Path, recall_json: Path | None = None, impulses_json: Path | None = None,
                 tools_json: Path | None = None, out: Path | None = None) -> Path:
    """Rewrite MODEL.md of ``run_dir`` (its metrics.json) with the eval results of
    ``mosaic eval ... --json`` files, every model of a result (e.g. the baseline) beside it."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "metrics.json").read_text())
    evals: dict = {}

    def load(p):
        try:
            return json.loads(Path(p).read_text()) if p and Path(p).exists() else None
        except ValueError:
            return None
    rec = load(recall_json)
    if rec and "results" in rec:
        evals["recall"] = [dict(r, accuracy=f"{100 * r['accuracy']:.1f}%", model=f"{r.get('arch')}: {r['model']}")
                           for rows in rec["results"].values() for r in rows]
    for key, p in (("impulses", impulses_json), ("tools", tools_json)):
        rep = load(p)
        if rep and "results" in rep:
            evals[key] = {name: {k: v for k, v in r.items() if k != "rows"} for name, r in rep["results"].items()}
    target = Path(out) if out else run_dir
    return write_card(target, info, evals)
