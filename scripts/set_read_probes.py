#!/usr/bin/env python3
"""Write a copy of a MOSAIC model file whose reads probe a different number of buckets.

    python3 scripts/set_read_probes.py MODEL.safetensors PROBES OUT.safetensors

``probes`` (how many of the router's top buckets a READ looks in) shapes no weight, so a model
trained with one count can read with another: more probes find a value whose bucket the router
ranked lower, at the cost of gathering more slots per read. The weights and every other piece of
metadata are copied unchanged; the config's ``probes`` is replaced (it must stay <= scan_probes).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.vm.checkpoint import ModelError, load_model, read_metadata, save_model  # noqa: E402
from engine.vm.config import ConfigError  # noqa: E402
from engine.vm.model import MosaicLM  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[1].isdigit():
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    src, probes, out = argv[0], int(argv[1]), argv[2]
    try:
        model = load_model(src)
        cfg = dataclasses.replace(model.config, probes=probes)  # validated by the config itself
        new = MosaicLM(cfg)
        new.load_state_dict(model.state_dict(), strict=True)
    except (ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    extra = {k: v for k, v in read_metadata(src).items() if k not in ("format", "config")}
    save_model(new, out, extra)
    print(f"{out}: probes {model.config.probes} -> {probes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
