"""Resource bombs (research/reliability.md §6, items 21-27): each stopped with a clear error while
the parent survives; the registry stays intact when a registered tool misbehaves."""
import pytest

from toolsmith import ToolRegistry, run_source
from toolsmith_helpers import FAST, make_def

BOMBS = [
    ("endless_loop", "while True:\n    pass", {"cpu_limit"}, "CPU time limit"),
    ("huge_range", "for i in range(10 ** 12):\n    pass", {"cpu_limit"}, "CPU time limit"),
    ("huge_string", "y = 'a' * 10 ** 10\nreturn 1", {"memory"}, "out of memory"),
    ("huge_list", "y = [0] * 10 ** 9\nreturn 1", {"memory"}, "out of memory"),
    ("huge_pow", "return pow(2, 10 ** 10)", {"memory", "cpu_limit"}, ""),
    ("deep_recursion", "def f(n):\n    return f(n + 1)\nreturn f(0)", {"recursion"}, "RecursionError"),
    ("int_str_digits", "return str(10 ** 100000)", {"exception"}, "ValueError"),
    ("huge_result", "return 'x' * 10 ** 7", {"result_too_large"}, "limit"),
    ("huge_int_result", "return 10 ** 5000", {"invalid_result"}, "not plain JSON"),
    ("system_exit", "raise SystemExit(3)", {"exit"}, "SystemExit"),
    ("keyboard_interrupt", "raise KeyboardInterrupt", {"exit"}, "KeyboardInterrupt"),
    ("base_exception", "raise BaseException('boom')", {"exception"}, "BaseException: boom"),
    ("generator_exit", "raise GeneratorExit", {"exit"}, "GeneratorExit"),
    ("result_set", "return {1, 2}", {"invalid_result"}, "not plain JSON"),
    ("result_nan", "return float('nan')", {"invalid_result"}, "not plain JSON"),
    ("result_inf", "return [float('inf')]", {"invalid_result"}, "not plain JSON"),
    ("result_cycle", "a = []\na.append(a)\nreturn a", {"invalid_result"}, "not plain JSON"),
    ("result_complex", "return 1j", {"invalid_result"}, "not plain JSON"),
    ("result_function", "return len", {"invalid_result"}, "not plain JSON"),
    ("result_non_str_key", "return {(1, 2): 3}", {"invalid_result"}, "not plain JSON"),
    ("result_bytes", "return 'a'.encode()", {"invalid_result"}, "not plain JSON"),
]


@pytest.mark.parametrize("case_id, body, types, words", BOMBS, ids=[b[0] for b in BOMBS])
def test_bomb_is_stopped_with_a_clear_error(case_id, body, types, words):
    src = make_def(name="t", body=body)["implementation"]
    res = run_source(src, "t", {"x": 1}, limits=FAST)
    assert not res.ok, (case_id, res)
    assert res.error_type in types, (case_id, res.error_type, res.error)
    assert words in res.error and len(res.error) < 1200


def test_huge_printed_output_is_capped_and_marked():
    src = make_def(name="t", body="print('x' * 10 ** 7)\nreturn 1")["implementation"]
    res = run_source(src, "t", {"x": 1}, limits=FAST)
    assert res.ok and res.result == 1
    assert res.truncated and len(res.printed) == FAST.max_printed_bytes


def test_non_json_arguments_are_refused_before_any_process():
    res = run_source("def t(x):\n    return x\n", "t", {"x": float("nan")}, limits=FAST)
    assert not res.ok and res.error_type == "bad_args" and res.exit_code is None


def test_registry_survives_misbehaving_tools(tmp_path):
    reg = ToolRegistry(tmp_path / "tools.db")
    for name, body in [("spin", "while True:\n    pass"), ("stop_now", "raise SystemExit(1)"),
                       ("hog", "y = 'a' * 10 ** 10\nreturn 1")]:
        assert reg.propose(make_def(name=name, body=body), source="person").status == "pending"
        reg.approve(name)
        res = reg.call(name, {"x": 1}, limits=FAST)
        assert not res.ok and res.error
        rec = reg.get(name)
        assert (rec.uses, rec.failures) == (1, 1)
    assert reg.integrity() == "ok"
    assert reg.call("add", {"a": 2, "b": 3}, limits=FAST).result == 5
    reg.close()
    again = ToolRegistry(tmp_path / "tools.db")  # reopens cleanly: nothing was corrupted
    assert again.recovered is None and {"spin", "stop_now", "hog"} <= {r.name for r in again.list()}
