"""Writes are differentiable: a loss at a later read reaches the write's key, value, gate and opcode."""
import torch

from engine.vm import ModelConfig, MosaicLM, Opcode, Teacher

W_POS, OTHER, R_POS, T = 5, 9, 20, 24  # OTHER: a second write competing in the same bucket


def _run(gate_at_write: int):
    """One memory layer (so position 20 can depend on position 5 only through memory)."""
    torch.manual_seed(0)
    model = MosaicLM(ModelConfig.preset("tiny").replace(n_layers=1))
    blk = model.blocks[0]
    captured = {}

    def hook(module, inputs, output):
        output.register_hook(lambda g: captured.__setitem__("g", g))

    blk.proj.register_forward_hook(hook)
    ids = torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(1))
    ops = torch.full((1, T), int(Opcode.NOP))
    ops[0, W_POS] = ops[0, OTHER] = int(Opcode.WRITE_MEM)
    ops[0, R_POS] = int(Opcode.READ_MEM)
    gate = torch.full((1, T), -1)
    gate[0, W_POS], gate[0, OTHER] = gate_at_write, 1
    bucket = torch.full((1, T), -1)
    bucket[0, W_POS] = bucket[0, OTHER] = bucket[0, R_POS] = 2
    out = model(ids, teacher=Teacher(opcodes=ops, write_gate=gate, bucket=bucket))
    out.logits[0, R_POS].logsumexp(-1).backward()  # any loss at the read position
    return model, blk, captured["g"][0]  # grad of the fused projection's output [T, n]


def _cols(blk):
    edges, start = {}, 0
    for name, size in zip(("q", "key", "value", "opcode", "gate", "utility", "commit", "fusion", "reg"), blk.sizes):
        edges[name] = slice(start, start + size)
        start += size
    return edges


def test_later_read_reaches_write_key_value_gate_and_opcode():
    model, blk, g = _run(gate_at_write=1)
    c = _cols(blk)
    assert g[W_POS - 1, c["key"]].abs().sum() > 0      # the write key is projected from u_{t-1}
    assert g[W_POS, c["value"]].abs().sum() > 0
    assert g[W_POS, c["gate"]].abs().sum() > 0          # through the gate's straight-through value
    assert g[W_POS, c["opcode"]].abs().sum() > 0        # through sel[WRITE]
    assert g[R_POS, c["q"]].abs().sum() > 0
    assert g[R_POS, c["opcode"]].abs().sum() > 0        # through sel[READ]
    assert g[R_POS + 1:].abs().sum() == 0               # causal
    w = blk.proj.weight.grad
    assert w[c["key"]].abs().sum() > 0 and w[c["value"]].abs().sum() > 0


def test_without_the_write_no_gradient_reaches_key_and_value():
    """Control: with the gate closed nothing is stored, so key/value/gate get no gradient from the read."""
    model, blk, g = _run(gate_at_write=0)
    c = _cols(blk)
    assert g[W_POS - 1, c["key"]].abs().sum() == 0
    assert g[W_POS, c["value"]].abs().sum() == 0
    assert g[W_POS, c["gate"]].abs().sum() == 0
    assert g[W_POS, c["opcode"]].abs().sum() == 0
    assert g[OTHER, c["value"]].abs().sum() > 0          # the other write still is read
