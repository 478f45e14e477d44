"""``python -m engine.train``: the trainer without the CLI's dependencies (for GPU machines).

Same options as ``mosaic train``; ``--time-budget S`` stops and saves after S seconds.
"""
from __future__ import annotations

import argparse
import json
import shlex
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__)
    p.add_argument("--preset", default="tiny", help="tiny | default | base")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--arch", default="mosaic", help="mosaic | window")
    p.add_argument("--out", default=None, help="run folder (default: MOSAIC_HOME/models/<preset>-<arch>)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds; stop and save when spent (the step count still ends the run if it comes "
                        "first: pass a large --steps to train for the whole budget)")
    p.add_argument("--workers", type=int, default=None, help="data-loader processes")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--cuda-graph", action="store_true",
                   help="replay each step from CUDA graphs (one GPU; same steps, fewer launches)")
    p.add_argument("--from-session", default=None, help="also train on this session's replay log")
    p.add_argument("--init", default=None, help="start from these weights (model file or run folder)")
    p.add_argument("--match-weight", type=float, default=None,
                   help="weight of the match loss (an update's key onto the old value's; default 0: off)")
    p.add_argument("--tools-share", type=float, default=None,
                   help="share of conversations about tools (default 0.15, what the default model trained on)")
    p.add_argument("--more-phrases", action="store_true",
                   help="tool requests also use the curriculum's blind-written wordings (tool_phrases.json)")
    p.add_argument("--tool-failures", type=float, default=None,
                   help="share of tool calls whose result is a failure, answered by saying so (default 0)")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    return p


def default_out(preset: str, arch: str) -> Path:
    from engine.store.paths import models_dir
    return models_dir() / f"{preset}-{arch}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from engine.train.config import TrainConfigError, train_preset
    try:
        cfg = train_preset(args.preset, steps=args.steps, arch=args.arch, seed=args.seed,
                           batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
                           time_budget=args.time_budget, workers=args.workers, eval_every=args.eval_every,
                           amp=False if args.no_amp else None, from_session=args.from_session,
                           init_from=args.init, w_match=args.match_weight, tools_share=args.tools_share,
                           more_phrases=True if args.more_phrases else None, tool_failures=args.tool_failures,
                           cuda_graph=True if args.cuda_graph else None)
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from engine.train.loop import train
    out = Path(args.out) if args.out else default_out(args.preset, args.arch)
    command = "python -m engine.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        info = train(cfg, out, device=args.device, resume=args.resume, command=command)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports (two ranks would interleave their lines)
    if args.json:
        print(json.dumps(info, default=str))
    else:
        print(f"saved {out} (steps {info['steps_done']}, {info['wall_s']} s, {info['tokens_per_s']:,.0f} tokens/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
