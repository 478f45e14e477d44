"""Config validation and round trip, presets, the byte tokenizer, the instruction set."""
import json

import pytest

from engine.vm import ByteTokenizer, ConfigError, ModelConfig, MosaicLM, Opcode


@pytest.mark.parametrize("name", ["tiny", "default", "base"])
def test_presets_round_trip_through_json(name, tmp_path):
    cfg = ModelConfig.preset(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    cfg.save(tmp_path / "c.json")
    assert ModelConfig.load(tmp_path / "c.json") == cfg
    assert cfg.fingerprint() == ModelConfig.load(tmp_path / "c.json").fingerprint()


def test_memory_layers_and_lambdas_round_trip():
    cfg = ModelConfig.preset("tiny").replace(n_layers=3, memory_layers=[2, 0], lambda_init=(0.3, 0.95))
    assert cfg.memory_layers == (0, 2) and [cfg.has_memory(i) for i in range(3)] == [True, False, True]
    assert cfg.memory_layer_ids() == (0, 2) and cfg.replace(memory_layers=None).memory_layer_ids() == (0, 1, 2)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.lambdas() == (0.3, 0.95)
    spread = ModelConfig.preset("default").lambdas()
    assert spread[0] == pytest.approx(0.5) and spread[-1] == pytest.approx(0.999)
    assert list(spread) == sorted(spread)


@pytest.mark.parametrize("changes,field", [
    ({"d_model": 0}, "d_model"),
    ({"ways": 2.5}, "ways"),
    ({"n_layers": True}, "n_layers"),
    ({"probes": 300}, "probes"),
    ({"scan_probes": 4}, "scan_probes"),
    ({"match_threshold": 1.5}, "match_threshold"),
    ({"read_temperature": 0}, "read_temperature"),
    ({"read_temperature": "0.1"}, "read_temperature"),
    ({"memory_layers": (0, 9)}, "memory_layers"),
    ({"memory_layers": (1, 1)}, "memory_layers"),
    ({"lambda_init": (0.5,)}, "lambda_init"),
    ({"lambda_init": (0.5, 1.0, 0.2, 0.3)}, "lambda_init"),
    ({"vocab_size": 50257}, "vocab_size"),
    ({"norm_eps": 0}, "norm_eps"),
    ({"clear_confidence": 1.0}, "clear_confidence"),
    ({"clear_confidence": -0.1}, "clear_confidence"),
    ({"clear_confidence": True}, "clear_confidence"),
])
def test_invalid_config_names_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        ModelConfig.preset("base").replace(**changes)
    assert str(err.value).startswith(field + ":")
    assert "\n" not in str(err.value)


def test_a_field_added_later_keeps_older_configs_and_fingerprints():
    cfg = ModelConfig.preset("base")
    assert "clear_confidence" not in cfg.to_dict()  # at its default: written as before it existed
    set_ = cfg.replace(clear_confidence=0.8)
    assert set_.to_dict()["clear_confidence"] == 0.8
    assert ModelConfig.from_dict(set_.to_dict()) == set_
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert set_.fingerprint() != cfg.fingerprint()


def test_bad_config_files_and_keys(tmp_path):
    with pytest.raises(ConfigError, match="^bucket_count: unknown config field"):
        ModelConfig.from_dict({"bucket_count": 3})
    with pytest.raises(ConfigError, match="no such file"):
        ModelConfig.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        ModelConfig.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="^preset: unknown preset 'huge'"):
        ModelConfig.preset("huge")


def test_base_preset_is_about_three_million_parameters():
    n = MosaicLM(ModelConfig.preset("base")).num_parameters()
    assert 2_500_000 <= n <= 3_500_000


@pytest.mark.parametrize("text", ["", "hello", "naïve café ☕ 𝄞 日本語", "\x11role\n\x00bytes\x7f", "a" * 1000])
def test_tokenizer_round_trips_any_utf8(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert all(0 <= i < 256 for i in ids) and len(ids) == len(text.encode())
    assert tok.decode(ids) == text


def test_tokenizer_cut_characters_do_not_raise():
    tok = ByteTokenizer()
    ids = tok.encode("☕")
    assert tok.decode(ids[:2]) == "\ufffd"
    assert tok.decode_bytes(ids[:2]) + tok.decode_bytes(ids[2:]) == "☕".encode()


def test_instruction_set_order():
    assert [op.name for op in Opcode] == ["NOP", "READ_MEM", "WRITE_MEM", "CLEAR_MEM", "IDLE", "GATE_UP",
                                          "GATE_DOWN", "SCAN", "COMMIT", "RESPOND"]
    assert [int(op) for op in Opcode] == list(range(10))
