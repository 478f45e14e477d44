#!/usr/bin/env python3
"""How close the memory keys that should match are, and how close the ones that should not.

    python3 scripts/key_similarity.py [--model PATH] [--seed 5000] [--samples 64] [--json]

Per memory layer, cosines of write keys (the key a value's first byte is written under):

* ``update_named`` / ``update_not_named``: an update's new first byte against the old value's
  (the ``supersedes`` label; "named" when the update CLEARs the old value's bytes first). A write
  replaces the old slot only if this reaches the match threshold.
* ``distinct``: first bytes of two different facts of one conversation (they must stay apart).
* ``update_vs_others``: an update's new first byte against other facts' first bytes.
* ``clears``: every CLEAR the opcode head picks (its argmax; the model's ``clear_confidence`` is
  set aside for this run), in the update benchmark (where the curriculum labels some) and in the
  recall benchmark of 16 facts at 2,000 bytes (where it labels none): how many, the best cosine
  of its key to an earlier write in its bucket (a CLEAR empties that way however far it is), and
  its softmax probability (``clear_confidence`` carries out only CLEARs at least that sure),
  where labelled and where not.

Runs the update benchmark (6 facts, 3 updated) and the recall benchmark with the model's own
decisions; the evals use seed 0, so the default seed is a validation one.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.curriculum.episodes import recall_example, update_example  # noqa: E402
from engine.curriculum.example import CLEAR_MEM, WRITE_MEM  # noqa: E402
from engine.eval.common import pad_batch  # noqa: E402
from engine.eval.recall import n_buckets_of  # noqa: E402

_spec = importlib.util.spec_from_file_location("recall_misses", Path(__file__).with_name("recall_misses.py"))
_misses = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_misses)


def summary(xs: list[float], threshold: float) -> dict:
    """Count, percentiles 5/25/50/75/95 and the share at or above ``threshold``."""
    if not xs:
        return {"n": 0}
    a = np.asarray(xs)
    return {"n": len(a), "p5_25_50_75_95": [round(float(v), 3) for v in np.percentile(a, [5, 25, 50, 75, 95])],
            "at_threshold": round(float((a >= threshold).mean()), 4)}


def _run(model, exs):
    """The model's own plans over ``exs``: per memory layer (planner kwargs), in layer order, and
    the opcode probabilities [B, T, layers, opcodes]; CLEARs go by the argmax alone."""
    ids = pad_batch([e.ids for e in exs])
    saved = [blk.clear_confidence for blk in model.blocks]
    for blk in model.blocks:
        blk.clear_confidence = 0.0
    try:
        with _misses.captured_plans() as plans, torch.no_grad():
            out = model(ids, state=model.init_state(len(exs)))
    finally:
        for blk, c in zip(model.blocks, saved):
            blk.clear_confidence = c
    return [kw for kw, _ in plans], out.aux["opcode_logits"].float().softmax(-1)


def _value_starts(e) -> np.ndarray:
    """Positions of a value's first WRITE label (a WRITE not right after another)."""
    w = e.opcode == WRITE_MEM
    return np.flatnonzero(w & ~np.concatenate([[False], w[:-1]]))


def _clears(kw, exs, layer_keys, p_clear):
    """(CLEARs decided, then for those where the curriculum labels one and for the others: the
    best cosine of the CLEAR's key to an earlier write in its bucket, and the CLEAR's probability).
    p_clear: [B, T] this layer's probability of CLEAR."""
    decided, cos, prob = 0, ([], []), ([], [])
    for b, t in kw["clear"].nonzero().tolist():
        if t >= len(exs[b]):
            continue
        decided += 1
        stray = int(exs[b].opcode[t] != CLEAR_MEM)
        prob[stray].append(float(p_clear[b, t]))
        prev = torch.arange(0, t)
        m = kw["write"][b, prev].bool() & (kw["bucket"][b, prev] == kw["bucket"][b, t])
        if m.any():
            cos[stray].append(float((layer_keys[b, prev[m]] @ layer_keys[b, t]).max()))
    return decided, cos, prob


def key_similarity(model, seed: int, samples: int) -> dict:
    nb = n_buckets_of(model, "mosaic")
    thr = float(model.config.match_threshold)
    upd = [update_example(seed * 100_003 + i, 6, nb) for i in range(samples)]
    rec = [recall_example(seed * 100_003 + i, 16, 2000, nb) for i in range(max(1, samples // 2))]
    (upd_kw, upd_p), (rec_kw, rec_p) = _run(model, upd), _run(model, rec)
    conf = float(getattr(model.config, "clear_confidence", 0.0))
    layers = [i for i, blk in enumerate(model.blocks) if blk.memory is not None]
    out = {"threshold": thr, "clear_confidence": conf, "seed": seed, "samples": samples, "layers": {}}
    for li, ukw, rkw in zip(layers, upd_kw, rec_kw):
        uk, rk = F.normalize(ukw["keys"].float(), dim=-1), F.normalize(rkw["keys"].float(), dim=-1)
        named, unnamed, distinct, cross = [], [], [], []
        for b, e in enumerate(upd):
            starts = _value_starts(e)
            new = {int(t): int(e.supersedes[t]) for t in np.flatnonzero(e.supersedes >= 0)}
            for t, old in new.items():
                c = float(uk[b, t] @ uk[b, old])
                # named: the update CLEARs the old value's bytes just before telling the new one
                (named if (e.opcode[max(0, t - 60):t] == CLEAR_MEM).any() else unnamed).append(c)
                cross += [float(uk[b, t] @ uk[b, s]) for s in starts if s < t and s != old and s not in new]
            firsts = [s for s in starts if s not in new]
            distinct += [float(uk[b, s] @ uk[b, r]) for i, s in enumerate(firsts) for r in firsts[:i]]
        ud, (ulab, _), (uplab, _) = _clears(ukw, upd, uk, upd_p[:, :, li, CLEAR_MEM])
        rd, (rlab, rstray), (_, rpstray) = _clears(rkw, rec, rk, rec_p[:, :, li, CLEAR_MEM])
        out["layers"][str(li)] = {
            "update_named": summary(named, thr), "update_not_named": summary(unnamed, thr),
            "distinct": summary(distinct, thr), "update_vs_others": summary(cross, thr),
            "clears": {"update_benchmark": {"decided": ud, "best_cos_where_labelled": summary(ulab, thr),
                                            "probability_where_labelled": summary(uplab, conf)},
                       "recall_benchmark": {"decided": rd, "best_cos_where_labelled": summary(rlab, thr),
                                            "best_cos_of_unlabelled": summary(rstray, thr),
                                            "probability_of_unlabelled": summary(rpstray, conf)}}}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--model", default=None, help="training folder or model file (default: the shipped model)")
    ap.add_argument("--seed", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=64, help="update conversations (recall: half as many)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = _misses.load_mosaic(args.model)
    if model is None:
        return 1
    res = key_similarity(model, args.seed, args.samples)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"cosines of first-byte write keys (threshold {res['threshold']}): n, percentiles 5/25/50/75/95, share >= threshold")
    for li, row in res["layers"].items():
        print(f"layer {li}")
        for k in ("update_named", "update_not_named", "distinct", "update_vs_others"):
            s = row[k]
            print(f"  {k:17s} n={s['n']:<5}" + (f" {s['p5_25_50_75_95']}  {s['at_threshold']:.1%}" if s["n"] else ""))
        c = row["clears"]
        lab, stray = c["update_benchmark"]["best_cos_where_labelled"], c["recall_benchmark"]["best_cos_of_unlabelled"]
        print(f"  CLEARs decided: update benchmark {c['update_benchmark']['decided']}, recall benchmark "
              f"{c['recall_benchmark']['decided']} ({c['recall_benchmark']['best_cos_where_labelled']['n']} where labelled)")
        for name, x in (("labelled, update benchmark", lab), ("unlabelled, recall benchmark", stray)):
            if x["n"]:
                print(f"    best cosine to an earlier write in the bucket, {name}: n={x['n']} {x['p5_25_50_75_95']}")
        plab = c["update_benchmark"]["probability_where_labelled"]
        pstray = c["recall_benchmark"]["probability_of_unlabelled"]
        for name, x in (("labelled, update benchmark", plab), ("unlabelled, recall benchmark", pstray)):
            if x["n"]:
                print(f"    probability, {name}: n={x['n']} {x['p5_25_50_75_95']}, "
                      f"{x['at_threshold']:.1%} >= clear_confidence {res['clear_confidence']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
