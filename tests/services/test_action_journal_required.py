"""No action without its journal record: none without a journal, none past a failed write."""

from __future__ import annotations

import asyncio

import pytest

from ovmtui.errors import ActionRefused, RepositoryError
from ovmtui.model import VmAction, VmState
from ovmtui.services.actions import ActionService
from tests.services.fakes import FakeBackend, vm
from tests.services.test_actions import MemoryJournal, placed, service


async def test_no_journal_refuses_and_never_calls_the_host() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    svc = ActionService(lambda key: b if key == b.host else None)
    svc.no_journal = "r.sqlite: attempt to write a readonly database"
    result = await svc.run(placed(b, "web01"), VmAction.FORCE_OFF)
    assert not result.ok
    assert "not be recorded" in (result.error or "")
    assert "readonly database" in (result.error or "")  # the reason, for the operator
    assert b.acted == []
    assert b.vms[placed(b, "web01").uuid].state is VmState.RUNNING
    # The UI asks before offering the key: the same refusal.
    with pytest.raises(ActionRefused) as refused:
        svc.check(placed(b, "web01"), VmAction.FORCE_OFF)
    assert refused.value.message == result.error


async def test_bulk_stops_at_the_first_record_that_cannot_be_written() -> None:
    b = FakeBackend("p", "a", [vm(f"vm{i}") for i in range(4)])
    journal = MemoryJournal(b)
    real_started = journal.journal_started

    async def started_then_disk_full(**fields: str) -> int:
        if len(b.acted) >= 2:
            raise RepositoryError("r.sqlite: database or disk is full")
        return await real_started(**fields)

    journal.journal_started = started_then_disk_full  # type: ignore[method-assign]
    svc, _ = service(b, journal=journal, max_concurrency=1)
    results = await svc.run_many([placed(b, f"vm{i}") for i in range(4)], VmAction.PAUSE)
    assert [r.ok for r in results] == [True, True, False, False]
    assert len(b.acted) == 2  # the two whose start could not be written never ran
    assert "disk is full" in (results[2].error or "")


async def test_a_result_that_cannot_be_written_is_said_not_raised() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    journal = MemoryJournal(b)

    async def finished_fails(started_id: int, *, ok: bool, detail: str | None) -> int:
        raise RepositoryError("r.sqlite: database or disk is full")

    journal.journal_finished = finished_fails  # type: ignore[method-assign]
    svc, _ = service(b, journal=journal)
    result = await svc.run(placed(b, "web01"), VmAction.PAUSE)
    # It ran (the host said so); the operator must hear that its outcome is not recorded.
    assert b.acted and not result.ok
    assert "disk is full" in (result.error or "") and "not recorded" in (result.error or "")


async def test_an_action_cancelled_halfway_is_journaled_as_interrupted() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    journal = MemoryJournal(b)
    acting = asyncio.Event()

    async def slow_act(v, action):  # type: ignore[no-untyped-def]
        acting.set()
        await asyncio.Event().wait()  # the host never answers

    b.act = slow_act  # type: ignore[method-assign]
    svc, _ = service(b, journal=journal)
    task = asyncio.create_task(svc.run(placed(b, "web01"), VmAction.SHUTDOWN))
    await acting.wait()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation must go on after the record is written")
    kind, finished = journal.records[-1]
    assert kind == "finished" and finished["ok"] is False
    assert "interrupted" in str(finished["detail"])
