"""Run a tool in two layers: a short-lived, resource-limited child process, and RestrictedPython inside it.

Outer layer (the process), one per call:
  * ``python -I -S -B toolsmith/_runner.py`` started with ``start_new_session=True``, an **empty
    environment**, a fresh **temporary working directory** (deleted afterwards) and stdin/stdout
    pipes; the request (code, args, limits) goes in on stdin as JSON.
  * The runner lowers its own ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
    ``RLIMIT_CORE`` (and ``RLIMIT_NPROC`` = 0 for sandboxed tools) *before* it compiles anything.
    There is no ``preexec_fn``: it is unsafe when the parent has threads, and the engine has.
  * A wall timeout here ``os.killpg(SIGKILL)``s the child's whole process group, then reaps it.
  * stdout/stderr are read up to a cap and marked truncated; the result must be one JSON line
    tagged with a per-call nonce, is parsed with ``json`` (never pickle) and checked again here.

  ``-I`` ignores ``PYTHON*`` variables and the user site and keeps the script's folder off
  ``sys.path``; ``-S`` skips ``site``, so no site-packages and no ``.pth`` file (which can run
  arbitrary code at start-up, e.g. editable-install hooks) is processed; ``-B`` writes no
  ``.pyc``. The child therefore sees only the standard library. RestrictedPython is the one
  third-party package it needs: the parent passes the *package directory* it imported it from,
  and the runner registers a package whose ``__path__`` is exactly that directory, then imports
  the submodules it uses. Dropping ``-S``, or adding a whole site-packages folder to
  ``sys.path``, would make every installed package (and its start-up hooks) reachable from the
  child for no gain.

Inner layer (the language): ``compile_restricted`` with the standard guards (``safer_getattr``,
``full_write_guard``, guarded getitem/getiter, the unpack guards, ``_inplacevar_``,
``PrintCollector``) and an allow-list of builtins: no ``__import__``, ``open``, ``eval``/``exec``,
``getattr``, ``type``, ``globals``, no class creation; ``math`` is a plain namespace copy and JSON
is offered as two wrapper functions, never as live modules. Only JSON data goes in and out.

What this protects against: tool code importing modules or reaching the interpreter through
dunder, frame or format-string walks (refused by RestrictedPython at compile or run time);
endless loops and CPU bombs (RLIMIT_CPU, wall timeout); memory bombs (RLIMIT_AS -> MemoryError);
huge files and file-descriptor exhaustion (RLIMIT_FSIZE, RLIMIT_NOFILE); forking (RLIMIT_NPROC);
huge output (caps); ``SystemExit``/``KeyboardInterrupt`` and crashes (they end only the child);
leaking the parent's environment or working directory; one run changing state seen by the next
(every run is a fresh process); non-JSON or oversized results.

What it does NOT protect against: a bug in CPython or RestrictedPython that yields a full escape
(then the code runs as this user, limited only by the rlimits: it can read what the user can
read and use the network - there is no namespace, seccomp or network isolation here); side
channels and timing; a privileged tool (``sandbox: false``), which runs plain Python inside the
process limits only and is therefore approved by a person every time; grandchildren that call
``setsid`` to leave the process group (only possible for privileged tools: NPROC=0 stops forking
in sandboxed ones, except for root, where RLIMIT_NPROC is not enforced).
"""
from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("_runner.py")


@dataclass(frozen=True)
class SandboxLimits:
    """Per-call limits. ``cpu_s`` is whole seconds of CPU (rlimit granularity)."""

    cpu_s: int = 2
    wall_s: float = 5.0
    memory_bytes: int = 512 * 1024 * 1024
    file_bytes: int = 1024 * 1024
    open_files: int = 32
    max_output_bytes: int = 256 * 1024
    max_result_bytes: int = 64 * 1024
    max_printed_bytes: int = 16 * 1024
    max_args_bytes: int = 64 * 1024


@dataclass
class RunResult:
    """What one call produced. ``error_type`` is one of: compile, exception, recursion, memory,
    exit, invalid_result, result_too_large, cpu_limit, timeout, crashed, protocol, bad_args."""

    ok: bool
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    printed: str = ""
    truncated: bool = False
    duration_ms: float = 0.0
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "result": self.result, "error": self.error,
                "error_type": self.error_type, "printed": self.printed,
                "truncated": self.truncated, "duration_ms": round(self.duration_ms, 2),
                "exit_code": self.exit_code}


def restricted_python_dir() -> str:
    """The directory of the RestrictedPython package this process uses (handed to the child)."""
    import RestrictedPython
    return str(Path(RestrictedPython.__file__).resolve().parent)


def run_source(source: str, name: str, args: dict[str, Any], *, restricted: bool = True,
               limits: SandboxLimits = SandboxLimits()) -> RunResult:
    """Run function ``name`` defined in ``source`` with keyword ``args`` in a fresh sandbox child.

    Never raises for anything the tool does; returns ``RunResult(ok=False, ...)`` instead."""
    start = time.perf_counter()
    nonce = secrets.token_hex(8) + ":"
    try:
        request = json.dumps({
            "nonce": nonce, "name": name, "source": source, "args": args, "restricted": restricted,
            "rp_dir": restricted_python_dir() if restricted else None,
            "limits": {"cpu_s": max(1, int(limits.cpu_s)), "memory_bytes": limits.memory_bytes,
                       "file_bytes": limits.file_bytes, "open_files": limits.open_files},
            "max_result_bytes": limits.max_result_bytes, "max_printed_bytes": limits.max_printed_bytes,
        }, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        return RunResult(False, error=f"arguments are not plain JSON: {exc}", error_type="bad_args")
    if len(request) > limits.max_args_bytes + 16 * 1024:
        return RunResult(False, error="arguments too large", error_type="bad_args")

    with tempfile.TemporaryDirectory(prefix="mosaic-tool-") as workdir:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", str(RUNNER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=workdir, env={}, start_new_session=True, close_fds=True)
        out, err, truncated, timed_out = _communicate(proc, request, limits)
        code = proc.returncode
    elapsed = (time.perf_counter() - start) * 1000
    res = _interpret(out, err, truncated, timed_out, code, nonce, limits)
    res.duration_ms, res.exit_code = elapsed, code
    return res


def _communicate(proc: subprocess.Popen, request: bytes, limits: SandboxLimits
                 ) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin, read capped stdout/stderr, enforce the wall timeout on the process group."""
    deadline = time.monotonic() + limits.wall_s
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    truncated = timed_out = False
    sel = selectors.DefaultSelector()
    os.set_blocking(proc.stdin.fileno(), False)
    sel.register(proc.stdin, selectors.EVENT_WRITE)
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    pending = memoryview(request)
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                f = key.fileobj
                if f is proc.stdin:
                    try:
                        n = os.write(f.fileno(), pending[:65536])
                        pending = pending[n:]
                    except (BrokenPipeError, BlockingIOError):
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(f)
                        f.close()
                    continue
                chunk = os.read(f.fileno(), 65536)
                if not chunk:
                    sel.unregister(f)
                    continue
                buf = bufs[f]
                room = limits.max_output_bytes - len(buf)
                if len(chunk) > room:
                    truncated = True
                buf += chunk[:max(room, 0)]
    finally:
        sel.close()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        if not timed_out and not _exited_unreaped(proc, deadline):
            timed_out = True
        # Kill whatever is left of the group (grandchildren, or the child on timeout). The child
        # is not reaped yet, so its pid - the group id - cannot have been reused.
        _kill_group(proc)
        proc.wait()
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), truncated, timed_out


def _exited_unreaped(proc: subprocess.Popen, deadline: float) -> bool:
    """Wait (until ``deadline``) for the child to exit *without reaping it* (WNOWAIT)."""
    if not hasattr(os, "waitid"):  # no WNOWAIT here: reap instead (the group kill may then miss)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            return False
    delay = 0.0005
    while True:
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child is its group's leader (new session)
    except (ProcessLookupError, PermissionError):
        pass


def _interpret(out: bytes, err: bytes, truncated: bool, timed_out: bool, code: int | None,
               nonce: str, limits: SandboxLimits) -> RunResult:
    payload = None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith(nonce):
            try:
                payload = json.loads(line[len(nonce):])
            except (ValueError, RecursionError):
                payload = None
    if payload is None or not isinstance(payload, dict):
        if timed_out:
            return RunResult(False, error=f"timed out after {limits.wall_s:g} s (wall clock); "
                                          "the process group was killed", error_type="timeout")
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return RunResult(False, error=f"CPU time limit of {limits.cpu_s} s exceeded",
                             error_type="cpu_limit")
        if truncated:
            return RunResult(False, error="output exceeded the cap and was truncated",
                             error_type="protocol", truncated=True)
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if "MemoryError" in tail[0]:
            return RunResult(False, error=f"out of memory (limit {limits.memory_bytes >> 20} MiB)",
                             error_type="memory")
        return RunResult(False, error=f"sandbox process ended without a result (exit {code}): "
                                      f"{tail[0][:300]}", error_type="crashed")
    if payload.get("ok") is True:
        return RunResult(True, result=payload.get("result"), printed=str(payload.get("printed", "")),
                         truncated=bool(payload.get("printed_truncated")) or truncated)
    return RunResult(False, error=str(payload.get("error", "unknown error")),
                     error_type=str(payload.get("error_type", "exception")),
                     truncated=truncated)
