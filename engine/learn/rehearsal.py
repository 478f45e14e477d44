"""Retrieval practice: a replayed fact rehearsed as a question and its answer.

Consolidation replays what memory holds as REPLAY turns ("\\x17the door code is 4417\\n").
Adapters trained on those turns alone learn to finish "the door code is " after the REPLAY
byte, but a person asks in a conversation, where the answer comes in a bot turn after a
question. On the shipped model that gap was most of the loss: after 8 passes the adapters
completed every replay of a 16-fact conversation from weights alone (seed 0) yet answered
only 7 of 16 questions on a wiped memory. Rehearsing each replay also as a user question
and the bot's answer (the templates ``rehearse_question`` / ``rehearse_answer``) trains that
path too. The value is the model's own recall, right or wrong, never a true value.
"""
from __future__ import annotations

import re

import prompts
from prompts import stream

# "the <key> is <value>": the shape of every fact the curriculum teaches and replays. The key is
# the shortest prefix (a value may contain " is ", a key never does); the value is one line.
_FACT = re.compile(r"the (?P<key>[^\n]+?) is (?P<value>[^\n]+?)\.?")


def rehearsal(replay: str) -> str | None:
    """The question-and-answer turns for one replayed fact, or None when it is not one.

    replay: a REPLAY turn ("\\x17the door code is 4417\\n") or its bare text.
    Returns e.g. "\\x11what is the door code?\\n\\x12the door code is 4417.\\n".
    """
    text = replay
    if text.startswith(stream.REPLAY):
        text = text[len(stream.REPLAY):]
    text = text.removesuffix(stream.END).strip()
    m = _FACT.fullmatch(text)
    if m is None or not m["key"].strip() or not m["value"].strip():
        return None
    key, value = m["key"].strip(), m["value"].strip()
    return (stream.user(prompts.render("rehearse_question", key=key))
            + stream.bot(prompts.render("rehearse_answer", key=key, value=value)))
