"""The console service's own rules: the record, the log, view-only, re-attaching, closing.

The transports are tested for real elsewhere (the fake dom0s over a real sshd, the lab's
libvirt streams); here one in memory stands in for them, so that a guest can reboot, a host
refuse and a console end exactly when a test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ovmtui.errors import ActionRefused, ConsoleUnavailable
from ovmtui.model import HostKey, PlacedVm, Vm, VmState
from ovmtui.operations import Operations
from ovmtui.services.actions import InMemoryJournal
from ovmtui.services.consoles import ConsoleSession, ConsoleState, console_log_path

VM = Vm(uuid="u-1", name="web01; rm -rf /", state=VmState.RUNNING)
PLACED = PlacedVm("p", "h1", VM)


class MemoryChannel:
    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.written = bytearray()
        self.sizes: list[tuple[int, int]] = []
        self.end_reason: str | None = None
        self.exit_status: int | None = None
        self.closed = False

    async def read(self, max_bytes: int = 65536) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.written += data

    def write_eof(self) -> None:
        return None

    def resize(self, columns: int, rows: int) -> None:
        self.sizes.append((columns, rows))

    async def close(self) -> None:
        self.closed = True

    def guest_says(self, data: bytes) -> None:
        self.incoming.put_nowait(data)

    def end(self, reason: str) -> None:
        self.end_reason = reason
        self.incoming.put_nowait(b"")


class MemoryTransport:
    """Consoles of a host whose guests exist while ``running`` says so."""

    def __init__(self) -> None:
        self.running = True
        self.opened: list[MemoryChannel] = []
        self.forced: list[bool] = []
        self.attached = asyncio.Event()

    @contextlib.asynccontextmanager
    async def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AsyncIterator[MemoryChannel]:
        if not self.running:
            raise ConsoleUnavailable(f"Domain '{vm.name}' does not exist")
        channel = MemoryChannel()
        self.opened.append(channel)
        self.forced.append(force)
        self.attached.set()
        try:
            yield channel
        finally:
            await channel.close()

    def console_command(self, vm: Vm) -> str:
        return f"xm console {vm.name!r}"

    @property
    def channel(self) -> MemoryChannel:
        return self.opened[-1]


def session(
    transport: MemoryTransport | None,
    journal: InMemoryJournal | None,
    tmp_path: Path | None,
    **options: object,
) -> ConsoleSession:
    operations = Operations(user="ops", journal=lambda: journal, no_journal=lambda: "disk gone")
    return ConsoleSession(
        PLACED,
        transport_for=lambda key: transport if key == HostKey("p", "h1") else None,
        locate=lambda uuid: PLACED if transport is not None and transport.running else None,
        operations=operations,
        log_dir=tmp_path,
        **options,  # type: ignore[arg-type]
    )


async def until(predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Polls ``predicate`` (the states it watches have no event of their own)."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def attached(transport: MemoryTransport, console: ConsoleSession, count: int = 1) -> None:
    await until(
        lambda: len(transport.opened) >= count and console.status.state is ConsoleState.ATTACHED
    )


async def test_a_console_is_on_the_record_logged_whole_and_typed_into(tmp_path: Path) -> None:
    transport, journal = MemoryTransport(), InMemoryJournal()
    console = session(transport, journal, tmp_path)
    shown: list[bytes] = []
    console.watch(shown.append)
    task = console.start()
    await attached(transport, console)
    assert journal.records[0][0] == "started"
    started = journal.records[0]
    assert started[1:7] == ("ops", "p", "h1", VM.name, "u-1", "console")
    # The command names the log the way a shell would, quoted.
    log_path = console.status.log_path
    assert log_path is not None and str(started[7]).endswith(f"| tee -a {log_path}")
    transport.channel.guest_says(b"boot\r\n")
    transport.channel.guest_says(b"login: ")
    console.send(b"root\r")
    console.resize(120, 40)
    await until(lambda: console.status.bytes_in >= 13 and bool(transport.channel.written))
    assert b"".join(shown) == b"boot\r\nlogin: "
    assert bytes(transport.channel.written) == b"root\r"
    assert transport.channel.sizes == [(120, 40)]
    console.close()
    status = await task
    assert status.state is ConsoleState.CLOSED and status.ok
    assert transport.channel.closed
    assert log_path.read_bytes() == b"boot\r\nlogin: "
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600  # a console may show secrets
    assert log_path.name.startswith("web01_rm_-rf")  # no shell or path characters
    finished = journal.records[-1]
    assert finished[0] == "finished" and finished[2] is True
    assert f"13 bytes in; log {log_path}" in str(finished[3])


async def test_view_only_sends_no_keys_but_answers_the_guests_queries(tmp_path: Path) -> None:
    transport, journal = MemoryTransport(), InMemoryJournal()
    console = session(transport, journal, tmp_path, view_only=True)
    console.start()
    await attached(transport, console)
    console.send(b"reboot\r")
    console.answer(b"\x1b[24;1R")  # a shell that asked for the cursor waits for this
    await until(lambda: bool(transport.channel.written))
    assert bytes(transport.channel.written) == b"\x1b[24;1R"
    console.close()
    await console.wait_closed()


async def test_with_no_journal_only_a_view_only_console_opens(tmp_path: Path) -> None:
    refused = session(MemoryTransport(), None, tmp_path)
    with pytest.raises(ActionRefused, match="disk gone"):
        await refused.run()
    transport = MemoryTransport()
    watching = session(transport, None, tmp_path, view_only=True)
    watching.start()
    await attached(transport, watching)
    assert "not in the journal" in (watching.status.detail or "")
    watching.close()
    await watching.wait_closed()


async def test_a_console_that_cannot_be_had_fails_on_the_record(tmp_path: Path) -> None:
    transport, journal = MemoryTransport(), InMemoryJournal()
    transport.running = False
    console = session(transport, journal, tmp_path)
    status = await console.start()
    assert status.state is ConsoleState.CLOSED and not status.ok
    assert "does not exist" in (status.detail or "")
    assert journal.records[-1][0:3] == ("finished", 1, False)


async def test_a_reboot_is_reattached_with_the_gap_shown(tmp_path: Path) -> None:
    transport, journal = MemoryTransport(), InMemoryJournal()
    console = session(transport, journal, tmp_path, force=True, reattach_timeout_s=30.0)
    shown: list[bytes] = []
    states: list[ConsoleState] = []
    console.watch(shown.append)
    console.on_status = lambda status: states.append(status.state)
    console.start()
    await attached(transport, console)
    transport.running = False  # the domain is destroyed and re-created: gone a moment
    transport.channel.end("the domain is gone")
    await until(lambda: console.status.state is ConsoleState.REATTACHING)
    assert "the domain is gone" in (console.status.detail or "")
    transport.running = True
    await attached(transport, console, count=2)
    assert console.status.attaches == 2
    # Force takes the console the first time only, as asked; never again by itself.
    assert transport.forced == [True, False]
    assert b"re-attached" in b"".join(shown)
    assert ConsoleState.REATTACHING in states
    console.close()
    status = await console.wait_closed()
    assert status.ok and len(journal.records) == 2  # one operation, opened and closed


async def test_a_guest_that_does_not_come_back_closes_the_console_saying_why(
    tmp_path: Path,
) -> None:
    transport, journal = MemoryTransport(), InMemoryJournal()
    console = session(transport, journal, tmp_path, reattach_timeout_s=0.5)
    console.start()
    await attached(transport, console)
    transport.running = False
    transport.channel.end("the guest shut off")
    status = await console.wait_closed()
    assert status.state is ConsoleState.CLOSED
    assert (status.detail or "").startswith("the guest shut off; not back within 0.5 s")
    assert "does not exist" in (status.detail or "")  # what the host said since
    assert "the guest shut off" in str(journal.records[-1][3])


async def test_cancelled_while_attached_is_recorded_as_interrupted(tmp_path: Path) -> None:
    transport, journal = MemoryTransport(), InMemoryJournal()
    console = session(transport, journal, tmp_path)
    task = console.start()
    await attached(transport, console)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert journal.records[-1][2] is False and "interrupted" in str(journal.records[-1][3])
    assert transport.channel.closed


def test_log_names_keep_only_safe_characters(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 12, 6, 22, 15, 3, tzinfo=UTC)
    assert console_log_path(tmp_path, "../../etc/passwd", when).name == (
        "etc_passwd-20261206T221503Z.log"
    )
    assert console_log_path(tmp_path, "...", when).name == "vm-20261206T221503Z.log"


async def test_what_comes_before_a_face_watches_is_handed_over_then(tmp_path: Path) -> None:
    """A fast guest's first screenful arrives before its console's screen is up."""
    transport, journal = MemoryTransport(), InMemoryJournal()
    console = session(transport, journal, tmp_path)
    console.start()
    await attached(transport, console)
    transport.channel.guest_says(b"boot banner\r\n")
    await until(lambda: console.status.bytes_in == 13)
    shown: list[bytes] = []
    console.watch(shown.append)
    transport.channel.guest_says(b"login: ")
    await until(lambda: console.status.bytes_in == 20)
    assert b"".join(shown) == b"boot banner\r\nlogin: "
    console.close()
    await console.wait_closed()
