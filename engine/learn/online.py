"""The medium timescale: LoRA adapters trained online on the conversation, guarded by probes.

The engine thread owns the model; it calls the learner from that same thread:

    learner = OnlineLearner(model, LearnerConfig(), guard=Guard(heldout), on_event=publish)
    learner.observe(ids)          # every byte the model read or wrote (list[int] or LongTensor [T])
    learner.maybe_update()        # every ``update_every`` observed bytes: one guarded update
    learner.consolidate(replays)  # while idle: passes over the buffer plus replay texts
    learner.snapshot()            # adapter_version, last_update_loss, reverts, ... for the TUI

Losses are recomputed with gradients by ``model.forward`` on buffered windows,
each from a fresh VMState: the live state is never touched. An update is one
guarded transaction: the adapter and optimizer state are kept, a few AdamW
steps run, the probe set is scored; a non-finite loss or gradient refuses the
update, a worse probe score reverts it, both exactly and both reported.
"""
from __future__ import annotations

import copy
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from engine.learn import adapters as lora
from engine.learn.guard import Guard, ProbeScore, batch_loss
from engine.learn.rehearsal import rehearsal

Event = dict[str, Any]


@dataclass(frozen=True)
class LearnerConfig:
    """Knobs of the online learner (LoRA shape, schedule, optimizer)."""

    targets: tuple[str, ...] = lora.DEFAULT_TARGETS
    rank: int = 8
    alpha: float = 16.0
    lr: float = 2e-3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    update_every: int = 256      # observed bytes between online updates
    window: int = 256            # bytes per training window
    buffer_windows: int = 64     # recent conversation windows kept
    replay_capacity: int = 256   # consolidation replays kept
    batch_windows: int = 8       # windows per optimizer step
    steps_per_update: int = 1    # optimizer steps per online update
    anchor_batch: int = 2        # anchor windows per step (0: none)
    anchor_weight: float = 1.0   # weight of the KL(base || adapted) term on anchors
    rehearse: bool = True        # each replayed fact is also trained as a question and answer
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("update_every", "window", "buffer_windows", "batch_windows", "steps_per_update"):
            if getattr(self, name) < 1:
                raise ValueError(f"LearnerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.window < 2:
            raise ValueError("LearnerConfig.window must be >= 2")
        if not self.lr > 0:
            raise ValueError(f"LearnerConfig.lr must be > 0, got {self.lr}")

    def lora_settings(self) -> lora.LoraSettings:
        return lora.LoraSettings(targets=self.targets, rank=self.rank, alpha=self.alpha)


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _as_ids(ids: Sequence[int] | torch.Tensor | str | bytes) -> list[int]:
    if isinstance(ids, str):
        return list(ids.encode("utf-8"))
    if isinstance(ids, (bytes, bytearray)):
        return list(ids)
    if isinstance(ids, torch.Tensor):
        return [int(i) for i in ids.reshape(-1).tolist()]
    return [int(i) for i in ids]


@dataclass
class _Counters:
    version: int = 0
    updates: int = 0
    reverts: int = 0
    refused: int = 0
    last_update_loss: float | None = None
    tokens_seen: int = 0
    saved_version: int | None = None
    last_event: str | None = None
    extra: dict = field(default_factory=dict)


class OnlineLearner:
    """LoRA adapters on ``model`` (a MosaicLM, or a PeftModel around one), trained online.

    model: the live model; its chosen linear layers are wrapped in place.
    guard: the probe set; without one (or with no probes) every finite update is kept.
    on_event: called with each event dict (AdapterUpdated / AdapterReverted /
        AdapterRefused) as it happens; events are also returned by the calls.
    replay_log: if given, every finished window and every replay is appended to it.
    anchors: general text (byte-id lists, e.g. curriculum training examples); each step
        adds ``anchor_weight`` x KL(base || adapted) on a few of them, so the adapter
        learns the conversation without moving the model elsewhere (forgetting).
    version: the adapter version the model starts with (e.g. the one just loaded).
    """

    def __init__(self, model: nn.Module, config: LearnerConfig | None = None, *,
                 guard: Guard | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 replay_log=None, anchors: Iterable[Sequence[int]] = (), version: int = 0) -> None:
        self.config = config or LearnerConfig()
        if lora.is_attached(model):
            self.peft_model = model  # already a PeftModel (e.g. loaded from the store)
            from peft import PeftModel
            if not isinstance(model, PeftModel):
                raise lora.AdapterError("pass a plain model or a PeftModel, not a model with injected LoRA layers")
        else:
            # the adapters' random init from the learner's own seed: the same learner for the
            # same seed, whatever the global generator went through before (and it is left as it was)
            with torch.random.fork_rng():
                torch.manual_seed(self.config.seed)
                self.peft_model = lora.attach(model, self.config.lora_settings())
        self.model = lora.unwrap(self.peft_model)
        self.guard = guard or Guard()
        self.on_event = on_event
        self.replay_log = replay_log
        self.params = lora.adapter_params(self.peft_model)
        if not self.params:
            raise lora.AdapterError("the adapter has no trainable parameters (loaded frozen?)")
        self.optimizer = torch.optim.AdamW(self.params, lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)
        self.anchors: list[list[int]] = [list(a) for a in anchors if len(a) >= 2]
        self.windows: deque[list[int]] = deque(maxlen=self.config.buffer_windows)
        self.replays: deque[list[int]] = deque(maxlen=self.config.replay_capacity)
        self._tail: list[int] = []
        self._since_update = 0
        self._rng = random.Random(self.config.seed)
        self.counters = _Counters(version=version)

    # ---- feeding -------------------------------------------------------
    def observe(self, ids: Sequence[int] | torch.Tensor | str) -> None:
        """Add bytes the model read or wrote (ids: [T] ints 0..255, a LongTensor, or text)."""
        new = _as_ids(ids)
        if any(not 0 <= i < 256 for i in new):
            raise ValueError("observe() takes byte ids 0..255")
        self._tail.extend(new)
        self._since_update += len(new)
        self.counters.tokens_seen += len(new)
        w = self.config.window
        while len(self._tail) >= w:
            window, self._tail = self._tail[:w], self._tail[w:]
            self.windows.append(window)
            if self.replay_log is not None:
                self.replay_log.append(window, "window")

    def add_replays(self, replays: Iterable[Sequence[int] | str]) -> list[list[int]]:
        """Keep replay texts (REPLAY turns, recalled facts) for consolidation; long ones are cut into windows.

        With ``config.rehearse``, a replayed fact ("the <key> is <value>") also brings its
        question-and-answer turns (:func:`engine.learn.rehearsal.rehearsal`): what a person's
        question needs the adapters to answer. A piece already in the buffer is not added
        again (the runtime may hand over its whole replay buffer at every idle pass).
        Returns the pieces added.
        """
        added = []
        w = self.config.window
        for r in self._with_rehearsals(replays):
            ids = _as_ids(r)
            for i in range(0, len(ids), w):
                piece = ids[i:i + w]
                if len(piece) >= 2 and piece not in self.replays:
                    self.replays.append(piece)
                    added.append(piece)
                    if self.replay_log is not None:
                        self.replay_log.append(piece, "replay")
        return added

    def _with_rehearsals(self, replays: Iterable[Sequence[int] | str]) -> Iterable[Sequence[int] | str]:
        for r in replays:
            yield r
            if self.config.rehearse:
                text = r if isinstance(r, str) else bytes(_as_ids(r)).decode("utf-8", errors="replace")
                dialogue = rehearsal(text)
                if dialogue is not None:
                    yield dialogue

    # ---- learning ------------------------------------------------------
    def maybe_update(self) -> list[Event]:
        """One guarded update if ``update_every`` bytes arrived since the last one; returns its events."""
        if self._since_update < self.config.update_every:
            return []
        self._since_update = 0
        batch = self._online_batch()
        if not batch:
            return []
        return [self.update([batch], source="online")]

    def consolidate(self, replays: Iterable[Sequence[int] | str] = (), passes: int = 1) -> list[Event]:
        """Idle consolidation: ``passes`` guarded updates, each one epoch over replays + the window buffer.

        replays: new replay texts or byte-id lists, kept in the replay buffer first.
        Returns one event per pass.
        """
        self.add_replays(replays)
        events = []
        for _ in range(passes):
            pool = list(self.replays) + list(self.windows)
            if len(self._tail) >= 2:
                pool.append(list(self._tail))
            if not pool:
                break
            self._rng.shuffle(pool)
            n = self.config.batch_windows
            batches = [pool[i:i + n] for i in range(0, len(pool), n)]
            events.append(self.update(batches, source="consolidation"))
        return events

    def _online_batch(self) -> list[list[int]]:
        """The newest bytes plus a sample of older windows and replays (against forgetting)."""
        w = self.config.window
        newest = (list(self.windows)[-1] if self.windows else []) + self._tail
        batch = [newest[-w:]] if len(newest) >= 2 else []
        older = list(self.windows)[:-1] + list(self.replays)
        k = min(len(older), self.config.batch_windows - len(batch))
        batch += self._rng.sample(older, k) if k > 0 else []
        return batch

    def update(self, batches: list[list[Sequence[int]]], source: str = "online") -> Event:
        """One guarded transaction: an AdamW step per batch (``steps_per_update`` times over them).

        batches: list of batches, each a list of byte-id windows. Returns the event dict.
        """
        saved_adapter = lora.adapter_state(self.peft_model)
        saved_optim = copy.deepcopy(self.optimizer.state_dict())
        was_training = self.model.training
        self.model.eval()  # same decisions as the runtime's decoding path
        try:
            before = self.guard.score(self.peft_model) if not self.guard.empty else None
            losses = []
            for _ in range(self.config.steps_per_update):
                for windows in batches:
                    refusal = self._step(windows, losses)
                    if refusal is not None:
                        self._restore(saved_adapter, saved_optim)
                        return self._refuse(refusal, losses, source)
            after = self.guard.score(self.peft_model) if before is not None else None
        finally:
            self.model.train(was_training)
        mean_loss = sum(losses) / len(losses)
        nbytes = sum(len(w) for b in batches for w in b)
        if before is not None and not self.guard.accepts(before, after):
            self._restore(saved_adapter, saved_optim)
            self.counters.reverts += 1
            return self._emit({
                "type": "AdapterReverted", "source": source, "version": self.counters.version,
                "reason": "probe loss not finite" if not math.isfinite(after.total) else "probe loss worse",
                "loss": _finite_or_none(mean_loss), "bytes": nbytes,
                "probe_before": _score_dict(before), "probe_after": _score_dict(after),
                "tolerance": self.guard.tolerance, "reverts": self.counters.reverts,
            })
        self.counters.version += 1
        self.counters.updates += 1
        self.counters.last_update_loss = mean_loss
        return self._emit({
            "type": "AdapterUpdated", "source": source, "version": self.counters.version,
            "loss": mean_loss, "steps": len(losses), "bytes": nbytes,
            "probe_before": _score_dict(before), "probe_after": _score_dict(after),
        })

    def _step(self, windows: Sequence[Sequence[int]], losses: list[float]) -> str | None:
        """One AdamW step on ``windows``; returns a refusal reason instead if loss or gradients are not finite."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = batch_loss(self.peft_model, windows)
            if self.anchors and self.config.anchor_batch > 0 and self.config.anchor_weight > 0:
                k = min(self.config.anchor_batch, len(self.anchors))
                loss = loss + self.config.anchor_weight * self._anchor_kl(self._rng.sample(self.anchors, k))
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value):
                return f"loss is {value}"
            loss.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        if any(not torch.isfinite(g).all() for g in grads):
            self.optimizer.zero_grad(set_to_none=True)
            return "gradient is not finite"
        torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return None

    def _anchor_kl(self, anchors: list[list[int]]) -> torch.Tensor:
        """Mean per-byte KL(base || adapted) over ``anchors`` (0-d tensor, gradients to the adapter)."""
        dev = next(self.peft_model.parameters()).device
        total = torch.zeros((), device=dev)
        count = 0
        by_len: dict[int, list[list[int]]] = {}
        for a in anchors:
            by_len.setdefault(len(a), []).append(a)
        for group in by_len.values():
            x = torch.tensor(group, dtype=torch.long, device=dev)  # [B, T]
            with torch.no_grad(), self.peft_model.disable_adapter():
                base = torch.log_softmax(self.peft_model(x).logits.float(), -1)  # [B, T, 256]
            adapted = torch.log_softmax(self.peft_model(x).logits.float(), -1)
            total = total + (base.exp() * (base - adapted)).sum()
            count += x.shape[0] * x.shape[1]
        return total / max(1, count)

    def _restore(self, adapter: dict[str, torch.Tensor], optim_state: dict) -> None:
        lora.set_adapter_state(self.peft_model, adapter)
        self.optimizer.load_state_dict(optim_state)
        self.optimizer.zero_grad(set_to_none=True)

    def _refuse(self, reason: str, losses: list[float], source: str) -> Event:
        self.counters.refused += 1
        bad = losses[-1] if losses else float("nan")
        return self._emit({
            "type": "AdapterRefused", "source": source, "version": self.counters.version,
            "reason": reason, "loss": None, "loss_repr": repr(bad), "refused": self.counters.refused,
        })

    def _emit(self, event: Event) -> Event:
        self.counters.last_event = event["type"]
        if self.on_event is not None:
            self.on_event(event)
        return event

    # ---- reporting and persistence -------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain values for the TUI snapshot: adapter_version, last_update_loss, reverts, ..."""
        c = self.counters
        return {
            "adapter_version": c.version,
            "last_update_loss": _finite_or_none(c.last_update_loss),
            "reverts": c.reverts,
            "refused": c.refused,
            "updates": c.updates,
            "tokens_seen": c.tokens_seen,
            "tokens_pending": self._since_update,
            "buffered_windows": len(self.windows),
            "buffered_replays": len(self.replays),
            "saved_version": c.saved_version,
        }

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """A detached copy of the adapter weights."""
        return lora.adapter_state(self.peft_model)

    def save(self, session: str, base_fingerprint: str | None = None):
        """Save the adapter as version ``adapter_version`` of ``session`` (see engine.learn.store).

        Version 0 (nothing learned yet) is saved as v1 only if nothing is saved yet.
        Returns the folder.
        """
        from engine.learn import store

        if base_fingerprint is None:
            base_fingerprint = lora.base_digest(self.peft_model)
        version = max(self.counters.version, 1)
        existing = store.list_versions(session)
        if version in existing and self.counters.saved_version != version:
            # that number was used by an earlier run of the session: never overwrite
            version = max(existing) + 1
            self.counters.version = version
        meta = {"updates": self.counters.updates, "reverts": self.counters.reverts,
                "refused": self.counters.refused,
                "last_update_loss": _finite_or_none(self.counters.last_update_loss),
                "tokens_seen": self.counters.tokens_seen, "base_fingerprint": base_fingerprint}
        folder = store.save(self.peft_model, session, version, meta)
        self.counters.saved_version = version
        return folder

    @classmethod
    def from_store(cls, model: nn.Module, session: str, config: LearnerConfig | None = None,
                   **kwargs) -> "OnlineLearner":
        """A learner that resumes ``session``'s current adapter (or starts fresh if it has none)."""
        from engine.learn import store

        version = store.current_version(session)
        if version is None:
            return cls(model, config, **kwargs)
        saved_on = store.read_meta(session, version).get("meta", {}).get("base_fingerprint")
        if saved_on and saved_on != lora.base_digest(model):
            raise lora.AdapterError(f"the adapters of session {session!r} were learned on another base model "
                                    f"(weights {saved_on}); use that model, or `mosaic adapters reset`")
        peft_model = lora.load(model, store.version_dir(session, version), trainable=True)
        learner = cls(peft_model, config, version=version, **kwargs)
        learner.counters.saved_version = version
        return learner


def _score_dict(score: ProbeScore | None) -> dict | None:
    if score is None:
        return None
    return {k: _finite_or_none(v) for k, v in score.to_dict().items()}
