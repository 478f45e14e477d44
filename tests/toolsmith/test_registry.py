"""ToolRegistry: approval bound to the hash, policy, rate limit and dedup, deprecation, corruption."""
import sqlite3

import pytest

from toolsmith import RegistryError, ToolPolicy, ToolRegistry, default_db_path
from toolsmith_helpers import FAST, make_def


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def reg(tmp_path):
    r = ToolRegistry(tmp_path / "tools.db", clock=Clock())
    yield r
    r.close()


def test_default_path_follows_mosaic_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSAIC_HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / "tools.db"
    r = ToolRegistry()
    assert (tmp_path / "home" / "tools.db").exists()
    r.close()


def test_builtins_are_installed_approved_and_callable(reg):
    names = {r.name for r in reg.model_tools()}
    assert {"add", "multiply", "word_count", "reverse_text", "sort_numbers"} <= names
    assert all(r.builtin and r.decided_by == "builtin" for r in reg.model_tools())
    assert reg.call("word_count", {"text": "a b  c"}, limits=FAST).result == 3


def test_proposal_waits_for_a_person_then_runs(reg):
    out = reg.propose(make_def())
    assert out.status == "pending" and out.version == 1
    assert "double" not in {r.name for r in reg.model_tools()}
    with pytest.raises(RegistryError, match="no approved version"):
        reg.call("double", {"x": 2})
    rec = reg.approve("double", out.hash)
    assert rec.status == "approved" and rec.current and rec.decided_by == "person"
    assert reg.call("double", {"x": 21}, limits=FAST).result == 42
    actions = [h["action"] for h in reg.history("double")]
    assert actions == ["proposed", "approved"]


def test_approval_is_bound_to_the_hash(reg):
    v1 = reg.propose(make_def(), source="person")
    reg.approve("double", v1.hash)
    # one byte changed: a new version that needs its own approval; v1 keeps running meanwhile
    v2 = reg.propose(make_def(body="return 2 * x + 0"), source="person", update=True)
    assert v2.status == "pending" and v2.version == 2 and v2.hash != v1.hash
    assert reg.get("double").hash == v1.hash
    with pytest.raises(RegistryError, match="has hash"):
        reg.approve("double", v1.hash)           # the approved hash cannot stand in for the new one
    with pytest.raises(RegistryError, match="has hash"):
        reg.approve("double", "0" * 64)
    reg.approve("double", v2.hash)
    assert reg.get("double").hash == v2.hash and reg.get("double").version == 2
    assert [v.status for v in reg.versions("double")] == ["approved", "approved"]


def test_tampered_definition_is_refused(reg, tmp_path):
    out = reg.propose(make_def())
    reg.approve("double")
    conn = sqlite3.connect(tmp_path / "tools.db")
    conn.execute("UPDATE versions SET definition = replace(definition, '2 * x', 'x * 1000') WHERE hash=?",
                 (out.hash,))
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError, match="does not match its hash"):
        reg.call("double", {"x": 1})
    assert "double" not in {r.name for r in reg.list()} and reg.warnings


def test_model_cannot_replace_or_shadow_tools(reg):
    reg.propose(make_def())
    assert reg.propose(make_def(body="return 3 * x")).status == "invalid"  # name taken
    assert reg.propose(make_def(body="return 3 * x"), update=True).status == "invalid"
    out = reg.propose(make_def(name="add", args="x"), source="person", update=True)
    assert out.status == "invalid" and "built-in" in out.errors[0].message


def test_rejected_definition_cannot_return_unchanged(reg):
    out = reg.propose(make_def())
    rec = reg.reject("double", reason="no thanks")
    assert rec.status == "rejected" and rec.reason == "no thanks"
    again = reg.propose(make_def())
    assert again.status == "previously_rejected" and again.errors
    assert reg.propose(make_def(body="return x + x")).status == "pending"  # changed: fine
    assert out.hash != reg.get("double").hash


def test_duplicates_are_deduplicated(reg):
    first = reg.propose(make_def())
    for _ in range(5):
        dup = reg.propose(make_def())
        assert dup.status == "duplicate" and dup.hash == first.hash
    assert len(reg.pending()) == 1
    reg.approve("double")
    assert reg.propose(make_def()).status == "already_approved"


def test_rate_limit_per_window(tmp_path):
    clock = Clock()
    reg = ToolRegistry(tmp_path / "tools.db", clock=clock,
                       policy=ToolPolicy(max_proposals_per_window=3, window_s=60, max_pending=100))
    for i in range(3):
        assert reg.propose(make_def(name=f"t{i}")).status == "pending"
    limited = reg.propose(make_def(name="t9"))
    assert limited.status == "rate_limited" and "rate limit" in limited.errors[0].message
    assert reg.propose(make_def(name="t9"), source="person").status == "pending"  # people are not limited
    clock.t += 61
    assert reg.propose(make_def(name="t10")).status == "pending"
    reg.close()


def test_pending_cap(tmp_path):
    reg = ToolRegistry(tmp_path / "tools.db", clock=Clock(), policy=ToolPolicy(max_pending=2))
    assert reg.propose(make_def(name="a1")).accepted and reg.propose(make_def(name="a2")).accepted
    out = reg.propose(make_def(name="a3"))
    assert out.status == "rate_limited" and "wait for a decision" in out.errors[0].message
    reg.close()


def test_auto_approve_only_sandboxed_and_only_when_enabled(tmp_path):
    off = ToolRegistry(tmp_path / "a.db", clock=Clock())
    assert off.propose(make_def()).status == "pending"
    off.close()
    on = ToolRegistry(tmp_path / "b.db", clock=Clock(), policy=ToolPolicy(auto_approve_sandboxed=True))
    out = on.propose(make_def())
    assert out.status == "approved" and on.get("double").decided_by == "policy"
    priv = on.propose(make_def(name="priv", body="import os\nreturn os.getpid()", sandbox=False))
    assert priv.status == "pending"                      # privileged: never auto-approved
    with pytest.raises(RegistryError, match="only a person"):
        on.approve("priv", by="policy")
    assert on.approve("priv", by="person").status == "approved"
    on.close()


def test_deprecation_after_idle_time_and_uses(tmp_path):
    clock = Clock()
    day = 86400.0
    reg = ToolRegistry(tmp_path / "tools.db", clock=clock,
                       policy=ToolPolicy(deprecate_idle_s=10 * day, deprecate_below_uses=3))
    for name in ("rarely", "often", "fresh"):
        reg.propose(make_def(name=name), source="person")
        reg.approve(name)
    reg.call("rarely", {"x": 1}, limits=FAST)
    for _ in range(3):
        reg.call("often", {"x": 1}, limits=FAST)
    clock.t += 11 * day
    reg.propose(make_def(name="newer"), source="person")
    reg.approve("newer")
    done = dict(reg.deprecate_idle())
    assert set(done) == {"rarely", "fresh"}               # "often" was used enough; "newer" is not idle
    visible = {r.name for r in reg.model_tools()}
    assert not {"rarely", "fresh"} & visible and {"often", "newer", "add"} <= visible
    kept = reg.get("rarely")                               # hidden, not deleted
    assert kept.deprecated and kept.definition.name == "rarely"
    with pytest.raises(RegistryError, match="deprecated"):
        reg.call("rarely", {"x": 1})
    assert reg.call("rarely", {"x": 1}, allow_deprecated=True, limits=FAST).ok
    reg.restore("rarely")
    assert "rarely" in {r.name for r in reg.model_tools()}
    clock.t += 100 * day
    assert "add" not in dict(reg.deprecate_idle())        # built-ins are never deprecated
    reg.close()


def test_deprecation_of_failing_tools(tmp_path):
    reg = ToolRegistry(tmp_path / "tools.db", clock=Clock(), policy=ToolPolicy(deprecate_after_failures=2))
    reg.propose(make_def(name="broken", body="return 1 / 0"), source="person")
    reg.approve("broken")
    for _ in range(2):
        assert not reg.call("broken", {"x": 1}, limits=FAST).ok
    assert dict(reg.deprecate_idle())["broken"].startswith("failing")
    reg.close()


@pytest.mark.parametrize("damage", ["zeros", "garbage", "truncated"])
def test_corrupt_db_is_moved_aside_and_a_new_one_starts(tmp_path, damage):
    path = tmp_path / "tools.db"
    reg = ToolRegistry(path)
    reg.propose(make_def(), source="person")
    reg.close()
    size = path.stat().st_size
    if damage == "zeros":
        path.write_bytes(b"\0" * size)
    elif damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 200)
    else:
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\xff" * 50 + data[150:size // 2])
    fresh = ToolRegistry(path)
    assert fresh.recovered is not None and fresh.recovered.exists()
    assert fresh.recovered.name.startswith("tools.db.corrupt-")
    assert "moved it to" in fresh.warnings[0]
    assert fresh.integrity() == "ok" and "add" in {r.name for r in fresh.model_tools()}
    assert fresh.propose(make_def(), source="person").status == "pending"
    fresh.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("tools.db.corrupt-"))


def test_registry_is_usable_from_threads(reg):
    import threading
    errors = []

    def work(i):
        try:
            reg.propose(make_def(name=f"th{i}"), source="person")
            reg.approve(f"th{i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and all(reg.get(f"th{i}").current for i in range(8))
