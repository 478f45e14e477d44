"""Recall: exact-match accuracy against the number of facts held and the distance in bytes
between telling and asking (held-out keys and templates).

Exact match of an answer = every byte of the value predicted (argmax, teacher-forced on the
stream): the same verdict greedy decoding would give, since decoding only diverges after a
wrong byte. Distance = bytes between the end of the last fact told and the first question;
the earlier facts are further away still.
"""
from __future__ import annotations

import numpy as np
import torch

from prompts import stream

from engine.curriculum import vocab
from engine.curriculum.episodes import forget_example, recall_example, update_example
from engine.eval.common import greedy_generate, pad_batch, run_stream
from engine.vm.isa import Opcode

DEFAULT_FACTS = (1, 4, 16, 64)


def default_distances(train_len: int) -> list[int]:
    """A spread up to 8x the training length, including the 2,000-byte target cell."""
    return sorted({max(0, train_len // 4), train_len, 2000, 2 * train_len, 4 * train_len, 8 * train_len})


def recall_cell(model, arch: str, facts: int, distance: int, samples: int = 8, n_buckets: int = 256,
                seed: int = 0, max_tokens_per_pass: int = 1 << 18, model_name: str = "") -> dict:
    """Accuracy (0-1) of ``samples`` conversations holding ``facts`` facts asked ``distance`` bytes
    after the last telling; every fact of every conversation is one answer."""
    if facts < 1:
        raise ValueError(f"facts: must be >= 1, got {facts}")
    if distance < 0:
        raise ValueError(f"distance: must be >= 0, got {distance}")
    exs = [recall_example(seed * 100_003 + i, facts, distance, n_buckets) for i in range(samples)]
    per_pass = max(1, max_tokens_per_pass // max(len(e) for e in exs))
    correct = total = 0
    byte_hits = byte_total = 0
    for s in range(0, len(exs), per_pass):
        group = exs[s:s + per_pass]
        ids = pad_batch([e.ids for e in group])
        pred, _ = run_stream(model, arch, ids)
        for b, e in enumerate(group):
            for start, end in e.meta["answers"]:
                ok = pred[b, start - 1:end - 1] == ids[b, start:end]
                byte_hits += int(ok.sum())
                byte_total += end - start
                correct += bool(ok.all())
                total += 1
    measured = sum(e.meta["distance"] for e in exs) / len(exs)
    return {"accuracy": correct / max(total, 1), "facts": facts, "distance": distance,
            "measured_distance": round(measured, 1), "byte_accuracy": byte_hits / max(byte_total, 1),
            "answers": total, "model": model_name, "arch": arch}


def update_cell(model, arch: str, facts: int, samples: int = 16, n_buckets: int = 256, seed: int = 0,
                model_name: str = "", split: str = "heldout") -> dict:
    """Exact-match accuracy (0-1) on facts given a new value (``updated``) and on the facts told
    beside them and left alone (``unchanged``), over ``samples`` conversations of
    :func:`engine.curriculum.episodes.update_example` (``split="train"``: the training keys and
    templates)."""
    if facts < 1:
        raise ValueError(f"facts: must be >= 1, got {facts}")
    exs = [update_example(seed * 100_003 + i, facts, n_buckets, split=split) for i in range(samples)]
    ids = pad_batch([e.ids for e in exs])
    pred, _ = run_stream(model, arch, ids)
    hits = {True: [0, 0], False: [0, 0]}
    for b, e in enumerate(exs):
        for start, end, updated in e.meta["answers"]:
            hits[updated][0] += bool((pred[b, start - 1:end - 1] == ids[b, start:end]).all())
            hits[updated][1] += 1
    return {"updated": hits[True][0] / max(hits[True][1], 1), "unchanged": hits[False][0] / max(hits[False][1], 1),
            "answers_updated": hits[True][1], "answers_unchanged": hits[False][1], "facts": facts,
            "samples": samples, "split": split, "model": model_name, "arch": arch}


def forget_cell(model, arch: str, facts: int, samples: int = 16, n_buckets: int = 256, seed: int = 0,
                model_name: str = "", max_new: int = 64, split: str = "heldout") -> dict:
    """After "forget the X" (:func:`engine.curriculum.episodes.forget_example`): the share of
    forgotten facts whose greedy reply withholds the value (``withheld``) and says it is unknown
    (``declined``: begins like one of the curriculum's replies for that), and exact-match
    accuracy on the facts told beside them and kept (``kept``), over ``samples`` conversations.
    For MOSAIC also ``cleared``: per memory layer, the share of the forgotten values' bytes (where
    the curriculum labels CLEAR) at which the model's own opcode is CLEAR, i.e. whether it took
    the request to forget as one. ``split="train"``: the training keys and templates."""
    if facts < 2:
        raise ValueError(f"facts: forgetting half needs >= 2, got {facts}")
    exs = [forget_example(seed * 100_003 + i, facts, n_buckets, split=split) for i in range(samples)]
    ids = pad_batch([e.ids for e in exs])
    pred, ops = run_stream(model, arch, ids, want_opcodes="all" if arch == "mosaic" else False)
    cleared = None
    if ops is not None:
        at = [(b, int(t)) for b, e in enumerate(exs) for t in np.flatnonzero(e.opcode == Opcode.CLEAR_MEM)]
        mine = ops[torch.tensor([b for b, _ in at], dtype=torch.long),
                   torch.tensor([t for _, t in at], dtype=torch.long)]          # [labelled bytes, L]
        cleared = {str(i): float((mine[:, i] == Opcode.CLEAR_MEM).float().mean()) if at else 0.0
                   for i in model.config.memory_layer_ids()}
    kept = sum(bool((pred[b, s - 1:t - 1] == ids[b, s:t]).all()) for b, e in enumerate(exs) for s, t in e.meta["answers"])
    n_kept = sum(len(e.meta["answers"]) for e in exs)
    asks = [(e, end, key, value) for e in exs for end, key, value in e.meta["forgotten"]]
    replies = greedy_generate(model, arch, [bytes(e.ids[:end].astype("uint8")) for e, end, _, _ in asks], max_new)
    texts = [r.decode("utf-8", "replace") for r in replies]
    withheld = sum(value not in t for (_, _, _, value), t in zip(asks, texts))
    declined = sum(any(t.startswith(u.split("{k}")[0] + key) for u in vocab.UNKNOWN)
                   for (_, _, key, _), t in zip(asks, texts))
    n = max(len(asks), 1)
    return {"withheld": withheld / n, "declined": declined / n, "kept": kept / max(n_kept, 1),
            "cleared": cleared, "answers_forgotten": len(asks), "answers_kept": n_kept, "facts": facts,
            "samples": samples, "split": split, "model": model_name, "arch": arch}


def reply_cell(model, arch: str, facts: int, distance: int, samples: int = 8, n_buckets: int = 256,
               seed: int = 0, model_name: str = "", max_new: int = 64, split: str = "heldout") -> dict:
    """Recall as a chat shows it: the model's own greedy reply to every question of
    :func:`engine.curriculum.episodes.recall_example` (the reply's text is not given, unlike
    :func:`recall_cell`, which forces it up to the value). ``value_given``: share of replies
    holding the value; ``key_and_value``: share also naming the key as it was told (where the
    curriculum's answers repeat the key). ``split="train"``: the training key vocabulary and
    templates instead (a diagnosis: how much of a miss is the unseen key)."""
    if facts < 1:
        raise ValueError(f"facts: must be >= 1, got {facts}")
    if distance < 0:
        raise ValueError(f"distance: must be >= 0, got {distance}")
    asks = []
    for i in range(samples):
        e = recall_example(seed * 100_003 + i, facts, distance, n_buckets, split=split)
        stream_bytes = bytes(e.ids.astype("uint8"))
        for (start, end), key in zip(e.meta["answers"], e.meta["keys"]):
            reply_at = stream_bytes.rindex(stream.BOT.encode(), 0, start) + 1
            asks.append((stream_bytes[:reply_at], key, stream_bytes[start:end].decode()))
    replies = [r.decode("utf-8", "replace") for r in greedy_generate(model, arch, [a[0] for a in asks], max_new)]
    given = sum(v in r for (_, _, v), r in zip(asks, replies))
    both = sum(v in r and k in r for (_, k, v), r in zip(asks, replies))
    n = max(len(asks), 1)
    return {"value_given": given / n, "key_and_value": both / n, "answers": len(asks), "facts": facts,
            "distance": distance, "samples": samples, "split": split, "model": model_name, "arch": arch,
            "examples": [{"key": k, "value": v, "reply": r} for (_, k, v), r in list(zip(asks, replies))[:4]]}


def recall_grid(model, arch: str, facts: list[int], distances: list[int], samples: int = 8,
                n_buckets: int = 256, model_name: str = "", progress=None) -> list[dict]:
    rows = []
    for f in facts:
        for d in distances:
            rows.append(recall_cell(model, arch, f, d, samples, n_buckets, model_name=model_name))
            if progress:
                progress(rows[-1])
    return rows


def n_buckets_of(model, arch: str) -> int:
    """The bucket count the curriculum's labels should use (the window model has none: 256)."""
    return getattr(getattr(model, "config", None), "buckets", 256) if arch == "mosaic" else 256


def plot_recall(results: dict[str, list[dict]], path, train_len: int | None = None) -> None:
    """PNG: accuracy against distance, one line per (model, facts)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    styles = ["-", "--", ":", "-."]
    for mi, (name, rows) in enumerate(results.items()):
        for f in sorted({r["facts"] for r in rows}):
            pts = sorted((r["distance"], r["accuracy"]) for r in rows if r["facts"] == f)
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], styles[mi % 4], marker="o",
                    label=f"{name}, {f} facts")
    if train_len:
        ax.axvline(train_len, color="grey", lw=0.8)
        ax.text(train_len, 102, " training length", fontsize=7, color="grey")
    ax.set_xscale("symlog", linthresh=256)
    ax.set_xlabel("distance between telling and asking (bytes)")
    ax.set_ylabel("exact-match recall (%)")
    ax.set_ylim(-2, 105)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

