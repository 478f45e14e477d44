"""Tools: for held-out requests (paraphrases and templates never trained on), the share whose
generated definition validates with toolsmith, and the share whose tool passes the request's
own test cases when run in toolsmith's sandbox. Beside them, tool calls: for a request to use a
tool (its call template with fresh random arguments, some of their words made up), the share of
generated TOOL_CALL turns that name the tool and that give exactly the requested arguments."""
from __future__ import annotations

import json
import random

from prompts import stream

from engine.curriculum import tools as toolset
from engine.curriculum.episodes import tool_request_prompt
from engine.eval.common import greedy_generate


def check_definition(text: str, tool: toolset.Tool, run_tests: bool = True) -> dict:
    """Validate one generated definition and run its tool on ``tool``'s test cases in the sandbox."""
    from toolsmith.definition import DefinitionError, ToolDefinition
    res = {"tool": tool.name, "valid": False, "passed": False, "errors": []}
    try:
        defn = ToolDefinition.from_json(text)
    except DefinitionError as exc:
        res["errors"] = [str(e) for e in exc.errors][:3]
        return res
    errs = defn.validate()
    if errs:
        res["errors"] = [str(e) for e in errs][:3]
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


def call_prompt(tool: toolset.Tool, seed: int) -> tuple[str, dict]:
    """A request to use ``tool`` with fresh arguments, as a stream prefix ending in the TOOL_CALL
    role byte, and the arguments the call should carry."""
    rng = random.Random(f"mosaic-call/{seed}/{tool.name}")
    args = tool.sample(rng)
    return stream.user(toolset.call_text(tool, args, rng)) + stream.TOOL_CALL, args


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


def evaluate_tools(model, arch: str, samples_per_tool: int = 1, max_new: int = 1600,
                   tools: list[toolset.Tool] | None = None, model_name: str = "",
                   split: str = "heldout") -> dict:
    """Generate a definition for each request (after the TOOL_DEF role byte) and check it;
    generate a call for each call request (after the TOOL_CALL role byte) and check that.

    ``split``: "heldout" (the evaluation: held-out paraphrases and templates) or "train" (the
    training ones, to tell a request the model cannot map to its tool from one it never learned).
    ``named`` is the share of requests whose definition validates and names the requested tool."""
    tools = tools or toolset.TOOLS
    reqs = [(t, *tool_request_prompt(t, seed, split)) for t in tools for seed in range(samples_per_tool)]
    gens = greedy_generate(model, arch, [p.encode("utf-8") for _, p, _ in reqs], max_new=max_new)
    rows = [check_definition(g.decode("utf-8", errors="replace"), t) for (t, _, _), g in zip(reqs, gens)]
    for (t, _, _), row in zip(reqs, rows):
        row["cue_words"] = sorted(toolset.cue_words(t))
    calls = [(t, *call_prompt(t, seed)) for t in tools for seed in range(samples_per_tool)]
    gens = greedy_generate(model, arch, [p.encode("utf-8") for _, p, _ in calls], max_new=400)
    call_rows = [check_call(g.decode("utf-8", errors="replace"), t, a) for (t, _, a), g in zip(calls, gens)]
    n, nc = max(len(rows), 1), max(len(call_rows), 1)
    cued = [r for r in rows if r["cue_words"]]
    uncued = [r for r in rows if not r["cue_words"]]
    return {"requests": len(rows), "split": split, "valid": sum(r["valid"] for r in rows) / n,
            "named": sum(bool(r.get("name_matches")) for r in rows) / n,
            "passed": sum(r["passed"] for r in rows) / n, "sandbox": "toolsmith.sandbox.run_source",
            # passing split by whether the held-out wording shares a word with the tool's training
            # requests that no other tool's have (curriculum.tools.cue_words; meant for "heldout")
            "cued": len(cued), "passed_cued": sum(r["passed"] for r in cued) / max(len(cued), 1),
            "passed_uncued": sum(r["passed"] for r in uncued) / max(len(uncued), 1),
            "calls": len(call_rows), "call_named": sum(r["named"] for r in call_rows) / nc,
            "call_exact": sum(r["exact"] for r in call_rows) / nc,
            "model": model_name, "arch": arch, "rows": rows, "call_rows": call_rows}
