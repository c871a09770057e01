"""The libvirt console stream on a real guest: ``LibvirtBackend.console`` over the estate's
own qemu+ssh URI, against the lab's busybox guests (lab/guest-init.sh: a heartbeat every
second on ttyS0 and a shell there).

Every test leaves vm1 running with its console free, as the other lab tests expect.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from ovmtui.backend.base import ConsoleChannel
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.errors import ConsoleUnavailable, HostUnreachable
from ovmtui.model import Capability, HostKey, Vm
from tests.e2e.lab.conftest import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

VM, HOST = "vm1", "h1"
# Bounds against a hang, never measured: a heartbeat comes every second.
LIMIT_S = 60.0
HEARTBEAT = re.compile(rb"vm1 heartbeat (\d+)\r\n")
CURSOR_QUERY = b"\x1b[6n"


@pytest.fixture
async def backend(lab: Lab) -> AsyncIterator[LibvirtBackend]:
    uri = next(host.libvirt for host in lab.estate.hosts if host.name == HOST)
    assert uri is not None and uri.startswith("qemu+ssh://")
    backend = LibvirtBackend(HostKey("lab", HOST), uri)
    try:
        yield backend
    finally:
        await backend.close()


def open_console(
    backend: LibvirtBackend, vm: Vm, *, force: bool = False
) -> AbstractAsyncContextManager[ConsoleChannel]:
    return backend.console(vm, term_type="xterm-256color", term_size=(80, 24), force=force)


async def vm_named(backend: LibvirtBackend, name: str) -> Vm:
    poll = await backend.poll()
    return next(vm for vm in poll.vms if vm.name == name)


async def read_until(
    channel: ConsoleChannel, done: Callable[[bytes], bool], *, answer_queries: bool = False
) -> bytes:
    """What the console sends until ``done`` holds for all of it; fails on its end."""
    seen = b""

    async def loop() -> bytes:
        nonlocal seen
        while not done(seen):
            data = await channel.read()
            assert data, f"the console ended ({channel.end_reason}) after {seen[-300:]!r}"
            if answer_queries and CURSOR_QUERY in data:
                # What the terminal widget answers in the product: the shell waits for it.
                await channel.write(b"\x1b[1;1R")
            seen += data
        return seen

    return await asyncio.wait_for(loop(), LIMIT_S)


async def read_to_end(channel: ConsoleChannel) -> bytes:
    async def loop() -> bytes:
        seen = b""
        while data := await channel.read():
            seen += data
        return seen

    return await asyncio.wait_for(loop(), LIMIT_S)


def heartbeats(data: bytes) -> list[int]:
    return [int(n) for n in HEARTBEAT.findall(data)]


async def test_the_heartbeat_counts_up_and_the_shell_answers(backend: LibvirtBackend) -> None:
    assert Capability.CONSOLE in backend.capabilities
    vm = await vm_named(backend, VM)
    assert backend.console_command(vm).endswith(" console vm1")
    async with open_console(backend, vm) as channel:
        seen = await read_until(channel, lambda data: len(heartbeats(data)) >= 3)
        beats = heartbeats(seen)
        # One a second, in order, none lost between reads.
        assert beats == list(range(beats[0], beats[0] + len(beats))), beats

        await channel.write(b"echo $((6*7))\r")
        answer = await read_until(channel, lambda data: b"\r\n42\r\n" in data, answer_queries=True)
        assert b"echo $((6*7))" in answer  # the shell echoed what was typed
        assert channel.end_reason is None
    # Left: the channel is closed, and so is the stream on the host (a second open without
    # force would be refused otherwise).
    assert await channel.read() == b""
    with pytest.raises(HostUnreachable, match="closed"):
        await channel.write(b"x")
    async with open_console(backend, vm) as again:
        await read_until(again, lambda data: bool(heartbeats(data)))


async def test_a_held_console_is_refused_and_force_takes_it_over(
    backend: LibvirtBackend, lab: Lab
) -> None:
    vm = await vm_named(backend, VM)
    other = LibvirtBackend(HostKey("lab", "h1-other"), backend.address)  # another client
    try:
        async with open_console(backend, vm) as first:
            await read_until(first, lambda data: bool(heartbeats(data)))
            with pytest.raises(ConsoleUnavailable, match="Active console session exists"):
                async with open_console(other, vm):
                    pytest.fail("a second console opened without force")
            # The refusal left the first one as it was.
            await read_until(first, lambda data: bool(heartbeats(data)))
            assert first.end_reason is None

            async with open_console(other, vm, force=True) as second:
                await read_to_end(first)
                assert first.end_reason is not None
                assert "another client took the console" in first.end_reason
                with pytest.raises(HostUnreachable):
                    await first.write(b"\r")
                # The guest is untouched and the new console carries it on.
                seen = await read_until(second, lambda data: bool(heartbeats(data)))
                assert heartbeats(seen)
            assert second.end_reason is None
    finally:
        await other.close()
    assert lab.domstate(HOST, VM) == "running"


async def test_destroying_the_guest_ends_the_console_saying_it_shut_off(
    backend: LibvirtBackend, lab: Lab
) -> None:
    vm = await vm_named(backend, VM)
    try:
        async with open_console(backend, vm) as channel:
            await read_until(channel, lambda data: bool(heartbeats(data)))
            lab.virsh(HOST, "destroy", VM)
            await read_to_end(channel)
            assert channel.end_reason is not None
            assert "shut off" in channel.end_reason, channel.end_reason
            assert "forced off" in channel.end_reason, channel.end_reason
        with pytest.raises(ConsoleUnavailable, match="not running"):
            async with open_console(backend, vm):
                pytest.fail("a console opened on a shut-off guest")
    finally:
        if lab.domstate(HOST, VM) != "running":
            lab.virsh(HOST, "start", VM)
    # Back as the other tests expect it: running, its heartbeat on the console again.
    async with open_console(backend, vm) as channel:
        await read_until(channel, lambda data: bool(heartbeats(data)))


async def test_a_lost_daemon_ends_the_console_with_host_unreachable(
    backend: LibvirtBackend, lab: Lab
) -> None:
    vm = await vm_named(backend, VM)
    try:
        async with open_console(backend, vm) as channel:
            await read_until(channel, lambda data: bool(heartbeats(data)))
            lab.kill_libvirtd(HOST)

            async def until_lost() -> None:
                while await channel.read():
                    pass

            with pytest.raises(HostUnreachable):
                await asyncio.wait_for(until_lost(), LIMIT_S)
            with pytest.raises(HostUnreachable):
                await channel.read()  # and it stays so
    finally:
        lab.start_libvirtd(HOST)
    # The guest kept running under the dead daemon; a new connection gets its console.
    assert lab.domstate(HOST, VM) == "running"
    async with open_console(backend, vm) as channel:
        await read_until(channel, lambda data: bool(heartbeats(data)))
