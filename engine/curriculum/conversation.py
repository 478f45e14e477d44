"""A conversation being written into a labelled stream: facts, talk, tools, impulses, commitments.

Each method appends whole turns in the stream format of ``prompts.stream`` with
the opcode conventions of its docstring. The generators in ``episodes`` decide
the order; this module knows how each kind of exchange is written.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

import prompts
from prompts import stream

from engine.curriculum import vocab
from engine.curriculum.example import COMMIT_CLOSE, COMMIT_OPEN, Builder
from engine.curriculum.mix import Mix

_SLOT = re.compile(r"\{(k|v|old|t|n)\}")


@dataclass
class Fact:
    fid: str
    key: str
    value: str


_ORDINALS = ("first", "second", "third", "fourth", "fifth")


def _definition_names(text: str, name: str, uid: int) -> list[tuple[int, str, Fact]] | None:
    """Where a tool definition's function and parameter names are chosen ("write") and repeated
    ("read"): [(offset in ``text``, mode, fact)] in text order, or None if the text is not laid
    out as ``tools.definition_json`` writes it (then it is written plain)."""
    try:
        params = list(json.loads(text)["parameters"]["properties"])
    except (ValueError, KeyError, TypeError):
        return None
    marks: list[tuple[int, str, Fact]] = []
    fn = Fact(f"t{uid}n", "tool name", name)
    first, call = text.find(f'"name": "{name}"'), text.find(f'"implementation": "def {name}(')
    props, req = text.find('"properties": {'), text.find('"required": [')
    if min(first, call, props, req) < 0 or len(params) > len(_ORDINALS):
        return None
    marks += [(first + len('"name": "'), "write", fn), (call + len('"implementation": "def '), "read", fn)]
    args_at = call + len(f'"implementation": "def {name}(')
    if not text.startswith(", ".join(params) + ")", args_at):
        return None
    for i, p in enumerate(params):
        fact = Fact(f"t{uid}p{i}", f"tool {_ORDINALS[i]}", p)
        w, r = text.find(f'"{p}": {{', props), text.find(f'"{p}"', req)
        if w < 0 or r < 0:
            return None
        marks += [(w + 1, "write", fact), (r + 1, "read", fact), (args_at, "read", fact)]
        args_at += len(p) + 2
    marks.sort(key=lambda m: m[0])
    return marks


class Conversation:
    """Writes exchanges into a :class:`Builder`, remembering which facts are live."""

    def __init__(self, rng: random.Random, split: str, n_buckets: int, answer_weight: float = 5.0,
                 mix: Mix = Mix()):
        vocab.nouns(split)  # validates the split
        self.rng = rng
        self.split = split
        self.mix = mix  # the tool options: more wordings, failed calls
        self.b = Builder(n_buckets, answer_weight)
        self.live: dict[str, Fact] = {}
        self.forgotten: list[Fact] = []
        self.used_keys: set[str] = set()
        self.open_tasks: list[str] = []
        self.answers: list[dict] = []  # spans of recalled values: {"fact", "start", "end", "value"}
        self._n = 0

    def __len__(self) -> int:
        return len(self.b)

    # -- helpers ------------------------------------------------------------
    def _segments(self, template: str, fact: Fact | None, mode: str, old: str = "",
                  **plain: str) -> None:
        """Write ``template``: ``{v}`` as a write/read/clear/plain value, ``{old}`` cleared."""
        pos = 0
        for m in _SLOT.finditer(template):
            self.b.plain(template[pos:m.start()])
            name = m.group(1)
            if name == "k":
                self.b.plain(fact.key)
            elif name == "v":
                if mode == "write":
                    self.b.write(fact.fid, fact.key, fact.value)
                elif mode == "read":
                    start = len(self.b)
                    self.b.read(fact.fid, fact.key, fact.value)
                    self.answers.append({"fact": fact.fid, "key": fact.key, "value": fact.value,
                                         "start": start, "end": len(self.b)})
                elif mode == "clear":
                    self.b.clear(fact.fid, fact.key, fact.value)
                else:
                    self.b.plain(fact.value)
            elif name == "old":
                self.b.clear(fact.fid, fact.key, old)
            else:
                self.b.plain(plain[name])
            pos = m.end()
        self.b.plain(template[pos:])

    def _user(self, template: str, fact: Fact | None = None, mode: str = "plain", **kw) -> None:
        self.b.open_turn(stream.USER)
        self._segments(template, fact, mode, **kw)
        self.b.close_turn(model_turn=False)

    def _bot(self, template: str, fact: Fact | None = None, mode: str = "plain",
             commit: int | None = None, **kw) -> None:
        self.b.open_turn(stream.BOT, respond=True)
        self._segments(template, fact, mode, **kw)
        self.b.close_turn(model_turn=True, commit=commit)

    def new_fact(self) -> Fact:
        """A fact with a key not used before in this conversation."""
        for _ in range(100):
            key = vocab.make_key(self.rng, self.split)
            if key not in self.used_keys:
                break
        self.used_keys.add(key)
        self._n += 1
        return Fact(f"f{self._n}", key, vocab.make_value(self.rng))

    # -- facts --------------------------------------------------------------
    def tell(self, fact: Fact | None = None) -> Fact:
        """The user tells a fact: WRITE on its value bytes; the bot acknowledges."""
        fact = fact or self.new_fact()
        self._user(self.rng.choice(vocab.templates(vocab.TELL, self.split)), fact, "write")
        self.b.events[-1]["told_end"] = len(self.b)
        self._bot(self.rng.choice(vocab.ACK))
        self.live[fact.fid] = fact
        return fact

    def ask(self, fact: Fact) -> None:
        """The user asks; the bot recalls the value: READ before each value byte."""
        self._user(self.rng.choice(vocab.templates(vocab.ASK, self.split)), fact)
        self._bot(self.rng.choice(vocab.ANSWER), fact, "read")

    def update(self, fact: Fact) -> bool:
        """A new value for a live fact: old bytes cleared (when named), new bytes written.
        Returns whether the update named (and so cleared) the old value."""
        old = fact.value
        new = vocab.make_value(self.rng)
        while new == old:
            new = vocab.make_value(self.rng)
        fact.value = new
        named = self.rng.random() < 0.5
        if named:
            self._user(self.rng.choice(vocab.REPLACE), fact, "write", old=old)
        else:
            self.b.drop(fact.fid)
            self._user(self.rng.choice(vocab.templates(vocab.UPDATE, self.split)), fact, "write")
        self._bot(self.rng.choice(vocab.ACK))
        return named

    def forget(self, fact: Fact) -> None:
        """The user asks to forget a fact: CLEAR on its value bytes."""
        self._user(self.rng.choice(vocab.templates(vocab.FORGET, self.split)), fact, "clear")
        self._bot(self.rng.choice(vocab.FORGET_ACK))
        self.live.pop(fact.fid, None)
        self.forgotten.append(fact)

    def ask_forgotten(self, fact: Fact) -> None:
        """Asking for a forgotten fact: the bot says it does not know (no READ)."""
        self._user(self.rng.choice(vocab.templates(vocab.ASK, self.split)), fact)
        self._bot(self.rng.choice(vocab.UNKNOWN), fact)

    def replay(self, fact: Fact) -> None:
        """Cue-free recall, as consolidation asks for it: a REPLAY turn reading the value."""
        self.b.open_turn(stream.REPLAY)
        self._segments("the {k} is {v}", fact, "read")
        self.b.close_turn(model_turn=True)

    # -- talk ---------------------------------------------------------------
    def small_talk(self) -> None:
        line, reply = self.rng.choice(vocab.SMALL_TALK)
        self._user(line)
        self._bot(reply)

    def lookalike(self) -> None:
        """Talk that mentions a key-like phrase (never with a value to remember)."""
        key = vocab.make_key(self.rng, self.split)
        fake = Fact("-", key, "")
        self._user(self.rng.choice(vocab.LOOKALIKE), fake, n=str(self.rng.randint(2, 99)))
        self._bot(self.rng.choice(vocab.LOOKALIKE_REPLY))

    def greet(self) -> None:
        """A greeting and its reply (how a chat usually starts)."""
        line, reply = self.rng.choice(vocab.GREETINGS)
        self._user(line)
        self._bot(reply)

    def distractor(self) -> None:
        if self.rng.random() < 0.6:
            self.small_talk()
        else:
            self.lookalike()

    # -- commitments and impulses ---------------------------------------------
    def promise(self) -> None:
        """The bot opens a commitment: COMMIT (open) at the END of its reply."""
        task = self.rng.choice([t for t in vocab.tasks(self.split) if t not in self.open_tasks]
                               or vocab.tasks(self.split))
        self._user(self.rng.choice(vocab.templates(vocab.PROMISE, self.split)), t=task)
        self._bot(self.rng.choice(vocab.PROMISE_REPLY), commit=COMMIT_OPEN, t=task)
        self.open_tasks.append(task)

    def close_by_user(self) -> None:
        """The user reports a task done: the bot closes the commitment (COMMIT close)."""
        task = self.open_tasks.pop(self.rng.randrange(len(self.open_tasks)))
        self._user(self.rng.choice(vocab.DONE), t=task)
        self._bot(self.rng.choice(vocab.DONE_REPLY), commit=COMMIT_CLOSE, t=task)

    def impulse(self, kind: str | None = None) -> str:
        """An impulse as the runtime renders it (template of its drive, numbers as ``f"{x:.3g}"``),
        with the fitting response.

        memory pressure, idle time, unconsolidated writes and other drives: nothing worth saying
        (IDLE on the impulse's END), so the runtime idles and consolidation prunes and replays;
        low confidence: a clarifying question (RESPOND); open commitments: a follow-up of the
        oldest one that closes it (RESPOND, COMMIT close).
        """
        kinds = ["memory_pressure", "low_confidence", "idle", "unconsolidated", "generic"]
        if kind is None and self.open_tasks and self.rng.random() < 0.4:
            kind = "open_commitment"  # the only impulse whose fitting answer closes a commitment
        kind = kind or self.rng.choice(kinds)
        rng = self.rng
        g = lambda x: f"{x:.3g}"  # noqa: E731 - the runtime's number format
        if kind == "low_confidence":
            # what makes confidence low: a line the model could not make sense of
            self._user(" ".join("".join(rng.choice("qwrtzpsdfgklxcvbnm") for _ in range(rng.randint(2, 6)))
                                for _ in range(rng.randint(2, 5))) + "?")
        start = len(self.b)
        if kind == "memory_pressure":
            text = prompts.render("impulse_memory_pressure", value=g(rng.uniform(0.86, 1.0)), high=g(0.85))
        elif kind == "low_confidence":
            text = prompts.render("impulse_low_confidence", value=g(rng.uniform(0.86, 1.0)), high=g(0.85))
        elif kind == "open_commitment":
            text = prompts.render("impulse_open_commitment", value=g(len(self.open_tasks)))
        elif kind == "idle":
            text = prompts.render("impulse_idle", value=g(rng.uniform(601, 5000)), high=g(600.0))
        elif kind == "unconsolidated":
            text = prompts.render("impulse_unconsolidated", value=g(rng.randint(513, 4000)), high=g(512.0))
        else:
            drive = rng.choice(["routing_entropy", "write_rate", "memory_occupancy", "logit_entropy"])
            low = rng.uniform(0.0, 0.4)
            high = low + rng.uniform(0.2, 0.5)
            text = prompts.render("impulse_generic", drive=drive, value=g(high + rng.uniform(0.05, 0.4)),
                                  low=g(low), high=g(high))
        self.b.turn(stream.IMPULSE, text)
        end_of_impulse = len(self.b) - 1
        if kind == "low_confidence":
            self._bot(prompts.get("clarify"))
        elif kind == "open_commitment":
            task = self.open_tasks.pop(0)
            self._bot(rng.choice(vocab.FOLLOW_UP), commit=COMMIT_CLOSE, t=task)
        else:
            self.b.idle_after_world_turn()
        self.b.events.append({"kind": "impulse", "impulse": kind, "start": start,
                              "impulse_end": end_of_impulse, "end": len(self.b)})
        return kind

    # -- tools --------------------------------------------------------------
    def tool_request(self, tool, split: str | None = None) -> None:
        """A request for a new tool answered by its definition (a TOOL_DEF turn, IDLE at its END).

        The definition names its function and its parameters more than once, up to 250 bytes
        apart (``"name": "f"`` ... ``def f(``; ``"properties": {"a": ...`` ... ``"required": ["a"]``
        ... ``(a)``), too far for the registers to carry reliably: each name is WRITTEN where it
        is first chosen and READ where it is repeated, as a fact would be.
        """
        from engine.curriculum import tools as toolset
        self._user(toolset.request_text(tool, self.rng, split or self.split, self.mix.more_phrases))
        start = len(self.b)
        text = stream.clean(toolset.definition_json(tool))
        self.b.open_turn(stream.TOOL_DEF)
        pos = 0
        for at, mode, fact in _definition_names(text, tool.name, start) or []:
            self.b.plain(text[pos:at])
            if mode == "write":
                self.b.write(fact.fid, fact.key, fact.value, weight=1.0)
            else:
                self.b.read(fact.fid, fact.key, fact.value)
            pos = at + len(fact.value)
        self.b.plain(text[pos:])
        self.b.close_turn(model_turn=True)
        self.b.events.append({"kind": "tool_def", "tool": tool.name, "start": start, "end": len(self.b)})
        self._bot("I proposed a tool named {n}. it runs once you approve it.", n=tool.name)

    def tool_call(self, tool) -> None:
        """A request answered by calling a tool: TOOL_CALL, the world's TOOL_RESULT, a reply that
        recalls the result (WRITE on the result's bytes, READ where the reply repeats them).

        Each argument the user names is WRITTEN where the request says it and READ where the
        TOOL_CALL repeats it (a request is often longer than the registers carry a string), when
        the call's JSON spells it with the same bytes (strings, numbers, lists of numbers).
        """
        from engine.curriculum import tools as toolset
        args = tool.sample(self.rng)
        facts = {k: Fact(f"a{len(self.b)}.{i}", f"tool {_ORDINALS[i]} argument", _spelled(v))
                 for i, (k, v) in enumerate(args.items())
                 if i < len(_ORDINALS) and _rememberable(_spelled(v)) and _spelled(v) == _json_inner(v)}
        self.b.open_turn(stream.USER)
        if self.rng.random() >= 0.7:
            self.b.plain("please ")
        self._call_segments(tool.call, args, facts)
        self.b.close_turn(model_turn=False)
        self.b.open_turn(stream.TOOL_CALL)
        head = json.dumps({"name": tool.name, "args": {}})[:-2]
        self.b.plain(head)
        for i, (k, v) in enumerate(args.items()):
            self.b.plain((", " if i else "") + json.dumps(k) + ": ")
            if k in facts:
                quote = '"' if isinstance(v, str) else ""
                self.b.plain("[" if isinstance(v, list) else quote)
                self.b.read(facts[k].fid, facts[k].key, facts[k].value)
                self.b.plain("]" if isinstance(v, list) else quote)
            else:
                self.b.plain(json.dumps(v))
        self.b.plain("}}")
        self.b.close_turn(model_turn=True)
        if self.mix.failures and self.rng.random() < self.mix.failures:
            self._failed_call(tool)
            return
        result = toolset.run_reference(tool, args)
        shown = stream.shown_result(result)
        fact = Fact(f"r{len(self.b)}", "tool result", shown)
        remember = _rememberable(shown) and (not isinstance(result, str) or _json_inner(shown) == shown)
        head = '{"ok": true, "result": ' + ('"' if isinstance(result, str) else "")
        tail = ('"' if isinstance(result, str) else "") + "}"
        self.b.open_turn(stream.TOOL_RESULT)
        self.b.plain(head)
        if remember:
            self.b.write(fact.fid, fact.key, fact.value)
        else:
            self.b.plain(json.dumps(result)[1:-1] if isinstance(result, str) else shown)
        self.b.plain(tail)
        self.b.close_turn(model_turn=False)
        self._bot(self.rng.choice(("the result is {v}.", "done: {v}.", "here it is: {v}.")),
                  fact, "read" if remember else "plain")

    def _failed_call(self, tool) -> None:
        """The world's TOOL_RESULT of a failed call and the reply that says it gave no result."""
        from engine.curriculum import tools as toolset
        kind, error = toolset.failure(tool, self.rng)
        self.b.open_turn(stream.TOOL_RESULT)
        self.b.plain(json.dumps({"ok": False, "error": error}, ensure_ascii=False))
        self.b.close_turn(model_turn=False)
        self._bot(self.rng.choice(toolset.FAILURE_REPLIES[kind]))

    def _call_segments(self, template: str, args: dict, facts: dict[str, Fact]) -> None:
        """A call request's template with its ``{param}`` slots: labelled arguments written."""
        pos = 0
        for m in re.finditer(r"\{(\w+)\}", template):
            self.b.plain(template[pos:m.start()])
            name = m.group(1)
            if name in facts:
                self.b.write(facts[name].fid, facts[name].key, facts[name].value)
            else:
                self.b.plain(_spelled(args[name]))
            pos = m.end()
        self.b.plain(template[pos:])


def _spelled(value) -> str:
    """An argument as a request spells it (lists as "1, 2, 3")."""
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _json_inner(value) -> str:
    """An argument as the call's JSON spells it, without the quotes or brackets around it."""
    text = json.dumps(value)
    return text[1:-1] if isinstance(value, (str, list)) else text


def _rememberable(text: str) -> bool:
    """Only short single-line values are remembered byte by byte (tool results and arguments)."""
    return 0 < len(text.encode("utf-8")) <= 16 and text == stream.clean(text)
