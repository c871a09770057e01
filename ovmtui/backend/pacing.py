"""Two bounds on what polls do at once: waiting on hosts (wide) and working (narrow).

A poll mostly waits: a connect is about nine round trips, a command one or two, and at
50 ms from the client that is half a second in which the poll needs no CPU at all. Holding a
CPU-sized slot for that time bounded the first round of 200 far hosts by 200 x 0.5 s / 2
(issue 13). So the poller gives every poll two bounds, taken by phase:

- ``waiting()``: connects and commands in flight. Wide (``WAIT_SLOTS``, 64): it bounds the
  handshakes and sessions opened at once, not CPU. A phase still waiting after
  ``WAIT_HOLD_S`` is a host that does not answer (a dead rack, a connect timeout): it lets
  its slot go, so silent hosts never keep the others from being polled.
- ``working()``: parsing, the work that competes with the event loop for a CPU and the
  GIL. Narrow (as many as CPUs, 2 to 4: ``default_concurrency`` in the poller). Folding an
  answer in (on the loop itself) takes ``folding()``, a narrow bound of the same size but
  its own, so that answers do not queue behind polls working in threads.
  Entering it gives up the task's waiting slot: a poll never holds both kinds at once,
  and never acquires a waiting slot while it works (no order to deadlock on). The work
  begins on a turn of the event loop of its own.
  A working phase still running after ``WORK_HOLD_S`` is waiting after all (a local
  daemon that hung): it lets go too.

New connections start ``CONNECT_SPACING_S`` apart (``connect_turn()``), so that their round
trips do not land in the same turns of the event loop.

The poller puts its ``Pacing`` in the context of each poll (``paced``); the backends mark
their phases with the module functions ``waiting()`` and ``working()``, which do nothing
outside a poll (an action, a headless definition export). Nested ``waiting()`` blocks of one
task share the outer one's slot while it is held (after ``working()`` gave it up, a command
takes one again). A latency knob: see docs/latency.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

WAIT_SLOTS = 64
# A connect plus a full poll at 100 ms is about 1 s; twice that and the host is silent.
WAIT_HOLD_S = 2.0
WORK_HOLD_S = 0.5
# New connections start at least this far apart (at most 200 a second). Connects started
# at one instant stay in step: every one of their round trips lands in the same turn of the
# event loop, which then decrypts, verifies and answers for all of them at once (64 far
# hosts at once: the loop's p99 stall was well over 5 ms). 200 connects a second is about
# what one CPU's worth of key exchanges and first polls takes anyway (issue 13).
CONNECT_SPACING_S = 0.005


@dataclass(eq=False)
class _Held:
    """One slot a task holds; released once, whoever comes first (exit, timer, working)."""

    release: Callable[[], None]
    timer: asyncio.TimerHandle | None = None
    done: bool = False

    def let_go(self) -> None:
        if not self.done:
            self.done = True
            if self.timer is not None:
                self.timer.cancel()
            self.release()


@dataclass(eq=False)
class _Counter:
    now: int = 0
    most: int = 0  # the most held at once (a test checks the bound and the overlap)

    def up(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def down(self) -> None:
        self.now -= 1


@dataclass(eq=False)
class Pacing:
    """The two bounds of one poller (see the module's docstring)."""

    work_slots: int
    wait_slots: int = WAIT_SLOTS
    wait_hold_s: float = WAIT_HOLD_S
    work_hold_s: float = WORK_HOLD_S
    connect_spacing_s: float = CONNECT_SPACING_S
    waiting_count: _Counter = field(default_factory=_Counter)
    working_count: _Counter = field(default_factory=_Counter)
    folding_count: _Counter = field(default_factory=_Counter)

    def __post_init__(self) -> None:
        self._wait = asyncio.Semaphore(self.wait_slots)
        self._work = asyncio.Semaphore(self.work_slots)
        self._fold = asyncio.Semaphore(self.work_slots)
        self._next_connect = float("-inf")

    async def connect_turn(self) -> None:
        """Wait for this connect's start, ``connect_spacing_s`` after the last one's."""
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_connect + self.connect_spacing_s)
        self._next_connect = start
        if start > now:
            await asyncio.sleep(start - now)

    async def _take(self, semaphore: asyncio.Semaphore, counter: _Counter, hold_s: float) -> _Held:
        await semaphore.acquire()
        counter.up()

        def release() -> None:
            counter.down()
            semaphore.release()

        held = _Held(release)
        held.timer = asyncio.get_running_loop().call_later(hold_s, held.let_go)
        return held

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        outer = _WAIT_SLOT.get()
        if outer is not None and not outer.done:  # nested: the outer block's slot
            yield
            return
        held = await self._take(self._wait, self.waiting_count, self.wait_hold_s)
        token = _WAIT_SLOT.set(held)
        try:
            yield
        finally:
            _WAIT_SLOT.reset(token)
            held.let_go()

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._working(self._work, self.working_count)

    def folding(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Work on the event loop's own thread (the poller folding an answer in): a bound
        of the same size but of its own, so that answers do not queue behind polls
        working in threads, and still no more than a few are folded in one turn."""
        return self._working(self._fold, self.folding_count)

    @contextlib.asynccontextmanager
    async def _working(
        self, semaphore: asyncio.Semaphore, counter: _Counter
    ) -> AsyncIterator[None]:
        waiting = _WAIT_SLOT.get()
        if waiting is not None:
            waiting.let_go()  # done with the network for now: never both at once
        queued = semaphore.locked()
        held = await self._take(semaphore, counter, self.work_hold_s)
        try:
            if not queued:
                # On a turn of the loop of its own either way: answers of several hosts
                # that land together are not worked through as one block while keys wait.
                await asyncio.sleep(0)
            yield
        finally:
            held.let_go()


_PACING: contextvars.ContextVar[Pacing | None] = contextvars.ContextVar(
    "ovmtui_pacing", default=None
)
_WAIT_SLOT: contextvars.ContextVar[_Held | None] = contextvars.ContextVar(
    "ovmtui_wait_slot", default=None
)


@contextlib.contextmanager
def paced(pacing: Pacing | None) -> Iterator[None]:
    """Within this block (of one task), ``waiting()`` and ``working()`` use ``pacing``."""
    token = _PACING.set(pacing)
    try:
        yield
    finally:
        _PACING.reset(token)


@contextlib.asynccontextmanager
async def _unbounded() -> AsyncIterator[None]:
    yield


def waiting() -> contextlib.AbstractAsyncContextManager[None]:
    """A connect or a command in flight: the current poll's waiting bound, if any."""
    pacing = _PACING.get()
    return _unbounded() if pacing is None else pacing.waiting()


async def connect_turn() -> None:
    """Before a new connection: spaced from the poller's other connects, if in a poll."""
    pacing = _PACING.get()
    if pacing is not None:
        await pacing.connect_turn()


def working() -> contextlib.AbstractAsyncContextManager[None]:
    """Parsing or folding: the current poll's working bound, if any."""
    pacing = _PACING.get()
    return _unbounded() if pacing is None else pacing.working()
