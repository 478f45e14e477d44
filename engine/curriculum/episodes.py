"""Whole labelled examples: training mixtures and the evaluation episodes.

Everything is deterministic by seed: ``training_example(seed, ...)`` builds the
same bytes and labels for the same arguments on every machine.
"""
from __future__ import annotations

import random

from prompts import stream

from engine.curriculum import tools as toolset
from engine.curriculum.conversation import Conversation
from engine.curriculum.example import Example
from engine.curriculum.mix import P_GREETING, Mix


def max_facts_for(length: int) -> int:
    """Competing facts a sequence of ``length`` bytes can hold (~70 bytes per told fact)."""
    return max(1, min(32, length // 90))


def _burst(conv: Conversation, rng: random.Random, length: int) -> None:
    """Rounds of: tell up to ``max_facts_for(length)`` facts in a row, some distractor talk, then
    ask every live fact once in random order (sometimes updating or forgetting one first)."""
    while len(conv) < length:
        for _ in range(rng.randint(2, max(2, max_facts_for(length)))):
            conv.tell()
        for _ in range(rng.choice((0, 0, 1, 2, 4, 8))):
            conv.distractor()
        live = list(conv.live.values())
        if live and rng.random() < 0.3:
            rng.choice((conv.update, conv.forget))(rng.choice(live))
        if conv.forgotten and rng.random() < 0.5:
            conv.ask_forgotten(rng.choice(conv.forgotten))
        live = list(conv.live.values())
        rng.shuffle(live)
        for fact in live:
            conv.ask(fact)
            if rng.random() < 0.1:
                conv.distractor()


def training_example(seed: int, length: int, n_buckets: int, split: str = "train",
                     answer_weight: float = 5.0, style: str | None = None, mix: Mix = Mix()) -> Example:
    """One conversation of exactly ``length`` bytes (cut at the end) with every label.

    Facts are told, asked (after gaps of every length from zero), updated, forgotten
    and replayed among distractor talk, tool requests and calls, impulses and commitments,
    in the proportions of ``mix``.
    """
    rng = random.Random(f"mosaic-curriculum/{split}/{seed}")
    conv = Conversation(rng, split, n_buckets, answer_weight, mix=mix)
    styles = mix.styles()
    style = style or rng.choices([s for s, _ in styles], [w for _, w in styles])[0]
    n_facts = rng.randint(1, max_facts_for(length))
    if rng.random() < P_GREETING:
        conv.greet()
    if style == "burst":
        _burst(conv, rng, length)
        return conv.b.build(length, meta={"seed": seed, "split": split, "style": style, "facts": len(conv.live)})
    p_ask = rng.uniform(0.15, 1.0)    # small: long gaps; large: questions right after telling
    p_talk = rng.uniform(0.0, 0.8)
    w_other = {"facts": 0.1, "mixed": 0.6, "tools": 2.0, "agent": 2.0}[style]
    told = 0
    while len(conv) < length:
        live = list(conv.live.values())
        acts: list[tuple[str, float]] = []
        if told < n_facts:
            acts.append(("tell", 1.0))
        if live:
            acts += [("ask", 2 * p_ask), ("update", 0.08), ("forget", 0.05), ("replay", 0.15)]
        if conv.forgotten:
            acts.append(("ask_forgotten", 0.2))
        acts.append(("talk", 2 * p_talk + (0.3 if not live and told >= n_facts else 0.0)))
        if style in ("mixed", "tools"):
            acts += [("tool_call", 0.4 * w_other), ("tool_def", 0.2 * w_other)]
        if style in ("mixed", "agent"):
            acts += [("impulse", 0.3 * w_other), ("promise", 0.15 * w_other)]
            if conv.open_tasks:
                acts.append(("close", 0.15 * w_other))
        act = rng.choices([a for a, _ in acts], [w for _, w in acts])[0]
        if act == "tell":
            conv.tell()
            told += 1
        elif act == "ask":
            conv.ask(rng.choice(live))
        elif act == "update":
            conv.update(rng.choice(live))
        elif act == "forget":
            conv.forget(rng.choice(live))
        elif act == "ask_forgotten":
            conv.ask_forgotten(rng.choice(conv.forgotten))
        elif act == "replay":
            conv.replay(rng.choice(live))
        elif act == "talk":
            conv.distractor()
        elif act == "tool_call":
            conv.tool_call(rng.choice(toolset.TOOLS))
        elif act == "tool_def":
            conv.tool_request(rng.choice(toolset.TOOLS))
        elif act == "impulse":
            conv.impulse()
        elif act == "promise":
            conv.promise()
        elif act == "close":
            conv.close_by_user()
    return conv.b.build(length, meta={"seed": seed, "split": split, "style": style, "facts": n_facts})


def recall_example(seed: int, n_facts: int, distance: int, n_buckets: int, split: str = "heldout",
                   answer_weight: float = 5.0) -> Example:
    """The recall benchmark: ``n_facts`` facts told one after another, then distractor talk
    until ``distance`` bytes separate the end of the last telling from the first question,
    then every fact asked once in random order.

    ``meta["answers"]`` lists the spans of answer bytes: exact match means the model
    predicts every byte of a span; ``meta["keys"]`` the key each answer is asked by.
    """
    rng = random.Random(f"mosaic-recall/{split}/{seed}/{n_facts}/{distance}")
    conv = Conversation(rng, split, n_buckets, answer_weight)
    facts = [conv.tell() for _ in range(n_facts)]
    told_end = len(conv)
    while len(conv) - told_end < distance:
        conv.distractor()
    gap = len(conv) - told_end
    rng.shuffle(facts)
    for fact in facts:
        conv.ask(fact)
    ex = conv.b.build(meta={"seed": seed, "facts": n_facts, "distance": gap, "split": split})
    ex.meta["answers"] = [(a["start"], a["end"]) for a in conv.answers]
    ex.meta["keys"] = [a["key"] for a in conv.answers]
    return ex


def _talk(conv: Conversation, rng: random.Random) -> None:
    """Two to six distractor exchanges between the tellings and what follows them."""
    for _ in range(rng.randint(2, 6)):
        conv.distractor()


def update_example(seed: int, n_facts: int, n_buckets: int, split: str = "heldout") -> Example:
    """The update benchmark: ``n_facts`` facts told, some talk, half of them given new values
    (both phrasings: naming the old value or not), more talk, then every fact asked once.

    ``meta["answers"]`` lists (start, end, updated) per answer: an updated fact must come back
    with its new value; ``meta["old_values"]`` the value each answer had before (None if not updated),
    ``meta["old_named"]`` whether its update named the old value (and so CLEARed its bytes).
    """
    rng = random.Random(f"mosaic-update/{split}/{seed}/{n_facts}")
    conv = Conversation(rng, split, n_buckets)
    facts = [conv.tell() for _ in range(n_facts)]
    _talk(conv, rng)
    changed = rng.sample(facts, max(1, n_facts // 2))
    old = {f.fid: f.value for f in changed}
    named = {f.fid: conv.update(f) for f in changed}
    _talk(conv, rng)
    first = len(conv.answers)
    rng.shuffle(facts)
    for fact in facts:
        conv.ask(fact)
    ex = conv.b.build(meta={"seed": seed, "facts": n_facts, "split": split})
    ids = {f.fid for f in changed}
    ex.meta["answers"] = [(a["start"], a["end"], a["fact"] in ids) for a in conv.answers[first:]]
    ex.meta["old_values"] = [old.get(a["fact"]) for a in conv.answers[first:]]  # None: not updated
    ex.meta["old_named"] = [named.get(a["fact"], False) for a in conv.answers[first:]]
    return ex


def forget_example(seed: int, n_facts: int, n_buckets: int, split: str = "heldout") -> Example:
    """The forgetting benchmark: ``n_facts`` facts told, some talk, half of them forgotten ("you
    can drop it: the X is V"), more talk, then every fact asked once in random order.

    ``meta["answers"]`` lists (start, end) of the kept facts' answers (exact match, as recall);
    ``meta["forgotten"]`` lists (prompt_end, key, value) per forgotten fact's question: the
    stream up to ``prompt_end`` ends in the reply's BOT role byte, whose text should say the
    value is unknown and must not give it.
    """
    rng = random.Random(f"mosaic-forget/{split}/{seed}/{n_facts}")
    conv = Conversation(rng, split, n_buckets)
    facts = [conv.tell() for _ in range(n_facts)]
    _talk(conv, rng)
    gone = rng.sample(facts, max(1, n_facts // 2))
    for fact in gone:
        conv.forget(fact)
    _talk(conv, rng)
    first = len(conv.answers)
    rng.shuffle(facts)
    forgotten = []
    for fact in facts:
        if fact in gone:
            start = len(conv)
            conv.ask_forgotten(fact)
            forgotten.append((start, fact.key, fact.value))
        else:
            conv.ask(fact)
    ex = conv.b.build(meta={"seed": seed, "facts": n_facts, "split": split})
    ex.meta["answers"] = [(a["start"], a["end"]) for a in conv.answers[first:]]
    ids = bytes(ex.ids.astype("uint8"))
    # the question's user turn ends in END; the reply's role byte follows it
    ex.meta["forgotten"] = [(ids.index(stream.END.encode(), start) + 2, k, v) for start, k, v in forgotten]
    return ex


def impulse_example(seed: int, kind: str, n_buckets: int, split: str = "heldout",
                    context_turns: int = 3) -> Example:
    """A short conversation ending in one impulse of ``kind`` and its fitting response.

    ``meta["impulse"]`` holds the kind and the positions whose opcodes decide whether
    the model answered it fittingly (``checks``: list of (position, opcode)) and, when
    the model must reply, the position whose next byte must be the BOT role byte.
    """
    rng = random.Random(f"mosaic-impulse/{split}/{seed}/{kind}")
    conv = Conversation(rng, split, n_buckets)
    for _ in range(rng.randint(0, context_turns)):
        conv.distractor()
    if kind == "open_commitment":
        conv.promise()
        for _ in range(rng.randint(0, context_turns)):
            conv.distractor()
    conv.impulse(kind)
    event = conv.b.events[-1]
    ex = conv.b.build(meta={"seed": seed, "kind": kind, "split": split})
    end = event["impulse_end"]
    from engine.curriculum.example import COMMIT, IDLE, NOP, RESPOND
    # the impulse's END decides (IDLE = nothing to say, NOP = go on to a reply); then every
    # RESPOND / IDLE / COMMIT of the reply
    checks = [(p, int(ex.opcode[p])) for p in range(end, event["end"])
              if p == end or ex.opcode[p] in (IDLE, RESPOND, COMMIT)]
    reply = end if ex.opcode[end] == NOP and end + 1 < len(ex) and ex.ids[end + 1] == ord(stream.BOT) else -1
    ex.meta["impulse"] = {"kind": kind, "checks": checks, "reply_at": reply}
    return ex


def tool_request_prompt(tool: toolset.Tool, seed: int, split: str = "heldout") -> tuple[str, str]:
    """A held-out request for ``tool`` as a stream prefix ending in the TOOL_DEF role byte,
    and the reference definition JSON it should be answered with (split "blind": seeds 0, 1, ...
    take the tool's blind wordings in turn)."""
    rng = random.Random(f"mosaic-tool/{split}/{seed}/{tool.name}")
    prefix = stream.user(toolset.request_text(tool, rng, split, index=seed)) + stream.TOOL_DEF
    return prefix, toolset.definition_json(tool)


IMPULSE_KINDS = ("memory_pressure", "low_confidence", "open_commitment", "idle", "unconsolidated", "generic")
