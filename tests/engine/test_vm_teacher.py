"""Teacher labels override the model's decisions (opcode, write gate, write bucket, first read probe)."""
import pytest
import torch

from engine.vm import Opcode, Teacher
from vm_helpers import make_model


def test_teacher_bucket_is_the_write_bucket_and_the_first_read_probe():
    model = make_model(0, preset="tiny", buckets=8, probes=3, scan_probes=6)
    state = model.init_state(2)
    ids = torch.tensor([10, 20])
    free = model.step(ids, state.fork())
    own = free.info["read_buckets"][:, 0, 0]            # layer 0: the model's own top probe
    label = (own + 1) % 8
    out = model.step(ids, state.fork(), Teacher(opcodes=torch.full((2,), int(Opcode.READ_MEM)),
                                                bucket=label))
    rb = out.info["read_buckets"]                        # [B, L, P]
    assert (rb[:, :, 0] == label.unsqueeze(1)).all()
    for row in rb.reshape(-1, 3):
        assert len(set(row.tolist())) == 3               # no bucket probed twice
    out = model.step(ids, state.fork(), Teacher(opcodes=torch.full((2,), int(Opcode.WRITE_MEM)),
                                                write_gate=torch.ones(2, dtype=torch.long), bucket=label))
    assert (out.info["write_slot"][:, :, 0] == label.unsqueeze(1)).all()
    assert (out.opcodes == int(Opcode.WRITE_MEM)).all()


def test_free_labels_leave_the_model_deciding():
    model = make_model(1)
    ids = torch.randint(0, 256, (2, 30), generator=torch.Generator().manual_seed(0))
    free = model(ids)
    minus = torch.full((2, 30), -1)
    same = model(ids, teacher=Teacher(opcodes=minus, write_gate=minus, bucket=minus))
    assert torch.equal(free.logits, same.logits) and torch.equal(free.aux["opcodes"], same.aux["opcodes"])
    forced = minus.clone()
    forced[:, 5] = int(Opcode.COMMIT)
    out = model(ids, teacher=Teacher(opcodes=forced))
    assert (out.aux["opcodes"][:, 5] == int(Opcode.COMMIT)).all()


def test_bad_shapes_are_one_clear_error():
    model = make_model(2)
    ids = torch.zeros(2, 7, dtype=torch.long)
    with pytest.raises(ValueError, match=r"teacher.opcodes: expected shape \(2, 7\)"):
        model(ids, teacher=Teacher(opcodes=torch.zeros(2, 6, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"teacher.bucket: labels must be -1 \(free\) or in \[0, 4\)"):
        model(ids, teacher=Teacher(bucket=torch.full((2, 7), 4)))
    with pytest.raises(ValueError, match="teacher.opcodes: labels must be"):
        model(ids, teacher=Teacher(opcodes=torch.full((2, 7), 10)))
    with pytest.raises(ValueError, match="state has batch size 1"):
        model(ids, state=model.init_state(1))
    with pytest.raises(ValueError, match=r"ids: expected shape \[1\]"):
        model.step(torch.zeros(2, dtype=torch.long), model.init_state(1))
