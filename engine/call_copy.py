"""Copied call arguments: the bytes a TOOL_CALL turn may write next inside an argument value.

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
  closes where the span is
  followed in the request by a character that is not a letter or digit, or ends it;
- a number value is a whole number of the request (``-?\\d+(\\.\\d+)?``): its bytes extend one, and
  it ends only where it equals one;
- keys, names and everything outside ``"args"`` are not constrained; nor is a string value that
  the request cannot continue (a value it does not hold: the model writes it as it will).
Pure functions of text (and :func:`restrict`, which applies what they allow to logits).
"""
from __future__ import annotations

import re

import torch

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ARGS = '"args":'
_NUMBER_END = frozenset(b",}] \n")


def _scan(text: str) -> tuple[str, str] | None:
    """Where ``text`` (a TOOL_CALL turn's JSON so far) stands inside its ``"args"`` object:
    ("string", value so far) inside a string value, ("number", digits so far) inside a number
    value, ("value", "") where a value of an object or an array may start; None elsewhere (before
    ``"args"``, in a key, after the object)."""
    at = text.find(_ARGS)
    if at < 0:
        return None
    stack: list[str] = []          # "{" or "[" per open container of the args value
    expect_value = True            # the next token is a value (not a key)
    in_string = is_key = escaped = False
    cur = ""
    number: str | None = None
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
            else:
                cur += ch
            continue
        if number is not None:
            if ch.isdigit() or ch in "-.":
                number += ch
                continue
            number = None
            expect_value = False
        if ch == '"':
            in_string, is_key, cur = True, not expect_value, ""
        elif ch in "{[":
            stack.append(ch)
            expect_value = ch == "["
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None         # the args object is closed: nothing more to copy
            expect_value = False
        elif ch == ":":
            expect_value = True
        elif ch == ",":
            expect_value = bool(stack) and stack[-1] == "["
        elif (ch.isdigit() or ch == "-") and expect_value and stack:
            number = ch
        elif not ch.isspace():
            expect_value = False    # true, false, null or something the JSON will refuse
    if not stack and not expect_value:
        return None
    if in_string:
        return None if is_key or not stack else ("string", cur)
    if number is not None:
        return "number", number
    return ("value", "") if expect_value and stack else None


class CallCopier:
    """The request a call answers; :meth:`allowed` masks what a call's argument value may write.

    ``source``: the request's text (a user line without its role byte or END)."""

    def __init__(self, source: str):
        self.source = source
        self.numbers = tuple(m.group() for m in _NUMBER.finditer(source))
        # word starts: the positions a string value may begin at (not at a space or a quote)
        self._starts = [i for i, ch in enumerate(source) if (i == 0 or not source[i - 1].isalnum())
                        and not ch.isspace() and ch not in "'\""]

    def allowed(self, text: str) -> set[int] | None:
        """The bytes the call may write after ``text`` (its JSON so far, without the role byte),
        or None where any byte may come (no value is being written, or the request cannot
        continue this one)."""
        where = _scan(text)
        if where is None:
            return None
        kind, cur = where
        if kind == "string":
            return self._string(cur)
        if kind == "number":
            return self._number(cur)
        # a value starts: any type the model likes, but a number must begin one of the request's
        starts = {ord(n[0]) for n in self.numbers}
        return None if not starts else starts | {ord(c) for c in '"[{tfn '}

    def _string(self, cur: str) -> set[int] | None:
        if "\\" in cur or not cur.isascii():
            return None             # escapes and non-ASCII text are written as the model will
        out: set[int] = set()
        n, src = len(cur), self.source
        for i in self._starts:
            if not src.startswith(cur, i):
                continue
            j = i + n
            if j == len(src) or not src[j].isalnum():
                if n:
                    out.add(ord('"'))
            if j < len(src) and src[j] not in '"\\' and src[j].isascii():
                out.add(ord(src[j]))
        return out or None

    def _number(self, cur: str) -> set[int] | None:
        out = {ord(n[len(cur)]) for n in self.numbers if n.startswith(cur) and len(n) > len(cur)}
        if cur in self.numbers:
            out |= _NUMBER_END
        return out or None


def restrict(logits: torch.Tensor, allowed: set[int] | None) -> torch.Tensor:
    """``logits`` [..., 256] with every byte outside ``allowed`` at -inf (unchanged for None)."""
    if allowed is None:
        return logits
    keep = torch.zeros(256, dtype=torch.bool, device=logits.device)
    keep[sorted(allowed)] = True
    return logits.masked_fill(~keep, float("-inf"))
