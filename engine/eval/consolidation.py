"""The consolidation measure: a fact told once, rehearsed into adapters, recalled from weights alone.

For each K in ``facts``:

1. K held-out facts are told once in the stream format (``engine.curriculum``'s
   held-out split: nouns and phrasings never seen in training), read by the model
   from an empty state (the fast timescale writes them into memory), and observed
   by a fresh OnlineLearner, as the runtime would feed it.
2. Recall *with memory*: each question asked on a fork of that state.
3. Recall *from weights alone, before consolidation*: the same questions on a
   wiped state (``state.reset()``). This is the control: what the base weights know.
4. M idle passes: the learner consolidates on its buffer (the told conversation)
   plus replays the model makes from its own memory as the runtime does (a REPLAY
   turn cued with the words the runtime finds before each stored value, the value
   decoded greedily from memory: what the model recalls, right or wrong, never the
   true value), each also rehearsed as a question and its answer
   (``engine.learn.rehearsal``; ``rehearse=False`` leaves that out). Every pass is
   guarded by probes (held-out curriculum examples, distinct from the ones
   measured, plus the replays).
5. After each pass: recall on a wiped state, and the held-out curriculum loss.
   Before and after all passes: the loss on unseen training-split examples too
   (the told facts use held-out phrasings, which can flatter the held-out loss).

Exact match = the model's argmax predicts every byte of the answer value (teacher
forced, as the recall benchmark scores). ``heldout_loss_delta`` is relative:
(after - before) / before, on held-out curriculum examples from a fresh state.
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from prompts import stream


@dataclass(frozen=True)
class ConsolidationSettings:
    """How the measure runs (passes, learner knobs, probe sizes)."""

    passes: int = 8
    seed: int = 0
    lr: float = 3e-3
    rank: int = 8
    window: int = 256
    batch_windows: int = 8
    steps_per_pass: int = 4
    anchors: int = 16           # curriculum training examples kept close to the base (KL)
    anchor_batch: int = 2
    anchor_weight: float = 1.0
    tolerance: float = 0.05
    heldout_examples: int = 4
    heldout_length: int = 256
    self_replay: bool = True
    rehearse: bool = True       # replays also trained as a question and answer (LearnerConfig)


@dataclass
class _Question:
    ids: list[int]
    start: int  # answer value span in ids
    end: int
    key: str
    value: str


def _told_and_asked(k: int, seed: int, n_buckets: int):
    """The telling conversation (byte ids), one question sequence per fact, and the facts."""
    from engine.curriculum.conversation import Conversation

    conv = Conversation(random.Random(f"mosaic-consolidation/{seed}/{k}"), "heldout", n_buckets)
    facts = [conv.tell() for _ in range(k)]
    told_end = len(conv)
    questions = []
    for fact in facts:
        a = len(conv)
        conv.ask(fact)
        b = len(conv)
        span = conv.answers[-1]
        questions.append((a, b, span["start"], span["end"], fact))
    ids = [int(i) for i in conv.b.build().ids]
    told = ids[:told_end]
    qs = [_Question(ids[a:b], s - a, e - a, f.key, f.value) for a, b, s, e, f in questions]
    return told, qs


def _heldout(n: int, length: int, n_buckets: int, seed: int, split: str = "heldout") -> list[list[int]]:
    from engine.learn.session import curriculum_texts
    return curriculum_texts(n, length, n_buckets, seed, split)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _recall(model: nn.Module, state, questions: list[_Question]) -> tuple[float, float]:
    """(exact, bytes): the fraction of questions whose answer bytes are all predicted (argmax),
    and the fraction of answer bytes predicted; each question runs on ``state`` (not modified)."""
    hits = right = total = 0
    dev = _device(model)
    for q in questions:
        ids = torch.tensor([q.ids], device=dev)
        out = model(ids, state=state.fork())
        ok = out.logits[0, q.start - 1:q.end - 1].argmax(-1) == ids[0, q.start:q.end]
        hits += int(ok.all())
        right += int(ok.sum())
        total += ok.numel()
    return hits / max(1, len(questions)), right / max(1, total)


@torch.no_grad()
def _self_replays(model: nn.Module, state, told: list[int]) -> tuple[list[str], int]:
    """REPLAY turns as the runtime makes them: each stored fact's cue read off the told stream
    (``engine.runtime.cues``), then its value recalled greedily from memory by the consolidator.
    Returns (the REPLAY turns, the number of cues found)."""
    from engine.runtime.consolidation import ConsolidationConfig, Consolidator
    from engine.runtime.cues import Tape, fact_cues

    tape = Tape(capacity=len(told))
    tape.put(0, told)                  # a fresh state's positions start at 0
    cues = fact_cues(state, tape)
    res = Consolidator(model, ConsolidationConfig(cued_replays=len(cues))).run(state, cues=cues)
    return [stream.replay(t) for t in res.replays], len(cues)


@torch.no_grad()
def _heldout_loss(model: nn.Module, examples: list[list[int]]) -> float:
    from engine.learn.guard import batch_loss
    return float(batch_loss(model, examples))


def run_consolidation(model: nn.Module, facts: tuple[int, ...] = (16,),
                      settings: ConsolidationSettings | None = None,
                      progress: Callable[[str], None] | None = None) -> dict:
    """Measure recall from weights alone after consolidation, for each K in ``facts``.

    model: a MosaicLM (not modified: each K runs on a deep copy).
    Returns a JSON-ready dict; its top-level figures are those of the last K:
    ``recall_after_wipe``, ``recall_with_memory``, ``recall_wiped_before``,
    ``heldout_loss_before``, ``heldout_loss_after``, ``heldout_loss_delta``,
    plus ``runs`` (one per K, with per-pass curves).
    """
    from engine.learn.guard import Guard
    from engine.learn.online import LearnerConfig, OnlineLearner

    s = settings or ConsolidationSettings()
    say = progress or (lambda msg: None)
    nb = model.config.buckets
    measured = _heldout(s.heldout_examples, s.heldout_length, nb, seed=10_000 + s.seed)
    probes = _heldout(s.heldout_examples, s.heldout_length, nb, seed=20_000 + s.seed)
    anchors = _heldout(s.anchors, s.heldout_length, nb, seed=30_000 + s.seed, split="train")
    # the told facts use held-out phrasings, so learning them can lower the held-out loss;
    # training-split text the learner never saw shows forgetting without that help
    seen_split = _heldout(s.heldout_examples, s.heldout_length, nb, seed=40_000 + s.seed, split="train")
    runs = []
    for k in facts:
        t0 = time.perf_counter()
        net = copy.deepcopy(model).eval()
        told, questions = _told_and_asked(k, s.seed, nb)
        dev = _device(net)
        with torch.no_grad():
            state = net(torch.tensor([told], device=dev), state=net.init_state(1, device=dev)).state
        wiped = state.fork()
        wiped.reset()
        run = {"facts": k, "told_bytes": len(told)}
        run["recall_with_memory"], run["answer_bytes_with_memory"] = _recall(net, state, questions)
        run["recall_wiped_before"], run["answer_bytes_wiped_before"] = _recall(net, wiped, questions)
        run["heldout_loss_before"] = _heldout_loss(net, measured)
        run["train_split_loss_before"] = _heldout_loss(net, seen_split)
        replays, run["cues_found"] = _self_replays(net, state, told) if s.self_replay else ([], 0)
        run["replay_values_correct"] = (
            sum(stream.replay(f"the {q.key} is {q.value}") in replays for q in questions)
            / max(1, len(questions)) if replays else None)
        guard = Guard(probes, max_facts=max(16, k), tolerance=s.tolerance)
        for r in replays:
            guard.add_fact(list(r.encode("utf-8")))
        learner = OnlineLearner(net, LearnerConfig(
            rank=s.rank, alpha=2.0 * s.rank, lr=s.lr, window=s.window, batch_windows=s.batch_windows,
            steps_per_update=s.steps_per_pass, update_every=10**9, seed=s.seed,
            anchor_batch=s.anchor_batch, anchor_weight=s.anchor_weight, rehearse=s.rehearse),
            guard=guard, anchors=anchors)
        learner.observe(told)
        learner.add_replays(replays)
        curve = []
        for m in range(1, s.passes + 1):
            event = learner.consolidate(passes=1)[0]
            exact, nbytes = _recall(net, wiped, questions)
            point = {"pass": m, "event": event["type"], "recall_after_wipe": exact,
                     "answer_bytes_after_wipe": nbytes, "heldout_loss": _heldout_loss(net, measured)}
            curve.append(point)
            say(f"K={k} pass {m}/{s.passes}: {event['type']}, recall after wipe "
                f"{exact:.2f} (answer bytes {nbytes:.2f}), held-out loss {point['heldout_loss']:.4f}")
        after = curve[-1] if curve else {"recall_after_wipe": run["recall_wiped_before"],
                                         "answer_bytes_after_wipe": run["answer_bytes_wiped_before"],
                                         "heldout_loss": run["heldout_loss_before"]}
        run["recall_after_wipe"] = after["recall_after_wipe"]
        run["answer_bytes_after_wipe"] = after["answer_bytes_after_wipe"]
        run["heldout_loss_after"] = after["heldout_loss"]
        before = run["heldout_loss_before"]
        run["heldout_loss_delta"] = (after["heldout_loss"] - before) / before if before > 0 else math.nan
        run["train_split_loss_after"] = _heldout_loss(net, seen_split)
        run["train_split_loss_delta"] = (run["train_split_loss_after"] - run["train_split_loss_before"]) \
            / run["train_split_loss_before"]
        run["updates"] = learner.counters.updates
        run["reverts"] = learner.counters.reverts
        run["refused"] = learner.counters.refused
        run["curve"] = curve
        run["seconds"] = round(time.perf_counter() - t0, 2)
        runs.append(run)
    last = runs[-1]
    return {
        "recall_after_wipe": last["recall_after_wipe"],
        "heldout_loss_delta": last["heldout_loss_delta"],
        "answer_bytes_after_wipe": last["answer_bytes_after_wipe"],
        "recall_with_memory": last["recall_with_memory"],
        "recall_wiped_before": last["recall_wiped_before"],
        "heldout_loss_before": last["heldout_loss_before"],
        "heldout_loss_after": last["heldout_loss_after"],
        "train_split_loss_delta": last["train_split_loss_delta"],
        "facts": last["facts"], "passes": s.passes,
        "settings": {k: v for k, v in s.__dict__.items()},
        "runs": runs,
    }


def plot(result: dict, path) -> None:
    """Recall after wipe and held-out loss against the consolidation pass, one line per K (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for run in result["runs"]:
        xs = [0] + [p["pass"] for p in run["curve"]]
        ax1.plot(xs, [run["recall_wiped_before"]] + [p["recall_after_wipe"] for p in run["curve"]],
                 marker="o", label=f"K={run['facts']}")
        ax2.plot(xs, [run["heldout_loss_before"]] + [p["heldout_loss"] for p in run["curve"]],
                 marker="o", label=f"K={run['facts']}")
    ax1.set(xlabel="idle consolidation pass", ylabel="recall after memory wipe", ylim=(-0.02, 1.02))
    ax2.set(xlabel="idle consolidation pass", ylabel="held-out curriculum loss")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("consolidation: facts told once, recalled from weights alone")
    fig.tight_layout()
    from engine.store.atomic import atomic_write_with
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
