"""scripts/recall_misses.py: every missed answer is sorted into exactly one category per memory layer."""
import importlib.util
from pathlib import Path

import torch

from engine.vm import ModelConfig, MosaicLM

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "recall_misses.py"


def _script():
    spec = importlib.util.spec_from_file_location("recall_misses", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_each_miss_falls_in_one_category_per_memory_layer_and_the_planner_is_restored():
    mod = _script()
    torch.manual_seed(0)
    model = MosaicLM(ModelConfig.preset("tiny").replace(memory_layers=(1,))).eval()
    with torch.no_grad():  # spread the heads so the untrained model reads and writes
        for blk in model.blocks:
            blk.proj.weight.mul_(20.0)
    original = mod.block.plan_slots
    res = mod.recall_misses(model, facts=3, distance=40, samples=2, seed=0)
    assert mod.block.plan_slots is original
    assert res["answers"] == 6 and 0 < res["misses"] <= 6  # an untrained model misses
    assert list(res["layers"]) == ["1"]
    assert sum(res["layers"]["1"].values()) == res["misses"]
    assert sum(res["first_wrong_byte"].values()) == res["misses"]
    upd = mod.update_misses(model, samples=2, seed=0)
    assert 0 <= upd["first_byte_only"] <= upd["updated_misses"] and upd["old_value_whole"] <= upd["updated_misses"]
    by = upd["recall_by_phrasing"]
    assert sum(v["asked"] for v in by.values()) == 2 * 3  # 3 updated facts per conversation
    assert sum(v["asked"] - v["right"] for v in by.values()) == upd["updated_misses"]
