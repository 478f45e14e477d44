"""scripts/recall_misses.py: every missed answer is sorted into exactly one category per memory layer."""
import torch

from engine.vm import ModelConfig, MosaicLM


def test_each_miss_falls_in_one_category_per_memory_layer_and_the_planner_is_restored(load_script):
    mod = load_script("recall_misses")
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


def test_a_lost_slot_is_told_apart_by_who_took_it(load_script):
    from types import SimpleNamespace

    import numpy as np
    mod = load_script("recall_misses")
    mem = SimpleNamespace(NB=2, W=2, P=1, dk=4, threshold=0.9)
    NBW, T = 4, 6
    e1, e2 = torch.eye(4)[0], torch.eye(4)[1]

    def classify(later_key, clear_at=None, probe=0, events=(-1, -1)):
        write = torch.zeros(1, T, dtype=torch.bool)
        write[0, [0, 2]] = True                      # the fact's byte at 0, a later write at 2
        clear = torch.zeros(1, T, dtype=torch.bool)
        if clear_at is not None:
            clear[0, clear_at] = True
        keys = torch.zeros(1, T, 4)
        keys[0, 0], keys[0, 2] = e1, later_key
        kw = {"write": write, "clear": clear, "bucket": torch.zeros(1, T, dtype=torch.long),
              "keys": keys, "init_keys": torch.zeros(1, 2, 2, 4), "read_probes": torch.tensor([[probe]])}
        plan = SimpleNamespace(read_rows=torch.tensor([0]), read_pos=torch.tensor([5]),
                               read_events=torch.tensor([list(events)]))
        return mod._classify(kw, plan, torch.zeros(1, T, 4) + e1, mem, 0, 5, 0)

    assert classify(e1) == "replaced"                       # a threshold-close key took the slot
    assert classify(e2, clear_at=3) == "cleared"            # no close key, but a CLEAR in the bucket
    assert classify(e2) == "evicted"                        # neither: the full bucket evicted it
    assert classify(e1, probe=1) == "not_probed"
    assert classify(e2, events=(NBW + 0, NBW + 2)) in ("read_major", "read_minor")
    assert classify(e2, events=(NBW + 0, -1)) == "read_major"   # alone in the read: all the weight


def test_key_similarity_reports_every_memory_layer(load_script):
    mod = load_script("key_similarity")
    torch.manual_seed(0)
    model = MosaicLM(ModelConfig.preset("tiny").replace(memory_layers=(1,), clear_confidence=0.99)).eval()
    with torch.no_grad():  # spread the opcode head so that its argmax picks CLEAR now and then
        model.blocks[1].proj.weight.mul_(20.0)
    res = mod.key_similarity(model, seed=0, samples=2)
    assert list(res["layers"]) == ["1"]
    assert all(blk.clear_confidence == 0.99 for blk in model.blocks)  # set aside for the run only
    clears = res["layers"]["1"]["clears"]
    n_prob = sum(clears[b][k].get("n", 0) for b, k in (("update_benchmark", "probability_where_labelled"),
                                                         ("recall_benchmark", "probability_of_unlabelled")))
    assert n_prob > 0  # the argmax's CLEARs are counted whatever their probability
    for b, k in (("update_benchmark", "probability_where_labelled"), ("recall_benchmark", "probability_of_unlabelled")):
        if clears[b][k]["n"]:
            p = clears[b][k]["p5_25_50_75_95"]
            assert p == sorted(p) and 0 < p[0] and p[-1] <= 1
    row = res["layers"]["1"]
    # 2 update conversations x 3 updated facts, split by phrasing; 6 facts told -> 15 pairs each
    assert row["update_named"].get("n", 0) + row["update_not_named"].get("n", 0) == 2 * 3
    assert row["distinct"]["n"] == 2 * 15
    for k in ("update_named", "update_not_named", "distinct"):
        s = row[k]
        if s["n"]:
            p = s["p5_25_50_75_95"]
            assert p == sorted(p) and -1.0 - 1e-5 <= p[0] and p[-1] <= 1.0 + 1e-5 and 0 <= s["at_threshold"] <= 1
    assert mod.summary([0.5, 0.95, 0.99], 0.9)["at_threshold"] == round(2 / 3, 4)


def test_a_missing_model_is_one_line_on_stderr(capsys, tmp_path, load_script):
    mod = load_script("recall_misses")
    assert mod.load_mosaic(tmp_path / "missing.safetensors") is None
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
