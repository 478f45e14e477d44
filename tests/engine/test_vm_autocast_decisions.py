"""Hard decisions under bf16 autocast: the logits they are taken from (the block's projection and
the memory's router) stay float32, so training under autocast and the float32 forward that chat
and the evals run pick the same opcodes, gates and buckets from the same inputs."""
import pytest
import torch

from engine.vm.exact import decision_linear
from vm_helpers import make_model

BF16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731


def test_decision_linear_is_float32_and_exact_under_autocast():
    torch.manual_seed(0)
    lin = torch.nn.Linear(37, 11)
    x = torch.randn(3, 5, 37)
    want = lin(x)
    with BF16():
        assert lin(x).dtype == torch.bfloat16  # what a plain linear would give the argmax
        got = decision_linear(lin, x)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)
    assert torch.equal(decision_linear(lin, x), want)  # no autocast: the layer itself


def test_decision_linear_gradients_match_float32():
    torch.manual_seed(1)
    lin = torch.nn.Linear(19, 7)
    x = torch.randn(4, 19, requires_grad=True)
    g = torch.randn(4, 7)
    (lin(x) * g).sum().backward()
    want = (x.grad.clone(), lin.weight.grad.clone(), lin.bias.grad.clone())
    x.grad = lin.weight.grad = lin.bias.grad = None
    with BF16():
        y = decision_linear(lin, x)
    (y * g).sum().backward()  # outside autocast, as the trainer calls it
    for a, b in zip(want, (x.grad, lin.weight.grad, lin.bias.grad)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("seed", [0, 1])
def test_first_layer_decides_the_same_under_autocast(seed):
    """Layer 0's input is the embedding, the same in both runs, so its opcode, gate and commit
    logits must be bit-identical and every decision the same; the router's too on equal keys."""
    model = make_model(seed, "tiny", memory_layers=(0, 1))
    ids = torch.randint(0, 256, (3, 97), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model(ids, keep_state=False).aux
        with BF16():
            got = model(ids, keep_state=False).aux
    for k in ("opcode_logits", "write_gate_logits", "utility_logits", "commit_logits", "keys",
              "router_write_logits", "router_read_logits"):
        assert got[k].dtype == torch.float32, k
        assert torch.equal(got[k][:, :, 0], ref[k][:, :, 0]), f"layer 0 {k} differs under autocast"
    assert torch.equal(got["opcodes"][:, :, 0], ref["opcodes"][:, :, 0])


def test_decision_linear_runs_a_wrapped_layer_whole_under_autocast():
    """A wrapper around the linear (a LoRA adapter swaps one in) keeps its own term under autocast."""
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = torch.nn.Linear(13, 5)
            self.delta = torch.nn.Linear(13, 5, bias=False)

        @property
        def weight(self):  # what a wrapper exposes, as PEFT's lora.Linear does
            return self.base.weight

        def forward(self, x):
            return self.base(x) + self.delta(x)

    torch.manual_seed(2)
    layer = Wrapped()
    x = torch.randn(6, 13)
    want = layer(x)
    with BF16():
        got = decision_linear(layer, x)
    assert got.dtype == torch.float32 and torch.equal(got, want)
