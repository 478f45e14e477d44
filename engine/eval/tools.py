"""Tools: for held-out requests (paraphrases and templates never trained on), the share whose
generated definition validates with toolsmith, and the share whose tool passes the request's
own test cases when run in toolsmith's sandbox, by the model alone and as chat writes definitions
(named from the request's words, ``engine.tool_names``). Beside them, tool calls: for a request to use a
tool (its call template with fresh random arguments, some of their words made up), the share of
generated TOOL_CALL turns that name the tool and that give exactly the requested arguments, written
by the model alone and with the arguments copied from the request as chat writes them
(``engine.call_copy``); and for the same requests with the right call and its result in the
stream, the share of replies that show the result exactly, both ways; and with a failed result
instead (no such tool, or it raised), the share of replies that say so."""
from __future__ import annotations

import json
import random

import torch

from prompts import stream

from engine.call_copy import CallCopier, ResultCopier
from engine.curriculum import tools as toolset
from engine.curriculum.episodes import tool_request_prompt
from engine.eval.common import generate, greedy_generate
from engine.tool_names import hint_for
from engine.toolbridge import format_tool_result
from engine.vm.isa import Opcode


def check_definition(text: str, tool: toolset.Tool, run_tests: bool = True) -> dict:
    """Validate one generated definition and run its tool on ``tool``'s test cases in the sandbox."""
    from engine.toolbridge import checked_definition
    res = {"tool": tool.name, "valid": False, "passed": False, "errors": []}
    defn, errors = checked_definition(text)
    if defn is None:
        res["errors"] = errors[:3]
        return res
    res["valid"] = True
    res["name_matches"] = defn.name == tool.name
    if not run_tests:
        return res
    from toolsmith.sandbox import run_source
    ok = True
    for args, expected in tool.tests:
        run = run_source(defn.implementation, defn.name, args, restricted=defn.sandbox)
        if not run.ok or not toolset.results_match(run.result, expected):
            ok = False
            break
    res["passed"] = ok
    return res


def call_prompt(tool: toolset.Tool, seed: int) -> tuple[str, dict, str]:
    """A request to use ``tool`` with fresh arguments, as a stream prefix ending in the TOOL_CALL
    role byte, the arguments the call should carry, and the request's text."""
    rng = random.Random(f"mosaic-call/{seed}/{tool.name}")
    args = tool.sample(rng)
    text = toolset.call_text(tool, args, rng)
    return stream.user(text) + stream.TOOL_CALL, args, text


def reply_prompt(tool: toolset.Tool, seed: int) -> tuple[str, str]:
    """:func:`call_prompt`'s request, the right call and its result as a stream prefix ending in the
    BOT role byte, and the result as a reply should show it."""
    prompt, args, _ = call_prompt(tool, seed)
    result = toolset.run_reference(tool, args)
    call = json.dumps({"name": tool.name, "args": args})
    prompt += call + stream.END + format_tool_result(True, result) + stream.BOT
    return prompt, stream.shown_result(result)


def failure_prompt(tool: toolset.Tool, seed: int) -> tuple[str, str]:
    """:func:`call_prompt`'s request and the right call, then a failed result (the tool missing
    or raising, as the runtime renders it) as a stream prefix ending in the BOT role byte, and
    the failure's kind (a key of ``toolset.FAILURE_REPLIES``)."""
    prompt, args, _ = call_prompt(tool, seed)
    kind, error = toolset.failure(tool, random.Random(f"mosaic-failure/{seed}/{tool.name}"))
    call = json.dumps({"name": tool.name, "args": args})
    return prompt + call + stream.END + format_tool_result(False, error=error) + stream.BOT, kind


def check_call(text: str, tool: toolset.Tool, args: dict) -> dict:
    """Whether a generated TOOL_CALL turn parses, names ``tool`` and carries exactly ``args``."""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    named = isinstance(obj, dict) and obj.get("name") == tool.name
    got = obj.get("args") if isinstance(obj, dict) else None
    return {"tool": tool.name, "parsed": obj is not None, "named": named,
            "exact": bool(named and got == args), "wanted": args, "got": got if obj is not None else text[:200]}


def _decoded(gen: bytes) -> str:
    return gen.decode("utf-8", errors="replace")


def _calls(model, arch: str, tools: list[toolset.Tool], samples_per_tool: int) -> list[dict]:
    """:func:`check_call` of each call request's greedy call, with ``copied``: the same checks of
    the call written as chat writes it (its argument values copied from the request)."""
    calls = [(t, *call_prompt(t, seed)) for t in tools for seed in range(samples_per_tool)]
    prompts = [p.encode("utf-8") for _, p, _, _ in calls]
    rows = [check_call(_decoded(g), t, a)
            for (t, _, a, _), g in zip(calls, greedy_generate(model, arch, prompts, max_new=400))]
    # keys are the tools' parameters, as chat takes them from the registry: here every curriculum tool
    params = {t.name: list(t.params) for t in toolset.TOOLS}
    copy = [lambda text, _op, c=CallCopier(request, params): c.allowed(text) for *_, request in calls]
    gens = generate(model, arch, prompts, max_new=400, allowed=copy)
    for row, (t, _, a, _), g in zip(rows, calls, gens):
        checked = check_call(_decoded(g), t, a)
        row["copied"] = {k: checked[k] for k in ("named", "exact", "got")}
    return rows


def _replies(model, arch: str, tools: list[toolset.Tool], samples_per_tool: int) -> list[dict]:
    """The greedy reply to each :func:`reply_prompt` (``reply``) and the reply as chat writes it
    (``copied``: the result written whole where the opcode first turns READ_MEM), with the result."""
    replies = [reply_prompt(t, seed) for t in tools for seed in range(samples_per_tool)]
    prompts = [p.encode("utf-8") for p, _ in replies]
    recall = [lambda text, op, c=ResultCopier(res): c.allowed(text, op == Opcode.READ_MEM)
              for _, res in replies]
    free = greedy_generate(model, arch, prompts, max_new=200)
    copied = generate(model, arch, prompts, max_new=200, allowed=recall)
    return [{"result": res, "reply": _decoded(g), "copied": _decoded(c)}
            for (_, res), g, c in zip(replies, free, copied)]


def _failure_replies(model, arch: str, tools: list[toolset.Tool], samples_per_tool: int) -> list[dict]:
    """The greedy reply to each :func:`failure_prompt`: ``fitting`` when it is one of the
    curriculum's replies to that kind of failure, ``says_failed`` when it is one of any kind's."""
    failed = [failure_prompt(t, seed) for t in tools for seed in range(samples_per_tool)]
    gens = greedy_generate(model, arch, [p.encode("utf-8") for p, _ in failed], max_new=120)
    every = {r for replies in toolset.FAILURE_REPLIES.values() for r in replies}
    replies = [_decoded(g) for g in gens]
    return [{"kind": kind, "reply": r, "fitting": r in toolset.FAILURE_REPLIES[kind],
             "says_failed": r in every} for (_, kind), r in zip(failed, replies)]


def _shares(rows: list[dict]) -> dict:
    n = max(len(rows), 1)
    return {"valid": sum(r["valid"] for r in rows) / n,
            "named": sum(bool(r.get("name_matches")) for r in rows) / n,
            "passed": sum(r["passed"] for r in rows) / n}


def retry_definitions(model, arch: str, reqs: list[tuple], rows: list[dict], retries: int,
                      temperature: float, max_new: int, seed: int = 0,
                      allowed: list | None = None) -> list[dict]:
    """What the runtime's retries make of ``rows`` (one check per request of ``reqs``): each
    definition that does not validate is written again, sampled at ``temperature``, up to
    ``retries`` times, until one validates (``Engine``'s ``tool_def_retries``). ``allowed``: per
    request, the byte masks the definitions were written under (:func:`engine.eval.common.generate`;
    the name hints). Returns new rows, each with ``attempts`` (1 = the greedy one)."""
    gen = torch.Generator().manual_seed(seed)
    out = [dict(r, attempts=1) for r in rows]
    todo = [i for i, r in enumerate(out) if not r["valid"]]
    for attempt in range(2, retries + 2):
        if not todo:
            break
        gens = generate(model, arch, [reqs[i][1].encode("utf-8") for i in todo], max_new=max_new,
                        temperature=temperature, generator=gen,
                        allowed=None if allowed is None else [allowed[i] for i in todo])
        left = []
        for i, g in zip(todo, gens):
            row = check_definition(g.decode("utf-8", errors="replace"), reqs[i][0])
            out[i] = dict(row, cue_words=out[i].get("cue_words", []), attempts=attempt)
            if not row["valid"]:
                left.append(i)
        todo = left
    return out


def request_of(prefix: str) -> str:
    """The person's line in a request prefix (``stream.user(text) + stream.TOOL_DEF``)."""
    return prefix[len(stream.USER):-len(stream.END + stream.TOOL_DEF)]


def hinted_definitions(model, arch: str, reqs: list[tuple], max_new: int, retries: int,
                       temperature: float) -> dict:
    """The definitions for ``reqs`` as chat writes them: each begins with the name of the tool
    nearest its request's words (``engine.tool_names``; a request with no known word gets none),
    the rest greedy, then chat's retries of those that do not validate. The shares (of the
    definitions after the retries), ``hinted`` (share of requests given a name) and ``hint_right``
    (share given the requested tool's name), and ``rows``."""
    hints = [hint_for(request_of(prefix)) for _, prefix, _ in reqs]
    allowed = [None if h is None else (lambda text, _op, h=h: h.allowed(text)) for h in hints]
    gens = generate(model, arch, [p.encode("utf-8") for _, p, _ in reqs], max_new=max_new, allowed=allowed)
    rows = [check_definition(_decoded(g), t) for (t, _, _), g in zip(reqs, gens)]
    if retries > 0:
        rows = retry_definitions(model, arch, reqs, rows, retries, temperature, max_new, allowed=allowed)
    n = max(len(rows), 1)
    for row, h in zip(rows, hints):
        row["hint"] = None if h is None else h.name
    return {**_shares(rows), "hinted": sum(h is not None for h in hints) / n,
            "hint_right": sum(r["hint"] == r["tool"] for r in rows) / n,
            "rows": [{k: r.get(k) for k in ("tool", "hint", "valid", "name_matches", "passed", "errors")}
                     for r in rows]}


def evaluate_tools(model, arch: str, samples_per_tool: int = 1, max_new: int = 1600,
                   tools: list[toolset.Tool] | None = None, model_name: str = "",
                   split: str = "heldout", retries: int = 0, retry_temperature: float = 0.5) -> dict:
    """Generate a definition for each request (after the TOOL_DEF role byte) and check it;
    generate a call for each call request (after the TOOL_CALL role byte) and check that.

    ``split``: "heldout" (the evaluation: held-out paraphrases and templates), "train" (the
    training ones, to tell a request the model cannot map to its tool from one it never learned)
    or "templates" (the held-out templates around the training paraphrases: the frame alone unseen)
    or "more" (tool_phrases.json's wordings in the training templates: unseen for a model trained
    without ``--more-phrases``, a test with many more wordings than the held-out split's 56) or
    "blind" (tool_heldout.json's wordings, written blind and never trained on, in the held-out
    templates: ``samples_per_tool`` 4 takes each tool's four once).
    ``named`` is the share of requests whose definition validates and names the requested tool.
    ``valid`` / ``named`` / ``passed`` are of the greedy first definition; with ``retries`` the
    result also holds ``retried``: the same shares after the runtime's retries
    (:func:`retry_definitions`); ``hinted``: the same shares of the definitions as chat writes them,
    named from the request's words, after the retries (:func:`hinted_definitions`)."""
    tools = tools or toolset.TOOLS
    reqs = [(t, *tool_request_prompt(t, seed, split)) for t in tools for seed in range(samples_per_tool)]
    gens = greedy_generate(model, arch, [p.encode("utf-8") for _, p, _ in reqs], max_new=max_new)
    rows = [check_definition(g.decode("utf-8", errors="replace"), t) for (t, _, _), g in zip(reqs, gens)]
    for (t, _, _), row in zip(reqs, rows):
        row["cue_words"] = sorted(toolset.cue_words(t))
    call_rows = _calls(model, arch, tools, samples_per_tool)
    nc = max(len(call_rows), 1)
    reply_rows = _replies(model, arch, tools, samples_per_tool)
    nr = max(len(reply_rows), 1)
    failure_rows = _failure_replies(model, arch, tools, samples_per_tool)
    nf = max(len(failure_rows), 1)
    cued = [r for r in rows if r["cue_words"]]
    uncued = [r for r in rows if not r["cue_words"]]
    retried = None
    if retries > 0:
        again = retry_definitions(model, arch, reqs, rows, retries, retry_temperature, max_new)
        retried = {"retries": retries, "temperature": retry_temperature, **_shares(again),
                   "rewritten": sum(r["attempts"] > 1 for r in again),
                   "rows": [{k: r[k] for k in ("tool", "attempts", "valid", "passed", "errors")}
                            | {"name_matches": r.get("name_matches", False)}
                            for r in again if r["attempts"] > 1]}
    hinted = hinted_definitions(model, arch, reqs, max_new, retries, retry_temperature)
    return {"requests": len(rows), "split": split, **_shares(rows), "sandbox": "toolsmith.sandbox.run_source",
            # passing split by whether the held-out wording shares a word with the tool's training
            # requests that no other tool's have (curriculum.tools.cue_words; meant for "heldout")
            "cued": len(cued), "passed_cued": sum(r["passed"] for r in cued) / max(len(cued), 1),
            "passed_uncued": sum(r["passed"] for r in uncued) / max(len(uncued), 1),
            "calls": len(call_rows), "call_named": sum(r["named"] for r in call_rows) / nc,
            "call_exact": sum(r["exact"] for r in call_rows) / nc,
            # the calls as chat writes them: string and number arguments copied from the request
            "call_copied_exact": sum(r["copied"]["exact"] for r in call_rows) / nc,
            # the reply after the right call and its result: does it show the result exactly
            "replies": len(reply_rows),
            "result_shown": sum(r["result"] in r["reply"] for r in reply_rows) / nr,
            "result_shown_copied": sum(r["result"] in r["copied"] for r in reply_rows) / nr,
            # the reply after the right call and a failed result (no such tool, or it raised):
            # the curriculum's reply to that kind of failure (mosaic train --tool-failures)
            "failures": len(failure_rows), "failure_replied": sum(r["fitting"] for r in failure_rows) / nf,
            "failure_said": sum(r["says_failed"] for r in failure_rows) / nf,
            "retried": retried, "hinted": hinted, "model": model_name, "arch": arch, "rows": rows,
            "call_rows": call_rows, "reply_rows": reply_rows, "failure_rows": failure_rows}
