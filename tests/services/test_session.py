"""The core without a screen: EstateSession over real libvirt test-driver hosts, and the one
path of audited operations (ovmtui.operations)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ovmtui.demo import demo_estate
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.model import VmAction, VmState
from ovmtui.operations import INTERRUPTED, Operation, Operations
from ovmtui.services.actions import InMemoryJournal
from ovmtui.services.session import EstateSession, Notice, SessionEvents
from ovmtui.store.repository import Repository


async def test_a_session_polls_acts_records_and_closes(tmp_path: Path) -> None:
    heard: list[object] = []
    path = tmp_path / "r.sqlite"
    async with EstateSession(
        demo_estate(), repository=path, events=SessionEvents(estate=heard.append)
    ) as session:
        snapshot = await session.poll_once()
        assert heard and heard[-1] is snapshot
        kafka = next(p for p in snapshot.placed_vms() if p.vm.name == "kafka01")
        (result,) = await session.run_actions([kafka], VmAction.PAUSE)
        assert result.ok, result.error
        assert session.action_log == (result,)
    async with await Repository.open(path, read_only=True) as repo:
        entries = await repo.journal_entries()
        known = await repo.load_snapshot()
    assert [(e.vm, e.operation, e.ok) for e in entries] == [("kafka01", "pause", True)]
    assert known is not None and len(list(known.placed_vms())) == 64  # recorded at close


async def test_an_unwritable_repository_turns_a_tui_session_read_only(tmp_path: Path) -> None:
    """As the TUI wants it; a headless session raises instead (unwritable="raise")."""
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"not a database" * 10)
    reasons: list[str] = []
    notices: list[Notice] = []
    events = SessionEvents(read_only=reasons.append, notice=notices.append)
    async with EstateSession(demo_estate(), repository=path, events=events) as session:
        assert session.read_only and reasons and "cannot be written" in reasons[0]
        snapshot = await session.poll_once()
        placed = next(iter(snapshot.placed_vms()))
        assert session.refusal(placed, VmAction.PAUSE) is not None
    with pytest.raises(OvmError):
        async with EstateSession(demo_estate(), repository=path, unwritable="raise"):
            pass


async def test_closing_interrupts_running_actions_on_the_record(tmp_path: Path) -> None:
    journal = InMemoryJournal()
    operations = Operations(user="op", journal=lambda: journal)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(operations.run(Operation("pause", "virsh suspend x"), hangs))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert journal.records[-1] == ("finished", 1, False, INTERRUPTED)


async def test_operations_refuse_unrecorded_work_and_record_refusals() -> None:
    ran: list[str] = []

    async def work() -> str:
        ran.append("ran")
        return "done"

    nothing = Operations(user="op", journal=lambda: None, no_journal=lambda: "none open")
    with pytest.raises(ActionRefused, match="none open"):
        await nothing.run(Operation("pause", "x"), work)
    journal = InMemoryJournal()
    read_only = Operations(user="op", journal=lambda: journal, refusal=lambda: "read-only mode")
    with pytest.raises(ActionRefused, match="read-only"):
        await read_only.run(Operation("pause", "x"), work)
    assert ran == []
    # The refused attempt is on the record, with its reason.
    assert journal.records[-1] == ("finished", 1, False, "read-only mode")
    reading = await read_only.run(Operation("list", "x", changes=False), work)
    assert reading.value == "done" and ran == ["ran"]


async def test_a_vm_state_the_action_does_not_apply_to_is_refused_before_the_host() -> None:
    async with EstateSession(demo_estate()) as session:
        snapshot = await session.poll_once()
        running = next(p for p in snapshot.placed_vms() if p.vm.state is VmState.RUNNING)
        (result,) = await session.run_actions([running], VmAction.START)
        assert not result.ok and result.error
