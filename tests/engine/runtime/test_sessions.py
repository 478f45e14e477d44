"""Sessions: generations with a manifest written last, fallback past a damaged generation, event log."""
import json
import sqlite3

import pytest
import torch

from engine.store.eventlog import EventLog
from engine.store.sessions import Session, SessionError
from engine.runtime.events import Event
from engine.vm import ModelConfig, VMState

CFG = ModelConfig.preset("tiny")


def _state(fill: float) -> VMState:
    s = VMState.empty(CFG, 1)
    s.layers[0].mem_values.fill_(fill)
    s.layers[0].mem_valid[0, 1, 0] = True
    s.position.fill_(int(fill * 10))
    return s


def _load(p):
    return VMState.load(p, CFG)


def test_save_load_keeps_previous_generation(tmp_path):
    with Session.open("s1") as s:
        assert s.load(_load) is None
        for i in range(1, 5):
            g = s.save(_state(float(i)), {"n": i})
            assert g.generation == i
        assert s.generations() == [4, 3]                 # newest and the previous one
        got = s.load(_load)
        assert got.generation == 4 and got.runtime == {"n": 4}
        assert torch.equal(got.state.layers[0].mem_values, _state(4.0).layers[0].mem_values)


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_damaged_newest_generation_is_moved_aside(damage):
    with Session.open("s2") as s:
        s.save(_state(1.0), {"n": 1})
        s.save(_state(2.0), {"n": 2})
        st = s.path / "state.000002.safetensors"
        if damage == "truncate":
            st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
        elif damage == "flip":
            data = bytearray(st.read_bytes())
            data[-5] ^= 0xFF
            st.write_bytes(bytes(data))
        else:
            (s.path / "manifest.000002.json").write_text("{not json")
        got = s.load(_load)
        assert got.generation == 1 and got.runtime == {"n": 1}
        assert len(got.moved_aside) == 1 and "generation 2" in got.moved_aside[0]
        assert not (s.path / "manifest.000002.json").exists()
        assert any((s.path / "corrupt").iterdir())
        # saving goes on after the damaged one, never reusing its number
        assert s.save(_state(3.0), {"n": 3}).generation >= 3


def test_orphans_of_a_killed_save_are_ignored_and_cleaned():
    with Session.open("s3") as s:
        s.save(_state(1.0), {"n": 1})
        (s.path / "state.000002.safetensors").write_bytes(b"half")      # killed before its manifest
        (s.path / ".state.000003.safetensors.abc.tmp").write_bytes(b"x")
        assert s.load(_load).generation == 1
    with Session.open("s3") as s:
        assert not list(s.path.glob(".*.tmp"))
        s.save(_state(2.0), {"n": 2})
        assert not (s.path / "state.000002.safetensors").exists()
        assert s.generations() == [3, 1]
        assert s.load(_load).runtime == {"n": 2}


def test_session_is_locked_and_names_are_checked():
    s = Session.open("busy")
    try:
        with pytest.raises(SessionError, match="in use"):
            Session.open("busy")
    finally:
        s.close()
    Session.open("busy").close()
    for bad in ("", "../x", ".hidden", "a/b", "x" * 65):
        with pytest.raises(SessionError, match="bad session name"):
            Session.open(bad)


def test_event_log_is_wal_and_append_only(tmp_path):
    log = EventLog(tmp_path / "ev.db")
    for i in range(5):
        log.append(Event("Thing", {"i": i}))
    assert log.count() == 5 and log.count("Thing") == 5
    rows = log.read()
    assert [r["payload"]["i"] for r in rows] == list(range(5)) and all("ts" in r for r in rows)
    assert [r["payload"]["i"] for r in log.read(after_seq=rows[2]["seq"])] == [3, 4]
    mode = sqlite3.connect(tmp_path / "ev.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    log.close()
    assert json.loads(json.dumps(EventLog(tmp_path / "ev.db").read()))[4]["type"] == "Thing"


def test_a_corrupt_event_log_is_moved_aside_and_a_new_one_started(tmp_path):
    with Session.open("logbad") as session:
        path = session.path
    (path / "events.db").write_bytes(b"this is not a database at all" * 100)
    with Session.open("logbad") as session:
        assert any("corrupt" in w for w in session.warnings)
        session.log.append({"type": "Probe", "ts": 1.0})
        assert session.log.count() == 1
    kept = list(path.glob("events.db.corrupt-*"))
    assert kept and kept[0].read_bytes().startswith(b"this is not a database")
    with Session.open("logbad") as session:  # the lock was released and the new log is fine
        assert session.warnings == [] and session.log.count() == 1
