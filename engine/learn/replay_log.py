"""A session's replay log: the conversation windows and consolidation replays the learner trained on.

One JSON object per line in ``MOSAIC_HOME/sessions/<name>/replay.jsonl``:
``{"kind": "window" | "replay", "ids": [byte ids...]}``. Appended by the online
learner; read back by ``mosaic train --from-session NAME`` (the slow timescale
takes what the medium one rehearsed) through :func:`replay_examples`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from engine.learn.store import check_session_name
from engine.store.paths import sessions_dir

LOG_NAME = "replay.jsonl"


def log_path(session: str) -> Path:
    """``MOSAIC_HOME/sessions/<session>/replay.jsonl`` (not created)."""
    return sessions_dir() / check_session_name(session) / LOG_NAME


class ReplayLog:
    """Appends windows to one session's log. Each append is one whole line, flushed."""

    def __init__(self, session: str) -> None:
        self.path = log_path(session)

    def append(self, ids: Sequence[int], kind: str = "window") -> None:
        """Add one sequence of byte ids (values 0..255) to the log."""
        if kind not in ("window", "replay"):
            raise ValueError(f"kind must be 'window' or 'replay', got {kind!r}")
        line = json.dumps({"kind": kind, "ids": [int(i) for i in ids]}, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def read_replay_log(session: str, kinds: Sequence[str] = ("window", "replay")) -> list[list[int]]:
    """The byte-id sequences of ``session``'s replay log, oldest first ([] if it has none).

    A torn last line (a crash mid-append) or a corrupt line is skipped, never fatal.
    """
    path = log_path(session)
    if not path.is_file():
        return []
    out: list[list[int]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                ids = [int(i) for i in rec["ids"]]
            except (ValueError, KeyError, TypeError):
                continue
            if rec.get("kind") in kinds and len(ids) >= 2 and all(0 <= i < 256 for i in ids):
                out.append(ids)
    return out


def replay_examples(session: str, max_len: int | None = None) -> list[dict]:
    """Training examples for the slow timescale from ``session``'s replay log.

    Each example is ``{"ids": [...], "opcode": [-1]*T, "write_gate": [-1]*T,
    "bucket": [-1]*T, "pair": [-1]*T, "loss_weight": [1.0]*T}``: plain language
    modelling, no teacher labels (INTERFACES.md, Teacher labels). Sequences
    longer than ``max_len`` are cut into consecutive pieces.
    """
    examples = []
    for ids in read_replay_log(session):
        pieces = [ids] if not max_len else [ids[i:i + max_len] for i in range(0, len(ids), max_len)]
        for piece in pieces:
            if len(piece) < 2:
                continue
            t = len(piece)
            examples.append({"ids": piece, "opcode": [-1] * t, "write_gate": [-1] * t,
                             "bucket": [-1] * t, "pair": [-1] * t, "loss_weight": [1.0] * t})
    return examples


def replay_curriculum_examples(session: str, length: int) -> list:
    """``session``'s replay log as curriculum ``Example`` objects of exactly ``length`` bytes.

    The logged sequences are joined into one stream and cut into consecutive
    pieces, so ``engine.curriculum.collate`` can batch them with training
    examples. Labels are -1 (no teacher: plain language modelling, which the
    trainer's losses mask out); ``loss_weight`` is 1 on every byte with a
    target, 0 on the last position and on the newline padding of the last piece.
    Returns [] if the log is empty.
    """
    import numpy as np

    from engine.curriculum.example import Example

    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    flat = [i for ids in read_replay_log(session) for i in ids]
    out = []
    for start in range(0, len(flat), length):
        piece = flat[start:start + length]
        real = len(piece)
        if real < 2:
            break
        piece = piece + [ord("\n")] * (length - real)
        weight = np.zeros(length, np.float32)
        weight[:real - 1] = 1.0
        neg = np.full(length, -1, np.int64)
        out.append(Example(ids=np.asarray(piece, np.int64), opcode=neg.copy(), write_gate=neg.copy(),
                           bucket=neg.copy(), pair=neg.copy(), commit=neg.copy(), supersedes=neg.copy(),
                           loss_weight=weight,
                           meta={"source": f"replay:{session}"}))
    return out
