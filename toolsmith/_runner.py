"""The sandbox child: run one tool call and print one JSON line. Started by ``toolsmith.sandbox``
as ``python -I -S -B _runner.py`` (see sandbox.py for why those flags).

Stdlib only until RestrictedPython is loaded from the directory the parent names, without putting
any site-packages directory on ``sys.path``. Order matters: read the request, lower the resource
limits, then load RestrictedPython, compile and run. Nothing from the tool reaches the real stdout:
the protocol line is written to a private duplicate of fd 1, prefixed by the parent's nonce.
"""
import json
import os
import resource
import signal
import sys

PROTO_FD = os.dup(1)


def _emit(nonce, payload):
    line = nonce + json.dumps(payload, allow_nan=False) + "\n"
    data = line.encode("utf-8", "backslashreplace")
    while data:
        n = os.write(PROTO_FD, data)
        data = data[n:]


def _set_limits(limits, restricted):
    """Lower this process's own limits (no preexec_fn in the parent: it may have threads)."""
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # soft -> SIGXCPU, hard -> SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    if restricted and hasattr(resource, "RLIMIT_NPROC"):
        try:  # no forking at all from restricted code (ignored for root)
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        except (ValueError, OSError):
            pass
    # A write past RLIMIT_FSIZE should be an OSError (EFBIG), not a silent SIGXFSZ death.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _load_restricted_python(rp_dir):
    """Make ``RestrictedPython`` importable from ``rp_dir`` only. The package ``__init__`` is not
    run: it would also import Utilities (random, hashlib, string) that the sandbox never uses;
    the submodules we need are imported from the package path."""
    import types
    package = types.ModuleType("RestrictedPython")
    package.__path__ = [rp_dir]
    package.__package__ = "RestrictedPython"
    sys.modules["RestrictedPython"] = package
    from RestrictedPython.compile import compile_restricted_exec
    return compile_restricted_exec


def _restricted_globals(printed):
    """Fresh globals for one run: an allow-list of builtins plus the standard guards."""
    import json as _json
    import math as _math
    import operator
    import types
    from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
    from RestrictedPython.Guards import (full_write_guard, guarded_iter_unpack_sequence,
                                         guarded_unpack_sequence, safe_builtins, safer_getattr)
    from RestrictedPython.PrintCollector import PrintCollector

    allowed = {name: safe_builtins[name] for name in safe_builtins
               if name not in ("__build_class__", "setattr", "delattr", "id", "_getattr_")}
    # C-iterating builtins RestrictedPython leaves out because they skip _getiter_. Our _getiter_
    # is the standard pass-through (it enforces nothing), so exposing them loses no check; the
    # process limits bound their cost.
    for fn in (all, any, dict, enumerate, filter, frozenset, list, map, max, min, reversed, set,
               sorted, sum, tuple, zip):
        allowed[fn.__name__] = fn

    def json_dumps(obj, indent=None, sort_keys=False):
        return _json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False)

    def json_loads(text):
        return _json.loads(text)

    iops = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
            "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
            "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
            "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul}

    def _inplacevar_(op, x, y):
        return iops[op](x, y)

    def _apply_(f, *args, **kwargs):
        return f(*args, **kwargs)

    def _print_(_getattr_=None):
        collector = PrintCollector(_getattr_)
        printed.append(collector)
        return collector

    math_ns = types.SimpleNamespace(**{k: getattr(_math, k) for k in dir(_math) if not k.startswith("_")})
    return {
        "__builtins__": allowed, "__name__": "tool",
        "_getattr_": safer_getattr, "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter, "_write_": full_write_guard,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_inplacevar_": _inplacevar_, "_apply_": _apply_, "_print_": _print_,
        "math": math_ns, "json_dumps": json_dumps, "json_loads": json_loads,
    }


def _tool_line(exc, filename):
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc, filename):
    text = f"{type(exc).__name__}: {exc}"[:500]
    line = _tool_line(exc, filename)
    return text + (f" (line {line})" if line else "")


def main():
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    nonce = request["nonce"]
    restricted = bool(request["restricted"])
    _set_limits(request["limits"], restricted)
    name, source, args = request["name"], request["source"], request["args"]
    filename = f"<tool:{name}>"
    printed = []
    captured = None
    try:
        if restricted:
            compile_restricted_exec = _load_restricted_python(request["rp_dir"])
            compiled = compile_restricted_exec(source, filename=filename)
            if compiled.errors:
                _emit(nonce, {"ok": False, "error_type": "compile",
                              "error": "; ".join(compiled.errors)[:1000]})
                return
            glb = _restricted_globals(printed)
            code = compiled.code
        else:  # privileged: plain Python, still inside the process limits
            import io
            code = compile(source, filename, "exec", dont_inherit=True)
            glb = {"__name__": "tool"}
            captured = sys.stdout = io.StringIO()
        exec(code, glb)
        fn = glb.get(name)
        if not callable(fn):
            _emit(nonce, {"ok": False, "error_type": "compile", "error": f"no function named {name!r}"})
            return
        result = fn(**args)
    except MemoryError:
        _emit(nonce, {"ok": False, "error_type": "memory",
                      "error": f"out of memory (limit {request['limits']['memory_bytes'] >> 20} MiB)"})
        return
    except RecursionError as exc:
        _emit(nonce, {"ok": False, "error_type": "recursion", "error": _describe(exc, filename)})
        return
    except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
        _emit(nonce, {"ok": False, "error_type": "exit",
                      "error": f"tool raised {type(exc).__name__}; only its sandbox process ended"})
        return
    except BaseException as exc:  # noqa: BLE001 - anything the tool raises is its failure
        _emit(nonce, {"ok": False, "error_type": "exception", "error": _describe(exc, filename)})
        return
    finally:
        if captured is not None:
            sys.stdout = sys.__stdout__

    text = "".join("".join(c.txt) for c in printed) if printed else (captured.getvalue() if captured else "")
    cap = request["max_printed_bytes"]
    out = {"ok": True, "printed": text[:cap], "printed_truncated": len(text) > cap}
    try:
        encoded = json.dumps(result, allow_nan=False)
    except MemoryError:
        _emit(nonce, {"ok": False, "error_type": "result_too_large", "error": "result too large to encode"})
        return
    except (TypeError, ValueError, RecursionError) as exc:
        _emit(nonce, {"ok": False, "error_type": "invalid_result",
                      "error": f"result is not plain JSON data: {type(exc).__name__}: {str(exc)[:200]}"})
        return
    if len(encoded) > request["max_result_bytes"]:
        _emit(nonce, {"ok": False, "error_type": "result_too_large",
                      "error": f"result is {len(encoded)} bytes; the limit is {request['max_result_bytes']}"})
        return
    out["result"] = json.loads(encoded)  # a plain copy: no subclasses survive
    _emit(nonce, out)


if __name__ == "__main__":
    main()
