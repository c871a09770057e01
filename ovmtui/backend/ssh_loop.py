"""The SSH connections' own event loop, on a thread of its own (issue 13).

Everything asyncssh does per packet runs where its connection was opened: key exchanges,
host-key checks, authentication, decrypting and answering every packet. On the UI's loop
that work arrives in bursts: a far estate's first round has 64 handshakes in flight, and one
turn of the loop then reads, decrypts and answers for dozens of them before the screen's
next turn (measured at 200 hosts 20-100 ms away: the loop's p99 turn 5.5-6.8 ms, against a
5 ms target). On a loop of their own those bursts cost the UI only a share of the GIL, which
it gets back within the switch interval (``app.UI_SWITCH_INTERVAL_S``).

The rule is simple: an asyncssh object is only ever touched on this loop. The backend
(``xen_ssh``) keeps its logic, bounds and locks on the caller's loop and hands each piece
of network work over with ``run`` (a coroutine, awaited across) or ``call`` (a plain call,
such as closing a channel). Cancelling the caller cancels the work here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# The SSH thread's nice value, relative to the process (Linux: a thread's own): when the
# screen's thread wakes, the scheduler lets it run before the SSH thread's backlog. Same run,
# 200 hosts, a loaded machine (load 13-16): the loop's p99 stall 6-10 ms at 20 ms RTT with
# it, 13-15 ms without, 23-63 ms with no SSH thread at all.
SSH_THREAD_NICE = 5

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
                with contextlib.suppress(OSError):  # not Linux, or a limit: run as it is
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SSH_THREAD_NICE)
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
