"""Stacking examples into a training batch (numpy, host side), with the index lists the
contrastive loss needs, so the trainer never has to look at labels on the host."""
from __future__ import annotations

import numpy as np

from engine.curriculum.episodes import training_example
from engine.curriculum.mix import Mix
from engine.curriculum.example import LABEL_FIELDS, READ_MEM, WRITE_MEM, Example


def collate(examples: list[Example], max_reads: int = 512, max_writes: int = 1024) -> dict[str, np.ndarray]:
    """Stack equal-length examples into arrays ``[B, T]`` plus InfoNCE indices:

    ``write_idx`` [B, W] positions of WRITE labels (``write_mask`` marks real entries),
    ``read_idx`` [B, R] READ positions that have a pair, ``read_target`` [B, R] the column
    in ``write_idx`` of the paired write (``read_mask`` marks real entries); ``super_col`` [B, S]
    the column of each write that supersedes an earlier one (``supersedes``), ``super_target``
    [B, S] the column of the write it supersedes (``super_mask`` marks real entries).
    """
    lengths = {len(e) for e in examples}
    if len(lengths) != 1:
        raise ValueError(f"examples of a batch must have one length, got {sorted(lengths)}")
    out: dict[str, np.ndarray] = {"ids": np.stack([e.ids for e in examples])}
    for f in LABEL_FIELDS:
        out[f] = np.stack([getattr(e, f) for e in examples])
    out["loss_weight"] = np.stack([e.loss_weight for e in examples]).astype(np.float32)
    writes, reads, supers = [], [], []
    for e in examples:
        w = np.flatnonzero(e.opcode == WRITE_MEM)[:max_writes]
        col = {int(p): i for i, p in enumerate(w)}
        r = [(int(t), col[int(e.pair[t])]) for t in np.flatnonzero((e.opcode == READ_MEM) & (e.pair >= 0))
             if int(e.pair[t]) in col][:max_reads]
        writes.append(w)
        reads.append(r)
        supers.append([(col[int(t)], col[int(e.supersedes[t])]) for t in np.flatnonzero(e.supersedes >= 0)
                       if int(t) in col and int(e.supersedes[t]) in col])
    B = len(examples)
    W = max(1, max(len(w) for w in writes))
    R = max(1, max(len(r) for r in reads))
    out["write_idx"] = np.zeros((B, W), np.int64)
    out["write_mask"] = np.zeros((B, W), bool)
    out["read_idx"] = np.zeros((B, R), np.int64)
    out["read_target"] = np.zeros((B, R), np.int64)
    out["read_mask"] = np.zeros((B, R), bool)
    S = max(1, max(len(x) for x in supers))
    for name in ("super_col", "super_target"):
        out[name] = np.zeros((B, S), np.int64)
    out["super_mask"] = np.zeros((B, S), bool)
    for b, x in enumerate(supers):
        for j, (c, tc) in enumerate(x):
            out["super_col"][b, j], out["super_target"][b, j], out["super_mask"][b, j] = c, tc, True
    for b, (w, r) in enumerate(zip(writes, reads)):
        out["write_idx"][b, :len(w)] = w
        out["write_mask"][b, :len(w)] = True
        for j, (t, c) in enumerate(r):
            out["read_idx"][b, j] = t
            out["read_target"][b, j] = c
            out["read_mask"][b, j] = True
    return out


def training_batch(step: int, batch_size: int, length: int, n_buckets: int, seed: int = 0,
                   rank: int = 0, split: str = "train", mix: Mix = Mix()) -> dict[str, np.ndarray]:
    """The batch of training step ``step`` for process ``rank``: a pure function of its arguments,
    so a resumed or distributed run sees exactly the data an uninterrupted one would."""
    return collate(training_examples(step, batch_size, length, n_buckets, seed, rank, split, mix))


def training_examples(step: int, count: int, length: int, n_buckets: int, seed: int = 0, rank: int = 0,
                      split: str = "train", mix: Mix = Mix()) -> list[Example]:
    """The first ``count`` examples of training step ``step`` (those :func:`training_batch` stacks)."""
    base = ((seed * 1_000_003 + rank) * 10_000_019 + step) * count
    return [training_example(base + i, length, n_buckets, split, mix=mix) for i in range(count)]
