from __future__ import annotations

import asyncio
import shlex

from ovmtui.model import Capability, HostKey, PlacedVm, VmAction, VmState
from ovmtui.services.actions import ActionService, summarize
from tests.services.fakes import FakeBackend, vm


def placed(backend: FakeBackend, name: str) -> PlacedVm:
    v = next(v for v in backend.vms.values() if v.name == name)
    return PlacedVm(backend.host.pool, backend.host.name, v)


def service(backend: FakeBackend, **kw: object) -> tuple[ActionService, list[HostKey]]:
    refreshed: list[HostKey] = []
    kw.setdefault("journal", MemoryJournal(backend))  # no action runs without one
    svc = ActionService(
        lambda key: backend if key == backend.host else None,
        refresh=refreshed.append,
        **kw,  # type: ignore[arg-type]
    )
    return svc, refreshed


async def test_action_runs_reports_and_refreshes() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    svc, refreshed = service(b)
    result = await svc.run(placed(b, "web01"), VmAction.FORCE_OFF)
    assert result.ok
    assert shlex.split(result.command) == ["fake", "force-off", "web01"]
    assert b.vms[placed(b, "web01").uuid].state is VmState.SHUTOFF
    assert refreshed == [b.host]


async def test_read_only_refuses_and_never_calls_the_host() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    svc, refreshed = service(b, read_only=True)
    result = await svc.run(placed(b, "web01"), VmAction.FORCE_OFF)
    assert not result.ok
    assert "read-only" in (result.error or "")
    assert b.acted == []
    assert refreshed == []


async def test_missing_capability_refuses() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    b.capabilities = frozenset({Capability.START})
    svc, _ = service(b)
    result = await svc.run(placed(b, "web01"), VmAction.PAUSE)
    assert not result.ok
    assert "cannot pause" in (result.error or "")


async def test_host_error_is_a_readable_result() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    b.fail = "Requested operation is not valid: domain is not running"
    svc, _ = service(b)
    result = await svc.run(placed(b, "web01"), VmAction.SHUTDOWN)
    assert not result.ok
    assert result.error == "Requested operation is not valid: domain is not running"


async def test_bulk_is_bounded_and_reports_each_vm() -> None:
    b = FakeBackend("p", "a", [vm(f"vm{i:03d}") for i in range(40)])
    running = 0
    peak = 0
    real_act = b.act

    async def slow_act(v, action):  # type: ignore[no-untyped-def]
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        await real_act(v, action)

    b.act = slow_act  # type: ignore[method-assign]
    svc, _ = service(b, max_concurrency=5)
    heard = []
    targets = [placed(b, f"vm{i:03d}") for i in range(40)]
    results = await svc.run_many(targets, VmAction.FORCE_OFF, on_result=heard.append)
    assert [r.placed.vm.name for r in results] == [t.vm.name for t in targets]
    assert len(heard) == 40
    assert summarize(results) == (40, 0)
    assert peak == 5


class MemoryJournal:
    """Records what the service writes, in order, with the host's state at that moment."""

    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.records: list[tuple[str, dict[str, object]]] = []

    async def journal_started(self, **fields: str) -> int:
        self.records.append(("started", {**fields, "acted_before": len(self.backend.acted)}))
        return len(self.records)

    async def journal_finished(self, started_id: int, *, ok: bool, detail: str | None) -> int:
        self.records.append(("finished", {"ref": started_id, "ok": ok, "detail": detail}))
        return len(self.records)


async def test_journal_written_before_and_completed_after() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    journal = MemoryJournal(b)
    svc, _ = service(b, journal=journal, user="alice")
    await svc.run(placed(b, "web01"), VmAction.PAUSE)
    (kind1, started), (kind2, finished) = journal.records
    assert kind1 == "started" and started["acted_before"] == 0  # before the host was asked
    assert started["user"] == "alice" and started["vm"] == "web01"
    assert started["operation"] == "pause"
    assert shlex.split(str(started["command"])) == ["fake", "pause", "web01"]
    assert (kind2, finished) == ("finished", {"ref": 1, "ok": True, "detail": None})


async def test_journal_records_failures_and_refusals() -> None:
    b = FakeBackend("p", "a", [vm("web01")])
    b.fail = "domain is not running"
    journal = MemoryJournal(b)
    svc, _ = service(b, journal=journal)
    await svc.run(placed(b, "web01"), VmAction.SHUTDOWN)
    assert journal.records[-1][1] == {"ref": 1, "ok": False, "detail": "domain is not running"}
    svc.read_only = True
    b.fail = None
    result = await svc.run(placed(b, "web01"), VmAction.FORCE_OFF)
    assert not result.ok
    kind, finished = journal.records[-1]
    assert kind == "finished" and finished["ok"] is False
    assert "read-only" in str(finished["detail"])
    assert len(b.acted) == 1  # the refused action never reached the host
