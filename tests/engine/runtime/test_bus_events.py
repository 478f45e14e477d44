"""Events are frozen JSON records; the bus is thread-safe, ordered, and never raises."""
import json
import threading

import pytest

from engine.runtime.bus import EventBus
from engine.runtime.events import Event


def test_event_is_frozen_and_serialises():
    ev = Event("Impulse", {"drive": "idle", "urgency": 0.5}, priority=25)
    with pytest.raises(Exception):
        ev.type = "Other"  # type: ignore[misc]
    d = json.loads(ev.dumps())
    assert d["type"] == "Impulse" and isinstance(d["ts"], float) and d["payload"]["drive"] == "idle"
    back = Event.from_json(ev.to_json())
    assert (back.type, back.payload, back.id, back.ts, back.priority) == (ev.type, ev.payload, ev.id, ev.ts, 25)


def test_event_rejects_non_json_payload_and_bad_delta():
    with pytest.raises(TypeError):
        Event("X", {"blob": b"bytes"})
    with pytest.raises(ValueError):
        Event("X", {}, commitment_delta=2)


def test_publish_without_subscribers_never_raises():
    bus = EventBus()
    bus.publish(Event("NobodyListens"))
    assert bus.drain() == 1


def test_subscriber_exception_is_contained():
    bus = EventBus()
    got = []

    def bad(ev):
        raise RuntimeError("boom")

    bus.subscribe("A", bad)
    bus.subscribe("A", got.append)
    bus.publish(Event("A"))
    bus.publish(Event("A"))
    assert bus.drain() == 2
    assert len(got) == 2 and bus.subscriber_errors == 2


def test_unsubscribe_and_wildcard():
    bus = EventBus()
    a, star = [], []
    tok = bus.subscribe("A", a.append)
    bus.subscribe("*", star.append)
    bus.publish(Event("A"))
    bus.drain()
    bus.unsubscribe(tok)
    bus.publish(Event("A"))
    bus.publish(Event("B"))
    bus.drain()
    assert len(a) == 1 and [e.type for e in star] == ["A", "A", "B"]


def _publish_from_threads(bus, n_threads, per_thread):
    barrier = threading.Barrier(n_threads)

    def work(k):
        barrier.wait()
        for i in range(per_thread):
            bus.publish(Event("Load", {"k": k, "i": i}, priority=(i * 7 + k) % 5))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_100k_events_from_threads_none_lost_priority_order():
    bus = EventBus()
    got = []
    bus.subscribe("Load", got.append)
    _publish_from_threads(bus, 4, 25_000)
    assert bus.drain() == 100_000
    assert len(got) == 100_000
    assert len({(e.payload["k"], e.payload["i"]) for e in got}) == 100_000
    keys = [(-e.priority, e.ts, e.seq) for e in got]
    assert keys == sorted(keys)
    # per publisher, events of one priority keep their publishing order
    last = {}
    for e in got:
        k = (e.payload["k"], e.priority)
        assert last.get(k, -1) < e.payload["i"]
        last[k] = e.payload["i"]


def test_100k_events_with_live_dispatcher_none_lost():
    bus = EventBus().start()
    got = []
    lock = threading.Lock()

    def on(ev):
        with lock:
            got.append(ev)

    bus.subscribe("*", on)
    _publish_from_threads(bus, 5, 20_000)
    assert bus.stop(flush=True)
    assert len(got) == 100_000
    assert len({(e.payload["k"], e.payload["i"]) for e in got}) == 100_000
