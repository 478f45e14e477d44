"""A thread-safe priority event bus: ordered by priority (high first), then time, then arrival.

Publishing only pushes onto a heap (O(log n) under a lock), so a publisher --
the engine thread above all -- is never held up by a slow subscriber. Delivery
happens on the bus's own dispatcher thread (``start()``) or synchronously in
whoever calls ``drain()``. Publishing an event nobody listens to is fine (it is
dropped after delivery to nobody), and a subscriber that raises is counted and
logged, never propagated.
"""
from __future__ import annotations

import heapq
import logging
import threading
from collections import defaultdict
from typing import Callable

from engine.runtime.events import Event

log = logging.getLogger(__name__)

Callback = Callable[[Event], None]


def _key(ev: Event) -> tuple[int, float, int]:
    return (-ev.priority, ev.ts, ev.seq)


class PriorityInbox:
    """A blocking priority queue of events (the engine's inbox uses it too)."""

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[int, float, int], Event]] = []
        self._cond = threading.Condition()

    def put(self, ev: Event) -> None:
        with self._cond:
            heapq.heappush(self._heap, (_key(ev), ev))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Event | None:
        """Pop the most urgent event, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            if not self._heap and timeout != 0:
                self._cond.wait_for(lambda: bool(self._heap), timeout)
            if not self._heap:
                return None
            return heapq.heappop(self._heap)[1]

    def get_many(self, limit: int) -> list[Event]:
        """Pop up to ``limit`` events in order, without waiting."""
        with self._cond:
            n = min(limit, len(self._heap))
            return [heapq.heappop(self._heap)[1] for _ in range(n)]

    def wait(self, timeout: float | None) -> bool:
        """Block until something is queued or ``timeout`` passes; True if something is queued."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._heap), timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)


class EventBus:
    """Publish/subscribe by event type (or ``"*"`` for every event), delivered in priority order."""

    def __init__(self, name: str = "bus") -> None:
        self.name = name
        self._inbox = PriorityInbox()
        self._subs: dict[str, list[tuple[int, Callback]]] = defaultdict(list)
        self._subs_lock = threading.Lock()
        self._next_token = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._deliver_lock = threading.Lock()   # one deliverer at a time keeps order
        self.published = 0
        self.delivered = 0
        self.subscriber_errors = 0

    # -- subscribing -------------------------------------------------------------
    def subscribe(self, type_: str, callback: Callback) -> int:
        """Call ``callback(event)`` for every event of ``type_`` (``"*"``: all). Returns a token."""
        with self._subs_lock:
            self._next_token += 1
            self._subs[type_].append((self._next_token, callback))
            return self._next_token

    def unsubscribe(self, token: int) -> None:
        with self._subs_lock:
            for key in list(self._subs):
                self._subs[key] = [(t, cb) for t, cb in self._subs[key] if t != token]

    def has_subscribers(self, type_: str) -> bool:
        with self._subs_lock:
            return bool(self._subs.get(type_) or self._subs.get("*"))

    # -- publishing --------------------------------------------------------------
    def publish(self, ev: Event) -> None:
        """Queue ``ev`` for delivery. Never raises for lack of subscribers; never blocks on them."""
        self._inbox.put(ev)
        self.published += 1  # approximate under contention; tests count deliveries instead

    def pending(self) -> int:
        return len(self._inbox)

    # -- delivering --------------------------------------------------------------
    def _deliver(self, ev: Event) -> None:
        with self._subs_lock:
            targets = [cb for _, cb in self._subs.get(ev.type, ())] + [cb for _, cb in self._subs.get("*", ())]
        for cb in targets:
            try:
                cb(ev)
            except Exception:  # a subscriber's bug must not reach the publisher
                self.subscriber_errors += 1
                if self.subscriber_errors <= 3:   # say it, but do not flood stderr with a broken pipe
                    log.exception("subscriber of %s failed", ev.type)
        self.delivered += 1

    def drain(self, max_events: int | None = None) -> int:
        """Deliver pending events in this thread, most urgent first; returns how many."""
        n = 0
        with self._deliver_lock:
            while max_events is None or n < max_events:
                ev = self._inbox.get(timeout=0)
                if ev is None:
                    break
                self._deliver(ev)
                n += 1
        return n

    def start(self) -> "EventBus":
        """Deliver on a daemon thread from now on (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-dispatch", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._inbox.wait(0.1):
                with self._deliver_lock:
                    ev = self._inbox.get(timeout=0)
                    if ev is not None:
                        self._deliver(ev)

    def stop(self, flush: bool = True, timeout: float = 5.0) -> bool:
        """Stop the dispatcher; with ``flush`` deliver what is still queued first. True if joined."""
        self._stop.set()
        self._inbox.wake()
        joined = True
        if self._thread is not None:
            self._thread.join(timeout)
            joined = not self._thread.is_alive()
        if flush:
            self.drain()
        return joined
