"""Keeps Python's cyclic garbage collector from stalling the event loop.

With 10,000 VMs alive, a full collection walks every tracked object: 70-95 ms on these
machines, in the middle of a keypress or a refresh. Almost nothing ovmtui keeps is cyclic:
snapshots, VMs and table rows are freed by reference counting the moment they are replaced.
So after each published snapshot the young generations are collected (cheap: only what was
made since) and everything that survived is frozen out of the collector's reach. Frozen
objects are still freed by reference counting; only cyclic garbage that reached the old
generation before a freeze would stay, so every ``RELEASE_EVERY_S`` everything is unfrozen
and collected once: one full pause per half hour instead of one every few seconds.

The first round is different: it builds the whole estate, so nothing it allocates is
garbage yet, and every automatic collection during it walks the growing estate again (a
cold poll of 10,000 VMs paid 20-45 ms pauses for that, and a young collection after it
100 ms). Automatic collection is therefore off from the first poll until the first
snapshot is out, and that snapshot is frozen without a collection.

Measured with 100 test-driver hosts x 100 VMs polled every second for a minute: the frozen
set stayed at ~113,000 objects (no growth), resident memory flat, and the longest stall went
from 75 ms (a full collection) to 18-29 ms. One of the latency knobs: docs/latency.md.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

RELEASE_EVERY_S = 1800.0


class GarbagePolicy:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, enabled: bool = True
    ) -> None:
        self._clock = clock
        self._enabled = enabled
        self._released_at = clock()
        self._cold = False  # in the first round: automatic collection is off
        self._started = False

    def before_first_poll(self) -> None:
        if not self._enabled or self._started:
            return
        self._started = True
        self._cold = gc.isenabled()  # someone else's choice to disable it is left alone
        if self._cold:
            gc.freeze()  # what start-up made stays out of the first round's way too
            gc.disable()

    def stop(self) -> None:
        """Leaves the collector as it found it, whether or not a snapshot came out."""
        # A publish's collection runs a loop turn after it (see EstatePoller._emit): one
        # still due after the poller stopped must not walk whatever the process holds then.
        self._enabled = False
        if self._cold:
            self._cold = False
            gc.enable()

    def after_publish(self) -> None:
        if not self._enabled:
            return
        if self._cold:
            self._cold = False
            gc.freeze()
            gc.enable()
            return
        now = self._clock()
        if now - self._released_at >= RELEASE_EVERY_S:
            self._released_at = now
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()
