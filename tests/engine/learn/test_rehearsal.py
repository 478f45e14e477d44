"""Retrieval practice: replayed facts are also trained as a question and the bot's answer."""
from __future__ import annotations

import copy

import torch

from engine.learn.online import LearnerConfig, OnlineLearner
from engine.learn.rehearsal import rehearsal

FACT = "\x17the door code is 4417\n"
DIALOGUE = "\x11what is the door code?\n\x12the door code is 4417.\n"


def test_a_replayed_fact_becomes_a_question_and_its_answer():
    assert rehearsal(FACT) == DIALOGUE
    assert rehearsal("the door code is 4417") == DIALOGUE           # the bare recalled text
    assert rehearsal("\x17the door code is 4417.\n") == DIALOGUE     # one final period, not two
    # the key is the shortest prefix: a value may say " is ", a key does not
    assert rehearsal("the plan is to go home") == "\x11what is the plan?\n\x12the plan is to go home.\n"
    # the value is the model's own recall, kept as recalled
    assert rehearsal("\x17the blue bike is kv9\n") == "\x11what is the blue bike?\n\x12the blue bike is kv9.\n"


def test_what_is_not_a_fact_gets_no_rehearsal():
    for text in ("", "\x17\n", "hello there", "\x17the door code is \n", "\x17the  is 4417\n",
                 "my sister lives in Porto", "\x17the door code is 44\n17\n"):
        assert rehearsal(text) is None, text


def _loss(learner, text: str) -> float:
    from engine.learn.guard import sequence_loss
    with torch.no_grad():
        return float(sequence_loss(learner.peft_model, list(text.encode())))


def test_consolidation_trains_the_question_form_only_when_rehearsing(model):
    twin = copy.deepcopy(model)
    learners = {True: OnlineLearner(model, LearnerConfig(window=64, lr=2e-2, rehearse=True)),
                False: OnlineLearner(twin, LearnerConfig(window=64, lr=2e-2, rehearse=False))}
    before = _loss(learners[True], DIALOGUE)
    assert before == _loss(learners[False], DIALOGUE)   # the same base, the same zero adapter
    for learner in learners.values():
        learner.consolidate([FACT], passes=6)
    buffered = {flag: [bytes(r).decode() for r in learner.replays] for flag, learner in learners.items()}
    assert buffered == {True: [FACT, DIALOGUE], False: [FACT]}
    # (whether the question form then answers from weights is the consolidation measure's
    # question, on a trained model: `mosaic eval consolidation --no-rehearse` against without)
    after = {flag: _loss(learner, DIALOGUE) for flag, learner in learners.items()}
    assert after[True] < before and after[True] < after[False]


def test_replays_given_as_byte_ids_are_rehearsed_too(model):
    learner = OnlineLearner(model, LearnerConfig(window=64))
    added = learner.add_replays([list(FACT.encode()), list(b"\x17nothing to see\n")])
    assert [bytes(a).decode() for a in added] == [FACT, DIALOGUE, "\x17nothing to see\n"]
