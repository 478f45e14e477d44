"""The name a tool definition starts with, taken from the words of the request that asked for it.

The model maps a wording it was trained on to its tool (stage 10: 91% of the training wordings'
definitions name the requested tool) far better than a wording it never saw (39% of 224 written
blind, ``mosaic eval tools --split blind``): a model of 600k parameters trained on a few dozen
wordings per tool has no word meanings beyond them. Words alone do better there: the catalogue
tool whose training wordings share the most (idf-weighted) stems with the request
(:class:`ToolIndex`) is the requested one for 87% of those 224. :class:`NameHint` is the bytes a
TOOL_DEF turn may write while its head (``{"name": "to_upper"``) is written: the decoder masks every
other byte, as :mod:`engine.call_copy` does for a call's values. The rest of the definition
(description, parameters, code) is the model's.

The index holds the curriculum's tools and training wordings (``tool_phrases.json`` included):
the tools the model was taught to write. A request none of whose content stems is in the index
gets no hint (the model names the tool itself). Word order is lost ("km to miles" and "miles to
km" tie; the first in the catalogue wins). Pure functions of text.
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter

STOP = frozenset("a an the of to in into from by for with and or some one two its it is are as at on that "
                 "which what whether if given each every all any this n x".split())
# the frame around a request's wording: "could you put together a tool that {wording}?"
_FRAME = re.compile(r"\btools?\s+(?:that|which|to|for)\b(.*)", re.IGNORECASE | re.DOTALL)
HEAD = '{"name": "'     # how every definition the curriculum teaches begins


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def stems(text: str) -> list[str]:
    """The content words of ``text`` (lower case, function words left out), crudely stemmed:
    plurals, -ing, -ed and -ly cut off."""
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP]


def wording_of(request: str) -> str:
    """The part of a request after "a tool that|which|to|for" (the whole request without one)."""
    m = _FRAME.search(request)
    return m.group(1) if m else request


class ToolIndex:
    """tf-idf over stems (weights (1 + log count) * log(1 + tools / tools holding the stem)). A
    request's score for a tool is the cosine of its vector with the tool's wordings taken as one
    bag, plus its cosine with the nearest single wording: the bag weighs every word the tool's
    wordings use, the single wording keeps words that belong together ("makes every letter a
    capital" is to_upper's; as bags, to_lower's wordings hold "letter" and "capital" as often).
    Chosen on the 56 held-out wordings (bag alone 92.9%, nearest wording alone 92.9%, both 94.6%
    right); on the 224 blind ones 85.7%, 83.9% and 86.6% (the bag alone had been scored on them
    before the choice: MODEL.md)."""

    def __init__(self, wordings: dict[str, list[str] | tuple[str, ...]]):
        bags = {name: Counter(s for w in ws for s in stems(w)) for name, ws in wordings.items()}
        self._df = Counter(s for bag in bags.values() for s in bag)
        self._n = len(bags)
        self._tools = {name: self.vector(bag) for name, bag in bags.items()}
        self._wordings = {name: [self.vector(Counter(stems(w))) for w in ws]
                          for name, ws in wordings.items()}

    def vector(self, counts: Counter) -> dict[str, float]:
        """Unit tf-idf vector of stem ``counts``; stems in no tool's wordings are left out."""
        v = {s: (1 + math.log(k)) * math.log(1 + self._n / self._df[s])
             for s, k in counts.items() if s in self._df}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {s: x / norm for s, x in v.items()}

    def ranked(self, text: str) -> list[tuple[str, float]]:
        """Every tool with its score for ``text`` (all of it: no frame is cut; 0 to 2), best
        first; ties keep the catalogue's order."""
        q = self.vector(Counter(stems(text)))

        def cos(v: dict[str, float]) -> float:
            return sum(q.get(s, 0.0) * x for s, x in v.items())

        scores = [(name, cos(bag) + max((cos(w) for w in self._wordings[name]), default=0.0))
                  for name, bag in self._tools.items()]
        return sorted(scores, key=lambda pair: -pair[1])

    def nearest(self, request: str) -> tuple[str, float] | None:
        """The tool nearest the wording of ``request`` (:func:`wording_of`) and its score; None
        when no stem of it is in the index."""
        best = self.ranked(wording_of(request))[:1]
        return best[0] if best and best[0][1] > 0 else None


@functools.lru_cache(maxsize=1)
def curriculum_index() -> ToolIndex:
    """The index of the curriculum's tools and their training wordings (tool_phrases.json too)."""
    from engine.curriculum import tools as toolset
    return ToolIndex({t.name: toolset.phrases(t, "train", more=True) for t in toolset.TOOLS})


class NameHint:
    """The head ``{"name": "<name>"`` of a definition, forced byte by byte."""

    def __init__(self, name: str):
        self.name = name
        self.head = HEAD + name + '"'

    def allowed(self, written: str) -> set[int] | None:
        """The one byte that continues the head after ``written`` (the definition so far, without
        its role byte); None (any byte) once the head is written."""
        if len(written) < len(self.head) and self.head.startswith(written):
            return {ord(self.head[len(written)])}
        return None


def hint_for(request: str, index: ToolIndex | None = None) -> NameHint | None:
    """The hint for a definition answering ``request``; None where the index has no word of it."""
    best = (index or curriculum_index()).nearest(request)
    return None if best is None else NameHint(best[0])
