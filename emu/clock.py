"""Virtual time: one tick per guest instruction, never the host's clock.

Devices get the clock injected and schedule callbacks at absolute ticks; the
machine runs the CPU until the next deadline, then calls :meth:`advance_to`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Event:
    """A callback due at ``when`` (ticks); ``seq`` keeps same-tick events in order."""

    when: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    name: str = field(default="", compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Counts guest instructions; ``hz`` converts ticks to seconds."""

    def __init__(self, hz: int = 100_000_000) -> None:
        if hz <= 0:
            raise ValueError(f"clock frequency must be positive, not {hz!r}")
        self.hz = hz
        self.now = 0
        self._queue: list[Event] = []
        self._seq = itertools.count()

    # conversions -------------------------------------------------------
    def ticks_from_ns(self, ns: int) -> int:
        return (ns * self.hz + 999_999_999) // 1_000_000_000

    def ns_from_ticks(self, ticks: int) -> int:
        return ticks * 1_000_000_000 // self.hz

    @property
    def now_ns(self) -> int:
        return self.ns_from_ticks(self.now)

    # scheduling --------------------------------------------------------
    def schedule_at(self, when: int, callback: Callable[[], None], name: str = "") -> Event:
        """Call ``callback`` once virtual time reaches ``when`` (ticks)."""
        ev = Event(max(when, self.now), next(self._seq), callback, name)
        heapq.heappush(self._queue, ev)
        return ev

    def schedule_in(self, delta: int, callback: Callable[[], None], name: str = "") -> Event:
        return self.schedule_at(self.now + max(delta, 0), callback, name)

    def next_deadline(self) -> int | None:
        """The tick of the earliest pending event, or None when nothing is scheduled."""
        while self._queue and self._queue[0].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0].when if self._queue else None

    def advance_to(self, when: int) -> int:
        """Move time forward to ``when``, running every event due by then in order.

        Each callback runs with :attr:`now` at its own deadline, so a periodic
        device that reschedules itself keeps its period across a long step.
        Returns the number of callbacks run. Time never goes backwards.
        """
        ran = 0
        while self._queue and self._queue[0].when <= when:
            ev = heapq.heappop(self._queue)
            if ev.cancelled:
                continue
            self.now = max(self.now, ev.when)
            ev.callback()
            ran += 1
        self.now = max(self.now, when)
        return ran

    def advance_by(self, delta: int) -> int:
        return self.advance_to(self.now + delta)
