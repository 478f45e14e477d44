"""The instruction set: ten opcodes, decoded every cycle (per token and layer)."""
from __future__ import annotations

from enum import IntEnum


class Opcode(IntEnum):
    NOP = 0
    READ_MEM = 1
    WRITE_MEM = 2
    CLEAR_MEM = 3
    IDLE = 4
    GATE_UP = 5
    GATE_DOWN = 6
    SCAN = 7
    COMMIT = 8
    RESPOND = 9


N_OPCODES = len(Opcode)

# What each opcode does in the block, and in the runtime (the last layer's opcode).
EFFECTS: dict[Opcode, tuple[str, str]] = {
    Opcode.NOP: ("no memory operation", "-"),
    Opcode.READ_MEM: ("memory read over the router's top-P buckets enters the fusion, scaled by sel[READ]", "-"),
    Opcode.WRITE_MEM: ("(key, value) written to the key's bucket, ANDed with the write gate", "counts as a write"),
    Opcode.CLEAR_MEM: ("the valid way in the key's bucket that best matches the key is invalidated (a CLEAR "
                       "below the config's clear_confidence in probability is a NOP instead)", "-"),
    Opcode.IDLE: ("the block's residual update is suppressed: y = x", "while generating: end of turn, back to idle"),
    Opcode.GATE_UP: ("fusion gates raised toward 1 for this token", "-"),
    Opcode.GATE_DOWN: ("fusion gates lowered toward 0 for this token", "-"),
    Opcode.SCAN: ("memory read over the router's top-P_scan buckets (wider search), scaled by sel[SCAN]", "-"),
    Opcode.COMMIT: ("the commitment head's delta (close -1 / neutral 0 / open +1) is added to the ledger",
                    "ledger opens or closes a commitment"),
    Opcode.RESPOND: ("-", "text after RESPOND goes to the user"),
}


def opcode_table() -> list[dict]:
    """[{"name", "value", "block", "runtime"}] for ``mosaic info`` and the docs."""
    return [{"name": op.name, "value": int(op), "block": EFFECTS[op][0], "runtime": EFFECTS[op][1]} for op in Opcode]
