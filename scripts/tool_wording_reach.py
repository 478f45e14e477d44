#!/usr/bin/env python3
"""How far the curriculum's training wordings reach the held-out ones, by their words alone.

    python3 scripts/tool_wording_reach.py [--more-phrases] [--blind] [--misses] [--json]

For each tool's held-out request wording ("shouts a string in capitals"), a bag-of-words
nearest neighbour picks the tool whose training wordings it is closest to: tf-idf over crude
stems (plurals, -ing, -ed, -ly cut off; function words left out), the cosine to each tool's
wordings taken together plus that to its nearest single wording (``engine.tool_names.ToolIndex``,
which names the tools that chat's definitions begin with). It knows nothing of order ("km to
miles" and "miles to km" tie) and is no model; it says which held-out wordings a model trained
on the curriculum alone has any word to go on for. Also: the held-out stems no training wording holds, and the held-out wordings
with a training wording of the same tool at word-Jaccard >= 0.5. ``--more-phrases``: the
training wordings include ``tool_phrases.json`` (``mosaic train --more-phrases``); ``--blind``:
the held-out wordings are ``tool_heldout.json``'s four per tool (``mosaic eval tools --split blind``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.curriculum.tools import BLIND_PHRASES, TOOLS, phrases  # noqa: E402
from engine.tool_names import ToolIndex, stems  # noqa: E402


def _words(phrase: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", phrase.lower()))


def reach(more: bool, blind: bool = False) -> dict:
    """The nearest tool to each held-out wording, and the counts the module docstring names."""
    index = ToolIndex({t.name: phrases(t, "train", more) for t in TOOLS})
    rows, unseen, held_stems, near = [], 0, 0, 0
    held = {t.name: BLIND_PHRASES[t.name] if blind else phrases(t, "heldout") for t in TOOLS}
    for t, wording in ((t, w) for t in TOOLS for w in held[t.name]):
        q = Counter(stems(wording))
        held_stems += len(q)
        unseen += sum(1 for s in q if not index.vector(Counter([s])))
        best = index.ranked(wording)[0][0]
        words = _words(wording)
        near += any(len(words & _words(p)) / len(words | _words(p)) >= 0.5 for p in phrases(t, "train", more))
        rows.append({"tool": t.name, "wording": wording, "nearest": best})
    right = sum(r["tool"] == r["nearest"] for r in rows)
    return {"more_phrases": more, "blind": blind, "wordings": len(rows), "nearest_right": right / len(rows),
            "training_wordings": sum(len(phrases(t, "train", more)) for t in TOOLS),
            "held_out_stems": held_stems, "unseen_stems": unseen, "near_wordings": near, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--more-phrases", action="store_true", help="include tool_phrases.json's wordings")
    p.add_argument("--blind", action="store_true", help="the held-out wordings of tool_heldout.json")
    p.add_argument("--misses", action="store_true", help="list the held-out wordings named wrong")
    p.add_argument("--json", action="store_true", help="one JSON object")
    args = p.parse_args(argv)
    r = reach(args.more_phrases, args.blind)
    if args.json:
        print(json.dumps(r if args.misses else {k: v for k, v in r.items() if k != "rows"}))
        return 0
    which = " (with tool_phrases.json)" if args.more_phrases else ""
    print(f"{r['training_wordings']} training wordings{which}: "
          f"the nearest tool by words is the held-out wording's own for {r['nearest_right']:.1%} of "
          f"{r['wordings']}{' blind' if args.blind else ''}; "
          f"{r['unseen_stems']} of {r['held_out_stems']} held-out stems in no training "
          f"wording; {r['near_wordings']} held-out wordings with a training wording at word-Jaccard >= 0.5")
    if args.misses:
        for row in r["rows"]:
            if row["tool"] != row["nearest"]:
                print(f"  {row['tool']}: {row['wording']!r} -> {row['nearest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
