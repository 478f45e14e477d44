"""The benchmarks' machinery: scoring is exact, the window baseline really cannot see past its
window, tool definitions are checked by toolsmith and run in its sandbox, plots are written."""
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
    # position t sees t-15..t: from t = 35 on, nothing changed is visible
    assert torch.allclose(a[0, 35:], b[0, 35:], atol=1e-5)
    assert (a[0, 20:34] - b[0, 20:34]).abs().max() > 1e-5
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
    prompt, args = call_prompt(tool, 3)
    assert prompt.endswith(stream.TOOL_CALL) and str(args["times"]) in prompt
    assert call_prompt(tool, 3) == (prompt, args)  # deterministic by seed
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
