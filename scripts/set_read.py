#!/usr/bin/env python3
"""Write a copy of a MOSAIC model file that reads its memory differently.

    python3 scripts/set_read.py MODEL.safetensors OUT.safetensors [--probes N] [--temperature T|dot] [--threshold C] [--ways W]
        [--clear-confidence P]

None of these settings shapes a weight, so a model trained with one can run with another:
``--probes`` how many of the router's top buckets a READ looks in (<= scan_probes); ``--temperature``
t makes a read weigh its slots by softmax(cos(q, k) / t) instead of softmax(q . k / sqrt(dk))
(``dot``); ``--threshold`` the cosine at which a write replaces the live way of its bucket whose
key is closest (else it takes an empty way or evicts); ``--ways`` how many slots each bucket holds
(more ways: fewer evictions, a larger memory state, more slots per read); ``--clear-confidence`` the
softmax probability a CLEAR needs to be carried out (else the cycle is a NOP). Pick them on validation conversations
(scripts/sweep_read.py). Weights and every other piece of metadata are copied unchanged.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.vm.checkpoint import ModelError, load_model, read_metadata, save_model  # noqa: E402
from engine.vm.config import ConfigError  # noqa: E402
from engine.vm.model import MosaicLM  # noqa: E402


def temperature(text: str) -> float | None:
    return None if text == "dot" else float(text)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--probes", type=int, default=None)
    ap.add_argument("--temperature", type=temperature, default=argparse.SUPPRESS,
                    help="t > 0 for cosine reads, or 'dot' for dot-product reads")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--ways", type=int, default=None)
    ap.add_argument("--clear-confidence", type=float, default=None)
    args = ap.parse_args(argv)
    given = (("probes", args.probes), ("match_threshold", args.threshold), ("ways", args.ways),
             ("clear_confidence", args.clear_confidence))
    changes = {k: v for k, v in given if v is not None}
    if hasattr(args, "temperature"):
        changes["read_temperature"] = args.temperature
    if not changes:
        print("error: nothing to change (give --probes, --temperature, --threshold, --ways or --clear-confidence)", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model)
        cfg = dataclasses.replace(model.config, **changes)  # validated by the config itself
        new = MosaicLM(cfg)
        new.load_state_dict(model.state_dict(), strict=True)
    except (ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    extra = {k: v for k, v in read_metadata(args.model).items() if k not in ("format", "config")}
    save_model(new, args.out, extra)
    old = model.config
    print(f"{args.out}: " + ", ".join(f"{k} {getattr(old, k)} -> {v}" for k, v in changes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
