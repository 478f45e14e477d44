"""Unit tests of the TUI's pure parts: binning, band tracks, the legend, token decoding, proposals."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from rich.cells import cell_len

from mosaic_cli.tui.proposal import ToolProposal
from mosaic_cli.tui.widgets.chat import ReplyLine, describe_event
from mosaic_cli.tui.widgets.drives import band_track, short
from mosaic_cli.tui.widgets.heatmap import bin_columns
from mosaic_cli.tui.widgets.memory import MemoryView, bucket_cells
from mosaic_cli.tui.widgets.opcodes import legend


def test_bin_columns_averages_ignoring_nan_and_repeats_when_there_is_room():
    m = np.array([[1.0, 3.0, np.nan, np.nan, 5.0, 7.0]])
    assert bin_columns(m, 3).tolist() == [[2.0, pytest.approx(np.nan, nan_ok=True), 6.0]]
    assert bin_columns(m, 6).shape == (1, 6)
    wide = bin_columns(m, 13)                  # room for two cells per column
    assert wide.shape == (1, 12) and wide[0, 0] == wide[0, 1] == 1.0


@pytest.mark.parametrize("buckets,cells", [(256, 40), (256, 37), (64, 64), (64, 150), (7, 3)])
def test_bucket_cells_point_at_the_cells_bin_columns_puts_a_bucket_in(buckets, cells):
    fitted = bin_columns(np.zeros((1, buckets)), cells).shape[1]
    for bucket in range(buckets):
        m = np.zeros((1, buckets))
        m[0, bucket] = 1.0
        lit = set(np.nonzero(bin_columns(m, cells)[0])[0].tolist())
        assert lit == set(bucket_cells(bucket, buckets, fitted))


def test_band_track_marks_the_value_and_the_band():
    inside = band_track(0.5, 0.2, 0.8, 20).plain
    assert len(inside) == 20 and inside.count("●") == 1 and "━" in inside
    below, above = band_track(-1.0, 0.2, 0.8, 20).plain, band_track(3.0, 0.2, 0.8, 20).plain
    assert below.index("●") < below.index("━") and above.index("●") > above.rindex("━")
    assert "●" not in band_track(float("nan"), 0.0, 1.0, 12).plain


@pytest.mark.parametrize("value", [0.0, -0.5, 3.14159, 42.42, 599.9, 12345.0, -98765.0, 5e9, float("nan")])
def test_short_fits_five_cells(value):
    assert len(short(value)) <= 5


@pytest.mark.parametrize("width", [30, 43, 80, 200])
def test_legend_lines_fit_the_width_and_name_every_opcode(width):
    text = legend(width)
    assert all(cell_len(line) <= width for line in text.plain.split("\n"))
    for label in ("nop", "read", "write", "clear", "idle", "up", "down", "scan", "commit", "respond"):
        assert label in text.plain


def test_reply_line_decodes_bytes_across_tokens_and_hides_role_bytes():
    line = ReplyLine()
    for b in "\x12héllo ✓\n".encode():          # BOT role byte, multi-byte characters, END
        line.token({"turn": "t1", "byte": b})
    assert line.text() == "héllo ✓"
    line.token({"turn": "t2", "byte": ord("x")})  # a new turn starts over
    assert line.text() == "x"
    line.token({"text": "yz"})
    assert line.text() == "xyz"


def test_tool_events_show_the_first_validation_error():
    @dataclass(frozen=True)
    class E:
        type: str
        payload: dict
    text = describe_event(E("ToolRejected", {"name": "bad", "hash": None, "status": "invalid",
                                             "errors": [{"field": "name", "message": "reserved"}]}), "chat")
    assert "rejected bad" in text.plain and "name: reserved" in text.plain


def test_proposal_gathers_a_record_with_a_nested_definition_and_validates_it():
    @dataclass(frozen=True)
    class Definition:
        name: str
        description: str
        parameters: dict
        implementation: str
        sandbox: bool = True

    @dataclass(frozen=True)
    class Record:
        name: str
        hash: str
        status: str
        definition: Definition

    good = Definition("shout", "Upper-case a text.",
                      {"type": "object", "properties": {"text": {"type": "string"}},
                       "required": ["text"], "additionalProperties": False},
                      "def shout(text):\n    return text.upper()\n")
    p = ToolProposal.gather({"name": "shout", "hash": "abc", "source": "model"}, Record("shout", "abc", "pending", good))
    assert (p.name, p.hash, p.key) == ("shout", "abc", "abc")
    assert p.source.startswith("def shout") and p.errors is None
    p.check()
    assert p.errors == [] and p.checked_here
    bad = ToolProposal.gather({"name": "bad", "implementation": "import os\ndef bad(text):\n    return 1\n",
                               "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                                              "required": ["text"], "additionalProperties": False},
                               "description": "x"})
    bad.check()
    assert bad.errors, "toolsmith refuses an import"


def test_memory_view_skips_a_layer_without_memory():
    """Layer 0 of the shipped model has no memory: its table is empty, the all-layers view is the
    other layers' and selecting layer 0 says so instead of failing to stack tables."""
    view = MemoryView()
    full = np.zeros((8, 4))
    full[2, :2] = 1
    view.show([[], full.tolist(), np.zeros((8, 4)).tolist()], [[], full.tolist(), full.tolist()], None)
    assert view.ways() == 4 and not view.no_memory() and len(view.shown(view.valid)) == 2
    assert view.scale == "3.1% full"   # (4 / 32 + 0) / 2 layers with memory
    assert view.rows() == 4
    view.show([[], full.tolist()], [[], full.tolist()], 0)
    assert view.no_memory() and view.rows() == 1
    assert "layer 0 has no memory" in "".join(s.text for s in view.lines(40)[0])
    view.show([[], full.tolist()], [[], full.tolist()], 1)
    assert not view.no_memory() and view.shown(view.valid)[0].shape == (8, 4)
