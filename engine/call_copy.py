"""Copied tool values: the bytes a TOOL_CALL turn may write next inside an argument value, and
those a reply may write where it recalls a tool's result.

A call's string and number arguments are spans of the request that asked for it ("please make
'good day' upper case" -> ``{"name": "to_upper", "args": {"text": "good day"}}``): the curriculum
teaches calls that copy them, and the model copies loosely (a made-up word drifts after two or
three letters). :class:`CallCopier` holds the request and, given the call written so far, names
the bytes that keep the value being written a span of it; the decoder masks every other byte,
as grammar-constrained decoding masks bytes that break a grammar. The model still chooses among
the allowed bytes, and the value's start, end and type.

Where a value starts, ends and what a span may be:
- a string value is a span that starts a word of the request (its first character, neither a
  space nor a quote, begins the request or follows a character that is not a letter or digit) and
  closes where the span is followed in the request by a character that is not a letter or digit,
  or ends it; a span that begins after a quote closes at that quote and nowhere else
  ("make 'good day' upper case" gives "good day", never "good"); outside a list its first
  character is the model's (a value recalled from earlier may come), and where that begins a word
  of the request, the span goes on from there;
- a number value that begins like one of the request's numbers (``-?\\d+(\\.\\d+)?``) is that
  number whole: its bytes extend one, and it ends only where it equals one (its first digit is
  free outside a list: a value the request does not hold, recalled from earlier, may come);
- an array's first value starts where one of the request's lists begins (two or more words or
  numbers in a row, with only a comma or "and" between them, or spaces between numbers), when it
  has one; its values after the first follow the request's order: each starts at the first place
  after the one before where a value of its kind may start ("add up 37, 49, 5" -> [37, 49, 5]),
  and the array ends where the request's list ends (the next value would not follow its last
  after a comma or "and", or spaces between numbers), not before and not after;
- the args object's keys are the named tool's parameters, each once, when the copier knows that
  tool (``params``: the registered tools in chat, the curriculum's in the eval); the tool's name
  and everything outside ``"args"`` are not constrained; nor is a string value that the request
  cannot continue (a value it does not hold: the model writes it as it will).

The reply after a TOOL_RESULT turn shows the result ("done: GOOD DAY."), recalled from memory:
the curriculum labels READ_MEM at every position whose next byte is recalled, and the model's own
opcode says so too. :class:`ResultCopier`: where the reply's opcode first turns READ_MEM, the
result is written whole (the model decides where it goes, the bytes are the result's), and the
reply ends after it as the curriculum's do ("." and END: nothing after the value). Results
that the curriculum does not hold in memory (lists of words, long text) are written without
READ_MEM; a list or an object result is copied from where the reply writes its opening bracket,
a long text as the model writes it.

Pure functions of text (and :func:`restrict`, which applies what they allow to logits).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import torch

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ARGS = '"args":'
_NAME = re.compile(r'^\s*\{\s*"name":\s*"([^"\\]*)"')
_NUMBER_END = frozenset(b",}] \n")
_QUOTES = "'\""
_SEPARATOR = re.compile(r"\s*(?:,\s*(?:and\s+)?|and\s+)")   # between two items of a list
_NUMBER_SEPARATOR = re.compile(r"\s*(?:,\s*(?:and\s+)?|and\s+)|\s+")
_REPLY_END = ".\n"   # how the curriculum's replies after a result end ("done: {v}.", then END)
_WORD = re.compile(r"[^\s,'\"?!.;:()]+")


def _list_starts(source: str, token: re.Pattern, separator: re.Pattern) -> list[int]:
    """The starts of the runs of two or more ``token`` matches joined by ``separator`` alone."""
    found = list(token.finditer(source))
    starts = []
    for i, (a, b) in enumerate(zip(found, found[1:])):
        joined = separator.fullmatch(source, a.end(), b.start())
        before = i > 0 and separator.fullmatch(source, found[i - 1].end(), a.start())
        if joined and not before and a.group() != "and":
            starts.append(a.start())
    return starts


@dataclass
class _Where:
    """Where a call's JSON so far stands inside its ``"args"`` object: ``kind`` "string" (inside a
    string value, ``cur`` its text so far), "number" (``cur`` its characters so far), "value"
    (a value may start), "after" (an array's value has just ended), "key" (inside a key of the
    args object itself, ``cur`` its text so far) or "next" (a value of the args object itself has
    just ended); ``items``: the values an array holding it has already (for "after", the one just
    ended included), else None; ``keys``: the args object's keys so far (for "key" and "next")."""
    kind: str
    cur: str = ""
    items: list[str] | None = None
    keys: tuple[str, ...] = ()


def _scan(text: str) -> _Where | None:
    """Where ``text`` (a TOOL_CALL turn's JSON so far) stands inside its ``"args"`` object; None
    elsewhere (before ``"args"``, in a key, after the object)."""
    at = text.find(_ARGS)
    if at < 0:
        return None
    stack: list[tuple[str, list[str]]] = []   # per open container: "{" or "[", and an array's values
    expect_value = True            # the next token is a value (not a key)
    in_string = is_key = escaped = False
    cur = ""
    number: str | None = None
    after = False                  # nothing but spaces since a value ended
    keys: list[str] = []           # the args object's own keys so far

    def done(value: str) -> None:
        if stack and stack[-1][0] == "[":
            stack[-1][1].append(value)

    for ch in text[at + len(_ARGS):]:
        if in_string:
            if escaped:
                escaped = False
                cur += ch
            elif ch == "\\":
                escaped = True
                cur += ch
            elif ch == '"':
                in_string = False
                expect_value = False
                if not is_key:
                    done(cur)
                    after = True
                elif len(stack) == 1:
                    keys.append(cur)
            else:
                cur += ch
            continue
        if number is not None:
            if ch.isdigit() or ch in "-.":
                number += ch
                continue
            done(number)
            number = None
            expect_value = False
            after = True
        if not ch.isspace():
            after = False
        if ch == '"':
            in_string, is_key, cur = True, not expect_value, ""
        elif ch in "{[":
            stack.append((ch, []))
            expect_value = ch == "["
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None         # the args object is closed: nothing more to copy
            expect_value = False
            after = len(stack) == 1  # a value of the args object (an array) has ended
        elif ch == ":":
            expect_value = True
        elif ch == ",":
            expect_value = bool(stack) and stack[-1][0] == "["
        elif (ch.isdigit() or ch == "-") and expect_value and stack:
            number = ch
        elif not ch.isspace():
            expect_value = False    # true, false, null or something the JSON will refuse
    items = stack[-1][1] if stack and stack[-1][0] == "[" else None
    if in_string:
        if is_key:
            return _Where("key", cur, keys=tuple(keys)) if len(stack) == 1 else None
        return _Where("string", cur, items) if stack else None
    if number is not None:
        return _Where("number", number, items)
    if after and items:
        return _Where("after", "", items)
    if after and len(stack) == 1:
        return _Where("next", keys=tuple(keys))
    return _Where("value", "", items) if expect_value and stack else None


class CallCopier:
    """The request a call answers; :meth:`allowed` masks what a call's argument value may write.

    ``source``: the request's text (a user line without its role byte or END). ``params``: the
    parameter names of the tools that may be called (by tool name): the args object of a call
    that names one of them takes only its parameters as keys, each once."""

    def __init__(self, source: str, params: dict[str, list[str]] | None = None):
        self.source = source
        self.params = params or {}
        # where a string value may begin: a word's start (not at a space or a quote)
        self._starts = [i for i, ch in enumerate(source) if (i == 0 or not source[i - 1].isalnum())
                        and not ch.isspace() and ch not in _QUOTES]
        # where a list's next item may begin: a word's start, but not "and" between two items
        self._item_starts = [i for i in self._starts if not source.startswith("and ", i)]
        self._numbers = [(m.start(), m.group()) for m in _NUMBER.finditer(source)]
        # where the request's lists begin: the first of two or more words (numbers) in a row with
        # only a comma or "and" between them (or spaces, between numbers)
        self._word_lists = _list_starts(source, _WORD, _SEPARATOR)
        self._number_lists = _list_starts(source, _NUMBER, _NUMBER_SEPARATOR)

    def allowed(self, text: str) -> set[int] | None:
        """The bytes the call may write after ``text`` (its JSON so far, without the role byte),
        or None where any byte may come (no value is being written, or the request cannot
        continue this one)."""
        where = _scan(text)
        if where is None:
            return None
        if where.kind in ("key", "next"):
            return self._key(text, where.cur, where.keys, after_value=where.kind == "next")
        if where.kind == "after":           # the array ends where the request's list ends
            return {ord(",")} if self._list_goes_on(where.items) else {ord("]")}
        at = self._cursor(where.items)
        first = where.items == []           # an array's first value: where a list of the request begins
        if where.kind == "string":
            if where.items is None and not where.cur:
                return None                 # its first character is free: a value from memory may come
            if first and self._word_lists:
                starts = self._word_lists
            else:
                starts = self._starts if at is None else self._firsts(self._item_starts, at)
            return self._string(where.cur, starts)
        numbers = self._number_lists if first and self._number_lists else \
            self._firsts([s for s, _ in self._numbers], at)
        if where.kind == "number":
            allowed = self._number(where.cur, numbers)
            if allowed is not None and where.items is not None and ord(",") in allowed:
                # a whole number of a list: the array goes on, or ends, with the request's list
                allowed -= set(b"]}\n") if self._list_goes_on(where.items + [where.cur]) else {ord(",")}
            return allowed
        # a value starts: any type the model likes (a number from memory too); in a list, a number
        # begins the request's next one
        if where.items is None:
            return None
        starts = {ord(n[0]) for s, n in self._numbers if s in numbers}
        return None if not starts else starts | {ord(c) for c in '"[{tfn '}

    def _cursor(self, items: list[str] | None) -> set[int] | None:
        """Where an array's values so far end in the request, each after the first taken at the
        first place after the one before where a value of its kind starts: an array copies the
        request's list in its order. None: no such order (not in an array, its first value, or
        values the request does not hold in that order)."""
        if not items:
            return None
        at: set[int] | None = None      # the first value may start anywhere
        numbers = [s for s, _ in self._numbers]
        for item in items:
            starts = numbers if _NUMBER.fullmatch(item) else self._item_starts
            ends = {s + len(item) for s in self._firsts(starts, at) if self.source.startswith(item, s)}
            if not ends:
                return None
            at = ends
        return at

    def _key(self, text: str, cur: str, used: tuple[str, ...],
             after_value: bool = False) -> set[int] | None:
        """A key of the args object: the rest of a parameter of the named tool not given yet; or,
        after a value (``after_value``), the object's end once every parameter is given."""
        m = _NAME.search(text)
        names = self.params.get(m.group(1)) if m else None
        if not names:
            return None             # a tool these parameters do not describe: the model's keys
        if after_value:
            return {ord("}")} if set(names) <= set(used) else None
        left = [n for n in names if n not in used and n.startswith(cur)]
        out = {ord(n[len(cur)]) for n in left if len(n) > len(cur)} | ({ord('"')} if cur in left else set())
        return out or None

    def _list_goes_on(self, items: list[str]) -> bool:
        """Whether the request's list goes on after an array's values ``items`` (in its order):
        another value of the last one's kind follows it, with only a comma or "and" between (or
        spaces, between numbers). True where the request does not hold the values in its order
        (no constraint)."""
        at = self._cursor(items)
        if at is None:
            return True
        number = bool(_NUMBER.fullmatch(items[-1]))
        for p in at:
            m = (_NUMBER_SEPARATOR if number else _SEPARATOR).match(self.source, p)
            if m and m.end() > p and m.end() < len(self.source) and (
                    _NUMBER.match(self.source, m.end()) if number else self.source[m.end()] not in _QUOTES):
                return True
        return False

    @staticmethod
    def _firsts(starts: list[int], at: set[int] | None) -> list[int]:
        """``starts``, or for each place of ``at`` the first of them at or after it (all of them
        where none comes after: the request's list has ended, the model's has not)."""
        if at is None:
            return starts
        firsts = sorted({starts[k] for k in (bisect.bisect_left(starts, p) for p in at) if k < len(starts)})
        return firsts or starts

    def _after(self, cur: str, starts: list[int]) -> tuple[set[str], bool]:
        """The characters that continue ``cur`` as a span of the request from one of ``starts``,
        and whether ``cur`` (non-empty) may end here: one of its places is followed by a character
        that is not a letter or digit, or by the request's end; a span that begins after a quote
        ends at the same quote (or the request's end) and only there."""
        nxt: set[str] = set()
        closable = False
        n, src = len(cur), self.source
        for i in starts:
            if not src.startswith(cur, i):
                continue
            j = i + n
            quote = src[i - 1] if i and src[i - 1] in _QUOTES else None
            if quote and src[j:j + 1] in (quote, ""):
                closable = closable or n > 0       # a quoted value ends at its quote, never past it
                continue
            if n and not quote and (j == len(src) or not src[j].isalnum()):
                closable = True
            if j < len(src):
                nxt.add(src[j])
        return nxt, closable

    def _string(self, cur: str, starts: list[int]) -> set[int] | None:
        if "\\" in cur or not cur.isascii():
            return None             # escapes and non-ASCII text are written as the model will
        nxt, closable = self._after(cur, starts)
        out = {ord(c) for c in nxt if c not in '"\\' and c.isascii()} | ({ord('"')} if closable else set())
        return out or None

    def _number(self, cur: str, starts: list[int]) -> set[int] | None:
        numbers = [n for s, n in self._numbers if s in starts]
        out = {ord(n[len(cur)]) for n in numbers if n.startswith(cur) and len(n) > len(cur)}
        if cur in numbers:
            out |= _NUMBER_END
        return out or None


class ResultCopier:
    """A tool's result as the reply after it shows it. ``result``: as the curriculum's replies show
    it (``prompts.stream.shown_result``). One per reply: it remembers where the copy began."""

    def __init__(self, result: str):
        self.result = result
        self._from: int | None = None    # where in the reply the copy began
        self.done = False

    def allowed(self, reply: str, reading: bool) -> set[int] | None:
        """The bytes the reply may write after ``reply`` (its text so far), ``reading`` being
        whether its opcode at the last byte was READ_MEM (the next byte is recalled). The first
        such step begins the copy, from the result's start or from as much of it as the reply has
        just written at a word's start (a list or object result also begins where the reply has
        written its opening bracket); from there the result is written whole and the reply ends
        as every curriculum reply after a result ends (".", END). None: any byte."""
        if self.done or not self.result.isascii():
            return None
        if self._from is None:
            begun = _written_start(reply, self.result)
            # a list or an object begins with a bracket no lead-in has: once the reply writes it,
            # the result is under way (the curriculum writes lists of words without READ_MEM)
            if not reading and not (begun and self.result[0] in "[{"):
                return None
            self._from = len(reply) - begun
        copied, whole = reply[self._from:], self.result + _REPLY_END
        if len(copied) >= len(whole) or not whole.startswith(copied):
            self.done = True
            return None
        return {ord(whole[len(copied)])}


def _written_start(reply: str, result: str) -> int:
    """The longest start of ``result`` that ``reply`` ends with, beginning a word of the reply."""
    for k in range(min(len(reply), len(result) - 1), 0, -1):
        at = len(reply) - k
        if reply.endswith(result[:k]) and (at == 0 or not reply[at - 1].isalnum()):
            return k
    return 0


def restrict(logits: torch.Tensor, allowed: set[int] | None) -> torch.Tensor:
    """``logits`` [..., 256] with every byte outside ``allowed`` at -inf (unchanged for None)."""
    if allowed is None:
        return logits
    keep = torch.zeros(256, dtype=torch.bool, device=logits.device)
    keep[sorted(allowed)] = True
    return logits.masked_fill(~keep, float("-inf"))
