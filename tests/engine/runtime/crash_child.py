"""Child processes for the SIGKILL test.

``python crash_child.py zygote``: imports torch and the engine once, then for each stdin line
``go SESSION OUTFILE`` forks a real child process that chats fast on SESSION and appends
``READY`` and one JSON line per SessionLoaded / StateSaved event to OUTFILE; the zygote answers
with the child's pid. ``wait PID`` reaps it and answers with the raw wait status. (Forking from
a warm process keeps each round's start-up to milliseconds on a loaded machine; what gets
killed is still a separate process with its own engine thread, files and SQLite connection.)
"""
import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402

from engine.runtime import Engine, EngineConfig  # noqa: E402
from engine.store.sessions import Session  # noqa: E402
from runtime_fakes import ScriptedModel, tiny_model  # noqa: E402


def chat_forever(session_name: str, outfile: str) -> None:
    torch.set_num_threads(1)
    fd = os.open(outfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def say(line: str) -> None:
        os.write(fd, (line + "\n").encode())       # one write() per line: survives the kill whole

    session = Session.open(session_name)
    model = ScriptedModel(tiny_model(), reply="\x12noted\n", commit=+1)
    eng = Engine(model, session=session, config=EngineConfig(
        impulses=False, consolidate_after_idle_s=3600, publish_tokens=False, save_after_turn=True))
    ended = threading.Event()

    def report(ev):
        if ev.type in ("StateSaved", "SessionLoaded"):
            say(json.dumps(ev.to_json()))
        elif ev.type == "TurnEnded":
            ended.set()

    eng.bus.subscribe("*", report)
    eng.start()
    say("READY")
    i = session.log.count("UserMessage")     # continue the numbering of earlier (killed) runs
    while True:
        ended.clear()
        eng.submit_user(f"fact {i}: key{i} is {i * 7}")
        ended.wait(10)
        i += 1


def zygote() -> None:
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "go":
            pid = os.fork()
            if pid == 0:
                try:
                    chat_forever(cmd[1], cmd[2])
                finally:
                    os._exit(1)
            print(pid, flush=True)
        elif cmd[0] == "wait":
            _, status = os.waitpid(int(cmd[1]), 0)
            print(status, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "zygote":
        zygote()
    else:
        chat_forever(sys.argv[1], sys.argv[2])
