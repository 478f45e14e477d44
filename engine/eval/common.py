"""Running a model over evaluation streams: chunked forward passes and batched greedy decoding,
for MOSAIC (state carried between chunks) and the window baseline alike."""
from __future__ import annotations

import numpy as np
import torch

CHUNK = 4096  # bytes per forward pass of MOSAIC on long streams (the state carries over exactly)


def pad_batch(seqs: list[np.ndarray], pad: int = ord(" ")) -> torch.Tensor:
    """[B, T_max] long; shorter streams padded at the end (causal models never see it)."""
    T = max(len(s) for s in seqs)
    out = np.full((len(seqs), T), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return torch.from_numpy(out)


@torch.no_grad()
def run_stream(model, arch: str, ids: torch.Tensor, want_opcodes: bool | str = False):
    """Argmax predictions [B, T] (and the last layer's opcodes [B, T] for MOSAIC, or every layer's
    [B, T, L] with ``want_opcodes="all"``; else None) of ``model`` over ``ids`` [B, T], with the
    model's own decisions (no teacher)."""
    ids = ids.to(next(model.parameters()).device)
    if arch == "window":
        out = model(ids)
        return out.logits.argmax(-1).cpu(), None
    state = model.init_state(ids.shape[0])
    preds, ops = [], []
    for s in range(0, ids.shape[1], CHUNK):
        out = model(ids[:, s:s + CHUNK], state=state)
        state = out.state
        preds.append(out.logits.argmax(-1).cpu())
        if want_opcodes:
            ops.append((out.aux["opcodes"] if want_opcodes == "all" else out.aux["opcodes"][..., -1]).cpu())
    return torch.cat(preds, 1), (torch.cat(ops, 1) if want_opcodes else None)


def greedy_generate(model, arch: str, prompts: list[bytes], max_new: int, stop: int = ord("\n")) -> list[bytes]:
    """Continue each prompt greedily until ``stop`` (not included) or ``max_new`` bytes
    (:func:`generate` at temperature 0)."""
    return generate(model, arch, prompts, max_new, stop)


@torch.no_grad()
def generate(model, arch: str, prompts: list[bytes], max_new: int, stop: int = ord("\n"),
             temperature: float = 0.0, generator: torch.Generator | None = None,
             allowed: list | None = None) -> list[bytes]:
    """Continue each prompt until ``stop`` (not included) or ``max_new`` bytes: greedily, or with
    ``temperature`` > 0 sampled from softmax(logits / temperature) with ``generator`` (on the CPU).
    ``allowed``: per prompt, None or a function of its continuation so far (as text) to the set of
    bytes that may come next (None: any), e.g. :meth:`engine.call_copy.CallCopier.allowed`.

    Both models read the prompts in passes that read a shared prefix once (:func:`prefix_chains`:
    the questions of one conversation). MOSAIC (:func:`prefill`) then steps one byte at a time with
    its O(1) state; the window baseline (``WindowLM.prefill`` / ``step``) with its cache of the last
    ``window - 1`` keys and values per layer, so its replies see what ``forward`` over the whole
    stream sees.
    """
    dev = next(model.parameters()).device
    B = len(prompts)
    outs: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    if arch == "window":
        last, cache = model.prefill([torch.tensor(list(p), dtype=torch.long) for p in prompts],
                                    chains=prefix_chains(prompts))
        advance = lambda cur: model.step(cur, cache)  # noqa: E731
    else:
        state, last = prefill(model, prompts)
        advance = lambda cur: model.step(cur, state).logits  # noqa: E731
    def pick(logits: torch.Tensor) -> list[int]:     # [B, 256] -> one byte per row
        if allowed is not None:
            from engine.call_copy import restrict
            logits = torch.stack([row if fn is None or done[i] else
                                  restrict(row, fn(bytes(outs[i]).decode("utf-8", errors="replace")))
                                  for i, (row, fn) in enumerate(zip(logits, allowed))])
        if temperature <= 0:
            return logits.argmax(-1).tolist()
        probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0].tolist()

    nxt = pick(last)
    for _ in range(max_new + 1):
        for i in range(B):
            if not done[i]:
                if nxt[i] == stop or len(outs[i]) >= max_new:
                    done[i] = True
                else:
                    outs[i].append(nxt[i])
        if all(done):
            break
        cur = torch.tensor([nxt[i] if not done[i] else stop for i in range(B)], device=dev)
        nxt = pick(advance(cur))
    return [bytes(o) for o in outs]


def prefix_chains(prompts: list[bytes]) -> list[list[int]]:
    """The prompts' indices grouped so that every prompt of a group begins the group's first
    (longest) one: a causal model reads each group in one pass over its first prompt."""
    chains: list[list[int]] = []
    for i in sorted(range(len(prompts)), key=lambda i: -len(prompts[i])):
        for chain in chains:
            if prompts[chain[0]].startswith(prompts[i]):
                chain.append(i)
                break
        else:
            chains.append([i])
    return chains


@torch.no_grad()
def prefill(model, prompts: list[bytes]):
    """MOSAIC's state after each prompt (a VMState of batch len(prompts)) and the logits of each
    prompt's last byte [B, 256], read in parallel passes, each shared prefix once: a prompt that
    begins a longer one is a fork of that one's pass (the questions of one conversation)."""
    if any(len(p) == 0 for p in prompts):
        raise ValueError("prompts: every prompt needs at least one byte")
    from engine.vm.state import VMState
    dev = next(model.parameters()).device
    states: list = [None] * len(prompts)
    last = torch.zeros(len(prompts), 256, device=dev)
    for chain in prefix_chains(prompts):
        ids = torch.tensor(list(prompts[chain[0]]), device=dev)[None]
        state, at = model.init_state(1), 0
        for cut in sorted({len(prompts[i]) for i in chain}):
            for s in range(at, cut, CHUNK):  # forward leaves its input state untouched
                out = model(ids[:, s:min(cut, s + CHUNK)], state=state)
                state = out.state
            at = cut
            for i in chain:
                if len(prompts[i]) == cut:
                    states[i], last[i] = state, out.logits[0, -1]
    return VMState.cat(states), last


@torch.no_grad()
def greedy_steps(model, prompts: list[bytes], max_new: int, stop: int = ord("\n")) -> list[bytes]:
    """The reference for MOSAIC's :func:`greedy_generate`: every prompt stepped one byte at a time."""
    dev = next(model.parameters()).device
    B = len(prompts)
    outs: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    state = model.init_state(B)
    lens = [len(p) for p in prompts]
    cur = torch.tensor([p[0] for p in prompts], device=dev)
    for t in range(max(lens) + max_new):
        step = model.step(cur, state)
        nxt = step.logits.argmax(-1).tolist()
        feed = []
        for i in range(B):
            if t + 1 < lens[i]:
                feed.append(prompts[i][t + 1])
                continue
            if not done[i]:
                if nxt[i] == stop or len(outs[i]) >= max_new:
                    done[i] = True
                else:
                    outs[i].append(nxt[i])
            feed.append(nxt[i] if not done[i] else stop)
        if all(done):
            break
        cur = torch.tensor(feed, device=dev)
    return [bytes(o) for o in outs]
