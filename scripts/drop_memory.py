#!/usr/bin/env python3
"""Write a copy of a MOSAIC model file without the memory of some layers.

    python3 scripts/drop_memory.py MODEL.safetensors OUT.safetensors --layers 0 [--check 16] [--force]

A layer whose reads never find anything adds exactly zero through its memory, yet its table
costs state (saved with every session) and time on every token. ``engine.vm.convert.drop_memory``
removes it with the projection rows that fed it; every other weight is copied unchanged.

First the script checks that nothing changes: it runs ``--check`` held-out-split conversations
of the training mix and as many recall conversations (16 facts at 2,000 bytes), validation seeds
(5000+), through the model and the copy, and prints the largest logit difference, the share of
positions that differ and how often the dropped layers read. It writes the copy only when both are zero,
or with ``--force``. Every other piece of metadata is copied unchanged.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from engine.curriculum.episodes import recall_example, training_example  # noqa: E402
from engine.vm.checkpoint import ModelError, load_model, read_metadata, save_model  # noqa: E402
from engine.vm.config import ConfigError  # noqa: E402
from engine.vm.convert import drop_memory, memory_contribution  # noqa: E402


def _layers(text: str) -> list[int]:
    try:
        return sorted({int(x) for x in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer indices like 0 or 0,1, got {text!r}") from None


def check_streams(n: int, length: int, n_buckets: int) -> list[torch.Tensor]:
    """``n`` training-mix conversations (held-out split) and ``n`` recall conversations, validation
    seeds, each a [1, T] long tensor."""
    out = [torch.tensor(training_example(5000 + i, length, n_buckets, split="heldout").ids) for i in range(n)]
    out += [torch.tensor(recall_example(5000 * 100_003 + i, 16, 2000, n_buckets).ids) for i in range(n)]
    return [t.unsqueeze(0) for t in out]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--layers", type=_layers, required=True, help="layer indices, comma-separated")
    ap.add_argument("--check", type=int, default=16, help="conversations of each kind to compare on (0: none)")
    ap.add_argument("--length", type=int, default=1536, help="bytes per training-mix conversation")
    ap.add_argument("--force", action="store_true", help="write the copy even where the logits change")
    args = ap.parse_args(argv)
    if args.check < 0:
        print("error: --check must be >= 0", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model).eval()
        new = drop_memory(model, args.layers)
    except (ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    changed = False
    if args.check:
        streams = check_streams(args.check, args.length, model.config.buckets)
        rows = [memory_contribution(model, ids, args.layers, new) for ids in streams]
        worst = max(r["max_logit_diff"] for r in rows)
        share = sum(r["changed_positions"] * r["positions"] for r in rows) / sum(r["positions"] for r in rows)
        print(json.dumps({"layers": args.layers, "conversations": len(rows), "max_logit_diff": worst,
                          "changed_positions": share, "reads": sum(r["reads"] for r in rows)}))
        changed = worst > 0
    if changed and not args.force:
        print("error: dropping that memory changes the logits (above); --force writes the copy anyway",
              file=sys.stderr)
        return 1
    extra = {k: v for k, v in read_metadata(args.model).items() if k not in ("format", "config")}
    save_model(new, args.out, extra)
    before = sum(p.numel() for p in model.parameters())
    after = sum(p.numel() for p in new.parameters())
    print(f"{args.out}: memory_layers {list(new.config.memory_layers)}; parameters {before:,} -> {after:,}; "
          f"state per sequence {model.init_state(1).nbytes():,} -> {new.init_state(1).nbytes():,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
