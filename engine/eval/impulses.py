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
    return {"impulses": n, "fitting": sum(sum(v) for v in by_kind.values()) / max(n, 1),
            "by_kind": {k: sum(v) / max(len(v), 1) for k, v in by_kind.items()},
            "model": model_name, "arch": arch}
