"""Impulses: the share of impulses (rendered as the runtime renders them, held-out contexts)
answered with the fitting opcodes: IDLE for memory pressure and other drives, a reply opened
with RESPOND (and the BOT role byte chosen) for low confidence, a reply that closes the
commitment (RESPOND ... COMMIT) for an open commitment. The last layer's opcodes decide,
as in the runtime."""
from __future__ import annotations

from engine.curriculum.episodes import IMPULSE_KINDS, impulse_example
from engine.eval.common import pad_batch, run_stream
from prompts import stream


def evaluate_impulses(model, arch: str, samples: int = 16, n_buckets: int = 256, model_name: str = "") -> dict:
    exs = [impulse_example(i, kind, n_buckets) for kind in IMPULSE_KINDS for i in range(samples)]
    ids = pad_batch([e.ids for e in exs])
    pred, ops = run_stream(model, arch, ids, want_opcodes=True)
    by_kind: dict[str, list[bool]] = {k: [] for k in IMPULSE_KINDS}
    for b, e in enumerate(exs):
        imp = e.meta["impulse"]
        ok = ops is not None and all(int(ops[b, p]) == op for p, op in imp["checks"])
        if imp["reply_at"] >= 0:
            ok = ok and int(pred[b, imp["reply_at"]]) == ord(stream.BOT)
        by_kind[imp["kind"]].append(ok)
    n = sum(len(v) for v in by_kind.values())
    rate = {k: sum(v) / max(len(v), 1) for k, v in by_kind.items()}
    # Most kinds expect IDLE, so a policy that always idles scores high on "fitting" without
    # reading the impulse; "balanced" weighs the idle kinds and the reply kinds equally, and
    # "always_idle" is what that constant policy would score on "fitting".
    replies = {e.meta["impulse"]["kind"] for e in exs if e.meta["impulse"]["reply_at"] >= 0}
    idles = [rate[k] for k in rate if k not in replies]
    answers = [rate[k] for k in rate if k in replies]
    groups = [sum(g) / len(g) for g in (idles, answers) if g]
    always_idle = sum(len(by_kind[k]) for k in rate if k not in replies) / max(n, 1)
    return {"impulses": n, "fitting": sum(sum(v) for v in by_kind.values()) / max(n, 1),
            "balanced": sum(groups) / max(len(groups), 1), "always_idle": always_idle,
            "by_kind": rate, "model": model_name, "arch": arch}
