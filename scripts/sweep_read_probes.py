#!/usr/bin/env python3
"""Recall of one model read with different numbers of probes (how many of the router's top
buckets a READ looks in), on conversations chosen by ``--seed``: pick the count on seeds that
the evaluation does not use (``mosaic eval recall`` uses seed 0), then set it with
scripts/set_read_probes.py.

    python3 scripts/sweep_read_probes.py MODEL --probes 4,6,8,10,12,16 --facts 16 --distance 2000 --seed 5000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.eval.recall import n_buckets_of, recall_cell  # noqa: E402
from engine.train.checkpoint import load_trained_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--probes", default="4,6,8,10,12,16")
    ap.add_argument("--facts", type=int, default=16)
    ap.add_argument("--distance", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=5000)
    args = ap.parse_args()
    model, arch, _ = load_trained_model(args.model)
    if arch != "mosaic":
        print("error: only a MOSAIC model has read probes", file=sys.stderr)
        return 1
    mems = [m for m in model.modules() if hasattr(m, "P") and hasattr(m, "Ps")]
    nb = n_buckets_of(model, arch)
    for p in (int(x) for x in args.probes.split(",")):
        if not 1 <= p <= min(m.Ps for m in mems):
            print(f"error: probes {p} must be between 1 and scan_probes ({mems[0].Ps})", file=sys.stderr)
            return 1
        for m in mems:
            m.P = p
        r = recall_cell(model, arch, args.facts, args.distance, samples=args.samples, n_buckets=nb, seed=args.seed)
        print(json.dumps({"probes": p, "facts": args.facts, "distance": args.distance, "seed": args.seed,
                          "accuracy": r["accuracy"], "byte_accuracy": r["byte_accuracy"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
