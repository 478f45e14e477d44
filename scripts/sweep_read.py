#!/usr/bin/env python3
"""How one model's memory reads with other read settings, on validation conversations.

    python3 scripts/sweep_read.py MODEL --probes 8,12 --temperature dot,0.1 --threshold 0.9,0.95 \
        --clear-confidence 0,0.8

For every combination: recall of ``--facts`` facts at ``--distance`` bytes, the update
benchmark (6 facts, 3 given new values: updated / left alone) and the forgetting benchmark
(6 facts, 3 forgotten: withheld / declined / kept), each over ``--samples`` conversations per
seed of ``--seeds``; with ``--replies N`` also the model's own replies to the recall questions of N
conversations per seed (``engine.eval.recall.reply_cell``: share holding the value; slow). The evaluations (``mosaic eval``) use seed 0: choose on seeds they do not use, then write the choice with scripts/set_read.py. One JSON line per setting.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.eval.recall import forget_cell, n_buckets_of, recall_cell, reply_cell, update_cell  # noqa: E402
from engine.train.checkpoint import CheckpointError, load_trained_model  # noqa: E402
from engine.vm.memory import Memory  # noqa: E402


def _list(kind):
    return lambda text: [kind(x) for x in text.split(",")]


def _temperature(text: str) -> float | None:
    return None if text == "dot" else float(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--probes", type=_list(int), default=None, help="counts (default: the model's)")
    ap.add_argument("--temperature", type=_list(_temperature), default=None,
                    help="t > 0 (cosine reads) or 'dot' (default: the model's)")
    ap.add_argument("--threshold", type=_list(float), default=None, help="match thresholds (default: the model's)")
    ap.add_argument("--clear-confidence", type=_list(float), default=None,
                    help="probabilities a CLEAR needs (default: the model's)")
    ap.add_argument("--facts", type=int, default=16)
    ap.add_argument("--distance", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seeds", type=_list(int), default=[5000, 6000])
    ap.add_argument("--replies", type=int, default=0, help="conversations per seed whose replies the model writes")
    args = ap.parse_args()
    try:
        model, arch, _ = load_trained_model(args.model)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if arch != "mosaic":
        print("error: only a MOSAIC model has memory reads", file=sys.stderr)
        return 1
    mems = [m for m in model.modules() if isinstance(m, Memory)]
    cfg = model.config
    grid = itertools.product(args.probes or [cfg.probes], args.temperature or [cfg.read_temperature],
                             args.threshold or [cfg.match_threshold], args.clear_confidence or [cfg.clear_confidence])
    nb = n_buckets_of(model, arch)
    for probes, temp, thr, conf in grid:
        if not 1 <= probes <= cfg.scan_probes:
            print(f"error: probes {probes} must be between 1 and scan_probes ({cfg.scan_probes})", file=sys.stderr)
            return 1
        if temp is not None and not temp > 0:
            print(f"error: temperature must be > 0 or 'dot', got {temp}", file=sys.stderr)
            return 1
        if not 0 <= conf < 1:
            print(f"error: clear confidence must be in [0, 1), got {conf}", file=sys.stderr)
            return 1
        for m in mems:
            m.set_reads(probes, temp, thr)
        for blk in model.blocks:
            blk.clear_confidence = conf
        rec = [recall_cell(model, arch, args.facts, args.distance, samples=args.samples, n_buckets=nb, seed=s)
               for s in args.seeds]
        upd = [update_cell(model, arch, 6, samples=args.samples, n_buckets=nb, seed=s) for s in args.seeds]
        fgt = [forget_cell(model, arch, 6, samples=args.samples, n_buckets=nb, seed=s) for s in args.seeds]
        n = len(args.seeds)
        extra = {}
        if args.replies > 0:
            rep = [reply_cell(model, arch, args.facts, args.distance, args.replies, nb, seed=s) for s in args.seeds]
            extra["replies_value_given"] = round(sum(r["value_given"] for r in rep) / n, 4)
        print(json.dumps({"probes": probes, "temperature": temp if temp is not None else "dot", "threshold": thr,
                          "clear_confidence": conf,                          "facts": args.facts, "distance": args.distance, "seeds": args.seeds,
                          "recall": round(sum(r["accuracy"] for r in rec) / n, 4),
                          "updated": round(sum(u["updated"] for u in upd) / n, 4),
                          "left_alone": round(sum(u["unchanged"] for u in upd) / n, 4),
                          "forgotten_withheld": round(sum(f["withheld"] for f in fgt) / n, 4),
                          "forgotten_declined": round(sum(f["declined"] for f in fgt) / n, 4),
                          "kept": round(sum(f["kept"] for f in fgt) / n, 4),
                          "answers": sum(r["answers"] for r in rec), **extra}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
