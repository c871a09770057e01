"""The SSH connections' own loop (ovmtui/backend/ssh_loop.py), and that the Xen backend's
connections and sessions really live there."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ovmtui.backend import ssh_loop
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.model import HostKey
from tests.sshfake.fixtures import fake_xen_host
from tests.sshfake.sshd import FakeXenHost

__all__ = ["fake_xen_host"]  # a pytest fixture


async def test_work_runs_on_the_ssh_thread_and_returns_its_result() -> None:
    async def where() -> tuple[int, asyncio.AbstractEventLoop]:
        await asyncio.sleep(0)
        return threading.get_ident(), asyncio.get_running_loop()

    ident, loop = await ssh_loop.run(where())
    assert ident != threading.get_ident()
    assert loop is ssh_loop.ssh_event_loop() and loop is not asyncio.get_running_loop()


async def test_an_error_reaches_the_caller_as_itself() -> None:
    async def fail() -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError, match="gone"):
        await ssh_loop.run(fail())


async def test_cancelling_the_caller_cancels_the_work_there() -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(ssh_loop.run(forever()))
    await asyncio.to_thread(started.wait, 5)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await asyncio.to_thread(cancelled.wait, 5)


async def test_call_runs_on_the_ssh_thread() -> None:
    seen: list[int] = []
    done = threading.Event()

    def note(value: int) -> None:
        seen.append(value)
        assert threading.current_thread().name == "ovmtui-ssh"
        done.set()

    ssh_loop.call(note, 7)
    assert await asyncio.to_thread(done.wait, 5) and seen == [7]


async def test_the_backends_connection_and_lister_live_on_the_ssh_loop(
    fake_xen_host: FakeXenHost,
) -> None:
    backend = XenSshBackend(
        HostKey("xen", fake_xen_host.name),
        fake_xen_host.ssh_target,
        identity=str(fake_xen_host.client_key),
        known_hosts=str(fake_xen_host.known_hosts),
    )
    try:
        await backend.poll()
        await backend.poll()  # the second, quick poll goes through the lister
        assert backend._conn is not None and backend._lister is not None
        ssh = ssh_loop.ssh_event_loop()
        assert backend._conn._loop is ssh
        assert backend._lister.process.channel.get_connection()._loop is ssh
    finally:
        await backend.close()
