"""Long-lived channels of the Xen-over-SSH backend (a console, a migration, a download),
against a real OpenSSH sshd: a budget of their own, no command timeout, and nothing that
happens to them, or to a poll, cuts the other off.

The far side runs the fixture's ``longrun`` (tests/sshfake/bin/longrun), which echoes lines
until its input ends and logs how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid as uuid_module
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.base import ChannelsBusy, LongChannel, LongChannelOpener
from ovmtui.backend.xen_ssh import MAX_CHANNELS, MAX_LONG_CHANNELS, XenSshBackend
from ovmtui.errors import ActionRefused, HostTimeout, HostUnreachable
from ovmtui.model import HostKey, VmAction
from tests.sshfake.fixtures import fake_xen_host
from tests.sshfake.sshd import FakeXenHost

__all__ = ["fake_xen_host"]  # pytest fixture


def backend_for(host: FakeXenHost, **options: Any) -> XenSshBackend:
    options.setdefault("identity", str(host.client_key))
    options.setdefault("known_hosts", str(host.known_hosts))
    return XenSshBackend(HostKey("xen", host.name), host.ssh_target, **options)


@pytest.fixture
async def backend(fake_xen_host: FakeXenHost) -> Any:
    b = backend_for(fake_xen_host, poll_timeout_s=5.0)
    yield b
    await b.close()


async def read_until(channel: LongChannel, expected: bytes, timeout_s: float = 5.0) -> bytes:
    data = b""
    async with asyncio.timeout(timeout_s):
        while expected not in data:
            chunk = await channel.read()
            assert chunk, f"the command ended before {expected!r}; it said {data!r}"
            data += chunk
    return data


async def echoes(channel: LongChannel, line: bytes) -> bool:
    await channel.write(line + b"\n")
    return line in await read_until(channel, line)


async def logged(host: FakeXenHost, what: str, count: int = 1) -> list[tuple[int, str]]:
    """The fake's log once ``count`` of its commands logged ``what`` (they log as they
    go, into a file: read again until it says so, for 5 s at most)."""
    for _ in range(250):
        log = host.longrun_log()
        if len(pids(log, what)) >= count:
            return log
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} x {what!r} never logged: {host.longrun_log()}")


def pids(log: list[tuple[int, str]], what: str) -> list[int]:
    return [pid for pid, did in log if did == what]


async def test_the_backend_opens_long_channels_and_they_keep_the_protocol(
    backend: XenSshBackend,
) -> None:
    assert isinstance(backend, LongChannelOpener)
    async with backend.long_channel(["longrun"]) as channel:
        assert isinstance(channel, LongChannel)
        assert type(channel).__module__ == "ovmtui.backend.xen_ssh"  # no asyncssh object


async def test_a_long_channel_outlives_every_timeout_and_polls_answer_meanwhile(
    fake_xen_host: FakeXenHost,
) -> None:
    # Timeouts far below the channel's life: before long channels, such a command ran
    # through act()'s path and its timeout dropped the connection under the polls.
    b = backend_for(fake_xen_host, poll_timeout_s=1.0, action_timeout_s=0.3)
    try:
        await b.poll()
        async with b.long_channel(["longrun"]) as channel:
            assert await echoes(channel, b"one")
            polls = 0
            deadline = time.monotonic() + 1.5  # five action timeouts, one and a half polls'
            while time.monotonic() < deadline:
                assert (await b.poll()).vms
                polls += 1
                await asyncio.sleep(0.05)
            assert polls >= 5
            assert await echoes(channel, b"two")  # not cut
            await channel.write(b"exit 7\n")
            assert await channel.read() == b""  # it ended by itself
            assert channel.exit_status == 7
        assert b.connections_opened == 1
        log = fake_xen_host.longrun_log()
        assert [did for _, did in log] == ["start", "exit 7"]
    finally:
        await b.close()


async def test_the_fourth_long_channel_is_refused_at_once_and_polls_keep_their_budget(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    assert MAX_CHANNELS + MAX_LONG_CHANNELS < 10  # OpenSSH's MaxSessions, one to spare
    web01 = next(vm for vm in (await backend.poll()).vms if vm.name == "web01")
    async with contextlib.AsyncExitStack() as stack:
        # All at once: the budget counts channels still opening, so two of five are refused.
        opened = await asyncio.gather(
            *(stack.enter_async_context(backend.long_channel(["longrun"])) for _ in range(5)),
            return_exceptions=True,
        )
        channels = [c for c in opened if not isinstance(c, BaseException)]
        refusals = [c for c in opened if isinstance(c, BaseException)]
        assert len(channels) == MAX_LONG_CHANNELS == 3
        assert len(refusals) == 2 and all(isinstance(r, ChannelsBusy) for r in refusals)
        refused = refusals[0]
        assert isinstance(refused, ActionRefused)
        assert refused.title == "Too many open channels"
        assert "3 long-lived channels" in refused.message and "`longrun`" in refused.message
        started = time.monotonic()
        with pytest.raises(ChannelsBusy):
            async with backend.long_channel(["longrun"]):
                pass
        assert time.monotonic() - started < 0.5  # refused, never queued
        # The polls' six are untouched: a burst of polls and actions as without them.
        for _ in range(3):
            polls = await asyncio.gather(*(backend.poll() for _ in range(20)))
            assert all(poll.vms for poll in polls)
            actions = [VmAction.PAUSE, VmAction.RESUME] * 10
            await asyncio.gather(*(backend.act(web01, action) for action in actions))
        for index, channel in enumerate(channels):
            assert await echoes(channel, b"still here %d" % index)
    # Closed, the budget is whole again.
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_LONG_CHANNELS):
            channel = await stack.enter_async_context(backend.long_channel(["longrun"]))
            assert await echoes(channel, b"again")
    assert backend.connections_opened == 1
    assert len(pids(fake_xen_host.longrun_log(), "eof")) == 6


async def test_cancelling_the_context_ends_the_remote_command_and_frees_the_budget(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    await backend.poll()

    async def session(term_type: str | None, opened: asyncio.Event) -> None:
        async with backend.long_channel(["longrun"], term_type=term_type) as channel:
            await channel.write(b"hello\n")
            # A terminal echoes the line itself, before the command may even have started.
            await read_until(channel, b"hello\r\nhello" if term_type else b"hello")
            opened.set()
            while await channel.read():  # reads until cancelled
                pass

    # Without a terminal the command sees its input end; on a PTY, a hang-up.
    ready = [asyncio.Event(), asyncio.Event()]
    tasks = [
        asyncio.create_task(session(None, ready[0])),
        asyncio.create_task(session("xterm", ready[1])),
    ]
    async with asyncio.timeout(5.0):
        for event in ready:
            await event.wait()
    log = fake_xen_host.longrun_log()
    assert [did for _, did in log] == ["start", "start"]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
    log = await logged(fake_xen_host, "eof")
    log = await logged(fake_xen_host, "hup")
    assert sorted(pids(log, "start")) == sorted(pids(log, "eof") + pids(log, "hup"))
    # The budget is whole again and the connection stayed.
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_LONG_CHANNELS):
            await stack.enter_async_context(backend.long_channel(["longrun"]))
        assert (await backend.poll()).vms
    assert backend.connections_opened == 1


async def test_a_poll_that_times_out_reconnects_and_spares_the_long_channels(
    fake_xen_host: FakeXenHost,
) -> None:
    b = backend_for(fake_xen_host, poll_timeout_s=1.0, action_timeout_s=1.0)
    try:
        web01 = next(vm for vm in (await b.poll()).vms if vm.name == "web01")
        async with b.long_channel(["longrun"]) as channel:
            first = b._conn
            fake_xen_host.set_fault("hang")  # xm hangs; the long channel is no xm
            with pytest.raises(HostTimeout, match="did not answer within 1 s"):
                await b.poll()
            with pytest.raises(HostTimeout, match="did not answer within 1 s"):
                await b.act(web01, VmAction.PAUSE)
            fake_xen_host.set_fault(None)
            assert (await b.poll()).vms  # on a new connection, as without a long channel
            assert b.connections_opened == 3  # the poll's, then the action's drop
            assert b._conn is not first
            assert await echoes(channel, b"survived")
            assert first is not None and not first.is_closed()
        # The old connection goes with its last long channel.
        assert b._retired == []
        await asyncio.wait_for(first.wait_closed(), 2.0)
        assert (await b.poll()).vms and b.connections_opened == 3
        await logged(fake_xen_host, "eof")
    finally:
        fake_xen_host.set_fault(None)
        await b.close()


async def test_a_command_that_hangs_still_drops_the_connection_without_long_channels(
    fake_xen_host: FakeXenHost,
) -> None:
    b = backend_for(fake_xen_host, poll_timeout_s=1.0, action_timeout_s=1.0)
    try:
        web01 = next(vm for vm in (await b.poll()).vms if vm.name == "web01")
        first = b._conn
        fake_xen_host.set_fault("hang")
        with pytest.raises(HostTimeout, match="did not answer within 1 s"):
            await b.act(web01, VmAction.PAUSE)
        assert first is not None
        await asyncio.wait_for(first.wait_closed(), 2.0)  # dropped, as ever
        fake_xen_host.set_fault(None)
        assert (await b.poll()).vms and b.connections_opened == 2
    finally:
        fake_xen_host.set_fault(None)
        await b.close()


async def test_a_terminal_has_the_size_asked_and_follows_resizes(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    async with backend.long_channel(["longrun"], term_type="xterm", term_size=(100, 30)) as tty:
        await tty.write(b"size\n")
        assert b"30 100" in await read_until(tty, b"30 100")
        tty.resize(132, 43)
        await tty.write(b"size\n")
        assert b"43 132" in await read_until(tty, b"43 132")
    await logged(fake_xen_host, "hup")
    async with backend.long_channel(["longrun"]) as plain:
        plain.resize(80, 24)  # no terminal: nothing to resize, and no error
        await plain.write(b"size\n")
        plain.write_eof()
        said = b""
        while chunk := await plain.read():
            said += chunk
        assert b"ioctl" in said  # stty has no terminal: its error comes in the stream
    await logged(fake_xen_host, "eof")


async def test_every_argument_is_quoted_and_the_command_may_end_by_itself(
    backend: XenSshBackend,
) -> None:
    marker = Path(f"/tmp/ovmtui-pwned-{uuid_module.uuid4().hex}")
    hostile = f"x; touch {marker} $(touch {marker}) `touch {marker}` '\"\n"
    async with backend.long_channel(["printf", "%s|", hostile, "*"]) as channel:
        said = b""
        while chunk := await channel.read():
            said += chunk
        assert said == f"{hostile}|*|".encode()
        assert channel.exit_status == 0
        assert await channel.read() == b""  # and stays ended
    assert not await asyncio.to_thread(marker.exists)
    async with backend.long_channel(["no-such-command-here"]) as channel:
        while await channel.read():
            pass
        assert channel.exit_status == 127
    with pytest.raises(ValueError):
        async with backend.long_channel([]):
            pass


async def test_closing_the_backend_ends_its_long_channels(
    fake_xen_host: FakeXenHost,
) -> None:
    b = backend_for(fake_xen_host)
    outcome: list[object] = []
    opened = asyncio.Event()

    async def reader() -> None:
        try:
            async with b.long_channel(["longrun"]) as channel:
                assert await echoes(channel, b"up")
                outcome.append("open")
                opened.set()
                while await channel.read():
                    pass
                outcome.append("ended")
        except HostUnreachable as exc:
            outcome.append(exc)

    task = asyncio.create_task(reader())
    async with asyncio.timeout(5.0):
        await opened.wait()
    await b.close()
    async with asyncio.timeout(5.0):
        await task  # never hangs
    assert outcome[0] == "open" and len(outcome) == 2
    assert isinstance(outcome[1], HostUnreachable), outcome  # the end of the connection
    assert "connection was lost" in outcome[1].message
    # An explicit close is idempotent, and a closed channel reads as ended.
    b = backend_for(fake_xen_host)
    try:
        async with b.long_channel(["longrun"]) as channel:
            await channel.close()
            await channel.close()
            assert await channel.read() == b""
            with pytest.raises(HostUnreachable, match="closed"):
                await channel.write(b"late\n")
        await logged(fake_xen_host, "eof", count=2)
    finally:
        await b.close()


async def test_a_channel_given_up_while_the_host_opens_it_is_closed_once_open(
    fake_xen_host: FakeXenHost,
) -> None:
    """A cancel or a timeout while the host is slow to open the session: the session it
    opens after all must not run on, holding one of the host's ten sessions."""
    b = backend_for(fake_xen_host, poll_timeout_s=1.0)

    async def open_and_wait() -> None:
        async with b.long_channel(["longrun"]) as channel:
            await channel.read()

    try:
        await b.poll()
        fake_xen_host.stop()  # the connection stays, nothing answers
        task = asyncio.create_task(open_and_wait())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(HostTimeout, match="no session within 1 s"):
            await open_and_wait()
        fake_xen_host.cont()
        log = await logged(fake_xen_host, "eof", count=2)
        assert sorted(pids(log, "start")) == sorted(pids(log, "eof"))
        assert len(pids(log, "start")) == 2
        # Neither dropped the connection, and the budget is whole.
        assert (await b.poll()).vms and b.connections_opened == 1
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(MAX_LONG_CHANNELS):
                channel = await stack.enter_async_context(b.long_channel(["longrun"]))
                assert await echoes(channel, b"fine")
    finally:
        fake_xen_host.cont()
        await b.close()


async def test_a_lost_connection_is_an_error_not_the_end_of_the_command(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    async with backend.long_channel(["longrun"]) as channel:
        assert await echoes(channel, b"up")
        assert backend._conn is not None
        backend._conn.abort()  # as a reset or the keepalives would
        with pytest.raises(HostUnreachable, match="connection was lost"):
            while await channel.read():
                pass
        with pytest.raises(HostUnreachable, match="connection was lost"):
            await channel.read()  # and stays so
        assert channel.exit_status is None
    # The command ended with the connection (sshd hangs its sessions up), and the next
    # poll reconnects.
    await logged(fake_xen_host, "eof")
    assert (await backend.poll()).vms and backend.connections_opened == 2
