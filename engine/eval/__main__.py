"""``python -m engine.eval recall|replies|updates|forget|tools|impulses``: the benchmarks without the CLI's dependencies.

Same options as ``mosaic eval``; prints a table, or one JSON object with ``--json``.
"""
from __future__ import annotations

import argparse
import json
import sys


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    return [int(x) for x in text.split(",") if x.strip()]


def _one(text: str | None, default: int, flag: str, bench: str) -> int:
    """The single integer ``--flag`` gives (``default`` if not given); ValueError for a list."""
    vals = _ints(text) or [default]
    if len(vals) != 1:
        raise ValueError(f"--{flag}: {bench} takes one value")
    return vals[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.eval", description=__doc__)
    p.add_argument("bench", choices=["recall", "replies", "updates", "forget", "tools", "impulses"])
    p.add_argument("--model", default=None, help="a training folder or model file (default: the shipped model)")
    p.add_argument("--baseline", default=None, help="a second model to print beside the first")
    p.add_argument("--facts", default=None, help="comma-separated fact counts (recall); one count (replies, updates, forget)")
    p.add_argument("--distance", default=None, help="comma-separated distances in bytes (recall)")
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--plot", default=None, help="PNG file (recall)")
    p.add_argument("--limit", type=int, default=None, help="only the first N tools (tools)")
    p.add_argument("--split", default="heldout", choices=["heldout", "train"],
                   help="key vocabulary, paraphrases and templates (replies, updates, forget, tools; the evaluation is heldout)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from engine.eval import run
    from engine.train.checkpoint import CheckpointError
    try:
        if args.bench == "recall":
            rep = run.recall(args.model, args.baseline, _ints(args.facts), _ints(args.distance),
                             args.samples or 8, args.device, args.plot,
                             progress=None if args.json else lambda r: print(
                                 f"  {r['model']}: facts={r['facts']} distance={r['distance']} "
                                 f"accuracy={r['accuracy']:.3f}", file=sys.stderr, flush=True))
            text = run.recall_table(rep)
        elif args.bench == "updates":
            facts = _one(args.facts, 6, "facts", "updates")
            rep = run.updates(args.model, args.baseline, facts, args.samples or 16, args.device, args.split)
            text = "\n".join(f"{n}: updated {r['updated']:.1%} of {r['answers_updated']}, "
                             f"left alone {r['unchanged']:.1%} of {r['answers_unchanged']}"
                             for n, r in rep["results"].items())
        elif args.bench == "replies":
            facts, dist = _one(args.facts, 16, "facts", "replies"), _one(args.distance, 2000, "distance", "replies")
            rep = run.replies(args.model, args.baseline, facts, dist, args.samples or 8, args.device, args.split)
            text = "\n".join(f"{n}: value in the reply {r['value_given']:.1%}, key and value {r['key_and_value']:.1%} "
                             f"of {r['answers']}" for n, r in rep["results"].items())
        elif args.bench == "forget":
            facts = _one(args.facts, 6, "facts", "forget")
            rep = run.forget(args.model, args.baseline, facts, args.samples or 16, args.device, args.split)
            text = "\n".join(f"{n}: withheld {r['withheld']:.1%}, declined {r['declined']:.1%} of "
                             f"{r['answers_forgotten']}; kept {r['kept']:.1%} of {r['answers_kept']}"
                             + "".join(f"; cleared in layer {k} {v:.1%}" for k, v in (r["cleared"] or {}).items())
                             for n, r in rep["results"].items())
        elif args.bench == "tools":
            rep = run.tools(args.model, args.baseline, args.samples or 1, device=args.device, limit=args.limit,
                            split=args.split)
            text = "\n".join(f"{n}: valid {r['valid']:.1%}  right tool {r['named']:.1%}  passed {r['passed']:.1%} "
                             f"of {r['requests']}"
                             for n, r in rep["results"].items())
        else:
            rep = run.impulses(args.model, args.baseline, args.samples or 16, args.device)
            text = "\n".join(f"{n}: fitting {r['fitting']:.1%} {r['by_kind']}" for n, r in rep["results"].items())
    except (CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(rep, default=str) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
