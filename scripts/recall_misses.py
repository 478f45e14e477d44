#!/usr/bin/env python3
"""Why recalled answers miss: for each missed answer, what each memory layer's plan did with the
slot its first wrong byte should have been read from.

    python3 scripts/recall_misses.py [--model PATH] [--facts 16] [--distance 2000] [--samples 32] [--split train] [--json]

Runs the held-out recall conversations of ``mosaic eval recall`` (same seeds: ``--seed 0`` and
``--samples 32`` are the eval's first 32 conversations of that cell) with the model's own
decisions, and sorts the first wrong byte of every missed answer, per memory layer, into:

* ``no_read``        the layer did not READ (or SCAN) there
* ``never_written``  the byte it should read was never written (opcode or gate said no)
* ``replaced``       written, but a later write into its bucket, with a key at least the match
                     threshold close to its own, took its slot
* ``cleared``        written, but a later CLEAR in its bucket (the model's own decision: the
                     conversations forget nothing) found its key the closest and emptied the slot
* ``evicted``        written, but its slot was taken by a later write into its full bucket whose
                     key matched no way (the way of lowest utility goes)
* ``not_probed``     still in memory, in a bucket the read did not probe
* ``read_minor``     read, with less than half of the read's softmax weight
* ``read_major``     read with at least half the weight (the value still mixed with others, or
                     another layer decided the byte)

It also counts where the first wrong byte lies in the value (first / middle / last), and, on the
update benchmark (6 facts, 3 given new values), how many misses of updated facts get only their
first byte wrong, how many give the old value back whole, and how often an update that names the old
value (and so clears it) comes back right against one that does not.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import engine.vm.block as block  # noqa: E402
from engine.curriculum.episodes import recall_example, update_example  # noqa: E402
from engine.eval.common import pad_batch, run_stream  # noqa: E402
from engine.eval.recall import n_buckets_of  # noqa: E402
from engine.train.checkpoint import CheckpointError, load_trained_model  # noqa: E402

CATEGORIES = ("no_read", "never_written", "replaced", "cleared", "evicted", "not_probed", "read_minor",
              "read_major")


@contextmanager
def captured_plans():
    """Every memory layer's (planner arguments, plan) of the forward passes run inside, in order."""
    plans = []
    original = block.plan_slots

    def spy(**kw):
        plan = original(**kw)
        plans.append((kw, plan))
        return plan

    block.plan_slots = spy
    try:
        yield plans
    finally:
        block.plan_slots = original


def _classify(kw, plan, queries, mem, b: int, r: int, w: int) -> str:
    """The category of the read at (row b, position r) whose value byte was written at position w."""
    NBW = mem.NB * mem.W
    hit = ((plan.read_rows == b) & (plan.read_pos == r)).nonzero()
    if len(hit) == 0:
        return "no_read"
    i = int(hit[0])
    if not bool(kw["write"][b, w]):
        return "never_written"
    events = plan.read_events[i, : mem.P * mem.W]
    keys = torch.cat([kw["init_keys"][b].reshape(NBW, -1), kw["keys"][b]], 0)
    if not bool((events == NBW + w).any()):
        probed = kw["read_probes"][i, : mem.P]
        if not bool((probed == kw["bucket"][b, w]).any()):
            return "not_probed"
        # who took the slot: a later write into the bucket with a threshold-close key, a later CLEAR
        # there, or else an eviction from a full bucket
        later = torch.arange(w + 1, r + 1)
        same = kw["bucket"][b, later] == kw["bucket"][b, w]
        writes = later[kw["write"][b, later].bool() & same]
        unit = torch.nn.functional.normalize(keys[NBW + writes].float(), dim=-1)
        if bool((unit @ torch.nn.functional.normalize(keys[NBW + w].float(), dim=-1) >= mem.threshold).any()):
            return "replaced"
        return "cleared" if bool((kw["clear"][b, later].bool() & same).any()) else "evicted"
    live = events[events >= 0]
    keys = keys[live].float()
    weight = torch.softmax(keys @ queries[b, r].float() * mem.dk ** -0.5, 0)[(live == NBW + w).nonzero()[0]]
    return "read_major" if float(weight) >= 0.5 else "read_minor"


def recall_misses(model, facts: int, distance: int, samples: int, seed: int, split: str = "heldout") -> dict:
    """Miss categories per memory layer over ``samples`` recall conversations (see the module doc)."""
    exs = [recall_example(seed * 100_003 + i, facts, distance, n_buckets_of(model, "mosaic"), split=split)
           for i in range(samples)]
    ids = pad_batch([e.ids for e in exs])
    with captured_plans() as plans, torch.no_grad():
        out = model(ids, state=model.init_state(len(exs)))
    pred = out.logits.argmax(-1)
    layers = [i for i, blk in enumerate(model.blocks) if blk.memory is not None]
    by_layer = {li: collections.Counter() for li in layers}
    where = collections.Counter()
    answers = misses = 0
    for b, e in enumerate(exs):
        for start, end in e.meta["answers"]:
            answers += 1
            wrong = (pred[b, start - 1:end - 1] != ids[b, start:end]).nonzero()
            if len(wrong) == 0:
                continue
            misses += 1
            j = int(wrong[0])
            where["first" if j == 0 else "last" if j == end - start - 1 else "middle"] += 1
            r = start - 1 + j
            for li, (kw, plan) in zip(layers, plans):
                by_layer[li][_classify(kw, plan, out.aux["queries"][:, :, li], model.blocks[li].memory,
                                       b, r, int(e.pair[r]))] += 1
    return {"facts": facts, "distance": distance, "samples": samples, "seed": seed, "split": split, "answers": answers,
            "misses": misses, "first_wrong_byte": dict(where),
            "layers": {str(li): {c: by_layer[li][c] for c in CATEGORIES} for li in layers}}


def update_misses(model, samples: int, seed: int) -> dict:
    """Misses on updated facts of the update benchmark: how many only on the first byte, how many
    with the old value whole; and recall by phrasing of the update: naming the old value (its bytes
    are CLEARed) or not (the new value's write must replace the old one by matching its key)."""
    exs = [update_example(seed * 100_003 + i, 6, n_buckets_of(model, "mosaic")) for i in range(samples)]
    ids = pad_batch([e.ids for e in exs])
    pred, _ = run_stream(model, "mosaic", ids)
    misses = first_only = old_back = 0
    phrasing = {"old_named": [0, 0], "old_not_named": [0, 0]}  # [right, asked]
    for b, e in enumerate(exs):
        for (start, end, updated), old, named in zip(e.meta["answers"], e.meta["old_values"], e.meta["old_named"]):
            if not updated:
                continue
            ok = pred[b, start - 1:end - 1] == ids[b, start:end]
            tally = phrasing["old_named" if named else "old_not_named"]
            tally[0] += bool(ok.all())
            tally[1] += 1
            if bool(ok.all()):
                continue
            misses += 1
            first_only += bool(not ok[0] and ok[1:].all())
            # the old value whole: the predictions over the answer's first bytes spell it
            old_back += bytes(pred[b, start - 1:start - 1 + len(old)].tolist()) == old.encode()
    return {"samples": samples, "seed": seed, "updated_misses": misses, "first_byte_only": first_only,
            "old_value_whole": old_back,
            "recall_by_phrasing": {k: {"right": r, "asked": n} for k, (r, n) in phrasing.items()}}


def load_mosaic(path):
    """The MOSAIC model at ``path`` (None: the shipped one), or None after a one-line error on stderr."""
    try:
        model, arch, _ = load_trained_model(path)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if arch != "mosaic":
        print("error: only a MOSAIC model has memory (this is a window baseline)", file=sys.stderr)
        return None
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--model", default=None, help="training folder or model file (default: the shipped model)")
    ap.add_argument("--facts", type=int, default=16)
    ap.add_argument("--distance", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="heldout", choices=("heldout", "train"),
                    help="key vocabulary and templates of the conversations (the evals use heldout)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = load_mosaic(args.model)
    if model is None:
        return 1
    res = {"recall": recall_misses(model, args.facts, args.distance, args.samples, args.seed, args.split),
           "updates": update_misses(model, args.samples, args.seed)}
    if args.json:
        print(json.dumps(res))
        return 0
    rec = res["recall"]
    print(f"{rec['misses']} of {rec['answers']} answers missed ({rec['facts']} facts at {rec['distance']} bytes, "
          f"{rec['split']} split: {1 - rec['misses'] / max(rec['answers'], 1):.1%} exact); "
          f"first wrong byte: " + ", ".join(f"{k} {v}" for k, v in sorted(rec["first_wrong_byte"].items())))
    print("layer  " + "  ".join(f"{c:>13}" for c in CATEGORIES))
    for li, row in rec["layers"].items():
        print(f"{li:>5}  " + "  ".join(f"{row[c]:>13}" for c in CATEGORIES))
    upd = res["updates"]
    print(f"updates: {upd['updated_misses']} misses of updated facts, {upd['first_byte_only']} only on the first "
          f"byte, {upd['old_value_whole']} with the old value whole; right when the update named the old value "
          + ", when it did not ".join(f"{v['right']}/{v['asked']}" for v in upd["recall_by_phrasing"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
