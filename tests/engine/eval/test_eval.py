"""The benchmarks' machinery: scoring is exact, the window baseline sees as far back as its
layers' windows reach and no further, tool definitions are checked by toolsmith and run in its sandbox, plots are written."""
import json

import numpy as np
import pytest
import torch

from prompts import stream

from engine.curriculum import tools as toolset
from engine.eval.common import greedy_generate, pad_batch, run_stream
from engine.eval.impulses import evaluate_impulses
from engine.eval.recall import plot_recall, recall_cell
from engine.eval.tools import check_definition
from engine.train.window import WindowConfig, WindowLM


class Oracle(torch.nn.Module):
    """A 'model' that cheats: its logits at t are the one-hot of the true byte t+1 (forward sees
    the whole stream). Perfect recall by construction, so the scorer must report 1.0."""

    def __init__(self, wrong_every: int = 0):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.wrong_every = wrong_every

    def forward(self, ids, state=None, teacher=None):
        nxt = torch.roll(ids, -1, dims=1)
        if self.wrong_every:
            nxt = torch.where(nxt % self.wrong_every == 0, (nxt + 1) % 256, nxt)
        logits = torch.nn.functional.one_hot(nxt, 256).float()

        class Out:
            pass
        out = Out()
        out.logits, out.aux, out.state = logits, {}, None
        return out


@pytest.mark.parametrize("window, n_layers, lengths", [(16, 2, (1, 5, 53)), (7, 3, (40, 2, 13)), (1, 1, (3, 9))])
def test_window_decoding_with_a_cache_matches_forward(window, n_layers, lengths):
    """prefill + step over a sequence give forward's logits at every position (past the window
    too, where the layers' windows stack), rows of different lengths in one batch."""
    torch.manual_seed(window)
    model = WindowLM(WindowConfig(d_model=24, n_layers=n_layers, n_heads=2, mlp_hidden=40, window=window)).eval()
    with torch.no_grad():  # sharp attention: at init every score is near zero and any position would do
        for layer in model.layers:
            layer.qkv.weight.mul_(30.0)
    seqs = [torch.randint(0, 256, (n + 30,)) for n in lengths]
    with torch.no_grad():
        want = [model(x[None]).logits[0] for x in seqs]
        last, cache = model.prefill([x[:n] for x, n in zip(seqs, lengths)])
        got = [[last[b]] for b in range(len(seqs))]
        for t in range(29):
            logits = model.step(torch.stack([x[n + t] for x, n in zip(seqs, lengths)]), cache)
            for b in range(len(seqs)):
                got[b].append(logits[b])
    for b, n in enumerate(lengths):
        err = (torch.stack(got[b]) - want[b][n - 1:n + 29]).abs().max().item()
        assert err < 1e-4, f"row {b}: max abs diff {err}"
    with pytest.raises(ValueError, match="at least one byte"):
        model.prefill([seqs[0][:0]])


@pytest.mark.parametrize("window", [1, 6, 17])
def test_window_prefill_reads_a_shared_prefix_once_and_decodes_the_same(window):
    """Prompts that begin a longer one are cut from its pass (``chains``): the same last logits and
    cache as reading each on its own, so the same continuation; a wrong chain is refused."""
    from engine.eval.common import greedy_generate, prefix_chains
    torch.manual_seed(window)
    model = WindowLM(WindowConfig(d_model=24, n_layers=2, n_heads=2, mlp_hidden=40, window=window)).eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.qkv.weight.mul_(30.0)
    base = bytes(torch.randint(97, 123, (53,)).tolist())
    prompts = [base[:40], base[:3], b"xyz" + base[:9], base[:1], base, base[:40]]
    chains = prefix_chains(prompts)
    assert sorted(map(sorted, chains)) == [[0, 1, 3, 4, 5], [2]]
    tensors = [torch.tensor(list(p)) for p in prompts]
    with torch.no_grad():
        alone = model.prefill(tensors)
        shared = model.prefill(tensors, chains=chains)
        assert (alone[0] - shared[0]).abs().max() < 1e-4
        assert torch.equal(alone[1].valid, shared[1].valid) and torch.equal(alone[1].pos, shared[1].pos)
        for a, b in zip(alone[1].k + alone[1].v, shared[1].k + shared[1].v):
            assert a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=1e-4)
        nxt = torch.tensor([p[-1] for p in prompts])
        assert (model.step(nxt, alone[1]) - model.step(nxt, shared[1])).abs().max() < 1e-4
        with pytest.raises(ValueError, match="does not begin"):
            model.prefill(tensors, chains=[[4, 2], [0, 1, 3, 5]])
        with pytest.raises(ValueError, match="exactly one chain"):
            model.prefill(tensors, chains=[[4, 0, 1, 3]])
    got = greedy_generate(model, "window", prompts, 12)
    want = []
    for p in prompts:  # each prompt alone, re-reading its whole stream for every byte
        out = bytearray()
        for _ in range(12):
            with torch.no_grad():
                b = int(model(torch.tensor([list(p + bytes(out))])).logits[0, -1].argmax())
            if b == ord("\n"):
                break
            out.append(b)
        want.append(bytes(out))
    assert got == want


def test_recall_scoring_is_exact():
    perfect = recall_cell(Oracle(), "window", facts=3, distance=100, samples=2)
    assert perfect["accuracy"] == 1.0 and perfect["answers"] == 6
    assert perfect["facts"] == 3 and perfect["distance"] == 100 and perfect["measured_distance"] >= 100
    # an oracle wrong on every byte divisible by 2 misses (almost) every answer
    broken = recall_cell(Oracle(wrong_every=2), "window", facts=3, distance=100, samples=2)
    assert broken["accuracy"] < 0.5
    with pytest.raises(ValueError, match="facts"):
        recall_cell(Oracle(), "window", facts=0, distance=10)


def test_window_baseline_cannot_see_beyond_its_window():
    torch.manual_seed(0)
    model = WindowLM(WindowConfig(d_model=32, n_layers=2, n_heads=2, mlp_hidden=48, window=16)).eval()
    ids = torch.randint(0, 256, (1, 70))
    other = ids.clone()
    other[0, :20] = torch.randint(0, 256, (20,))  # change only the first 20 bytes
    with torch.no_grad():
        a, b = model(ids).logits, model(other).logits
    # each layer at t sees t-15..t, so two layers reach back 30 bytes: from t = 19 + 31 on, nothing
    # changed is visible at all; up to t = 19 + 15 directly, in between through the first layer
    assert torch.equal(a[0, 50:], b[0, 50:])
    assert ((a[0, 20:50] - b[0, 20:50]).abs().amax(-1) > 0).all()
    assert (a[0, 35:50] - b[0, 35:50]).abs().max() < (a[0, 20:35] - b[0, 20:35]).abs().max()
    # the chunked path (T > window) equals plain causal attention where the window holds everything
    wide = WindowLM(WindowConfig(d_model=32, n_layers=2, n_heads=2, mlp_hidden=48, window=128)).eval()
    wide.load_state_dict(model.state_dict())
    with torch.no_grad():
        c = wide(ids).logits
    assert torch.allclose(a[0, :16], c[0, :16], atol=1e-5)
    assert (a[0, 40:] - c[0, 40:]).abs().max() > 1e-5  # beyond the window the two differ


def test_generation_with_mosaic_and_window_models():
    from engine.vm import ModelConfig, MosaicLM
    torch.manual_seed(0)
    m = MosaicLM(ModelConfig.preset("tiny")).eval()
    w = WindowLM(WindowConfig(d_model=32, n_layers=1, n_heads=2, mlp_hidden=32, window=32)).eval()
    prompts = [b"\x11hello\n\x12", b"\x11a much longer prompt here\n\x12"]
    for model, arch in ((m, "mosaic"), (w, "window")):
        outs = greedy_generate(model, arch, prompts, max_new=5)
        assert len(outs) == 2 and all(len(o) <= 5 and b"\n" not in o for o in outs)
    # mosaic greedy decoding continues exactly what a forward pass predicts
    ids = torch.tensor([list(prompts[0])])
    pred, _ = run_stream(m, "mosaic", ids)
    first = greedy_generate(m, "mosaic", [prompts[0]], max_new=1)[0]
    assert first == b"" or first[0] == int(pred[0, -1])


def test_tool_eval_asks_the_split_it_is_given_and_counts_the_right_tool():
    from engine.curriculum.episodes import tool_request_prompt
    from engine.eval.tools import evaluate_tools
    class LongOracle(StreamOracle):
        CONTEXT = 1000  # two definitions share runs of ~170 bytes: the whole context never mixes them up

    tools = [toolset.BY_NAME["to_upper"], toolset.BY_NAME["to_lower"]]
    # knows the definitions as answers to the training requests only
    oracle = LongOracle([(tool_request_prompt(t, 0, "train")[0] + toolset.definition_json(t)).encode()
                           for t in tools])
    train = evaluate_tools(oracle, "window", tools=tools, split="train", max_new=400)
    assert train["split"] == "train" and train["requests"] == 2
    assert train["valid"] == train["named"] == train["passed"] == 1.0
    held = evaluate_tools(oracle, "window", tools=tools, max_new=400)
    assert held["split"] == "heldout" and held["valid"] == held["named"] == held["passed"] == 0.0
    # a definition of the other tool is valid but names the wrong one
    swapped = LongOracle([(tool_request_prompt(a, 0, "train")[0] + toolset.definition_json(b)).encode()
                            for a, b in zip(tools, tools[::-1])])
    res = evaluate_tools(swapped, "window", tools=tools, split="train", max_new=400)
    assert res["valid"] == 1.0 and res["named"] == res["passed"] == 0.0
    # as chat writes them, each definition begins with the name its request's words give: the
    # right oracle's own (so they pass as before); the swapped oracle's are named right
    assert [r["hint"] for r in res["hinted"]["rows"]] == ["to_upper", "to_lower"]
    assert res["hinted"]["hinted"] == res["hinted"]["hint_right"] == 1.0
    assert train["hinted"]["valid"] == train["hinted"]["named"] == train["hinted"]["passed"] == 1.0
    assert held["hinted"]["passed"] == 0.0      # a name alone is no definition


def test_tool_eval_checks_that_a_reply_shows_the_result():
    from engine.eval.tools import evaluate_tools, reply_prompt
    tools = [toolset.BY_NAME["to_upper"], toolset.BY_NAME["reverse_string"]]
    prompts = [reply_prompt(t, 0) for t in tools]
    for (p, res), t in zip(prompts, tools):     # the request, the right call, its result, the BOT byte
        assert p.endswith(stream.END + stream.BOT) and f'"name": "{t.name}"' in p
        assert stream.TOOL_RESULT + '{"ok": true, "result": "' + res + '"}' in p
    shows = StreamOracle([(p + f"done: {res}.\n").encode() for p, res in prompts])
    res = evaluate_tools(shows, "window", tools=tools, max_new=8)
    assert res["replies"] == 2 and res["result_shown"] == res["result_shown_copied"] == 1.0
    # the first reply garbles its result; the window baseline has no opcodes, so nothing is copied
    garbles = StreamOracle([(p + f"done: {res[::-1] if i == 0 else res}.\n").encode()
                            for i, (p, res) in enumerate(prompts)])
    res = evaluate_tools(garbles, "window", tools=tools, max_new=8)
    assert res["result_shown"] == res["result_shown_copied"] == 0.5
    assert res["reply_rows"][0]["reply"] == res["reply_rows"][0]["copied"] == f"done: {prompts[0][1][::-1]}."


def test_tool_eval_checks_that_a_reply_to_a_failed_call_says_so():
    from engine.eval.tools import evaluate_tools, failure_prompt
    tools = [toolset.BY_NAME["to_upper"], toolset.BY_NAME["to_lower"], toolset.BY_NAME["factorial"]]
    failed = [failure_prompt(t, 0) for t in tools]                  # the eval's seed with one sample
    assert failure_prompt(tools[0], 0) == failed[0]                 # deterministic by seed
    assert {kind for _, kind in failed} == {"missing", "failed"}
    for (p, kind), t in zip(failed, tools):   # the request, the right call, its failed result, BOT
        assert p.endswith(stream.END + stream.BOT) and f'"name": "{t.name}"' in p
        assert stream.TOOL_RESULT + '{"ok": false, "error": "' in p and kind in toolset.FAILURE_REPLIES
    right = [(p + toolset.FAILURE_REPLIES[kind][0] + "\n").encode() for p, kind in failed]
    res = evaluate_tools(StreamOracle(right), "window", tools=tools, max_new=8)
    assert res["failures"] == 3 and res["failure_replied"] == res["failure_said"] == 1.0
    # the first answers with the other kind's reply, the second with a result it does not have
    other = {"missing": "failed", "failed": "missing"}
    wrong = [(failed[0][0] + toolset.FAILURE_REPLIES[other[failed[0][1]]][1] + "\n").encode(),
             (failed[1][0] + "the result is 42.\n").encode(), right[2]]
    res = evaluate_tools(StreamOracle(wrong), "window", tools=tools, max_new=8)
    assert res["failure_replied"] == pytest.approx(1 / 3) and res["failure_said"] == pytest.approx(2 / 3)
    assert res["failure_rows"][1]["reply"] == "the result is 42."


def test_retries_rewrite_only_the_definitions_that_do_not_validate(monkeypatch):
    import engine.eval.tools as tools_eval
    from engine.curriculum.episodes import tool_request_prompt
    tools = [toolset.BY_NAME["to_upper"], toolset.BY_NAME["to_lower"], toolset.BY_NAME["reverse_string"]]
    reqs = [(t, *tool_request_prompt(t, 0, "heldout")) for t in tools]
    rows = [check_definition("{broken", tools[0]),
            check_definition(toolset.definition_json(tools[1]), tools[1]),
            check_definition("{broken", tools[2])]
    calls, masks = [], []

    def fake_generate(model, arch, prompts, max_new, stop=10, temperature=0.0, generator=None, allowed=None):
        calls.append((len(prompts), temperature, generator is not None))
        masks.append(allowed)
        # to_upper's request gets a valid definition of the wrong tool on its second retry;
        # reverse_string's never validates
        return [(toolset.definition_json(tools[1]) if len(calls) == 2 and reqs[0][1].encode() == p
                 else "{still broken").encode() for p in prompts]

    monkeypatch.setattr(tools_eval, "generate", fake_generate)
    out = tools_eval.retry_definitions(None, "mosaic", reqs, rows, retries=3, temperature=0.7, max_new=50)
    assert calls == [(2, 0.7, True), (2, 0.7, True), (1, 0.7, True)]   # only what is still invalid
    assert [r["attempts"] for r in out] == [3, 1, 4]
    assert [r["valid"] for r in out] == [True, True, False]
    assert out[0]["name_matches"] is False and not out[0]["passed"] and out[1] == dict(rows[1], attempts=1)
    assert masks == [None, None, None]
    # with the masks the definitions were written under (the name hints), each rewrite keeps its own
    calls.clear()
    tools_eval.retry_definitions(None, "mosaic", reqs, rows, retries=3, temperature=0.7, max_new=50,
                                 allowed=["upper", "lower", "reverse"])
    assert masks[3:] == [["upper", "reverse"], ["upper", "reverse"], ["reverse"]]


def test_sampled_generation_follows_its_generator_and_is_greedy_when_cold():
    from engine.eval.common import generate
    from engine.vm import ModelConfig, MosaicLM
    torch.manual_seed(0)
    m = MosaicLM(ModelConfig.preset("tiny")).eval()
    prompts = [b"\x11hi\n\x12", b"\x11make a tool\n\x14"]
    hot = [generate(m, "mosaic", prompts, 12, temperature=2.0, generator=torch.Generator().manual_seed(s))
           for s in (1, 1, 2)]
    assert hot[0] == hot[1] and hot[0] != hot[2]
    assert generate(m, "mosaic", prompts, 12, temperature=1e-6, generator=torch.Generator()) == \
        greedy_generate(m, "mosaic", prompts, 12)


def test_generation_keeps_to_the_bytes_each_prompt_allows():
    from engine.eval.common import generate
    from engine.vm import ModelConfig, MosaicLM
    torch.manual_seed(0)
    m = MosaicLM(ModelConfig.preset("tiny")).eval()
    prompts = [b"\x11hi\n\x12", b"\x11make a tool\n\x14", b"\x11go\n\x15"]
    seen: list[tuple[str, int | None]] = []

    def abc_then_stop(so_far: str, op: int | None) -> set[int]:   # "abcabc...", ended after 7 bytes
        seen.append((so_far, op))
        return {ord("\n")} if len(so_far) == 7 else {ord("abc"[len(so_far) % 3])}

    free = greedy_generate(m, "mosaic", prompts, 9)
    for temperature in (0.0, 1.5):
        outs = generate(m, "mosaic", prompts, 9, temperature=temperature, generator=torch.Generator(),
                        allowed=[None, abc_then_stop, None])
        assert outs[1] == b"abcabca"
        assert outs[0] == free[0] or temperature > 0     # a row without a rule is left alone
    texts = [s for s, _ in seen]
    assert "" in texts and "abcabca" in texts and all(len(s) <= 7 for s in texts)
    # the opcode of the last generated byte: none before the first one, then one of the ISA's
    assert all((op is None) == (s == "") for s, op in seen) and all(0 <= op < 10 for s, op in seen if s)


def test_tool_definitions_are_validated_and_run_in_the_sandbox():
    tool = toolset.BY_NAME["reverse_string"]
    good = check_definition(toolset.definition_json(tool), tool)
    assert good["valid"] and good["passed"] and good["name_matches"]
    wrong = json.loads(toolset.definition_json(tool))
    wrong["implementation"] = "def reverse_string(text):\n    return text\n"
    res = check_definition(json.dumps(wrong), tool)
    assert res["valid"] and not res["passed"]
    evil = dict(wrong, implementation="import os\ndef reverse_string(text):\n    return os.name\n")
    assert not check_definition(json.dumps(evil), tool)["valid"]
    assert not check_definition("{not json", tool)["valid"]
    assert not check_definition("", tool)["valid"]


def test_tool_calls_are_checked_for_the_tool_and_the_exact_arguments():
    from engine.eval.tools import call_prompt, check_call
    tool = toolset.BY_NAME["repeat_text"]
    prompt, args, text = call_prompt(tool, 3)
    assert prompt.endswith(stream.TOOL_CALL) and str(args["times"]) in prompt
    assert prompt == stream.user(text) + stream.TOOL_CALL
    assert call_prompt(tool, 3) == (prompt, args, text)  # deterministic by seed
    right = json.dumps({"name": tool.name, "args": args})
    assert check_call(right, tool, args)["exact"]
    wrong_arg = json.dumps({"name": tool.name, "args": dict(args, times=args["times"] + 1)})
    res = check_call(wrong_arg, tool, args)
    assert res["named"] and not res["exact"]
    other = check_call(json.dumps({"name": "to_upper", "args": args}), tool, args)
    assert not other["named"] and not other["exact"]
    broken = check_call(right[:-3], tool, args)
    assert not broken["parsed"] and not broken["exact"]


def test_impulse_scoring_needs_opcodes():
    res = evaluate_impulses(Oracle(), "window", samples=2)
    assert res["impulses"] == 12 and res["fitting"] == 0.0  # no opcodes: nothing answered fittingly


def test_plot_is_written(tmp_path):
    rows = [{"facts": f, "distance": d, "accuracy": a} for f, d, a in
            [(1, 100, 1.0), (1, 1000, 0.9), (4, 100, 0.5), (4, 1000, 0.4)]]
    path = tmp_path / "r.png"
    plot_recall({"mosaic": rows, "window": rows}, path, train_len=256)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pad_batch_pads_at_the_end():
    x = pad_batch([np.array([1, 2, 3]), np.array([4])])
    assert x.tolist() == [[1, 2, 3], [4, 32, 32]]


def _scripted_stream(policy):
    """A stand-in for run_stream whose last-layer opcodes come from ``policy(example) -> {pos: op}``."""
    from engine.curriculum.episodes import IMPULSE_KINDS, impulse_example
    from prompts import stream

    def fake(model, arch, ids, want_opcodes=False):
        exs = [impulse_example(i, kind, 256) for kind in IMPULSE_KINDS for i in range(2)]
        ops = torch.zeros(ids.shape, dtype=torch.long)
        pred = torch.zeros(ids.shape, dtype=torch.long)
        for b, e in enumerate(exs):
            for p, op in policy(e).items():
                ops[b, p] = op
            if e.meta["impulse"]["reply_at"] >= 0:
                pred[b, e.meta["impulse"]["reply_at"]] = ord(stream.BOT)
        return pred, ops
    return fake


def test_impulse_scoring_rewards_the_labelled_opcodes_and_exposes_a_constant_policy(monkeypatch):
    import engine.eval.impulses as imp_eval
    from engine.curriculum.example import IDLE
    monkeypatch.setattr(imp_eval, "run_stream", _scripted_stream(lambda e: dict(e.meta["impulse"]["checks"])))
    perfect = imp_eval.evaluate_impulses(Oracle(), "mosaic", samples=2)
    assert perfect["fitting"] == 1.0 and perfect["balanced"] == 1.0
    monkeypatch.setattr(imp_eval, "run_stream",
                        _scripted_stream(lambda e: {p: IDLE for p, _ in e.meta["impulse"]["checks"]}))
    idle = imp_eval.evaluate_impulses(Oracle(), "mosaic", samples=2)
    assert idle["fitting"] == idle["always_idle"] and idle["balanced"] == 0.5


class StreamOracle(torch.nn.Module):
    """A window-arch 'model' that knows whole streams: at every position it finds the last 48
    bytes of its context in the known streams (the first that holds them) and predicts the
    byte that follows there (else END), so greedy generation writes that stream's reply."""

    CONTEXT = 48

    def __init__(self, streams: list[bytes]):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.streams = streams
        self.config = type("C", (), {"window": 1 << 30})()

    def _next(self, ctx: bytes) -> int:
        for s in self.streams:
            at = s.find(ctx)
            if at >= 0 and at + len(ctx) < len(s):
                return s[at + len(ctx)]
        return ord(stream.END)

    # greedy_generate's window interface: the "cache" is each row's context so far
    def prefill(self, prompts, chains=None):  # reads every prompt on its own whatever the chains
        ctx = [bytes(p.tolist()) for p in prompts]
        return torch.stack([self.forward(torch.tensor([list(c)])).logits[0, -1] for c in ctx]), ctx

    def step(self, ids, ctx):
        for b, byte in enumerate(ids.tolist()):
            ctx[b] += bytes([byte])
        return torch.stack([self.forward(torch.tensor([list(c[-self.CONTEXT:])])).logits[0, -1] for c in ctx])

    def forward(self, ids, state=None, teacher=None):
        B, T = ids.shape
        logits = torch.zeros(B, T, 256)
        for b in range(B):
            row = bytes(ids[b].tolist())
            for t in range(T):
                logits[b, t, self._next(row[max(0, t + 1 - self.CONTEXT):t + 1])] = 1.0
        out = type("Out", (), {})()
        out.logits, out.aux, out.state = logits, {}, None
        return out


def test_forget_scoring_with_an_oracle_and_a_leaky_one():
    from engine.curriculum import vocab
    from engine.curriculum.episodes import forget_example
    from engine.eval.recall import forget_cell
    exs = [forget_example(i, 4, 256) for i in range(2)]
    streams = [bytes(e.ids.astype("uint8")) for e in exs]
    perfect = forget_cell(StreamOracle(streams), "window", facts=4, samples=2)
    assert perfect["withheld"] == perfect["declined"] == perfect["kept"] == 1.0
    assert perfect["answers_forgotten"] == 4 and perfect["answers_kept"] == 4

    def leak(s):  # every "does not know" reply gives the value instead
        for e in exs:
            for _, key, value in e.meta["forgotten"]:
                for u in vocab.UNKNOWN:
                    s = s.replace(u.format(k=key).encode(), f"I remember: the {key} is {value}.".encode())
        return s
    leaky = forget_cell(StreamOracle([leak(x) for x in streams] + streams), "window", facts=4, samples=2)
    assert leaky["withheld"] == leaky["declined"] == 0.0 and leaky["kept"] == 1.0
    with pytest.raises(ValueError, match="facts"):
        forget_cell(StreamOracle(streams), "window", facts=1)


def test_forget_and_updates_read_the_split_they_are_given():
    from engine.curriculum.episodes import forget_example, update_example
    from engine.eval.recall import forget_cell, update_cell
    train = [bytes(forget_example(i, 4, 256, split="train").ids.astype("uint8")) for i in range(2)]
    assert all(b"you can drop it" not in s for s in train)
    on_train = forget_cell(StreamOracle(train), "window", facts=4, samples=2, split="train")
    assert on_train["withheld"] == on_train["declined"] == on_train["kept"] == 1.0 and on_train["split"] == "train"
    assert forget_cell(StreamOracle(train), "window", facts=4, samples=2)["declined"] == 0.0  # held out: unseen
    assert on_train["cleared"] is None  # the window baseline has no opcodes
    upd = [bytes(update_example(i, 4, 256, split="train").ids.astype("uint8")) for i in range(2)]
    assert update_cell(StreamOracle(upd), "window", facts=4, samples=2, split="train")["updated"] == 1.0
    assert update_cell(StreamOracle(upd), "window", facts=4, samples=2)["updated"] < 1.0


@pytest.mark.parametrize("bias0,bias2", [(30.0, -30.0), (-30.0, 30.0)])
def test_forget_reports_where_each_memory_layer_clears(bias0, bias2):
    """``cleared``: the share of the forgotten values' bytes at which a memory layer's own opcode is
    CLEAR; a head pushed to CLEAR everywhere scores 1, one kept from it 0, each layer its own; no
    entry for a layer without memory."""
    from engine.eval.recall import forget_cell
    from engine.vm import ModelConfig, MosaicLM, Opcode
    torch.manual_seed(0)
    model = MosaicLM(ModelConfig.preset("tiny").replace(n_layers=3, memory_layers=(0, 2))).eval()
    with torch.no_grad():
        for i, bias in ((0, bias0), (2, bias2)):
            blk = model.blocks[i]
            blk.proj.bias[sum(blk.sizes[:3]) + int(Opcode.CLEAR_MEM)] += bias
    got = forget_cell(model, "mosaic", facts=2, samples=1, n_buckets=model.config.buckets, max_new=4)
    assert got["cleared"] == {"0": float(bias0 > 0), "2": float(bias2 > 0)}


def test_forget_example_asks_after_the_forget_turn():
    from engine.curriculum.episodes import forget_example
    e = forget_example(7, 6, 64)
    s = bytes(e.ids.astype("uint8"))
    assert len(e.meta["forgotten"]) == 3 and len(e.meta["answers"]) == 3
    for end, key, value in e.meta["forgotten"]:
        assert s[end - 1:end] == stream.BOT.encode() and s[end - 2:end - 1] == stream.END.encode()
        dropped = s.index(f"the {key} is {value}".encode(), s.index(b"you can drop it"))
        assert dropped < end and key.encode() in s[s.rindex(stream.USER.encode(), 0, end):end]
        assert value.encode() not in s[end:s.index(stream.END.encode(), end)]


def test_reply_scoring_reads_the_models_own_reply():
    from engine.curriculum.episodes import recall_example
    from engine.eval.recall import reply_cell
    exs = [recall_example(i, 3, 100, 256) for i in range(2)]
    streams = [bytes(e.ids.astype("uint8")) for e in exs]
    perfect = reply_cell(StreamOracle(streams), "window", facts=3, distance=100, samples=2)
    # the curriculum's own replies: their text from the BOT byte to the end of the line
    true_replies = [s[s.rindex(stream.BOT.encode(), 0, a) + 1:s.index(stream.END.encode(), a)].decode()
                    for e, s in zip(exs, streams) for a, _ in e.meta["answers"]]
    keys = [k for e in exs for k in e.meta["keys"]]
    assert perfect["value_given"] == 1.0 and perfect["answers"] == 6
    assert perfect["key_and_value"] == sum(k in r for k, r in zip(keys, true_replies)) / 6
    # the training split asks other conversations: this oracle knows none of them
    other = reply_cell(StreamOracle(streams), "window", facts=3, distance=100, samples=2, split="train")
    assert other["split"] == "train" and other["value_given"] < 0.5
    values = [bytes(e.ids[s:t].astype("uint8")) for e in exs for s, t in e.meta["answers"]]

    def garble(s):  # every answer's value bytes reversed
        for v in values:
            s = s.replace(v + b".\n", v[::-1] + b".\n")
        return s
    wrong = reply_cell(StreamOracle([garble(x) for x in streams] + streams), "window", facts=3, distance=100,
                       samples=2)
    assert wrong["value_given"] < 0.5 and wrong["key_and_value"] < 0.5


@pytest.mark.parametrize("argv, flag", [(["updates", "--facts", "2,3"], "--facts"),
                                        (["forget", "--facts", "4,6"], "--facts"),
                                        (["replies", "--distance", "100,200"], "--distance")])
def test_module_entry_point_refuses_a_list_where_one_value_goes(argv, flag, capsys):
    from engine.eval.__main__ import main
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}: {argv[0]} takes one value") and len(err.strip().splitlines()) == 1
