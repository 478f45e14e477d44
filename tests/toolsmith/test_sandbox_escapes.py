"""Escape attempts (research/reliability.md §6, items 10-20): each refused or contained.

Every attack is run through the sandbox directly, *without* validation in front, so the sandbox
itself is what stops it; where validation would also refuse it, that is checked too."""
import pytest

from toolsmith import ToolDefinition, run_source
from toolsmith_helpers import FAST, make_def

# (id, body of `def t(x):`). Each must come back ok=False with a compile or runtime refusal.
ESCAPES = [
    # imports
    ("import_os", "import os\nreturn os.getcwd()"),
    ("import_from", "from os import system\nreturn 1"),
    ("import_importlib", "import importlib\nreturn importlib.import_module('os')"),
    ("import_operator_attrgetter", "import operator\nreturn operator.attrgetter('__globals__')(t)"),
    ("import_star", "from os import *\nreturn 1"),
    ("dunder_import", "return __import__('os').getcwd()"),
    ("fullwidth_dunder_import", "return ＿＿import＿＿('os')"),
    # dunder walks
    ("subclasses_walk", "return ().__class__.__bases__[0].__subclasses__()"),
    ("object_subclasses", "return [].__class__.__mro__[-1].__subclasses__()"),
    ("func_globals", "def g():\n    pass\nreturn g.__globals__"),
    ("lambda_globals", "return (lambda: 1).__globals__['__builtins__']"),
    ("func_code", "def g():\n    pass\nreturn g.__code__"),
    ("traceback_frame", "try:\n    1 / 0\nexcept Exception as e:\n    return e.__traceback__.tb_frame"),
    ("exception_context", "try:\n    1 / 0\nexcept Exception as e:\n    return e.__context__"),
    # frame walks (CVE-2023-37271 and the async forms)
    ("gen_frame_walk", "def g():\n    yield 1\nreturn g().gi_frame.f_back.f_builtins"),
    ("gen_frame_global", "def g():\n    global fr\n    fr = gen.gi_frame.f_back.f_back\n    yield fr\n"
                         "gen = g()\nreturn [v for v in gen]"),
    ("gen_code", "def g():\n    yield 1\nreturn g().gi_code"),
    ("async_gen_frame", "async def g():\n    yield 1\nreturn g().ag_frame"),
    ("coroutine_frame", "async def g():\n    return 1\nreturn g().cr_frame"),
    # format-string walks (CVE-2023-41039, CVE-2026-76825)
    ("format_walk", "return '{0.__class__.__mro__[1]}'.format(int)"),
    ("format_map_walk", "return str.format_map('{foo.__dict__}', {'foo': str})"),
    ("format_bound", "f = '{0.__class__}'.format\nreturn f(1)"),
    ("fstring_dunder", "y = 1\nreturn f'{y.__class__}'"),
    ("string_formatter", "return string.Formatter().get_field('0.__class__', [1], {})"),
    # safer_getattr bypasses
    ("getattr_builtin", "return getattr(1, '__class__')"),
    ("fake_string_class", "class S(str):\n    def startswith(self, p):\n        return False\n"
                          "return getattr((), S('__class__'))"),
    # guard shadowing through positional-only defaults (CVE-2026-55830)
    ("posonly_shadow_getattr", "def g(_getattr_=lambda o, n: 1, /):\n    return ().__class__\nreturn g()"),
    ("posonly_shadow_write", "def g(_write_=lambda o: o, /):\n    math.pi = 4\n    return 1\nreturn g()"),
    ("posonly_shadow_getiter", "def g(_getiter_=lambda o: o, /):\n    return [a for a in x]\nreturn g()"),
    # except* (CVE-2025-22153)
    ("except_star", "try:\n    raise ValueError(1)\nexcept* ValueError as eg:\n    return eg.exceptions\nreturn 1"),
    # eval / exec / open / globals and friends
    ("eval", "return eval('1')"),
    ("exec", "exec('y = 1')\nreturn 1"),
    ("compile", "return compile('1', 'f', 'eval')"),
    ("open", "return open('/etc/passwd').read()"),
    ("globals", "return globals()"),
    ("vars", "return vars()"),
    ("locals", "return locals()"),
    ("dir", "return dir()"),
    ("breakpoint", "breakpoint()\nreturn 1"),
    ("type", "return type(1)"),
    ("input", "return input()"),
    ("help", "return help()"),
    ("exit_builtin", "exit(0)"),
    ("super", "return super()"),
    ("memoryview", "return memoryview(b'a')"),
    ("builtins_name", "return __builtins__"),
    ("guard_name", "return _getattr_"),
    ("print_to_file", "print('x', file=open('/tmp/pwned', 'w'))\nreturn 1"),
    # look-alike unicode names (NFKC-normalised identifiers)
    ("fullwidth_eval", "return ｅｖａｌ('1')"),
    ("fullwidth_open", "return ｏｐｅｎ('/etc/passwd').read()"),
    ("cyrillic_eval", "return \u0435val('1')"),
    ("mathematical_exec", "return 𝐞𝐱𝐞𝐜('1')"),
    # writes to shared objects
    ("write_math_attr", "math.pi = 4\nreturn math.pi"),
    ("write_dict_class_attr", "dict.fromkeys = 1\nreturn 1"),
    ("write_str_method", "str.upper = 1\nreturn 1"),
    ("del_math_attr", "del math.pi\nreturn 1"),
    ("setattr_builtin", "setattr(math, 'pi', 4)\nreturn 1"),
]


_IMPORT = "ImportError: __import__ not found"
_FORMAT = "Using the format*() methods of `str` is not safe"
_WRITE = "TypeError: attribute-less object (assign or del)"


def _undefined(name: str) -> str:
    return f"NameError: name '{name}' is not defined"


# The refusal each attack that compiles must meet at run time: the guard that stops it, not any
# exception (a typo in an attack would otherwise pass as "contained").
RUNTIME_REFUSAL = {
    "import_os": _IMPORT, "import_from": _IMPORT, "import_importlib": _IMPORT,
    "import_operator_attrgetter": _IMPORT,
    "format_walk": _FORMAT, "format_map_walk": _FORMAT, "format_bound": _FORMAT,
    "string_formatter": _undefined("string"), "getattr_builtin": _undefined("getattr"),
    "fake_string_class": "NameError: __build_class__ not found",
    "compile": _undefined("compile"), "open": _undefined("open"), "globals": _undefined("globals"),
    "vars": _undefined("vars"), "locals": _undefined("locals"), "dir": _undefined("dir"),
    "type": _undefined("type"), "input": _undefined("input"), "help": _undefined("help"),
    "exit_builtin": _undefined("exit"), "super": _undefined("super"), "memoryview": _undefined("memoryview"),
    "print_to_file": _undefined("open"), "fullwidth_open": _undefined("open"),
    "cyrillic_eval": _undefined("\u0435val"),
    "write_math_attr": _WRITE, "write_dict_class_attr": _WRITE, "write_str_method": _WRITE,
    "del_math_attr": _WRITE, "setattr_builtin": _undefined("setattr"),
}


@pytest.mark.parametrize("case_id, body", ESCAPES, ids=[c[0] for c in ESCAPES])
def test_escape_is_refused_or_contained(case_id, body):
    d = make_def(name="t", body=body)
    res = run_source(d["implementation"], "t", {"x": 1}, limits=FAST)
    assert not res.ok, (case_id, res)
    assert res.error_type in ("compile", "exception"), (case_id, res.error_type, res.error)
    assert res.result is None
    if res.error_type == "compile":  # validation would have stopped it before any process started
        assert ToolDefinition.from_json(d).validate(), case_id
        assert case_id not in RUNTIME_REFUSAL, case_id
    else:
        assert RUNTIME_REFUSAL[case_id] in res.error, (case_id, res.error)


def test_json_wrappers_and_namespace_rebinding_do_not_leak_into_next_run():
    # run 1 rebinds the shared names in its own globals and mutates a default value ...
    first = ("global json_dumps, math\njson_dumps = lambda *a, **k: 'pwn'\nmath = None\n"
             "acc.append(x)\nreturn [json_dumps([1]), acc]")
    src = make_def(name="t", body=first, args="x, acc=[]")["implementation"]
    res = run_source(src, "t", {"x": 1}, limits=FAST)
    assert res.ok and res.result == ["pwn", [1]]
    # ... run 2 sees none of it: every run is a fresh process with fresh globals
    second = make_def(name="t", body="acc.append(x)\nreturn [json_dumps([1]), math.pi, acc]",
                      args="x, acc=[]")["implementation"]
    res = run_source(second, "t", {"x": 2}, limits=FAST)
    assert res.ok and res.result == ["[1]", pytest.approx(3.141592653589793), [2]]


def test_write_to_math_is_refused_and_next_run_sees_the_real_value():
    res = run_source(make_def(name="t", body="math.pi = 4\nreturn 1")["implementation"], "t", {"x": 1},
                     limits=FAST)
    assert not res.ok and "TypeError" in res.error
    res = run_source(make_def(name="t", body="return math.pi")["implementation"], "t", {"x": 1}, limits=FAST)
    assert res.ok and res.result == pytest.approx(3.141592653589793)


def test_allowed_language_still_works():
    body = ("n = 0\nfor i, v in enumerate(range(5)):\n    n += i * v\na, (b, c) = [1, (2, 3)]\n"
            "d = {k: k * 2 for k in 'ab'}\nprint('n is', n)\n"
            "return {'n': n, 'abc': [a, b, c], 'd': d, 'sorted': sorted([3, 1, 2]), 'sqrt': math.sqrt(9),"
            " 'json': json_loads(json_dumps({'k': [1]})), 'printed': printed, 'zip': list(zip([1], [2]))}")
    res = run_source(make_def(name="t", body=body)["implementation"], "t", {"x": 1}, limits=FAST)
    assert res.ok, res
    assert res.result["n"] == 30 and res.result["abc"] == [1, 2, 3] and res.result["d"] == {"a": "aa", "b": "bb"}
    assert res.result["printed"] == "n is 30\n" and res.printed == "n is 30\n"
    assert res.result["zip"] == [[1, 2]] and res.result["json"] == {"k": [1]}


def test_outer_layer_empty_environment_and_private_workdir(monkeypatch, tmp_path):
    # A privileged tool is plain Python: what it sees is exactly what the process layer allows.
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    body = "import os, sys\nreturn {'env': dict(os.environ), 'cwd': os.getcwd(), 'path': sys.path, 'flags': [sys.flags.isolated, sys.flags.no_site]}"
    src = make_def(name="t", body=body, sandbox=False)["implementation"]
    res = run_source(src, "t", {"x": 1}, restricted=False, limits=FAST)
    assert res.ok, res
    assert "SECRET_TOKEN" not in res.result["env"] and res.result["env"].keys() <= {"LC_CTYPE"}
    cwd = res.result["cwd"]
    assert "mosaic-tool-" in cwd and not __import__("os").path.exists(cwd)  # deleted afterwards
    assert res.result["flags"] == [1, 1]
    assert not any("site-packages" in p for p in res.result["path"])


@pytest.mark.parametrize("body, words", [
    ("open('big', 'wb').write(b'x' * (2 * 1024 * 1024))\nreturn 1", "File too large"),
    ("fs = [open('f%d' % i, 'w') for i in range(100)]\nreturn 1", "Too many open files"),
    ("b = bytearray(2 * 1024 ** 3)\nreturn 1", "out of memory"),
])
def test_outer_layer_limits_hold_for_plain_python(body, words):
    src = make_def(name="t", body=body, sandbox=False)["implementation"]
    res = run_source(src, "t", {"x": 1}, restricted=False, limits=FAST)
    assert not res.ok and words in res.error, res


def test_wall_timeout_kills_the_whole_process_group(tmp_path):
    import os
    import time
    pidfile = tmp_path / "grandchild.pid"
    body = (f"import subprocess, time\np = subprocess.Popen(['/bin/sleep', '60'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))\ntime.sleep(60)\nreturn 1")
    src = make_def(name="t", body=body, sandbox=False)["implementation"]
    from toolsmith import SandboxLimits
    res = run_source(src, "t", {"x": 1}, restricted=False, limits=SandboxLimits(cpu_s=5, wall_s=1.5))
    assert not res.ok and res.error_type == "timeout", res
    pid = int(pidfile.read_text())
    for _ in range(50):  # the grandchild got SIGKILL with its group; wait until it is reaped or a zombie
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("grandchild survived the wall timeout")
