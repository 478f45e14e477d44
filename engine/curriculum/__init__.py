"""The synthetic curriculum: labelled conversations in the stream format of ``prompts.stream``.

Facts told, asked, updated and forgotten among distractor talk; tool requests answered
by definitions and tool calls woven into replies; impulses with their fitting responses;
commitments; cue-free replay. Deterministic by seed, with a held-out split by key
vocabulary and templates. See ``example.py`` for the label conventions.
"""
from engine.curriculum.batches import collate, training_batch
from engine.curriculum.episodes import (IMPULSE_KINDS, impulse_example, recall_example, update_example,
                                        tool_request_prompt, training_example)
from engine.curriculum.example import OPCODE_NAMES, Example

__all__ = ["Example", "OPCODE_NAMES", "collate", "training_batch", "training_example",
           "recall_example", "update_example", "impulse_example", "tool_request_prompt", "IMPULSE_KINDS"]
