"""The SSH connections' own event loop, on a thread of its own (issue 13).

Everything asyncssh does per packet runs where its connection was opened: key exchanges,
host-key checks, authentication, decrypting and answering every packet. On the UI's loop
that work arrives in bursts: a far estate's first round has 64 handshakes in flight, and one
turn of the loop then reads, decrypts and answers for dozens of them before the screen's
next turn (measured at 200 hosts 20-100 ms away: the loop's p99 turn 5.5-6.8 ms, against a
5 ms target). On a loop of their own those bursts cost the UI only a share of the GIL, which
it gets back within the switch interval (``app.UI_SWITCH_INTERVAL_S``): 0.4-0.7 ms of the
loop's own CPU in its p99 stall, and the p99 stall itself 3.5-4.6 ms (bench/far_estate.py).

The rule is simple: an asyncssh object is only ever touched on this loop. The backend
(``xen_ssh``) keeps its logic, bounds and locks on the caller's loop and hands each piece
of network work over with ``run`` (a coroutine, awaited across) or ``call`` (a plain call,
such as closing a channel). Cancelling the caller cancels the work here too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# No lower priority for the SSH thread: tried at nice +5, it took the screen's thread's p99
# stall in a far cold start under load from 13-15 to 6-10 ms, but the screen's thread then
# waited for the GIL behind an SSH thread the scheduler had put aside (priority inversion):
# a 100-250 ms stall in a steady run of 200 hosts (bench/ssh_poll.py (d)), 15 ms without it.

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def ssh_event_loop() -> asyncio.AbstractEventLoop:
    """The loop, started on first use; it lives as long as the process (a daemon thread)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=serve, name="ovmtui-ssh", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


def on_ssh_loop() -> bool:
    """True when called from the SSH loop's own thread."""
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


async def run(work: Awaitable[T]) -> T:
    """``work`` on the SSH loop, awaited from the caller's loop: its result, or its error.

    Cancelling the caller cancels ``work`` (its own cleanup then runs on the SSH loop)."""
    loop = ssh_event_loop()
    if asyncio.get_running_loop() is loop:
        return await work
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_awaited(work), loop))


async def _awaited(work: Awaitable[T]) -> T:
    # asyncssh's connect() and create_process() are awaitables, not coroutines.
    return await work


def call(function: Callable[..., object], *args: object) -> None:
    """``function(*args)`` on the SSH loop, soon; not waited for. Errors are the loop's to
    report (asyncssh's close and abort raise none)."""
    loop = ssh_event_loop()
    if on_ssh_loop():
        function(*args)
    else:
        loop.call_soon_threadsafe(function, *args)
