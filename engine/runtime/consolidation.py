"""Idle consolidation: work on a FORK of the live state, report what should change, touch nothing.

One pass:
  1. replay   -- recall: feed the REPLAY role byte and a stored fact's cue ("the door code
                 is ", engine.runtime.cues) to a fork and let the model write the value from
                 memory, greedily; with no cue known, cue-free: the REPLAY byte alone, sampled,
                 a few times. The texts go to the replay buffer that the medium timescale
                 (engine.learn) trains on.
  2. prune    -- choose slots whose utility is low or whose write is old (in tokens); the
                 engine thread applies these to the live state and reports them.
  3. rehearse -- feed the replayed texts back through a fork (the parallel forward path) and
                 measure how well the model predicts them (mean NLL per byte): a health signal.
The pass checks ``should_abort()`` between model steps, so a user message never waits on it;
an aborted pass reports ``aborted: true`` and prunes nothing.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from prompts import stream

REPLAY_BYTE = ord(stream.REPLAY)
END_BYTE = ord(stream.END)


@dataclass
class ConsolidationConfig:
    replays: int = 4                  # cue-free recalls per pass (when no fact's cue is known)
    cued_replays: int = 8             # cued recalls per pass, taking the known cues in turn
    replay_bytes: int = 64            # cap on one recall's length
    temperature: float = 0.7          # >0 so the recalls differ
    prune_min_utility: float = 0.05   # valid slots under this utility are pruned
    prune_max_age: int = 200_000      # ... and slots written more than this many tokens ago
    max_prunes: int = 256             # per pass, lowest utility first
    rehearse: bool = True
    replay_buffer: int = 512          # texts kept for the learner


@dataclass
class ConsolidationResult:
    replays: list[str] = field(default_factory=list)
    cued: int = 0                     # how many of the replays were recalled by a fact's cue
    prunes: list[tuple[int, int, int]] = field(default_factory=list)   # (layer, bucket, way)
    rehearsal_nll: float | None = None
    valid_slots: int = 0
    steps: int = 0
    seconds: float = 0.0
    aborted: bool = False

    def to_payload(self, reason: str) -> dict[str, Any]:
        return {"reason": reason, "aborted": self.aborted, "replays": len(self.replays), "cued": self.cued,
                "replay_texts": [t[:80] for t in self.replays],
                "prunes": [list(p) for p in self.prunes], "pruned": len(self.prunes),
                "rehearsal_nll": None if self.rehearsal_nll is None else round(self.rehearsal_nll, 4),
                "valid_slots": self.valid_slots, "steps": self.steps,
                "seconds": round(self.seconds, 4)}


class _Aborted(Exception):
    pass


class Consolidator:
    """Runs passes with ``model.step`` on forks; owns the replay buffer."""

    def __init__(self, model: Any, config: ConsolidationConfig | None = None, seed: int = 0) -> None:
        self.model = model
        self.config = config or ConsolidationConfig()
        self.replay_buffer: deque[str] = deque(maxlen=self.config.replay_buffer)
        self._gen = torch.Generator().manual_seed(seed)
        self._cue_turn = 0                # where the next pass starts in the list of cues

    def _step(self, byte: int, state: Any, should_abort: Callable[[], bool], res: ConsolidationResult) -> Any:
        if should_abort():
            raise _Aborted
        res.steps += 1
        ids = torch.tensor([byte], dtype=torch.long, device=state.device)
        return self.model.step(ids, state)

    def _recall(self, base: Any, should_abort: Callable[[], bool], res: ConsolidationResult,
                cue: str = "", temperature: float = 0.0) -> str:
        """One recall on its own fork of ``base``: the REPLAY byte and ``cue``, then the model's
        bytes to END (sampled at ``temperature``, greedy at 0). Returns what it wrote, cleaned."""
        fork = base.fork()
        for b in (stream.REPLAY + cue).encode("utf-8"):
            out = self._step(b, fork, should_abort, res)
        got: list[int] = []
        for _ in range(self.config.replay_bytes):
            logits = out.logits[0].float()
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                b = int(torch.multinomial(probs.cpu(), 1, generator=self._gen))
            else:
                b = int(logits.argmax())
            if b == END_BYTE:
                break
            got.append(b)
            out = self._step(b, fork, should_abort, res)
        return stream.clean(bytes(got).decode("utf-8", errors="replace"))

    def _cued_recall(self, base: Any, cue: str, should_abort: Callable[[], bool],
                     res: ConsolidationResult) -> str:
        """A stored fact recalled by its cue, greedily: the cue and the value, or "" when the
        model writes no value after the cue."""
        value = self._recall(base, should_abort, res, cue=cue).strip()
        return cue + value if value else ""

    def _next_cues(self, cues: Sequence[str]) -> list[str]:
        """This pass's share of ``cues``: ``cued_replays`` of them, continuing where the last pass
        stopped, so that every known fact is replayed in turn."""
        k = min(self.config.cued_replays, len(cues))
        start = self._cue_turn % len(cues) if cues else 0
        self._cue_turn = start + k
        return [cues[(start + i) % len(cues)] for i in range(k)]

    def _choose_prunes(self, state: Any) -> list[tuple[int, int, int]]:
        cfg = self.config
        pos = int(state.position[0])
        cands: list[tuple[float, int, int, int]] = []
        for li, layer in enumerate(state.layers):
            valid = layer.mem_valid[0]
            if valid.numel() == 0:
                continue
            util = layer.mem_utility[0].float()
            age = pos - layer.mem_age[0]
            bad = valid & ((util < cfg.prune_min_utility) | (age > cfg.prune_max_age))
            for b, w in bad.nonzero().tolist():
                cands.append((float(util[b, w]), li, b, w))
        cands.sort()
        return [(li, b, w) for _, li, b, w in cands[: cfg.max_prunes]]

    @torch.no_grad()
    def run(self, live_state: Any, should_abort: Callable[[], bool] = lambda: False,
            cues: Sequence[str] = ()) -> ConsolidationResult:
        """One pass on a fork of ``live_state`` (which is only read). Returns what it did and proposes.

        cues: the stored facts' cues ("the door code is ", :func:`engine.runtime.cues.fact_cues`);
        when there are any, the pass replays by cue and makes no cue-free recall, whose keys are
        the model's inventions.
        """
        t0 = time.perf_counter()
        res = ConsolidationResult()
        base = live_state.fork()
        res.valid_slots = sum(int(l.mem_valid[0].sum()) for l in base.layers)
        try:
            for cue in self._next_cues(cues) if res.valid_slots else []:
                text = self._cued_recall(base, cue, should_abort, res)
                if text:
                    res.replays.append(text)
                    res.cued += 1
            # Cue-free replay recalls what memory holds; with nothing stored it would only
            # feed the replay buffer (and the learner) the model's inventions.
            for _ in range(self.config.replays if res.valid_slots and not cues else 0):
                text = self._recall(base, should_abort, res, temperature=self.config.temperature)
                if text:
                    res.replays.append(text)
            if self.config.rehearse and res.replays:
                # one parallel forward per replayed text on the fork: how well is it still predicted?
                nll, n = 0.0, 0
                for text in res.replays:
                    if should_abort():
                        raise _Aborted
                    data = list(stream.replay(text).encode("utf-8"))
                    ids = torch.tensor([data], dtype=torch.long, device=base.device)
                    out = self.model(ids, state=base.fork())
                    lp = torch.log_softmax(out.logits[0, :-1].float(), dim=-1)
                    nll -= float(lp.gather(1, ids[0, 1:, None]).sum())
                    n += len(data) - 1
                    res.steps += len(data)
                res.rehearsal_nll = nll / n if n else None
                if res.rehearsal_nll is not None and not math.isfinite(res.rehearsal_nll):
                    res.rehearsal_nll = None
            res.prunes = self._choose_prunes(base)
        except _Aborted:
            res.aborted = True
            res.prunes = []
        else:
            self.replay_buffer.extend(res.replays)
        res.seconds = time.perf_counter() - t0
        return res


def apply_prunes(state: Any, prunes: list[tuple[int, int, int]]) -> int:
    """Invalidate the given (layer, bucket, way) slots of batch row 0 in place; returns how many were valid."""
    n = 0
    for li, b, w in prunes:
        valid = state.layers[li].mem_valid
        if bool(valid[0, b, w]):
            valid[0, b, w] = False
            state.layers[li].mem_utility[0, b, w] = 0.0
            n += 1
    return n
