"""The serial console of the Xen-over-SSH backend: ``xm/xl console`` in a real PTY over the
real sshd of tests/sshfake, whose fake tools attach to a pseudo-guest (a boot log, then a
line shell) and log how each attach ended (tests/sshfake/xenconsole.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from ovmtui.backend.base import ChannelsBusy, ConsoleChannel, ConsoleTransport
from ovmtui.backend.xen_ssh import MAX_LONG_CHANNELS, XenSshBackend
from ovmtui.errors import ConsoleUnavailable
from ovmtui.model import Vm, VmAction, VmState
from tests.backend.test_xen_ssh_long import backend_for, read_until
from tests.sshfake.fixtures import fake_xen_host, fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_host", "fake_xen_servers"]  # pytest fixtures

TERM = {"term_type": "xterm", "term_size": (80, 24)}
HOSTILE = "x; rm -rf /"  # GNU rm refuses "/" anyway, should the quoting ever break


@pytest.fixture
async def backend(fake_xen_host: FakeXenHost) -> Any:
    b = backend_for(fake_xen_host, poll_timeout_s=5.0)
    yield b
    await b.close()


async def vm_named(backend: XenSshBackend, name: str) -> Vm:
    return next(vm for vm in (await backend.poll()).vms if vm.name == name)


def prompt(name: str) -> bytes:
    return f"root@{name}:~# ".encode()


async def ended(host: FakeXenHost, attaches: int = 1) -> list[tuple[int, str]]:
    """The fake's console log once ``attaches`` attaches have ended and their processes are
    gone from the server (5 s at most: the fakes log as they go)."""
    for _ in range(250):
        log = host.console_log()
        pids = [pid for pid, what in log if what.startswith("attach ")]
        ends = [pid for pid, what in log if what in ("escape", "eof", "hup", "term", "gone")]
        settled = len(pids) >= attaches and sorted(pids) == sorted(ends)
        if settled and not set(pids) & host.server.all_pids():
            return log
        await asyncio.sleep(0.02)
    raise AssertionError(f"consoles still attached or running: {host.console_log()}")


def outcomes(log: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """Each attach of the console log, in order, with how it ended."""
    ends = {pid: what for pid, what in log if not what.startswith(("attach ", "refused "))}
    return [(what, ends.get(pid, "?")) for pid, what in log if what.startswith("attach ")]


async def read_to_end(channel: ConsoleChannel) -> bytes:
    said = b""
    async with asyncio.timeout(10.0):
        while chunk := await channel.read():
            said += chunk
    return said


async def test_attach_read_the_boot_log_type_a_command_leave_and_nothing_is_left(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    assert isinstance(backend, ConsoleTransport)
    web01 = await vm_named(backend, "web01")
    assert backend.console_command(web01) == f"xm console {web01.domain_id}"
    fake_xen_host.clear_argv_log()
    async with backend.console(web01, **TERM) as console:
        assert isinstance(console, ConsoleChannel)
        assert type(console).__module__.startswith("ovmtui.backend.")  # no asyncssh object
        said = await read_until(console, prompt("web01"))
        # The whole boot log, as the guest printed it, then the shell's prompt.
        assert said == fake_xen_host.boot_log() + prompt("web01")
        await console.write(b"echo hello\r")
        # Echoed as typed, then its output; CR LF as a serial console ends lines.
        said = await read_until(console, b"hello\r\n" + prompt("web01"))
        assert said == b"echo hello\r\nhello\r\n" + prompt("web01")
        await console.write(b"nosuch --flag\r")
        assert b"sh: nosuch: not found\r\n" in await read_until(console, b"not found")
        assert console.end_reason is None  # still open
    assert fake_xen_host.argv_log() == [["xm", "console", str(web01.domain_id)]]
    log = await ended(fake_xen_host)
    assert outcomes(log) == [(f"attach web01 {web01.domain_id}", "hup")]


async def test_closing_the_console_says_so_and_ctrl_bracket_leaves_as_in_xm(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    db01 = await vm_named(backend, "db01")
    async with backend.console(db01, **TERM) as console:
        await read_until(console, prompt("db01"))
        await console.close()
        assert await console.read() == b""
        assert console.end_reason == "the console was closed from this side"
    async with backend.console(db01, **TERM) as console:
        await console.write(b"\x1d")  # the tool's own escape key
        assert await read_to_end(console) == b""  # an idle guest: no boot log again
        assert console.exit_status == 0
        assert console.end_reason == "left with Ctrl+] (`xm console 4`'s escape key)"
    log = await ended(fake_xen_host, attaches=2)
    assert outcomes(log) == [("attach db01 4", "hup"), ("attach db01 4", "escape")]


@pytest.mark.parametrize("toolstack", ["xm", "xl"])
async def test_unknown_and_shut_off_domains_give_the_tools_words(
    fake_xen_host: FakeXenHost, toolstack: str
) -> None:
    b = backend_for(fake_xen_host, toolstack=toolstack)
    try:
        # Shut off: xend keeps it (managed), xl knows nothing of it.
        app01 = Vm(uuid=fake_xen_host.domain("app01")["uuid"], name="app01", state=VmState.SHUTOFF)
        ghost = Vm(uuid="0" * 32, name="ghost", state=VmState.RUNNING, domain_id=999)
        expected = {
            "xm": [
                (ghost, "`xm console 999`: Error: Domain '999' does not exist."),
                (app01, "`xm console app01`: Error: Domain 'app01' is not started"),
            ],
            "xl": [
                (ghost, "`xl console ghost`: ghost is an invalid domain identifier (rc=-6)"),
                (app01, "`xl console app01`: app01 is an invalid domain identifier (rc=-6)"),
            ],
        }[toolstack]
        for vm, words in expected:
            with pytest.raises(ConsoleUnavailable) as refused:
                async with b.console(vm, **TERM):
                    raise AssertionError("entered a console the tool refused")
            assert refused.value.message == f"xen01: {words}"
            assert refused.value.title == "No console"
        # Each refusal gave its channel back.
        async with contextlib.AsyncExitStack() as stack:
            for name in ("web01", "db01", "mail01"):
                vm = await vm_named(b, name)
                await stack.enter_async_context(b.console(vm, **TERM))
        refused_log = fake_xen_host.console_log()[:2]
        assert [what for _, what in refused_log] == [
            f"refused {vm.name if toolstack == 'xl' else vm.domain_id or vm.name}"
            for vm, _ in expected
        ]
        await ended(fake_xen_host, attaches=3)
    finally:
        await b.close()


async def test_a_refusal_is_one_even_when_the_tool_is_slow_to_exit_after_its_words(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    # Longer than the grace that output which is not an error is given: read as a refusal.
    fake_xen_host.update(lambda state: state.__setitem__("console_exit_delay", 0.5))
    ghost = Vm(uuid="0" * 32, name="ghost", state=VmState.RUNNING, domain_id=999)
    with pytest.raises(ConsoleUnavailable, match=r"Error: Domain '999' does not exist\."):
        async with backend.console(ghost, **TERM):
            raise AssertionError("entered a console the tool refused")


@pytest.mark.parametrize(
    ("toolstack", "action", "reason"),
    [
        ("xm", VmAction.FORCE_OFF, "the guest shut off"),  # xend keeps it, shut off
        ("xl", VmAction.FORCE_OFF, "the domain is gone: it was shut down or destroyed"),
        ("xm", VmAction.REBOOT, "the guest rebooted: it runs as domain 13 now"),
        ("xl", VmAction.SHUTDOWN, "the domain is gone: it was shut down or destroyed"),
    ],
)
async def test_a_domain_that_stops_while_attached_ends_the_console_with_a_reason(
    fake_xen_host: FakeXenHost, toolstack: str, action: VmAction, reason: str
) -> None:
    b = backend_for(fake_xen_host, toolstack=toolstack)
    try:
        ldap01 = await vm_named(b, "ldap01")
        async with b.console(ldap01, **TERM) as console:
            await read_until(console, prompt("ldap01"))
            await b.act(ldap01, action)
            assert prompt("ldap01") not in await read_to_end(console)
            assert console.exit_status == 0  # xenconsole leaves without a word
            assert console.end_reason == reason
        log = await ended(fake_xen_host)
        assert outcomes(log) == [(f"attach ldap01 {ldap01.domain_id}", "gone")]
    finally:
        await b.close()


async def test_the_console_command_quotes_every_argument(
    fake_xen_servers: Any,
) -> None:
    hostile = make_domain(HOSTILE, uuid="5" * 32, domid=5)
    server = fake_xen_servers([HostSpec("xen01", domains=[hostile])])
    host = server.hosts[0]
    vm = Vm(uuid="5" * 32, name=HOSTILE, state=VmState.RUNNING, domain_id=5)
    for toolstack, vm_given, argv in (
        ("xl", vm, ["xl", "console", HOSTILE]),
        ("xm", Vm(uuid=vm.uuid, name=HOSTILE, state=VmState.RUNNING), ["xm", "console", HOSTILE]),
    ):
        b = backend_for(host, toolstack=toolstack)
        try:
            assert b.console_command(vm_given) == f"{toolstack} console 'x; rm -rf /'"
            host.clear_argv_log()
            async with b.console(vm_given, **TERM) as console:
                await console.write(b"hostname\r")
                await read_until(console, f"\r\n{HOSTILE}\r\n".encode())
            assert host.argv_log() == [argv]  # one argument, as it was named
        finally:
            await b.close()
    await ended(host, attaches=2)


async def test_resizes_reach_the_remote_terminal(backend: XenSshBackend) -> None:
    web01 = await vm_named(backend, "web01")
    async with backend.console(web01, term_type="xterm", term_size=(100, 30)) as console:
        await read_until(console, prompt("web01"))
        await console.write(b"stty size\r")
        assert b"\r\n30 100\r\n" in await read_until(console, b"30 100\r\n")
        console.resize(132, 43)
        await console.write(b"stty size\r")
        assert b"\r\n43 132\r\n" in await read_until(console, b"43 132\r\n")


async def test_the_fourth_console_of_a_host_is_refused_at_once(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    names = ("web01", "db01", "mail01", "ldap01")
    vms = [await vm_named(backend, name) for name in names]
    async with contextlib.AsyncExitStack() as stack:
        consoles = [
            await stack.enter_async_context(backend.console(vm, **TERM))
            for vm in vms[:MAX_LONG_CHANNELS]
        ]
        with pytest.raises(ChannelsBusy, match="3 long-lived channels"):
            async with backend.console(vms[3], **TERM):
                pass
        for console, name in zip(consoles, names, strict=False):
            await console.write(b"hostname\r")
            await read_until(console, f"\r\n{name}\r\n".encode())  # each its own guest
    log = await ended(fake_xen_host, attaches=3)
    assert [attach for attach, _ in outcomes(log)] == [
        f"attach {vm.name} {vm.domain_id}" for vm in vms[:MAX_LONG_CHANNELS]
    ]  # the fourth never reached the host


async def test_keys_typed_right_after_entering_reach_the_guest(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    # xm's start-up before xenconsole takes the terminal raw, throwing away what was typed.
    fake_xen_host.update(lambda state: state.__setitem__("console_attach_delay", 0.5))
    mail01 = await vm_named(backend, "mail01")
    web01 = await vm_named(backend, "web01")
    # The fake does throw them away: a bare channel that types at once loses its keys.
    argv = ["xm", "console", str(mail01.domain_id)]
    async with backend.long_channel(argv, **TERM) as bare:
        await bare.write(b"echo 'ovmtui-ea''rly'\r")
        await read_until(bare, prompt("mail01"))  # the boot log: attached now
        await bare.write(b"echo 'ovmtui-la''te'\r")
        said = await read_until(bare, b"ovmtui-late\r\n")
        assert b"ovmtui-early\r\n" not in said
    # The console is entered once attached: once the boot log has begun (a first attach) ...
    async with backend.console(web01, **TERM) as console:
        await console.write(b"echo 'ovmtui-ea''rly'\r")
        assert b"\r\novmtui-early\r\n" in await read_until(console, b"ovmtui-early\r\n")
    # ... or after the settle of an idle guest, which prints nothing (a later attach; the
    # tool's start-up well within the settle, as xm's on a dom0 that is not overloaded).
    fake_xen_host.update(lambda state: state.__setitem__("console_attach_delay", 0.0))
    async with backend.console(web01, **TERM) as console:
        await console.write(b"echo 'ovmtui-id''le'\r")
        said = await read_until(console, b"ovmtui-idle\r\n" + prompt("web01"))
        assert said == b"echo 'ovmtui-id''le'\r\novmtui-idle\r\n" + prompt("web01")
    log = await ended(fake_xen_host, attaches=3)
    assert [end for _, end in outcomes(log)] == ["hup"] * 3


async def test_a_paused_guest_takes_the_attach_and_answers_once_unpaused(
    backend: XenSshBackend, fake_xen_host: FakeXenHost
) -> None:
    build01 = await vm_named(backend, "build01")
    await backend.act(build01, VmAction.PAUSE)
    # Silent while paused: entered after the settle, with the tool still attached.
    async with backend.console(build01, **TERM) as console:
        await console.write(b"echo 'ovmtui-wai''ted'\r")  # read by the guest once it runs
        await backend.act(build01, VmAction.RESUME)
        said = await read_until(console, b"ovmtui-waited\r\n" + prompt("build01"))
        assert said.startswith(fake_xen_host.boot_log() + prompt("build01"))
        assert said.endswith(b"echo 'ovmtui-wai''ted'\r\novmtui-waited\r\n" + prompt("build01"))
    assert outcomes(await ended(fake_xen_host)) == [(f"attach build01 {build01.domain_id}", "hup")]
